"""Checking a subscriber's books against the engine's own (tests and the net benchmark).

:func:`book_differences` compares in one process and says where books differ. Across
processes (the net benchmark's subscriber and server), :func:`subscriber_digests` and
:func:`engine_digests` reduce each side to one BLAKE2b-128 digest per instrument of the
same canonical form, and :func:`combined_digest` folds them into one: equal books, equal
digests. The canonical form of an instrument is its SecurityID and TradingStatus, the BBO
(null prices as ``NULL_PRICE``), the L3 orders (side, price, OrderID, displayed quantity)
bids best to worst then offers best to worst, queue order within a level, and the L2
levels (side, price, size, orders) in the same order, each as packed little-endian rows.
The engine's L2 levels and BBO are derived from its resting limit orders, as the feeds
derive them; a subscriber's come from its L2 and BBO feeds, so all three feeds are checked.

The engine side is read from its raw order table (``Engine.order_records``) and put in
book order here, by sorting on ENGINE.md's priority (price, then PrioSeq), not through the
engine's own book walk that the snapshot service uses: a fault in that walk shows up as a
difference instead of being copied into both sides.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Mapping, Sequence
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from qfix.engine import Engine
from qfix.marketdata.book import BID, OFFER, ORDER_SHOWN, Book, Level
from qfix.marketdata.publisher import Chunk, Packet
from qfix.marketdata.snapshot import VIEW_ORDER
from qfix.server.feed import trading_status
from qfix.wire import codes

__all__ = ["book_differences", "combined_digest", "engine_digests", "feed_messages", "subscriber_digests"]

#: one L3 order of the canonical form
ORDER_ROW: Final = np.dtype([("side", "u1"), ("price", "<i8"), ("order_id", "<u8"), ("shown", "<u8")])
#: one L2 level of the canonical form
LEVEL_ROW: Final = np.dtype([("side", "u1"), ("price", "<i8"), ("size", "<u8"), ("orders", "<u8")])
#: an instrument's SecurityID, TradingStatus and BBO
TOP_ROW: Final = np.dtype(
    [
        ("security_id", "<u8"),
        ("status", "u1"),
        ("bid", "<i8"),
        ("bid_size", "<u8"),
        ("offer", "<i8"),
        ("offer_size", "<u8"),
    ]
)
_COUNT: Final = struct.Struct("<Q")
#: ``side`` of an engine order record that is a buy
_ENGINE_BUY: Final = 0
_DIGEST_SIZE: Final = 16


def _engine_orders(engine: Engine) -> npt.NDArray[Any]:
    """The engine's resting limit orders (``VIEW_ORDER``, PRICE9 prices) by instrument, bids
    then offers, best price first, then PrioSeq: sorted here from the raw table."""
    live = engine.order_records()
    live = live[live["ord_type"] == codes.ORD_TYPE_LIMIT]
    price_key = np.where(live["side"] == _ENGINE_BUY, -live["price"], live["price"])
    live = live[np.lexsort((live["prio"], price_key, live["side"], live["inst"]))]
    tick = engine.instrument_rows()["tick"]
    orders = np.zeros(live.size, VIEW_ORDER)
    orders["inst"] = live["inst"]
    orders["side"] = live["side"] != _ENGINE_BUY
    orders["price"] = live["price"] * tick[live["inst"]]
    orders["shown"] = live["shown"]
    orders["order_id"] = live["order_id"]
    return orders


def feed_messages(items: Sequence[Packet | Chunk]) -> list[list[bytes]]:
    """What a SUB socket would deliver for the publisher's ``items``: each packet's three
    frames (topic, header, records) as bytes, in order."""
    out = []
    for item in items:
        triples = list(item.frames()) if isinstance(item, Chunk) else [item.frames()]
        out += [[bytes(f) for f in t] for t in triples]
    return out


def book_differences(
    books: Mapping[int, Book], engine: Engine, feeds: Sequence[int] = (1, 2, 3), limit: int = 10
) -> list[str]:
    """Where ``books`` differ from ``engine``'s books, per feed given: L3 orders and queue
    order, L2 levels, BBO; and the trading status. Empty if they agree exactly."""
    all_orders = _engine_orders(engine)
    rows = engine.instrument_rows()
    status = trading_status(rows)
    out: list[str] = []
    bounds = np.searchsorted(all_orders["inst"], np.arange(rows.size + 1))
    for k, sec in enumerate(rows["sec_id"].tolist()):
        orders = all_orders[bounds[k] : bounds[k + 1]]
        book = books.get(sec)
        if book is None:
            out.append(f"{sec}: no book")
            continue
        if book.status != int(status[k]):
            out.append(f"{sec}: status {book.status} != engine {int(status[k])}")
        expected_levels = _levels(orders)
        if codes.MD_FEED_L3 in feeds:
            want = {int(o["order_id"]): (int(o["side"]), int(o["price"]), int(o["shown"])) for o in orders}
            got = book.orders  # built afresh on every read
            if got != want:
                extra = sorted(set(got) - set(want))[:3]
                missing = sorted(set(want) - set(got))[:3]
                changed = [oid for oid in set(want) & set(got) if want[oid] != got[oid]][:3]
                out.append(f"{sec}: L3 orders differ: extra {extra} missing {missing} changed {changed}")
            queues = book.queues
            for side in (BID, OFFER):
                for level in expected_levels[side]:
                    queue = [int(o["order_id"]) for o in orders if o["side"] == side and o["price"] == level.price]
                    if list(queues.get((side, level.price), ())) != queue:
                        out.append(f"{sec}: L3 queue at {side}/{level.price} differs")
        if codes.MD_FEED_L2 in feeds:
            for side in (BID, OFFER):
                if book.l2_levels(side) != expected_levels[side]:
                    out.append(f"{sec}: L2 side {side}: {book.l2_levels(side)[:3]} != {expected_levels[side][:3]}")
        if codes.MD_FEED_BBO in feeds:
            bid, offer = expected_levels[BID], expected_levels[OFFER]
            want_bbo = (
                bid[0].price if bid else None,
                bid[0].size if bid else 0,
                offer[0].price if offer else None,
                offer[0].size if offer else 0,
            )
            if book.bbo != want_bbo:
                out.append(f"{sec}: BBO {book.bbo} != {want_bbo}")
        if len(out) >= limit:
            break
    return out[:limit]


def _levels(orders: np.ndarray) -> dict[int, list[Level]]:
    levels: dict[int, list[Level]] = {BID: [], OFFER: []}
    for o in orders:
        side, price, shown = int(o["side"]), int(o["price"]), int(o["shown"])
        side_levels = levels[side]
        if side_levels and side_levels[-1].price == price:
            last = side_levels[-1]
            side_levels[-1] = Level(price, last.size + shown, last.orders + 1)
        else:
            side_levels.append(Level(price, shown, 1))
    return levels


# --- digests ---------------------------------------------------------------------------------


def _instrument_digest(top: npt.NDArray[Any], orders: npt.NDArray[Any], levels: npt.NDArray[Any]) -> bytes:
    h = hashlib.blake2b(digest_size=_DIGEST_SIZE)
    h.update(top.tobytes())
    h.update(_COUNT.pack(orders.size))
    h.update(orders.tobytes())
    h.update(_COUNT.pack(levels.size))
    h.update(levels.tobytes())
    return h.digest()


def _null(price: int | None) -> int:
    return codes.NULL_PRICE if price is None else price


def subscriber_digests(books: Mapping[int, Book]) -> dict[int, bytes]:
    """SecurityID -> digest of the canonical form of a subscriber's book (module docstring)."""
    out: dict[int, bytes] = {}
    for sec in sorted(books):
        book = books[sec]
        bid, bid_size, offer, offer_size = book.bbo
        top = np.array([(sec, book.status, _null(bid), bid_size, _null(offer), offer_size)], TOP_ROW)
        rows: list[tuple[int, int, int, int]] = []
        orders, queues = book.orders, book.queues  # each is built afresh on every read
        for side in (BID, OFFER):
            prices = sorted((p for s, p in queues if s == side), reverse=side == BID)
            for price in prices:
                rows += [(side, price, oid, orders[oid][ORDER_SHOWN]) for oid in queues[(side, price)]]
        levels = [(side, lv.price, lv.size, lv.orders) for side in (BID, OFFER) for lv in book.l2_levels(side)]
        out[sec] = _instrument_digest(top, np.array(rows, ORDER_ROW), np.array(levels, LEVEL_ROW))
    return out


def engine_digests(engine: Engine) -> dict[int, bytes]:
    """SecurityID -> digest of the canonical form of the engine's book (module docstring):
    equal to :func:`subscriber_digests` of a subscriber that follows the engine's feeds."""
    all_orders = _engine_orders(engine)
    rows = engine.instrument_rows()
    status = trading_status(rows)
    o = all_orders  # by instrument, bids before offers, best price first, queue order
    orders = np.zeros(o.size, ORDER_ROW)
    orders["side"] = o["side"]
    orders["price"] = o["price"]
    orders["order_id"] = o["order_id"]
    orders["shown"] = o["shown"]
    # levels: runs of equal (instrument, side, price)
    new = np.ones(o.size, bool)
    if o.size:
        new[1:] = (
            (o["inst"][1:] != o["inst"][:-1]) | (o["side"][1:] != o["side"][:-1]) | (o["price"][1:] != o["price"][:-1])
        )
    starts = np.flatnonzero(new)
    levels = np.zeros(starts.size, LEVEL_ROW)
    levels["side"] = o["side"][starts]
    levels["price"] = o["price"][starts]
    if o.size:
        levels["size"] = np.add.reduceat(o["shown"].astype(np.uint64), starts)
        levels["orders"] = np.diff(np.append(starts, o.size))
    level_inst = o["inst"][starts]
    n = rows.size
    order_bounds = np.searchsorted(o["inst"], np.arange(n + 1))
    level_bounds = np.searchsorted(level_inst, np.arange(n + 1))
    out: dict[int, bytes] = {}
    for k, sec in enumerate(rows["sec_id"].tolist()):
        lv = levels[level_bounds[k] : level_bounds[k + 1]]
        bids, offers = lv[lv["side"] == BID], lv[lv["side"] == OFFER]
        top = np.zeros(1, TOP_ROW)
        top["security_id"] = sec
        top["status"] = status[k]
        top["bid"] = bids["price"][0] if bids.size else codes.NULL_PRICE
        top["bid_size"] = bids["size"][0] if bids.size else 0
        top["offer"] = offers["price"][0] if offers.size else codes.NULL_PRICE
        top["offer_size"] = offers["size"][0] if offers.size else 0
        out[int(sec)] = _instrument_digest(top, orders[order_bounds[k] : order_bounds[k + 1]], lv)
    return out


def combined_digest(digests: Mapping[int, bytes]) -> str:
    """One BLAKE2b-128 (hex) over every instrument's digest, by SecurityID ascending."""
    h = hashlib.blake2b(b"QFIXBK01", digest_size=_DIGEST_SIZE)
    for sec in sorted(digests):
        h.update(_COUNT.pack(sec))
        h.update(digests[sec])
    return h.hexdigest()
