"""RecvTime and command ``now`` are u64 nanoseconds (WIRE.md §6.1, ENGINE.md §2.1 rule 3).

Regression for issue 8 item 2: the fast kernel read RecvTime as int64, so a time at or
above 2^63 compared as negative (TransactTime 0 where the reference wrote the value) and
commands raised OverflowError. Both engines must now agree byte for byte up to 2^64 - 1.
"""

from __future__ import annotations

from typing import Any

import pytest
from _engine_records import SMALL, batch, cancel, decode, instrument, mass, new_out, nos, replace

from qfix.engine import Engine, snapshot
from qfix.engine.config import PHASE_CONTINUOUS, PHASE_HALTED, PHASE_PRE_OPEN
from qfix.testing.reference import ReferenceEngine
from qfix.wire import codes

HALF = 2**63
TOP = 2**64 - 1
DAY = 86_400 * 10**9


def _pair() -> tuple[Engine, ReferenceEngine]:
    insts = [instrument(1), instrument(2)]
    return Engine(insts, SMALL), ReferenceEngine(insts, SMALL, check=True)


def _both(fast: Engine, ref: ReferenceEngine, call: str, *args: Any) -> list[dict[str, Any]]:
    out_f, out_r = new_out(), new_out()
    if call == "process":
        r_f = fast.process(args[0], out_f)
        r_r = ref.process(args[0], out_r)
    else:
        r_f = getattr(fast, call)(*args, out_f)
        r_r = getattr(ref, call)(*args, out_r)
    assert r_f == r_r
    assert out_f[: r_f.written].tobytes() == out_r[: r_r.written].tobytes()
    assert fast.state_hash() == ref.state_hash()
    assert fast.event_hash() == ref.event_hash()
    assert fast.last_time == ref.last_time
    fast.check_invariants()
    return decode(out_f[: r_f.written])


@pytest.mark.parametrize("recv", [HALF - 1, HALF, HALF + 12345, TOP - 1, TOP])
def test_process_recv_time_above_int64(recv: int) -> None:
    fast, ref = _pair()
    rows = _both(fast, ref, "process", batch(nos(1, "sell", 100, 5, session=2, recv=recv)))
    assert {r["TransactTime"] for r in rows} == {recv}
    assert fast.last_time == recv
    # an earlier RecvTime never moves time back (unsigned comparison)
    rows = _both(fast, ref, "process", batch(nos(2, "buy", 100, 2, recv=5), cancel(3, orig=99, recv=HALF - 1)))
    assert {r["TransactTime"] for r in rows} == {recv}
    rows = _both(fast, ref, "process", batch(replace(4, 1, 101, 3, "sell", session=2, recv=0), mass(5, recv=1)))
    assert {r["TransactTime"] for r in rows} == {recv}


def test_gtd_day_uses_unsigned_time() -> None:
    fast, ref = _pair()
    # day(2^63) = 106751 > any u16 ExpireDate: a GTD order is InvalidExpireDate in both engines
    rows = _both(fast, ref, "process", batch(nos(1, "buy", 99, 1, tif=codes.TIF_GTD, expire=65000, recv=HALF)))
    assert rows[0]["ExecReason"] == codes.EXEC_REASON_INVALID_EXPIRE_DATE
    fast, ref = _pair()
    rows = _both(fast, ref, "process", batch(nos(1, "buy", 99, 1, tif=codes.TIF_GTD, expire=65000, recv=DAY)))
    assert rows[0]["ExecType"] == codes.EXEC_TYPE_NEW
    rows = _both(fast, ref, "expire", HALF)
    assert [r["ExecType"] for r in rows if r["t"] == "ExecutionReport"] == [codes.EXEC_TYPE_EXPIRED]


@pytest.mark.parametrize("now", [HALF, HALF + 1, TOP - 1, TOP])
def test_commands_at_u64_times(now: int) -> None:
    fast, ref = _pair()
    _both(fast, ref, "process", batch(nos(1, "buy", 99, 1, recv=7), nos(2, "sell", 101, 1, session=2, recv=8)))
    rows = _both(fast, ref, "set_phase", now - 3, [1], PHASE_HALTED)
    assert rows[0]["TransactTime"] == now - 3
    _both(fast, ref, "set_phase", 0, [1], PHASE_PRE_OPEN)
    assert fast.last_time == now - 3
    fast.set_reference(now - 2, 2, 105)
    ref.set_reference(now - 2, 2, 105)
    assert fast.last_time == ref.last_time == now - 2
    assert fast.state_hash() == ref.state_hash() and fast.event_hash() == ref.event_hash()
    rows = _both(fast, ref, "cancel_sessions", now - 1, [1])
    assert {r["TransactTime"] for r in rows} == {now - 1}
    rows = _both(fast, ref, "cancel_accounts", 5, [2])
    assert {r["TransactTime"] for r in rows} == {now - 1}
    _both(fast, ref, "expire", now)
    _both(fast, ref, "end_of_day", 1)
    assert fast.last_time == ref.last_time == now
    rows = _both(fast, ref, "process", batch(nos(3, "buy", 99, 1, sec=2, recv=3)))
    assert rows[0]["TransactTime"] == now


@pytest.mark.parametrize("now", [-1, 2**64, 2**70])
def test_now_outside_u64_is_refused(now: int) -> None:
    fast, ref = _pair()
    before = fast.state_hash()
    for eng in (fast, ref):
        with pytest.raises(ValueError, match="u64"):
            eng.expire(now, new_out())
        with pytest.raises(ValueError, match="u64"):
            eng.end_of_day(now, new_out())
        with pytest.raises(ValueError, match="u64"):
            eng.cancel_sessions(now, [1], new_out())
        with pytest.raises(ValueError, match="u64"):
            eng.cancel_accounts(now, [1], new_out())
        with pytest.raises(ValueError, match="u64"):
            eng.set_phase(now, [1], PHASE_HALTED, new_out())
        with pytest.raises(ValueError, match="u64"):
            eng.set_reference(now, 1, 100)
    assert fast.state_hash() == ref.state_hash() == before
    assert fast.live_orders().size == 0


def test_batch_auction_ticks_above_int64_keep_hashes_and_snapshots_working() -> None:
    """A tick at t >= 2^63 sets NextUncross >= 2^63, kept as its int64 bit pattern: the
    state hash reads it unsigned (as the reference's Python integer) and a snapshot of it
    restores (the review of the auction work found both broken)."""
    insts = [instrument(1, fba_interval_ns=1_000, phase=PHASE_CONTINUOUS)]
    fast, ref = Engine(insts, SMALL), ReferenceEngine(insts, SMALL, check=True)
    _both(fast, ref, "process", batch(nos(1, "buy", 101, 3, recv=HALF + 10), nos(2, "sell", 100, 2, session=2)))
    rows = _both(fast, ref, "auction_tick", HALF + 2_500)
    assert [r["t"] for r in rows].count("Trade") == 1
    following = ((HALF + 2_500) // 1_000 + 1) * 1_000  # §7.6, above 2^63
    assert int(fast.instrument_rows()["next_uncross"][0]) % 2**64 == following
    assert fast.auction_due(following - 1) == () and fast.auction_due(following) == (1,)
    again = snapshot.restore(insts, snapshot.loads(snapshot.dumps(snapshot.export(fast))), SMALL)
    assert again.state_hash() == fast.state_hash()
