"""Ceiling probe for the order round trip: one order at a time through a real server,
beside a plaintext ZeroMQ ping-pong on the same loopback, and the server's own time per
one-order batch.

    .venv/bin/python scripts/probe_rtt.py [--orders 3000] [--md/--no-md] [--steps] [--json F]

`qfix bench net` measures round trips open-loop at fixed offered rates, with orders sent
once per tick (``--tick-us``), so each order also waits half a tick on average. This probe removes
the pacing to show the floor the per-order path sets: a client (the SDK, tracking off)
sends one IOC NewOrderSingle that finds no liquidity, waits for its ExecutionReport, and
sends the next; latency runs from just before the send to the report's arrival. The
server runs in a child process on the default embedded configuration (QZMQ hybrid, no
journal, market data as ``--md`` says), with its loop wrapped only to time each
``run_once`` that handled an order, minus the time it waited for input (wall time: where
the client shares the cores it includes time the loop waited for one), and the loop
thread's CPU time for the same passes (``server_cpu``, which does not, but includes the
wait call's own CPU; each clock read costs about a microsecond). The ping-pong
sends 60 bytes to a ROUTER echo in the same child process and back, before the orders.
Between the two, the same child runs the *lean record path* (``_lean``), the ceiling of
a record path written in Python around the same compiled kernels: one session's records
opened, passed through the real stage S, a fresh engine and the real routing, and
sealed, with no event objects, journal layer or endpoint in between; its client sends
pre-encoded orders. The lean figures show how much of the server's time per record is
its layering rather than its kernels, sockets and cryptography.
``--steps`` also times a fixed list of the loop's steps (``_STEPS``) in thread CPU, each
including the steps it calls: p50 per call, calls per batch and the mean total per batch.
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import importlib
import json
import multiprocessing as mp
import os
import struct
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import zmq

_WARM = 50  #: round trips of each kind left out of the figures
_HDR = struct.Struct(">BBQ")  #: a QZMQ record header (QZMQ.md): type, epoch, sequence number
_HL = _HDR.size
_DATA_FIXED = 0x16
_LEAN_ACCOUNT = 1  #: the lean path's session account (its orders leave Account 0)
#: with --steps: (object, method) of the server timed in thread CPU, nested calls included
_STEPS = (
    ("endpoint", "wait"),
    ("endpoint", "busy"),
    ("server", "_serve"),
    ("path", "serve"),
    ("serve_kernels", "serve_pass"),
    ("path", "_engine_calls"),
    ("entry", "file_reports"),
    ("serve_kernels", "send_sealed"),
    ("server", "_finish_pass"),
    ("server", "_send_kept"),
    ("endpoint", "poll"),
    ("endpoint", "flush"),
    ("server", "_handle"),
    ("entry", "receive"),
    ("server", "_run_path"),
    ("path", "run"),
    ("server", "_match"),
    ("ledger", "apply"),
    ("engine", "process"),
    ("server", "_dispatch"),
    ("entry", "route"),
    ("server", "_send"),
    ("md", "serve"),
    ("server", "_housekeeping"),
)


def _time_steps(server: Any) -> dict[str, list[int]]:
    """Wrap each of ``_STEPS`` to record its thread CPU time (ns) per call."""
    owners = {"server": server, "endpoint": server.endpoint, "entry": server.entry, "ledger": server.ledger}
    owners |= {"engine": server.engine, "md": server.md, "path": getattr(server, "_record_path", None)}
    owners["serve_kernels"] = importlib.import_module("qfix.server._serve")
    samples: dict[str, list[int]] = {}

    def wrap(owner: Any, name: str, label: str) -> None:
        inner = getattr(owner, name)
        calls = samples.setdefault(label, [])

        def timed(*a: Any, **k: Any) -> Any:
            start = time.thread_time_ns()
            try:
                return inner(*a, **k)
            finally:
                calls.append(time.thread_time_ns() - start)

        setattr(owner, name, timed)

    for owner, name in _STEPS:
        if owners[owner] is not None:
            wrap(owners[owner], name, f"{owner}.{name}")
    return samples


def _lean(config: Any, sock: zmq.Socket[Any], keys: tuple[bytes, bytes, int, int]) -> list[float]:
    """The ceiling of the record path in Python: one established session's records
    opened, checked by the real stage S, matched by a fresh engine of the server's
    configuration, routed and sealed as the server does, with no layer between the
    socket and the kernels (no events, no journal layer, no endpoint). Returns the
    thread CPU (us) of each record's handling."""
    from qfix.crypto.primitives import Aes256Gcm
    from qfix.engine import Engine, output_buffer
    from qfix.server.session import OrderEntry

    c2s, s2c, iv_in, iv_out = keys
    aead_in, aead_out = Aes256Gcm(c2s), Aes256Gcm(s2c)
    engine = Engine(config.instruments, config.engine)
    out = output_buffer(4096)
    entry = OrderEntry(max_sessions=config.engine.max_sessions)
    entry.login(1, b"lean", (_LEAN_ACCOUNT,), time.monotonic())
    poller = zmq.Poller()
    poller.register(sock, zmq.POLLIN)
    send_seq = 0
    cpu: list[float] = []
    while True:
        poller.poll(2)
        try:
            rid = sock.recv(zmq.NOBLOCK)
        except zmq.Again:
            continue
        frame = sock.recv(copy=False)
        buf = frame.buffer
        if bytes(buf) == b"done":
            return cpu
        start = time.thread_time_ns()
        _, _, seq = _HDR.unpack_from(buf)
        pt = aead_in.decrypt((iv_in ^ seq).to_bytes(12, "big"), buf[_HL:], buf[:_HL])
        arrival = entry.receive(1, pt, time.time_ns(), time.monotonic())
        done = engine.process(arrival.inbound, out)
        routed, _, _ = entry.route(out[: done.written])
        for _, msgs in routed:
            body = msgs.tobytes()
            header = _HDR.pack(_DATA_FIXED, 0, send_seq)
            record = bytearray(_HL + len(body) + 16)
            record[:_HL] = header
            aead_out.encrypt_into((iv_out ^ send_seq).to_bytes(12, "big"), body, header, memoryview(record)[_HL:])
            send_seq += 1
            sock.send_multipart((rid, record), copy=False)
        cpu.append((time.thread_time_ns() - start) / 1e3)


def _server(home: str, md: bool, spin_us: int, steps: bool, profile: Path | None, keys: Any, ctl: Any) -> None:
    from qfix.server import Server, load_config, with_overrides

    config = with_overrides(load_config(Path(home) / "qfix.toml"), status_interval=0, fix_port=0)
    config = dataclasses.replace(
        config,
        journal_dir=None,
        durability="none",
        md_enabled=md,
        md_port=0,
        md_snapshot_port=0,
        idle_spin_us=spin_us,
    )
    server = Server(config)
    echo = zmq.Context.instance().socket(zmq.ROUTER)
    echo.bind("tcp://127.0.0.1:*")
    lean = zmq.Context.instance().socket(zmq.ROUTER)
    lean.bind("tcp://127.0.0.1:*")
    endpoints = [s.getsockopt_string(zmq.LAST_ENDPOINT) for s in (echo, lean)]
    ctl.send((server.fix_endpoint, *endpoints))
    while True:
        frames = echo.recv_multipart()
        if frames[1] == b"done":
            break
        echo.send_multipart(frames)
    lean_cpu = _lean(config, lean, keys)
    waited = 0
    wait = server.endpoint.wait

    def timed_wait(timeout_ms: int) -> Any:
        nonlocal waited
        start = time.perf_counter_ns()
        try:
            return wait(timeout_ms)
        finally:
            waited += time.perf_counter_ns() - start

    server.endpoint.wait = timed_wait  # type: ignore[method-assign]
    step_samples = _time_steps(server) if steps else {}
    busy: list[float] = []
    cpu: list[float] = []
    profiler = cProfile.Profile() if profile else None
    if profiler:
        profiler.enable()
    while not ctl.poll():
        before, start, cpu_start = waited, time.perf_counter_ns(), time.thread_time_ns()
        if server.run_once(2):
            busy.append((time.perf_counter_ns() - start - (waited - before)) / 1e3)
            cpu.append((time.thread_time_ns() - cpu_start) / 1e3)
    if profiler:
        profiler.disable()
        profiler.dump_stats(profile)
    ctl.recv()
    batches = max(1, len(busy))
    step_doc = {
        label: {
            "p50_us": float(np.percentile(v, 50)) / 1e3,
            "calls_per_batch": len(v) / batches,
            "per_batch_us": sum(v) / batches / 1e3,
        }
        for label, v in step_samples.items()
        if v
    }
    ctl.send((busy, cpu, step_doc, lean_cpu))
    server.shutdown()


def _lean_client(endpoint: str, keys: tuple[bytes, bytes, int, int], count: int) -> list[float]:
    """Round trips of one IOC order at a time through :func:`_lean`: pre-encoded orders,
    each sealed, sent, its report record received and opened."""
    from qfix.crypto.primitives import Aes256Gcm
    from qfix.wire import message

    c2s, s2c, iv_out, iv_in = keys
    aead_out, aead_in = Aes256Gcm(c2s), Aes256Gcm(s2c)
    order = message.new_order_single(cl_ord_id=1, security_id=1, side="buy", qty=1, price="65000.00", tif="ioc")
    orders = []
    for i in range(count):
        order["ClOrdID"] = i + 1
        orders.append(order.tobytes())
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.connect(endpoint)
    rtt: list[float] = []
    for seq, body in enumerate(orders):
        start = time.perf_counter_ns()
        header = _HDR.pack(_DATA_FIXED, 0, seq)
        record = bytearray(_HL + len(body) + 16)
        record[:_HL] = header
        aead_out.encrypt_into((iv_out ^ seq).to_bytes(12, "big"), body, header, memoryview(record)[_HL:])
        sock.send(record, copy=False)
        reply = sock.recv(copy=False).buffer
        _, _, rseq = _HDR.unpack_from(reply)
        aead_in.decrypt((iv_in ^ rseq).to_bytes(12, "big"), reply[_HL:], reply[:_HL])
        rtt.append((time.perf_counter_ns() - start) / 1e3)
    sock.send(b"done")
    sock.close(0)
    return rtt


def _p(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values[_WARM:]), q))


def main() -> None:
    from qfix.client import Client
    from qfix.server import ensure_default_setup

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--orders", type=int, default=3000)
    ap.add_argument("--md", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--idle-spin-us", type=int, default=0, help="the server's idle_spin_us (docs/server.md)")
    ap.add_argument("--json", type=Path)
    ap.add_argument(
        "--steps",
        action="store_true",
        help="also time the loop's steps in thread CPU (each clock read adds about a microsecond)",
    )
    ap.add_argument(
        "--profile",
        type=Path,
        help="write cProfile stats of the server loop here (read: python -m pstats; it inflates every figure)",
    )
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="qfix-rtt-") as home:
        ensure_default_setup(Path(home))
        parent, child = mp.Pipe()
        ivs = [int.from_bytes(os.urandom(12), "big") for _ in range(2)]
        keys = (os.urandom(32), os.urandom(32), *ivs)
        proc = mp.get_context("fork").Process(
            target=_server, args=(home, args.md, args.idle_spin_us, args.steps, args.profile, keys, child)
        )
        proc.start()
        fix, echo, lean_endpoint = parent.recv()
        dealer = zmq.Context.instance().socket(zmq.DEALER)
        dealer.connect(echo)
        ping: list[float] = []
        for _ in range(args.orders + _WARM):
            start = time.perf_counter_ns()
            dealer.send(b"\x00" * 60)
            dealer.recv()
            ping.append((time.perf_counter_ns() - start) / 1e3)
        dealer.send(b"done")
        lean_rtt = _lean_client(lean_endpoint, keys, args.orders + _WARM)
        client = Client.from_files(fix, Path(home) / "client-1.key", Path(home) / "server.key.pub", track_orders=False)
        client.connect(timeout=10.0)
        rtt: list[float] = []
        for _ in range(args.orders + _WARM):
            start = time.perf_counter_ns()
            client.new_order(security_id=1, side="buy", qty=1, price="65000.00", tif="ioc")
            client.flush()
            while not client.poll_raw(0.005).shape[0]:
                pass
            rtt.append((time.perf_counter_ns() - start) / 1e3)
        client.close()
        parent.send("stop")
        busy, cpu, step_doc, lean_cpu = parent.recv()
        proc.join(10)
    doc = {
        "probe": "rtt",
        "command": "scripts/probe_rtt.py "
        + ("--md" if args.md else "--no-md")
        + f" --orders {args.orders} --idle-spin-us {args.idle_spin_us}"
        + (" --steps" if args.steps else ""),
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "orders": args.orders,
        "md": args.md,
        "idle_spin_us": args.idle_spin_us,
        "pingpong_p50_us": _p(ping, 50),
        "pingpong_p99_us": _p(ping, 99),
        "order_rtt_p50_us": _p(rtt, 50),
        "order_rtt_p99_us": _p(rtt, 99),
        "server_busy_p50_us": _p(busy, 50),
        "server_busy_p99_us": _p(busy, 99),
        "server_cpu_p50_us": _p(cpu, 50),
        "server_batches": len(busy),
        "lean_rtt_p50_us": _p(lean_rtt, 50),
        "lean_rtt_p99_us": _p(lean_rtt, 99),
        "lean_server_cpu_p50_us": _p(lean_cpu, 50),
    }
    if step_doc:
        doc["steps_thread_cpu"] = step_doc
    doc["order_rtt_over_pingpong"] = doc["order_rtt_p50_us"] / doc["pingpong_p50_us"]
    doc["server_busy_share_of_rtt"] = doc["server_busy_p50_us"] / doc["order_rtt_p50_us"]
    doc["lean_rtt_over_pingpong"] = doc["lean_rtt_p50_us"] / doc["pingpong_p50_us"]
    if args.json:
        args.json.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    print(
        f"ping-pong p50 {doc['pingpong_p50_us']:.0f} us; one order p50 {doc['order_rtt_p50_us']:.0f} us "
        f"({doc['order_rtt_over_pingpong']:.1f}x), p99 {doc['order_rtt_p99_us']:.0f} us; "
        f"server busy per one-order batch p50 {doc['server_busy_p50_us']:.0f} us (CPU {doc['server_cpu_p50_us']:.0f})\n"
        f"lean record path: p50 {doc['lean_rtt_p50_us']:.0f} us ({doc['lean_rtt_over_pingpong']:.1f}x), "
        f"its server CPU per record p50 {doc['lean_server_cpu_p50_us']:.0f} us"
    )


if __name__ == "__main__":
    main()
