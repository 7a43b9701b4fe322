"""Ceiling probe for a market-data SUB: the receiving thread's cost of one three-frame packet.

A PUB in a spawned child process sends N packets (13-byte topic over varying SecurityIDs,
16-byte header, 4 records of 60 bytes) through ``qfix.marketdata._send.send_packets`` to a
SUB in this process, which receives them three ways, each in its own round with fresh
sockets and a fresh sender: pyzmq ``recv_multipart``, pyzmq ``recv`` three times, and
``qfix.marketdata._recv.recv_packets`` into an arena (libzmq's ``zmq_recv`` from Numba).
Reports, as medians over the rounds, the receiving thread's CPU time per packet
(``time.thread_time_ns``: the receiver's own work, whatever the sender's pace) and the wall
rate from the first packet to the last, and whether every packet arrived (RCVHWM and
SNDHWM are 0, so none may drop). By default the receiver runs while the sender sends
(``live``: it waits in ``poll`` whenever it has caught up); ``--queued`` starts it only
once the sender is done, so it drains a full queue. Usage:

    .venv/bin/python scripts/probe_sub_recv.py [--packets N] [--rounds R] [--queued] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import zmq

_PROBE = b"probe"
_FENCE = b"fence"
_PREFIX = b"L3."
_RECORD = 60
_RECORDS_PER_PACKET = 4
_CHUNK = 4096  # packets per send_packets call
_SECURITIES = 1000  # SecurityIDs cycled through, so topics vary as on a real feed
_ARENA_BYTES = 8 << 20
_TABLE_ROWS = 4096
_POLL_MS = 1000
_STALL_S = 30  # give up on a round when nothing arrives for this long


def _send(endpoint: str, n: int, go: Any, sent: Any) -> None:
    """The child: connect a PUB, probe until the SUB says it hears, then send n packets."""
    from qfix.marketdata import _send

    ctx = zmq.Context()
    pub = ctx.socket(zmq.PUB)
    pub.setsockopt(zmq.SNDHWM, 0)
    pub.setsockopt(zmq.LINGER, -1)  # close waits until every packet is handed to TCP
    pub.connect(endpoint)
    # the subscription reaches the PUB some time after connecting: probe until heard
    while not go.wait(0.01):
        pub.send_multipart([_PROBE, b"", b""])
    pub.send_multipart([_FENCE])
    rng = np.random.default_rng(1)
    records = rng.integers(0, 256, (_CHUNK * _RECORDS_PER_PACKET, _RECORD), dtype=np.uint8)
    for lo in range(0, n, _CHUNK):
        count = min(_CHUNK, n - lo)
        ids = (np.arange(lo, lo + count, dtype=np.int64) % _SECURITIES) + 1
        bounds = np.arange(0, (count + 1) * _RECORDS_PER_PACKET, _RECORDS_PER_PACKET, dtype=np.int64)
        first_seq = 1 + lo * _RECORDS_PER_PACKET
        if _send.AVAILABLE:
            _send.send_packets(pub, _PREFIX, ids, first_seq, time.time_ns(), records, bounds)
        else:
            for i in range(count):
                lo_r, hi_r = bounds[i], bounds[i + 1]
                topic = _PREFIX + b"%010d" % ids[i]
                pub.send_multipart([topic, bytes(16), records[lo_r:hi_r].tobytes()])
    sent.set()
    pub.close()
    ctx.term()


def _recv_multipart(sub: zmq.Socket[Any], n: int) -> int:
    got = 0
    while got < n:
        try:
            sub.recv_multipart(zmq.NOBLOCK)
            got += 1
        except zmq.Again:
            if not sub.poll(_STALL_S * 1000):
                break
    return got


def _recv_x3(sub: zmq.Socket[Any], n: int) -> int:
    got = 0
    while got < n:
        try:
            sub.recv(zmq.NOBLOCK)
        except zmq.Again:
            if not sub.poll(_STALL_S * 1000):
                break
            continue
        # the other frames of a message arrive with its first
        sub.recv()
        sub.recv()
        got += 1
    return got


def _jitted(sub: zmq.Socket[Any], n: int) -> int:
    from qfix.marketdata import _recv

    arena = np.zeros(_ARENA_BYTES, np.uint8)
    table = np.zeros((_TABLE_ROWS, _recv.COLUMNS), np.int64)
    got = 0
    while got < n:
        k = _recv.recv_packets(sub, arena, table)
        if k == 0 and not sub.poll(_STALL_S * 1000):
            break
        got += k
    return got


def _round(way: Callable[[zmq.Socket[Any], int], int], n: int, queued: bool) -> tuple[float, float, int]:
    """(receiver thread CPU ns per packet, wall packets/s, packets received) of one round."""
    ctx = zmq.Context()
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.RCVHWM, 0)
    sub.setsockopt(zmq.LINGER, 0)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.bind("tcp://127.0.0.1:*")
    mpc = mp.get_context("spawn")
    go, sent = mpc.Event(), mpc.Event()
    proc = mpc.Process(target=_send, args=(sub.getsockopt_string(zmq.LAST_ENDPOINT), n, go, sent), daemon=True)
    proc.start()
    try:
        while sub.recv_multipart()[0] != _PROBE:
            pass
        go.set()
        # probes sent before go was seen are ahead of the fence; the packets follow it
        while sub.recv_multipart() != [_FENCE]:
            pass
        if queued:
            # the receiver starts once the sender has handed every packet to its I/O
            # thread: it then drains a full queue and never waits for the sender
            assert sent.wait(_STALL_S * 10), "the sender did not finish"
        assert sub.poll(_STALL_S * 1000), "no packet arrived"
        cpu, wall = time.thread_time_ns(), time.perf_counter()
        got = way(sub, n)
        cpu, wall = time.thread_time_ns() - cpu, time.perf_counter() - wall
        proc.join(_STALL_S)
    finally:
        if proc.is_alive():
            proc.kill()
        sub.close(0)
        ctx.term()
    return cpu / max(got, 1), got / wall, got


def main() -> None:
    from qfix.marketdata import _recv

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--packets", type=int, default=300_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--queued", action="store_true", help="receive only after the sender has sent everything")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    n = args.packets
    ways: dict[str, Callable[[zmq.Socket[Any], int], int]] = {"recv_multipart": _recv_multipart, "recv_x3": _recv_x3}
    if _recv.AVAILABLE:
        # compile, or load from the cache, before any round is timed
        ctx = zmq.Context()
        with ctx.socket(zmq.SUB) as sub:
            _recv.recv_packets(sub, np.zeros(1, np.uint8), np.zeros((0, _recv.COLUMNS), np.int64))
        ctx.term()
        ways["jitted"] = _jitted
    per: dict[str, list[float]] = {name: [] for name in ways}
    rate: dict[str, list[float]] = {name: [] for name in ways}
    counts: list[int] = []
    for _ in range(args.rounds):
        for name, way in ways.items():
            ns, pps, got = _round(way, n, args.queued)
            per[name].append(ns)
            rate[name].append(pps)
            counts.append(got)
    results: dict[str, Any] = {
        "packets": n,
        "records_per_packet": _RECORDS_PER_PACKET,
        "rounds": args.rounds,
        "mode": "queued" if args.queued else "live",
        "jitted_available": _recv.AVAILABLE,
        "ns_per_packet": {name: statistics.median(v) for name, v in per.items()},
        "wall_packets_per_s": {name: statistics.median(v) for name, v in rate.items()},
        "ns_per_packet_each_round": per,
        "received_all": all(got == n for got in counts),
        "received_each_round": counts,
    }
    print(f"{'way':16s} {'ns/packet (CPU)':>16s} {'packets/s (wall)':>17s}")
    for name in ways:
        print(f"{name:16s} {results['ns_per_packet'][name]:16.0f} {results['wall_packets_per_s'][name]:17,.0f}")
    print(f"received all {n} packets every round: {results['received_all']}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(results, fh, indent=2)


if __name__ == "__main__":
    main()
