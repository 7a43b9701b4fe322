"""The book digests `qfix bench net` compares across processes: a subscriber rebuilt from an
engine's feeds digests like the engine; one change on either side shows."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from qfix.engine import Engine
from qfix.journal.entries import Batch
from qfix.journal.replay import EngineDriver
from qfix.marketdata import feeds
from qfix.marketdata.book import OFFER, Book
from qfix.marketdata.publisher import Publisher
from qfix.marketdata.service import SnapshotService
from qfix.marketdata.subscriber import SubscriberCore
from qfix.server.feed import book_view, reference_records
from qfix.testing.generators import default_random_config, default_random_instruments, random_stream
from qfix.testing.marketdata import (
    book_differences,
    combined_digest,
    engine_digests,
    feed_messages,
    subscriber_digests,
)
from qfix.wire import codes
from qfix.wire.codec import new_records


def _follow() -> tuple[Engine, SubscriberCore, EngineDriver, Publisher]:
    """An engine publishing as the server does, and a subscriber that joined by snapshot."""
    engine = Engine(default_random_instruments(), default_random_config())
    driver = EngineDriver(engine, out_size=64)
    publisher = Publisher([i.security_id for i in engine.instruments])
    service = SnapshotService(publisher, lambda security_id: book_view(engine, 1), replay_max_records=500)
    core = SubscriberCore(feeds.ALL_FEEDS)
    msgs: list[list[bytes]] = [m for f in feeds.ALL_FEEDS for m in feed_messages(list(publisher.reset(f, 1)))]
    msgs += feed_messages(publisher.publish(reference_records(engine, 1).reshape(-1, 60), 1))
    for msg in msgs:
        core.feed_message(msg)
    while (request := core.next_request(0.0, 0)[0]) is not None:
        for msg in feed_messages(list(service.handle(request, 1).packets)):
            core.reply_message(msg)
    assert core.idle()
    return engine, core, driver, publisher


def _step(engine: Engine, driver: EngineDriver, publisher: Publisher, batch: Any, now: int) -> list[list[bytes]]:
    md: list[Any] = []

    def dispatch(out: Any) -> None:
        md.append(out["message"][out["dest"] == codes.MD_DEST])

    driver.apply(Batch(batch), dispatch)
    records = np.concatenate(md) if md else np.zeros((0, 60), np.uint8)
    return feed_messages(publisher.publish(records, now))


def _apply(book: Book, template_id: int, **fields: Any) -> None:
    record = new_records(template_id)
    record["SecurityID"] = book.security_id
    for name, value in fields.items():
        record[name] = value
    book.apply(template_id, record.tobytes())


def _requeue(book: Book, side: int, price: int, order_ids: list[int]) -> None:
    """Put one level's orders in the order given (all deleted, then added again)."""
    shown = {oid: book.orders[oid][2] for oid in order_ids}
    entry = codes.MD_ENTRY_OFFER if side == OFFER else codes.MD_ENTRY_BID
    for oid in order_ids:
        _apply(book, codes.TEMPLATE_ORDER_DELETE, OrderID=oid)
    for oid in order_ids:
        _apply(book, codes.TEMPLATE_ADD_ORDER, OrderID=oid, MDEntryPx=price, MDEntrySize=shown[oid], MDEntryType=entry)


@pytest.mark.parametrize("seed", [1, 2])
def test_a_subscriber_rebuilt_from_the_feeds_digests_like_the_engine(seed: int) -> None:
    engine, core, driver, publisher = _follow()
    stream = random_stream(seed, 2000)
    cut = 1500  # the subscriber follows this far; the rest changes the engine alone
    rng = np.random.default_rng(seed)
    at, now = 0, 2
    while at < cut:
        k = int(rng.integers(1, 65))
        for msg in _step(engine, driver, publisher, stream[at : min(cut, at + k)], now):
            core.feed_message(msg)
        at += k
        now += 1
    assert book_differences(core.books, engine) == []
    mine, theirs = subscriber_digests(core.books), engine_digests(engine)
    assert set(mine) == {i.security_id for i in engine.instruments}
    assert mine == theirs
    assert combined_digest(mine) == combined_digest(theirs)
    assert len(combined_digest(mine)) == 32  # BLAKE2b-128, hex
    assert any(book.orders for book in core.books.values()), "the stream left no resting order to compare"

    # one change on the subscriber's side: one order's displayed quantity (the books
    # live in the subscriber's arrays: they change only by records applied to them)
    sec, book = next((k, b) for k, b in sorted(core.books.items()) if b.orders)
    oid = next(iter(book.orders))
    shown = book.orders[oid][2]
    _apply(book, codes.TEMPLATE_ORDER_REDUCED, OrderID=oid, LeavesQty=shown + 1)
    changed = subscriber_digests(core.books)
    assert [k for k in changed if changed[k] != theirs[k]] == [sec]
    assert combined_digest(changed) != combined_digest(theirs)
    _apply(book, codes.TEMPLATE_ORDER_REDUCED, OrderID=oid, LeavesQty=shown)
    assert subscriber_digests(core.books) == theirs

    # queue order counts: swap the first two orders of a level
    qbook, (qside, qprice), queue = next(
        (b, key, list(q)) for b in core.books.values() for key, q in b.queues.items() if len(q) > 1
    )
    first, second, *rest = queue
    _requeue(qbook, qside, qprice, [second, first, *rest])
    assert combined_digest(subscriber_digests(core.books)) != combined_digest(theirs)
    _requeue(qbook, qside, qprice, queue)
    assert subscriber_digests(core.books) == theirs

    # L2 and BBO count apart from L3
    (lside, lprice), (size, count) = next(iter(book.levels.items()))
    entry = codes.MD_ENTRY_OFFER if lside == OFFER else codes.MD_ENTRY_BID
    level = {"MDEntryPx": lprice, "MDEntryType": entry, "MDUpdateAction": codes.MD_UPDATE_CHANGE}
    _apply(book, codes.TEMPLATE_BOOK_LEVEL, MDEntrySize=size + 1, NumberOfOrders=count, **level)
    assert subscriber_digests(core.books)[sec] != theirs[sec]
    _apply(book, codes.TEMPLATE_BOOK_LEVEL, MDEntrySize=size, NumberOfOrders=count, **level)
    bid, bid_size, offer, offer_size = book.bbo
    null = codes.NULL_PRICE
    top = {"BidPx": null if bid is None else bid, "BidSize": bid_size}
    _apply(book, codes.TEMPLATE_BEST_BID_OFFER, OfferPx=null if offer is not None else 1, OfferSize=0, **top)
    assert subscriber_digests(core.books)[sec] != theirs[sec]
    _apply(book, codes.TEMPLATE_BEST_BID_OFFER, OfferPx=null if offer is None else offer, OfferSize=offer_size, **top)
    book.status ^= 1
    assert subscriber_digests(core.books)[sec] != theirs[sec]
    book.status ^= 1
    assert subscriber_digests(core.books) == theirs

    # and one change on the engine's side: one more message, not yet seen by the subscriber
    for i in range(cut, stream.size):
        _step(engine, driver, publisher, stream[i : i + 1], now)
        if engine_digests(engine) != theirs:
            break
    assert combined_digest(engine_digests(engine)) != combined_digest(theirs)
