"""Ceiling probe for the market-data PUB: the cost of one three-frame packet.

Sends the same 200,000 packets (13-byte topic, 16-byte header, 3 records) through one
PUB socket three ways and prints ns per packet: pyzmq ``send_multipart``, pyzmq
``send`` three times with SNDMORE, and the jitted sender of ``qfix.marketdata._send``
(libzmq's ``zmq_send`` from Numba), each once with no subscriber and once with one SUB
in another process draining everything. Usage:

    .venv/bin/python scripts/probe_pub.py [--packets N] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import time
from typing import Any

import numpy as np
import zmq


def _drain(endpoint: str, ready: Any, done: Any) -> None:
    ctx = zmq.Context()
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.setsockopt(zmq.RCVHWM, 0)
    sub.connect(endpoint)
    ready.set()
    got = 0
    while not done.is_set() or sub.poll(200):
        if sub.poll(50):
            sub.recv_multipart()
            got += 1


def main() -> None:
    from qfix.marketdata import _send

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--packets", type=int, default=200_000)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    n = args.packets
    records = np.zeros((n * 3, 60), np.uint8)
    bounds = np.arange(0, 3 * n + 1, 3, dtype=np.int64)
    ids = np.full(n, 42, np.int64)
    data = records[:3].data.cast("B")
    results: dict[str, Any] = {"packets": n, "jitted_available": _send.AVAILABLE, "ns_per_packet": {}}
    for subscribed in (False, True):
        ctx = zmq.Context()
        pub = ctx.socket(zmq.PUB)
        pub.setsockopt(zmq.SNDHWM, 0)
        pub.bind("tcp://127.0.0.1:*")
        endpoint = pub.getsockopt_string(zmq.LAST_ENDPOINT)
        proc = None
        if subscribed:
            mpc = mp.get_context("spawn")
            ready, done = mpc.Event(), mpc.Event()
            proc = mpc.Process(target=_drain, args=(endpoint, ready, done), daemon=True)
            proc.start()
            ready.wait(30)
            time.sleep(0.5)

        def multipart(pub: zmq.Socket[Any] = pub) -> None:
            for _ in range(n):
                pub.send_multipart([b"L3.0000000042", b"\0" * 16, data])

        def three_sends(pub: zmq.Socket[Any] = pub) -> None:
            for _ in range(n):
                pub.send(b"L3.0000000042", zmq.SNDMORE)
                pub.send(b"\0" * 16, zmq.SNDMORE)
                pub.send(data)

        def jitted(pub: zmq.Socket[Any] = pub) -> None:
            _send.send_packets(pub, b"L3.", ids, 1, 0, records, bounds)

        ways = {"pyzmq_send_multipart": multipart, "pyzmq_send_x3": three_sends}
        if _send.AVAILABLE:
            jitted()  # compile or load from the cache first
            ways["jitted_zmq_send"] = jitted
        for name, fn in ways.items():
            t = time.perf_counter()
            fn()
            key = f"{name}{'.subscribed' if subscribed else '.no_subscriber'}"
            results["ns_per_packet"][key] = (time.perf_counter() - t) / n * 1e9
            time.sleep(0.5)
        if proc is not None:
            done.set()
            proc.join(30)
        pub.close(0)
        ctx.term()
    per = results["ns_per_packet"]
    if _send.AVAILABLE:
        ratio = per["pyzmq_send_multipart.subscribed"] / per["jitted_zmq_send.subscribed"]
        results["pyzmq_over_jitted.subscribed"] = ratio
    for key, value in per.items():
        print(f"{key:40s} {value:8.0f} ns/packet")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(results, fh, indent=2)


if __name__ == "__main__":
    main()
