"""Ceiling probe for the hello-flood target: how much of a session's round-trip tail
under a CLIENT_HELLO flood the server's own handshake work causes, and how much the
flood costs the machine even when the server never sees it.

    .venv/bin/python scripts/probe_flood.py [--rounds 2] [--rate 20000] [--json F]

`qfix bench net` measures an established session's p99 round trip at a low fixed rate,
quiet and then while another process floods the server with hellos, and sets the target
flood p99 <= 2x quiet p99. On a 2-core machine the attacker shares the cores with the
server and the clients. This probe separates the two effects. Each round runs, on a fresh
server (the default embedded configuration, no journal, market data on, in a child
process), a session sending IOC orders at ``--session-rate`` per second, one record per
100 us tick as the benchmark's paced client does (latency from each order's scheduled
time): first quiet, then under a flood of ``--rate`` hellos per second over 200 loopback
connections from a process niced by 10, as the benchmark's flooder, in one of two kinds:

* ``server``: the hellos go to the server (the benchmark's flood);
* ``elsewhere``: the same flooder sends the same hellos to a plain ROUTER in another
  process that reads and drops them: the ceiling of any server-side defence, which
  cannot make a frame cost the server less than nothing.

The kinds alternate within a round, so a drift of the shared machine falls on both. With
``--passes`` the server also records, for every loop pass whose thread CPU passed 300 us,
how that time split between the loop's steps (the endpoint's poll, the compiled read and
pass, the wait, the rest), and the probe reports the share of the flood's loop CPU in
such passes by step.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing as mp
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np

from qfix.bench.net import _flooder_main

_TICK_S = 100e-6  #: the session sends what is due once per tick, as bench net's paced client
_CONNECTIONS = 200  #: flooding connections, source addresses 127.0.0.2-201 (as bench net)
_SLOW_PASS_NS = 300_000  #: with --passes, passes with more thread CPU than this are broken down
_STEPS = (("endpoint", "poll"), ("endpoint", "wait"), ("server", "_serve"), ("server", "_housekeeping"))


def _drainer(ctl: Connection) -> None:
    """A ROUTER that reads every frame and drops it (the ``elsewhere`` kind's target)."""
    import zmq

    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context.instance()
    sock = ctx.socket(zmq.ROUTER)
    sock.bind("tcp://127.0.0.1:*")
    ctl.send(sock.getsockopt_string(zmq.LAST_ENDPOINT))
    while not ctl.poll():
        if sock.poll(10):
            while True:
                try:
                    sock.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    break
    sock.close(0)


def serve(home: str, passes: bool, ctl: Connection) -> None:
    """A server of the default configuration (no journal, market data on) run by this
    child process until "stop"; between "record" and "report" it records its loop's CPU
    (the whole, per pass that handled orders, and with ``passes`` the slow passes by
    step) and the hellos it shed. Also used by ``scripts/probe_paced.py``."""
    from qfix.server import Server, load_config, with_overrides

    config = with_overrides(load_config(Path(home) / "qfix.toml"), status_interval=0, fix_port=0)
    config = dataclasses.replace(config, journal_dir=None, durability="none", md_port=0, md_snapshot_port=0)
    server = Server(config)
    ctl.send(server.fix_endpoint)
    spent: dict[str, int] = {}
    if passes:
        owners = {"endpoint": server.endpoint, "server": server}
        for owner, name in _STEPS:
            inner = getattr(owners[owner], name)
            label = f"{owner}.{name}"

            def timed(*a: Any, _inner: Any = inner, _label: str = label, **k: Any) -> Any:
                start = time.thread_time_ns()
                try:
                    return _inner(*a, **k)
                finally:
                    spent[_label] = spent.get(_label, 0) + time.thread_time_ns() - start

            setattr(owners[owner], name, timed)
    slow: dict[str, int] = {}
    order_passes: list[int] = []
    total = shed_before = 0
    recording = False
    while True:
        if ctl.poll():
            cmd = ctl.recv()
            if cmd == "stop":
                break
            if cmd == "record":
                slow, order_passes, total, recording = {}, [], 0, True
                shed_before = server.endpoint.handshake_frames_shed
            elif cmd == "report":
                shed = server.endpoint.handshake_frames_shed - shed_before
                ctl.send({"slow_ns": slow, "loop_cpu_ns": total, "shed": shed, "order_pass_cpu_ns": order_passes})
                recording = False
        spent.clear()
        start = time.thread_time_ns()
        held = server.run_once(2)
        cpu = time.thread_time_ns() - start
        if recording:
            total += cpu
            if held:
                order_passes.append(cpu)
            if passes and cpu > _SLOW_PASS_NS:
                slow["passes"] = slow.get("passes", 0) + 1
                slow["cpu"] = slow.get("cpu", 0) + cpu
                for label, ns in spent.items():
                    slow[label] = slow.get(label, 0) + ns
    server.shutdown()


def paced(client: Any, msgs: Any, base: int, rate: float, t0: float, t1: float) -> tuple[Any, int]:
    """Round trips (us) of orders due at t0 + k / rate (``msgs``, whose ClOrdIDs count up
    from ``base``), sent once per tick as bench net's paced session sends them; and the
    ticks that sent a record. Also used by ``scripts/probe_paced.py``."""
    total = int((t1 - t0) * rate)
    lat = np.full(total, np.nan)
    sent = ticks = answered = 0
    next_tick = t0
    while time.monotonic() < t0:
        time.sleep(0.0005)
    while True:
        now = time.monotonic()
        if now >= next_tick and sent < total:
            due = min(total, int((now - t0) * rate) + 1, sent + 1000)
            if due > sent:
                client.send_frame(msgs[sent:due].tobytes())
                sent = due
                ticks += 1
            next_tick = now + _TICK_S
        if sent >= total and (answered >= total or now > t1 + 2.0):
            break
        wait = next_tick - time.monotonic() if sent < total else _TICK_S
        got = client.poll_raw(max(0.0, min(wait, _TICK_S)))
        received = time.monotonic()
        if got.shape[0]:
            ids = np.ascontiguousarray(got[:, 8:16]).view("<u8").ravel().astype(np.int64) - base
            ids = np.unique(ids[(ids >= 0) & (ids < total)])  # an IOC order has two reports
            ids = ids[np.isnan(lat[ids])]
            lat[ids] = received - (t0 + ids / rate)
            answered += ids.size  # counted, not scanned: the scan of ``lat`` grew with the run
    return lat * 1e6, ticks


def _round(home: str, kind: str, args: argparse.Namespace) -> dict[str, Any]:
    from qfix.client import Client
    from qfix.wire import message

    fork, spawn = mp.get_context("fork"), mp.get_context("spawn")
    sctl, schild = fork.Pipe()
    server = fork.Process(target=serve, args=(home, args.passes, schild))
    server.start()
    fix = sctl.recv()
    drainer = None
    target = fix
    if kind == "elsewhere":
        dctl, dchild = spawn.Pipe()
        drainer = spawn.Process(target=_drainer, args=(dchild,))
        drainer.start()
        target = dctl.recv()
    fctl, fchild = spawn.Pipe()
    # bench net's own flooder, its hellos naming this server's key
    flooder = spawn.Process(target=_flooder_main, args=(target, "hybrid", fchild, str(Path(home) / "server.key.pub")))
    flooder.start()
    fctl.recv()
    client = Client.from_files(fix, Path(home) / "client-1.key", Path(home) / "server.key.pub", track_orders=False)
    client.connect(timeout=30.0)
    order = message.new_order_single(cl_ord_id=1, security_id=1, side="buy", qty=1, price="65000.00", tif="ioc")
    base = client.next_cl_ord_id
    per_phase = int(args.seconds * args.session_rate)
    msgs = np.zeros((2 * per_phase, 60), np.uint8)
    for i in range(msgs.shape[0]):
        order["ClOrdID"] = base + i
        msgs[i] = np.frombuffer(order.tobytes(), np.uint8)
    time.sleep(0.5)
    t0 = time.monotonic() + 0.2
    quiet, _ = paced(client, msgs[:per_phase], base, args.session_rate, t0, t0 + args.seconds)
    t0 = time.monotonic() + 0.5
    fctl.send(("flood", t0 - 0.3, t0 + args.seconds + 0.5, args.rate, _CONNECTIONS))
    sctl.send("record")
    flood, _ = paced(client, msgs[per_phase:], base + per_phase, args.session_rate, t0, t0 + args.seconds)
    sctl.send("report")
    loop = sctl.recv()
    flood_doc = fctl.recv()
    fctl.send(("stop",))
    client.close()
    sctl.send("stop")
    server.join(30)
    flooder.join(10)
    if drainer is not None:
        dctl.send("stop")
        drainer.join(10)
    q99, f99 = float(np.nanpercentile(quiet, 99)), float(np.nanpercentile(flood, 99))
    doc = {
        "kind": kind,
        "quiet_p50_us": float(np.nanpercentile(quiet, 50)),
        "quiet_p99_us": q99,
        "flood_p50_us": float(np.nanpercentile(flood, 50)),
        "flood_p99_us": f99,
        "flood_p99_over_quiet": f99 / q99,
        "unanswered": int(np.count_nonzero(np.isnan(flood))),
        "hellos_sent": flood_doc["sent"],
        "hello_replies": flood_doc["replies"],
        "hellos_shed": loop["shed"],
        "flooder_cores": flood_doc["cores"],
    }
    if args.passes and loop["loop_cpu_ns"]:
        slow = loop["slow_ns"]
        doc["slow_passes"] = slow.get("passes", 0)
        doc["slow_pass_share_of_loop_cpu"] = slow.get("cpu", 0) / loop["loop_cpu_ns"]
        doc["slow_pass_cpu_by_step"] = {k: v / max(1, slow.get("cpu", 0)) for k, v in slow.items() if "." in k}
    return doc


def main() -> None:
    from qfix.server import ensure_default_setup

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--rate", type=int, default=20_000, help="hellos per second offered (bench net's full run: 20000)")
    ap.add_argument("--session-rate", type=int, default=2_000, help="the measured session's orders per second")
    ap.add_argument("--seconds", type=float, default=3.0, help="length of the quiet and of the flood phase")
    ap.add_argument("--passes", action="store_true", help="break the server's slow loop passes down by step")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    rounds = []
    with tempfile.TemporaryDirectory(prefix="qfix-flood-") as home:
        ensure_default_setup(Path(home))
        for r in range(args.rounds):
            for kind in ("server", "elsewhere") if r % 2 == 0 else ("elsewhere", "server"):
                doc = _round(home, kind, args)
                rounds.append(doc)
                print(
                    f"round {r + 1} {kind:9s}: quiet p99 {doc['quiet_p99_us']:6.0f} us, flood p99 "
                    f"{doc['flood_p99_us']:6.0f} us ({doc['flood_p99_over_quiet']:.1f}x); flooder "
                    f"{doc['flooder_cores']:.2f} cores, {doc['hello_replies']} replies, {doc['hellos_shed']} shed",
                    flush=True,
                )
    summary = {}
    for kind in ("server", "elsewhere"):
        mine = [d for d in rounds if d["kind"] == kind]
        for name in ("quiet_p99_us", "flood_p99_us", "flood_p99_over_quiet"):
            summary[f"{kind}.{name}_median"] = float(np.median([d[name] for d in mine]))
    summary["server_flood_p99_over_elsewhere"] = (
        summary["server.flood_p99_us_median"] / summary["elsewhere.flood_p99_us_median"]
    )
    doc = {
        "probe": "flood",
        "command": f"scripts/probe_flood.py --rounds {args.rounds} --rate {args.rate} "
        f"--session-rate {args.session_rate} --seconds {args.seconds}" + (" --passes" if args.passes else ""),
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "summary": summary,
        "rounds": rounds,
    }
    print(json.dumps(summary, indent=1))
    if args.json:
        args.json.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
