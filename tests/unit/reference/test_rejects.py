"""One test per reject reason (WIRE.md §5.2, §5.3; ENGINE.md §3.1, §3.7-§3.9).

Each case builds a small book, sends one refused message and asserts: exactly one record
(ER Rejected / OrderCancelReject / OrderMassCancelReport) to the requester with that reason,
no order, book or market-data effect, and that ExecID, LastClOrdID and LastTime advanced.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from ref_common import DAY0, T0, make_engine

from qfix.testing import ReferenceEngine, cancel, mass_cancel, new_order, process_decoded, replace
from qfix.wire import codes as C  # noqa: N812
from qfix.wire import schema

S = C.SIDE_SELL
M = C.ORD_TYPE_MARKET
R = C  # short alias for reasons in the tables below


def _setup(eng: ReferenceEngine) -> int:
    """A small book on A (sec 1) and B (sec 2); returns the last ExecID used."""
    recs = process_decoded(
        eng,
        new_order(1, side=S, price=101, qty=5, session=1, recv_time=T0),  # OrderID 1
        new_order(2, side=S, price=102, qty=5, session=1, recv_time=T0),  # OrderID 2
        new_order(1, price=99, qty=5, session=2, recv_time=T0),  # OrderID 3
        new_order(3, sec=2, price=10_000, qty=5, session=1, recv_time=T0),  # OrderID 4
        new_order(4, price=98, qty=5, session=1, tif=C.TIF_GTD, expire_date=DAY0, recv_time=T0),  # 5
        new_order(5, price=97, qty=5, session=1, exec_inst=C.EXEC_INST_POST_ONLY, recv_time=T0),  # 6
    )
    return max(int(r["ExecID"]) for r in recs if "ExecID" in r)


def _snapshot(eng: ReferenceEngine) -> object:
    return (
        eng.live_orders(),
        [eng.book(s, side) for s in (1, 2, 3, 4, 5) for side in (C.SIDE_BUY, C.SIDE_SELL)],
    )


RecordFn = Callable[[int, int], np.ndarray]  # (clordid, recv_time) -> record; session 0


def nos(**kw: object) -> RecordFn:
    return lambda c, t: new_order(c, recv_time=t, **kw)  # type: ignore[arg-type]


NOS_CASES: list[tuple[str, RecordFn, int]] = [
    ("unknown symbol", nos(sec=99), R.EXEC_REASON_UNKNOWN_SYMBOL),
    ("invalid side", nos(side=0x33, qty=0), R.EXEC_REASON_INVALID_SIDE),  # side before qty
    ("stop is unsupported", nos(ord_type=C.ORD_TYPE_STOP), R.EXEC_REASON_UNSUPPORTED),
    ("invalid ord type", nos(ord_type=0x35), R.EXEC_REASON_INVALID_ORD_TYPE),
    ("invalid tif", nos(tif=0x32), R.EXEC_REASON_INVALID_TIME_IN_FORCE),
    ("reserved exec inst bit", nos(exec_inst=0x05), R.EXEC_REASON_INVALID_EXEC_INST),
    ("all-or-none unsupported", nos(exec_inst=C.EXEC_INST_ALL_OR_NONE), R.EXEC_REASON_UNSUPPORTED),
    ("invalid smp", nos(smp=5), R.EXEC_REASON_INVALID_SMP_INSTRUCTION),
    ("zero qty", nos(qty=0, price=None), R.EXEC_REASON_INCORRECT_QTY),  # qty before price
    ("qty over max", nos(sec=2, price=10_000, qty=1001), R.EXEC_REASON_QTY_OVER_MAX),
    ("limit without price", nos(ord_type=C.ORD_TYPE_LIMIT, price=None), R.EXEC_REASON_PRICE_REQUIRED),
    ("market with price", nos(ord_type=M, price=100), R.EXEC_REASON_PRICE_NOT_ALLOWED),
    ("off tick", nos(sec=2, price=10_005), R.EXEC_REASON_PRICE_OFF_TICK),
    ("gtd without date", nos(tif=C.TIF_GTD), R.EXEC_REASON_EXPIRE_DATE_MISMATCH),
    ("date without gtd", nos(expire_date=DAY0 + 1), R.EXEC_REASON_EXPIRE_DATE_MISMATCH),
    ("min qty zero", nos(min_qty=0), R.EXEC_REASON_INVALID_MIN_QTY),
    ("min qty above qty", nos(min_qty=11, qty=10), R.EXEC_REASON_INVALID_MIN_QTY),
    ("max floor zero", nos(max_floor=0), R.EXEC_REASON_INVALID_MAX_FLOOR),
    ("market gtc", nos(price=None, tif=C.TIF_GTC), R.EXEC_REASON_UNSUPPORTED),
    ("market gtd", nos(price=None, tif=C.TIF_GTD, expire_date=DAY0), R.EXEC_REASON_UNSUPPORTED),
    ("market post-only", nos(price=None, exec_inst=1), R.EXEC_REASON_UNSUPPORTED),
    ("market max floor", nos(price=None, max_floor=3), R.EXEC_REASON_UNSUPPORTED),
    ("post-only ioc", nos(exec_inst=1, tif=C.TIF_IOC), R.EXEC_REASON_UNSUPPORTED),
    ("post-only fok", nos(exec_inst=1, tif=C.TIF_FOK), R.EXEC_REASON_UNSUPPORTED),
    ("post-only min qty", nos(exec_inst=1, min_qty=2), R.EXEC_REASON_UNSUPPORTED),
    ("max floor ioc", nos(max_floor=3, tif=C.TIF_IOC), R.EXEC_REASON_UNSUPPORTED),
    ("min qty fok", nos(min_qty=3, tif=C.TIF_FOK), R.EXEC_REASON_UNSUPPORTED),
    ("closed phase", nos(sec=3), R.EXEC_REASON_TRADING_STATE_NOT_OPEN),
    ("ioc in pre-open", nos(sec=4, tif=C.TIF_IOC), R.EXEC_REASON_TRADING_STATE_NOT_OPEN),
    ("market ioc in pre-open", nos(sec=4, price=None, tif=C.TIF_IOC), R.EXEC_REASON_TRADING_STATE_NOT_OPEN),
    ("post-only in pre-open", nos(sec=4, exec_inst=1), R.EXEC_REASON_TRADING_STATE_NOT_OPEN),
    ("min qty in fba", nos(sec=5, min_qty=1), R.EXEC_REASON_TRADING_STATE_NOT_OPEN),
    ("fok in fba", nos(sec=5, tif=C.TIF_FOK), R.EXEC_REASON_TRADING_STATE_NOT_OPEN),
    ("market fok in fba", nos(sec=5, price=None, tif=C.TIF_FOK), R.EXEC_REASON_TRADING_STATE_NOT_OPEN),
    ("gtd in the past", nos(tif=C.TIF_GTD, expire_date=DAY0 - 1), R.EXEC_REASON_INVALID_EXPIRE_DATE),
    ("above band", nos(price=151), R.EXEC_REASON_PRICE_OUTSIDE_BAND),
    ("below band", nos(side=S, price=49), R.EXEC_REASON_PRICE_OUTSIDE_BAND),
    ("band before notional", nos(sec=2, price=12_000, qty=999), R.EXEC_REASON_PRICE_OUTSIDE_BAND),
    ("notional", nos(sec=2, price=10_000, qty=51), R.EXEC_REASON_NOTIONAL_OVER_MAX),
    # market sell: L = max(best bid 1000 - collar 1000, band low 900) = 900 -> 55 lots allowed
    ("market notional at L", nos(sec=2, side=S, price=None, qty=56), R.EXEC_REASON_NOTIONAL_OVER_MAX),
    ("post-only at best offer", nos(price=101, exec_inst=1), R.EXEC_REASON_POST_ONLY_WOULD_CROSS),
    ("post-only through best bid", nos(side=S, price=90, exec_inst=1), R.EXEC_REASON_POST_ONLY_WOULD_CROSS),
]


def _assert_clordid_consumed(eng: ReferenceEngine, record: np.ndarray) -> None:
    """LastClOrdID advanced to the refused message's ClOrdID: reusing it is a duplicate."""
    raw = record.view(np.uint8).reshape(-1)
    clordid = int(raw[8:16].view("<u8")[0])
    session = int(raw[60:64].view("<u4")[0])
    dup = process_decoded(eng, new_order(clordid, price=99, session=session))
    assert [r["ExecReason"] for r in dup] == [C.EXEC_REASON_DUPLICATE_CLORDID]


def _check_refused(
    eng: ReferenceEngine, record: np.ndarray, template: str, reason: int, last_exec: int, recv_time: int
) -> dict[str, int | str]:
    before = _snapshot(eng)
    recs = process_decoded(eng, record)
    assert len(recs) == 1, recs
    (rec,) = recs
    assert rec["template"] == template
    assert rec["ExecReason"] == reason
    assert rec["dest"] == 0
    assert rec["ExecID"] == last_exec + 1
    assert rec["TransactTime"] == recv_time
    assert _snapshot(eng) == before
    assert eng.last_time == recv_time
    _assert_clordid_consumed(eng, record)
    return rec


@pytest.mark.parametrize(("name", "make", "reason"), NOS_CASES, ids=[c[0] for c in NOS_CASES])
def test_new_order_reject(name: str, make: RecordFn, reason: int) -> None:
    eng = make_engine()
    last_exec = _setup(eng)
    t = T0 + 1_000
    record = make(50, t)
    rec = _check_refused(eng, record, "ExecutionReport", reason, last_exec, t)
    sent = record.view(np.uint8).reshape(-1)
    assert rec["ExecType"] == C.EXEC_TYPE_REJECTED and rec["OrdStatus"] == C.ORD_STATUS_REJECTED
    assert rec["OrderID"] == C.NULL_U64 and rec["LeavesQty"] == 0 and rec["ClOrdID"] == 50
    assert rec["LastPx"] == int(sent[24:32].view("<i8")[0])  # as received
    assert rec["LastQty"] == int(sent[32:36].view("<u4")[0])


def test_duplicate_clordid_new_order() -> None:
    eng = make_engine()
    last_exec = _setup(eng)
    process_decoded(eng, new_order(10, price=90, recv_time=T0))
    _check_refused(
        eng, new_order(10, price=91, recv_time=T0 + 5), "ExecutionReport", C.EXEC_REASON_DUPLICATE_CLORDID,
        last_exec + 1, T0 + 5,
    )  # fmt: skip
    # a lower one is a duplicate too, and does not lower LastClOrdID
    process_decoded(eng, new_order(9, price=91, recv_time=T0 + 6))
    assert process_decoded(eng, new_order(10, price=91))[0]["ExecReason"] == C.EXEC_REASON_DUPLICATE_CLORDID
    assert process_decoded(eng, new_order(11, price=91))[0]["ExecType"] == C.EXEC_TYPE_NEW


def can(**kw: object) -> RecordFn:
    return lambda c, t: cancel(c, recv_time=t, **kw)  # type: ignore[arg-type]


CANCEL_CASES: list[tuple[str, RecordFn, int, int | None]] = [
    ("unknown symbol", can(sec=99, order_id=3), R.EXEC_REASON_UNKNOWN_SYMBOL, None),
    ("invalid side", can(side=0x30, order_id=3), R.EXEC_REASON_INVALID_SIDE, None),
    ("no reference", can(), R.EXEC_REASON_UNKNOWN_ORDER, None),
    ("unknown order id", can(order_id=999), R.EXEC_REASON_UNKNOWN_ORDER, None),
    ("unknown orig clordid", can(orig_clordid=1), R.EXEC_REASON_UNKNOWN_ORDER, None),  # session 0 has none
    ("wrong side", can(order_id=3, side=S), R.EXEC_REASON_UNKNOWN_ORDER, None),
    ("wrong security", can(order_id=4, sec=1), R.EXEC_REASON_UNKNOWN_ORDER, None),
    ("other account", can(order_id=3), R.EXEC_REASON_OTHER_ACCOUNT, None),
]


@pytest.mark.parametrize(("name", "make", "reason", "order_id"), CANCEL_CASES, ids=[c[0] for c in CANCEL_CASES])
def test_cancel_reject(name: str, make: RecordFn, reason: int, order_id: int | None) -> None:
    eng = make_engine()
    last_exec = _setup(eng)
    t = T0 + 1_000
    record = make(50, t)
    rec = _check_refused(eng, record, "OrderCancelReject", reason, last_exec, t)
    assert rec["CxlRejResponseTo"] == C.CXL_REJ_RESPONSE_TO_CANCEL
    assert rec["CxlRejReason"] == C.cxl_rej_reason(reason)
    assert rec["OrderID"] == C.NULL_U64 and rec["OrdStatus"] == C.ORD_STATUS_REJECTED
    assert rec["OrigClOrdID"] == int(record.view(np.uint8).reshape(-1)[24:32].view("<u8")[0])


def test_cancel_duplicate_clordid() -> None:
    eng = make_engine()
    last_exec = _setup(eng)
    before = _snapshot(eng)
    recs = process_decoded(eng, cancel(2, orig_clordid=1, side=S, session=1, recv_time=T0 + 9))
    assert [(r["template"], r["ExecReason"], r["dest"], r["ExecID"]) for r in recs] == [
        ("OrderCancelReject", C.EXEC_REASON_DUPLICATE_CLORDID, 1, last_exec + 1)
    ]
    assert _snapshot(eng) == before


def rep(orig: int = 1, **kw: object) -> RecordFn:
    """Replace of session 1's order ``orig`` (OrderID 1: sell 101 x 5, Day) unless overridden."""
    defaults: dict[str, object] = {"side": S, "price": 103, "qty": 5, "session": 1}
    defaults.update(kw)
    return lambda c, t: replace(c, orig, recv_time=t, **defaults)  # type: ignore[arg-type]


# (name, make, reason, OrderID the reject reports or None)
REPLACE_CASES: list[tuple[str, RecordFn, int, int | None]] = [
    ("unknown symbol", rep(sec=99), R.EXEC_REASON_UNKNOWN_SYMBOL, None),
    ("invalid side", rep(side=0x33), R.EXEC_REASON_INVALID_SIDE, None),
    ("market", rep(ord_type=M), R.EXEC_REASON_UNSUPPORTED, None),
    ("stop limit", rep(ord_type=C.ORD_TYPE_STOP_LIMIT), R.EXEC_REASON_UNSUPPORTED, None),
    ("invalid ord type", rep(ord_type=0x39), R.EXEC_REASON_INVALID_ORD_TYPE, None),
    ("invalid tif", rep(tif=0x35), R.EXEC_REASON_INVALID_TIME_IN_FORCE, None),
    ("reserved exec inst", rep(exec_inst=0x10), R.EXEC_REASON_INVALID_EXEC_INST, None),
    ("all-or-none", rep(exec_inst=C.EXEC_INST_ALL_OR_NONE), R.EXEC_REASON_UNSUPPORTED, None),
    ("zero qty", rep(qty=0), R.EXEC_REASON_INCORRECT_QTY, None),
    ("qty over max", rep(orig=3, sec=2, price=10_000, qty=1001), R.EXEC_REASON_QTY_OVER_MAX, None),
    ("no price", rep(price=None), R.EXEC_REASON_PRICE_REQUIRED, None),
    ("off tick", rep(orig=3, sec=2, side=C.SIDE_BUY, price=10_001), R.EXEC_REASON_PRICE_OFF_TICK, None),
    ("min qty", rep(min_qty=1), R.EXEC_REASON_UNSUPPORTED, None),
    ("max floor zero", rep(max_floor=0), R.EXEC_REASON_INVALID_MAX_FLOOR, None),
    ("post-only ioc", rep(exec_inst=1, tif=C.TIF_IOC), R.EXEC_REASON_UNSUPPORTED, None),
    ("max floor ioc", rep(max_floor=2, tif=C.TIF_IOC), R.EXEC_REASON_UNSUPPORTED, None),
    ("unknown orig", rep(orig=77), R.EXEC_REASON_UNKNOWN_ORDER, None),
    ("other session's clordid", rep(session=0), R.EXEC_REASON_UNKNOWN_ORDER, None),
    ("side differs", rep(side=C.SIDE_BUY), R.EXEC_REASON_UNKNOWN_ORDER, None),
    ("security differs", rep(sec=2, price=10_000), R.EXEC_REASON_UNKNOWN_ORDER, None),
    ("tif differs", rep(tif=C.TIF_GTC), R.EXEC_REASON_UNSUPPORTED, 1),
    ("exec inst differs", rep(exec_inst=1), R.EXEC_REASON_UNSUPPORTED, 1),
    ("post-only flag dropped", rep(orig=5, side=C.SIDE_BUY, price=96), R.EXEC_REASON_UNSUPPORTED, 6),
    ("outside band", rep(price=151), R.EXEC_REASON_PRICE_OUTSIDE_BAND, 1),
    ("notional", rep(orig=3, sec=2, side=C.SIDE_BUY, price=10_000, qty=51), R.EXEC_REASON_NOTIONAL_OVER_MAX, 4),
    ("post-only would cross", rep(orig=5, side=C.SIDE_BUY, price=101, exec_inst=1),
     R.EXEC_REASON_POST_ONLY_WOULD_CROSS, 6),
]  # fmt: skip


@pytest.mark.parametrize(("name", "make", "reason", "order_id"), REPLACE_CASES, ids=[c[0] for c in REPLACE_CASES])
def test_replace_reject(name: str, make: RecordFn, reason: int, order_id: int | None) -> None:
    eng = make_engine()
    last_exec = _setup(eng)
    t = T0 + 1_000
    before = _snapshot(eng)
    recs = process_decoded(eng, make(50, t))
    assert len(recs) == 1, recs
    (rec,) = recs
    assert (rec["template"], rec["ExecReason"], rec["ExecID"], rec["TransactTime"]) == (
        "OrderCancelReject", reason, last_exec + 1, t,
    )  # fmt: skip
    assert rec["CxlRejResponseTo"] == C.CXL_REJ_RESPONSE_TO_REPLACE
    assert rec["CxlRejReason"] == C.cxl_rej_reason(reason)
    if order_id is None:
        assert rec["OrderID"] == C.NULL_U64 and rec["OrdStatus"] == C.ORD_STATUS_REJECTED
    else:
        assert rec["OrderID"] == order_id and rec["OrdStatus"] == C.ORD_STATUS_NEW
    assert _snapshot(eng) == before
    assert eng.last_time == t
    _assert_clordid_consumed(eng, make(50, t))


def test_replace_rejected_when_phase_closed_and_gtd_expired() -> None:
    eng = make_engine()
    _setup(eng)
    out = np.zeros(64, dtype=schema.OUTPUT)
    # GTD order 5 (session 1, ClOrdID 4) is good through DAY0; the next day it cannot be replaced
    next_day = T0 + 86_400 * 10**9
    recs = process_decoded(eng, replace(60, 4, price=97, qty=5, tif=C.TIF_GTD, session=1, recv_time=next_day))
    assert [(r["ExecReason"], r["OrderID"]) for r in recs] == [(C.EXEC_REASON_INVALID_EXPIRE_DATE, 5)]
    eng.set_phase(next_day, [1], 0, out)  # Continuous -> Closed, no auction
    recs = process_decoded(eng, replace(61, 1, side=S, price=103, qty=5, session=1))
    assert [(r["ExecReason"], r["OrderID"]) for r in recs] == [(C.EXEC_REASON_TRADING_STATE_NOT_OPEN, 1)]
    # cancels are allowed in every phase
    recs = process_decoded(eng, cancel(62, orig_clordid=1, side=S, session=1))
    assert recs[0]["ExecType"] == C.EXEC_TYPE_CANCELED


MASS_CASES: list[tuple[str, RecordFn, int]] = [
    ("bad type", lambda c, t: mass_cancel(c, request_type=0x32, recv_time=t),
     R.EXEC_REASON_INVALID_MASS_CANCEL_REQUEST),
    ("security type without id", lambda c, t: mass_cancel(c, request_type=C.MASS_CANCEL_TYPE_SECURITY, recv_time=t),
     R.EXEC_REASON_INVALID_MASS_CANCEL_REQUEST),
    ("all type with id", lambda c, t: mass_cancel(c, sec=1, request_type=C.MASS_CANCEL_TYPE_ALL, recv_time=t),
     R.EXEC_REASON_INVALID_MASS_CANCEL_REQUEST),
    ("unknown security", lambda c, t: mass_cancel(c, sec=99, recv_time=t), R.EXEC_REASON_UNKNOWN_SYMBOL),
    ("bad side", lambda c, t: mass_cancel(c, sec=1, side=0x33, recv_time=t), R.EXEC_REASON_INVALID_SIDE),
    ("type before side", lambda c, t: mass_cancel(c, request_type=0, side=0x33, recv_time=t),
     R.EXEC_REASON_INVALID_MASS_CANCEL_REQUEST),
]  # fmt: skip


@pytest.mark.parametrize(("name", "make", "reason"), MASS_CASES, ids=[c[0] for c in MASS_CASES])
def test_mass_cancel_reject(name: str, make: RecordFn, reason: int) -> None:
    eng = make_engine()
    last_exec = _setup(eng)
    t = T0 + 1_000
    record = make(50, t)
    rec = _check_refused(eng, record, "OrderMassCancelReport", reason, last_exec, t)
    sent = record.view(np.uint8).reshape(-1)
    assert rec["MassCancelResponse"] == C.MASS_CANCEL_RESPONSE_REJECTED
    assert rec["MassCancelRejectReason"] == C.mass_cancel_reject_reason(reason)
    assert rec["TotalAffectedOrders"] == 0
    assert rec["SecurityID"] == int(sent[24:28].view("<u4")[0])
    assert rec["MassCancelRequestType"] == sent[32] and rec["Side"] == sent[33]


def test_mass_cancel_duplicate() -> None:
    eng = make_engine()
    _setup(eng)
    before = _snapshot(eng)
    recs = process_decoded(eng, mass_cancel(1, session=1))  # session 1 used ClOrdID 5
    assert [(r["template"], r["ExecReason"], r["TotalAffectedOrders"]) for r in recs] == [
        ("OrderMassCancelReport", C.EXEC_REASON_DUPLICATE_CLORDID, 0)
    ]
    assert _snapshot(eng) == before
