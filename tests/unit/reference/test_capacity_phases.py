"""Capacity (§4), OUTPUT_FULL (§2.4), phases (§7.1, §7.2) and set_reference; auctions in detail are in
test_reference_auction.py."""

from __future__ import annotations

import numpy as np
import pytest
from ref_common import ALL, T0, make_engine

from qfix.engine.config import (
    PHASE_CLOSED,
    PHASE_CONTINUOUS,
    PHASE_HALTED,
    PHASE_PRE_CLOSE,
    PHASE_PRE_OPEN,
    ConfigError,
)
from qfix.engine.contract import OUTPUT_FULL, STATUS_OK
from qfix.testing import ReferenceEngine, cancel, decode, new_order, process_decoded, replace
from qfix.testing.generators import default_random_config, default_random_instruments, random_stream
from qfix.wire import codes as C  # noqa: N812
from qfix.wire import schema

ER = "ExecutionReport"
S = C.SIDE_SELL
CAP = C.EXEC_REASON_CAPACITY_FULL


def _reasons(recs: list[dict[str, int | str]]) -> list[int]:
    return [int(r["ExecReason"]) for r in recs if r["template"] in (ER, "OrderCancelReject")]


def test_max_orders_rejects_even_a_crossing_order() -> None:
    eng = make_engine(max_orders=2)
    process_decoded(eng, new_order(1, price=99), new_order(2, side=S, price=101))
    assert _reasons(process_decoded(eng, new_order(3, price=101, qty=1))) == [CAP]
    assert _reasons(process_decoded(eng, new_order(4, price=None, qty=1, tif=C.TIF_IOC))) == [CAP]
    process_decoded(eng, cancel(5, order_id=1))
    assert process_decoded(eng, new_order(6, price=101, qty=1))[0]["ExecType"] == C.EXEC_TYPE_NEW


def test_max_levels_counts_occupied_levels_whether_or_not_the_level_exists() -> None:
    eng = make_engine(max_levels=2)
    process_decoded(eng, new_order(1, price=99, qty=10), new_order(1, side=S, price=99, qty=2, session=1))
    process_decoded(eng, new_order(2, side=S, price=101, session=1))  # second level
    assert _reasons(process_decoded(eng, new_order(3, price=99))) == [CAP]  # level 99 exists
    assert _reasons(process_decoded(eng, new_order(4, sec=2, price=10_000))) == [CAP]  # other instrument
    # priority-keeping and cancelling replaces are not capacity-checked; priority-losing ones are
    assert _reasons(process_decoded(eng, replace(5, 1, price=99, qty=9))) == [0]
    assert _reasons(process_decoded(eng, replace(6, 5, price=98, qty=9))) == [CAP]
    assert _reasons(process_decoded(eng, replace(7, 5, price=99, qty=10))) == [CAP]
    assert _reasons(process_decoded(eng, replace(8, 5, price=99, qty=2))) == [C.EXEC_REASON_USER_REQUEST]
    assert _reasons(process_decoded(eng, new_order(9, price=97))) == [0]


def test_open_lots_capacity_per_side() -> None:
    eng = make_engine(instruments=(ALL[0],))
    big = 2**32 - 2
    process_decoded(eng, new_order(1, price=99, qty=big))
    assert _reasons(process_decoded(eng, new_order(2, price=98, qty=2))) == [CAP]
    assert _reasons(process_decoded(eng, new_order(3, price=98, qty=1))) == [0]
    assert _reasons(process_decoded(eng, new_order(4, side=S, price=120, qty=5))) == [0]  # other side
    # a rule-4 replace counts open lots without its own old Leaves
    assert _reasons(process_decoded(eng, replace(5, 3, price=97, qty=1))) == [0]
    assert _reasons(process_decoded(eng, replace(6, 5, price=97, qty=2))) == [CAP]


def _drain(engine: ReferenceEngine, records: np.ndarray, out_size: int, step: int) -> tuple[list[bytes], int]:
    out = np.zeros(out_size, dtype=schema.OUTPUT)
    got: list[bytes] = []
    stops = 0
    for start in range(0, len(records), step):
        pending = records[start : start + step]
        while len(pending):
            res = engine.process(pending, out)
            got.extend(out[: res.written].tobytes()[k : k + 64] for k in range(0, res.written * 64, 64))
            if res.status == OUTPUT_FULL:
                stops += 1
                assert res.consumed < len(pending) and res.needed > len(out) - res.written
                # the caller grows the buffer when one record's U exceeds all of it
                out = np.zeros(max(out_size, res.needed), dtype=schema.OUTPUT)
            else:
                assert res.status == STATUS_OK and res.needed == 0 and res.consumed == len(pending)
            pending = pending[res.consumed :]
    return got, stops


def test_output_full_concatenation_equals_unbounded_run() -> None:
    insts, cfg = default_random_instruments(), default_random_config()
    records = random_stream(21, 700)
    small = ReferenceEngine(insts, cfg, check=True)
    big = ReferenceEngine(insts, cfg)
    got_small, stops = _drain(small, records, 300, 100)
    got_big, no_stops = _drain(big, records, 1 << 18, 100)
    assert stops > 5 and no_stops == 0
    assert got_small == got_big
    assert small.state_hash() == big.state_hash()


def test_output_bound_of_a_new_order() -> None:
    eng = make_engine()
    process_decoded(eng, new_order(1, side=S, price=101, qty=7), new_order(2, side=S, price=102, qty=3))
    # U = 16 + 8 x (min(OrderQty, lots 10) + orders 2)
    res = eng.process(new_order(3, price=102, qty=4), np.zeros(16 + 8 * (4 + 2) - 1, dtype=schema.OUTPUT))
    assert (res.status, res.consumed, res.written, res.needed) == (OUTPUT_FULL, 0, 0, 64)
    res = eng.process(new_order(3, price=102, qty=400), np.zeros(111, dtype=schema.OUTPUT))
    assert res.needed == 16 + 8 * (10 + 2)
    res = eng.process(new_order(3, price=102, qty=4, sec=99), np.zeros(16, dtype=schema.OUTPUT))
    assert res.status == STATUS_OK  # unknown instrument: U = 16


def _status(eng: ReferenceEngine, now: int, secs: list[int], phase: int) -> list[dict[str, int | str]]:
    out = np.zeros(64, dtype=schema.OUTPUT)
    res = eng.set_phase(now, secs, phase, out)
    assert res.status == STATUS_OK
    return [decode(out["message"][k].tobytes(), int(out["dest"][k])) for k in range(res.written)]


def test_halt_and_reopen_without_orders() -> None:
    eng = make_engine()
    recs = _status(eng, T0 + 3, [2, 1], PHASE_HALTED)
    assert [(r["template"], r["SecurityID"], r["TradingStatus"], r["HaltReason"], r["MatchEventIndicator"],
             r["TransactTime"], r["dest"]) for r in recs] == [
        ("SecurityStatus", 1, C.TRADING_STATUS_HALT, C.HALT_REASON_OPERATOR, C.MEI_END_OF_EVENT, T0 + 3, C.MD_DEST),
        ("SecurityStatus", 2, C.TRADING_STATUS_HALT, C.HALT_REASON_OPERATOR, C.MEI_END_OF_EVENT, T0 + 3, C.MD_DEST),
    ]  # fmt: skip
    assert _reasons(process_decoded(eng, new_order(1, price=99))) == [C.EXEC_REASON_TRADING_STATE_NOT_OPEN]
    recs = _status(eng, T0, [1], PHASE_PRE_OPEN)
    assert (recs[0]["TradingStatus"], recs[0]["HaltReason"], recs[0]["TransactTime"]) == (
        C.TRADING_STATUS_PRE_OPEN, C.HALT_REASON_NONE, T0 + 3,
    )  # fmt: skip
    # the trivial uncross of an empty book is allowed
    recs = _status(eng, T0 + 4, [1], PHASE_CONTINUOUS)
    assert [r["TradingStatus"] for r in recs] == [C.TRADING_STATUS_CONTINUOUS]
    recs = _status(eng, T0 + 4, [1], PHASE_PRE_CLOSE)
    assert [r["TradingStatus"] for r in recs] == [C.TRADING_STATUS_PRE_CLOSE]


def test_invalid_transitions_raise_and_change_nothing() -> None:
    eng = make_engine()
    before = (eng.state_hash(), eng.event_hash())
    out = np.zeros(64, dtype=schema.OUTPUT)
    with pytest.raises(ValueError, match="not allowed"):
        eng.set_phase(T0, [1, 3], PHASE_PRE_OPEN, out)  # 3 Closed -> PreOpen fine, 1 Continuous -> PreOpen not
    with pytest.raises(ValueError, match="not configured"):
        eng.set_phase(T0, [1, 99], PHASE_HALTED, out)
    assert (eng.state_hash(), eng.event_hash()) == before


def test_pre_open_rests_without_matching_and_markets_have_no_md() -> None:
    eng = make_engine()
    process_decoded(eng, new_order(1, sec=4, price=105, qty=5))
    recs = process_decoded(eng, new_order(2, sec=4, side=S, price=95, qty=5))
    assert [r["template"] for r in recs] == [ER, "AddOrder", "BookLevel", "BestBidOffer"]
    recs = process_decoded(eng, new_order(3, sec=4, side=S, price=None, qty=7))
    assert [(r["template"], r["ExecType"], r["LastPx"]) for r in recs] == [(ER, C.EXEC_TYPE_NEW, C.NULL_PRICE)]
    assert eng.book(4, C.SIDE_BUY) == [(105, 5, 1)] and eng.book(4, S) == [(95, 5, 1)]
    # a resting market order cannot be replaced, but can be cancelled (no MD)
    assert _reasons(process_decoded(eng, replace(4, 3, side=S, sec=4, price=96, qty=7))) == [C.EXEC_REASON_UNSUPPORTED]
    recs = process_decoded(eng, cancel(5, order_id=3, side=S, sec=4))
    assert [(r["template"], r["ExecType"], r["LastQty"]) for r in recs] == [(ER, C.EXEC_TYPE_CANCELED, 7)]
    # a priority-losing replace in a call phase never matches: OrderReplace
    recs = process_decoded(eng, replace(6, 1, sec=4, price=96, qty=5))
    assert [r["template"] for r in recs][:2] == [ER, "OrderReplace"]
    # the book is crossed (96 over 95): the opening auction trades V = 5 at the tick closest to
    # Ref among the prices of maximum volume and least imbalance (95, 96; I = 0): 96
    recs = _status(eng, T0, [4], PHASE_CONTINUOUS)
    trades = [r for r in recs if r["template"] == "Trade"]
    assert [(r["LastPx"], r["LastQty"], r["TradeCondition"]) for r in trades] == [(96, 5, C.TRADE_CONDITION_AUCTION)]
    assert recs[-1]["template"] == "SecurityStatus" and eng.book(4, C.SIDE_BUY) == eng.book(4, S) == []
    assert eng.auction_state(4)["ref"] == 96


def test_fba_continuous_rests_ioc_and_reports_batch_auction() -> None:
    eng = make_engine()
    process_decoded(eng, new_order(1, sec=5, side=S, price=100, qty=5))
    recs = process_decoded(eng, new_order(2, sec=5, price=101, qty=5, tif=C.TIF_IOC))
    assert [r["template"] for r in recs] == [ER, "AddOrder", "BookLevel", "BestBidOffer"]
    recs = process_decoded(eng, new_order(3, sec=5, price=None, qty=5, tif=C.TIF_IOC))
    assert [r["template"] for r in recs] == [ER]
    for secs, phase in (([5], PHASE_HALTED), ([5], PHASE_CLOSED)):
        _status(eng, T0, secs, phase)
    process_decoded(
        eng, cancel(4, order_id=1, side=S, sec=5), cancel(5, order_id=2, sec=5), cancel(6, order_id=3, sec=5)
    )
    _status(eng, T0, [5], PHASE_PRE_OPEN)
    recs = _status(eng, T0, [5], PHASE_CONTINUOUS)
    assert recs[0]["TradingStatus"] == C.TRADING_STATUS_BATCH_AUCTION


def test_set_phase_output_full() -> None:
    eng = make_engine()
    process_decoded(eng, new_order(1, price=99), new_order(2, price=98))
    res = eng.set_phase(T0, [1, 2], PHASE_HALTED, np.zeros(35, dtype=schema.OUTPUT))
    assert (res.status, res.needed) == (OUTPUT_FULL, 16 + (8 * 2 + 2) + (8 * 0 + 2))
    assert _reasons(process_decoded(eng, new_order(3, price=97))) == [0]  # still Continuous


def test_set_reference_moves_the_band() -> None:
    eng = make_engine()
    assert _reasons(process_decoded(eng, new_order(1, price=160))) == [C.EXEC_REASON_PRICE_OUTSIDE_BAND]
    eng.set_reference(T0 + 50, 1, 150)
    assert eng.last_time == T0 + 50
    assert _reasons(process_decoded(eng, new_order(2, price=160))) == [0]
    with pytest.raises(ConfigError):
        eng.set_reference(T0, 2, 2**62)  # band edge x tick overflows PRICE9
    with pytest.raises(ValueError, match="not configured"):
        eng.set_reference(T0, 99, 1)


def test_auction_commands_on_empty_books_emit_nothing() -> None:
    eng = make_engine()
    out = np.zeros(64, dtype=schema.OUTPUT)
    # the FBA instrument (interval 0) is due but has no order; PreOpen has nothing to publish
    assert eng.auction_tick(T0, out) == (STATUS_OK, 1, 0, 0)
    assert eng.publish_indicative(T0, out) == (STATUS_OK, 1, 0, 0)
    assert eng.last_time == T0
