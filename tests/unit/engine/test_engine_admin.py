"""Admin entry points, snapshots and output bounds of the fast engine."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _engine_records import SMALL, batch, decode, instrument, new_out, nos

from qfix.engine import Engine, EngineInvariantError
from qfix.engine import snapshot as snap
from qfix.engine.config import PHASE_CLOSED, PHASE_HALTED, PHASE_PRE_OPEN, ConfigError
from qfix.engine.contract import OUTPUT_FULL
from qfix.wire import codes


def test_set_phase_plain_transitions(make_engine: Any) -> None:
    eng = make_engine(instrument(1), instrument(2, phase=PHASE_CLOSED))
    out = new_out()
    res = eng.set_phase(7, [1], PHASE_HALTED, out)
    rows = decode(out[: res.written])
    assert [r["t"] for r in rows] == ["SecurityStatus"]
    assert rows[0]["TradingStatus"] == codes.TRADING_STATUS_HALT and rows[0]["HaltReason"] == 1
    assert rows[0]["MatchEventIndicator"] == codes.MEI_END_OF_EVENT and rows[0]["TransactTime"] == 7
    res = eng.set_phase(8, [2, 1], PHASE_PRE_OPEN, out)
    assert [r["SecurityID"] for r in decode(out[: res.written])] == [1, 2]
    with pytest.raises(ValueError):
        eng.set_phase(9, [1], PHASE_PRE_OPEN, out)  # not a listed transition
    with pytest.raises(ValueError):
        eng.set_phase(9, [99], PHASE_CLOSED, out)


def test_set_reference_moves_the_band(make_engine: Any) -> None:
    eng = make_engine()
    rows = decode(eng.process_one(nos(1, "buy", 160, 1)))
    assert rows[0]["ExecReason"] == codes.EXEC_REASON_PRICE_OUTSIDE_BAND
    eng.set_reference(0, 1, 150)
    rows = decode(eng.process_one(nos(2, "buy", 160, 1)))
    assert rows[0]["ExecType"] == codes.EXEC_TYPE_NEW
    before = eng.state_hash()
    with pytest.raises(ConfigError):
        eng.set_reference(0, 1, 2**62)
    assert eng.state_hash() == before


def test_output_full_stops_before_the_record(make_engine: Any) -> None:
    eng = make_engine()
    recs = batch(nos(1, "sell", 100, 5, session=2), nos(2, "buy", 100, 5))
    out = new_out(20)
    res = eng.process(recs, out)
    assert res.status == OUTPUT_FULL and res.consumed == 1 and res.needed == 16 + 8 * (5 + 1)
    first = out[: res.written].copy()
    big = new_out(res.needed)
    res2 = eng.process(recs[1:], big)
    assert res2.status == 0 and res2.written <= res.needed
    ref = make_engine()
    out_all = new_out()
    r_all = ref.process(recs, out_all)
    assert np.concatenate([first, big[: res2.written]]).tobytes() == out_all[: r_all.written].tobytes()


def test_commands_respect_their_bound(make_engine: Any) -> None:
    eng = make_engine()
    eng.process(batch(*[nos(k, "buy", 90 + k, 1) for k in range(1, 6)]), new_out())
    res = eng.end_of_day(0, new_out(16 + 4 * 5 - 1))
    assert res.status == OUTPUT_FULL and res.consumed == 0 and res.needed == 36 and eng.resting_orders == 5
    res = eng.end_of_day(0, new_out(36))
    assert res.status == 0 and res.consumed == 1 and eng.resting_orders == 0


def test_snapshot_file_round_trip(tmp_path: Path) -> None:
    insts = [instrument(1), instrument(2)]
    eng = Engine(insts, SMALL)
    eng.process(
        batch(nos(1, "buy", 100, 7, max_floor=3), nos(2, "sell", 103, 2, sec=2), nos(3, "buy", 99, 1)), new_out()
    )
    path = tmp_path / "state.npz"
    snap.save(path, snap.export(eng))
    restored = snap.restore(insts, snap.load(path), SMALL)
    assert restored.state_hash() == eng.state_hash() and restored.event_hash() == eng.event_hash()
    nxt = nos(4, "sell", 99, 5, session=3)
    assert restored.process_one(nxt).tobytes() == eng.process_one(nxt).tobytes()


def test_invariant_checker_catches_corruption(make_engine: Any) -> None:
    eng = make_engine()
    eng.process_one(nos(1, "buy", 100, 5))
    eng.check_invariants()
    eng._levels["total"][:] += 1  # simulate a broken level total
    with pytest.raises(EngineInvariantError):
        eng.check_invariants()


def test_read_only_batches_are_accepted(make_engine: Any) -> None:
    from qfix.wire.schema import INBOUND

    recs = batch(nos(1, "buy", 100, 1), nos(2, "sell", 100, 1, session=2))
    frozen = np.frombuffer(recs.tobytes(), INBOUND)
    assert not frozen.flags.writeable
    a = make_engine()
    b = make_engine()
    out_a = new_out()
    out_b = new_out()
    ra = a.process(frozen, out_a)
    rb = b.process(recs, out_b)
    assert ra == rb and out_a[: ra.written].tobytes() == out_b[: rb.written].tobytes()
