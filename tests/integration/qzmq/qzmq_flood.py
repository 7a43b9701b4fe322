"""Processes for the hello-flood test (tests/integration/qzmq/test_qzmq_flood.py).

``python qzmq_flood.py server WORKERS``: a QZMQ echo server (ServerEndpoint with
``handshake_workers=WORKERS``, default Config: cookies under load, default buckets);
prints ``{"endpoint": ...}``, echoes every DATA_FIXED record back, and on SIGTERM
prints its statistics (counters, RSS of the loop process and of its workers) as one
JSON line.

``python qzmq_flood.py flood PORT ADDRESSES PER_ADDRESS INTERVAL``: the attacker.
ADDRESSES source addresses 127.0.0.10.. with PER_ADDRESS DEALER connections each
re-send a genuine CLIENT_HELLO every INTERVAL seconds and answer each HELLO_RETRY
with the cookie, as an attacker who wants the server's signatures would; SERVER_HELLOs
are never answered. SIGUSR1 pauses, SIGUSR2 resumes, SIGTERM stops (statistics on
stdout as one JSON line).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "unit" / "qzmq"))

import zmq
from qzmq_testlib import CLIENT_KEYS, allow_list, fixed_key

from qfix.crypto import SignatureAlg
from qfix.qzmq import ClientConnection, Config, Messages, ServerProtocol
from qfix.qzmq.adapter import ServerEndpoint

SERVER_KEY = fixed_key(SignatureAlg.ML_DSA_65, 1)
TRADER_KEY = CLIENT_KEYS[SignatureAlg.ML_DSA_44]
KNOWN_KEY = CLIENT_KEYS[SignatureAlg.ML_DSA_65]


def _status_kib(pid: int | str = "self") -> dict[str, int]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0])
    return out


def serve(workers: int) -> None:
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    protocol = ServerProtocol([SERVER_KEY], allow_list(TRADER_KEY, KNOWN_KEY), Config(), now=time.monotonic())
    ctx = zmq.Context()
    ep = ServerEndpoint(protocol, "tcp://127.0.0.1:0", context=ctx, handshake_workers=workers)
    print(json.dumps({"endpoint": ep.endpoint}), flush=True)
    base = _status_kib()
    while not stop:
        ep.wait(20)
        for ev in ep.poll(0):
            if isinstance(ev, Messages) and ev.fixed:
                ep.send_fixed(ev.conn, ev.frames[0])
    stats = {
        "counters": protocol.counters.as_dict(),
        "handshake_frames_dropped": ep.handshake_frames_dropped,
        "handshake_frames_shed": ep.handshake_frames_shed,
        "rss_start_kib": base["VmRSS"],
        "rss_kib": _status_kib()["VmRSS"],
        "rss_peak_kib": _status_kib()["VmHWM"],
        "worker_rss_kib": [_status_kib(w.proc.pid)["VmRSS"] for w in (ep.workers.workers if ep.workers else [])],
        "pending": protocol.pending_count,
        "work": {k: getattr(ep.workers, k) for k in ("sent", "skipped", "received", "restarts", "queued")}
        if ep.workers
        else {},
        "sessions": protocol.session_count,
    }
    ep.close()
    ctx.destroy(linger=0)
    print(json.dumps(stats), flush=True)


def flood(port: int, addresses: int, per_address: int, interval: float) -> None:
    # the attacker's CPU is not the server's: here it shares the machine, so it runs at
    # a lower priority and takes only what the server and the trader leave
    os.nice(10)
    state = {"paused": False, "stop": False}
    signal.signal(signal.SIGUSR1, lambda *_: state.update(paused=True))
    signal.signal(signal.SIGUSR2, lambda *_: state.update(paused=False))
    signal.signal(signal.SIGTERM, lambda *_: state.update(stop=True))
    ctx = zmq.Context()
    ctx.set(zmq.MAX_SOCKETS, addresses * per_address + 64)
    # one genuine hello per source address (the server cannot tell them from real ones)
    hellos = []
    for _ in range(addresses):
        c = ClientConnection(TRADER_KEY, SERVER_KEY.verify_key(), Config())
        c.connect(0.0)
        hellos.append(c.data_to_send()[0])
    socks = []
    for a in range(addresses):
        for _ in range(per_address):
            s = ctx.socket(zmq.DEALER)
            s.setsockopt(zmq.LINGER, 0)
            s.setsockopt(zmq.SNDHWM, 16)
            s.connect(f"tcp://127.0.0.{10 + a}:0;127.0.0.1:{port}")
            socks.append((s, hellos[a]))
    stats = {"hellos": 0, "cookie_hellos": 0, "server_hellos": 0, "errors": 0, "retries": 0, "eagain": 0}
    n = len(socks)
    start = time.monotonic()
    # each connection re-sends every `interval`, staggered over the interval
    next_send = [start + interval * i / n for i in range(n)]
    i = 0
    while not state["stop"]:
        now = time.monotonic()
        if not state["paused"]:
            for _ in range(n):
                if next_send[i] > now:
                    break
                s, hello = socks[i]
                try:
                    s.send(hello, zmq.NOBLOCK)
                    stats["hellos"] += 1
                except zmq.Again:
                    stats["eagain"] += 1
                next_send[i] += interval
                if next_send[i] < now:
                    next_send[i] = now + interval
                i = (i + 1) % n
        else:
            next_send = [now + interval * k / n for k in range(n)]
        for s, hello in socks:
            while s.getsockopt(zmq.EVENTS) & zmq.POLLIN:
                f = s.recv()
                t = f[3] if len(f) > 3 else 0
                if t == 0x02:  # HELLO_RETRY: answer with the cookie
                    stats["retries"] += 1
                    if not state["paused"]:
                        try:
                            s.send(hello[:-1] + bytes([len(f) - 4]) + f[4:], zmq.NOBLOCK)
                            stats["cookie_hellos"] += 1
                        except zmq.Again:
                            stats["eagain"] += 1
                elif t == 0x03:
                    stats["server_hellos"] += 1
                else:
                    stats["errors"] += 1
        time.sleep(0.01)
    stats["seconds"] = round(time.monotonic() - start, 3)
    for s, _ in socks:
        s.close(linger=0)
    ctx.term()
    print(json.dumps(stats), flush=True)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    if sys.argv[1] == "server":
        serve(int(sys.argv[2]))
    else:
        flood(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]))
