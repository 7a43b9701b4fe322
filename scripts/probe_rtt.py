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
``--steps`` also times a fixed list of the loop's steps (``_STEPS``) in thread CPU, each
including the steps it calls: p50 per call, calls per batch and the mean total per batch.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing as mp
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import zmq

_WARM = 50  #: round trips of each kind left out of the figures
#: with --steps: (object, method) of the server timed in thread CPU, nested calls included
_STEPS = (
    ("endpoint", "poll"),
    ("endpoint", "flush"),
    ("server", "_handle"),
    ("entry", "receive"),
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
    owners |= {"engine": server.engine, "md": server.md}
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


def _server(home: str, md: bool, steps: bool, ctl: Any) -> None:
    from qfix.server import Server, load_config, with_overrides

    config = with_overrides(load_config(Path(home) / "qfix.toml"), status_interval=0, fix_port=0)
    config = dataclasses.replace(
        config, journal_dir=None, durability="none", md_enabled=md, md_port=0, md_snapshot_port=0
    )
    server = Server(config)
    echo = zmq.Context.instance().socket(zmq.ROUTER)
    echo.bind("tcp://127.0.0.1:*")
    ctl.send((server.fix_endpoint, echo.getsockopt_string(zmq.LAST_ENDPOINT)))
    while True:
        frames = echo.recv_multipart()
        if frames[1] == b"done":
            break
        echo.send_multipart(frames)
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
    while not ctl.poll():
        before, start, cpu_start = waited, time.perf_counter_ns(), time.thread_time_ns()
        if server.run_once(2):
            busy.append((time.perf_counter_ns() - start - (waited - before)) / 1e3)
            cpu.append((time.thread_time_ns() - cpu_start) / 1e3)
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
    ctl.send((busy, cpu, step_doc))
    server.shutdown()


def _p(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values[_WARM:]), q))


def main() -> None:
    from qfix.client import Client
    from qfix.server import ensure_default_setup

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--orders", type=int, default=3000)
    ap.add_argument("--md", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--json", type=Path)
    ap.add_argument(
        "--steps",
        action="store_true",
        help="also time the loop's steps in thread CPU (each clock read adds about a microsecond)",
    )
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="qfix-rtt-") as home:
        ensure_default_setup(Path(home))
        parent, child = mp.Pipe()
        proc = mp.get_context("fork").Process(target=_server, args=(home, args.md, args.steps, child))
        proc.start()
        fix, echo = parent.recv()
        dealer = zmq.Context.instance().socket(zmq.DEALER)
        dealer.connect(echo)
        ping: list[float] = []
        for _ in range(args.orders + _WARM):
            start = time.perf_counter_ns()
            dealer.send(b"\x00" * 60)
            dealer.recv()
            ping.append((time.perf_counter_ns() - start) / 1e3)
        dealer.send(b"done")
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
        busy, cpu, step_doc = parent.recv()
        proc.join(10)
    doc = {
        "probe": "rtt",
        "command": "scripts/probe_rtt.py "
        + ("--md" if args.md else "--no-md")
        + f" --orders {args.orders}"
        + (" --steps" if args.steps else ""),
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "orders": args.orders,
        "md": args.md,
        "pingpong_p50_us": _p(ping, 50),
        "pingpong_p99_us": _p(ping, 99),
        "order_rtt_p50_us": _p(rtt, 50),
        "order_rtt_p99_us": _p(rtt, 99),
        "server_busy_p50_us": _p(busy, 50),
        "server_busy_p99_us": _p(busy, 99),
        "server_cpu_p50_us": _p(cpu, 50),
        "server_batches": len(busy),
    }
    if step_doc:
        doc["steps_thread_cpu"] = step_doc
    doc["order_rtt_over_pingpong"] = doc["order_rtt_p50_us"] / doc["pingpong_p50_us"]
    doc["server_busy_share_of_rtt"] = doc["server_busy_p50_us"] / doc["order_rtt_p50_us"]
    if args.json:
        args.json.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    print(
        f"ping-pong p50 {doc['pingpong_p50_us']:.0f} us; one order p50 {doc['order_rtt_p50_us']:.0f} us "
        f"({doc['order_rtt_over_pingpong']:.1f}x), p99 {doc['order_rtt_p99_us']:.0f} us; "
        f"server busy per one-order batch p50 {doc['server_busy_p50_us']:.0f} us"
    )


if __name__ == "__main__":
    main()
