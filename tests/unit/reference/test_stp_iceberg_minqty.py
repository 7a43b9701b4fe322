"""Self-trade prevention (§3.11), iceberg refill (§3.6), MinQty and FOK (§3.5)."""

from __future__ import annotations

import pytest
from ref_common import make_engine

from qfix.testing import ReferenceEngine, assert_chain, new_order, process_decoded
from qfix.wire import codes as C  # noqa: N812

ER = "ExecutionReport"
S = C.SIDE_SELL
SELF = C.EXEC_REASON_SELF_MATCH


def er(exec_type: int, **kw: int) -> dict[str, int | str]:
    return {"template": ER, "ExecType": exec_type, **kw}


def _stp_book(eng: ReferenceEngine) -> None:
    """Offer 101: OrderID 1 (5 lots, session 1, account 500) then OrderID 2 (5 lots, session 2, account 600)."""
    process_decoded(
        eng,
        new_order(1, side=S, price=101, qty=5, session=1, session_account=500),
        new_order(1, side=S, price=101, qty=5, session=2, session_account=600),
    )


def test_cancel_aggressive() -> None:
    eng = make_engine()
    _stp_book(eng)
    recs = process_decoded(eng, new_order(1, price=101, qty=8, session=0, session_account=500, smp=1))
    assert_chain(
        recs,
        [
            er(C.EXEC_TYPE_NEW, OrderID=3),
            er(C.EXEC_TYPE_CANCELED, OrderID=3, LastQty=8, LeavesQty=0, ExecReason=SELF, dest=0),
        ],
    )
    assert eng.book(1, S) == [(101, 10, 2)]


def test_cancel_passive_then_trades_with_next() -> None:
    eng = make_engine()
    _stp_book(eng)
    recs = process_decoded(eng, new_order(1, price=101, qty=8, session=0, session_account=500, smp=2))
    assert_chain(
        recs,
        [
            er(C.EXEC_TYPE_NEW, OrderID=3),
            er(C.EXEC_TYPE_CANCELED, OrderID=1, LastQty=5, LeavesQty=0, ExecReason=SELF, ClOrdID=1, dest=1),
            {"template": "OrderDelete", "OrderID": 1},
            er(C.EXEC_TYPE_TRADE, OrderID=3, LastQty=5, LeavesQty=3),
            er(C.EXEC_TYPE_TRADE, OrderID=2, LastQty=5, LeavesQty=0, dest=2),
            {"template": "OrderExecuted", "OrderID": 2},
            {"template": "Trade", "TradeID": 1, "MatchEventIndicator": C.MEI_LAST_TRADE_MSG},
            {"template": "AddOrder", "OrderID": 3, "MDEntrySize": 3, "MDEntryType": C.MD_ENTRY_BID},
            {"template": "BookLevel", "MDEntryType": C.MD_ENTRY_BID, "MDUpdateAction": C.MD_UPDATE_NEW},
            {"template": "BookLevel", "MDEntryType": C.MD_ENTRY_OFFER, "MDUpdateAction": C.MD_UPDATE_DELETE},
            {"template": "BestBidOffer", "BidPx": 101, "BidSize": 3, "OfferPx": C.NULL_PRICE},
        ],
    )


def test_cancel_both() -> None:
    eng = make_engine()
    _stp_book(eng)
    recs = process_decoded(eng, new_order(1, price=101, qty=8, session=0, session_account=500, smp=3))
    assert_chain(
        recs,
        [
            er(C.EXEC_TYPE_NEW, OrderID=3),
            er(C.EXEC_TYPE_CANCELED, OrderID=1, LastQty=5, ExecReason=SELF, dest=1),
            {"template": "OrderDelete", "OrderID": 1},
            er(C.EXEC_TYPE_CANCELED, OrderID=3, LastQty=8, ExecReason=SELF, dest=0),
            {"template": "BookLevel", "MDEntryPx": 101, "MDEntrySize": 5, "NumberOfOrders": 1,
             "MDUpdateAction": C.MD_UPDATE_CHANGE},
            {"template": "BestBidOffer", "OfferPx": 101, "OfferSize": 5, "MatchEventIndicator": C.MEI_END_OF_EVENT},
        ],
    )  # fmt: skip


def test_decrement_taker_larger() -> None:
    eng = make_engine()
    _stp_book(eng)
    recs = process_decoded(eng, new_order(1, price=101, qty=8, session=0, session_account=500, smp=4))
    assert_chain(
        recs,
        [
            er(C.EXEC_TYPE_NEW, OrderID=3, LastQty=8),
            er(C.EXEC_TYPE_CANCELED, OrderID=1, LastQty=5, LeavesQty=0, ExecReason=SELF, dest=1),
            {"template": "OrderDelete", "OrderID": 1},
            er(C.EXEC_TYPE_RESTATED, OrderID=3, LastQty=5, LeavesQty=3, ExecReason=SELF,
               OrdStatus=C.ORD_STATUS_NEW, LastPx=101, dest=0),
            er(C.EXEC_TYPE_TRADE, OrderID=3, LastQty=3, LeavesQty=0, OrdStatus=C.ORD_STATUS_FILLED),
            er(C.EXEC_TYPE_TRADE, OrderID=2, LastQty=3, LeavesQty=2),
            {"template": "OrderExecuted", "OrderID": 2, "LeavesQty": 2},
            {"template": "Trade", "LastQty": 3},
            {"template": "BookLevel", "MDEntrySize": 2, "NumberOfOrders": 1, "MDUpdateAction": C.MD_UPDATE_CHANGE},
            {"template": "BestBidOffer", "OfferSize": 2},
        ],
    )  # fmt: skip


def test_decrement_maker_larger_restates_and_reduces() -> None:
    eng = make_engine()
    _stp_book(eng)
    recs = process_decoded(eng, new_order(1, price=101, qty=3, session=0, session_account=500, smp=4))
    assert_chain(
        recs,
        [
            er(C.EXEC_TYPE_NEW, OrderID=3),
            er(C.EXEC_TYPE_RESTATED, OrderID=1, LastQty=3, LeavesQty=2, ExecReason=SELF, dest=1),
            {"template": "OrderReduced", "OrderID": 1, "CanceledQty": 3, "LeavesQty": 2},
            er(C.EXEC_TYPE_CANCELED, OrderID=3, LastQty=3, LeavesQty=0, ExecReason=SELF, dest=0),
            {"template": "BookLevel", "MDEntrySize": 7, "NumberOfOrders": 2},
            {"template": "BestBidOffer", "OfferSize": 7},
        ],
    )
    # OrderQty was decremented: the maker keeps priority with 2 left of 2
    live = {o["order_id"]: o for o in eng.live_orders()}
    assert (live[1]["qty"], live[1]["leaves"], live[1]["prio"] < live[2]["prio"]) == (2, 2, True)


def test_decrement_equal_cancels_both() -> None:
    eng = make_engine()
    _stp_book(eng)
    recs = process_decoded(eng, new_order(1, price=101, qty=5, session=0, session_account=500, smp=4))
    kinds = [(r["template"], r.get("ExecType"), r.get("OrderID")) for r in recs]
    assert kinds[:4] == [
        (ER, C.EXEC_TYPE_NEW, 3),
        (ER, C.EXEC_TYPE_CANCELED, 1),
        ("OrderDelete", None, 1),
        (ER, C.EXEC_TYPE_CANCELED, 3),
    ]


def test_default_stp_and_configured_groups() -> None:
    # account 700 shares STP group 500; instrument B defaults to CancelAggressive
    eng = make_engine(stp_groups={700: 500})
    process_decoded(eng, new_order(1, sec=2, side=S, price=10_000, qty=5, session=1, session_account=500))
    recs = process_decoded(eng, new_order(1, sec=2, price=10_000, qty=5, session=0, session_account=700))
    assert [(r.get("ExecType"), r.get("ExecReason"), r.get("OrderID")) for r in recs] == [
        (C.EXEC_TYPE_NEW, 0, 2),
        (C.EXEC_TYPE_CANCELED, SELF, 2),
    ]
    # a different account (own group) trades normally
    recs = process_decoded(eng, new_order(2, sec=2, price=10_000, qty=5, session=0, session_account=701))
    assert any(r["template"] == "Trade" for r in recs)


def test_iceberg_refill_goes_to_tail_with_same_order_id() -> None:
    eng = make_engine()
    process_decoded(
        eng,
        new_order(1, side=S, price=101, qty=10, max_floor=3, session=1),
        new_order(1, side=S, price=101, qty=2, session=2),
    )
    assert eng.book(1, S) == [(101, 5, 2)]
    recs = process_decoded(eng, new_order(1, price=101, qty=7))
    assert_chain(
        recs,
        [
            er(C.EXEC_TYPE_NEW, OrderID=3),
            er(C.EXEC_TYPE_TRADE, OrderID=3, LastQty=3, LeavesQty=4),
            er(C.EXEC_TYPE_TRADE, OrderID=1, LastQty=3, LeavesQty=7, dest=1),
            {"template": "OrderExecuted", "OrderID": 1, "LastQty": 3, "LeavesQty": 0},
            {"template": "Trade", "TradeID": 1, "MatchEventIndicator": 0},
            {"template": "AddOrder", "OrderID": 1, "MDEntrySize": 3, "MDEntryPx": 101},
            er(C.EXEC_TYPE_TRADE, OrderID=3, LastQty=2, LeavesQty=2),
            er(C.EXEC_TYPE_TRADE, OrderID=2, LastQty=2, LeavesQty=0, dest=2),
            {"template": "OrderExecuted", "OrderID": 2, "LeavesQty": 0},
            {"template": "Trade", "TradeID": 2},
            er(C.EXEC_TYPE_TRADE, OrderID=3, LastQty=2, LeavesQty=0, OrdStatus=C.ORD_STATUS_FILLED),
            er(C.EXEC_TYPE_TRADE, OrderID=1, LastQty=2, LeavesQty=5),
            {"template": "OrderExecuted", "OrderID": 1, "LeavesQty": 1},
            {"template": "Trade", "TradeID": 3, "MatchEventIndicator": C.MEI_LAST_TRADE_MSG},
            {"template": "BookLevel", "MDEntrySize": 1, "NumberOfOrders": 1, "MDUpdateAction": C.MD_UPDATE_CHANGE},
            {"template": "BestBidOffer", "OfferSize": 1, "MatchEventIndicator": C.MEI_END_OF_EVENT},
        ],
    )
    (o,) = eng.live_orders()
    assert (o["order_id"], o["leaves"], o["shown"], o["display"]) == (1, 5, 1, 3)


def test_iceberg_display_at_least_qty_is_plain() -> None:
    eng = make_engine()
    recs = process_decoded(eng, new_order(1, side=S, price=101, qty=10, max_floor=10))
    assert recs[1]["MDEntrySize"] == 10
    (o,) = eng.live_orders()
    assert (o["display"], o["shown"]) == (10, 10)


def test_fok_killed_consumes_order_id_and_leaves_book() -> None:
    eng = make_engine()
    process_decoded(eng, new_order(1, side=S, price=101, qty=5, session=1))
    recs = process_decoded(eng, new_order(1, price=101, qty=6, tif=C.TIF_FOK))
    assert_chain(
        recs,
        [er(C.EXEC_TYPE_CANCELED, OrderID=2, ClOrdID=1, LastPx=101, LastQty=6, LeavesQty=0,
            OrdStatus=C.ORD_STATUS_CANCELED, ExecReason=C.EXEC_REASON_IOC_FOK_REMAINDER, dest=0)],
    )  # fmt: skip
    assert eng.book(1, S) == [(101, 5, 1)]
    recs = process_decoded(eng, new_order(2, price=101, qty=5, tif=C.TIF_FOK))
    assert recs[0]["OrderID"] == 3 and recs[0]["ExecType"] == C.EXEC_TYPE_NEW
    assert sum(int(r["LastQty"]) for r in recs if r["template"] == "Trade") == 5
    assert eng.live_orders() == []


def test_min_qty_counts_across_levels_and_iceberg_refills() -> None:
    eng = make_engine()
    process_decoded(
        eng,
        new_order(1, side=S, price=101, qty=9, max_floor=2, session=1),
        new_order(1, side=S, price=102, qty=3, session=2),
    )
    recs = process_decoded(eng, new_order(1, price=102, qty=20, min_qty=12, tif=C.TIF_IOC))
    assert sum(int(r["LastQty"]) for r in recs if r["template"] == "Trade") == 12
    recs = process_decoded(eng, new_order(2, side=S, price=90, qty=5, min_qty=1))
    assert [(r["ExecType"], r["ExecReason"]) for r in recs] == [(C.EXEC_TYPE_CANCELED, C.EXEC_REASON_MIN_QTY_NOT_MET)]


@pytest.mark.parametrize(("smp", "expected"), [(1, 0), (2, 5), (3, 0), (4, 0)])
def test_min_qty_sees_stp_effects(smp: int, expected: int) -> None:
    """E includes STP: own order at the head blocks (1, 3), is skipped (2) or eats T (4)."""
    eng = make_engine()
    _stp_book(eng)
    recs = process_decoded(eng, new_order(1, price=101, qty=5, min_qty=5, session=0, session_account=500, smp=smp))
    if expected < 5:
        assert [(r["ExecType"], r["ExecReason"]) for r in recs] == [
            (C.EXEC_TYPE_CANCELED, C.EXEC_REASON_MIN_QTY_NOT_MET)
        ]
        assert eng.book(1, S) == [(101, 10, 2)]  # no STP cancels happened
    else:
        assert sum(int(r["LastQty"]) for r in recs if r["template"] == "Trade") == expected


def test_decrement_shrinks_what_min_qty_can_trade() -> None:
    eng = make_engine()
    _stp_book(eng)
    # Decrement with own 5 at the head: 8 - 5 = 3 left to trade -> MinQty 4 fails
    recs = process_decoded(eng, new_order(1, price=101, qty=8, min_qty=4, session=0, session_account=500, smp=4))
    assert recs[0]["ExecReason"] == C.EXEC_REASON_MIN_QTY_NOT_MET and len(recs) == 1
