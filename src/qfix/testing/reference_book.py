"""The dictionary implementation of a subscriber's book, kept as the oracle for
:class:`qfix.marketdata.book.Book`.

Before the books moved into the subscriber's shared arrays (``qfix.marketdata._store``),
:class:`~qfix.marketdata.book.Book` kept one instrument's L3 orders and queues, L2 levels
and BBO in plain Python dicts. That implementation is kept here, its record-applying logic
unchanged, as :class:`ReferenceBook`: differential tests apply the same records to both
and compare what they read. It has the same ``apply`` / ``clear`` semantics, including
which records raise KeyError (an L3 update of an order it does not hold or an order added
twice, an L2 change of a level it does not hold or a new level it does) and what a record
that raises has already changed (an OrderReplace whose new OrderID exists has removed the
old order). The value classes and side codes are :mod:`qfix.marketdata.book`'s own, so
what the two books read compares equal.

Each feed fills its own part of the book (WIRE.md §3.4): L3 the orders in queue order, L2
the price levels, BBO the top of book, TRD the trade tape; every feed carries the trading
status and the reference data. Records are applied one at a time (``apply``); a snapshot
replaces one feed's part at once (``clear`` then ``apply`` of its body). Prices stay
PRICE9 integers.
"""

from __future__ import annotations

import struct
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from qfix.marketdata.book import BID, OFFER, ORDER_PRICE, ORDER_SHOWN, ORDER_SIDE, Definition, Level, Trade
from qfix.wire import codes, schema

__all__ = ["ReferenceBook"]

_OFFER_CHAR: Final = bytes([codes.MD_ENTRY_OFFER])


class _Fields:
    """Unpacks the named fields of one template's record, and nothing else: a ``struct``
    whose format pads over every other field, so one call returns exactly the values the
    book needs, in the order the template lays them out (the order they must be named)."""

    def __init__(self, template_id: int, *names: str) -> None:
        template = schema.TEMPLATES[template_id]
        order = [name for name, _ in template.fields if name in names]
        if tuple(order) != names:
            raise ValueError(f"name the fields of template {template_id} in layout order: {order}")
        codes_ = []
        for name, code in template.fields:
            if name in names:
                codes_.append(code)
            else:
                codes_.append(f"{struct.calcsize('<' + code)}x")
        self.unpack_from = struct.Struct("<" + "".join(codes_)).unpack_from


_ADD = _Fields(codes.TEMPLATE_ADD_ORDER, "TransactTime", "OrderID", "MDEntryPx", "MDEntrySize", "MDEntryType")
_EXECUTED = _Fields(codes.TEMPLATE_ORDER_EXECUTED, "TransactTime", "OrderID", "LeavesQty")
_REDUCED = _Fields(codes.TEMPLATE_ORDER_REDUCED, "TransactTime", "OrderID", "LeavesQty")
_DELETE = _Fields(codes.TEMPLATE_ORDER_DELETE, "TransactTime", "OrderID")
_REPLACE = _Fields(codes.TEMPLATE_ORDER_REPLACE, "TransactTime", "OrigOrderID", "OrderID", "MDEntryPx", "MDEntrySize")
_TRADE = _Fields(
    codes.TEMPLATE_TRADE, "TransactTime", "TradeID", "LastPx", "LastQty", "AggressorSide", "TradeCondition"
)
_LEVEL = _Fields(
    codes.TEMPLATE_BOOK_LEVEL,
    "TransactTime",
    "MDEntryPx",
    "MDEntrySize",
    "NumberOfOrders",
    "MDEntryType",
    "MDUpdateAction",
)
_BBO = _Fields(codes.TEMPLATE_BEST_BID_OFFER, "TransactTime", "BidPx", "OfferPx", "BidSize", "OfferSize")
_STATUS = _Fields(codes.TEMPLATE_SECURITY_STATUS, "TransactTime", "TradingStatus")
_DEFINITION = _Fields(
    codes.TEMPLATE_SECURITY_DEFINITION,
    "TransactTime",
    "MinPriceIncrement",
    "MaxTradeVol",
    "RoundLot",
    "Symbol",
    "TradingStatus",
)
_LIMITS = _Fields(
    codes.TEMPLATE_SECURITY_LIMITS, "TransactTime", "LowLimitPrice", "HighLimitPrice", "MaxNotional", "Collar"
)
_INDICATIVE = _Fields(
    codes.TEMPLATE_INDICATIVE_AUCTION, "TransactTime", "IndicativePx", "MatchedQty", "ImbalanceQty", "ImbalanceSide"
)
_SNAPSHOT_START = _Fields(codes.TEMPLATE_SNAPSHOT_START, "TransactTime", "TradingStatus")


@dataclass
class ReferenceBook:
    """One instrument's books as rebuilt from the feeds, in Python dicts (the oracle)."""

    security_id: int
    trade_tape: int = 1000
    status: int = 0
    definition: Definition | None = None
    #: L3: OrderID -> (side, price, displayed qty). Tuples, not lists: a tuple of ints
    #: leaves the garbage collector's care after its first pass, and a book of a million
    #: orders would otherwise make every full collection walk a million lists.
    orders: dict[int, tuple[int, int, int]] = field(default_factory=dict)
    #: L3: (side, price) -> OrderIDs in queue order (a dict keeps insertion order)
    queues: dict[tuple[int, int], dict[int, None]] = field(default_factory=dict)
    #: L2: (side, price) -> (size, orders)
    levels: dict[tuple[int, int], tuple[int, int]] = field(default_factory=dict)
    #: BBO: (bid price or None, bid size, offer price or None, offer size)
    bbo: tuple[int | None, int, int | None, int] = (None, 0, None, 0)
    trades: deque[Trade] = field(default_factory=deque)
    #: trades and traded quantity seen on TRD since the book was made (a snapshot does not
    #: bring back trades missed before it)
    trade_count: int = 0
    volume: int = 0
    #: IndicativeAuction: (price or None, matched, imbalance, imbalance side)
    indicative: tuple[int | None, int, int, int] | None = None
    #: TransactTime of the last record applied
    time: int = 0

    def __post_init__(self) -> None:
        self.trades = deque(maxlen=self.trade_tape)

    # --- reading ------------------------------------------------------------------------

    def l3_levels(self, side: int) -> list[Level]:
        """Levels derived from the L3 orders, best first."""
        out = []
        for (level_side, price), queue in self.queues.items():
            if level_side == side:
                out.append(Level(price, sum(self.orders[oid][ORDER_SHOWN] for oid in queue), len(queue)))
        out.sort(key=lambda lv: -lv.price if side == BID else lv.price)
        return out

    def l2_levels(self, side: int) -> list[Level]:
        """Levels as the L2 feed gave them, best first."""
        out = [Level(price, size, n) for (level_side, price), (size, n) in self.levels.items() if level_side == side]
        out.sort(key=lambda lv: -lv.price if side == BID else lv.price)
        return out

    def queue(self, side: int, price: int) -> list[int]:
        """OrderIDs at one level, in queue order (L3)."""
        return list(self.queues.get((side, price), ()))

    # --- writing ------------------------------------------------------------------------

    def clear(self, feed: int) -> None:
        """Forget what ``feed`` built (before its snapshot is applied)."""
        if feed == codes.MD_FEED_L3:
            self.orders.clear()
            self.queues.clear()
        elif feed == codes.MD_FEED_L2:
            self.levels.clear()
        elif feed == codes.MD_FEED_BBO:
            self.bbo = (None, 0, None, 0)

    def _add(self, oid: int, side: int, price: int, shown: int) -> None:
        if oid in self.orders:
            raise KeyError(oid)  # an order added twice: the book is out of step
        self.orders[oid] = (side, price, shown)
        self.queues.setdefault((side, price), {})[oid] = None

    def _remove(self, oid: int) -> None:
        order = self.orders.pop(oid, None)
        if order is None:
            return
        key = (order[ORDER_SIDE], order[ORDER_PRICE])
        queue = self.queues[key]
        del queue[oid]
        if not queue:
            del self.queues[key]

    def apply(self, template_id: int, data: bytes, at: int = 0) -> None:
        """Apply one record (the 60 bytes at ``data[at:]``); unknown templates are ignored.

        Raises KeyError for a record that does not fit the book (an L3 update of an order
        it does not hold or an order added twice, an L2 change of a level it does not hold
        or a new level it does): the book is then out of step with the feed and must be
        recovered from a snapshot."""
        handler = _HANDLERS.get(template_id)
        if handler is None:
            return
        time = handler(self, data, at)
        if time > self.time:
            self.time = time

    # One handler per template: apply the record, return its TransactTime. The L3 and L2
    # handlers run for almost every record of a busy feed, so they unpack only what they use.

    def _on_add(self, data: bytes, at: int) -> int:
        time, oid, price, shown, side = _ADD.unpack_from(data, at)
        self._add(oid, OFFER if side == _OFFER_CHAR else BID, price, shown)
        return int(time)

    def _on_executed(self, data: bytes, at: int) -> int:
        time, oid, leaves = _EXECUTED.unpack_from(data, at)
        if leaves:
            side, price, _ = self.orders[oid]
            self.orders[oid] = (side, price, leaves)
        elif oid in self.orders:
            self._remove(oid)  # gone, or refilled by the AddOrder that follows
        else:
            raise KeyError(oid)
        return int(time)

    def _on_reduced(self, data: bytes, at: int) -> int:
        time, oid, leaves = _REDUCED.unpack_from(data, at)
        side, price, _ = self.orders[oid]
        self.orders[oid] = (side, price, leaves)
        return int(time)

    def _on_delete(self, data: bytes, at: int) -> int:
        time, oid = _DELETE.unpack_from(data, at)
        if oid not in self.orders:
            raise KeyError(oid)
        self._remove(oid)
        return int(time)

    def _on_replace(self, data: bytes, at: int) -> int:
        time, old_oid, oid, price, shown = _REPLACE.unpack_from(data, at)
        side = self.orders[old_oid][ORDER_SIDE]
        self._remove(old_oid)
        self._add(oid, side, price, shown)
        return int(time)

    def _on_level(self, data: bytes, at: int) -> int:
        time, price, size, count, side, action = _LEVEL.unpack_from(data, at)
        key = (OFFER if side == _OFFER_CHAR else BID, price)
        levels = self.levels
        if (action == codes.MD_UPDATE_NEW) == (key in levels):
            raise KeyError(key)  # a new level that exists, or a change of one that does not
        if action == codes.MD_UPDATE_DELETE:
            del levels[key]
        else:
            levels[key] = (size, count)
        return int(time)

    def _on_bbo(self, data: bytes, at: int) -> int:
        time, bid, offer, bid_size, offer_size = _BBO.unpack_from(data, at)
        self.bbo = (
            None if bid == codes.NULL_PRICE else bid,
            bid_size,
            None if offer == codes.NULL_PRICE else offer,
            offer_size,
        )
        return int(time)

    def _on_trade(self, data: bytes, at: int) -> int:
        time, trade_id, price, qty, aggressor, condition = _TRADE.unpack_from(data, at)
        self.trades.append(Trade(trade_id, price, qty, aggressor, condition, time))
        self.trade_count += 1
        self.volume += qty
        return int(time)

    def _on_status(self, data: bytes, at: int) -> int:
        time, self.status = _STATUS.unpack_from(data, at)
        return int(time)

    def _on_snapshot_start(self, data: bytes, at: int) -> int:
        time, self.status = _SNAPSHOT_START.unpack_from(data, at)
        return int(time)

    def _on_definition(self, data: bytes, at: int) -> int:
        time, tick, max_qty, lot, symbol, self.status = _DEFINITION.unpack_from(data, at)
        d = self._definition()
        d.tick_size_p9, d.max_order_qty, d.lot_size = tick, max_qty, lot
        d.symbol = symbol.rstrip(b"\0").decode("ascii", "replace")
        return int(time)

    def _on_limits(self, data: bytes, at: int) -> int:
        time, low, high, notional, collar = _LIMITS.unpack_from(data, at)
        d = self._definition()
        d.low_limit_p9, d.high_limit_p9, d.max_notional, d.collar = low, high, notional, collar
        return int(time)

    def _on_indicative(self, data: bytes, at: int) -> int:
        time, price, matched, imbalance, imbalance_side = _INDICATIVE.unpack_from(data, at)
        self.indicative = (None if price == codes.NULL_PRICE else price, matched, imbalance, imbalance_side)
        return int(time)

    def _definition(self) -> Definition:
        if self.definition is None:
            self.definition = Definition(self.security_id)
        return self.definition


_HANDLERS: Final[dict[int, Callable[[ReferenceBook, bytes, int], int]]] = {
    codes.TEMPLATE_ADD_ORDER: ReferenceBook._on_add,
    codes.TEMPLATE_SNAPSHOT_ORDER: ReferenceBook._on_add,  # SnapshotOrder has AddOrder's layout
    codes.TEMPLATE_ORDER_EXECUTED: ReferenceBook._on_executed,
    codes.TEMPLATE_ORDER_REDUCED: ReferenceBook._on_reduced,
    codes.TEMPLATE_ORDER_DELETE: ReferenceBook._on_delete,
    codes.TEMPLATE_ORDER_REPLACE: ReferenceBook._on_replace,
    codes.TEMPLATE_BOOK_LEVEL: ReferenceBook._on_level,
    codes.TEMPLATE_BEST_BID_OFFER: ReferenceBook._on_bbo,
    codes.TEMPLATE_TRADE: ReferenceBook._on_trade,
    codes.TEMPLATE_SECURITY_STATUS: ReferenceBook._on_status,
    codes.TEMPLATE_SNAPSHOT_START: ReferenceBook._on_snapshot_start,
    codes.TEMPLATE_SECURITY_DEFINITION: ReferenceBook._on_definition,
    codes.TEMPLATE_SECURITY_LIMITS: ReferenceBook._on_limits,
    codes.TEMPLATE_INDICATIVE_AUCTION: ReferenceBook._on_indicative,
}
