"""What growing the order indexes costs the insert workload: the same stream with the
tables grown as the book grows, and with them sized for the whole book from the start.

Replays ENGINE.md's ``insert`` stream (the full stream cached by ``qfix bench engine``
under ``bench-out/streams``, or the quick one with ``--quick``) through ``process`` in
batches of 1,024, in alternating rounds: once with ``EngineConfig()`` as ``qfix bench
engine`` builds it (``reserve_orders`` 0: the three index tables start at 1,024 entries
and double, rehashing every entry, whenever the book would fill a quarter of them), and
once with ``reserve_orders`` 2^20, so that no table doubles inside the timed run. Per
round: messages per second of time inside ``process`` and the slowest batch, in ms. The
ratio of the medians (grown / reserved) is the share of insert's speed the doublings
cost, and the slowest batch is the stall a doubling puts on the one batch that triggers
it. The first round of each is a warm-up and not counted. Usage:

    .venv/bin/python scripts/probe_index_growth.py [--rounds 3] [--quick] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np

from qfix.bench import engine as bench_engine
from qfix.engine import Engine, EngineConfig
from qfix.engine.buffers import output_buffer

BATCH = 1024
RESERVED = 1 << 20


def _run(records: np.ndarray, prefill: int, reserve: int) -> tuple[float, float, int]:
    """(ops/s inside process, slowest batch in ms, resting orders at the end)."""
    insts = bench_engine._instruments("insert")
    engine = Engine(insts, EngineConfig(reserve_orders=reserve))
    out = output_buffer(1 << 16)
    out = bench_engine._drain(engine, records[:prefill], out)
    body = records[prefill:]
    total = 0
    worst = 0
    for i in range(0, len(body), BATCH):
        start = time.perf_counter_ns()
        out = bench_engine._drain(engine, body[i : i + BATCH], out)
        took = time.perf_counter_ns() - start
        total += took
        worst = max(worst, took)
    return len(body) / (total / 1e9), worst / 1e6, int(engine.resting_orders)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="the quick stream (its book stays small)")
    ap.add_argument("--streams", type=Path, default=Path("bench-out/streams"))
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    records, prefill, _, digest = bench_engine._stream("insert", args.quick, args.streams)
    rows: dict[str, list[tuple[float, float, int]]] = {"grown": [], "reserved": []}
    for rnd in range(args.rounds + 1):
        for name, reserve in (("grown", 0), ("reserved", RESERVED)):
            rate, worst, resting = _run(records, prefill, reserve)
            label = "warm-up" if rnd == 0 else f"round {rnd}"
            print(f"{label:<8} {name:<9} {rate / 1e6:6.3f}M ops/s, slowest batch {worst:7.1f} ms, {resting} resting")
            if rnd:
                rows[name].append((rate, worst, resting))
    med = {k: statistics.median(r[0] for r in v) for k, v in rows.items()}
    worst_med = {k: statistics.median(r[1] for r in v) for k, v in rows.items()}
    print(f"grown / reserved ops/s {med['grown'] / med['reserved']:.3f}; slowest batch (median) grown "
          f"{worst_med['grown']:.1f} ms, reserved {worst_med['reserved']:.1f} ms")  # fmt: skip
    if args.json:
        doc = {
            "stream": {"workload": "insert", "quick": args.quick, "blake2b": digest, "messages": len(records)},
            "batch": BATCH,
            "reserved_orders": RESERVED,
            "rounds": {
                k: [{"ops_per_s": r[0], "slowest_batch_ms": r[1], "resting": r[2]} for r in v] for k, v in rows.items()
            },
            "median_ops_per_s": med,
            "median_slowest_batch_ms": worst_med,
            "grown_over_reserved": med["grown"] / med["reserved"],
        }  # fmt: skip
        args.json.write_text(json.dumps(doc, indent=1) + "\n")


if __name__ == "__main__":
    main()
