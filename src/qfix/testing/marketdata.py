"""Checking a subscriber's books against the engine's own (tests and the net benchmark)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from qfix.engine import Engine
from qfix.marketdata.book import BID, OFFER, Book, Level
from qfix.server.feed import book_view, trading_status
from qfix.wire import codes

__all__ = ["book_differences"]


def book_differences(
    books: Mapping[int, Book], engine: Engine, feeds: Sequence[int] = (1, 2, 3), limit: int = 10
) -> list[str]:
    """Where ``books`` differ from ``engine``'s books, per feed given: L3 orders and queue
    order, L2 levels, BBO; and the trading status. Empty if they agree exactly."""
    view = book_view(engine, 0)
    rows = engine.instrument_rows()
    status = trading_status(rows)
    out: list[str] = []
    bounds = np.searchsorted(view.orders["inst"], np.arange(rows.size + 1))
    for k, sec in enumerate(rows["sec_id"].tolist()):
        orders = view.orders[bounds[k] : bounds[k + 1]]
        book = books.get(sec)
        if book is None:
            out.append(f"{sec}: no book")
            continue
        if book.status != int(status[k]):
            out.append(f"{sec}: status {book.status} != engine {int(status[k])}")
        expected_levels = _levels(orders)
        if codes.MD_FEED_L3 in feeds:
            want = {int(o["order_id"]): [int(o["side"]), int(o["price"]), int(o["shown"])] for o in orders}
            if book.orders != want:
                extra = sorted(set(book.orders) - set(want))[:3]
                missing = sorted(set(want) - set(book.orders))[:3]
                changed = [oid for oid in set(want) & set(book.orders) if want[oid] != book.orders[oid]][:3]
                out.append(f"{sec}: L3 orders differ: extra {extra} missing {missing} changed {changed}")
            for side in (BID, OFFER):
                for level in expected_levels[side]:
                    queue = [int(o["order_id"]) for o in orders if o["side"] == side and o["price"] == level.price]
                    if book.queue(side, level.price) != queue:
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
