"""What sequencing one engine call's market data costs the server's loop.

Runs an order stream through an engine in batches of ``--batch`` messages, collects each
call's market-data records, then times ``Publisher.publish`` (numbering, packing and the
replay ring, no socket) per engine call, against the engine call itself. The stream is
the random stream of the differential tests (``--workload random``, the default: the
small engine calls of a lightly loaded server) or ENGINE.md's ``multi`` (``--workload
multi``: 10,000 instruments, the quick stream cached by ``qfix bench engine --quick``;
its prefill is applied untimed, then ``--messages`` are timed). Medians of 5 passes, in
microseconds per call and nanoseconds per record. Usage:

    .venv/bin/python scripts/probe_publish.py [--workload random|multi] [--batch 16] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from qfix.bench.engine import _instruments, _stream
from qfix.engine import Engine, EngineConfig
from qfix.journal.entries import Batch
from qfix.journal.replay import EngineDriver
from qfix.marketdata.publisher import Publisher
from qfix.testing.generators import default_random_config, default_random_instruments, random_stream
from qfix.wire import codes

PASSES = 5
MESSAGES = 30_000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--workload", choices=("random", "multi"), default="random")
    ap.add_argument("--messages", type=int, default=MESSAGES, help="timed messages")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    if args.workload == "multi":
        stream, prefill, _, _ = _stream("multi", True, Path("bench-out/streams"))
    else:
        stream, prefill = random_stream(1, args.messages), 0
    end = prefill + args.messages
    engine_us: list[float] = []
    publish_us: list[float] = []
    per_record_ns: list[float] = []
    records = 0
    calls = 0
    for _ in range(PASSES):
        if args.workload == "multi":
            engine = Engine(_instruments("multi"), EngineConfig())
        else:
            engine = Engine(default_random_instruments(), default_random_config())
        driver = EngineDriver(engine, out_size=1 << 22)
        publisher = Publisher([i.security_id for i in engine.instruments])
        for at in range(0, prefill, 10_000):
            driver.apply(Batch(stream[at : min(at + 10_000, prefill)]), lambda out: None)
        t_engine = t_publish = 0.0
        records = calls = 0
        for at in range(prefill, end, args.batch):
            md: list[Any] = []
            t0 = time.perf_counter()
            driver.apply(Batch(stream[at : min(at + args.batch, end)]), md.append)
            t1 = time.perf_counter()
            parts = [out["message"][out["dest"] == codes.MD_DEST] for out in md]
            msgs = np.concatenate(parts) if parts else np.zeros((0, codes.MESSAGE_SIZE), np.uint8)
            t2 = time.perf_counter()
            publisher.publish(msgs, at + 1)
            t3 = time.perf_counter()
            t_engine += t1 - t0
            t_publish += t3 - t2
            records += msgs.shape[0]
            calls += 1
        engine_us.append(t_engine / calls * 1e6)
        publish_us.append(t_publish / calls * 1e6)
        per_record_ns.append(t_publish / records * 1e9)
    result = {
        "workload": args.workload,
        "messages": args.messages,
        "batch": args.batch,
        "calls_per_pass": calls,
        "md_records_per_call": records / calls,
        "engine_call_us": statistics.median(engine_us),
        "publish_us": statistics.median(publish_us),
        "publish_ns_per_record": statistics.median(per_record_ns),
        "passes": PASSES,
    }
    print(json.dumps(result, indent=2))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=2)
            fh.write("\n")


if __name__ == "__main__":
    main()
