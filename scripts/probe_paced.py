"""Where a paced session's round trip goes: the CPU its client and the server spend per
record, beside what the same client calls cost when warm.

    .venv/bin/python scripts/probe_paced.py [--rates 10000,100000] [--seconds 3] [--json F]

`qfix bench net` measures round trips at fixed offered rates from one session that sends
what is due once per 100 us tick (``--tick-us``), so at every rate up to 100,000 orders/s
its client means to send about 10,000 records a second, and the server to run as many
passes. This
probe runs that session alone against a server in a child process (the default embedded
configuration, no journal, market data on), IOC orders that find no liquidity, and
reports per rate:

* the round trip's p50 and p99 from each order's scheduled time (as bench net);
* the client's CPU per tick: the whole process (its libzmq I/O thread included) and its
  main thread alone;
* the server loop thread's CPU per pass that handled an order;
* how often a record actually went out: the session means to send once per 100 us
  tick, but a tick comes only when its loop has sent, waited and read the reports of
  the last one, and every order waits for its tick.

Then, warm (in a tight loop, no waiting), what the same client calls cost one by one: a
``send_fixed`` of 10 orders, the read of one report record (its 20 reports), an empty
poll. The gap between
the per-tick figures and the warm ones is what waking up costs: each tick's thread has
slept, and its caches and branch history are cold.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from probe_flood import paced, serve  # the same session and server (this folder is on sys.path)

_WARM_CALLS = 5_000


def _orders(client: Any, count: int) -> tuple[Any, int]:
    from qfix.wire import message

    order = message.new_order_single(cl_ord_id=1, security_id=1, side="buy", qty=1, price="65000.00", tif="ioc")
    base = client.next_cl_ord_id
    msgs = np.zeros((count, 60), np.uint8)
    for i in range(count):
        order["ClOrdID"] = base + i
        msgs[i] = np.frombuffer(order.tobytes(), np.uint8)
    return msgs, base


def _at_rate(client: Any, rate: float, seconds: float) -> dict[str, float]:
    total = int(rate * seconds)
    msgs, base = _orders(client, total)
    client.next_cl_ord_id = base + total
    t0 = time.monotonic() + 0.2
    cpu0, thread0 = time.process_time(), time.thread_time()
    lat, ticks = paced(client, msgs, base, rate, t0, t0 + seconds)
    cpu, thread = time.process_time() - cpu0, time.thread_time() - thread0
    return {
        "rtt_p50_us": float(np.nanpercentile(lat, 50)),
        "rtt_p99_us": float(np.nanpercentile(lat, 99)),
        "ticks": ticks,
        # the session means to send every _TICK_S; on two shared cores its loop (the
        # send, the wait, the reports' read) takes longer, and each order waits for it
        "mean_tick_interval_us": seconds / max(1, ticks) * 1e6,
        "client_cpu_per_tick_us": cpu / max(1, ticks) * 1e6,
        "client_main_thread_per_tick_us": thread / max(1, ticks) * 1e6,
    }


def _warm(client: Any) -> dict[str, float]:
    """Thread CPU per call of the client's calls, back to back."""
    ep = client._ep
    msgs, base = _orders(client, 10 * _WARM_CALLS)
    client.next_cl_ord_id = base + msgs.shape[0]
    frames = [msgs[10 * i : 10 * i + 10].tobytes() for i in range(_WARM_CALLS)]
    sent = 0
    send_ns = 0
    for chunk in range(0, _WARM_CALLS, 500):  # in steps the server's pipe takes
        start = time.thread_time_ns()
        for frame in frames[chunk : chunk + 500]:
            client.send_frame(frame)
        send_ns += time.thread_time_ns() - start
        sent += 500
        deadline = time.monotonic() + 10
        got = 0
        while got < 500 * 10 * 2 and time.monotonic() < deadline:  # New and Canceled for each
            got += client.poll_raw(0.01).shape[0]
    # the replies of one more batch of sends, read one record per call as poll_raw
    # reads them (the endpoint's poll, then the client's checks and inbox)
    msgs, base = _orders(client, 10 * 500)
    client.next_cl_ord_id = base + msgs.shape[0]
    for i in range(500):
        client.send_frame(msgs[10 * i : 10 * i + 10].tobytes())
        time.sleep(0.001)  # each answered in a pass of its own: one small record each
    time.sleep(0.5)
    records = 0
    start = time.thread_time_ns()
    while True:
        events = ep.poll(0, max_frames=1)
        client._receive(events)
        if not events:
            break
        records += 1
    recv_ns = time.thread_time_ns() - start
    client._inbox = []
    start = time.thread_time_ns()
    for _ in range(_WARM_CALLS):
        ep.poll(0, max_frames=1)
    empty_ns = time.thread_time_ns() - start
    return {
        "send_frame_10_orders_us": send_ns / _WARM_CALLS / 1e3,
        "read_one_record_us": recv_ns / max(1, records) / 1e3,
        "records_read": records,
        "empty_poll_us": empty_ns / _WARM_CALLS / 1e3,
    }


def main() -> None:
    from qfix.client import Client
    from qfix.server import ensure_default_setup

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rates", default="10000,100000", help="offered orders/s, comma-separated")
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    rates = [int(r) for r in args.rates.split(",")]
    doc: dict[str, Any] = {
        "probe": "paced",
        "command": f"scripts/probe_paced.py --rates {args.rates} --seconds {args.seconds}",
        "rates": {},
    }
    with tempfile.TemporaryDirectory(prefix="qfix-paced-") as home:
        ensure_default_setup(Path(home))
        ctl, child = mp.get_context("fork").Pipe()
        server = mp.get_context("fork").Process(target=serve, args=(home, False, child))
        server.start()
        endpoint = ctl.recv()
        client = Client.from_files(
            endpoint, Path(home) / "client-1.key", Path(home) / "server.key.pub", track_orders=False
        )
        client.connect(timeout=30.0)
        for rate in rates:
            ctl.send("record")
            figures = _at_rate(client, rate, args.seconds)
            ctl.send("report")
            cpu = np.asarray(ctl.recv()["order_pass_cpu_ns"], np.float64) / 1e3
            figures["server_passes"] = int(cpu.size)
            figures["server_cpu_per_pass_p50_us"] = float(np.percentile(cpu, 50)) if cpu.size else 0.0
            doc["rates"][str(rate)] = figures
            print(
                f"{rate:>7} orders/s: p50 {figures['rtt_p50_us']:.0f} us, p99 {figures['rtt_p99_us']:.0f} us; "
                f"client {figures['client_cpu_per_tick_us']:.0f} us CPU per tick "
                f"({figures['client_main_thread_per_tick_us']:.0f} on its main thread); "
                f"server {figures['server_cpu_per_pass_p50_us']:.0f} us per pass (p50); "
                f"a record sent every {figures['mean_tick_interval_us']:.0f} us",
                flush=True,
            )
        doc["warm"] = _warm(client)
        print("warm, per call: " + ", ".join(f"{k} {v:.1f}" for k, v in doc["warm"].items()))
        client.close()
        ctl.send("stop")
        server.join(30)
    doc["started"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    if args.json:
        args.json.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
