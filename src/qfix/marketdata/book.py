"""What a subscriber knows about one instrument, rebuilt from the feeds (WIRE.md §3.4).

Each feed fills its own part of a :class:`Book`: L3 the orders in queue order, L2 the
price levels, BBO the top of book, TRD the trade tape; every feed carries the trading
status and the reference data. The parts are kept apart on purpose: a subscriber of L2
alone still has levels, and one of L3 can compare the levels it derives with L2's.
Records are applied one at a time (``apply``); a snapshot replaces one feed's part at once
(``clear`` then ``apply`` of its body). Prices stay PRICE9 integers; display converts.
"""

from __future__ import annotations

import struct
from collections import deque
from dataclasses import dataclass, field
from typing import Final

from qfix.wire import codes, schema

__all__ = ["BID", "OFFER", "Book", "Definition", "Level", "Trade"]

BID: Final = 0
OFFER: Final = 1
_OFFER_CHAR: Final = bytes([codes.MD_ENTRY_OFFER])


class _Layout:
    """One template's ``struct`` unpacker and the tuple position of each field, by name."""

    def __init__(self, template_id: int) -> None:
        template = schema.TEMPLATES[template_id]
        self.unpack_from = struct.Struct(template.struct_format).unpack_from
        self.at = {name: i for i, (name, _) in enumerate(template.fields)}


_ADD = _Layout(codes.TEMPLATE_ADD_ORDER)
_EXECUTED = _Layout(codes.TEMPLATE_ORDER_EXECUTED)
_REDUCED = _Layout(codes.TEMPLATE_ORDER_REDUCED)
_DELETE = _Layout(codes.TEMPLATE_ORDER_DELETE)
_REPLACE = _Layout(codes.TEMPLATE_ORDER_REPLACE)
_TRADE = _Layout(codes.TEMPLATE_TRADE)
_LEVEL = _Layout(codes.TEMPLATE_BOOK_LEVEL)
_BBO = _Layout(codes.TEMPLATE_BEST_BID_OFFER)
_STATUS = _Layout(codes.TEMPLATE_SECURITY_STATUS)
_DEFINITION = _Layout(codes.TEMPLATE_SECURITY_DEFINITION)
_LIMITS = _Layout(codes.TEMPLATE_SECURITY_LIMITS)
_INDICATIVE = _Layout(codes.TEMPLATE_INDICATIVE_AUCTION)
_SNAPSHOT_START = _Layout(codes.TEMPLATE_SNAPSHOT_START)
_TIME: Final = struct.Struct("<Q")
_TIME_AT: Final = int(schema.ADD_ORDER.fields["TransactTime"][1])  # type: ignore[index]


@dataclass
class Definition:
    """An instrument's reference data as the feed published it (prices PRICE9)."""

    security_id: int
    symbol: str = ""
    tick_size_p9: int = 0
    max_order_qty: int = 0
    lot_size: int = 0
    low_limit_p9: int = 0
    high_limit_p9: int = 0
    max_notional: int = 0
    collar: int = 0


@dataclass(frozen=True, slots=True)
class Level:
    """One price level: total displayed quantity and number of orders."""

    price: int
    size: int
    orders: int


@dataclass(frozen=True, slots=True)
class Trade:
    trade_id: int
    price: int
    qty: int
    aggressor: int
    condition: int
    time: int


@dataclass
class Book:
    """One instrument's books as rebuilt from the feeds."""

    security_id: int
    trade_tape: int = 1000
    status: int = 0
    definition: Definition | None = None
    #: L3: OrderID -> [side, price, displayed qty]
    orders: dict[int, list[int]] = field(default_factory=dict)
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
                out.append(Level(price, sum(self.orders[oid][2] for oid in queue), len(queue)))
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
        self.orders[oid] = [side, price, shown]
        self.queues.setdefault((side, price), {})[oid] = None

    def _remove(self, oid: int) -> None:
        order = self.orders.pop(oid, None)
        if order is None:
            return
        key = (order[0], order[1])
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
        if template_id in (codes.TEMPLATE_ADD_ORDER, codes.TEMPLATE_SNAPSHOT_ORDER):
            f, i = _ADD.unpack_from(data, at), _ADD.at  # SnapshotOrder has AddOrder's layout
            side = OFFER if f[i["MDEntryType"]] == _OFFER_CHAR else BID
            self._add(f[i["OrderID"]], side, f[i["MDEntryPx"]], f[i["MDEntrySize"]])
        elif template_id == codes.TEMPLATE_ORDER_EXECUTED:
            f, i = _EXECUTED.unpack_from(data, at), _EXECUTED.at
            oid, leaves = f[i["OrderID"]], f[i["LeavesQty"]]
            if leaves:
                self.orders[oid][2] = leaves
            elif oid in self.orders:
                self._remove(oid)  # gone, or refilled by the AddOrder that follows
            else:
                raise KeyError(oid)
        elif template_id == codes.TEMPLATE_ORDER_REDUCED:
            f, i = _REDUCED.unpack_from(data, at), _REDUCED.at
            self.orders[f[i["OrderID"]]][2] = f[i["LeavesQty"]]
        elif template_id == codes.TEMPLATE_ORDER_DELETE:
            f, i = _DELETE.unpack_from(data, at), _DELETE.at
            if f[i["OrderID"]] not in self.orders:
                raise KeyError(f[i["OrderID"]])
            self._remove(f[i["OrderID"]])
        elif template_id == codes.TEMPLATE_ORDER_REPLACE:
            f, i = _REPLACE.unpack_from(data, at), _REPLACE.at
            old = self.orders[f[i["OrigOrderID"]]]
            self._remove(f[i["OrigOrderID"]])
            self._add(f[i["OrderID"]], old[0], f[i["MDEntryPx"]], f[i["MDEntrySize"]])
        elif template_id == codes.TEMPLATE_BOOK_LEVEL:
            f, i = _LEVEL.unpack_from(data, at), _LEVEL.at
            key = (OFFER if f[i["MDEntryType"]] == _OFFER_CHAR else BID, f[i["MDEntryPx"]])
            action = f[i["MDUpdateAction"]]
            if (action == codes.MD_UPDATE_NEW) == (key in self.levels):
                raise KeyError(key)  # a new level that exists, or a change of one that does not
            if action == codes.MD_UPDATE_DELETE:
                del self.levels[key]
            else:
                self.levels[key] = (f[i["MDEntrySize"]], f[i["NumberOfOrders"]])
        elif template_id == codes.TEMPLATE_BEST_BID_OFFER:
            f, i = _BBO.unpack_from(data, at), _BBO.at
            bid, offer = f[i["BidPx"]], f[i["OfferPx"]]
            self.bbo = (
                None if bid == codes.NULL_PRICE else bid,
                f[i["BidSize"]],
                None if offer == codes.NULL_PRICE else offer,
                f[i["OfferSize"]],
            )
        elif template_id == codes.TEMPLATE_TRADE:
            f, i = _TRADE.unpack_from(data, at), _TRADE.at
            qty = f[i["LastQty"]]
            side, condition = f[i["AggressorSide"]], f[i["TradeCondition"]]
            trade = Trade(f[i["TradeID"]], f[i["LastPx"]], qty, side, condition, f[i["TransactTime"]])
            self.trades.append(trade)
            self.trade_count += 1
            self.volume += qty
        elif template_id == codes.TEMPLATE_SECURITY_STATUS:
            self.status = _STATUS.unpack_from(data, at)[_STATUS.at["TradingStatus"]]
        elif template_id == codes.TEMPLATE_SNAPSHOT_START:
            self.status = _SNAPSHOT_START.unpack_from(data, at)[_SNAPSHOT_START.at["TradingStatus"]]
        elif template_id == codes.TEMPLATE_SECURITY_DEFINITION:
            f, i = _DEFINITION.unpack_from(data, at), _DEFINITION.at
            d = self._definition()
            d.tick_size_p9, d.max_order_qty = f[i["MinPriceIncrement"]], f[i["MaxTradeVol"]]
            d.lot_size = f[i["RoundLot"]]
            d.symbol = f[i["Symbol"]].rstrip(b"\0").decode("ascii", "replace")
            self.status = f[i["TradingStatus"]]
        elif template_id == codes.TEMPLATE_SECURITY_LIMITS:
            f, i = _LIMITS.unpack_from(data, at), _LIMITS.at
            d = self._definition()
            d.low_limit_p9, d.high_limit_p9 = f[i["LowLimitPrice"]], f[i["HighLimitPrice"]]
            d.max_notional, d.collar = f[i["MaxNotional"]], f[i["Collar"]]
        elif template_id == codes.TEMPLATE_INDICATIVE_AUCTION:
            f, i = _INDICATIVE.unpack_from(data, at), _INDICATIVE.at
            px = f[i["IndicativePx"]]
            self.indicative = (
                None if px == codes.NULL_PRICE else px,
                f[i["MatchedQty"]],
                f[i["ImbalanceQty"]],
                f[i["ImbalanceSide"]],
            )
        else:
            return
        self.time = max(self.time, _TIME.unpack_from(data, at + _TIME_AT)[0])

    def _definition(self) -> Definition:
        if self.definition is None:
            self.definition = Definition(self.security_id)
        return self.definition
