"""Cancel/replace priority rules (§3.8), mass cancel, COD, admin cancel and expiry (§3.4, §3.9)."""

from __future__ import annotations

import numpy as np
from ref_common import DAY0, T0, make_engine

from qfix.engine.contract import OUTPUT_FULL, STATUS_OK
from qfix.testing import (
    ReferenceEngine,
    assert_chain,
    cancel,
    decode,
    mass_cancel,
    new_order,
    process_decoded,
    replace,
)
from qfix.wire import codes as C  # noqa: N812
from qfix.wire import schema

ER = "ExecutionReport"
S = C.SIDE_SELL
B = C.SIDE_BUY


def er(exec_type: int, **kw: int) -> dict[str, int | str]:
    return {"template": ER, "ExecType": exec_type, **kw}


def _book(eng: ReferenceEngine) -> None:
    """Bids at 99: OrderID 1 (10 lots, ClOrdID 1, session 0), OrderID 2 (5 lots, session 1)."""
    process_decoded(eng, new_order(1, price=99, qty=10), new_order(1, price=99, qty=5, session=1))


def _queue(eng: ReferenceEngine, price: int) -> list[int]:
    return [o["order_id"] for o in sorted(eng.live_orders(), key=lambda o: o["prio"]) if o["price"] == price]


def test_reduce_keeps_priority_and_order_id() -> None:
    eng = make_engine()
    _book(eng)
    recs = process_decoded(eng, replace(5, 1, price=99, qty=6))
    assert_chain(
        recs,
        [
            er(C.EXEC_TYPE_REPLACED, ClOrdID=5, OrderID=1, LastPx=99, LastQty=6, LeavesQty=6,
               OrdStatus=C.ORD_STATUS_NEW, ExecReason=0, dest=0),
            {"template": "OrderReduced", "OrderID": 1, "CanceledQty": 4, "LeavesQty": 6},
            {"template": "BookLevel", "MDEntryPx": 99, "MDEntrySize": 11, "NumberOfOrders": 2,
             "MDUpdateAction": C.MD_UPDATE_CHANGE},
            {"template": "BestBidOffer", "BidPx": 99, "BidSize": 11},
        ],
    )  # fmt: skip
    assert _queue(eng, 99) == [1, 2]
    # the order now answers to the new ClOrdID only
    assert process_decoded(eng, cancel(6, orig_clordid=1))[0]["ExecReason"] == C.EXEC_REASON_UNKNOWN_ORDER
    assert process_decoded(eng, cancel(7, orig_clordid=5))[0]["ExecType"] == C.EXEC_TYPE_CANCELED


def test_same_values_replace_emits_only_replaced() -> None:
    eng = make_engine()
    _book(eng)
    recs = process_decoded(eng, replace(5, 1, price=99, qty=10))
    assert_chain(recs, [er(C.EXEC_TYPE_REPLACED, OrderID=1, LastQty=10, LeavesQty=10)])


def test_qty_increase_loses_priority() -> None:
    eng = make_engine()
    _book(eng)
    recs = process_decoded(eng, replace(5, 1, price=99, qty=11))
    assert_chain(
        recs,
        [
            er(C.EXEC_TYPE_REPLACED, ClOrdID=5, OrderID=3, LastQty=11, LeavesQty=11),
            {"template": "OrderReplace", "OrigOrderID": 1, "OrderID": 3, "MDEntryPx": 99, "MDEntrySize": 11,
             "MDEntryType": C.MD_ENTRY_BID},
            {"template": "BookLevel", "MDEntrySize": 16, "NumberOfOrders": 2},
            {"template": "BestBidOffer", "BidSize": 16},
        ],
    )  # fmt: skip
    assert _queue(eng, 99) == [2, 3]


def test_price_change_moves_level() -> None:
    eng = make_engine()
    _book(eng)
    recs = process_decoded(eng, replace(5, 1, price=98, qty=10))
    assert [r["template"] for r in recs] == [ER, "OrderReplace", "BookLevel", "BookLevel", "BestBidOffer"]
    assert (recs[2]["MDEntryPx"], recs[2]["MDUpdateAction"]) == (99, C.MD_UPDATE_CHANGE)
    assert (recs[3]["MDEntryPx"], recs[3]["MDUpdateAction"]) == (98, C.MD_UPDATE_NEW)  # bids descending


def test_display_change_loses_priority() -> None:
    eng = make_engine()
    _book(eng)
    recs = process_decoded(eng, replace(5, 1, price=99, qty=10, max_floor=4))
    assert recs[0]["OrderID"] == 3 and recs[1]["template"] == "OrderReplace" and recs[1]["MDEntrySize"] == 4
    assert _queue(eng, 99) == [2, 3]


def test_replace_that_crosses_deletes_then_matches() -> None:
    eng = make_engine()
    _book(eng)
    process_decoded(eng, new_order(1, side=S, price=101, qty=4, session=2))  # OrderID 3
    recs = process_decoded(eng, replace(5, 1, price=101, qty=10))
    assert_chain(
        recs,
        [
            er(C.EXEC_TYPE_REPLACED, OrderID=4, LastPx=101, LastQty=10, LeavesQty=10),
            {"template": "OrderDelete", "OrderID": 1},
            er(C.EXEC_TYPE_TRADE, OrderID=4, ClOrdID=5, LastQty=4, LeavesQty=6, LastLiquidityInd=C.LIQUIDITY_REMOVED),
            er(C.EXEC_TYPE_TRADE, OrderID=3, LastQty=4, LeavesQty=0, dest=2),
            {"template": "OrderExecuted", "OrderID": 3},
            {"template": "Trade", "AggressorSide": C.AGGRESSOR_BUY},
            {"template": "AddOrder", "OrderID": 4, "MDEntryPx": 101, "MDEntrySize": 6},
            {"template": "BookLevel", "MDEntryPx": 101, "MDEntryType": C.MD_ENTRY_BID,
             "MDUpdateAction": C.MD_UPDATE_NEW},
            {"template": "BookLevel", "MDEntryPx": 99, "MDEntryType": C.MD_ENTRY_BID, "MDEntrySize": 5,
             "MDUpdateAction": C.MD_UPDATE_CHANGE},
            {"template": "BookLevel", "MDEntryPx": 101, "MDEntryType": C.MD_ENTRY_OFFER,
             "MDUpdateAction": C.MD_UPDATE_DELETE},
            {"template": "BestBidOffer", "BidPx": 101, "BidSize": 6, "OfferPx": C.NULL_PRICE},
        ],
    )  # fmt: skip


def test_replace_to_filled_qty_cancels() -> None:
    eng = make_engine()
    _book(eng)
    process_decoded(eng, new_order(1, side=S, price=99, qty=4, session=2))  # fills 4 of OrderID 1
    recs = process_decoded(eng, replace(5, 1, price=99, qty=4))
    assert_chain(
        recs,
        [
            er(C.EXEC_TYPE_CANCELED, ClOrdID=5, OrderID=1, LastQty=6, LeavesQty=0,
               ExecReason=C.EXEC_REASON_USER_REQUEST, OrdStatus=C.ORD_STATUS_CANCELED),
            {"template": "OrderDelete", "OrderID": 1},
            {"template": "BookLevel", "MDEntrySize": 5, "NumberOfOrders": 1},
            {"template": "BestBidOffer", "BidSize": 5},
        ],
    )  # fmt: skip


def test_partially_filled_reduce_reports_partial_status() -> None:
    eng = make_engine()
    _book(eng)
    process_decoded(eng, new_order(1, side=S, price=99, qty=4, session=2))
    recs = process_decoded(eng, replace(5, 1, price=99, qty=8))
    assert_chain(recs[:1], [er(C.EXEC_TYPE_REPLACED, OrderID=1, LastQty=8, LeavesQty=4,
                               OrdStatus=C.ORD_STATUS_PARTIALLY_FILLED)])  # fmt: skip


def test_iceberg_reduce_keeps_shown_when_possible() -> None:
    eng = make_engine()
    process_decoded(eng, new_order(1, price=99, qty=10, max_floor=4))
    recs = process_decoded(eng, replace(2, 1, price=99, qty=6, max_floor=4))
    assert [r["template"] for r in recs] == [ER]  # Shown stays 4: no OrderReduced, no level change
    recs = process_decoded(eng, replace(3, 2, price=99, qty=3, max_floor=4))
    assert [(r["template"], r.get("CanceledQty")) for r in recs][:2] == [(ER, None), ("OrderReduced", 1)]


def _spread(eng: ReferenceEngine) -> None:
    """Orders of account 1000 (session 0) and 1001 (session 1) on instruments 1 and 2."""
    process_decoded(
        eng,
        new_order(1, sec=2, price=10_000, qty=1, session=0),  # 1
        new_order(2, price=99, qty=1, session=0),  # 2
        new_order(1, side=S, price=101, qty=1, session=1, account=1000),  # 3: account 1000 via session 1
        new_order(3, side=S, price=102, qty=1, session=0),  # 4
        new_order(2, price=98, qty=1, session=1),  # 5: account 1001
    )


def test_mass_cancel_all_of_account_any_session() -> None:
    eng = make_engine()
    _spread(eng)
    recs = process_decoded(eng, mass_cancel(10, session=0, recv_time=T0))
    assert_chain(
        recs,
        [
            {"template": "OrderMassCancelReport", "ClOrdID": 10, "ExecID": 6, "TotalAffectedOrders": 4,
             "SecurityID": C.NULL_U32, "MassCancelRequestType": C.MASS_CANCEL_TYPE_ALL,
             "MassCancelResponse": C.MASS_CANCEL_RESPONSE_ALL, "MassCancelRejectReason": C.MASS_CANCEL_REJECT_NONE,
             "ExecReason": 0, "Account": C.NULL_U32, "Side": C.MASS_CANCEL_SIDE_BOTH, "dest": 0},
            er(C.EXEC_TYPE_CANCELED, OrderID=2, ClOrdID=2, ExecReason=C.EXEC_REASON_MASS_CANCEL, dest=0),
            {"template": "OrderDelete", "OrderID": 2},
            er(C.EXEC_TYPE_CANCELED, OrderID=3, ClOrdID=1, ExecReason=C.EXEC_REASON_MASS_CANCEL, dest=1),
            {"template": "OrderDelete", "OrderID": 3},
            er(C.EXEC_TYPE_CANCELED, OrderID=4, dest=0),
            {"template": "OrderDelete", "OrderID": 4},
            {"template": "BookLevel", "SecurityID": 1, "MDEntryPx": 99, "MDUpdateAction": C.MD_UPDATE_DELETE},
            {"template": "BookLevel", "SecurityID": 1, "MDEntryPx": 101, "MDUpdateAction": C.MD_UPDATE_DELETE},
            {"template": "BookLevel", "SecurityID": 1, "MDEntryPx": 102, "MDUpdateAction": C.MD_UPDATE_DELETE},
            {"template": "BestBidOffer", "SecurityID": 1, "BidPx": 98, "OfferPx": C.NULL_PRICE,
             "MatchEventIndicator": C.MEI_END_OF_EVENT},
            er(C.EXEC_TYPE_CANCELED, OrderID=1, dest=0),
            {"template": "OrderDelete", "SecurityID": 2, "OrderID": 1},
            {"template": "BookLevel", "SecurityID": 2, "MDEntryPx": 10_000},
            {"template": "BestBidOffer", "SecurityID": 2, "MatchEventIndicator": C.MEI_END_OF_EVENT},
        ],
    )  # fmt: skip
    assert [o["order_id"] for o in eng.live_orders()] == [5]


def test_mass_cancel_by_security_and_side_with_explicit_account() -> None:
    eng = make_engine()
    _spread(eng)
    recs = process_decoded(eng, mass_cancel(10, sec=1, side=S, account=1000, session=1))
    assert recs[0]["TotalAffectedOrders"] == 2 and recs[0]["Account"] == 1000 and recs[0]["dest"] == 1
    assert recs[0]["MassCancelResponse"] == C.MASS_CANCEL_RESPONSE_SECURITY
    assert [o["order_id"] for o in eng.live_orders()] == [1, 2, 5]
    empty = process_decoded(eng, mass_cancel(11, sec=1, side=S, session=1))
    assert [(r["template"], r["TotalAffectedOrders"]) for r in empty] == [("OrderMassCancelReport", 0)]


def _command(eng: ReferenceEngine, name: str, *args: object) -> list[dict[str, int | str]]:
    out = np.zeros(256, dtype=schema.OUTPUT)
    res = getattr(eng, name)(*args, out)
    assert res.status == STATUS_OK and res.consumed == 1
    return [decode(out["message"][k].tobytes(), int(out["dest"][k])) for k in range(res.written)]


def test_cancel_sessions_and_accounts() -> None:
    eng = make_engine()
    _spread(eng)
    recs = _command(eng, "cancel_sessions", T0 + 7, [1])
    cancels = [(r["OrderID"], r["ExecReason"], r["dest"], r["TransactTime"]) for r in recs if r["template"] == ER]
    cod = C.EXEC_REASON_CANCEL_ON_DISCONNECT
    assert cancels == [(3, cod, 1, T0 + 7), (5, cod, 1, T0 + 7)]
    recs = _command(eng, "cancel_accounts", T0 + 8, [1000])
    assert [(r["OrderID"], r["ExecReason"]) for r in recs if r["template"] == ER] == [
        (2, C.EXEC_REASON_ADMIN), (4, C.EXEC_REASON_ADMIN), (1, C.EXEC_REASON_ADMIN),
    ]  # fmt: skip
    assert eng.live_orders() == []
    assert _command(eng, "cancel_accounts", T0 + 9, [1000]) == []


def test_expire_and_end_of_day() -> None:
    eng = make_engine()
    process_decoded(
        eng,
        new_order(1, price=90, tif=C.TIF_GTD, expire_date=DAY0, recv_time=T0),  # 1
        new_order(2, price=91, tif=C.TIF_GTD, expire_date=DAY0 + 1, recv_time=T0),  # 2
        new_order(3, price=92, tif=C.TIF_GTC, recv_time=T0),  # 3
        new_order(4, price=93, tif=C.TIF_DAY, recv_time=T0),  # 4
        new_order(5, price=94, tif=C.TIF_GTD, expire_date=DAY0 + 2, recv_time=T0),  # 5
    )
    assert _command(eng, "expire", T0 + 1) == []  # nothing is before today
    day1 = T0 + 86_400 * 10**9
    recs = _command(eng, "expire", day1)
    assert_chain(
        recs,
        [
            er(C.EXEC_TYPE_EXPIRED, OrderID=1, ClOrdID=1, LastPx=90, LastQty=10, LeavesQty=0,
               OrdStatus=C.ORD_STATUS_EXPIRED, ExecReason=C.EXEC_REASON_EXPIRED, TransactTime=day1),
            {"template": "OrderDelete", "OrderID": 1},
            {"template": "BookLevel", "MDEntryPx": 90, "MDUpdateAction": C.MD_UPDATE_DELETE},
        ],
    )  # fmt: skip
    # end_of_day on day 1: Day order 4 and GTD 2 (ExpireDate = today) go; GTC 3 and GTD 5 stay
    recs = _command(eng, "end_of_day", day1 + 5)
    assert [r["OrderID"] for r in recs if r["template"] == ER] == [2, 4]
    assert {o["order_id"] for o in eng.live_orders()} == {3, 5}


def test_command_output_full_does_nothing() -> None:
    eng = make_engine()
    _spread(eng)
    before = eng.state_hash()
    link0 = eng.event_hash()
    res = eng.end_of_day(T0 + 10, np.zeros(19, dtype=schema.OUTPUT))  # U = 16 + 4 x 5 = 36
    assert (res.status, res.consumed, res.written, res.needed) == (OUTPUT_FULL, 0, 0, 36)
    assert eng.state_hash() == before
    assert eng.event_hash() != link0  # still a (empty) link
    res = eng.end_of_day(T0 + 10, np.zeros(36, dtype=schema.OUTPUT))
    assert res.status == STATUS_OK and res.written == 5 * 2 + 5 + 2  # ER + delete each; 4 levels + BBO; 1 + BBO
