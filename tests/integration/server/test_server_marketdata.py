"""Market data over real sockets: a server, trading clients and subscribers whose books
must end equal to the engine's, through dropped packets, a late join, a restart of the
server (a new feed session) and garbage on the snapshot port."""

from __future__ import annotations

import random
import socket
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import zmq

from qfix.client import Client
from qfix.marketdata import Subscriber
from qfix.marketdata.recovery import Want
from qfix.marketdata.subscriber import encode_request
from qfix.testing.marketdata import book_differences
from qfix.wire import codes, schema

pytestmark = pytest.mark.integration

INSTRUMENTS = {1: 6_500_000, 2: 350_000, 3: 19_000}  # SecurityID -> reference price in ticks of 0.01


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _trade(clients: list[Client], rng: random.Random, rounds: int, burst: int = 20) -> None:
    """Bursts of limit orders near the reference (some crossing, some IOC) and cancels."""
    for _ in range(rounds):
        for c in clients:
            for _ in range(burst):
                sec = rng.choice(list(INSTRUMENTS))
                ticks = INSTRUMENTS[sec] + rng.randint(-8, 8)
                open_orders = c.orders.open_orders()
                if open_orders and rng.random() < 0.2:
                    o = rng.choice(open_orders)
                    if o.order_id:
                        side = "buy" if o.side == codes.SIDE_BUY else "sell"
                        c.cancel(security_id=o.security_id, side=side, order_id=o.order_id)
                        continue
                c.new_order(
                    security_id=sec,
                    side=rng.choice(("buy", "sell")),
                    qty=rng.randint(1, 20),
                    price=f"{ticks // 100}.{ticks % 100:02d}",
                    tif="ioc" if rng.random() < 0.2 else "gtc",
                )
            c.flush()
        for c in clients:
            c.poll_raw(0.001)


def _quiet(clients: list[Client], server: Any, limit: float = 20.0) -> None:
    """Until every client has every answer and the server has nothing left to do."""
    end = time.monotonic() + limit
    while time.monotonic() < end:
        for c in clients:
            c.poll_raw(0.01)
        if all(not any(o.status == "pending-new" for o in c.orders.by_clordid.values()) for c in clients):
            break
    # the passive side's fills of the last trades may still be on their way: keep reading
    settle = time.monotonic() + 0.3
    while time.monotonic() < settle:
        for c in clients:
            c.poll_raw(0.01)


def _synced(sub: Subscriber, engine: Any, limit: float = 30.0) -> list[str]:
    diffs: list[str] = ["not polled"]

    def done() -> bool:
        nonlocal diffs
        if not sub.idle():
            return False
        diffs = book_differences(sub.books, engine)
        return not diffs

    sub.run_until(done, limit)
    return diffs


def test_subscribers_rebuild_every_book_through_drops_and_a_late_join(start_server: Callable[..., Any]) -> None:
    # a tiny PUB high-water mark: a subscriber that pauses loses packets and must recover
    run = start_server(md_sndhwm=20)
    pub, snap = run.server.md_endpoints
    early = Subscriber(pub, snap)  # reads all along: its trade tape must be complete
    paused = Subscriber(pub, snap, rcvhwm=20, rcvbuf=4096)
    clients = [run.client(n) for n in (1, 2, 3)]
    rng = random.Random(11)
    early.run_until(early.idle, 10)
    paused.run_until(paused.idle, 10)
    tape_snapshots = early.feeds[codes.MD_FEED_TRD].stats.snapshots
    for _ in range(6):
        _trade(clients, rng, 5)
        early.poll(5)
    # several MB of feed while ``paused`` reads nothing: past the kernel's socket buffers
    # and the PUB's high-water mark, its packets are dropped
    for _ in range(30):
        _trade(clients, rng, 1, burst=200)
        early.poll(0)
    late = Subscriber(pub, snap, jitted=False)  # joins with the books already full; reads through pyzmq
    _trade(clients, rng, 5)
    _quiet(clients, run.server)
    engine = run.server.engine
    for name, sub in (("early", early), ("paused", paused), ("late", late)):
        assert _synced(sub, engine) == [], name
    stats = {name: sub.feeds for name, sub in (("paused", paused), ("late", late))}
    assert sum(s.stats.gaps for s in stats["paused"].values()) > 0, "the paused subscriber should have lost packets"
    assert all(s.stats.snapshots > 0 for s in stats["late"].values())
    # the trade tape of a subscriber that saw everything reconciles with the clients' fills;
    # one that fell so far behind that it restarted its tape from a snapshot (a snapshot
    # holds no past trades; possible on a loaded machine even for ``early``) has a shorter one
    # (the books being equal says nothing of the tape: TRD packets follow the others', so
    # let it catch up first)
    early.run_until(lambda: sum(b.trade_count for b in early.books.values()) >= run.server.metrics.totals.trades, 20)
    traded = 2 * sum(book.volume for book in early.books.values())

    def fills() -> int:
        return sum(c.orders.filled_qty for c in clients)

    # every trade's two fills reach their clients, however late the last ones come
    end = time.monotonic() + 20
    while fills() < traded and time.monotonic() < end:
        for c in clients:
            c.poll_raw(0.01)
    trades = sum(book.trade_count for book in early.books.values())
    if early.feeds[codes.MD_FEED_TRD].stats.snapshots == tape_snapshots:
        assert (traded, trades) == (fills(), run.server.metrics.totals.trades)
    else:
        assert traded <= fills() and trades <= run.server.metrics.totals.trades
    for sub in (early, paused, late):
        assert {b.definition.symbol for b in sub.books.values() if b.definition} == {"BTC-USD", "ETH-USD", "AAPL"}
        sub.close()


def test_a_restarted_server_starts_a_new_feed_session(
    start_server: Callable[..., Any], tmp_path_factory: pytest.TempPathFactory
) -> None:
    journal = tmp_path_factory.mktemp("md-journal")
    ports = {"md_port": _free_port(), "md_snapshot_port": _free_port()}
    run = start_server(journal_dir=journal, cancel_on_disconnect=False, **ports)
    pub, snap = run.server.md_endpoints
    sub = Subscriber(pub, snap)
    clients = [run.client(1), run.client(2)]
    rng = random.Random(5)
    _trade(clients, rng, 4)
    _quiet(clients, run.server)
    assert _synced(sub, run.server.engine) == []
    resets = sum(s.stats.resets for s in sub.feeds.values())
    run.stop()
    again = start_server(journal_dir=journal, cancel_on_disconnect=False, **ports)
    assert again.server.engine.resting_orders > 0
    clients = [again.client(1)]
    _trade(clients, rng, 2)
    _quiet(clients, again.server)
    assert _synced(sub, again.server.engine) == []
    assert sum(s.stats.resets for s in sub.feeds.values()) > resets
    sub.close()


def _ask(dealer: zmq.Socket[Any], frames: list[bytes]) -> list[list[bytes]]:
    dealer.send_multipart(frames)
    replies = []
    while dealer.poll(5000):
        msg = dealer.recv_multipart()
        replies.append(msg)
        if len(msg[2]) == 60 and msg[2][2] == codes.TEMPLATE_REQUEST_COMPLETE:
            break
    return replies


def _status(replies: list[list[bytes]]) -> tuple[int, int]:
    done = np.frombuffer(replies[-1][2], schema.REQUEST_COMPLETE)[0]
    return int(done["RequestStatus"]), int(done["RequestID"])


def test_bad_requests_are_answered_invalid_and_change_nothing(start_server: Callable[..., Any]) -> None:
    run = start_server()
    _, snap = run.server.md_endpoints
    ctx = zmq.Context()
    dealer = ctx.socket(zmq.DEALER)
    dealer.setsockopt(zmq.LINGER, 0)
    dealer.connect(snap)
    good = encode_request(Want(codes.MD_FEED_L2, "snapshot", 0, 0), 77, 1)

    def spoiled(at: int, value: int) -> bytes:
        data = bytearray(good)
        data[at] = value
        return bytes(data)

    bad = {
        "short": [good[:59]],
        "long": [good + b"\0"],
        "two frames": [good, good],
        "order-entry template": [spoiled(2, codes.TEMPLATE_NEW_ORDER_SINGLE)],
        "block length": [spoiled(0, 51)],
        "schema": [spoiled(4, 60)],
        "version": [spoiled(6, 1)],
        "RptSeq": [spoiled(20, 1)],
        "MatchEventIndicator": [spoiled(59, 0x80)],
        "Reserved": [spoiled(40, 1)],
        "feed 0": [spoiled(32, 0)],
        "feed 9": [spoiled(32, 9)],
        "unknown SecurityID": [spoiled(16, 99)],
        "replay count 0": [encode_request(Want(codes.MD_FEED_L3, "replay", 0, 0, start=1, count=0), 5, 1)],
        "replay from 0": [encode_request(Want(codes.MD_FEED_L3, "replay", 0, 0, start=0, count=3), 5, 1)],
    }
    rng = np.random.default_rng(3)
    for i in range(40):
        bad[f"noise {i}"] = [rng.integers(0, 256, int(rng.integers(0, 130)), dtype=np.uint8).tobytes()]
    for name, frames in bad.items():
        replies = _ask(dealer, frames)
        assert replies, name
        status, _ = _status(replies)
        assert status == codes.REQUEST_INVALID, name
        assert len(replies) == 1, name
    replies = _ask(dealer, [good])
    assert _status(replies) == (codes.REQUEST_COMPLETED, 77)
    assert run.server.md.requests == len(bad) + 1
    assert len(replies) == 1 + 3  # one instrument per packet: SnapshotStart, references, SnapshotEnd
    c = run.client(1)
    oid = c.new_order(security_id=1, side="buy", qty=1, price="65000.00", tif="gtc")
    c.flush()
    assert c.wait_until(lambda cl: cl.order(oid).status == "new")
    dealer.close(0)
    ctx.term()


def test_a_failing_feed_socket_never_stops_trading(start_server: Callable[..., Any]) -> None:
    run = start_server()
    pub, snap = run.server.md_endpoints
    sub = Subscriber(pub, snap)
    clients = [run.client(1), run.client(2)]
    rng = random.Random(8)
    _trade(clients, rng, 2)
    _quiet(clients, run.server)
    assert _synced(sub, run.server.engine) == []
    md = run.server.md
    real = md.endpoint.publish

    def broken(items: Any) -> None:
        raise zmq.ZMQError(zmq.ETERM)

    md.endpoint.publish = broken  # the loop's thread picks it up at its next send
    _trade(clients, rng, 3)
    _quiet(clients, run.server)
    assert md.send_errors > 0
    assert run.server.metrics.totals.md_send_errors > 0  # counted for the status line and Prometheus
    assert run.thread.is_alive()
    assert all(not c.rejects for c in clients)
    md.endpoint.publish = real
    _trade(clients, rng, 1)  # the next packets show the subscriber its gap
    _quiet(clients, run.server)
    assert _synced(sub, run.server.engine) == []
    assert sum(s.stats.gaps for s in sub.feeds.values()) > 0
    sub.close()
