"""What sequencing one engine call's market data costs the server's loop.

Runs the random order stream of the differential tests through an engine in batches of
``--batch`` messages (the small engine calls of a lightly loaded server), collects each
call's market-data records, then times ``Publisher.publish`` (numbering, packing and the
replay ring, no socket) per engine call, against the engine call itself. Medians of 5
passes, in microseconds per call. Usage:

    .venv/bin/python scripts/probe_publish.py [--batch 16] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any

import numpy as np

from qfix.engine import Engine
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
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    stream = random_stream(1, MESSAGES)
    engine_us: list[float] = []
    publish_us: list[float] = []
    records = 0
    calls = 0
    for _ in range(PASSES):
        engine = Engine(default_random_instruments(), default_random_config())
        driver = EngineDriver(engine, out_size=1 << 16)
        publisher = Publisher([i.security_id for i in engine.instruments])
        t_engine = t_publish = 0.0
        records = calls = 0
        for at in range(0, MESSAGES, args.batch):
            md: list[Any] = []
            t0 = time.perf_counter()
            driver.apply(Batch(stream[at : at + args.batch]), md.append)
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
    result = {
        "batch": args.batch,
        "calls_per_pass": calls,
        "md_records_per_call": records / calls,
        "engine_call_us": statistics.median(engine_us),
        "publish_us": statistics.median(publish_us),
        "passes": PASSES,
    }
    print(json.dumps(result, indent=2))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=2)
            fh.write("\n")


if __name__ == "__main__":
    main()
