"""What one snapshot request costs the server's loop, by book size.

Fills an engine's first instrument (the ``mix`` workload's instruments) with N resting
limit orders spread over 1,000 levels, then times, as the server does between two engine
calls: building the order view (``qfix.server.feed.book_view``, for L3) and the level view
(``level_view``, for L2, BBO and TRD), each once per loop pass since a view is shared by
every request of the pass, and turning them into each feed's packets for all instruments
(``snapshot_packets``). Medians of 5 runs, in milliseconds. Usage:

    .venv/bin/python scripts/probe_snapshot.py [--orders 10000,100000,500000] [--json PATH]
    .venv/bin/python scripts/probe_snapshot.py --multi [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from qfix.bench.engine import _drain, _instruments, _stream
from qfix.engine import Engine, EngineConfig, output_buffer
from qfix.marketdata import feeds
from qfix.marketdata.publisher import Publisher
from qfix.marketdata.snapshot import snapshot_packets
from qfix.server.feed import book_view, level_view
from qfix.wire import codes, schema

LEVELS = 500  # per side
REPEATS = 5


def _orders(n: int, security_id: int, ref: int) -> Any:
    rng = np.random.default_rng(n)
    recs = np.zeros(n, schema.INBOUND_NEW_ORDER_SINGLE)
    recs["blockLength"] = codes.BLOCK_LENGTH
    recs["templateId"] = codes.TEMPLATE_NEW_ORDER_SINGLE
    recs["schemaId"] = codes.SCHEMA_ORDER_ENTRY
    recs["version"] = codes.SCHEMA_VERSION
    recs["ClOrdID"] = np.arange(1, n + 1)
    recs["SessionID"] = 0
    recs["SessionAccount"] = 1
    recs["RecvTime"] = 1_700_000_000_000_000_000 + np.arange(n, dtype=np.uint64) * 1_000
    buy = rng.random(n) < 0.5
    depth = rng.integers(1, LEVELS + 1, n)
    recs["Side"] = np.where(buy, codes.SIDE_BUY, codes.SIDE_SELL)
    recs["Price"] = np.where(buy, ref - depth, ref + depth)
    recs["OrderQty"] = rng.integers(1, 100, n)
    recs["SecurityID"] = security_id
    recs["Account"] = codes.NULL_U32
    recs["MinQty"] = codes.NULL_U32
    recs["MaxFloor"] = codes.NULL_U32
    recs["OrdType"] = codes.ORD_TYPE_LIMIT
    recs["TimeInForce"] = codes.TIF_GTC
    recs["SelfMatchPreventionInstruction"] = codes.SMP_DEFAULT
    recs["ExpireDate"] = codes.NULL_DATE
    return recs.view(schema.INBOUND)


def _median_ms(fn: Any) -> float:
    times = []
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--orders", default="10000,100000,500000")
    ap.add_argument(
        "--multi",
        action="store_true",
        help="instead: the multi workload's book after its prefill (10,000 instruments, 500,000 orders)",
    )
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    if args.multi:
        _multi(args.json)
        return
    insts = _instruments("mix")
    first = insts[0]
    results: dict[str, Any] = {"levels_per_side": LEVELS, "repeats": REPEATS, "by_orders": {}}
    for n in (int(x) for x in args.orders.split(",")):
        engine = Engine(insts, EngineConfig(max_orders=1 << (2 * n).bit_length(), max_levels=1 << 12))
        _drain(engine, _orders(n, first.security_id, first.ref), output_buffer(1 << 16))
        assert engine.resting_orders == n, (engine.resting_orders, n)
        publisher = Publisher([i.security_id for i in insts])
        view = book_view(engine, 1)
        levels = level_view(engine, 1)
        row: dict[str, float] = {
            "view_ms": _median_ms(lambda e=engine: book_view(e, 1)),
            "level_view_ms": _median_ms(lambda e=engine: level_view(e, 1)),
        }
        for feed in feeds.ALL_FEEDS:
            # what the server does: L3 from the order view, the level feeds from the levels
            source = view if feed == codes.MD_FEED_L3 else levels
            row[f"{feeds.FEED_NAMES[feed]}_ms"] = _median_ms(
                lambda f=feed, v=source, p=publisher: snapshot_packets(f, v, p, 0, 1)
            )
        results["by_orders"][str(n)] = row
        print(n, "orders:", ", ".join(f"{k} {v:.1f}" for k, v in row.items()), flush=True)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=2)
            fh.write("\n")


def _multi(json_path: str | None) -> None:
    """The same timings on ENGINE.md's ``multi`` book: the prefill of its quick stream (as
    cached under bench-out/streams by ``qfix bench engine --quick``), 50 orders on each of
    10,000 instruments, almost every one on a level of its own."""
    records, prefill, _, _ = _stream("multi", True, Path("bench-out/streams"))
    engine = Engine(_instruments("multi"), EngineConfig())
    _drain(engine, records[:prefill], output_buffer(1 << 16))
    publisher = Publisher([i.security_id for i in engine.instruments])
    view = book_view(engine, 1)
    levels = level_view(engine, 1)
    row: dict[str, float] = {
        "view_ms": _median_ms(lambda: book_view(engine, 1)),
        "level_view_ms": _median_ms(lambda: level_view(engine, 1)),
    }
    for feed in feeds.ALL_FEEDS:
        source = view if feed == codes.MD_FEED_L3 else levels
        row[f"{feeds.FEED_NAMES[feed]}_ms"] = _median_ms(
            lambda f=feed, v=source: snapshot_packets(f, v, publisher, 0, 1)  # type: ignore[misc]
        )
    result = {"workload": "multi-quick prefill", "resting_orders": engine.resting_orders, "repeats": REPEATS, **row}
    print(", ".join(f"{k} {v:.1f}" for k, v in row.items()), flush=True)
    if json_path:
        with open(json_path, "w") as fh:
            json.dump(result, fh, indent=2)
            fh.write("\n")


if __name__ == "__main__":
    main()
