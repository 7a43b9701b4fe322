"""Two independent readings of ENGINE.md §7.4-§7.5 agree: ``batch_match`` over arrays and
the reference engine's opening auction (``set_phase`` PreOpen -> Continuous), written
apart, give every order the same fill and every instrument the same clearing price, with
time and with pro-rata allocation, on random books of several instruments; and over the
fast engine's own books (``engine_books``), icebergs included."""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from qfix.engine import Engine
from qfix.engine.auction import Orders, batch_match, engine_books
from qfix.engine.config import (
    ALLOCATION_PRO_RATA,
    ALLOCATION_TIME,
    PHASE_CONTINUOUS,
    PHASE_PRE_OPEN,
    EngineConfig,
    InstrumentConfig,
)
from qfix.testing import ReferenceEngine, batch, decode, new_order, process_decoded
from qfix.wire import codes, schema

REFS = (100, 250, 40)
SPREAD = 8
T0 = 1_700_000_000_000_000_000

_order = st.tuples(
    st.integers(0, len(REFS) - 1),  # instrument
    st.booleans(),  # buy
    st.one_of(st.none(), st.integers(-SPREAD, SPREAD)),  # market, or offset from Ref
    st.integers(1, 30),  # lots
)


def _instruments(pro_rata: bool) -> list[InstrumentConfig]:
    allocation = ALLOCATION_PRO_RATA if pro_rata else ALLOCATION_TIME
    return [
        InstrumentConfig(
            security_id=k + 1, symbol=f"S{k}", ref=ref, band_width=200, tick_size_p9=1,
            phase=PHASE_PRE_OPEN, allocation=allocation,
        )
        for k, ref in enumerate(REFS)
    ]  # fmt: skip


def _records(orders: list[Any], floors: list[Any] | None = None) -> list[np.ndarray]:
    """Day orders in the given (time) order; ``floors`` makes limits icebergs where the
    display is below the lots."""
    return [
        new_order(
            n + 1,
            side=codes.SIDE_BUY if buy else codes.SIDE_SELL,
            price=None if offset is None else REFS[inst] + offset,
            qty=lots,
            sec=inst + 1,
            session=0 if buy else 1,
            max_floor=None if floors is None or offset is None or floors[n] is None or floors[n] >= lots else floors[n],
        )
        for n, (inst, buy, offset, lots) in enumerate(orders)
    ]


def _opening_fills(
    engine: ReferenceEngine, instruments: list[InstrumentConfig], order_ids: list[int]
) -> dict[int, int]:
    """Lots per OrderID that the reference engine's opening auction of every instrument fills."""
    out = np.zeros(1 << 14, schema.OUTPUT)
    result = engine.set_phase(T0, [i.security_id for i in instruments], PHASE_CONTINUOUS, out)
    filled = dict.fromkeys(order_ids, 0)
    for k in range(result.written):
        rec = decode(out["message"][k].tobytes(), int(out["dest"][k]))
        if rec["template"] == "ExecutionReport" and rec["ExecType"] == codes.EXEC_TYPE_TRADE:
            filled[int(rec["OrderID"])] += int(rec["LastQty"])
    return filled


@settings(max_examples=150)
@given(st.lists(_order, max_size=40), st.booleans())
def test_batch_match_equals_the_reference_uncross(orders: list[Any], pro_rata: bool) -> None:
    instruments = _instruments(pro_rata)
    engine = ReferenceEngine(instruments, EngineConfig(), check=True)
    records = _records(orders)
    acks = process_decoded(engine, *records) if records else []
    order_ids = [int(r["OrderID"]) for r in acks if r["template"] == "ExecutionReport"]
    assert len(order_ids) == len(orders)  # every order rests in PreOpen
    filled = _opening_fills(engine, instruments, order_ids)

    inst = np.array([o[0] for o in orders], np.int64)
    buy = np.array([o[1] for o in orders], np.bool_)
    market = np.array([o[2] is None for o in orders], np.bool_)
    price = np.array([0 if o[2] is None else REFS[o[0]] + o[2] for o in orders], np.int64)
    lots = np.array([o[3] for o in orders], np.int64)
    priority = np.arange(len(orders), dtype=np.int64)  # submission order is time order

    def side(mask: np.ndarray) -> Orders:
        return Orders.from_arrays(inst[mask], price[mask], lots[mask], market[mask], priority[mask])

    bids, asks = side(buy), side(~buy)
    got = batch_match(bids, asks, np.array(REFS), allocation="pro_rata" if pro_rata else "time", backend="cpu")
    ours = np.zeros(len(orders), np.int64)
    ours[buy] = got.bid_filled
    ours[~buy] = got.ask_filled
    assert ours.tolist() == [filled[oid] for oid in order_ids]
    for k, config in enumerate(instruments):
        crossed = got.clearing.volume[k] > 0
        want_ref = int(got.clearing.price[k]) if crossed else config.ref  # Ref := P when V > 0
        assert engine.auction_state(config.security_id)["ref"] == want_ref


@settings(max_examples=60)
@given(st.lists(_order, max_size=40), st.booleans(), st.lists(st.sampled_from([None, 3, 7]), min_size=40, max_size=40))
def test_batch_match_over_the_fast_engines_books(orders: list[Any], pro_rata: bool, floors: list[Any]) -> None:
    """``engine_books`` reads the fast engine's resting books (icebergs included: lots are
    Leaves); batch_match over them gives what the reference engine's uncross of the same
    books gives."""
    instruments = _instruments(pro_rata)
    fast = Engine(instruments, EngineConfig())
    reference = ReferenceEngine(instruments, EngineConfig(), check=True)
    records = _records(orders, floors)
    if records:
        for engine in (fast, reference):
            assert engine.process(batch(*records), np.zeros(1 << 14, schema.OUTPUT)).status == 0
    assert fast.state_hash() == reference.state_hash()

    bids, asks, ref = engine_books(fast)
    got = batch_match(bids, asks, ref, allocation="pro_rata" if pro_rata else "time", backend="cpu")
    live = fast.live_orders()
    buy = live["side"] == 0
    ours = dict.fromkeys(live["order_id"].tolist(), 0)
    for oid, lots in zip(live["order_id"][buy].tolist(), got.bid_filled.tolist(), strict=True):
        ours[oid] = lots
    for oid, lots in zip(live["order_id"][~buy].tolist(), got.ask_filled.tolist(), strict=True):
        ours[oid] = lots

    assert ours == _opening_fills(reference, instruments, list(ours))
