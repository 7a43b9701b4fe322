"""The live demo: a local server, simulated trading clients and a market-data watcher.

Theory of operation: the server runs in a thread of this process; the watcher is a
market-data subscriber on the server's PUB feed and snapshot service, as any user's
would be, and shows one instrument's ladder beside each status line; each trading client is
its own process using the SDK exactly as a user would: it connects over QZMQ, sends
bursts of limit orders around the reference price (some IOC, some cancels), waits
until every order of the burst is acknowledged, and measures each burst's round trip.
At the end each client reports what it sent, what was acknowledged and filled, and its
round-trip percentiles; the summary adds the server's own counters. Every figure
printed is measured in this run.
"""

from __future__ import annotations

import copy
import multiprocessing as mp
import random
import statistics
import tempfile
import threading
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from qfix.marketdata import Subscriber
from qfix.marketdata.ladder import ladder, one_line
from qfix.wire import codes

__all__ = ["ClientResult", "run_demo"]

_BURST = 200  #: orders per burst; a client waits for all of them before the next
_TICK = Decimal("0.01")
_WATCHED = 1  #: the SecurityID whose ladder the watcher shows (BTC-USD in the default setup)


@dataclass
class ClientResult:
    name: str
    sent: int
    acknowledged: int
    fills: int
    filled_qty: int
    rejects: int
    bursts: int
    rtt_ms: list[float]
    error: str = ""


def _trader(endpoint: str, home: str, name: str, seconds: float, seed: int, pq_only: bool, out: Any) -> None:
    """One simulated client (runs in its own process)."""
    from qfix.client import Client

    rng = random.Random(seed)
    sent = 0
    rtts: list[float] = []
    bursts = 0
    try:
        c = Client.from_files(
            endpoint, Path(home) / f"{name}.key", Path(home) / "server.key.pub", mode="pq-only" if pq_only else "hybrid"
        )
        c.connect(timeout=30.0)
        end = time.monotonic() + seconds
        resting: list[int] = []
        while time.monotonic() < end:
            ids = []
            # resting orders, from the previous burst's reports (each cancelled at most once)
            live = [c.order(i) for i in resting if c.order(i).is_open]
            resting = []
            for _ in range(_BURST):
                if live and rng.random() < 0.15:
                    o = live.pop(rng.randrange(len(live)))
                    side = "buy" if o.side == codes.SIDE_BUY else "sell"
                    c.cancel(security_id=o.security_id, side=side, order_id=o.order_id)
                    continue
                side = rng.choice(("buy", "sell"))
                offset = rng.randint(-5, 5) * (1 if side == "sell" else -1) + rng.randint(-2, 2)
                price = Decimal("65000.00") + offset * _TICK
                tif = "ioc" if rng.random() < 0.2 else "day"
                ids.append(c.new_order(security_id=1, side=side, qty=rng.randint(1, 20), price=price, tif=tif))
                if tif == "day":
                    resting.append(ids[-1])
            t0 = time.perf_counter()
            c.flush()
            sent += len(ids)
            if not c.wait_until(lambda cl, ids=ids: all(cl.order(i).status != "pending-new" for i in ids), 30.0):
                raise TimeoutError("a burst was not acknowledged within 30 s")
            rtts.append((time.perf_counter() - t0) * 1e3)
            bursts += 1
            resting += [o.cl_ord_id for o in live]
        acked = sum(1 for o in c.orders.by_clordid.values() if o.status != "pending-new")
        result = ClientResult(name, sent, acked, c.orders.fills, c.orders.filled_qty, len(c.rejects), bursts, rtts)
        c.close()
    except Exception as exc:  # reported in the summary, never a silent hang
        result = ClientResult(name, sent, 0, 0, 0, 0, bursts, rtts, error=f"{type(exc).__name__}: {exc}")
    out.put(result)


def run_demo(seconds: float, clients: int, home: Path | None, pq_only: bool, console: Console) -> list[ClientResult]:
    """Run the whole demo and print the status lines, the watcher and the summary."""
    from qfix.server import Server, ensure_default_setup, load_config, with_overrides
    from qfix.server.defaults import DEMO_CLIENTS

    clients = max(1, min(clients, len(DEMO_CLIENTS)))
    tmp = None
    if home is None:
        tmp = tempfile.TemporaryDirectory(prefix="qfix-demo-")
        home = Path(tmp.name) / "home"
    journal = tempfile.TemporaryDirectory(prefix="qfix-demo-journal-")
    # each demo starts from empty books: it journals (fsync) into a directory of its own
    config = with_overrides(
        load_config(ensure_default_setup(home)),
        fix_port=0,
        md_port=0,
        md_snapshot_port=0,
        status_interval=1.0,
        pq_only=pq_only or None,
        journal_dir=Path(journal.name),
    )
    lines: list[str] = []
    with console.status("starting the server (the first run on a machine compiles the engine: minutes)"):
        server = Server(config, on_status=lines.append)
    thread = threading.Thread(target=server.serve_forever, name="qfix-server", daemon=True)
    thread.start()
    console.print(f"server on {server.fix_endpoint} ({config.qzmq.mode.name.lower()}), {clients} trading clients")
    ctx = mp.get_context("spawn")
    results_q = ctx.Queue()
    procs = [
        ctx.Process(
            target=_trader,
            args=(server.fix_endpoint, str(home), DEMO_CLIENTS[k][0], seconds, k, pq_only, results_q),
            daemon=True,
        )
        for k in range(clients)
    ]
    for p in procs:
        p.start()
    results: list[ClientResult] = []
    deadline = time.monotonic() + seconds + 120
    watcher = Subscriber(*server.md_endpoints, security_ids=[_WATCHED])
    seen = None  # the book at the last status line (the clients' orders are cancelled when they leave)
    while len(results) < clients and time.monotonic() < deadline:
        watcher.poll(200)
        while lines:
            console.print(lines.pop(0))
            book = watcher.books.get(_WATCHED)
            console.print(f"  [dim]{one_line(book) if book is not None else 'waiting for the feed'}[/]")
            if book is not None and book.orders:
                seen = copy.deepcopy(book)
        while not results_q.empty():
            results.append(results_q.get())
    watcher.close()
    if seen is not None:
        console.print(ladder(seen, 5, title="BTC-USD at the last status line (rebuilt from the market-data feed)"))
    for p in procs:
        p.join(5)
    totals = server.metrics.totals
    server.stop()
    thread.join(10)
    _summary(console, results, totals, seconds)
    journal.cleanup()
    if tmp is not None:
        tmp.cleanup()
    return results


def _summary(console: Console, results: list[ClientResult], totals: Any, seconds: float) -> None:
    table = Table(title=f"demo summary ({seconds:g} s of trading)")
    for col in ("client", "orders sent", "acknowledged", "fills", "filled qty", "rejects", "bursts", "burst RTT p50"):
        table.add_column(col, justify="right")
    for r in sorted(results, key=lambda r: r.name):
        p50 = f"{statistics.median(r.rtt_ms):.2f} ms" if r.rtt_ms else "-"
        table.add_row(
            r.name,
            f"{r.sent:,}",
            f"{r.acknowledged:,}",
            f"{r.fills:,}",
            f"{r.filled_qty:,}",
            str(r.rejects),
            str(r.bursts),
            p50,
        )
    console.print(table)
    for r in results:
        if r.error:
            console.print(f"[red]{r.name} failed: {r.error}[/]")
    ns = totals.busy_ns / totals.orders if totals.orders else 0
    console.print(
        f"server: {totals.orders:,} orders in {totals.batches:,} batches, {totals.trades:,} trades, "
        f"{totals.messages_out:,} reports sent, {ns:,.0f} ns/order (receipt to reports handed to the socket), "
        f"{totals.md_records:,} market-data records; bursts of {_BURST} orders, each client waiting for every "
        "acknowledgement before its next burst"
    )
