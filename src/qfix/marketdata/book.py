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
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import numpy as np

from qfix.marketdata import _store
from qfix.marketdata._store import Store
from qfix.marketdata.feeds import u64_as_i64
from qfix.wire import codes, schema

__all__ = ["BID", "OFFER", "ORDER_PRICE", "ORDER_SHOWN", "ORDER_SIDE", "Book", "Definition", "Level", "Trade"]

BID: Final = 0
OFFER: Final = 1
#: positions in a :attr:`Book.orders` entry
ORDER_SIDE: Final = 0
ORDER_PRICE: Final = 1
ORDER_SHOWN: Final = 2
_U64: Final = 1 << 64
_TEMPLATE_AT: Final = schema.byte_offset(schema.HEADER, "templateId")
#: records to apply: bytes as received, or a view of a received packet arena
Data = bytes | memoryview


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


_TRADE = _Fields(
    codes.TEMPLATE_TRADE, "TransactTime", "TradeID", "LastPx", "LastQty", "AggressorSide", "TradeCondition"
)
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


class Book:
    """One instrument's books as rebuilt from the feeds.

    The L3 orders and queues, the L2 levels and the BBO live in the subscriber's shared
    arrays (:class:`~qfix.marketdata._store.Store`); the properties below read them out
    as Python values. Trades, status and reference data, which change rarely, are kept
    here as attributes."""

    def __init__(self, security_id: int, store: Store | None = None, trade_tape: int = 1000) -> None:
        self.security_id = security_id
        self._store = store if store is not None else Store()
        self._slot = self._store.slot(security_id)
        self.trade_tape = trade_tape
        self.status = 0
        self.definition: Definition | None = None
        self.trades: deque[Trade] = deque(maxlen=trade_tape)
        #: trades and traded quantity seen on TRD since the book was made (a snapshot does
        #: not bring back trades missed before it)
        self.trade_count = 0
        self.volume = 0
        #: IndicativeAuction: (price or None, matched, imbalance, imbalance side)
        self.indicative: tuple[int | None, int, int, int] | None = None

    # --- reading ------------------------------------------------------------------------

    @property
    def time(self) -> int:
        """TransactTime of the last record applied."""
        return int(self._store.insts[self._slot, _store.I_TIME]) % _U64

    @property
    def orders(self) -> dict[int, tuple[int, int, int]]:
        """L3: OrderID -> (side, price, displayed qty)."""
        return {oid: (side, price, shown) for side, price, oid, shown in self._l3_rows()}

    @property
    def queues(self) -> dict[tuple[int, int], dict[int, None]]:
        """L3: (side, price) -> OrderIDs in queue order."""
        out: dict[tuple[int, int], dict[int, None]] = {}
        for side, price, oid, _ in self._l3_rows():
            out.setdefault((side, price), {})[oid] = None
        return out

    @property
    def levels(self) -> dict[tuple[int, int], tuple[int, int]]:
        """L2: (side, price) -> (size, orders)."""
        return {(side, price): (size, count) for side, price, size, count in self._l2_rows()}

    @property
    def bbo(self) -> tuple[int | None, int, int | None, int]:
        """BBO: (bid price or None, bid size, offer price or None, offer size)."""
        row = self._store.insts[self._slot]
        bid = int(row[_store.I_BID])
        offer = int(row[_store.I_OFFER])
        return (
            None if bid == codes.NULL_PRICE else bid,
            int(row[_store.I_BID_SIZE]) % _U64,
            None if offer == codes.NULL_PRICE else offer,
            int(row[_store.I_OFFER_SIZE]) % _U64,
        )

    def _l3_rows(self) -> list[tuple[int, int, int, int]]:
        s = self._store
        rows = _store.l3_rows(s.orders, s.l3, s.insts, self._slot)
        return [(side, price, oid % _U64, shown) for side, price, oid, shown in rows.tolist()]

    def _l2_rows(self) -> list[tuple[int, int, int, int]]:
        s = self._store
        rows = _store.l2_rows(s.l2, s.insts, self._slot).tolist()
        return [(side, price, size % _U64, count) for side, price, size, count in rows]

    def l3_levels(self, side: int) -> list[Level]:
        """Levels derived from the L3 orders, best first."""
        sizes: dict[int, list[int]] = {}
        for level_side, price, _, shown in self._l3_rows():
            if level_side == side:
                level = sizes.setdefault(price, [0, 0])
                level[0] += shown
                level[1] += 1
        out = [Level(price, size, n) for price, (size, n) in sizes.items()]
        out.sort(key=lambda lv: -lv.price if side == BID else lv.price)
        return out

    def l2_levels(self, side: int) -> list[Level]:
        """Levels as the L2 feed gave them, best first."""
        out = [Level(price, size, n) for level_side, price, size, n in self._l2_rows() if level_side == side]
        out.sort(key=lambda lv: -lv.price if side == BID else lv.price)
        return out

    def queue(self, side: int, price: int) -> list[int]:
        """OrderIDs at one level, in queue order (L3)."""
        return [
            oid for level_side, level_price, oid, _ in self._l3_rows() if (level_side, level_price) == (side, price)
        ]

    # --- writing ------------------------------------------------------------------------

    def clear(self, feed: int) -> None:
        """Forget what ``feed`` built (before its snapshot is applied)."""
        s = self._store
        if feed == codes.MD_FEED_L3:
            _store.clear_l3(s.orders, s.order_index, s.l3, s.l3_index, s.insts, s.meta, self._slot)
        elif feed == codes.MD_FEED_L2:
            _store.clear_l2(s.l2, s.l2_index, s.insts, s.meta, self._slot)
        elif feed == codes.MD_FEED_BBO:
            row = s.insts[self._slot]
            row[_store.I_BID] = row[_store.I_OFFER] = codes.NULL_PRICE
            row[_store.I_BID_SIZE] = row[_store.I_OFFER_SIZE] = 0

    def apply(self, template_id: int, data: Data, at: int = 0) -> None:
        """Apply one record (the 60 bytes at ``data[at:]``); unknown templates are ignored.

        Raises KeyError for a record that does not fit the book (an L3 update of an order
        it does not hold or an order added twice, an L2 change of a level it does not hold
        or a new level it does): the book is then out of step with the feed and must be
        recovered from a snapshot."""
        handler = _HANDLERS.get(template_id)
        if handler is not None:
            self._keep_time(handler(self, data, at))
            return
        if template_id not in _STORE_TEMPLATES:
            return
        if at < 0 or len(data) - at < codes.MESSAGE_SIZE:
            raise ValueError(f"a record is {codes.MESSAGE_SIZE} bytes: {len(data) - at} at offset {at}")
        s = self._store
        s.ensure(1)
        buf = np.frombuffer(data, np.uint8)
        if _store.apply_record(buf, at, self._slot, *s.tables()) == _store.MISFIT:
            raise KeyError(f"a record of template {template_id} does not fit book {self.security_id}")

    def apply_all(self, data: bytes) -> None:
        """Apply every record of ``data`` (a snapshot body, say) whose version this codec
        speaks, in one pass; KeyError at the first that does not fit the book, as
        :meth:`apply` (the records before it stay applied)."""
        s = self._store
        n = len(data) // codes.MESSAGE_SIZE
        s.ensure(n)
        buf = np.frombuffer(data, np.uint8, n * codes.MESSAGE_SIZE)
        asides = np.empty(n, np.int64)
        listed, failed = _store.apply_records(buf, self._slot, asides, *s.tables())
        view = memoryview(data)
        for at in asides[:listed].tolist():
            self.apply(int(buf[at + _TEMPLATE_AT]) | int(buf[at + _TEMPLATE_AT + 1]) << 8, view, at)
        if failed >= 0:
            raise KeyError(f"record {failed} of the records given does not fit book {self.security_id}")

    def _keep_time(self, time: int) -> None:
        row = self._store.insts[self._slot]
        if time > int(row[_store.I_TIME]) % _U64:
            row[_store.I_TIME] = u64_as_i64(time)

    # The templates kept here, one handler each: apply the record, return its TransactTime.

    def _on_trade(self, data: Data, at: int) -> int:
        time, trade_id, price, qty, aggressor, condition = _TRADE.unpack_from(data, at)
        self.trades.append(Trade(trade_id, price, qty, aggressor, condition, time))
        self.trade_count += 1
        self.volume += qty
        return int(time)

    def _on_status(self, data: Data, at: int) -> int:
        time, self.status = _STATUS.unpack_from(data, at)
        return int(time)

    def _on_snapshot_start(self, data: Data, at: int) -> int:
        time, self.status = _SNAPSHOT_START.unpack_from(data, at)
        return int(time)

    def _on_definition(self, data: Data, at: int) -> int:
        time, tick, max_qty, lot, symbol, self.status = _DEFINITION.unpack_from(data, at)
        d = self._definition()
        d.tick_size_p9, d.max_order_qty, d.lot_size = tick, max_qty, lot
        d.symbol = symbol.rstrip(b"\0").decode("ascii", "replace")
        return int(time)

    def _on_limits(self, data: Data, at: int) -> int:
        time, low, high, notional, collar = _LIMITS.unpack_from(data, at)
        d = self._definition()
        d.low_limit_p9, d.high_limit_p9, d.max_notional, d.collar = low, high, notional, collar
        return int(time)

    def _on_indicative(self, data: Data, at: int) -> int:
        time, price, matched, imbalance, imbalance_side = _INDICATIVE.unpack_from(data, at)
        self.indicative = (None if price == codes.NULL_PRICE else price, matched, imbalance, imbalance_side)
        return int(time)

    def _definition(self) -> Definition:
        if self.definition is None:
            self.definition = Definition(self.security_id)
        return self.definition


#: the templates whose records change the arrays (the store applies them)
_STORE_TEMPLATES: Final = frozenset(
    {
        codes.TEMPLATE_ADD_ORDER,
        codes.TEMPLATE_SNAPSHOT_ORDER,
        codes.TEMPLATE_ORDER_EXECUTED,
        codes.TEMPLATE_ORDER_REDUCED,
        codes.TEMPLATE_ORDER_DELETE,
        codes.TEMPLATE_ORDER_REPLACE,
        codes.TEMPLATE_BOOK_LEVEL,
        codes.TEMPLATE_BEST_BID_OFFER,
    }
)
_HANDLERS: Final[dict[int, Callable[[Book, Data, int], int]]] = {
    codes.TEMPLATE_TRADE: Book._on_trade,
    codes.TEMPLATE_SECURITY_STATUS: Book._on_status,
    codes.TEMPLATE_SNAPSHOT_START: Book._on_snapshot_start,
    codes.TEMPLATE_SECURITY_DEFINITION: Book._on_definition,
    codes.TEMPLATE_SECURITY_LIMITS: Book._on_limits,
    codes.TEMPLATE_INDICATIVE_AUCTION: Book._on_indicative,
}
