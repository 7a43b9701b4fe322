"""The price ladder of each instrument side: occupied ticks as sorted 64-tick words, and a
(side, price) -> level table.

Theory of operation: a side ranks its prices so that the best is the largest (``rank`` =
price for bids, -price for offers) and keeps the ranks of its occupied levels as bits of
``WORD`` records, ``key = rank >> 6`` and bit ``rank & 63``, in a segment of the shared
word pool sorted by key, best word last. A book whose levels sit near each other shares
few words, so a new level usually sets a bit in an existing word and an emptied level
clears one: the segment shifts only when a whole word appears or empties, where the sorted
map of levels that this replaced shifted every level better than the new one (about
120 ns of a 270 ns mix message; ``scripts/probe_ladder.py``). The best level is cached
per side and recomputed from the last word only when the best level itself empties. Any
int64 price fits, so a band that moves with the reference price needs nothing special.

Which level holds a price is found through an open-addressing table of int32 level slots
keyed by (side, price) and read back from the level record, as the order indices do
(``_index``): linear probing, backward-shift deletion, a displacement bound
(``C_LV_DISP``), and a size that grows with the occupied levels (at most a quarter full,
half at the allocated maximum) so a small book probes a table that stays in cache.

Segments grow by 1.5x from a bump pointer; when the pool is exhausted every segment is
repacked, which the pool size (2 x MaxLevels plus slack; see ``_pool_grow``) always makes
room for, so the pool never fills before the logical level limit.
"""

# Kernel signatures are inferred by Numba from the state dtypes; annotating them would be
# decorative, so the kernel modules relax mypy's untyped-def rules.
# mypy: allow-untyped-defs, allow-incomplete-defs, allow-untyped-calls

from __future__ import annotations

from typing import Final

import numpy as np

from qfix.engine._common import _sort_pairs, njit
from qfix.engine._index import HASH_MUL, HASH_MUL2
from qfix.engine._state import state
from qfix.engine.types import (
    C_LEVELS,
    C_LHW,
    C_LV_DISP,
    C_POOL_REPACKS,
    C_POOL_TOP,
    G_LV_BITS,
    G_POOL_SIZE,
    S_CFG,
    S_CTR,
    S_LEVEL_TAB,
    S_LEVELS,
    S_NARROW,
    S_PTRS,
    S_SIDES,
    S_WIDE,
    S_WORDS,
    WORD_MASK,
    WORD_SHIFT,
)

_U0: Final = np.uint64(0)
_U1: Final = np.uint64(1)
_WORD_BITS: Final = 1 << WORD_SHIFT

# Most significant set bit without Numba internals: smear the top bit into every lower
# bit, then a de Bruijn multiply names it (``scripts/probe_ladder.py`` measured LLVM's
# count-leading-zeros, reachable only through a private Numba module, no faster per
# ladder operation).
_DEBRUIJN: Final = 0x03F79D71B4CB0A89
_DB_SHIFT: Final = np.uint64(_WORD_BITS - WORD_SHIFT)
_U_DEBRUIJN: Final = np.uint64(_DEBRUIJN)
_SMEAR: Final = tuple(np.uint64(1 << i) for i in range(WORD_SHIFT))


def _debruijn_table() -> np.ndarray:
    table = np.full(_WORD_BITS, -1, np.int64)
    for k in range(_WORD_BITS):
        table[(((1 << (k + 1)) - 1) * _DEBRUIJN % (1 << _WORD_BITS)) >> int(_DB_SHIFT)] = k
    assert (table >= 0).all(), "the de Bruijn constant is not a perfect hash"
    return table


_DB_TABLE: Final = _debruijn_table()


@njit(_nrt=False, inline="always")
def _msb(x):
    """Index of the most significant set bit of a nonzero uint64."""
    for s in _SMEAR:
        x |= x >> s
    return _DB_TABLE[(x * _U_DEBRUIJN) >> _DB_SHIFT]


@njit(_nrt=False, inline="always")
def _rank(side, price):
    """A price's place on its side, larger is better: price for bids, -price for offers."""
    return price if side == 0 else -price


@njit(_nrt=False, inline="always")
def _word_rank(key, b):
    """The rank of bit ``b`` of the word with ``key`` (also for negative keys)."""
    return (key << WORD_SHIFT) | b


@njit(_nrt=False, inline="always")
def _best_level(S, si):
    """Best level of side ``si`` (-1: the side is empty)."""
    return S[S_SIDES][si].best


# --- the (side, price) -> level table ---------------------------------------------------


@njit(_nrt=False, inline="always")
def _lv_home(si, price, bits):
    h = (price ^ (si * HASH_MUL2)) * HASH_MUL
    return (h >> (64 - bits)) & ((1 << bits) - 1)


@njit(_nrt=False, inline="always")
def _level_find(S, ii, side, price):
    """Level of (instrument, side, price), or -1 (probes at most the displacement bound)."""
    return _find(S[S_LEVEL_TAB], S[S_LEVELS], S[S_CFG][G_LV_BITS], S[S_CTR][C_LV_DISP], ii, side, price)


@njit(_nrt=False, inline="always")
def _find(tab, levels, bits, disp, ii, side, price):
    """``_level_find`` on the arrays (for the helpers that are not inlined)."""
    mask = (1 << bits) - 1
    i = _lv_home(2 * ii + side, price, bits)
    for _ in range(disp + 1):
        lv = tab[i]
        if lv < 0:
            return -1
        if levels[lv].price == price and levels[lv].inst == ii and levels[lv].side == side:
            return lv
        i = (i + 1) & mask
    return -1


@njit(_nrt=False, inline="always")
def _lv_home_of(levels, lv, bits):
    return _lv_home(2 * levels[lv].inst + levels[lv].side, levels[lv].price, bits)


@njit(_nrt=False)
def _lvtab_file(tab, levels, bits, ctr, lv):
    """File level ``lv`` at the first free entry from its home; raises the displacement bound."""
    mask = (1 << bits) - 1
    home = _lv_home_of(levels, lv, bits)
    i = home
    while tab[i] >= 0:
        i = (i + 1) & mask
    tab[i] = lv
    d = (i - home) & mask
    if d > ctr[C_LV_DISP]:
        ctr[C_LV_DISP] = d


@njit(_nrt=False)
def _lvtab_grow(P, new):
    """Double the entries in use and re-file every occupied level but ``new``, which the
    caller files next (False at the maximum)."""
    S = state(P)
    tab = S[S_LEVEL_TAB]
    cfg = S[S_CFG]
    ctr = S[S_CTR]
    levels = S[S_LEVELS]
    bits = cfg[G_LV_BITS] + 1
    if (1 << bits) > tab.shape[0]:
        return False
    cfg[G_LV_BITS] = bits
    tab[: 1 << bits] = -1
    ctr[C_LV_DISP] = 0
    for lv in range(ctr[C_LHW]):
        if levels[lv].inst >= 0 and lv != new:
            _lvtab_file(tab, levels, bits, ctr, lv)
    return True


@njit(_nrt=False, inline="always")
def _lvtab_insert(S, lv):
    """File new level ``lv`` (its record already holds instrument, side and price); the
    table first doubles if this level would fill more than a quarter of it."""
    size = 1 << S[S_CFG][G_LV_BITS]
    if (S[S_CTR][C_LEVELS] + 1) << 2 > size and size < S[S_LEVEL_TAB].shape[0]:
        _lvtab_grow(S[S_PTRS], lv)
    _lvtab_file(S[S_LEVEL_TAB], S[S_LEVELS], S[S_CFG][G_LV_BITS], S[S_CTR], lv)


@njit(_nrt=False)
def _lvtab_delete(tab, levels, bits, ctr, lv):
    """Remove level ``lv``; backward-shift deletion (see ``_index._delete``). Takes the
    arrays, not ``S``: a call that is not inlined pays for every array it is passed."""
    mask = (1 << bits) - 1
    i = _lv_home_of(levels, lv, bits)
    while tab[i] != lv:
        i = (i + 1) & mask
    disp = ctr[C_LV_DISP]
    j = i
    while True:
        j = (j + 1) & mask
        if ((j - i) & mask) > disp:
            break
        t = tab[j]
        if t < 0:
            break
        k = _lv_home_of(levels, t, bits)
        if ((j - k) & mask) < ((j - i) & mask):
            continue  # its home lies after the hole: it must stay
        tab[i] = t
        i = j
    tab[i] = -1


# --- the word segments --------------------------------------------------------------------


@njit(_nrt=False)
def _pool_grow(P, si):
    """Give side ``si`` room for one more word (1.5x growth; repack the pool if needed).

    Why 2 x MaxLevels + 2 words always suffice: a side grows only when full (its
    capacity n equals its words), to at most 1.5 n + 2 <= 2 n + 2. A repack leaves every
    other side with m words a capacity of at most m + max(1, m >> 1) <= 2 m. So after it
    the pool holds at most 2 W + 2 words, W being the words before this one, and a side
    never has more words than levels, nor the book more than MaxLevels.
    """
    S = state(P)
    ctr = S[S_CTR]
    sides = S[S_SIDES]
    words = S[S_WORDS]
    size = S[S_CFG][G_POOL_SIZE]
    n = sides[si].n
    src = sides[si].off
    newcap = sides[si].cap + max(2, sides[si].cap >> 1)
    if ctr[C_POOL_TOP] + newcap <= size:
        top = ctr[C_POOL_TOP]
        for j in range(n):
            words[top + j] = words[src + j]
        sides[si].off = top
        sides[si].cap = newcap
        ctr[C_POOL_TOP] = top + newcap
        return True
    ctr[C_POOL_REPACKS] += 1
    tmp_key = S[S_NARROW][0]
    tmp_bits = S[S_NARROW][1]
    for j in range(n):
        tmp_key[j] = words[src + j].key
        tmp_bits[j] = np.int64(words[src + j].bits)
    sides[si].cap = 0
    nsides = sides.shape[0]
    offs = S[S_WIDE][0]
    order = S[S_WIDE][1]
    m_used = 0
    for k in range(nsides):
        if sides[k].cap > 0:
            offs[m_used] = sides[k].off
            order[m_used] = k
            m_used += 1
    _sort_pairs(offs, order, 0, m_used)
    top = 0
    for idx in range(m_used):
        k = order[idx]
        m = sides[k].n
        if m == 0:
            sides[k].cap = 0
            sides[k].off = 0
            continue
        old = sides[k].off
        for j in range(m):
            words[top + j] = words[old + j]
        sides[k].off = top
        sides[k].cap = min(sides[k].cap, m + max(1, m >> 1))
        top += sides[k].cap
    if top + newcap > size:
        ctr[C_POOL_TOP] = top
        return False
    for j in range(n):
        words[top + j].key = tmp_key[j]
        words[top + j].bits = np.uint64(tmp_bits[j])
    sides[si].off = top
    sides[si].cap = newcap
    ctr[C_POOL_TOP] = top + newcap
    return True


@njit(_nrt=False, inline="always")
def _word_search(words, off, n, key):
    """First position in a segment whose key is >= ``key``; the best (last) word and a
    key beyond it, the common cases near the touch, need no bisection."""
    if n > 0 and words[off + n - 1].key <= key:
        return n - 1 if words[off + n - 1].key == key else n
    lo = 0
    hi = n
    while lo < hi:
        mid = (lo + hi) >> 1
        if words[off + mid].key < key:
            lo = mid + 1
        else:
            hi = mid
    return lo


@njit(_nrt=False, inline="always")
def _words_up(words, a, b):
    """words[a+1 .. b] = old [a .. b-1]. Unsigned indices drop Numba's negative-index
    fix-up, which lets LLVM turn the loop into one memmove."""
    j = np.uint64(b)
    lo = np.uint64(a)
    while j > lo:
        words[j] = words[j - _U1]
        j -= _U1


@njit(_nrt=False, inline="always")
def _words_down(words, a, b):
    """words[a .. b-1] = old [a+1 .. b] (see _words_up)."""
    j = np.uint64(a)
    hi = np.uint64(b)
    while j < hi:
        words[j] = words[j + _U1]
        j += _U1


@njit(_nrt=False, inline="always")
def _ladder_set(S, si, rank):
    """Mark ``rank`` occupied on side ``si``; False if the pool cannot take a new word.
    Only the rare growth of the segment needs the whole state."""
    if _set_bit(S[S_WORDS], S[S_SIDES], si, rank):
        return True
    if not _pool_grow(S[S_PTRS], si):
        return False
    return _set_bit(S[S_WORDS], S[S_SIDES], si, rank)


@njit(_nrt=False)
def _set_bit(words, sides, si, rank):
    """Set ``rank``'s bit, inserting its word if needed; False (nothing changed) when the
    segment is full and a new word is needed. Not inlined: it is one of the ladder's two
    larger bodies, and every place that rests an order would otherwise compile a copy."""
    key = rank >> WORD_SHIFT
    bit = _U1 << np.uint64(rank & WORD_MASK)
    off = sides[si].off
    n = sides[si].n
    pos = _word_search(words, off, n, key)
    if pos < n and words[off + pos].key == key:
        words[off + pos].bits |= bit
        return True
    if n == sides[si].cap:
        return False
    _words_up(words, off + pos, off + n)
    words[off + pos].key = key
    words[off + pos].bits = bit
    sides[si].n = n + 1
    return True


@njit(_nrt=False)
def _ladder_clear(words, sides, si, rank):
    """Mark ``rank`` free on side ``si`` (it is occupied); not inlined, as ``_set_bit``."""
    key = rank >> WORD_SHIFT
    off = sides[si].off
    n = sides[si].n
    pos = _word_search(words, off, n, key)
    left = words[off + pos].bits & ~(_U1 << np.uint64(rank & WORD_MASK))
    words[off + pos].bits = left
    if left == _U0:
        _words_down(words, off + pos, off + n - 1)
        sides[si].n = n - 1


@njit(_nrt=False)
def _ladder_best(words, sides, tab, levels, bits, disp, si):
    """The best level of side ``si`` read from its last word (-1 if the side is empty)."""
    n = sides[si].n
    if n == 0:
        return -1
    w = words[sides[si].off + n - 1]
    side = si & 1
    return _find(tab, levels, bits, disp, si >> 1, side, _rank(side, _word_rank(w.key, _msb(w.bits))))


@njit(_nrt=False, inline="always")
def _level_below(S, si, lv):
    """The next level after occupied level ``lv`` on side ``si``, best first (-1: none)."""
    return _below(S[S_WORDS], S[S_SIDES], S[S_LEVEL_TAB], S[S_LEVELS], S[S_CFG][G_LV_BITS], S[S_CTR][C_LV_DISP], si, lv)


@njit(_nrt=False)
def _below(words, sides, tab, levels, bits, disp, si, lv):
    """``_level_below`` on the arrays; not inlined (the walks that call it are rare)."""
    side = si & 1
    rank = _rank(side, levels[lv].price)
    key = rank >> WORD_SHIFT
    off = sides[si].off
    pos = _word_search(words, off, sides[si].n, key)
    below = words[off + pos].bits & ((_U1 << np.uint64(rank & WORD_MASK)) - _U1)
    if below != _U0:
        nxt = _word_rank(key, _msb(below))
    elif pos > 0:
        w = words[off + pos - 1]
        nxt = _word_rank(w.key, _msb(w.bits))
    else:
        return -1
    return _find(tab, levels, bits, disp, si >> 1, side, _rank(side, nxt))


__all__ = [
    "_best_level",
    "_ladder_best",
    "_ladder_clear",
    "_ladder_set",
    "_level_below",
    "_level_find",
    "_lvtab_delete",
    "_lvtab_insert",
    "_msb",
    "_rank",
    "_word_rank",
]
