"""Continuous-trading chains of the fast engine, checked record by record (ENGINE.md §2-§3)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from _engine_records import NULL64, TICK, batch, cancel, decode, instrument, mass, new_out, nos, replace

from qfix.engine.config import EngineConfig
from qfix.engine.engine import Engine
from qfix.wire import codes

NULLQ = codes.NULL_U64
MD = codes.MD_DEST


def run(eng: Engine, *records: np.ndarray) -> list[dict[str, Any]]:
    out = new_out(4096)
    res = eng.process(batch(*records), out)
    assert res.status == 0 and res.consumed == len(records)
    eng.check_invariants()
    return decode(out[: res.written])


def kinds(rows: list[dict[str, Any]]) -> list[str]:
    short = {
        "ExecutionReport": "ER", "AddOrder": "ADD", "OrderExecuted": "EXE", "OrderReduced": "RED",
        "OrderDelete": "DEL", "OrderReplace": "REP", "Trade": "TRD", "BookLevel": "BL",
        "BestBidOffer": "BBO", "OrderCancelReject": "OCR", "OrderMassCancelReport": "OMCR",
        "SecurityStatus": "SS",
    }  # fmt: skip
    names = []
    for r in rows:
        name = short[r["t"]]
        if name == "ER":
            name += chr(r["ExecType"])
        names.append(name)
    return names


def test_limit_rests_with_full_market_data(make_engine: Any) -> None:
    eng = make_engine()
    rows = run(eng, nos(1, "buy", 100, 10, recv=5))
    assert kinds(rows) == ["ER0", "ADD", "BL", "BBO"]
    er, add, bl, bbo = rows
    assert (er["OrderID"], er["ExecID"], er["LastPx"], er["LastQty"], er["LeavesQty"]) == (1, 1, 100 * TICK, 10, 10)
    assert er["dest"] == 1 and er["TransactTime"] == 5
    assert add["OrderID"] == 1 and add["MDEntrySize"] == 10 and add["MDEntryType"] == codes.MD_ENTRY_BID
    assert add["dest"] == MD and add["MatchEventIndicator"] == 0
    assert (bl["MDEntrySize"], bl["NumberOfOrders"], bl["MDUpdateAction"]) == (10, 1, codes.MD_UPDATE_NEW)
    assert bbo["BidPx"] == 100 * TICK and bbo["OfferPx"] == codes.NULL_PRICE and bbo["BidSize"] == 10
    assert bbo["MatchEventIndicator"] == codes.MEI_END_OF_EVENT


def test_match_steps_canonical_order(make_engine: Any) -> None:
    eng = make_engine()
    run(eng, nos(1, "sell", 101, 5, session=2), nos(2, "sell", 102, 5, session=3))
    rows = run(eng, nos(3, "buy", 102, 7, session=1))
    assert kinds(rows) == [
        "ER0", "ERF", "ERF", "EXE", "TRD", "ERF", "ERF", "EXE", "TRD", "BL", "BL", "BBO",
    ]  # fmt: skip
    taker, maker = rows[1], rows[2]
    assert taker["LastLiquidityInd"] == codes.LIQUIDITY_REMOVED and taker["dest"] == 1
    assert maker["LastLiquidityInd"] == codes.LIQUIDITY_ADDED and maker["dest"] == 2
    assert maker["OrdStatus"] == codes.ORD_STATUS_FILLED and taker["OrdStatus"] == codes.ORD_STATUS_PARTIALLY_FILLED
    assert rows[3]["LeavesQty"] == 0 and rows[3]["AggressorSide"] == codes.AGGRESSOR_BUY
    assert rows[4]["TradeID"] == 1 and rows[8]["TradeID"] == 2
    assert rows[8]["LastPx"] == 102 * TICK and rows[8]["LastQty"] == 2
    assert rows[4]["MatchEventIndicator"] == 0 and rows[8]["MatchEventIndicator"] == codes.MEI_LAST_TRADE_MSG
    assert [r["MDUpdateAction"] for r in rows[9:11]] == [codes.MD_UPDATE_DELETE, codes.MD_UPDATE_CHANGE]
    assert rows[11]["OfferPx"] == 102 * TICK and rows[11]["OfferSize"] == 3
    exec_ids = [r["ExecID"] for r in rows if r["t"] == "ExecutionReport"]
    assert exec_ids == sorted(exec_ids) and len(set(exec_ids)) == len(exec_ids)


def test_market_order_collar_and_empty_side(make_engine: Any) -> None:
    eng = make_engine(instrument(1, collar=2))
    rows = run(eng, nos(1, "buy", None, 5))
    assert kinds(rows) == ["ER0", "ER4"]
    assert rows[1]["ExecReason"] == codes.EXEC_REASON_IOC_FOK_REMAINDER and rows[1]["LastPx"] == codes.NULL_PRICE
    run(eng, nos(2, "sell", 100, 1, session=2), nos(3, "sell", 102, 1, session=2), nos(4, "sell", 103, 1, session=2))
    rows = run(eng, nos(5, "buy", None, 5))
    fills = [r["LastPx"] // TICK for r in rows if r["t"] == "Trade"]
    assert fills == [100, 102]  # 103 is beyond best ask 100 + collar 2
    cancels = [r for r in rows if r["t"] == "ExecutionReport" and r["ExecType"] == codes.EXEC_TYPE_CANCELED]
    assert cancels[0]["LastQty"] == 3


def test_ioc_and_fok(make_engine: Any) -> None:
    eng = make_engine()
    run(eng, nos(1, "sell", 100, 5, session=2))
    rows = run(eng, nos(2, "buy", 100, 8, tif=codes.TIF_FOK))
    assert kinds(rows) == ["ER4"]
    assert rows[0]["OrderID"] == 2 and rows[0]["LastQty"] == 8 and rows[0]["LeavesQty"] == 0
    assert rows[0]["ExecReason"] == codes.EXEC_REASON_IOC_FOK_REMAINDER
    rows = run(eng, nos(3, "buy", 100, 5, tif=codes.TIF_FOK))
    assert kinds(rows)[:2] == ["ER0", "ERF"] and rows[0]["OrderID"] == 3
    run(eng, nos(4, "sell", 100, 5, session=2))
    rows = run(eng, nos(5, "buy", 100, 8, tif=codes.TIF_IOC))
    assert kinds(rows)[-3:] == ["ER4", "BL", "BBO"] and rows[-3]["LastQty"] == 3


def test_min_qty(make_engine: Any) -> None:
    eng = make_engine()
    run(eng, nos(1, "sell", 100, 5, session=2))
    rows = run(eng, nos(2, "buy", 100, 10, min_qty=6))
    assert kinds(rows) == ["ER4"] and rows[0]["ExecReason"] == codes.EXEC_REASON_MIN_QTY_NOT_MET
    rows = run(eng, nos(3, "buy", 100, 10, min_qty=5))
    assert kinds(rows) == ["ER0", "ERF", "ERF", "EXE", "TRD", "ADD", "BL", "BL", "BBO"]
    rows = run(eng, nos(4, "buy", 99, 10, min_qty=1))  # does not cross: E = 0
    assert kinds(rows) == ["ER4"]


def test_min_qty_counts_stp_effects(make_engine: Any) -> None:
    eng = make_engine()
    run(eng, nos(1, "sell", 100, 5, session=1), nos(2, "sell", 100, 5, session=2))
    # CancelAggressive stops at its own order at the head: E = 0
    rows = run(eng, nos(3, "buy", 100, 5, min_qty=1, smp=codes.SMP_CANCEL_AGGRESSIVE))
    assert kinds(rows) == ["ER4"]
    # CancelPassive removes it and continues: E = 5
    rows = run(eng, nos(4, "buy", 100, 5, min_qty=5, smp=codes.SMP_CANCEL_PASSIVE))
    assert kinds(rows)[:3] == ["ER0", "ER4", "DEL"]


def test_post_only(make_engine: Any) -> None:
    eng = make_engine()
    run(eng, nos(1, "sell", 100, 5, session=2))
    rows = run(eng, nos(2, "buy", 100, 1, exec_inst=codes.EXEC_INST_POST_ONLY))
    assert rows[0]["ExecType"] == codes.EXEC_TYPE_REJECTED
    assert rows[0]["ExecReason"] == codes.EXEC_REASON_POST_ONLY_WOULD_CROSS and rows[0]["OrderID"] == NULLQ
    rows = run(eng, nos(3, "buy", 99, 1, exec_inst=codes.EXEC_INST_POST_ONLY))
    assert kinds(rows) == ["ER0", "ADD", "BL", "BBO"] and rows[0]["OrderID"] == 2


def test_iceberg_refill_goes_to_tail(make_engine: Any) -> None:
    eng = make_engine()
    run(eng, nos(1, "sell", 100, 10, session=2, max_floor=3), nos(2, "sell", 100, 4, session=3))
    rows = run(eng, nos(3, "buy", 100, 5))
    assert kinds(rows) == [
        "ER0", "ERF", "ERF", "EXE", "TRD", "ADD", "ERF", "ERF", "EXE", "TRD", "BL", "BBO",
    ]  # fmt: skip
    assert rows[3]["LeavesQty"] == 0 and rows[5]["OrderID"] == 1 and rows[5]["MDEntrySize"] == 3
    assert rows[7]["OrderID"] == 2  # the refill lost priority to order 2
    assert rows[-2]["MDEntrySize"] == 3 + 2 and rows[-2]["NumberOfOrders"] == 2


def test_cancel_paths(make_engine: Any) -> None:
    eng = make_engine()
    run(eng, nos(1, "buy", 100, 10, session=1, sess_account=7), nos(2, "buy", 99, 10, session=2, sess_account=9))
    rows = run(eng, cancel(3, orig=1, session=1))
    assert kinds(rows) == ["ER4", "DEL", "BL", "BBO"]
    assert (
        rows[0]["ClOrdID"] == 3 and rows[0]["LastQty"] == 10 and rows[0]["ExecReason"] == codes.EXEC_REASON_USER_REQUEST
    )
    rows = run(eng, cancel(4, order_id=2, session=1, sess_account=7))
    assert kinds(rows) == ["OCR"] and rows[0]["ExecReason"] == codes.EXEC_REASON_OTHER_ACCOUNT
    assert rows[0]["OrderID"] == NULLQ and rows[0]["OrdStatus"] == codes.ORD_STATUS_REJECTED
    rows = run(eng, cancel(5, order_id=2, session=3, sess_account=9))  # same account, other session
    assert kinds(rows) == ["ER4", "ER4", "DEL", "BL", "BBO"]
    assert rows[0]["dest"] == 2 and rows[1]["dest"] == 3 and rows[0]["ExecID"] == rows[1]["ExecID"]
    rows = run(eng, cancel(6, order_id=2, session=3))
    assert rows[0]["ExecReason"] == codes.EXEC_REASON_UNKNOWN_ORDER and rows[0]["CxlRejReason"] == 1
    rows = run(eng, cancel(7, session=3))
    assert rows[0]["ExecReason"] == codes.EXEC_REASON_UNKNOWN_ORDER
    rows = run(eng, cancel(7, orig=1, session=3))
    assert rows[0]["ExecReason"] == codes.EXEC_REASON_DUPLICATE_CLORDID


def test_replace_priority_rules(make_engine: Any) -> None:
    eng = make_engine()
    run(eng, nos(1, "buy", 100, 10), nos(2, "buy", 100, 10, session=2))
    rows = run(eng, replace(3, 1, 100, 6))  # reduce: keeps priority and OrderID
    assert kinds(rows) == ["ER5", "RED", "BL", "BBO"]
    assert rows[0]["OrderID"] == 1 and rows[0]["LeavesQty"] == 6 and rows[0]["ClOrdID"] == 3
    assert (rows[1]["CanceledQty"], rows[1]["LeavesQty"]) == (4, 6)
    rows = run(eng, replace(4, 3, 99, 6))  # price change: new OrderID
    assert kinds(rows) == ["ER5", "REP", "BL", "BL", "BBO"]
    assert rows[0]["OrderID"] == 3 and rows[1]["OrigOrderID"] == 1 and rows[1]["OrderID"] == 3
    run(eng, nos(5, "sell", 101, 4, session=3))
    rows = run(eng, replace(6, 4, 101, 6))  # crosses: delete, then match
    assert kinds(rows)[:6] == ["ER5", "DEL", "ERF", "ERF", "EXE", "TRD"]
    assert rows[0]["OrderID"] == 5
    rows = run(eng, replace(7, 6, 101, 4))  # OrderQty <= CumQty: cancelled
    assert kinds(rows) == ["ER4", "DEL", "BL", "BBO"] and rows[0]["ClOrdID"] == 7
    rows = run(eng, replace(8, 6, 101, 4))
    assert kinds(rows) == ["OCR"] and rows[0]["ExecReason"] == codes.EXEC_REASON_UNKNOWN_ORDER
    rows = run(eng, replace(9, 2, 100, 10, session=2, tif=codes.TIF_GTC))
    assert rows[0]["ExecReason"] == codes.EXEC_REASON_UNSUPPORTED and rows[0]["OrderID"] == 2
    assert rows[0]["OrdStatus"] == codes.ORD_STATUS_NEW


def test_mass_cancel_orders_by_instrument_then_order_id(make_engine: Any) -> None:
    eng = make_engine(instrument(1), instrument(2))
    run(
        eng,
        nos(1, "buy", 100, 1, sec=2),
        nos(2, "sell", 101, 1, sec=1),
        nos(3, "buy", 99, 1, sec=1),
        nos(4, "buy", 98, 1, sec=1, session=2),
        nos(5, "buy", 97, 1, sec=1, session=2, sess_account=1),
    )
    rows = run(eng, mass(6))
    assert rows[0]["t"] == "OrderMassCancelReport" and rows[0]["TotalAffectedOrders"] == 4
    assert rows[0]["MassCancelResponse"] == codes.MASS_CANCEL_RESPONSE_ALL
    ers = [(r["OrderID"], r["dest"]) for r in rows if r["t"] == "ExecutionReport"]
    assert ers == [(2, 1), (3, 1), (5, 2), (1, 1)]
    assert all(r["ExecReason"] == codes.EXEC_REASON_MASS_CANCEL for r in rows if r["t"] == "ExecutionReport")
    eoe = [r["SecurityID"] for r in rows if r.get("MatchEventIndicator", 0) & codes.MEI_END_OF_EVENT]
    assert eoe == [1, 2]
    rows = run(eng, mass(7, mtype=codes.MASS_CANCEL_TYPE_SECURITY))
    assert rows[0]["MassCancelResponse"] == codes.MASS_CANCEL_RESPONSE_REJECTED
    assert rows[0]["ExecReason"] == codes.EXEC_REASON_INVALID_MASS_CANCEL_REQUEST
    rows = run(eng, mass(8, sec=5, mtype=codes.MASS_CANCEL_TYPE_SECURITY))
    assert rows[0]["MassCancelRejectReason"] == codes.MASS_CANCEL_REJECT_UNKNOWN_SECURITY


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        (codes.SMP_CANCEL_AGGRESSIVE, ["ER0", "ER4"]),
        (codes.SMP_CANCEL_PASSIVE, ["ER0", "ER4", "DEL", "ERF", "ERF", "EXE", "TRD", "ADD", "BL", "BL", "BBO"]),
        (codes.SMP_CANCEL_BOTH, ["ER0", "ER4", "DEL", "ER4", "BL", "BBO"]),
        (codes.SMP_DECREMENT, ["ER0", "ER4", "DEL", "ERD", "ERF", "ERF", "EXE", "TRD", "BL", "BBO"]),
    ],
)
def test_self_trade_prevention(make_engine: Any, mode: int, expected: list[str]) -> None:
    eng = make_engine()
    run(eng, nos(1, "sell", 100, 3, session=1), nos(2, "sell", 100, 5, session=2))
    rows = run(eng, nos(3, "buy", 100, 6, session=1, smp=mode))
    assert kinds(rows) == expected
    assert all(
        r["ExecReason"] == codes.EXEC_REASON_SELF_MATCH
        for r in rows[1:]
        if r["t"] == "ExecutionReport" and r["ExecType"] in (0x34, 0x44)
    )
    assert not any(r["t"] == "Trade" and r["LastQty"] > 5 for r in rows)


def test_decrement_restates_resting_order(make_engine: Any) -> None:
    eng = make_engine()
    run(eng, nos(1, "sell", 100, 10, session=1, max_floor=4))
    rows = run(eng, nos(2, "buy", 100, 7, session=1, smp=codes.SMP_DECREMENT))
    assert kinds(rows) == ["ER0", "ERD", "RED", "ER4", "BL", "BBO"]
    assert rows[1]["OrderID"] == 1 and rows[1]["LastQty"] == 7 and rows[1]["LeavesQty"] == 3
    assert (rows[2]["CanceledQty"], rows[2]["LeavesQty"]) == (1, 3)
    rows = run(eng, nos(3, "buy", 100, 1, session=1, smp=codes.SMP_DECREMENT))
    assert kinds(rows) == ["ER0", "ERD", "RED", "ER4", "BL", "BBO"]


def test_expiry_and_end_of_day(make_engine: Any) -> None:
    day = 86_400 * 10**9
    eng = make_engine()
    run(
        eng,
        nos(1, "buy", 100, 1, tif=codes.TIF_GTD, expire=10, recv=10 * day),
        nos(2, "buy", 99, 1, tif=codes.TIF_GTD, expire=11, recv=10 * day),
        nos(3, "buy", 98, 1, tif=codes.TIF_GTC, recv=10 * day),
        nos(4, "buy", 97, 1, recv=10 * day),
    )
    rows = run(eng, nos(5, "buy", 97, 1, tif=codes.TIF_GTD, expire=9, recv=10 * day))
    assert rows[0]["ExecReason"] == codes.EXEC_REASON_INVALID_EXPIRE_DATE
    out = new_out()
    res = eng.expire(11 * day, out)
    rows = decode(out[: res.written])
    assert [r["OrderID"] for r in rows if r["t"] == "ExecutionReport"] == [1]
    assert rows[0]["ExecType"] == codes.EXEC_TYPE_EXPIRED and rows[0]["ExecReason"] == codes.EXEC_REASON_EXPIRED
    res = eng.end_of_day(11 * day, out)
    rows = decode(out[: res.written])
    assert [r["OrderID"] for r in rows if r["t"] == "ExecutionReport"] == [2, 4]
    assert eng.resting_orders == 1
    eng.check_invariants()


def test_cancel_on_disconnect(make_engine: Any) -> None:
    eng = make_engine()
    run(eng, nos(1, "buy", 100, 1, session=1), nos(2, "buy", 99, 1, session=2), nos(3, "sell", 105, 1, session=1))
    out = new_out()
    res = eng.cancel_sessions(0, [1], out)
    rows = decode(out[: res.written])
    assert [r["OrderID"] for r in rows if r["t"] == "ExecutionReport"] == [1, 3]
    assert all(r["ExecReason"] == codes.EXEC_REASON_CANCEL_ON_DISCONNECT for r in rows if r["t"] == "ExecutionReport")
    res = eng.cancel_accounts(0, [2], out)
    rows = decode(out[: res.written])
    assert rows[0]["ExecReason"] == codes.EXEC_REASON_ADMIN and eng.resting_orders == 0


def test_duplicate_and_time(make_engine: Any) -> None:
    eng = make_engine()
    rows = run(eng, nos(5, "buy", 100, 1, recv=50), nos(5, "buy", 100, 1, recv=40))
    assert rows[-1]["ExecReason"] == codes.EXEC_REASON_DUPLICATE_CLORDID
    assert rows[-1]["TransactTime"] == 50  # t never goes backwards


BASE: dict[str, Any] = {}


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"sec": 9}, codes.EXEC_REASON_UNKNOWN_SYMBOL),
        ({"ord_type": codes.ORD_TYPE_STOP}, codes.EXEC_REASON_UNSUPPORTED),
        ({"ord_type": 0x39}, codes.EXEC_REASON_INVALID_ORD_TYPE),
        ({"tif": 0x32}, codes.EXEC_REASON_INVALID_TIME_IN_FORCE),
        ({"exec_inst": 0x04}, codes.EXEC_REASON_INVALID_EXEC_INST),
        ({"exec_inst": 0x02}, codes.EXEC_REASON_UNSUPPORTED),
        ({"smp": 7}, codes.EXEC_REASON_INVALID_SMP_INSTRUCTION),
        ({"qty": 0}, codes.EXEC_REASON_INCORRECT_QTY),
        ({"qty": 1001}, codes.EXEC_REASON_QTY_OVER_MAX),
        ({"price_raw": codes.NULL_PRICE}, codes.EXEC_REASON_PRICE_REQUIRED),
        (
            {"price": None, "ord_type": codes.ORD_TYPE_MARKET, "price_raw": 5 * TICK},
            codes.EXEC_REASON_PRICE_NOT_ALLOWED,
        ),
        ({"price_raw": 100 * TICK + 1}, codes.EXEC_REASON_PRICE_OFF_TICK),
        ({"tif": codes.TIF_GTD}, codes.EXEC_REASON_EXPIRE_DATE_MISMATCH),
        ({"expire": 5}, codes.EXEC_REASON_EXPIRE_DATE_MISMATCH),
        ({"min_qty": 11}, codes.EXEC_REASON_INVALID_MIN_QTY),
        ({"min_qty": 0}, codes.EXEC_REASON_INVALID_MIN_QTY),
        ({"max_floor": 0}, codes.EXEC_REASON_INVALID_MAX_FLOOR),
        ({"price": None, "tif": codes.TIF_GTC}, codes.EXEC_REASON_UNSUPPORTED),
        ({"price": None, "max_floor": 2}, codes.EXEC_REASON_UNSUPPORTED),
        ({"tif": codes.TIF_IOC, "exec_inst": 1}, codes.EXEC_REASON_UNSUPPORTED),
        ({"min_qty": 2, "exec_inst": 1}, codes.EXEC_REASON_UNSUPPORTED),
        ({"tif": codes.TIF_FOK, "max_floor": 2}, codes.EXEC_REASON_UNSUPPORTED),
        ({"tif": codes.TIF_FOK, "min_qty": 2}, codes.EXEC_REASON_UNSUPPORTED),
        ({"price": 151}, codes.EXEC_REASON_PRICE_OUTSIDE_BAND),
        ({"price": 49}, codes.EXEC_REASON_PRICE_OUTSIDE_BAND),
        ({"qty": 1000, "price": 100}, codes.EXEC_REASON_NOTIONAL_OVER_MAX),
    ],
)
def test_new_order_rejects(make_engine: Any, kwargs: dict[str, Any], reason: int) -> None:
    eng = make_engine(instrument(1, max_order_qty=1000, max_notional=50_000))
    params: dict[str, Any] = {"clordid": 1, "side": "buy", "price": 100, "qty": 10}
    params.update(kwargs)
    rows = run(eng, nos(**params))
    assert kinds(rows) == ["ER8"]
    assert rows[0]["ExecReason"] == reason and rows[0]["OrderID"] == NULLQ and rows[0]["LeavesQty"] == 0
    assert eng.resting_orders == 0


def test_phase_acceptance(make_engine: Any) -> None:
    from qfix.engine.config import PHASE_CLOSED, PHASE_PRE_OPEN

    eng = make_engine(instrument(1, phase=PHASE_CLOSED), instrument(2, phase=PHASE_PRE_OPEN))
    rows = run(eng, nos(1, "buy", 100, 1, sec=1))
    assert rows[0]["ExecReason"] == codes.EXEC_REASON_TRADING_STATE_NOT_OPEN
    rows = run(eng, nos(2, "buy", 100, 1, sec=2), nos(3, "sell", 99, 1, sec=2))  # rests, no matching
    assert kinds(rows) == ["ER0", "ADD", "BL", "BBO", "ER0", "ADD", "BL", "BBO"]
    rows = run(eng, nos(4, "buy", None, 1, sec=2))  # market Day rests without MD
    assert kinds(rows) == ["ER0"]
    rows = run(eng, nos(5, "buy", 100, 1, sec=2, tif=codes.TIF_IOC))
    assert rows[0]["ExecReason"] == codes.EXEC_REASON_TRADING_STATE_NOT_OPEN
    rows = run(eng, cancel(6, orig=4, sec=2))
    assert kinds(rows) == ["ER4"]


def test_capacity_limits_are_logical() -> None:
    eng = Engine([instrument(1)], EngineConfig(max_orders=3, max_levels=2, max_instruments=1, max_sessions=4))
    rows = run(eng, nos(1, "buy", 100, 1), nos(2, "buy", 99, 1), nos(3, "buy", 99, 1))
    assert kinds(rows)[-1] == "ER8" and rows[-1]["ExecReason"] == codes.EXEC_REASON_CAPACITY_FULL
    rows = run(eng, nos(4, "sell", 105, 1, session=2))  # two levels occupied: even a new side is full
    assert rows[0]["ExecReason"] == codes.EXEC_REASON_CAPACITY_FULL
    eng2 = Engine(
        [instrument(1, max_order_qty=2**32 - 2)],
        EngineConfig(max_orders=4, max_levels=4, max_instruments=1, max_sessions=4),
    )
    rows = run(eng2, nos(1, "buy", 100, 2**32 - 2), nos(2, "buy", 100, 1), nos(3, "buy", 100, 2))
    assert kinds(rows)[-1] == "ER8" and [
        r["ExecReason"] for r in rows if r.get("ExecType") == codes.EXEC_TYPE_REJECTED
    ] == [73]
    eng3 = Engine([instrument(1)], EngineConfig(max_orders=2, max_levels=4, max_instruments=1, max_sessions=4))
    rows = run(eng3, nos(1, "buy", 100, 1), nos(2, "buy", 100, 1), nos(3, "sell", 100, 1, session=2))
    assert rows[-1]["ExecReason"] == codes.EXEC_REASON_CAPACITY_FULL  # rejected even though it would fill


def test_orders_beyond_pool_growth_stay_consistent() -> None:
    cfg = EngineConfig(max_orders=600, max_levels=300, max_instruments=4, max_sessions=8)
    eng = Engine([instrument(s, band_width=1000, ref=1000) for s in (1, 2, 3)], cfg)
    recs = []
    k = 1
    rng = np.random.default_rng(3)
    for _ in range(900):
        sec = int(rng.integers(1, 4))
        side = "buy" if rng.integers(2) else "sell"
        px = int(rng.integers(500, 1000)) if side == "buy" else int(rng.integers(1001, 1500))
        recs.append(nos(k, side, px, 1, sec=sec))
        k += 1
    out = new_out(1 << 16)
    res = eng.process(batch(*recs), out)
    assert res.status == 0
    eng.check_invariants()
    assert eng.occupied_levels <= 300


def test_event_hash_chain(make_engine: Any) -> None:
    import hashlib

    eng = make_engine()
    out = new_out()
    res = eng.process(batch(nos(1, "buy", 100, 1)), out)
    expect = hashlib.blake2b(bytes(32) + out[: res.written].tobytes(), digest_size=32).digest()
    assert eng.event_hash() == expect
    res = eng.process(batch(), out)
    assert eng.event_hash() == hashlib.blake2b(expect, digest_size=32).digest()


def test_bad_headers_raise_and_change_nothing(make_engine: Any) -> None:
    eng = make_engine()
    good = nos(1, "buy", 100, 1)
    bad = nos(2, "buy", 100, 1)
    bad["message"][0, 4] = 61  # schemaId 61
    before = eng.state_hash()
    with pytest.raises(ValueError):
        eng.process(batch(good, bad), new_out())
    assert eng.state_hash() == before


def test_null_orderid_constant() -> None:
    assert NULL64 == NULLQ  # the builders' null is the wire's u64NULL
