"""Auction transitions whose uncross is trivial (issue 8 item 3, ENGINE.md §7.1, §7.4-§7.5).

PreOpen -> Continuous and PreClose -> Closed uncross first. With no market or IOC order
and no crossed limit book, V = 0 and §7.5 rule 6 has nothing to cancel, so the chain is
just the SecurityStatus; both engines must do it (before, the fast engine raised
NotImplementedError even on an empty book). Real uncrosses are compared here in their
simplest forms; test_engine_auction.py covers them in depth.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from _engine_records import SMALL, batch, decode, instrument, new_out, nos

from qfix.engine import Engine
from qfix.engine.config import PHASE_CLOSED, PHASE_CONTINUOUS, PHASE_HALTED, PHASE_PRE_CLOSE, PHASE_PRE_OPEN
from qfix.testing.reference import ReferenceEngine
from qfix.wire import codes


def _pair(**kw: Any) -> tuple[Engine, ReferenceEngine]:
    insts = [instrument(1, **kw), instrument(2, **kw)]
    return Engine(insts, SMALL), ReferenceEngine(insts, SMALL, check=True)


def _call(fast: Engine, ref: ReferenceEngine, name: str, *args: Any) -> list[dict[str, Any]]:
    o_f, o_r = new_out(), new_out()
    if name == "process":
        r_f, r_r = fast.process(args[0], o_f), ref.process(args[0], o_r)
    else:
        r_f, r_r = getattr(fast, name)(*args, o_f), getattr(ref, name)(*args, o_r)
    assert r_f == r_r
    assert o_f[: r_f.written].tobytes() == o_r[: r_r.written].tobytes()
    assert fast.state_hash() == ref.state_hash() and fast.event_hash() == ref.event_hash()
    fast.check_invariants()
    return decode(o_f[: r_f.written])


def test_halted_empty_book_reopens() -> None:
    fast, ref = _pair()
    _call(fast, ref, "set_phase", 1, [1], PHASE_HALTED)
    _call(fast, ref, "set_phase", 2, [1], PHASE_PRE_OPEN)
    rows = _call(fast, ref, "set_phase", 3, [1], PHASE_CONTINUOUS)
    assert [r["t"] for r in rows] == ["SecurityStatus"]
    assert rows[0]["TradingStatus"] == codes.TRADING_STATUS_CONTINUOUS and rows[0]["TransactTime"] == 3
    rows = _call(fast, ref, "process", batch(nos(1, "buy", 100, 2), nos(2, "sell", 100, 2, session=2)))
    assert [r["ExecType"] for r in rows if r["t"] == "ExecutionReport"].count(codes.EXEC_TYPE_TRADE) == 2


def test_preopen_uncrossed_book_opens_without_output() -> None:
    fast, ref = _pair(phase=PHASE_PRE_OPEN)
    _call(fast, ref, "process", batch(nos(1, "buy", 99, 3), nos(2, "sell", 101, 4, session=2), nos(3, "buy", 98, 1)))
    before = fast.live_orders().copy()
    rows = _call(fast, ref, "set_phase", 9, [1, 2], PHASE_CONTINUOUS)
    assert [(r["t"], r["SecurityID"]) for r in rows] == [("SecurityStatus", 1), ("SecurityStatus", 2)]
    assert rows[1]["TradingStatus"] == codes.TRADING_STATUS_CONTINUOUS
    assert np.array_equal(fast.live_orders(), before)
    # the book keeps its priority and trades on entry now
    rows = _call(fast, ref, "process", batch(nos(4, "sell", 99, 3, session=3)))
    assert [r["OrderID"] for r in rows if r["t"] == "ExecutionReport" and r["ExecType"] == codes.EXEC_TYPE_TRADE][
        1
    ] == 1


def test_preclose_to_closed_without_cross() -> None:
    fast, ref = _pair()
    _call(fast, ref, "process", batch(nos(1, "buy", 99, 3), nos(2, "sell", 101, 4, session=2)))
    _call(fast, ref, "set_phase", 1, [1], PHASE_PRE_CLOSE)
    _call(fast, ref, "process", batch(nos(3, "buy", 100, 1)))
    rows = _call(fast, ref, "set_phase", 2, [1], PHASE_CLOSED)
    assert [r["t"] for r in rows] == ["SecurityStatus"]
    assert fast.resting_orders == 3


@pytest.mark.parametrize(
    "orders",
    [
        [nos(1, "buy", 101, 3), nos(2, "sell", 100, 4, session=2)],  # crossed: V > 0
        [nos(1, "buy", 101, 3), nos(2, "sell", 101, 4, session=2)],  # locked: V > 0
        [nos(1, "buy", None, 3)],  # a market order alone: rule 6 cancels it
        [nos(1, "buy", None, 3), nos(2, "sell", 110, 4, session=2)],
    ],
)
def test_real_uncross_matches_the_reference(orders: list[np.ndarray]) -> None:
    fast, ref = _pair(phase=PHASE_PRE_OPEN)
    _call(fast, ref, "process", batch(*orders))
    rows = _call(fast, ref, "set_phase", 5, [2, 1], PHASE_CONTINUOUS)
    assert len(rows) > 2  # more than the two SecurityStatus records: fills or rule 6 cancels


def test_fba_ioc_left_resting_is_cancelled_by_the_closing_uncross() -> None:
    fast, ref = _pair(fba_interval_ns=1_000)
    _call(fast, ref, "process", batch(nos(1, "buy", 99, 3, tif=codes.TIF_IOC)))
    _call(fast, ref, "set_phase", 1, [1], PHASE_PRE_CLOSE)
    rows = _call(fast, ref, "set_phase", 2, [1], PHASE_CLOSED)
    # rule 6 cancels the IOC left resting by the FBA mode; the end-of-event block; the status
    assert [r["t"] for r in rows] == [
        "ExecutionReport",
        "OrderDelete",
        "BookLevel",
        "BestBidOffer",
        "SecurityStatus",
    ]
    assert fast.resting_orders == 0
