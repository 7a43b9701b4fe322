"""The order indexes start small and double as the book grows (``_index._index_grow``);
the session and account order lists stay consistent (invariant 14).

A book of thousands of orders crosses several doublings; every order must stay findable
by OrderID and by (SessionID, ClOrdID) across them, outputs must equal the reference
engine's byte for byte, and a snapshot of a large book must restore into tables sized
for it.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from _engine_records import batch, cancel, instrument, new_out, nos, replace

from qfix.engine import Engine, EngineConfig, EngineInvariantError, _index, snapshot, types
from qfix.engine.config import ConfigError
from qfix.testing.reference import ReferenceEngine
from qfix.wire import codes

N_ORDERS = 9_000  # the tables grow at a quarter full: 2^12 -> 2^16 entries, four doublings
CONFIG = EngineConfig(max_orders=20_000, max_levels=2_000, max_instruments=4, max_sessions=64)
INSTRUMENTS = (instrument(1, ref=10_000, band_width=5_000), instrument(2, ref=10_000, band_width=5_000))


def _run(engines: list[object], records: np.ndarray) -> list[bytes]:
    outs = []
    for eng in engines:
        out = new_out(1 << 16)
        written = 0
        chunks = []
        for i in range(0, len(records), 512):
            res = eng.process(records[i : i + 512], out)  # type: ignore[attr-defined]
            assert res.status == 0, res
            chunks.append(out[: res.written].tobytes())
            written += res.written
        outs.append(b"".join(chunks))
    return outs


def _stream() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.Generator(np.random.PCG64(7))
    adds = []
    for k in range(N_ORDERS):
        side = "buy" if k % 2 == 0 else "sell"
        price = 9_000 - int(rng.integers(0, 900)) if side == "buy" else 11_000 + int(rng.integers(0, 900))
        adds.append(nos(k + 1, side, price, 5, sec=1 + k % 2, session=1 + k % 40, recv=k + 1, tif=codes.TIF_GTC))
    later = []
    t = N_ORDERS + 1
    for k in rng.permutation(N_ORDERS)[: N_ORDERS // 2]:
        k = int(k)
        side = "buy" if k % 2 == 0 else "sell"
        session, sec = 1 + k % 40, 1 + k % 2
        t += 1
        if k % 3 == 0:  # by OrderID (the fast and the reference engines both count from 1)
            later.append(cancel(100_000 + k, order_id=k + 1, side=side, sec=sec, session=session, recv=t))
        elif k % 3 == 1:
            later.append(cancel(100_000 + k, orig=k + 1, side=side, sec=sec, session=session, recv=t))
        else:
            price = 9_500 if side == "buy" else 10_500
            later.append(replace(100_000 + k, k + 1, price, 3, side, sec=sec, session=session, recv=t,
                                 tif=codes.TIF_GTC))  # fmt: skip
    return batch(*adds), batch(*later)


def test_indexes_grow_and_every_order_stays_findable() -> None:
    adds, later = _stream()
    fast = Engine(INSTRUMENTS, CONFIG)
    ref = ReferenceEngine(INSTRUMENTS, CONFIG)
    a_fast, a_ref = _run([fast, ref], adds)
    assert a_fast == a_ref
    assert fast.resting_orders == N_ORDERS
    assert fast._cfg[types.G_OID_BITS] == 16
    fast.check_invariants()  # every live order found through both indexes
    restored = snapshot.restore(INSTRUMENTS, snapshot.export(fast), CONFIG)
    assert restored.state_hash() == fast.state_hash()
    l_fast, l_ref, l_restored = _run([fast, ref, restored], later)
    assert l_fast == l_ref == l_restored
    assert fast.state_hash() == ref.state_hash() == restored.state_hash()
    fast.check_invariants()
    restored.check_invariants()


def test_broken_order_lists_are_reported() -> None:
    """Invariant 14 notices a session or account list that lost or misfiled an order."""
    for field in ("ses_next", "acc_next", "acc_prev"):
        eng = Engine(INSTRUMENTS, CONFIG)
        adds, _ = _stream()
        _run([eng], adds[:50])
        eng.check_invariants()
        live = np.flatnonzero(eng._orders["order_id"][:200])
        if field == "acc_prev":  # an order behind its list's head claims to head it
            second = live[eng._orders["acc_prev"][live] >= 0][0]
            eng._orders[field][second] = -1
        else:  # an order's successor in the list is some other account's order
            eng._orders[field][live[10]] = live[21]
        with pytest.raises(EngineInvariantError, match="invariant 14"):
            eng.check_invariants()


def test_reserved_tables_start_at_size_and_never_grow_below_it() -> None:
    """``EngineConfig.reserve_orders`` sizes the tables once, so a book that stays below it
    never pays a doubling; the outputs and the state are those of the growing engine."""
    adds, later = _stream()
    reserved = Engine(INSTRUMENTS, dataclasses.replace(CONFIG, reserve_orders=N_ORDERS))
    growing = Engine(INSTRUMENTS, CONFIG)
    assert reserved._cfg[types.G_OID_BITS] == 16 and growing._cfg[types.G_OID_BITS] == 12
    r_out, g_out = _run([reserved, growing], adds)
    assert r_out == g_out
    assert reserved._cfg[types.G_OID_BITS] == 16  # no doubling happened
    l_reserved, l_growing = _run([reserved, growing], later)
    assert l_reserved == l_growing
    assert reserved.state_hash() == growing.state_hash()
    reserved.check_invariants()
    with pytest.raises(ConfigError, match=r"reserve_orders must be in 0\.\.max_orders"):
        dataclasses.replace(CONFIG, reserve_orders=CONFIG.max_orders + 1)


def test_a_doubling_over_recycled_slots_keeps_every_order() -> None:
    """A doubling re-files the live slots in slot order, sorted through a bitmap: after
    cancels have freed slots all over the table and new orders reused them, the live slots
    are scattered, and the doubling must still find every one of them (and no freed one).
    (At a doubling the engine's highest slot is the order being filed, so the bitmap's
    last partial word is tested directly, below.)"""
    rng = np.random.Generator(np.random.PCG64(11))
    first, second = 3_001, 6_037  # 4 x 3,001 fits 2^14 entries; 7,038 live orders need 2^15

    def add(k: int, t: int) -> np.ndarray:
        # ClOrdIDs rise per session across the three phases: 1.., 50,000.., 100,000..
        side = "buy" if k % 2 == 0 else "sell"
        price = 9_000 - int(rng.integers(0, 900)) if side == "buy" else 11_000 + int(rng.integers(0, 900))
        cl = k + 1 if k < first else 100_000 + k
        return nos(cl, side, price, 5, sec=1 + k % 2, session=1 + k % 40, recv=t, tif=codes.TIF_GTC)

    adds = batch(*(add(k, k + 1) for k in range(first)))
    gone = rng.permutation(first)[:2_000]
    cancels = batch(*(
        cancel(50_000 + i, order_id=int(k) + 1, side="buy" if k % 2 == 0 else "sell", sec=1 + k % 2,
               session=1 + k % 40, recv=first + 1 + i)
        for i, k in enumerate(gone)
    ))  # fmt: skip
    more = batch(*(add(k, 10_000 + k) for k in range(first, first + second)))
    fast = Engine(INSTRUMENTS, CONFIG)
    ref = ReferenceEngine(INSTRUMENTS, CONFIG)
    for part in (adds, cancels):
        part_fast, part_ref = _run([fast, ref], part)
        assert part_fast == part_ref
    assert fast.resting_orders == first - len(gone)
    bits_before = int(fast._cfg[types.G_OID_BITS])
    out_fast, out_ref = _run([fast, ref], more)
    assert out_fast == out_ref
    assert int(fast._cfg[types.G_OID_BITS]) > bits_before  # the doubling happened over recycled slots
    assert fast.resting_orders == first - len(gone) + second  # every cancel and order went through
    assert fast.state_hash() == ref.state_hash()
    fast.check_invariants()  # every live order found through both indexes, the lists intact


@pytest.mark.parametrize("hw", [1, 63, 64, 65, 127, 128, 129, 4_097, 10_000])
def test_slots_in_order_sorts_any_set_of_slots(hw: int) -> None:
    """``_index._slots_in_order`` returns exactly the filed slots, ascending: slots on both
    edges of a bitmap word (bit 0 and bit 63, the sign bit), in the last partial word, and
    none when the table is empty."""
    rng = np.random.Generator(np.random.PCG64(hw))
    edges = [s for s in (0, 63, 64, 127, hw - 1) if s < hw]
    for count in (0, 1, hw // 3, hw):
        live = np.unique(np.concatenate([rng.choice(hw, size=count, replace=False), edges if count else []]))
        live = live.astype(np.int64)
        size = 1 << max(4, int(4 * max(1, live.size)).bit_length())
        tab = np.full(size, -1, np.int32)
        tab[rng.choice(size, size=live.size, replace=False)] = live  # any table order
        marks = np.full((hw + 63) // 64 + 3, -1, np.int64)  # stale bits must not leak in
        out = np.full(size, -7, np.int32)
        n = _index._slots_in_order(tab, size, hw, marks, out)
        assert n == live.size
        assert np.array_equal(out[:n], live)
