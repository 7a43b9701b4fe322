"""The subscriber's books in shared arrays (``book.Book`` over ``_store.Store``) read exactly
as the dictionary books they replaced (``qfix.testing.reference_book.ReferenceBook``, the
oracle), record by record, over random record streams.

Each stream interleaves the records of several instruments that share one store: every
template a book applies (and some no book knows), on both sides and on sides coded
neither Bid nor Offer, OrderIDs drawn from a small pool per instrument and prices from a
small set so that adds collide and levels fill and empty, updates of orders the book
does not hold, L2 actions that do not fit, NULL prices, values with the top bit set
(u64 sizes and TransactTimes at or above 2^63, negative prices), and ``clear`` of each
feed at random moments. After every record both books must agree on whether it raised
KeyError (a record that does not fit) and on everything they read. A long stream grows
the store's tables several times and more than 256 instruments grow its instrument rows.

OrderIDs stay below 2^63 and apart between instruments in these streams; the tests at
the end cover an OrderID with the top bit set and one OrderID on two instruments of one
store (both found by this test in the first version of the store, and fixed).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from qfix.marketdata._live import new_store
from qfix.marketdata._store import Store
from qfix.marketdata.book import BID, OFFER, Book
from qfix.testing.reference_book import ReferenceBook
from qfix.wire import codes
from qfix.wire.codec import new_records

U32 = (1 << 32) - 1
U64 = (1 << 64) - 1
I64_MIN = -(1 << 63)
I64_MAX = (1 << 63) - 1
FEEDS = (codes.MD_FEED_L3, codes.MD_FEED_L2, codes.MD_FEED_BBO, codes.MD_FEED_TRD)
#: MDEntryType bytes: Bid, Offer, and bytes that are neither (both books read them as Bid)
SIDE_BYTES = (codes.MD_ENTRY_BID, codes.MD_ENTRY_OFFER, 0, ord("2"), 0xFF)
SIDE_WEIGHTS = (45, 45, 4, 3, 3)
#: MDUpdateAction bytes: New, Change, Delete, and one that is none (read as a Change)
ACTIONS = (codes.MD_UPDATE_NEW, codes.MD_UPDATE_CHANGE, codes.MD_UPDATE_DELETE, 7)
ACTION_WEIGHTS = (40, 30, 25, 5)
#: templates neither book applies (both skip them); 999 is no template at all
UNKNOWN = (codes.TEMPLATE_SNAPSHOT_END, codes.TEMPLATE_CHANNEL_HEARTBEAT, codes.TEMPLATE_REQUEST_COMPLETE, 999)

Pair = tuple[Book, ReferenceBook]


class Stream:
    """Random records for a set of instruments; reads the reference books to aim most
    updates at orders and levels they hold, the rest anywhere."""

    def __init__(
        self,
        seed: int,
        securities: list[int],
        refs: dict[int, ReferenceBook],
        *,
        pool: int = 24,
        prices: int = 6,
        add_bias: float = 0.0,
        clear_rate: float = 0.004,
    ) -> None:
        self.rng = random.Random(seed)
        self.securities = securities
        self.refs = refs
        self.add_bias = add_bias
        self.clear_rate = clear_rate
        # OrderIDs apart between instruments, below 2^63; "unknown" ones are never added
        self.pools = {sec: [(k + 1) * 1_000_003 + i for i in range(pool)] for k, sec in enumerate(securities)}
        self.pools[securities[0]][0] = 0  # OrderID 0 is an OrderID like any other
        self.unknown = {sec: [(k + 1) * 1_000_003 + pool + 1 + i for i in range(4)] for k, sec in enumerate(securities)}
        self.prices = {sec: [(100 + k) * 10**9 + i * 10**7 for i in range(prices)] for k, sec in enumerate(securities)}
        self.clock = 1_000

    # --- field values ---------------------------------------------------------------------

    def time(self) -> int:
        r = self.rng.random()
        if r < 0.005:
            return self.rng.randrange(1 << 63, 1 << 64)  # top bit set
        if r < 0.08:
            return self.rng.randrange(0, self.clock + 1)  # out of order: must not move time back
        self.clock += self.rng.randrange(1, 1_000)
        return self.clock

    def price(self, sec: int) -> int:
        r = self.rng.random()
        if r < 0.01:
            return self.rng.choice((I64_MIN, -1, I64_MAX - 1, 0))
        if r < 0.03:
            return -self.rng.choice(self.prices[sec])  # negative prices
        return self.rng.choice(self.prices[sec])

    def size32(self) -> int:
        r = self.rng.random()
        if r < 0.02:
            return self.rng.choice((0, U32, 1 << 31))
        return self.rng.randrange(1, 5_000)

    def size64(self) -> int:
        r = self.rng.random()
        if r < 0.05:
            return self.rng.choice((0, U64, 1 << 63, (1 << 63) - 1, self.rng.randrange(1 << 63, 1 << 64)))
        return self.rng.randrange(1, 1_000_000)

    def side_byte(self) -> int:
        return self.rng.choices(SIDE_BYTES, SIDE_WEIGHTS)[0]

    def order_id(self, sec: int, live: float = 0.75) -> int:
        """An OrderID the reference holds (mostly), one of its pool, or one never added."""
        held = self.refs[sec].orders
        r = self.rng.random()
        if held and r < live:
            return int(self.rng.choice(list(held)))
        if r < 0.97:
            return self.rng.choice(self.pools[sec])
        return self.rng.choice(self.unknown[sec])

    # --- records --------------------------------------------------------------------------

    def __iter__(self) -> Iterator[tuple[int, int | None, bytes]]:
        """(SecurityID, feed to clear or None, record bytes) forever."""
        while True:
            sec = self.rng.choice(self.securities)
            if self.rng.random() < self.clear_rate:
                yield sec, self.rng.choice(FEEDS), b""
                continue
            yield sec, None, self.record(sec)

    def record(self, sec: int) -> bytes:
        rng = self.rng
        new_level = False
        if rng.random() < self.add_bias:  # build the books up: an AddOrder or a new L2 level
            new_level = rng.random() < 0.3
            template = codes.TEMPLATE_BOOK_LEVEL if new_level else codes.TEMPLATE_ADD_ORDER
        else:
            template = rng.choices(
                (31, 40, 32, 33, 34, 35, 37, 38, 36, 30, 39, 47, 48, 46, -1),
                (18, 4, 10, 6, 8, 10, 18, 5, 4, 2, 1, 1, 1, 1, 2),
            )[0]
        if template == -1:
            template = rng.choice(UNKNOWN)
        base = template if template in (30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 46, 47, 48, 41, 42, 45) else 31
        r = new_records(base)
        r["templateId"] = template
        r["TransactTime"] = self.time()
        r["SecurityID"] = sec
        r["RptSeq"] = rng.randrange(1 << 32)
        if base in (31, 40):
            r["OrderID"] = self.order_id(sec, live=0.15)
            r["MDEntryPx"] = self.price(sec)
            r["MDEntrySize"] = self.size32()
            r["MDEntryType"] = self.side_byte()
        elif base == 32:
            r["OrderID"] = self.order_id(sec)
            r["LastPx"] = self.price(sec)
            r["LastQty"] = self.size32()
            r["LeavesQty"] = 0 if rng.random() < 0.5 else self.size32()
            r["TradeID"] = rng.randrange(1 << 64)
            r["AggressorSide"] = rng.randrange(3)
        elif base == 33:
            r["OrderID"] = self.order_id(sec)
            r["CanceledQty"] = self.size32()
            r["LeavesQty"] = self.size32()
        elif base == 34:
            r["OrderID"] = self.order_id(sec)
        elif base == 35:
            orig = self.order_id(sec)
            r["OrigOrderID"] = orig
            x = rng.random()
            held = self.refs[sec].orders
            if x < 0.2:
                r["OrderID"] = orig  # same OrderID: back of the queue
            elif x < 0.3 and held:
                r["OrderID"] = rng.choice(list(held))  # one it holds: does not fit
            else:
                r["OrderID"] = self.order_id(sec, live=0.05)
            if rng.random() < 0.35 and orig in held:
                r["MDEntryPx"] = held[orig][1]  # same price
            else:
                r["MDEntryPx"] = self.price(sec)
            r["MDEntrySize"] = self.size32()
            r["MDEntryType"] = self.side_byte()  # neither book reads it: the side stays
        elif base == 36:
            r["TradeID"] = rng.randrange(1 << 64)
            r["LastPx"] = self.price(sec)
            r["LastQty"] = self.size32()
            r["AggressorSide"] = rng.randrange(256)
            r["TradeCondition"] = rng.randrange(256)
        elif base == 37:
            levels = self.refs[sec].levels
            if levels and not new_level and rng.random() < 0.5:
                side, price = rng.choice(list(levels))
                r["MDEntryType"] = codes.MD_ENTRY_OFFER if side == OFFER else rng.choice((codes.MD_ENTRY_BID, 0))
                r["MDEntryPx"] = price
            else:
                r["MDEntryType"] = self.side_byte()
                r["MDEntryPx"] = self.price(sec)
            r["MDEntrySize"] = self.size64()
            r["NumberOfOrders"] = self.size32()
            r["MDUpdateAction"] = codes.MD_UPDATE_NEW if new_level else rng.choices(ACTIONS, ACTION_WEIGHTS)[0]
        elif base == 38:
            r["BidPx"] = codes.NULL_PRICE if rng.random() < 0.2 else self.price(sec)
            r["OfferPx"] = codes.NULL_PRICE if rng.random() < 0.2 else self.price(sec)
            r["BidSize"] = self.size64()
            r["OfferSize"] = self.size64()
        elif base in (30, 39):
            r["TradingStatus"] = rng.randrange(256)
        elif base == 46:
            r["IndicativePx"] = codes.NULL_PRICE if rng.random() < 0.3 else self.price(sec)
            r["MatchedQty"] = self.size64()
            r["ImbalanceQty"] = self.size64()
            r["ImbalanceSide"] = rng.randrange(3)
        elif base == 47:
            r["MinPriceIncrement"] = rng.choice((1, 10**7, -5, I64_MAX))
            r["MaxTradeVol"] = self.size32()
            r["RoundLot"] = self.size32()
            name = rng.choice((b"AAPL", b"X" * 16, b"\xffbad\x80", b"", b"AB\0CD"))
            r["Symbol"] = np.frombuffer(name.ljust(16, b"\0"), np.uint8)
            r["TradingStatus"] = rng.randrange(256)
        elif base == 48:
            for limit in ("LowLimitPrice", "HighLimitPrice", "MaxNotional", "Collar"):
                r[limit] = self.price(sec)
        return bytes(r.tobytes())


# --- applying and comparing ------------------------------------------------------------------


def _apply(book: Book | ReferenceBook, template: int, data: Any, at: int) -> bool:
    """Whether the record raised KeyError (did not fit)."""
    try:
        book.apply(template, data, at)
    except KeyError:
        return True
    return False


def _step(pair: Pair, feed: int | None, data: bytes, rng: random.Random, where: str) -> bool:
    """Clear a feed or apply a record to both books; whether the record did not fit."""
    book, ref = pair
    if feed is not None:
        book.clear(feed)
        ref.clear(feed)
        return False
    template = int.from_bytes(data[2:4], "little")
    # the record alone, inside a larger buffer at an offset, or a memoryview of one
    how = rng.random()
    at = 0
    buf: Any = data
    if how < 0.1:
        at = rng.randrange(1, 64)
        buf = bytes(rng.randrange(256) for _ in range(at)) + data + b"\xaa" * rng.randrange(8)
    elif how < 0.15:
        buf = memoryview(bytearray(data))
    misfit = _apply(book, template, buf, at)
    misfit_ref = _apply(ref, template, buf, at)
    assert misfit == misfit_ref, f"{where}: template {template} KeyError book={misfit} reference={misfit_ref}"
    return misfit


def _compare(pair: Pair, where: str, *, full: bool) -> None:
    book, ref = pair
    assert book.orders == ref.orders, where
    assert {key: list(q) for key, q in book.queues.items()} == {key: list(q) for key, q in ref.queues.items()}, where
    assert book.levels == ref.levels, where
    assert book.bbo == ref.bbo, where
    assert book.time == ref.time, where
    assert book.status == ref.status, where
    assert book.trade_count == ref.trade_count, where
    assert book.volume == ref.volume, where
    assert book.indicative == ref.indicative, where
    assert book.definition == ref.definition, where
    assert list(book.trades) == list(ref.trades), where
    if not full:
        return
    for side in (BID, OFFER):
        assert book.l3_levels(side) == ref.l3_levels(side), where
        assert book.l2_levels(side) == ref.l2_levels(side), where
        for level in ref.l3_levels(side):
            assert book.queue(side, level.price) == ref.queue(side, level.price), where
        for level in ref.l2_levels(side):  # a price L2 holds and L3 may not: both empty then
            assert book.queue(side, level.price) == ref.queue(side, level.price), where


def _run(
    seed: int,
    securities: list[int],
    records: int,
    store: Store,
    *,
    full_every: int = 1,
    trade_tape: int = 64,
    **stream: Any,
) -> tuple[dict[int, Pair], int]:
    """Apply ``records`` random records over books of ``securities`` sharing ``store``;
    the records that did not fit are counted and returned with the books."""
    refs = {sec: ReferenceBook(sec, trade_tape=trade_tape) for sec in securities}
    pairs = {sec: (Book(sec, store, trade_tape=trade_tape), refs[sec]) for sec in securities}
    rng = random.Random(seed ^ 0x5EED)
    misfits = 0
    for n, (sec, feed, data) in enumerate(Stream(seed, securities, refs, **stream)):
        if n == records:
            break
        where = f"seed {seed} record {n} instrument {sec}"
        misfits += _step(pairs[sec], feed, data, rng, where)
        _compare(pairs[sec], where, full=full_every == 1)
        if full_every > 1 and n % full_every == 0:
            for other in pairs.values():
                _compare(other, where, full=True)
    for sec, pair in pairs.items():
        _compare(pair, f"seed {seed} at the end, instrument {sec}", full=True)
    return pairs, misfits


# --- the tests -------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(100))
def test_random_streams_over_a_shared_store(seed: int) -> None:
    store = new_store()
    securities = [7, 1_000 + seed, 4_294_967_295, 0]
    _, misfits = _run(seed, securities, 400, store, trade_tape=1 + seed % 8)
    assert len(store.slots) == len(securities)
    assert misfits > 0  # records that do not fit were compared too


def test_every_record_kind_is_seen() -> None:
    """The generator reaches what the streams are meant to exercise (a check of the test)."""
    securities = [1, 2, 3]
    refs = {sec: ReferenceBook(sec) for sec in securities}
    seen: set[Any] = set()
    for n, (sec, feed, data) in enumerate(Stream(0, securities, refs)):
        if n == 5_000:
            break
        ref = refs[sec]
        if feed is not None:
            seen.add(("clear", feed))
            ref.clear(feed)
            continue
        template = int.from_bytes(data[2:4], "little")
        seen.add(template)
        r = np.frombuffer(data, new_records(template if template in (31, 32, 35, 37) else 31).dtype)[0]
        detail: Any = None
        if template == 31:
            detail = ("side", r["MDEntryType"] in (codes.MD_ENTRY_BID, codes.MD_ENTRY_OFFER))
        elif template == 32:
            detail = ("leaves", r["LeavesQty"] > 0, int(r["OrderID"]) in ref.orders)
        elif template == 35:
            orig, new = int(r["OrigOrderID"]), int(r["OrderID"])
            held = orig in ref.orders
            detail = ("replace", held, orig == new, held and new != orig and new in ref.orders)
            if held and new != orig and new not in ref.orders:
                detail += (int(r["MDEntryPx"]) == ref.orders[orig][1],)
        elif template == 37:
            side = OFFER if r["MDEntryType"] == codes.MD_ENTRY_OFFER else BID
            detail = ("level", int(r["MDUpdateAction"]), (side, int(r["MDEntryPx"])) in ref.levels)
        queues_before = len(ref.queues)
        try:
            ref.apply(template, data)
        except KeyError:
            seen.add(("misfit", template))
        seen.add((template, detail))
        if len(ref.queues) < queues_before:
            seen.add("a queue emptied")
        if any(len(q) >= 3 for q in ref.queues.values()):
            seen.add("a queue of three")
    for template in (30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 46, 47, 48, *UNKNOWN):
        assert template in seen, template
    for template in (31, 32, 33, 34, 35, 37, 40):
        assert ("misfit", template) in seen, template
    for feed in FEEDS:
        assert ("clear", feed) in seen, feed
    expected = [
        (31, ("side", False)),  # neither Bid nor Offer
        (32, ("leaves", False, True)),
        (32, ("leaves", True, True)),
        (32, ("leaves", False, False)),
        (32, ("leaves", True, False)),
        (35, ("replace", True, True, False)),  # the same OrderID
        (35, ("replace", True, False, True)),  # to an OrderID the book holds: does not fit
        (35, ("replace", True, False, False, True)),  # another OrderID, the same price
        (35, ("replace", True, False, False, False)),  # another OrderID, another price
        (35, ("replace", False, False, False)),  # an order the book does not hold
        *((37, ("level", action, exists)) for action in ACTIONS for exists in (False, True)),
        "a queue emptied",
        "a queue of three",
    ]
    for case in expected:
        assert case in seen, case


def test_long_stream_grows_the_tables() -> None:
    """Thousands of resting orders over 40 instruments: the store grows its order table
    from 1,024 rows at least three times and its L3 and L2 level tables at least once."""
    store = new_store()
    first = (store.orders.shape[0], store.l3.shape[0], store.l2.shape[0])
    securities = list(range(101, 141))
    pairs, _ = _run(
        1234, securities, 20_000, store, full_every=1_000, pool=200, prices=24, add_bias=0.55, clear_rate=0.0005
    )
    assert sum(len(ref.orders) for _, ref in pairs.values()) > 2_048
    assert store.orders.shape[0] >= 8 * first[0]
    assert store.l3.shape[0] >= 2 * first[1]
    assert store.l2.shape[0] >= 2 * first[2]


def test_more_instruments_than_the_first_rows() -> None:
    """300 instruments on one store: its instrument rows (256 at first) grow while books
    hold orders and levels."""
    store = new_store()
    securities = [10_000 + 17 * k for k in range(300)]
    _run(99, securities, 6_000, store, full_every=1_500, pool=8, prices=3)
    assert store.insts.shape[0] > 256


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(100, 300))
def test_random_streams_over_a_shared_store_slow(seed: int) -> None:
    store = new_store()
    _run(seed, [seed, 2 * seed + 1, 5, 6, 7, 8], 2_000, store, pool=40, prices=8)


@pytest.mark.slow
def test_long_stream_grows_the_tables_slow() -> None:
    store = new_store()
    _run(
        4321,
        list(range(1, 201)),
        120_000,
        store,
        full_every=10_000,
        pool=200,
        prices=20,
        add_bias=0.4,
        clear_rate=0.0002,
    )
    assert store.orders.shape[0] >= 32 * 1024


# --- known divergences -----------------------------------------------------------------------


def _add(sec: int, order_id: int, price: int, side: int = codes.MD_ENTRY_BID) -> bytes:
    r = new_records(codes.TEMPLATE_ADD_ORDER)
    r["TransactTime"] = 1
    r["SecurityID"] = sec
    r["OrderID"] = order_id
    r["MDEntryPx"] = price
    r["MDEntrySize"] = 3
    r["MDEntryType"] = side
    return bytes(r.tobytes())


def test_order_id_with_the_top_bit_set() -> None:
    book, ref = Book(1), ReferenceBook(1)
    data = _add(1, (1 << 63) + 7, 100)
    book.apply(codes.TEMPLATE_ADD_ORDER, data)
    ref.apply(codes.TEMPLATE_ADD_ORDER, data)
    assert book.orders == ref.orders == {(1 << 63) + 7: (BID, 100, 3)}


def test_same_order_id_on_two_instruments_of_one_store() -> None:
    store = new_store()
    pairs = {sec: (Book(sec, store), ReferenceBook(sec)) for sec in (1, 2)}
    misfits = {}
    for sec, price in ((1, 100), (2, 200)):
        data = _add(sec, 42, price)
        misfits[sec] = [_apply(b, codes.TEMPLATE_ADD_ORDER, data, 0) for b in pairs[sec]]
    assert misfits[2] == [False, False]
    for pair in pairs.values():
        _compare(pair, "after adding OrderID 42 to instruments 1 and 2", full=True)


def test_an_order_update_stays_in_its_instrument() -> None:
    store = new_store()
    pairs = {sec: (Book(sec, store), ReferenceBook(sec)) for sec in (1, 2)}
    data = _add(1, 42, 100)
    for b in pairs[1]:
        b.apply(codes.TEMPLATE_ADD_ORDER, data)
    r = new_records(codes.TEMPLATE_ORDER_DELETE)
    r["TransactTime"] = 2
    r["SecurityID"] = 2
    r["OrderID"] = 42
    misfit = [_apply(b, codes.TEMPLATE_ORDER_DELETE, r.tobytes(), 0) for b in pairs[2]]
    assert misfit == [True, True]  # instrument 2 holds no order 42
    for pair in pairs.values():
        _compare(pair, "after OrderDelete 42 on instrument 2", full=True)


@pytest.mark.parametrize("seed", range(20))
def test_apply_all_equals_applying_one_by_one(seed: int) -> None:
    """A snapshot body is applied in one call (``Book.apply_all``): the same books as record
    by record, stopping with KeyError at the first record that does not fit (the records
    before it applied), and skipping records of a newer version."""
    store = new_store()
    sec = 11
    ref = ReferenceBook(sec)
    book = Book(sec, store)
    rng = random.Random(seed)
    chunk: list[bytes] = []
    stopped = 0
    for n, (_, feed, data) in enumerate(Stream(seed, [sec], {sec: ref})):
        if n == 600:
            break
        if feed is not None:
            continue
        if rng.random() < 0.05:
            data = data[:6] + b"\x01\x00" + data[8:]  # version 1: skipped by both
        chunk.append(data)
        if rng.random() > 0.1:
            continue
        misfit_ref = False
        for record in chunk:
            if int.from_bytes(record[6:8], "little") > codes.SCHEMA_VERSION:
                continue
            if _apply(ref, int.from_bytes(record[2:4], "little"), record, 0):
                misfit_ref = True
                break
        try:
            book.apply_all(b"".join(chunk))
            misfit = False
        except KeyError:
            misfit = True
        assert misfit == misfit_ref, f"seed {seed} record {n}"
        stopped += misfit
        _compare((book, ref), f"seed {seed} record {n}", full=True)
        chunk = []
    assert stopped > 0  # chunks that stopped at a record that does not fit were compared too


def test_a_short_record_is_refused() -> None:
    book = Book(5)
    data = _add(5, 1, 100)
    with pytest.raises(ValueError, match="60 bytes"):
        book.apply(codes.TEMPLATE_ADD_ORDER, data[:20])
    with pytest.raises(ValueError, match="60 bytes"):
        book.apply(codes.TEMPLATE_ADD_ORDER, data, 1)
    assert book.orders == {}
