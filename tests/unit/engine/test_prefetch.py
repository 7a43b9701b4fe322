"""The deep-book path of ``process``: the lookahead prefetches (``_prefetch``) and the
SecurityID hash table (``_common.instrument_table``).

A prefetch changes nothing by construction; these tests hold the kernels to that on a
book deep enough to switch the lookahead on (``DEEP_BOOK_ORDERS`` resting orders), over
many instruments, with every record kind the lookahead follows (cancels by OrderID and
by OrigClOrdID, replaces, new orders, lookups that fail) and batch sizes that end the
lookahead early: outputs byte for byte and the state hash equal the reference engine's.
"""

from __future__ import annotations

import numpy as np
import pytest
from _engine_records import batch, cancel, instrument, new_out, nos, replace
from numba import njit

from qfix.engine import Engine, EngineConfig
from qfix.engine._common import _find_inst, instrument_table
from qfix.engine._prefetch import DEEP_BOOK_ORDERS
from qfix.testing.reference import ReferenceEngine
from qfix.wire import codes

N_INSTRUMENTS = 40
N_ORDERS = DEEP_BOOK_ORDERS + 8_000
CONFIG = EngineConfig(max_orders=1 << 18, max_levels=1 << 15, max_instruments=64, max_sessions=128)
INSTRUMENTS = tuple(instrument(100 + 7 * k, ref=10_000, band_width=5_000) for k in range(N_INSTRUMENTS))


def _sec(k: int) -> int:
    return 100 + 7 * (k % N_INSTRUMENTS)


def _side(k: int) -> str:
    return "buy" if k % 2 == 0 else "sell"


def _streams(seed: int = 11, n_later: int = 6_000) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.Generator(np.random.PCG64(seed))
    adds = []
    for k in range(N_ORDERS):
        side = _side(k)
        price = 9_000 - int(rng.integers(0, 150)) if side == "buy" else 11_000 + int(rng.integers(0, 150))
        adds.append(nos(k + 1, side, price, 5, sec=_sec(k), session=1 + k % 100, recv=k + 1, tif=codes.TIF_GTC))
    later = []
    t = N_ORDERS + 1
    cl = 1_000_000
    for k in rng.integers(0, N_ORDERS, n_later):
        k = int(k)
        side, sec, session = _side(k), _sec(k), 1 + k % 100
        t += 1
        cl += 1
        kind = int(rng.integers(0, 6))
        if kind == 0:
            later.append(cancel(cl, order_id=k + 1, side=side, sec=sec, session=session, recv=t))
        elif kind == 1:
            later.append(cancel(cl, orig=k + 1, side=side, sec=sec, session=session, recv=t))
        elif kind == 2:  # a move; some cross the spread and trade
            price = (9_600 if side == "buy" else 10_400) + int(rng.integers(-300, 1_500)) * (1 if side == "buy" else -1)
            later.append(replace(cl, k + 1, price, 4, side, sec=sec, session=session, recv=t, tif=codes.TIF_GTC))
        elif kind == 3:  # a new order, passive or crossing
            price = 9_000 + int(rng.integers(0, 2_400)) if side == "buy" else 11_000 - int(rng.integers(0, 2_400))
            later.append(nos(cl, side, price, 3, sec=sec, session=session, recv=t, tif=codes.TIF_GTC))
        elif kind == 4:  # lookups that fail: an unknown SecurityID, an order never entered
            later.append(nos(cl, side, 9_500, 3, sec=99_999, session=session, recv=t, tif=codes.TIF_GTC))
            t += 1
            cl += 1
            later.append(cancel(cl, orig=10_000_000 + k, side=side, sec=sec, session=session, recv=t))
        else:  # the same order again, right behind: the lookahead's guess is stale by then
            later.append(cancel(cl, orig=k + 1, side=side, sec=sec, session=session, recv=t))
            t += 1
            cl += 1
            later.append(replace(cl, k + 1, 9_100, 2, side, sec=sec, session=session, recv=t, tif=codes.TIF_GTC))
    return batch(*adds), batch(*later)


def _run(eng: object, records: np.ndarray, sizes: list[int]) -> bytes:
    out = new_out(1 << 16)
    chunks = []
    i = 0
    k = 0
    while i < len(records):
        step = sizes[k % len(sizes)]
        k += 1
        res = eng.process(records[i : i + step], out)  # type: ignore[attr-defined]
        assert res.status == 0, res
        chunks.append(out[: res.written].tobytes())
        i += step
    return b"".join(chunks)


@pytest.mark.parametrize("sizes", [[512], [1, 2, 3, 4, 5, 64]])
def test_deep_book_outputs_equal_the_reference(sizes: list[int]) -> None:
    _check(*_streams(), sizes)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [12, 13, 14])
def test_deep_book_outputs_equal_the_reference_long(seed: int) -> None:
    _check(*_streams(seed, 12_000), [1, 7, 1024, 3, 4096, 5])


def _check(adds: np.ndarray, later: np.ndarray, sizes: list[int]) -> None:
    fast = Engine(INSTRUMENTS, CONFIG)
    ref = ReferenceEngine(INSTRUMENTS, CONFIG)
    assert _run(fast, adds, [512]) == _run(ref, adds, [512])
    assert fast.resting_orders >= DEEP_BOOK_ORDERS  # the lookahead is on from here
    assert _run(fast, later, sizes) == _run(ref, later, sizes)
    assert fast.state_hash() == ref.state_hash()
    assert fast.resting_orders >= DEEP_BOOK_ORDERS  # and still on at the end
    fast.check_invariants()


@njit(cache=False)
def _lookup(tab: np.ndarray, ids: np.ndarray) -> np.ndarray:
    found = np.empty(ids.size, np.int64)
    for i in range(ids.size):
        found[i] = _find_inst(tab, ids[i])
    return found


@pytest.mark.parametrize("count", [1, 3, 1_000, 16_384])
def test_instrument_table_finds_every_security_id_and_no_other(count: int) -> None:
    rng = np.random.Generator(np.random.PCG64(count))
    edges = np.array([0, 1, (1 << 31) - 1, 1 << 31, (1 << 32) - 2, (1 << 32) - 1], np.int64)
    ids = np.unique(np.concatenate([edges, rng.integers(0, 1 << 32, count, dtype=np.int64)]))[:count]
    tab = instrument_table(ids)
    assert tab.size >= 4 * ids.size and tab.size & (tab.size - 1) == 0
    assert np.array_equal(_lookup(tab, ids), np.arange(ids.size))
    absent = np.setdiff1d(np.concatenate([edges, rng.integers(0, 1 << 32, 500, dtype=np.int64)]), ids)
    assert (_lookup(tab, absent) == -1).all()
