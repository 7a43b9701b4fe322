"""Auctions in the reference engine (ENGINE.md §7): clearing price, allocation, outputs,
frequent batch auctions, indicative publication and the output bound of the auction commands."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from ref_common import T0

from qfix.engine.config import (
    ALLOCATION_PRO_RATA,
    PHASE_CLOSED,
    PHASE_CONTINUOUS,
    PHASE_HALTED,
    PHASE_PRE_CLOSE,
    PHASE_PRE_OPEN,
    EngineConfig,
    InstrumentConfig,
)
from qfix.engine.contract import OUTPUT_FULL, STATUS_OK
from qfix.testing import ReferenceEngine, assert_chain, batch, cancel, decode, new_order, process_decoded
from qfix.testing.reference import clearing_price
from qfix.wire import codes as C  # noqa: N812
from qfix.wire import schema

ER = "ExecutionReport"
OE = "OrderExecuted"
B = C.SIDE_BUY
S = C.SIDE_SELL
MD = C.MD_DEST
SEC = 7
#: wide enough for every ladder price around its Ref
BAND = 200
BIG_OUT = 1 << 14

Rec = dict[str, int | str]


def _instrument(ref: int, **kw: object) -> InstrumentConfig:
    fields: dict[str, object] = {"phase": PHASE_PRE_OPEN, "band_width": BAND, "tick_size_p9": 1}
    fields.update(kw)
    return InstrumentConfig(security_id=SEC, symbol="AU", ref=ref, **fields)  # type: ignore[arg-type]


def _engine(*instruments: InstrumentConfig) -> ReferenceEngine:
    return ReferenceEngine(instruments, EngineConfig(event_hash=True), check=True)


def _decode_out(out: np.ndarray, n: int) -> list[Rec]:
    return [decode(out["message"][k].tobytes(), int(out["dest"][k])) for k in range(n)]


def _call(eng: ReferenceEngine, name: str, *args: object) -> list[Rec]:
    out = np.zeros(BIG_OUT, dtype=schema.OUTPUT)
    res = getattr(eng, name)(*args, out)
    assert res.status == STATUS_OK and res.consumed == 1
    return _decode_out(out, res.written)


def _uncross(eng: ReferenceEngine, sec: int = SEC, phase: int = PHASE_CONTINUOUS, now: int = T0) -> list[Rec]:
    return _call(eng, "set_phase", now, [sec], phase)


def _indicative(eng: ReferenceEngine, now: int = T0) -> list[Rec]:
    return _call(eng, "publish_indicative", now)


def _filled(recs: list[Rec]) -> dict[int, int]:
    """Lots filled per OrderID, from the ER Trades."""
    got: dict[int, int] = {}
    for r in recs:
        if r["template"] == ER and r["ExecType"] == C.EXEC_TYPE_TRADE:
            oid = int(r["OrderID"])
            got[oid] = got.get(oid, 0) + int(r["LastQty"])
    return got


def _trades(recs: list[Rec]) -> list[Rec]:
    return [r for r in recs if r["template"] == "Trade"]


# ---------------------------------------------------------------------------- golden ladders (§7.7)


@dataclass(frozen=True)
class Ladder:
    buys: str
    sells: str
    ref: int
    p: int
    v: int
    i: int


LADDERS = {
    "cme1": Ladder(
        "51:10 50:20 49:30 48:40 47:50 46:70 45:100 44:1 43:30",
        "51:30 50:100 49:1 48:25 47:1 46:100 45:90 44:4 43:6", 46, 46, 200, 20,
    ),
    "cme2": Ladder(
        "51:10 50:20 49:30 48:40 47:50 46:30 45:100 44:1 43:30",
        "51:30 50:100 49:1 48:25 46:50 45:90 44:4 43:6", 46, 47, 150, 0,
    ),
    "buy_pressure": Ladder("12:50 12:70", "10:100", 10, 12, 100, 20),
    "sell_pressure": Ladder("12:100", "10:50 10:70", 12, 10, 100, -20),
    "ref_inside": Ladder("12:100", "10:100", 11, 11, 100, 0),
    "ref_above": Ladder("12:100", "10:100", 15, 12, 100, 0),
    "gap": Ladder("52:10 50:5", "50:10 52:5", 40, 51, 10, 0),
    "mixed": Ladder("52:10 51:5", "50:10 52:5", 45, 50, 10, 5),
    "market_mix": Ladder("M:25 101:10", "99:20 100:10 102:30", 100, 101, 30, 5),
    "market_only": Ladder("M:30", "M:20", 100, 100, 20, 10),
}  # fmt: skip


def _parse(side: str) -> list[tuple[int | None, int]]:
    """ "price:lots ..." -> [(price or None for M, lots)] in time order."""
    out: list[tuple[int | None, int]] = []
    for item in side.split():
        price, lots = item.split(":")
        out.append((None if price == "M" else int(price), int(lots)))
    return out


def _load(eng: ReferenceEngine, ladder: Ladder) -> dict[tuple[int, int], int]:
    """Submit a ladder's buys then sells (each in time order, one session per side); returns
    (side, position in its list) -> OrderID."""
    ids: dict[tuple[int, int], int] = {}
    clordid = itertools.count(1)
    for side, session, text in ((B, 1, ladder.buys), (S, 2, ladder.sells)):
        for k, (price, lots) in enumerate(_parse(text)):
            recs = process_decoded(eng, new_order(next(clordid), side=side, price=price, qty=lots, sec=SEC,
                                                  session=session))  # fmt: skip
            assert recs[0]["ExecType"] == C.EXEC_TYPE_NEW, recs[0]
            ids[(side, k)] = int(recs[0]["OrderID"])
    return ids


def _imbalance_side(i: int) -> int:
    return C.IMBALANCE_BUY if i > 0 else C.IMBALANCE_SELL if i < 0 else C.IMBALANCE_NONE


@pytest.mark.parametrize("name", sorted(LADDERS))
def test_golden_ladder(name: str) -> None:
    ladder = LADDERS[name]
    eng = _engine(_instrument(ladder.ref))
    ids = _load(eng, ladder)
    ind = _indicative(eng)
    assert [(r["IndicativePx"], r["MatchedQty"], r["ImbalanceQty"], r["ImbalanceSide"]) for r in ind] == [
        (ladder.p, ladder.v, abs(ladder.i), _imbalance_side(ladder.i))
    ]
    recs = _uncross(eng)
    trades = _trades(recs)
    assert trades and {r["LastPx"] for r in trades} == {ladder.p}
    assert sum(int(r["LastQty"]) for r in trades) == ladder.v
    assert eng.auction_state(SEC)["ref"] == ladder.p
    filled = _filled(recs)
    assert sum(filled.get(oid, 0) for (side, _), oid in ids.items() if side == B) == ladder.v
    assert sum(filled.get(oid, 0) for (side, _), oid in ids.items() if side == S) == ladder.v
    assert recs[-1]["template"] == "SecurityStatus"
    assert recs[-1]["TradingStatus"] == C.TRADING_STATUS_CONTINUOUS
    if name == "cme1":
        buys = _parse(ladder.buys)
        for k, (price, lots) in enumerate(buys):
            assert price is not None
            want = 50 if price == 46 else lots if price > 46 else 0
            assert filled.get(ids[(B, k)], 0) == want, (price, lots)
        for k, (price, lots) in enumerate(_parse(ladder.sells)):
            assert price is not None
            assert filled.get(ids[(S, k)], 0) == (lots if price <= 46 else 0)
    elif name == "buy_pressure":
        assert [filled[ids[(B, 0)]], filled[ids[(B, 1)]]] == [50, 50]
    elif name == "sell_pressure":
        assert [filled[ids[(S, 0)]], filled[ids[(S, 1)]]] == [50, 50]
    elif name == "mixed":
        assert filled.get(ids[(B, 1)], 0) == 0 and filled[ids[(B, 0)]] == 10
    elif name == "market_mix":
        assert filled[ids[(B, 0)]] == 25 and filled[ids[(B, 1)]] == 5
    # §7.5 rule 7: the book afterwards is not crossed (check=True verified it too)
    bids, asks = eng.book(SEC, B), eng.book(SEC, S)
    assert not bids or not asks or bids[0][0] < asks[0][0]


@pytest.mark.parametrize(
    ("buys", "sells", "alloc", "want"),
    [
        ("10:7 10:5 10:3", "10:10", ALLOCATION_PRO_RATA, [5, 3, 2]),
        ("10:4 10:4 10:4", "10:7", ALLOCATION_PRO_RATA, [3, 2, 2]),
        # a whole better level first, then the same margin (Rm 10 of 15)
        ("11:2 10:7 10:5 10:3", "10:12", ALLOCATION_PRO_RATA, [2, 5, 3, 2]),
        ("11:2 10:7 10:5 10:3", "10:12", 0, [2, 7, 3, 0]),
        # market orders are the first level, also under ProRata
        ("M:6 M:4 10:5", "10:5", ALLOCATION_PRO_RATA, [3, 2, 0]),
    ],
)
def test_margin_allocation(buys: str, sells: str, alloc: int, want: list[int]) -> None:
    eng = _engine(_instrument(10, allocation=alloc))
    ids = _load(eng, Ladder(buys, sells, 10, 0, 0, 0))
    filled = _filled(_uncross(eng))
    assert [filled.get(ids[(B, k)], 0) for k in range(len(want))] == want


# ---------------------------------------------------------------------------- exact outputs (§7.5)


def test_record_sequence_of_a_small_uncross() -> None:
    tick = 10
    eng = _engine(_instrument(100, tick_size_p9=tick))
    process_decoded(
        eng,
        new_order(1, price=101 * tick, qty=5, sec=SEC, session=1),  # OrderID 1
        new_order(1, side=S, price=99 * tick, qty=3, sec=SEC, session=2),  # 2
        new_order(1, side=S, price=100 * tick, qty=4, sec=SEC, session=3),  # 3
    )
    # V = 5 at 100 and 101, I = -2 at both: sell pressure, the lowest: P = 100
    recs = _uncross(eng, now=T0 + 9)
    px = 100 * tick
    auction = C.LIQUIDITY_AUCTION
    pf, f = C.ORD_STATUS_PARTIALLY_FILLED, C.ORD_STATUS_FILLED
    trade, none = C.EXEC_TYPE_TRADE, C.AGGRESSOR_NONE
    assert_chain(
        recs,
        [
            {"template": ER, "OrderID": 1, "ExecType": trade, "LastPx": px, "LastQty": 3, "LeavesQty": 2,
             "OrdStatus": pf, "LastLiquidityInd": auction, "ExecReason": C.EXEC_REASON_NONE, "dest": 1,
             "ExecID": 4, "TransactTime": T0 + 9},
            {"template": ER, "OrderID": 2, "ExecType": trade, "LastQty": 3, "LeavesQty": 0, "OrdStatus": f,
             "LastLiquidityInd": auction, "dest": 2, "ExecID": 5},
            {"template": OE, "OrderID": 1, "LastPx": px, "LastQty": 3, "LeavesQty": 2, "TradeID": 1,
             "AggressorSide": none, "dest": MD, "MatchEventIndicator": 0},
            {"template": OE, "OrderID": 2, "LastQty": 3, "LeavesQty": 0, "TradeID": 1, "AggressorSide": none},
            {"template": "Trade", "TradeID": 1, "LastPx": px, "LastQty": 3, "AggressorSide": none,
             "TradeCondition": C.TRADE_CONDITION_AUCTION, "MatchEventIndicator": 0, "dest": MD},
            {"template": ER, "OrderID": 1, "LastQty": 2, "LeavesQty": 0, "OrdStatus": f, "dest": 1, "ExecID": 6},
            {"template": ER, "OrderID": 3, "LastQty": 2, "LeavesQty": 2, "OrdStatus": pf, "dest": 3, "ExecID": 7},
            {"template": OE, "OrderID": 1, "LastQty": 2, "LeavesQty": 0, "TradeID": 2},
            {"template": OE, "OrderID": 3, "LastQty": 2, "LeavesQty": 2, "TradeID": 2},
            {"template": "Trade", "TradeID": 2, "LastQty": 2, "MatchEventIndicator": C.MEI_LAST_TRADE_MSG},
            {"template": "BookLevel", "MDEntryType": C.MD_ENTRY_BID, "MDEntryPx": 101 * tick,
             "MDUpdateAction": C.MD_UPDATE_DELETE, "MDEntrySize": 0, "NumberOfOrders": 0},
            {"template": "BookLevel", "MDEntryType": C.MD_ENTRY_OFFER, "MDEntryPx": 99 * tick,
             "MDUpdateAction": C.MD_UPDATE_DELETE},
            {"template": "BookLevel", "MDEntryType": C.MD_ENTRY_OFFER, "MDEntryPx": px,
             "MDUpdateAction": C.MD_UPDATE_CHANGE, "MDEntrySize": 2, "NumberOfOrders": 1},
            {"template": "BestBidOffer", "BidPx": C.NULL_PRICE, "BidSize": 0, "OfferPx": px, "OfferSize": 2,
             "MatchEventIndicator": 0},
            {"template": "SecurityStatus", "TradingStatus": C.TRADING_STATUS_CONTINUOUS,
             "MatchEventIndicator": C.MEI_END_OF_EVENT, "dest": MD, "TransactTime": T0 + 9},
        ],
    )  # fmt: skip
    assert eng.auction_state(SEC)["ref"] == 100
    # Continuous now: a crossing order matches on entry against the remainder
    recs = process_decoded(eng, new_order(2, price=100 * tick, qty=1, sec=SEC, session=1))
    assert [r["template"] for r in recs][:3] == [ER, ER, ER]


def test_market_orders_get_no_md_and_their_remainder_is_cancelled() -> None:
    eng = _engine(_instrument(100))
    ids = _load(eng, Ladder("M:10 M:3", "100:4", 100, 0, 0, 0))
    recs = _uncross(eng)
    mkt1, mkt2, sell = ids[(B, 0)], ids[(B, 1)], ids[(S, 0)]
    assert_chain(
        recs,
        [
            {"template": ER, "OrderID": mkt1, "LastQty": 4, "LeavesQty": 6, "LastPx": 100},
            {"template": ER, "OrderID": sell, "LastQty": 4, "LeavesQty": 0},
            {"template": OE, "OrderID": sell, "LeavesQty": 0},  # none for the market order
            {"template": "Trade", "LastQty": 4, "LastPx": 100},
            {"template": ER, "OrderID": mkt1, "ExecType": C.EXEC_TYPE_CANCELED, "LastQty": 6, "LeavesQty": 0,
             "ExecReason": C.EXEC_REASON_IOC_FOK_REMAINDER, "LastPx": C.NULL_PRICE, "dest": 1},
            {"template": ER, "OrderID": mkt2, "ExecType": C.EXEC_TYPE_CANCELED, "LastQty": 3,
             "ExecReason": C.EXEC_REASON_IOC_FOK_REMAINDER},
            {"template": "BookLevel", "MDUpdateAction": C.MD_UPDATE_DELETE},
            {"template": "BestBidOffer", "OfferPx": C.NULL_PRICE},
            {"template": "SecurityStatus"},
        ],
    )  # fmt: skip
    assert eng.live_orders() == []


def test_markets_are_cancelled_also_when_nothing_crosses() -> None:
    eng = _engine(_instrument(100))
    ids = _load(eng, Ladder("M:10 90:5", "", 100, 0, 0, 0))
    recs = _call(eng, "set_phase", T0, [SEC], PHASE_CONTINUOUS)
    assert_chain(
        recs,
        [
            {"template": ER, "OrderID": ids[(B, 0)], "ExecType": C.EXEC_TYPE_CANCELED, "LastQty": 10,
             "ExecReason": C.EXEC_REASON_IOC_FOK_REMAINDER},
            {"template": "SecurityStatus"},
        ],
    )  # fmt: skip
    assert eng.auction_state(SEC)["ref"] == 100  # V = 0 keeps Ref


def test_fba_tick_cancels_ioc_remainders_in_order_id_order_without_security_status() -> None:
    eng = _engine(_instrument(100, phase=PHASE_CONTINUOUS, fba_interval_ns=0))
    process_decoded(
        eng,
        new_order(1, side=S, price=100, qty=3, sec=SEC, session=2),  # 1
        new_order(1, price=101, qty=5, sec=SEC, session=1, tif=C.TIF_IOC),  # 2
        new_order(2, price=None, qty=4, sec=SEC, session=1, tif=C.TIF_IOC),  # 3: market IOC
        new_order(2, side=S, price=105, qty=2, sec=SEC, session=2, tif=C.TIF_IOC),  # 4
    )
    # D = 9 up to 101 and 4 above, S = 3 below 105 and 5 at 105: V = 4 at 105 (I = -1)
    recs = _call(eng, "auction_tick", T0)
    assert_chain(
        recs,
        [
            {"template": ER, "OrderID": 3, "LastQty": 3, "LeavesQty": 1, "LastPx": 105},
            {"template": ER, "OrderID": 1, "LastQty": 3, "LeavesQty": 0},
            {"template": OE, "OrderID": 1},
            {"template": "Trade", "LastQty": 3},
            {"template": ER, "OrderID": 3, "LastQty": 1, "LeavesQty": 0},
            {"template": ER, "OrderID": 4, "LastQty": 1, "LeavesQty": 1},
            {"template": OE, "OrderID": 4, "LeavesQty": 1},
            {"template": "Trade", "LastQty": 1, "MatchEventIndicator": C.MEI_LAST_TRADE_MSG},
            {"template": ER, "OrderID": 2, "ExecType": C.EXEC_TYPE_CANCELED, "LastQty": 5,
             "ExecReason": C.EXEC_REASON_IOC_FOK_REMAINDER},
            {"template": "OrderDelete", "OrderID": 2},
            {"template": ER, "OrderID": 4, "ExecType": C.EXEC_TYPE_CANCELED, "LastQty": 1},
            {"template": "OrderDelete", "OrderID": 4},
            {"template": "BookLevel", "MDEntryPx": 101, "MDUpdateAction": C.MD_UPDATE_DELETE},
            {"template": "BookLevel", "MDEntryPx": 100, "MDUpdateAction": C.MD_UPDATE_DELETE},
            {"template": "BookLevel", "MDEntryPx": 105, "MDUpdateAction": C.MD_UPDATE_DELETE},
            {"template": "BestBidOffer", "BidPx": C.NULL_PRICE, "OfferPx": C.NULL_PRICE,
             "MatchEventIndicator": C.MEI_END_OF_EVENT},
        ],
    )  # fmt: skip
    assert eng.auction_state(SEC)["ref"] == 105


# ---------------------------------------------------------------------------- iceberg (§7.5 rule 5)


def test_iceberg_shown_after_fills_keeps_its_place() -> None:
    eng = _engine(_instrument(100))
    process_decoded(
        eng,
        new_order(1, side=S, price=100, qty=20, max_floor=5, sec=SEC, session=2),  # 1: Shown 5
        new_order(2, side=S, price=100, qty=4, sec=SEC, session=2),  # 2: behind it
        new_order(1, price=100, qty=5, sec=SEC, session=1),  # 3
        new_order(2, price=100, qty=3, sec=SEC, session=1),  # 4
    )
    prio = {o["order_id"]: o["prio"] for o in eng.live_orders()}
    recs = _uncross(eng)
    oe = [(r["OrderID"], r["LastQty"], r["LeavesQty"]) for r in recs if r["template"] == OE]
    # fill 5 >= Shown 5: Shown = min(Display, Leaves 15) = 5; then fill 3 < 5: Shown 2
    assert oe == [(3, 5, 0), (1, 5, 5), (4, 3, 0), (1, 3, 2)]
    assert not any(r["template"] == "AddOrder" for r in recs)
    live = {o["order_id"]: o for o in eng.live_orders()}
    assert (live[1]["leaves"], live[1]["shown"], live[1]["prio"]) == (12, 2, prio[1])
    assert eng.book(SEC, S) == [(100, 2 + 4, 2)]
    level = [r for r in recs if r["template"] == "BookLevel"]
    assert [(r["MDEntryType"], r["MDEntrySize"], r["NumberOfOrders"]) for r in level] == [
        (C.MD_ENTRY_BID, 0, 0), (C.MD_ENTRY_OFFER, 6, 2),
    ]  # fmt: skip


def test_iceberg_hidden_quantity_takes_part() -> None:
    eng = _engine(_instrument(100))
    process_decoded(
        eng,
        new_order(1, side=S, price=100, qty=20, max_floor=2, sec=SEC, session=2),
        new_order(1, price=100, qty=15, sec=SEC, session=1),
    )
    recs = _uncross(eng)
    assert sum(int(r["LastQty"]) for r in _trades(recs)) == 15
    assert [(r["OrderID"], r["LeavesQty"]) for r in recs if r["template"] == OE] == [(2, 0), (1, 2)]


# ---------------------------------------------------------------------------- indicative (§7.3)


def test_indicative_published_once_and_reset_on_phase_change() -> None:
    other = InstrumentConfig(security_id=1, symbol="C", tick_size_p9=1, ref=100, band_width=BAND)  # Continuous
    eng = _engine(other, _instrument(100, tick_size_p9=5))
    assert _indicative(eng) == []  # no cross: (null, 0, 0, none), as initially
    process_decoded(
        eng,
        new_order(1, price=101 * 5, qty=8, sec=SEC, session=1),
        new_order(1, side=S, price=100 * 5, qty=5, sec=SEC, session=2),
        new_order(2, price=101, qty=1, sec=1, session=1),
    )
    first = _indicative(eng, T0 + 1)
    assert_chain(
        first,
        [{"template": "IndicativeAuction", "SecurityID": SEC, "IndicativePx": 101 * 5, "MatchedQty": 5,
          "ImbalanceQty": 3, "ImbalanceSide": C.IMBALANCE_BUY, "MatchEventIndicator": C.MEI_END_OF_EVENT,
          "dest": MD, "TransactTime": T0 + 1, "RptSeq": 0}],
    )  # fmt: skip
    assert _indicative(eng) == []  # unchanged: not republished
    process_decoded(eng, new_order(3, price=100 * 5, qty=1, sec=SEC, session=1))  # unchanged still
    assert _indicative(eng) == []
    process_decoded(eng, new_order(2, side=S, price=101 * 5, qty=2, sec=SEC, session=2))
    assert [(r["IndicativePx"], r["MatchedQty"], r["ImbalanceQty"], r["ImbalanceSide"]) for r in _indicative(eng)] == [
        (101 * 5, 7, 1, C.IMBALANCE_BUY)
    ]
    state = eng.auction_state(SEC)
    assert (state["ind_p"], state["ind_v"], state["ind_i"], state["ind_side"]) == (101, 7, 1, C.IMBALANCE_BUY)
    # a phase change resets the published values without output; PreOpen publishes them again
    _call(eng, "set_phase", T0, [SEC], PHASE_HALTED)
    assert eng.auction_state(SEC)["ind_p"] is None
    assert _indicative(eng) == []  # Halted: nothing
    _call(eng, "set_phase", T0, [SEC], PHASE_PRE_OPEN)
    assert len(_indicative(eng)) == 1
    # back to no cross: published as null, 0, 0, none
    for clordid, oid in ((4, 1), (5, 4)):  # the two buys
        process_decoded(eng, cancel(clordid, order_id=oid, sec=SEC, session=1))
    assert [(r["IndicativePx"], r["MatchedQty"], r["ImbalanceQty"], r["ImbalanceSide"]) for r in _indicative(eng)] == [
        (C.NULL_PRICE, 0, 0, C.IMBALANCE_NONE)
    ]


def test_indicative_covers_fba_and_pre_close_in_ascending_order_and_its_bound() -> None:
    fba = InstrumentConfig(security_id=3, symbol="F", tick_size_p9=1, ref=100, band_width=BAND, fba_interval_ns=0)
    eng = _engine(_instrument(100), fba)
    for clordid, sec in enumerate((SEC, 3), start=1):
        process_decoded(
            eng,
            new_order(clordid, price=100, qty=2, sec=sec, session=1),
            new_order(clordid, side=S, price=100, qty=2, sec=sec, session=2),
        )
    res = eng.publish_indicative(T0, np.zeros(16 + 2 - 1, dtype=schema.OUTPUT))
    assert (res.status, res.consumed, res.written, res.needed) == (OUTPUT_FULL, 0, 0, 16 + 2)
    recs = _indicative(eng)
    assert [(r["SecurityID"], r["MatchedQty"]) for r in recs] == [(3, 2), (SEC, 2)]
    assert all(r["MatchEventIndicator"] == C.MEI_END_OF_EVENT for r in recs)
    # the uncross to Continuous then PreClose: published again (the phase changed)
    _uncross(eng)
    _call(eng, "set_phase", T0, [SEC], PHASE_PRE_CLOSE)
    process_decoded(
        eng, new_order(10, price=99, qty=1, sec=SEC, session=1), new_order(10, side=S, price=99, qty=1, sec=SEC,
                                                                          session=2),
    )  # fmt: skip
    assert [(r["SecurityID"], r["IndicativePx"]) for r in _indicative(eng)] == [(SEC, 99)]
    recs = _call(eng, "set_phase", T0, [SEC], PHASE_CLOSED)  # closing auction
    assert [r["template"] for r in recs][-1] == "SecurityStatus" and len(_trades(recs)) == 1


# ---------------------------------------------------------------------------- FBA ticks (§7.6)


def _crossing_pair(eng: ReferenceEngine, clordid: int, qty: int = 1) -> None:
    process_decoded(
        eng,
        new_order(clordid, price=100, qty=qty, sec=SEC, session=1),
        new_order(clordid, side=S, price=100, qty=qty, sec=SEC, session=2),
    )


def test_fba_interval_zero_uncrosses_on_every_tick() -> None:
    eng = _engine(_instrument(100, phase=PHASE_CONTINUOUS, fba_interval_ns=0))
    _crossing_pair(eng, 1)
    assert len(_trades(_call(eng, "auction_tick", T0))) == 1
    assert eng.auction_state(SEC)["next_uncross"] == 0
    assert _call(eng, "auction_tick", T0) == []
    _crossing_pair(eng, 2)
    assert len(_trades(_call(eng, "auction_tick", T0))) == 1  # same t: interval 0 never waits
    assert eng.auction_state(SEC)["next_uncross"] == 0


def test_fba_interval_next_uncross_arithmetic() -> None:
    interval = 1_000
    plain = InstrumentConfig(security_id=1, symbol="C", tick_size_p9=1, ref=100, band_width=BAND)
    eng = _engine(plain, _instrument(100, phase=PHASE_CONTINUOUS, fba_interval_ns=interval))
    _crossing_pair(eng, 1)
    t1 = T0 + 2_345
    # NextUncross starts at 0, so the first tick is due
    assert len(_trades(_call(eng, "auction_tick", t1))) == 1
    assert eng.auction_state(SEC)["next_uncross"] == (t1 // interval + 1) * interval == T0 + 3_000
    _crossing_pair(eng, 2)
    assert _call(eng, "auction_tick", T0 + 2_999) == []  # not due: no output, NextUncross kept
    assert eng.auction_state(SEC)["next_uncross"] == T0 + 3_000
    assert len(_trades(_call(eng, "auction_tick", T0 + 3_000))) == 1
    assert eng.auction_state(SEC)["next_uncross"] == T0 + 4_000
    # t = max(now, LastTime): a tick with an earlier `now` runs at LastTime
    assert _call(eng, "auction_tick", T0) == []
    # an empty uncross still moves NextUncross
    _call(eng, "auction_tick", T0 + 7_500)
    assert eng.auction_state(SEC)["next_uncross"] == T0 + 8_000
    # only Continuous FBA instruments tick
    _call(eng, "set_phase", T0 + 7_500, [SEC], PHASE_HALTED)
    assert _call(eng, "auction_tick", T0 + 9_000) == []
    assert eng.auction_state(SEC)["next_uncross"] == T0 + 8_000


def test_fba_tick_bound_counts_only_due_instruments() -> None:
    eng = _engine(_instrument(100, phase=PHASE_CONTINUOUS, fba_interval_ns=1_000))
    _crossing_pair(eng, 1, qty=3)
    _crossing_pair(eng, 2)
    res = eng.auction_tick(T0, np.zeros(16 + 8 * 4 + 2 - 1, dtype=schema.OUTPUT))
    assert (res.status, res.needed) == (OUTPUT_FULL, 16 + 8 * 4 + 2)
    _call(eng, "auction_tick", T0)
    _crossing_pair(eng, 3)
    res = eng.auction_tick(T0 + 1, np.zeros(16, dtype=schema.OUTPUT))  # not due: U = 16
    assert (res.status, res.written) == (STATUS_OK, 0)


# ---------------------------------------------------------------------------- OUTPUT_FULL (§2.4)


def _auction_book(eng: ReferenceEngine) -> None:
    _load(eng, LADDERS["cme1"])
    process_decoded(
        eng,
        new_order(100, side=S, price=None, qty=7, sec=SEC, session=3),
        new_order(101, side=S, price=45, qty=30, max_floor=4, sec=SEC, session=3),
        new_order(102, price=47, qty=12, max_floor=5, sec=SEC, session=3),
    )


@pytest.mark.parametrize("small", [1, 16, 17, 64, 185])
def test_set_phase_output_full_resume_gives_the_same_bytes(small: int) -> None:
    big_eng, small_eng = _engine(_instrument(46)), _engine(_instrument(46))
    for eng in (big_eng, small_eng):
        _auction_book(eng)
    live = len(big_eng.live_orders())
    u = 16 + 8 * live + 2
    out = np.zeros(BIG_OUT, dtype=schema.OUTPUT)
    res = big_eng.set_phase(T0, [SEC], PHASE_CONTINUOUS, out)
    assert res.status == STATUS_OK and res.written <= u
    want = out[: res.written].tobytes()
    before = small_eng.state_hash()
    buf = np.zeros(small, dtype=schema.OUTPUT)
    res = small_eng.set_phase(T0, [SEC], PHASE_CONTINUOUS, buf)
    assert (res.status, res.consumed, res.written, res.needed) == (OUTPUT_FULL, 0, 0, u)
    assert small_eng.state_hash() == before
    buf = np.zeros(res.needed, dtype=schema.OUTPUT)
    res = small_eng.set_phase(T0, [SEC], PHASE_CONTINUOUS, buf)
    assert res.status == STATUS_OK
    assert buf[: res.written].tobytes() == want
    assert small_eng.state_hash() == big_eng.state_hash()


def test_set_phase_bound_over_several_instruments() -> None:
    other = InstrumentConfig(security_id=2, symbol="O", tick_size_p9=1, ref=10, band_width=5, phase=PHASE_PRE_OPEN)
    eng = _engine(other, _instrument(46))
    _auction_book(eng)
    process_decoded(eng, new_order(1, price=10, qty=1, sec=2, session=5))
    n = len(eng.live_orders())
    res = eng.set_phase(T0, [SEC, 2], PHASE_CONTINUOUS, np.zeros(16, dtype=schema.OUTPUT))
    assert res.needed == 16 + 8 * n + 2 * 2
    recs = _call(eng, "set_phase", T0, [SEC, 2], PHASE_CONTINUOUS)
    status = [r["SecurityID"] for r in recs if r["template"] == "SecurityStatus"]
    assert status == [2, SEC] and recs[-1]["template"] == "SecurityStatus"
    assert len(recs) <= 16 + 8 * n + 2 * 2


# ---------------------------------------------------------------------------- §7.4 by brute force


def _brute_force(
    buy_market: int, sell_market: int, buys: list[tuple[int, int]], sells: list[tuple[int, int]], ref: int
) -> tuple[int | None, int, int]:
    """§7.4 read literally: every tick from the lowest to the highest of {limit prices, Ref}."""
    prices = [p for p, _ in buys] + [p for p, _ in sells] + [ref]
    rows = []
    for p in range(min(prices), max(prices) + 1):
        d = buy_market + sum(q for bp, q in buys if bp >= p)
        s = sell_market + sum(q for sp, q in sells if sp <= p)
        rows.append((p, min(d, s), d - s))
    best = max(v for _, v, _ in rows)
    if best == 0:
        return None, 0, 0
    kept = [r for r in rows if r[1] == best]
    least = min(abs(i) for _, _, i in kept)
    kept = [r for r in kept if abs(r[2]) == least]
    if all(i > 0 for _, _, i in kept):
        return kept[-1]
    if all(i < 0 for _, _, i in kept):
        return kept[0]
    closest = min(abs(p - ref) for p, _, _ in kept)
    nearest = [r for r in kept if abs(r[0] - ref) == closest]
    assert len(nearest) == 1, "rule 5 must be unique"
    return nearest[0]


_LIMITS = st.lists(st.tuples(st.integers(-8, 8), st.integers(1, 30)), max_size=7)
_MARKET = st.one_of(st.just(0), st.just(0), st.integers(1, 40))


@settings(max_examples=600, deadline=None)
@given(bm=_MARKET, sm=_MARKET, buys=_LIMITS, sells=_LIMITS, ref=st.integers(-12, 12), spread=st.integers(1, 40))
def test_clearing_price_equals_brute_force(
    bm: int, sm: int, buys: list[tuple[int, int]], sells: list[tuple[int, int]], ref: int, spread: int
) -> None:
    # spread scales the prices so that the gaps between members are sometimes wide
    buys = [(p * spread, q) for p, q in buys]
    sells = [(p * spread, q) for p, q in sells]
    assert clearing_price(bm, sm, buys, sells, ref) == _brute_force(bm, sm, buys, sells, ref)


_ORDERS = st.lists(
    st.tuples(st.booleans(), st.one_of(st.none(), st.integers(90, 110)), st.integers(1, 25), st.integers(0, 3)),
    min_size=1,
    max_size=12,
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(orders=_ORDERS, ref=st.integers(85, 115), pro_rata=st.booleans())
def test_engine_uncross_matches_brute_force(
    orders: list[tuple[bool, int | None, int, int]], ref: int, pro_rata: bool
) -> None:
    """Random small books in PreOpen (market, limit, iceberg): the published indicative and
    the uncross agree with the brute-force §7.4, and check=True verifies §7.5 rule 7."""
    eng = _engine(_instrument(ref, allocation=ALLOCATION_PRO_RATA if pro_rata else 0, band_width=40))
    buys: list[tuple[int, int]] = []
    sells: list[tuple[int, int]] = []
    markets = [0, 0]
    for k, (buy, price, qty, floor) in enumerate(orders):
        floor_kw = {"max_floor": floor} if floor and price is not None else {}
        rec = new_order(k + 1, side=B if buy else S, price=price, qty=qty, sec=SEC, **floor_kw)
        assert process_decoded(eng, rec)[0]["ExecType"] == C.EXEC_TYPE_NEW
        if price is None:
            markets[0 if buy else 1] += qty
        else:
            (buys if buy else sells).append((price, qty))
    p, v, i = _brute_force(markets[0], markets[1], buys, sells, ref)
    ind = _indicative(eng)
    if p is None:
        assert ind == []
    else:
        assert [(r["IndicativePx"], r["MatchedQty"], r["ImbalanceQty"]) for r in ind] == [(p, v, abs(i))]
    recs = _uncross(eng)
    trades = _trades(recs)
    assert sum(int(r["LastQty"]) for r in trades) == v
    assert all(r["LastPx"] == p for r in trades)
    assert eng.auction_state(SEC)["ref"] == (ref if p is None else p)
    assert all(not o["market"] for o in eng.live_orders())


# ---------------------------------------------------------------------------- random auction streams


_ORDER_STEP = st.tuples(
    st.just("order"), st.booleans(), st.one_of(st.none(), st.integers(95, 105)), st.integers(1, 9),
    st.sampled_from([C.TIF_DAY, C.TIF_DAY, C.TIF_GTC, C.TIF_IOC]), st.integers(0, 3),
)  # fmt: skip
_STEP = st.one_of(
    _ORDER_STEP,
    _ORDER_STEP,
    _ORDER_STEP,
    st.tuples(st.just("phase"), st.integers(0, 5)),
    st.tuples(st.just("tick"), st.integers(0, 1_500)),
    st.tuples(st.just("indicative")),
    st.tuples(st.just("cancel"), st.integers(1, 30)),
)
#: ENGINE.md §7.1 moves per phase, the auction ones repeated so that they come up often
_MOVES = {
    PHASE_CLOSED: (PHASE_PRE_OPEN,),
    PHASE_PRE_OPEN: (PHASE_CONTINUOUS, PHASE_CONTINUOUS, PHASE_CONTINUOUS, PHASE_CLOSED, PHASE_HALTED),
    PHASE_CONTINUOUS: (PHASE_PRE_CLOSE, PHASE_PRE_CLOSE, PHASE_CLOSED, PHASE_HALTED),
    PHASE_PRE_CLOSE: (PHASE_CLOSED, PHASE_CLOSED, PHASE_CLOSED, PHASE_HALTED),
    PHASE_HALTED: (PHASE_PRE_OPEN, PHASE_PRE_OPEN, PHASE_CLOSED),
}


def _run_small(eng: ReferenceEngine, name: str, args: tuple[Any, ...], size: int) -> bytes:
    """A command through a buffer of ``size`` records, grown to ``needed`` on OUTPUT_FULL."""
    while True:
        out = np.zeros(size, dtype=schema.OUTPUT)
        res = getattr(eng, name)(*args, out)
        if res.status == STATUS_OK:
            return out[: res.written].tobytes()
        assert (res.consumed, res.written) == (0, 0) and res.needed > size
        size = res.needed


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    steps=st.lists(_STEP, min_size=20, max_size=60),
    pro_rata=st.booleans(),
    interval=st.sampled_from([None, 0, 500]),
    start=st.sampled_from([PHASE_PRE_OPEN, PHASE_CONTINUOUS]),
)
def test_random_auction_streams_with_small_buffers(
    steps: list[tuple[Any, ...]], pro_rata: bool, interval: int | None, start: int
) -> None:
    """Orders, phase changes, ticks, indicative publications and cancels on one instrument
    (FBA or not): an engine whose commands start with a 1-record buffer and resume on
    OUTPUT_FULL emits the same bytes and reaches the same state as one with a large buffer;
    check=True runs §6 (and the uncross properties) after every call."""
    inst = _instrument(100, allocation=ALLOCATION_PRO_RATA if pro_rata else 0, fba_interval_ns=interval, phase=start)
    big, small = _engine(inst), _engine(inst)
    now = T0
    clordid = 0
    phase = start
    for step in steps:
        kind = step[0]
        if kind == "order":
            _, buy, price, qty, tif, floor = step
            clordid += 1
            kw = {"max_floor": floor} if floor and price is not None and tif != C.TIF_IOC else {}
            rec = new_order(
                clordid, side=B if buy else S, price=price, qty=qty, tif=tif, sec=SEC, session=clordid % 3,
                recv_time=now, **kw,
            )  # fmt: skip
            call: tuple[str, tuple[Any, ...]] = ("process", (batch(rec),))
        elif kind == "phase":
            moves = _MOVES[phase]
            phase = moves[step[1] % len(moves)]
            call = ("set_phase", (now, [SEC], phase))
        elif kind == "tick":
            now += step[1]
            call = ("auction_tick", (now,))
        elif kind == "indicative":
            call = ("publish_indicative", (now,))
        else:
            clordid += 1
            oid = step[1]
            live = {o["order_id"]: o for o in big.live_orders()}
            side = live[oid]["side"] if oid in live else B
            call = ("process", (batch(cancel(clordid, order_id=oid, side=side, sec=SEC, session=clordid % 3)),))
        name, args = call
        if name == "process":
            assert process_decoded(small, *args) == process_decoded(big, *args)
        else:
            got = _run_small(small, name, args, 1)
            assert got == _run_small(big, name, args, BIG_OUT)
            templates = {int.from_bytes(got[k + 2 : k + 4], "little") for k in range(0, len(got), 64)}
            if C.TEMPLATE_TRADE in templates:
                event(f"{name} with fills")
            if C.TEMPLATE_EXECUTION_REPORT in templates and name != "publish_indicative":
                event(f"{name} with reports")
        assert small.state_hash() == big.state_hash()
