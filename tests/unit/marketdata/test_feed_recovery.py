"""The feed end to end without sockets: engine -> publisher -> (lossy) pipe -> subscriber
core, with the snapshot service answering its requests; the rebuilt books must equal the
engine's own, whatever was lost on the way."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from qfix.engine import Engine
from qfix.journal.entries import Batch, SetPhase
from qfix.journal.replay import EngineDriver
from qfix.marketdata import _recv, feeds
from qfix.marketdata.publisher import TEMPLATE_ID_AT, Chunk, Packet, Publisher, column
from qfix.marketdata.service import SnapshotService
from qfix.marketdata.subscriber import SubscriberCore, warm_up
from qfix.server.feed import book_view, reference_records
from qfix.testing.generators import default_random_config, default_random_instruments, random_stream
from qfix.testing.marketdata import book_differences, feed_messages, subscriber_digests
from qfix.wire import codes, schema

_LAST_QTY = int(schema.TRADE.fields["LastQty"][1])
ALL = (codes.MD_FEED_L3, codes.MD_FEED_L2, codes.MD_FEED_BBO, codes.MD_FEED_TRD)


class Exchange:
    """An engine whose market data goes through a publisher, as in the server."""

    def __init__(self, seed: int = 1, n: int = 3000) -> None:
        self.instruments = default_random_instruments()
        self.engine = Engine(self.instruments, default_random_config())
        self.driver = EngineDriver(self.engine, out_size=64)
        self.publisher = Publisher([i.security_id for i in self.engine.instruments], retention=1_000_000)
        self.service = SnapshotService(self.publisher, self._view, replay_max_records=500)
        self.stream = random_stream(seed, n)
        self.at = 0
        self.now = 1
        #: Trade records the engine produced, and their quantity
        self.trades = 0
        self.volume = 0

    def _view(self, security_id: int) -> Any:
        # as the server builds them: one instrument's orders when one is asked for
        inst = int(self.publisher.index_of(np.array([security_id]))[0]) if security_id else None
        return book_view(self.engine, 7, inst)

    def start(self) -> list[list[bytes]]:
        items: list[Packet | Chunk] = [p for f in feeds.ALL_FEEDS for p in self.publisher.reset(f, self.now)]
        items += self.publisher.publish(reference_records(self.engine, self.now).reshape(-1, 60), self.now)
        return feed_messages(items)

    def step(self, rng: np.random.Generator) -> list[list[bytes]]:
        """One engine call (a batch of 1-64 records) and its feed packets."""
        k = int(rng.integers(1, 65))
        batch = self.stream[self.at : self.at + k]
        self.at += k
        self.now += 1
        md: list[Any] = []

        def dispatch(out: Any) -> None:
            md.append(out["message"][out["dest"] == codes.MD_DEST])

        self.driver.apply(Batch(batch), dispatch)
        records = np.concatenate(md) if md else np.zeros((0, 60), np.uint8)
        trades = records[column(records, TEMPLATE_ID_AT, "<u2") == codes.TEMPLATE_TRADE]
        self.trades += trades.shape[0]
        self.volume += int(np.ascontiguousarray(trades[:, _LAST_QTY : _LAST_QTY + 4]).view("<u4").sum())
        return feed_messages(self.publisher.publish(records, self.now))

    @property
    def done(self) -> bool:
        return self.at >= self.stream.size

    def heartbeats(self) -> list[list[bytes]]:
        """What an idle server sends: each feed's last ChannelSeqNum (reveals a lost tail)."""
        self.now += 1
        return feed_messages([self.publisher.heartbeat(f, self.now) for f in feeds.ALL_FEEDS])

    def answer(self, request: bytes) -> list[list[bytes]]:
        return feed_messages(list(self.service.handle(request, self.now).packets))


def _run(
    ex: Exchange,
    core: SubscriberCore,
    rng: np.random.Generator,
    lose: Callable[[list[bytes]], bool],
    *,
    join_after: int = 0,
    reply_every: int = 3,
) -> None:
    """Drive the exchange to the end, delivering feed messages unless ``lose`` says so;
    the subscriber's requests are answered every ``reply_every`` steps (replies lag, as
    they do over a socket), and fully at the end."""
    first = ex.start()
    if not join_after:
        for msg in first:
            core.feed_message(msg)
    steps = 0
    while not ex.done:
        msgs = ex.step(rng)
        steps += 1
        if steps > join_after:
            for msg in msgs:
                if not lose(msg):
                    core.feed_message(msg)
        if steps > join_after and steps % reply_every == 0:
            _serve(ex, core, rounds=1)
    for msg in ex.heartbeats():
        core.feed_message(msg)
    _serve(ex, core, rounds=1000)


def _serve(ex: Exchange, core: SubscriberCore, rounds: int) -> None:
    for _ in range(rounds):
        request, _ = core.next_request(0.0, 0)
        if request is None:
            return
        for msg in ex.answer(request):
            core.reply_message(msg)


def _check(ex: Exchange, core: SubscriberCore) -> None:
    assert core.idle(), f"open gaps {core.open_gaps()}"
    assert book_differences(core.books, ex.engine) == []
    for k, book in core.books.items():
        d = book.definition
        assert d is not None and d.symbol == next(i.symbol for i in ex.instruments if i.security_id == k)


@pytest.mark.parametrize("seed", [1, 2])
def test_a_lossless_feed_rebuilds_every_book(seed: int) -> None:
    ex = Exchange(seed)
    core = SubscriberCore(ALL)
    _run(ex, core, np.random.default_rng(seed), lambda msg: False)
    _check(ex, core)
    assert all(s.stats.gaps == 0 and s.stats.bad_packets == 0 for s in core.feeds.values())


@pytest.mark.parametrize("loss", [0.02, 0.3])
@pytest.mark.parametrize("seed", [3, 4])
def test_lost_packets_are_recovered(loss: float, seed: int) -> None:
    ex = Exchange(seed)
    core = SubscriberCore(ALL)
    rng = np.random.default_rng(4)
    _run(ex, core, rng, lambda msg: bool(rng.random() < loss))
    _check(ex, core)
    assert sum(s.stats.gaps for s in core.feeds.values()) > 0
    assert sum(s.stats.replays for s in core.feeds.values()) > 0


def test_a_late_joiner_starts_from_a_snapshot() -> None:
    ex = Exchange(5)
    core = SubscriberCore(ALL)
    _run(ex, core, np.random.default_rng(5), lambda msg: False, join_after=20)
    _check(ex, core)
    assert all(s.stats.snapshots > 0 for s in core.feeds.values())


def test_one_instrument_subscriber_keeps_only_its_book() -> None:
    ex = Exchange(6)
    core = SubscriberCore([codes.MD_FEED_L3], security_ids=[2])
    rng = np.random.default_rng(6)
    topics = core.topics()
    _run(ex, core, rng, lambda msg: not any(msg[0].startswith(t) for t in topics) or rng.random() < 0.1)
    assert core.idle()
    assert set(core.books) == {2}
    view = book_view(ex.engine, 0)
    k = [i.security_id for i in ex.engine.instruments].index(2)
    want = {int(o["order_id"]) for o in view.orders if o["inst"] == k}
    assert set(core.books[2].orders) == want


def test_a_reset_drops_the_books_and_recovers() -> None:
    ex = Exchange(7)
    core = SubscriberCore(ALL)
    rng = np.random.default_rng(7)
    for msg in ex.start():
        core.feed_message(msg)
    for _ in range(30):
        for msg in ex.step(rng):
            core.feed_message(msg)
    _serve(ex, core, 100)
    for msg in ex.start():  # the publisher restarts its numbering (a new trading day)
        core.feed_message(msg)
    while not ex.done:
        for msg in ex.step(rng):
            core.feed_message(msg)
    _serve(ex, core, 1000)
    _check(ex, core)
    assert all(s.stats.resets >= 2 for s in core.feeds.values())


def test_a_phase_change_reaches_every_feed() -> None:
    ex = Exchange(8, n=200)
    core = SubscriberCore(ALL)
    rng = np.random.default_rng(8)
    _run(ex, core, rng, lambda msg: False)
    md: list[Any] = []
    ex.driver.apply(SetPhase(10**18, (1,), 4), lambda out: md.append(out["message"][out["dest"] == codes.MD_DEST]))
    for msg in feed_messages(ex.publisher.publish(np.concatenate(md), 9)):
        core.feed_message(msg)
    assert all(core.books[1].status == codes.TRADING_STATUS_HALT for _ in core.feeds)
    _check(ex, core)


@pytest.mark.parametrize("seed", [3, 4, 5])
def test_the_trade_tape_survives_loss_and_busy_answers(seed: int) -> None:
    """Gaps of the tape are replayed, never papered over by a snapshot (which holds no
    trades), also when the service answers every other request Busy."""
    ex = Exchange(seed)
    core = SubscriberCore(ALL)
    rng = np.random.default_rng(seed)
    clock = 0.0
    asked = 0

    def serve(rounds: int) -> None:
        nonlocal clock, asked
        for _ in range(rounds):
            clock += 1.0  # past any backoff
            request, _ = core.next_request(clock, 0)
            if request is None:
                return
            asked += 1
            reply = ex.service.busy(request, ex.now) if asked % 2 else ex.service.handle(request, ex.now)
            for msg in feed_messages(list(reply.packets)):
                core.reply_message(msg)

    for msg in ex.start():
        core.feed_message(msg)
    serve(1000)  # the first snapshots before any trade: the tape starts complete
    tape = core.feeds[codes.MD_FEED_TRD].stats
    first_snapshots = tape.snapshots
    while not ex.done:
        for msg in ex.step(rng):
            if rng.random() >= 0.05:
                core.feed_message(msg)
        serve(1)
    for msg in ex.heartbeats():
        core.feed_message(msg)
    serve(10_000)
    _check(ex, core)
    assert tape.gaps > 0 and tape.busy > 0
    assert tape.snapshots == first_snapshots
    assert sum(b.trade_count for b in core.books.values()) == ex.trades
    assert sum(b.volume for b in core.books.values()) == ex.volume


def test_a_one_instrument_view_is_the_whole_views_slice() -> None:
    ex = Exchange(6)
    rng = np.random.default_rng(6)
    ex.start()
    while not ex.done:
        ex.step(rng)
    whole = book_view(ex.engine, 7)
    assert whole.orders.size > 0
    for k in range(len(ex.instruments)):
        one = book_view(ex.engine, 7, k)
        assert np.array_equal(one.orders, whole.orders[whole.orders["inst"] == k])
        assert np.array_equal(one.status, whole.status) and np.array_equal(one.reference, whole.reference)


def _spoil_middle_record(msg: list[bytes]) -> list[bytes]:
    """The packet with its second record turned into an OrderDelete of an order no book
    holds (numbering, instrument and event marks kept)."""
    records = np.frombuffer(msg[2], np.uint8).reshape(-1, 60).copy()
    spoilt = records[1:2].view(schema.ORDER_DELETE)
    spoilt["templateId"] = codes.TEMPLATE_ORDER_DELETE
    spoilt["OrderID"] = 2**63
    return [msg[0], msg[1], records.tobytes()]


def test_a_record_that_does_not_fit_the_book_brings_a_snapshot() -> None:
    """A live record the book cannot take (here: the middle one of an L3 packet deletes an
    unknown order) stops that packet where it failed; the instrument recovers from a
    snapshot that drops the packet's rest, and the books end exact."""
    ex = Exchange(9)
    core = SubscriberCore(ALL)
    rng = np.random.default_rng(9)
    for msg in ex.start():
        core.feed_message(msg)
    _serve(ex, core, 100)
    spoilt = 0
    while not ex.done:
        for msg in ex.step(rng):
            if not spoilt and msg[0].startswith(b"L3.") and len(msg[2]) >= 3 * 60:
                msg = _spoil_middle_record(msg)
                spoilt += 1
            core.feed_message(msg)
        _serve(ex, core, 10)
    _serve(ex, core, 1000)
    assert spoilt == 1
    assert core.feeds[codes.MD_FEED_L3].stats.out_of_step == 1
    _check(ex, core)


@pytest.mark.parametrize("seed", [1, 2])
def test_messages_fed_a_table_at_a_time_as_one_by_one(seed: int) -> None:
    """``feed_messages`` (the Subscriber's path where the socket is read through pyzmq) packs
    many messages into one packet table: the same books, numbering and counts as feeding
    them one at a time, malformed messages (missing, extra and empty frames) included."""
    ex = Exchange(seed)
    single, batched = SubscriberCore(ALL), SubscriberCore(ALL)
    rng = np.random.default_rng(seed)
    first = ex.start()
    for msg in first:
        single.feed_message(msg)
    batched.feed_messages(first)
    _serve(ex, single, rounds=1000)
    _serve(ex, batched, rounds=1000)
    while not ex.done:
        msgs: list[list[bytes]] = []
        for msg in ex.step(rng):
            odd = rng.random()
            if odd < 0.02:
                msgs.append(msg[:1])
            elif odd < 0.04:
                msgs.append([*msg, b"", b"x"])
            elif odd < 0.05:
                msgs.append([msg[0], b"", msg[2]])
            msgs.append(msg)
        for msg in msgs:
            single.feed_message(msg)
        cut = int(rng.integers(0, len(msgs) + 1))
        batched.feed_messages(msgs[:cut])
        batched.feed_messages(msgs[cut:])
        if rng.random() < 0.3:
            _serve(ex, single, rounds=1)
            _serve(ex, batched, rounds=1)
    _serve(ex, single, rounds=1000)
    _serve(ex, batched, rounds=1000)
    for f in ALL:
        assert single.feeds[f].stats == batched.feeds[f].stats
        assert single.feeds[f].next_channel_seq == batched.feeds[f].next_channel_seq
    assert subscriber_digests(single.books) == subscriber_digests(batched.books)
    assert sum(s.stats.bad_packets for s in batched.feeds.values()) > 0
    _check(ex, batched)


def test_warm_up_runs_the_jitted_path() -> None:
    assert warm_up()


def test_a_body_the_arena_cut_short_is_not_taken_for_a_shorter_packet() -> None:
    """A packet whose records ran past the end of the receive arena (a body larger than any
    packet WIRE.md allows) is ignored, never applied as the prefix that fit."""
    ex = Exchange(1)
    core = SubscriberCore(ALL)
    rng = np.random.default_rng(1)
    for first in ex.start():
        core.feed_message(first)
    _serve(ex, core, rounds=1000)
    msg: list[bytes] | None = None
    while msg is None:
        for m in ex.step(rng):
            if msg is None and m[0].startswith(b"L3.") and len(m[2]) >= 2 * 60:
                msg = m
            else:
                core.feed_message(m)
    before = {f: s.stats.packets for f, s in core.feeds.items()}
    last = core.feeds[codes.MD_FEED_L3].next_channel_seq
    kept = 60  # the arena held the topic, the header and one record of the body
    arena = np.frombuffer(msg[0] + msg[1] + msg[2][:kept], np.uint8)
    table = np.zeros((1, _recv.COLUMNS), np.int64)
    table[0, _recv.TOPIC_LEN] = len(msg[0])
    table[0, _recv.HEADER_AT] = len(msg[0])
    table[0, _recv.HEADER_LEN] = len(msg[1])
    table[0, _recv.BODY_AT] = len(msg[0]) + len(msg[1])
    table[0, _recv.BODY_LEN] = len(msg[2])  # the true size, larger than what the arena kept
    table[0, _recv.FRAMES] = 3
    core.feed_packets(arena, table, 1)
    assert {f: s.stats.packets for f, s in core.feeds.items()} == before
    assert core.feeds[codes.MD_FEED_L3].next_channel_seq == last
