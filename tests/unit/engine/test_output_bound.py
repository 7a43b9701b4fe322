"""The bound U of templates 1 and 3 counts only reachable opposite orders (ENGINE.md §2.4).

Regression for issue 8 item 1: U used to count every live order and lot of the
instrument, so a resting bid of 2^32-2 lots made an unrelated non-crossing offer of the
same size stop with OUTPUT_FULL asking for ~34 billion records. Every case runs on the
fast and the reference engine, which must return the same ProcessResult (``needed``
included) and the same bytes.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from _engine_records import SMALL, batch, instrument, new_out, nos, replace

from qfix.engine import Engine, EngineConfig, worst_case_records
from qfix.engine.config import PHASE_PRE_OPEN
from qfix.engine.contract import OUTPUT_FULL, STATUS_OK, ProcessResult
from qfix.testing.reference import ReferenceEngine
from qfix.wire import codes

BIG = 2**32 - 2


def _pair(*insts: Any, config: EngineConfig = SMALL) -> tuple[Engine, ReferenceEngine]:
    table = list(insts) or [instrument(1)]
    return Engine(table, config), ReferenceEngine(table, config, check=True)


def _run(fast: Engine, ref: ReferenceEngine, records: np.ndarray, size: int = 4096) -> ProcessResult:
    o_f, o_r = new_out(size), new_out(size)
    r_f, r_r = fast.process(records, o_f), ref.process(records, o_r)
    assert r_f == r_r
    assert o_f[: r_f.written].tobytes() == o_r[: r_r.written].tobytes()
    assert fast.state_hash() == ref.state_hash() and fast.event_hash() == ref.event_hash()
    fast.check_invariants()
    return r_f


def _needed(fast: Engine, ref: ReferenceEngine, record: np.ndarray) -> int:
    """U of ``record`` as both engines report it from a 1-record buffer (nothing changes)."""
    before = fast.state_hash()
    res = _run(fast, ref, record, size=1)
    assert res.status == OUTPUT_FULL and res.consumed == 0 and res.written == 0
    assert fast.state_hash() == before
    return res.needed


def test_huge_resting_bid_does_not_inflate_an_unrelated_offer() -> None:
    fast, ref = _pair()
    _run(fast, ref, batch(nos(1, "buy", 90, BIG)))
    # the offer at 110 cannot reach the bid at 90: U = 16, a 16-record buffer is enough
    res = _run(fast, ref, batch(nos(2, "sell", 110, BIG, session=2)), size=16)
    assert res.status == STATUS_OK and res.written >= 1
    # and a replace of the bid to 95 (still not crossing) likewise
    res = _run(fast, ref, batch(replace(3, 1, 95, BIG)), size=16)
    assert res.status == STATUS_OK
    assert fast.resting_orders == 2
    # an offer that does reach the bid counts it: OrderQty 1 of its 2^32-2 lots, 1 order
    # (1 lot: the sell side already holds 2^32-2 open lots, one more fills it, §4 rule 2)
    assert _needed(fast, ref, batch(nos(4, "sell", 95, 1, session=3))) == 16 + 8 * (1 + 1)
    assert _needed(fast, ref, batch(nos(4, "sell", 95, 2, session=3))) == 16  # CapacityFull
    assert fast.worst_case_records() == 16 + 8 * (BIG + SMALL.max_orders)


def test_only_levels_at_or_better_than_the_limit_count() -> None:
    fast, ref = _pair()
    _run(fast, ref, batch(*[nos(k, "sell", 100 + k, 10 * k, session=2) for k in range(1, 6)], nos(6, "sell", 102, 7)))
    # asks: 101:10, 102:20+7, 103:30, 104:40, 105:50
    assert _needed(fast, ref, batch(nos(10, "buy", 99, 500, session=3))) == 16
    assert _needed(fast, ref, batch(nos(10, "buy", 101, 500, session=3))) == 16 + 8 * (10 + 1)
    assert _needed(fast, ref, batch(nos(10, "buy", 102, 500, session=3))) == 16 + 8 * (37 + 3)
    assert _needed(fast, ref, batch(nos(10, "buy", 103, 20, session=3))) == 16 + 8 * (20 + 4)
    # the other side of the book is never counted
    assert _needed(fast, ref, batch(nos(10, "sell", 99, 500, session=3))) == 16
    # market buy: collar 5 from the best ask 101 reaches 101..105 (all five levels)
    assert _needed(fast, ref, batch(nos(10, "buy", None, 1000, session=3))) == 16 + 8 * (157 + 6)
    res = _run(fast, ref, batch(nos(10, "buy", 102, 500, session=3)), size=16 + 8 * 40)
    assert res.status == STATUS_OK


def test_market_order_collar_limits_the_reach() -> None:
    fast, ref = _pair(instrument(1, collar=2))
    _run(fast, ref, batch(nos(1, "buy", 95, 5), nos(2, "buy", 93, 6), nos(3, "buy", 92, 7)))
    # best bid 95, collar 2: a market sell reaches 95 and 93, not 92
    assert _needed(fast, ref, batch(nos(4, "sell", None, 100, session=2))) == 16 + 8 * (11 + 2)
    # nothing on the other side: L is none, nothing is reachable
    assert _needed(fast, ref, batch(nos(4, "buy", None, 100, session=2))) == 16


@pytest.mark.parametrize(
    ("record", "why"),
    [
        (nos(1, "sell", 90, 5, session=2), "duplicate ClOrdID"),
        (nos(7, "sell", 90, BIG + 1, session=2), "QtyOverMax"),
        (nos(7, "sell", 30, 5, session=2), "PriceOutsideBand"),
        (nos(7, "sell", 90, 5, session=2, exec_inst=codes.EXEC_INST_POST_ONLY), "PostOnlyWouldCross"),
        (nos(7, "sell", 90, 5, session=2, sec=9), "UnknownSymbol"),
        (replace(7, 99, 90, 5, "sell", session=2), "UnknownOrder"),
        (replace(7, 1, 90, 5, "buy", session=2), "UnknownOrder (the order is a sell)"),
    ],
)
def test_rejected_before_matching_counts_nothing(record: np.ndarray, why: str) -> None:
    fast, ref = _pair()
    _run(fast, ref, batch(nos(1, "buy", 95, 40), nos(2, "buy", 94, 40)))
    _run(fast, ref, batch(nos(1, "sell", 120, 1, session=2)))  # session 2's last ClOrdID = 1
    assert _needed(fast, ref, record) == 16, why
    res = _run(fast, ref, record, size=16)
    assert res.status == STATUS_OK and res.written == 1, why


def test_no_matching_phase_counts_nothing() -> None:
    fast, ref = _pair(instrument(1, phase=PHASE_PRE_OPEN))
    _run(fast, ref, batch(nos(1, "buy", 95, 40), nos(2, "buy", 94, 40)))
    res = _run(fast, ref, batch(nos(3, "sell", 90, 80, session=2)), size=16)
    assert res.status == STATUS_OK


def test_replace_counts_what_the_new_price_reaches() -> None:
    fast, ref = _pair()
    _run(fast, ref, batch(nos(1, "buy", 95, 4), nos(2, "buy", 94, 5), nos(3, "sell", 99, 3, session=2)))
    assert _needed(fast, ref, batch(replace(4, 3, 96, 3, "sell", session=2))) == 16
    assert _needed(fast, ref, batch(replace(4, 3, 95, 3, "sell", session=2))) == 16 + 8 * (3 + 1)
    assert _needed(fast, ref, batch(replace(4, 3, 94, 30, "sell", session=2))) == 16 + 8 * (9 + 2)
    res = _run(fast, ref, batch(replace(4, 3, 94, 30, "sell", session=2)), size=16 + 8 * 11)
    assert res.status == STATUS_OK


def test_worst_case_records() -> None:
    insts = [instrument(1, max_order_qty=100), instrument(2, max_order_qty=250)]
    cfg = EngineConfig(max_orders=1000, max_levels=64)
    assert worst_case_records(insts, cfg) == 16 + 8 * (250 + 1000)
    assert Engine(insts, cfg).worst_case_records() == 16 + 8 * (250 + 1000)
    # more than 4 x MaxOrderQty instruments: a set_phase over all of them needs more
    many = [instrument(k, max_order_qty=1) for k in range(1, 11)]
    assert worst_case_records(many, cfg) == 16 + 8 * 1000 + 2 * 10
    assert worst_case_records([], cfg) == 16 + 8 * 1000
