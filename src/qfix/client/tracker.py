"""Order state as the client sees it, rebuilt from its own execution reports.

Theory of operation: the tracker learns an order when the client sends it (ClOrdID,
instrument, side, quantity, price) and then applies each sequenced report in ExecID
order: ExecutionReports move quantities and status, OrderCancelRejects only close the
pending request. A replace request is remembered until its report arrives, so the
order is found under its new ClOrdID afterwards. Reports for orders the tracker never
saw (sent by an earlier process of the same session) create an entry from the report
itself, so reconciliation after a restart still works.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

import numpy as np

from qfix.wire import codes, schema
from qfix.wire.message import p9_to_price

__all__ = ["OrderState", "OrderTracker"]

_OPEN: Final = frozenset({codes.ORD_STATUS_NEW, codes.ORD_STATUS_PARTIALLY_FILLED})
_STATUS: Final = {
    codes.ORD_STATUS_NEW: "new",
    codes.ORD_STATUS_PARTIALLY_FILLED: "partially-filled",
    codes.ORD_STATUS_FILLED: "filled",
    codes.ORD_STATUS_CANCELED: "canceled",
    codes.ORD_STATUS_REJECTED: "rejected",
    codes.ORD_STATUS_EXPIRED: "expired",
}


@dataclass(slots=True)
class OrderState:
    """One order: what was asked and what happened to it so far."""

    cl_ord_id: int  #: current ClOrdID (a replace changes it)
    security_id: int
    side: int  #: wire code (``codes.SIDE_BUY`` / ``codes.SIDE_SELL``)
    order_qty: int
    price_p9: int  #: PRICE9 mantissa; ``codes.NULL_PRICE`` for market orders
    order_id: int = 0  #: 0 until acknowledged
    cum_qty: int = 0
    leaves_qty: int = 0
    notional_p9: int = 0  #: sum of fill price x fill qty (PRICE9 units)
    status: str = "pending-new"
    reason: int = 0  #: ExecReason of the last report
    last_exec_id: int = 0

    @property
    def is_open(self) -> bool:
        return self.status in ("pending-new", "new", "partially-filled")

    @property
    def avg_px(self) -> Decimal | None:
        """Average fill price, or None before the first fill."""
        if self.cum_qty == 0:
            return None
        value = (Decimal(self.notional_p9) / self.cum_qty / Decimal(10**9)).normalize()
        # normalize() writes 65000 as 6.5E+4; keep plain notation for whole numbers
        return value.quantize(Decimal(1)) if value == value.to_integral_value() else value

    @property
    def price(self) -> Decimal | None:
        return p9_to_price(self.price_p9)


class OrderTracker:
    """Every order of one session, keyed by ClOrdID and OrderID."""

    def __init__(self) -> None:
        self.by_clordid: dict[int, OrderState] = {}
        self.by_order_id: dict[int, OrderState] = {}
        self._replacing: dict[int, int] = {}  #: replace request ClOrdID -> OrigClOrdID
        self.last_exec_id = 0
        self.fills = 0
        self.filled_qty = 0

    def sent_new(self, cl_ord_id: int, security_id: int, side: int, qty: int, price_p9: int) -> OrderState:
        state = OrderState(cl_ord_id, security_id, side, qty, price_p9)
        self.by_clordid[cl_ord_id] = state
        return state

    def sent_replace(self, cl_ord_id: int, orig_cl_ord_id: int) -> None:
        self._replacing[cl_ord_id] = orig_cl_ord_id

    def open_orders(self) -> list[OrderState]:
        return [o for o in self.by_clordid.values() if o.is_open]

    def apply(self, msgs: np.ndarray[Any, Any]) -> int:
        """Apply (n, 60) messages in order; non-sequenced templates are skipped. Returns
        how many sequenced reports were new (ExecIDs already applied are dropped)."""
        if msgs.size == 0:
            return 0
        tids = np.ascontiguousarray(msgs[:, 2:4]).view("<u2")[:, 0]
        applied = 0
        for i in np.flatnonzero(tids == codes.TEMPLATE_EXECUTION_REPORT):
            er = msgs[i].view(schema.EXECUTION_REPORT)[0]
            exec_id = int(er["ExecID"])
            if exec_id <= self.last_exec_id:
                continue
            self.last_exec_id = exec_id
            self._execution(er)
            applied += 1
        for tid, dtype in (
            (codes.TEMPLATE_ORDER_CANCEL_REJECT, schema.ORDER_CANCEL_REJECT),
            (codes.TEMPLATE_ORDER_MASS_CANCEL_REPORT, schema.ORDER_MASS_CANCEL_REPORT),
        ):
            for i in np.flatnonzero(tids == tid):
                rec = msgs[i].view(dtype)[0]
                exec_id = int(rec["ExecID"])
                if exec_id > self.last_exec_id:
                    self.last_exec_id = exec_id
                    applied += 1
                if tid == codes.TEMPLATE_ORDER_CANCEL_REJECT:
                    self._replacing.pop(int(rec["ClOrdID"]), None)
        return applied

    def _find(self, er: np.void) -> OrderState | None:
        order_id = int(er["OrderID"])
        if order_id != codes.NULL_U64 and order_id in self.by_order_id:
            return self.by_order_id[order_id]
        clordid = int(er["ClOrdID"])
        orig = self._replacing.get(clordid)
        if orig is not None:
            return self.by_clordid.get(orig)
        return self.by_clordid.get(clordid)

    def _execution(self, er: np.void) -> None:
        kind = int(er["ExecType"])
        order = self._find(er)
        clordid = int(er["ClOrdID"])
        if order is None:
            if kind == codes.EXEC_TYPE_REJECTED:
                return  # a refused cancel/replace of an unknown order: nothing to track
            order = OrderState(clordid, 0, 0, int(er["LastQty"]), int(er["LastPx"]))
            self.by_clordid[clordid] = order
        order_id = int(er["OrderID"])
        if order_id != codes.NULL_U64 and order_id != order.order_id:
            if order.order_id:
                self.by_order_id.pop(order.order_id, None)
            order.order_id = order_id
            self.by_order_id[order_id] = order
        order.status = _STATUS.get(int(er["OrdStatus"]), "unknown")
        order.reason = int(er["ExecReason"])
        order.last_exec_id = int(er["ExecID"])
        order.leaves_qty = int(er["LeavesQty"])
        if kind == codes.EXEC_TYPE_TRADE:
            qty = int(er["LastQty"])
            order.cum_qty += qty
            order.notional_p9 += int(er["LastPx"]) * qty
            self.fills += 1
            self.filled_qty += qty
        elif kind == codes.EXEC_TYPE_REPLACED:
            orig = self._replacing.pop(clordid, None)
            if orig is not None and orig != clordid:
                self.by_clordid.pop(orig, None)
            order.cl_ord_id = clordid
            order.order_qty = int(er["LastQty"])
            order.price_p9 = int(er["LastPx"])
            self.by_clordid[clordid] = order
        elif kind == codes.EXEC_TYPE_CANCELED:
            self._replacing.pop(clordid, None)
