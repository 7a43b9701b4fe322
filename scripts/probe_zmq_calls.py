"""What two ways of finding a ROUTER socket empty cost through pyzmq on this machine.

    .venv/bin/python scripts/probe_zmq_calls.py [--calls 100000] [--json F]

The endpoint's read loop (``qfix.qzmq.adapter.ServerEndpoint._read``) must learn when
the socket has no more frames. Asking ``ZMQ_EVENTS`` before each receive costs a call
for every frame; receiving until pyzmq raises ``zmq.Again`` costs one exception per
read. This probe times both on an idle socket (medians of 5 rounds of ``--calls``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import zmq


def _per_call(fn: object, calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        fn()  # type: ignore[operator]
    return (time.perf_counter() - start) / calls * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=100_000)
    ap.add_argument("--json", default="")
    args = ap.parse_args()
    ctx = zmq.Context()
    sock = ctx.socket(zmq.ROUTER)
    sock.bind("tcp://127.0.0.1:*")

    def events() -> None:
        sock.getsockopt(zmq.EVENTS)

    def again() -> None:
        try:
            sock.recv(zmq.NOBLOCK)
        except zmq.Again:
            pass

    rounds: dict[str, list[float]] = {"events_us": [], "recv_again_us": []}
    for _ in range(5):
        rounds["events_us"].append(_per_call(events, args.calls))
        rounds["recv_again_us"].append(_per_call(again, args.calls))
    doc = {
        "probe": "zmq_calls",
        "command": "scripts/probe_zmq_calls.py --calls " + str(args.calls),
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "pyzmq": zmq.__version__,
        "libzmq": zmq.zmq_version(),
        **{k: round(statistics.median(v), 3) for k, v in rounds.items()},
    }
    print(f"ZMQ_EVENTS {doc['events_us']} us a call; a receive raising Again {doc['recv_again_us']} us")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(doc, f, indent=1)
    sock.close(0)
    ctx.term()


if __name__ == "__main__":
    main()
