"""The price ladder (``_ladder``): sparse and dense levels, word boundaries, negative
prices, a moving band, and the word pool's growth and repacking, against the reference.

The differential suite draws prices near the touch, so most of its levels share a few
64-tick words. This stream also spreads levels a word or more apart, so that nearly every
level is a word of its own and the segments grow past the pool's bump pointer and get
repacked, puts prices on both sides of zero (offers rank as -price, so their words have
negative keys), crosses word edges (63, 64, 65 ticks), and sweeps aggressors through many
words (the bound U and FOK's simulation walk the ladder level by level). After every
batch both engines' outputs must be identical and the fast engine's invariants, which
check every word, bit, cached best level and level-table entry, must hold.
"""

from __future__ import annotations

import numpy as np
import pytest
from _engine_records import batch, cancel, instrument, new_out, nos, replace

from qfix.engine import Engine, EngineConfig, types
from qfix.testing.reference import ReferenceEngine
from qfix.wire import codes

CONFIG = EngineConfig(max_orders=3_000, max_levels=300, max_instruments=4, max_sessions=16)
INSTRUMENTS = (
    instrument(1, ref=0, band_width=20_000, collar=20_000),  # prices on both sides of zero
    instrument(2, ref=100_000, band_width=60_000, collar=60_000),
    instrument(3, ref=100_000, band_width=60_000, collar=60_000),
)
REFS = {1: 0, 2: 100_000, 3: 100_000}


def _price(rng: np.random.Generator, sec: int, side: str) -> int:
    """A passive price: a word or more from the others, on a word edge, or near the touch."""
    sign = -1 if side == "buy" else 1
    ref = REFS[sec]
    u = rng.random()
    if u < 0.8:
        away = 64 * int(rng.integers(1, 250)) + int(rng.integers(-1, 2))  # sparse, at word edges
    elif u < 0.9:
        away = int(rng.integers(1, 130))  # dense, near the touch
    else:
        away = 64 * int(rng.integers(0, 4)) + int(rng.choice([63, 64, 65, 127, 128]))
    return ref + sign * away


def _stream(seed: int, n: int) -> list[np.ndarray]:
    rng = np.random.Generator(np.random.PCG64(seed))
    recs: list[np.ndarray] = []
    sent: list[tuple[int, int, str, int]] = []  # clordid, sec, side, session
    for k in range(1, n + 1):
        sec = int(rng.integers(1, 4))
        side = "buy" if rng.integers(2) else "sell"
        session = 1 + int(rng.integers(8))
        u = rng.random()
        if u < 0.72 or not sent:
            recs.append(nos(k, side, _price(rng, sec, side), int(rng.integers(1, 6)), sec=sec, session=session,
                            recv=k, tif=codes.TIF_GTC))  # fmt: skip
            sent.append((k, sec, side, session))
        elif u < 0.82:
            c, csec, cside, csess = sent[int(rng.integers(len(sent)))]
            recs.append(cancel(k, orig=c, side=cside, sec=csec, session=csess, recv=k))
        elif u < 0.93:
            c, csec, cside, csess = sent[int(rng.integers(len(sent)))]
            recs.append(replace(k, c, _price(rng, csec, cside), int(rng.integers(1, 6)), cside, sec=csec,
                                session=csess, recv=k, tif=codes.TIF_GTC))  # fmt: skip
            sent.append((k, csec, cside, csess))
        else:  # sweeps through many words: IOC, FOK, market
            kind = rng.integers(3)
            tif = (codes.TIF_IOC, codes.TIF_FOK, codes.TIF_IOC)[kind]
            sign = 1 if side == "buy" else -1
            price = None if kind == 2 else REFS[sec] + sign * int(rng.integers(0, 8_000))
            recs.append(nos(k, side, price, int(rng.integers(5, 40)), sec=sec, session=session, recv=k, tif=tif))
    return recs


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_sparse_and_dense_ladders_match_the_reference(seed: int) -> None:
    fast = Engine(INSTRUMENTS, CONFIG)
    ref = ReferenceEngine(INSTRUMENTS, CONFIG)
    recs = _stream(seed, 4_000)
    o_fast, o_ref = new_out(1 << 14), new_out(1 << 14)
    most_words = 0
    for i in range(0, len(recs), 40):
        if i == 2_000:  # the band moves: resting orders outside the new one stay on the ladder
            fast.set_reference(i, 2, 130_000)
            ref.set_reference(i, 2, 130_000)
        chunk = batch(*recs[i : i + 40])
        r_fast = fast.process(chunk, o_fast)
        r_ref = ref.process(chunk, o_ref)
        assert r_fast == r_ref
        assert o_fast[: r_fast.written].tobytes() == o_ref[: r_ref.written].tobytes(), f"batch at {i}"
        fast.check_invariants()
        most_words = max(most_words, int(fast._sides["n"].max()))
    assert fast.state_hash() == ref.state_hash()
    # the stream did what it is for: many words per side, a book at its level capacity
    assert most_words > 40
    assert fast.occupied_levels == CONFIG.max_levels


def test_word_pool_repacks_when_books_move_between_instruments() -> None:
    """Each phase fills one instrument with levels a word apart and cancels them: the
    segments it grew stay allocated, so a later phase exhausts the pool and repacks it."""
    config = EngineConfig(max_orders=400, max_levels=120, max_instruments=4, max_sessions=4)
    instruments = tuple(instrument(s, ref=100_000, band_width=60_000) for s in (1, 2, 3, 4))
    fast = Engine(instruments, config)
    ref = ReferenceEngine(instruments, config)
    o_fast, o_ref = new_out(1 << 12), new_out(1 << 12)
    k = 0  # ClOrdIDs increase per session (WIRE.md), so one counter numbers every request
    for sec in (1, 2, 3, 4, 1, 3):
        adds, cancels = [], []
        for j in range(60):  # every level its own word, up to MaxLevels
            for side, sign in (("buy", -1), ("sell", 1)):
                k += 1
                adds.append(nos(k, side, 100_000 + sign * 64 * (j + 1), 1, sec=sec, recv=k, tif=codes.TIF_GTC))
        for first in range(k - 119, k + 1):
            side = "buy" if (first - k) % 2 else "sell"
            cancels.append(cancel(first + 120, orig=first, side=side, sec=sec, recv=first + 120))
        k += 120
        for recs, levels in ((adds, config.max_levels), (cancels, 0)):
            r_fast = fast.process(batch(*recs), o_fast)
            r_ref = ref.process(batch(*recs), o_ref)
            assert r_fast == r_ref
            assert o_fast[: r_fast.written].tobytes() == o_ref[: r_ref.written].tobytes()
            fast.check_invariants()
            assert fast.occupied_levels == levels
    assert fast.state_hash() == ref.state_hash()
    assert fast._ctr[types.C_POOL_REPACKS] > 0
