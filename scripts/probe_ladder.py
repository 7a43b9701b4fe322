"""Ceiling probe for the engine's price-map redesign (issue #8): sorted segment vs bitmap tick ladder.

The engine keeps each instrument side's levels in a sorted segment (best last), so adding or removing
a level moves every level better than it. The alternative is a sparse bitmap tick ladder: O(1)
add/remove/find and a few most-significant-bit lookups for the best price. Before rebuilding the engine
around it, this measures the best the ladder can do: both maps, stripped to their hot path (no orders,
nothing from qfix), replay the same operations on ONE side of many instruments in one process.
``sorted``: per instrument side a fixed-capacity segment of (tick int64, level slot int32), bisection
and the engine's shift loops. ``ladder-pN``: per instrument side a summary word over top words over
pages of N ticks; a page (N int32 slots, N/64 occupancy words, a summary word over them) comes from a
shared pool on first use and goes back when it empties; best = three or four ``_msb`` calls.

Workloads (fixed seed): ``mix`` 1 instrument, ~1,000 levels trailing a mid that random-walks within
+-500 ticks: 50% add 0..50 ticks (geometric) behind the mid, 40% remove a random level, 10% best;
``deep`` 1 instrument, 20,000 levels uniform over the +-100,000-tick band, 50/50 add/remove; ``multi``
10,000 instruments x ~50 levels within +-2,000 ticks, uniformly random instruments (memory-bound),
50/40/10. Each op loop is timed inside one njit call after a warm-up, 5 repeats. Bytes: each map's own
arrays (level records are common to both and left out; ladder: + the pool pages it ever handed out).
Afterwards all maps must agree on an op-result checksum, each instrument's best and the live (tick,
slot) pairs. Run: ``.venv/bin/python scripts/probe_ladder.py [--quick] [--json FILE] [--page-bits 12,9,6]``
"""

import argparse
import json
import time

import numpy as np
from numba import njit

JIT = {"cache": False, "nogil": True}
# Hot path as the engine compiles it: without the runtime, passing arrays costs no atomic refcount
# (measured: ~90 ns/op of a ~10 ns/op ladder op), and Numba-level inlining saves the call frames.
HOT = {**JIT, "_nrt": False, "inline": "always"}
LOOP = {**JIT, "_nrt": False}
SEED = 8  # issue number; any fixed seed gives both maps the identical sequence
REPEATS = 5
WARM_OPS = 10_000  # timed-loop warm-up after compiling, so repeat 1 is not the coldest
MSB_SAMPLES = 1_000_000

BAND_TICKS = 100_000  # prices live within +-BAND_TICKS of the instrument's reference
N_TICKS = 2 * BAND_TICKS + 1
REF_TICK = BAND_TICKS  # ticks are indices 0 .. N_TICKS-1, reference in the middle
NO_LEVEL = NO_PAGE = -1
WORD_SHIFT = 6  # log2 of the 64 bits of a uint64 occupancy word
WORD_BITS = 1 << WORD_SHIFT
WORD_MASK = WORD_BITS - 1
U0, U1 = np.uint64(0), np.uint64(1)
CHECK_MUL = 1_000_003  # checksum multiplier: a prime, so results in another order change the sum
SORTED_MIN_CAP = 256  # per instrument side; a power of two that holds the workload's peak
OP_ADD, OP_REMOVE, OP_BEST = 0, 1, 2
C_LV_HW, C_LV_NFREE, C_PG_HW, C_PG_NFREE, C_PG_ALLOCS, C_CAP, C_ERR, C_HBITS, N_CTR = range(9)
# state tuples, indexed by constants so Numba types each member on its own
S_KEYS, S_LVS, S_CNT, S_LVFREE, S_CTR = range(5)
L_DIR, L_TOP, L_ISUM, L_PBITS, L_PSUM, L_PSLOT, L_PFREE, L_LVFREE, L_CTR = range(9)
W_WORDS, W_CNT, W_TAB, W_LVKEY, W_LVFREE, W_CTR = range(6)
WORD = np.dtype([("key", "<i8"), ("bits", "<u8")])  # a word's key and bits share a cache line

# --- most significant set bit of a nonzero uint64 (Numba has no public clz) ---
DEBRUIJN = 0x03F79D71B4CB0A89  # (2^(k+1) - 1) * DEBRUIJN >> 58 differs for every k in 0..63
DB_SHIFT = WORD_BITS - WORD_SHIFT
_db = np.full(WORD_BITS, -1, np.int64)
for _k in range(WORD_BITS):
    _db[(((1 << (_k + 1)) - 1) * DEBRUIJN % (1 << WORD_BITS)) >> DB_SHIFT] = _k
assert (_db >= 0).all(), "the de Bruijn constant is not a perfect hash"
DB_TABLE, U_DEBRUIJN, U_DB_SHIFT = _db, np.uint64(DEBRUIJN), np.uint64(DB_SHIFT)
SMEAR = tuple(np.uint64(1 << i) for i in range(WORD_SHIFT))  # 1, 2, 4 .. 32: copy the top bit down
HALVES = tuple(range(WORD_SHIFT - 1, 0, -1))  # bisection steps of 32, 16 .. 2 bits
HALF_MASKS = tuple(np.uint64((1 << (1 << i)) - 1) for i in HALVES)
HALF_SHIFTS = tuple(np.uint64(i) for i in HALVES)


@njit(**HOT)
def _msb_debruijn(x):
    """Smear the top bit into every lower bit, then a perfect-hash multiply names it."""
    for s in SMEAR:
        x |= x >> s
    return DB_TABLE[(x * U_DEBRUIJN) >> U_DB_SHIFT]


@njit(**HOT)
def _msb_binary(x):
    """Branch-free bisection: shift by 32, 16 .. 2 whenever the upper part is nonzero."""
    r = U0
    for i in range(len(HALF_MASKS)):
        s = np.uint64(x > HALF_MASKS[i]) << HALF_SHIFTS[i]
        x >>= s
        r |= s
    return np.int64(r | (x >> U1))


MSB = {"debruijn": _msb_debruijn, "binary": _msb_binary}
try:  # LLVM's ctlz via Numba internals: not public API, so only a measured comparison
    from numba.cpython.unsafe.numbers import leading_zeros

    @njit(**HOT)
    def _msb_lzcnt(x):
        return np.int64(WORD_MASK) - np.int64(leading_zeros(x))

    MSB["lzcnt"] = _msb_lzcnt
except ImportError:  # pragma: no cover
    pass


def _msb_loop(msb):
    @njit(**LOOP)
    def run(xs):
        acc = 0
        for x in xs:  # OR-ing acc's low bit never moves the top bit but chains the calls (latency)
            acc += msb(x | np.uint64(acc & 1))
        return acc

    return run


def bench_msb(n):
    """Best-of-REPEATS ns per dependent call, values of uniformly random bit length (as best() chains them)."""
    rng = np.random.default_rng(SEED)
    xs = (U1 << np.uint64(WORD_MASK)) >> rng.integers(0, WORD_BITS, n).astype(np.uint64)
    xs |= rng.integers(0, 1 << 62, n, dtype=np.uint64) & (xs - U1)  # random bits under the top one
    expect = sum(int(x).bit_length() - 1 for x in xs)
    out = {}
    for name, msb in MSB.items():
        run = _msb_loop(msb)
        assert run(xs) == expect, f"_msb {name} is wrong"
        out[name] = min(_timed(run, xs)[0] for _ in range(REPEATS)) / n
    return out


# --- level slots: one LIFO free stack, the same in both maps, so both hand out the same slots ---
@njit(**HOT)
def _lv_alloc(lvfree, ctr):
    n = ctr[C_LV_NFREE]
    if n > 0:
        ctr[C_LV_NFREE] = n - 1
        return np.int64(lvfree[n - 1])
    ctr[C_LV_HW] += 1
    return ctr[C_LV_HW] - 1


# --- sorted: the engine's map, ascending keys, best level last ---
@njit(**HOT)
def _search(keys, off, n, key):
    lo, hi = 0, n
    while lo < hi:
        mid = (lo + hi) >> 1
        if keys[off + mid] < key:
            lo = mid + 1
        else:
            hi = mid
    return lo


@njit(**HOT)
def _shift(keys, lvs, a, b, up):
    """up: [a+1 .. b] = old [a .. b-1]; else [a .. b-1] = old [a+1 .. b]. Unsigned indices drop
    Numba's negative-index fix-up so LLVM vectorises the copies (the engine's loops)."""
    lo, hi = np.uint64(a), np.uint64(b)
    if up:
        j = hi
        while j > lo:
            keys[j], lvs[j] = keys[j - U1], lvs[j - U1]
            j -= U1
    else:
        j = lo
        while j < hi:
            keys[j], lvs[j] = keys[j + U1], lvs[j + U1]
            j += U1


@njit(**HOT)
def sorted_find(st, inst, t):
    keys, cnt, off = st[S_KEYS], st[S_CNT], inst * st[S_CTR][C_CAP]
    pos = _search(keys, off, cnt[inst], t)
    return np.int64(st[S_LVS][off + pos]) if pos < cnt[inst] and keys[off + pos] == t else np.int64(NO_LEVEL)


@njit(**HOT)
def sorted_add(st, inst, t):
    keys, lvs, cnt, ctr = st[S_KEYS], st[S_LVS], st[S_CNT], st[S_CTR]
    off, n = inst * ctr[C_CAP], cnt[inst]
    pos = _search(keys, off, n, t)
    if pos < n and keys[off + pos] == t:
        return np.int64(lvs[off + pos])  # the level exists: the add joins it
    if n == ctr[C_CAP]:
        ctr[C_ERR] += 1
        return np.int64(NO_LEVEL)
    _shift(keys, lvs, off + pos, off + n, True)
    s = _lv_alloc(st[S_LVFREE], ctr)
    keys[off + pos], lvs[off + pos], cnt[inst] = t, s, n + 1
    return s


@njit(**HOT)
def sorted_remove(st, inst, t):
    keys, lvs, cnt, ctr = st[S_KEYS], st[S_LVS], st[S_CNT], st[S_CTR]
    off, n = inst * ctr[C_CAP], cnt[inst]
    pos = n - 1 if n > 0 and keys[off + n - 1] == t else _search(keys, off, n, t)  # the best needs no search
    if pos >= n or keys[off + pos] != t:
        return np.int64(NO_LEVEL)
    s = np.int64(lvs[off + pos])
    _shift(keys, lvs, off + pos, off + n - 1, False)
    cnt[inst] = n - 1
    st[S_LVFREE][ctr[C_LV_NFREE]] = s  # free the slot (LIFO)
    ctr[C_LV_NFREE] += 1
    return s


@njit(**HOT)
def sorted_best(st, inst):
    n = st[S_CNT][inst]
    return np.int64(st[S_KEYS][inst * st[S_CTR][C_CAP] + n - 1]) if n > 0 else np.int64(NO_LEVEL)


@njit(**LOOP)
def sorted_dump(st, out):
    """Every live (instrument, tick, slot), ordered, for the cross-check."""
    keys, lvs, cnt, cap = st[S_KEYS], st[S_LVS], st[S_CNT], st[S_CTR][C_CAP]
    k = 0
    for i in range(len(cnt)):
        for j in range(i * cap, i * cap + cnt[i]):
            out[k, 0], out[k, 1], out[k, 2] = i, keys[j], lvs[j]
            k += 1
    return k


def sorted_state(n_inst, lo, hi, peak, max_levels):
    cap = max(SORTED_MIN_CAP, 1 << int(peak - 1).bit_length())
    ctr = np.zeros(N_CTR, np.int64)
    ctr[C_CAP] = cap
    keys, lvs = np.zeros(n_inst * cap, np.int64), np.zeros(n_inst * cap, np.int32)
    return keys, lvs, np.zeros(n_inst, np.int64), np.empty(max_levels, np.int32), ctr


def sorted_reset(st):
    st[S_CNT].fill(0)
    st[S_CTR][[C_LV_HW, C_LV_NFREE, C_ERR]] = 0


SORTED = {"add": sorted_add, "remove": sorted_remove, "best": sorted_best, "find": sorted_find}
SORTED.update(state=sorted_state, reset=sorted_reset, nbytes=lambda st: sum(a.nbytes for a in st[:S_LVFREE]))


# --- ladder: summary word -> top words -> page: summary word -> occupancy words -> slots ---
def make_ladder(page_bits, msb):
    PAGE = 1 << page_bits
    PAGE_MASK = PAGE - 1
    PW = PAGE >> WORD_SHIFT  # occupancy words per page
    NPAGES = (N_TICKS + PAGE_MASK) >> page_bits
    NTOP = (NPAGES + WORD_MASK) >> WORD_SHIFT  # top words per instrument side
    # one word summarises a page's words and one the top words: 64 <= PAGE <= 4096 ticks
    assert WORD_SHIFT <= page_bits <= 2 * WORD_SHIFT and NTOP <= WORD_BITS
    PAGE_BYTES = PAGE * 4 + PW * 8 + 8 + 4  # slots, occupancy, summary, free-stack entry

    @njit(**HOT)
    def locate(st, inst, t):
        """(directory index, page or NO_PAGE, word index in the pool, bit) of tick t."""
        pi, off = t >> page_bits, t & PAGE_MASK
        d = inst * NPAGES + pi
        p = np.int64(st[L_DIR][d])
        return d, p, p * PW + (off >> WORD_SHIFT), U1 << np.uint64(off & WORD_MASK)

    @njit(**HOT)
    def find(st, inst, t):
        _, p, w, bit = locate(st, inst, t)
        if p == NO_PAGE or not (st[L_PBITS][w] & bit):
            return np.int64(NO_LEVEL)
        return np.int64(st[L_PSLOT][p * PAGE + (t & PAGE_MASK)])

    @njit(**HOT)
    def add(st, inst, t):
        dir_, pbits, ctr = st[L_DIR], st[L_PBITS], st[L_CTR]
        d, p, w, bit = locate(st, inst, t)
        pi = t >> page_bits
        if p == NO_PAGE:  # materialise: reuse a freed page, else the next never-touched one
            if ctr[C_PG_NFREE] > 0:
                ctr[C_PG_NFREE] -= 1
                p = np.int64(st[L_PFREE][ctr[C_PG_NFREE]])
            elif ctr[C_PG_HW] < len(st[L_PSUM]):
                p = ctr[C_PG_HW]
                ctr[C_PG_HW] += 1
            else:
                ctr[C_ERR] += 1
                return np.int64(NO_LEVEL)
            ctr[C_PG_ALLOCS] += 1
            st[L_PSUM][p] = U0
            pbits[p * PW : (p + 1) * PW] = U0
            dir_[d] = p
            w = p * PW + ((t & PAGE_MASK) >> WORD_SHIFT)
            st[L_TOP][inst * NTOP + (pi >> WORD_SHIFT)] |= U1 << np.uint64(pi & WORD_MASK)
            if NTOP > 1:  # a constant: LLVM drops the dead arm
                st[L_ISUM][inst] |= U1 << np.uint64(pi >> WORD_SHIFT)
        elif pbits[w] & bit:
            return np.int64(st[L_PSLOT][p * PAGE + (t & PAGE_MASK)])  # the level exists: join it
        st[L_PSUM][p] |= U1 << np.uint64(w - p * PW)
        pbits[w] |= bit
        s = _lv_alloc(st[L_LVFREE], ctr)
        st[L_PSLOT][p * PAGE + (t & PAGE_MASK)] = s
        return s

    @njit(**HOT)
    def remove(st, inst, t):
        pbits, ctr = st[L_PBITS], st[L_CTR]
        d, p, w, bit = locate(st, inst, t)
        if p == NO_PAGE or not (pbits[w] & bit):
            return np.int64(NO_LEVEL)
        pbits[w] ^= bit
        s = np.int64(st[L_PSLOT][p * PAGE + (t & PAGE_MASK)])
        st[L_LVFREE][ctr[C_LV_NFREE]] = s  # free the slot (LIFO)
        ctr[C_LV_NFREE] += 1
        if pbits[w] == U0:
            st[L_PSUM][p] &= ~(U1 << np.uint64(w - p * PW))
            if st[L_PSUM][p] == U0:  # page empty: back to the pool, and out of the top word
                st[L_DIR][d] = NO_PAGE
                st[L_PFREE][ctr[C_PG_NFREE]] = p
                ctr[C_PG_NFREE] += 1
                pi = t >> page_bits
                tw = inst * NTOP + (pi >> WORD_SHIFT)
                st[L_TOP][tw] &= ~(U1 << np.uint64(pi & WORD_MASK))
                if NTOP > 1 and st[L_TOP][tw] == U0:
                    st[L_ISUM][inst] &= ~(U1 << np.uint64(pi >> WORD_SHIFT))
        return s

    @njit(**HOT)
    def best(st, inst):
        if NTOP == 1:
            if st[L_TOP][inst] == U0:
                return np.int64(NO_LEVEL)
            pi = np.int64(msb(st[L_TOP][inst]))
        else:
            if st[L_ISUM][inst] == U0:
                return np.int64(NO_LEVEL)
            wi = np.int64(msb(st[L_ISUM][inst]))
            pi = (wi << WORD_SHIFT) | np.int64(msb(st[L_TOP][inst * NTOP + wi]))
        p = np.int64(st[L_DIR][inst * NPAGES + pi])
        w = np.int64(msb(st[L_PSUM][p])) if PW > 1 else 0
        return (pi << page_bits) | (w << WORD_SHIFT) | np.int64(msb(st[L_PBITS][p * PW + w]))

    def state(n_inst, lo, hi, peak, max_levels):
        pool = n_inst * ((hi >> page_bits) - (lo >> page_bits) + 1)  # every page the band can span
        ctr = np.zeros(N_CTR, np.int64)
        dirs = np.full(n_inst * NPAGES, NO_PAGE, np.int32)
        tops = (np.zeros(n_inst * NTOP, np.uint64), np.zeros(n_inst, np.uint64))
        # np.empty: the OS maps a pool page only when the ladder first hands it out
        pages = (np.empty(pool * PW, np.uint64), np.empty(pool, np.uint64), np.empty(pool * PAGE, np.int32))
        return (dirs, *tops, *pages, np.empty(pool, np.int32), np.empty(max_levels, np.int32), ctr)

    def reset(st):
        st[L_DIR].fill(NO_PAGE)
        st[L_TOP].fill(0)
        st[L_ISUM].fill(0)
        st[L_CTR].fill(0)

    def nbytes(st):
        return sum(st[i].nbytes for i in (L_DIR, L_TOP, L_ISUM)) + int(st[L_CTR][C_PG_HW]) * PAGE_BYTES

    return {"add": add, "remove": remove, "best": best, "find": find, "state": state, "reset": reset, "nbytes": nbytes}


# --- words: a sorted segment of 64-tick occupancy words per side + an (instrument, tick) -> slot hash ---
HASH_MUL = -7046029254386353131  # 0x9E3779B97F4A7C15 as int64 (the engine's index hash)
HASH_MUL2 = -4658895280553007687


@njit(**HOT)
def _w_key(inst, t):
    """A level's (instrument, tick) in one word, as the engine's level record holds both in one line."""
    return (inst << 32) | t


@njit(**HOT)
def _w_home(key, bits):
    return ((key * HASH_MUL) >> (64 - bits)) & ((1 << bits) - 1)


@njit(**HOT)
def _w_probe(st, inst, t):
    """Table position of (inst, t), or of the empty entry that ends its probe run."""
    tab, lvkey = st[W_TAB], st[W_LVKEY]
    bits = st[W_CTR][C_HBITS]
    mask = (1 << bits) - 1
    key = _w_key(inst, t)
    i = _w_home(key, bits)
    while True:
        s = tab[i]
        if s < 0 or lvkey[s] == key:
            return i
        i = (i + 1) & mask


@njit(**HOT)
def _w_unfile(st, i):
    """Backward-shift deletion of table entry i (the engine's index tables do the same)."""
    tab, lvkey = st[W_TAB], st[W_LVKEY]
    bits = st[W_CTR][C_HBITS]
    mask = (1 << bits) - 1
    j = i
    while True:
        j = (j + 1) & mask
        s = tab[j]
        if s < 0:
            break
        k = _w_home(lvkey[s], bits)
        if ((j - k) & mask) < ((j - i) & mask):
            continue
        tab[i] = s
        i = j
    tab[i] = -1


@njit(**HOT)
def _w_word(words, off, n, wk):
    """First position in the segment whose key is >= wk: the best (last) word needs no search."""
    if n > 0 and words[off + n - 1].key == wk:
        return n - 1
    lo, hi = 0, n
    while lo < hi:
        mid = (lo + hi) >> 1
        if words[off + mid].key < wk:
            lo = mid + 1
        else:
            hi = mid
    return lo


@njit(**HOT)
def _w_shift(words, a, b, up):
    """As _shift, over whole (key, bits) records."""
    lo, hi = np.uint64(a), np.uint64(b)
    if up:
        j = hi
        while j > lo:
            words[j] = words[j - U1]
            j -= U1
    else:
        j = lo
        while j < hi:
            words[j] = words[j + U1]
            j += U1


@njit(**HOT)
def words_find(st, inst, t):
    s = st[W_TAB][_w_probe(st, inst, t)]
    return np.int64(s) if s >= 0 else np.int64(NO_LEVEL)


@njit(**HOT)
def words_add(st, inst, t):
    words, cnt, ctr = st[W_WORDS], st[W_CNT], st[W_CTR]
    i = _w_probe(st, inst, t)
    if st[W_TAB][i] >= 0:
        return np.int64(st[W_TAB][i])  # the level exists: the add joins it
    off, n, wk = inst * ctr[C_CAP], cnt[inst], t >> WORD_SHIFT
    bit = U1 << np.uint64(t & WORD_MASK)
    pos = _w_word(words, off, n, wk)
    if pos < n and words[off + pos].key == wk:
        words[off + pos].bits |= bit
    else:
        if n == ctr[C_CAP]:
            ctr[C_ERR] += 1
            return np.int64(NO_LEVEL)
        _w_shift(words, off + pos, off + n, True)
        words[off + pos].key = wk
        words[off + pos].bits = bit
        cnt[inst] = n + 1
    s = _lv_alloc(st[W_LVFREE], ctr)
    st[W_LVKEY][s], st[W_TAB][i] = _w_key(inst, t), s
    return s


@njit(**HOT)
def words_remove(st, inst, t):
    words, cnt, ctr = st[W_WORDS], st[W_CNT], st[W_CTR]
    i = _w_probe(st, inst, t)
    s = np.int64(st[W_TAB][i])
    if s < 0:
        return np.int64(NO_LEVEL)
    _w_unfile(st, i)
    off, n, wk = inst * ctr[C_CAP], cnt[inst], t >> WORD_SHIFT
    pos = _w_word(words, off, n, wk)
    words[off + pos].bits &= ~(U1 << np.uint64(t & WORD_MASK))
    if words[off + pos].bits == U0:
        _w_shift(words, off + pos, off + n - 1, False)
        cnt[inst] = n - 1
    st[W_LVFREE][ctr[C_LV_NFREE]] = s  # free the slot (LIFO)
    ctr[C_LV_NFREE] += 1
    return s


def make_words(msb):
    @njit(**HOT)
    def best(st, inst):
        n = st[W_CNT][inst]
        if n == 0:
            return np.int64(NO_LEVEL)
        w = st[W_WORDS][inst * st[W_CTR][C_CAP] + n - 1]
        return (w.key << WORD_SHIFT) | np.int64(msb(w.bits))

    def state(n_inst, lo, hi, peak, max_levels):
        cap = max(SORTED_MIN_CAP, 1 << int(peak - 1).bit_length())
        ctr = np.zeros(N_CTR, np.int64)
        ctr[C_CAP] = cap
        ctr[C_HBITS] = int(2 * max_levels - 1).bit_length()  # at most half full
        segs = np.zeros(n_inst * cap, WORD), np.zeros(n_inst, np.int64)
        tab = np.full(1 << int(ctr[C_HBITS]), -1, np.int32)
        return *segs, tab, np.zeros(max_levels, np.int64), np.empty(max_levels, np.int32), ctr

    def reset(st):
        st[W_CNT].fill(0)
        st[W_TAB].fill(-1)
        st[W_CTR][[C_LV_HW, C_LV_NFREE, C_ERR]] = 0

    def nbytes(st):  # segments and table; the per-slot key stands in for the level record
        return sum(st[i].nbytes for i in (W_WORDS, W_CNT, W_TAB))

    return {"add": words_add, "remove": words_remove, "best": best, "find": words_find,
            "state": state, "reset": reset, "nbytes": nbytes}  # fmt: skip


def make_replay(m):
    add, remove, best, find = m["add"], m["remove"], m["best"], m["find"]

    @njit(**LOOP)
    def replay(st, kind, inst, tick, a, b):
        acc = 0
        for i in range(a, b):
            k, j, t = kind[i], np.int64(inst[i]), np.int64(tick[i])
            if k == OP_ADD:
                r = add(st, j, t)
            elif k == OP_REMOVE:
                r = remove(st, j, t)
            else:
                r = best(st, j)
            acc = acc * CHECK_MUL + r
        return acc

    @njit(**JIT)
    def check(st, n_inst, pairs):
        """Every instrument's best, and how many of the reference's live (tick, slot) are missing."""
        bests = np.empty(n_inst, np.int64)
        for i in range(n_inst):
            bests[i] = best(st, i)
        bad = 0
        for k in range(len(pairs)):
            bad += find(st, pairs[k, 0], pairs[k, 1]) != pairs[k, 2]
        return bests, bad

    return replay, check


MIX_MID_RANGE = 500  # the mid walks within +-500 ticks of the reference; the levels trail it
MIX_STEP_P = 0.1  # chance per op that the mid moves one tick
MIX_GEO_P = 0.15  # distance behind the mid ~ geometric (mean ~6 ticks), capped at MIX_MAX_DIST
MIX_MAX_DIST = 50
MIX_DEPTH = 4_000  # room behind the lowest mid for ~1,000 levels with gaps


# --- workloads: the generator keeps its own live sets, so every remove names a live level ---
@njit(**JIT)
def gen_ops(n_inst, n_ops, lo, hi, target, near, p_add, p_remove):
    """``target`` prefill adds per instrument, then ``n_ops`` ops. An add below ``target`` makes a new
    level (near: the first free tick at or behind mid - geometric distance; else a uniform free tick);
    at ``target`` it lands at that distance anyway (near) or joins a random live level (uniform)."""
    np.random.seed(SEED)
    span, cap, n_pre, n_all = hi - lo + 1, 2 * target, n_inst * target, n_inst * target + n_ops
    live, lst, nlive = np.zeros(n_inst * span, np.uint8), np.empty(n_inst * cap, np.int32), np.zeros(n_inst, np.int64)
    kind, inst, tick = np.empty(n_all, np.int8), np.empty(n_all, np.int32), np.zeros(n_all, np.int32)
    mid, peak = REF_TICK, 0
    for i in range(n_all):
        j, u = (i // target, 0.0) if i < n_pre else (np.random.randint(0, n_inst), np.random.random())
        if near and i >= n_pre and np.random.random() < MIX_STEP_P:  # random walk of the mid
            mid += 1 if np.random.random() < 0.5 and mid < REF_TICK + MIX_MID_RANGE else -1
            mid = max(mid, REF_TICK - MIX_MID_RANGE)
        n, base = nlive[j], j * span - lo
        if u < p_add and n < cap:
            if near:
                t = f = max(min(mid - min(np.random.geometric(MIX_GEO_P) - 1, MIX_MAX_DIST), hi), lo)
                while n < target and f >= lo and live[base + f]:
                    f -= 1  # slide behind the drawn tick to the first gap
                t = f if f >= lo else t
            elif n < target:
                t = np.random.randint(lo, hi + 1)
                while live[base + t]:
                    t = np.random.randint(lo, hi + 1)
            else:
                t = lst[j * cap + np.random.randint(0, n)]
            if not live[base + t]:
                live[base + t], lst[j * cap + n], nlive[j] = 1, t, n + 1
                peak = max(peak, n + 1)
            kind[i], inst[i], tick[i] = OP_ADD, j, t
        elif u < p_add + p_remove and n > 0:
            k = j * cap + np.random.randint(0, n)
            t = lst[k]
            lst[k], live[base + t], nlive[j] = lst[j * cap + n - 1], 0, n - 1
            kind[i], inst[i], tick[i] = OP_REMOVE, j, t
        else:
            kind[i], inst[i] = OP_BEST, j
    return (kind, inst, tick), n_pre, peak, nlive.sum()


WORKLOADS = {  # n_inst, n_ops, lowest tick, highest tick, target live levels per instrument, near, p_add, p_remove
    "mix": (1, 2_000_000, REF_TICK - MIX_MID_RANGE - MIX_DEPTH, REF_TICK + MIX_MID_RANGE, 1_000, True, 0.5, 0.4),
    "deep": (1, 1_000_000, 0, N_TICKS - 1, 20_000, False, 0.5, 0.5),
    "multi": (10_000, 2_000_000, REF_TICK - 2_000, REF_TICK + 2_000, 50, False, 0.5, 0.4),
}


def _timed(fn, *args):
    t0 = time.perf_counter_ns()
    r = fn(*args)
    return time.perf_counter_ns() - t0, r


def bench(m, fns, st, n_inst, ops, n_pre, ref_pairs):
    """Median/min/max ns per op over REPEATS, the checksum, bests and missing pairs at the end."""
    replay, check = fns
    n = len(ops[0])
    replay(st, *ops, 0, n_pre)  # compile, prefill
    replay(st, *ops, n_pre, min(n, n_pre + WARM_OPS))
    ns = []
    for _ in range(REPEATS):
        m["reset"](st)
        replay(st, *ops, 0, n_pre)
        dt, chk = _timed(replay, st, *ops, n_pre, n)
        ns.append(dt / (n - n_pre))
    return np.array(ns), chk, *check(st, n_inst, ref_pairs)


ROW = "{:8} {:13} {:>7} {:>7} {:>7} {:>12} {:>8} {:>8} {:>18}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="1/10 of the ops")
    ap.add_argument("--json", metavar="FILE", help="also write the results here")
    ap.add_argument("--page-bits", default="12,9,6", help="ladder page sizes, log2 ticks, 6..12 (default 12,9,6)")
    ap.add_argument("--msb", default="debruijn", choices=sorted(MSB), help="the ladder's _msb (default debruijn)")
    a = ap.parse_args()
    scale = 10 if a.quick else 1
    msb_ns = bench_msb(MSB_SAMPLES // scale)
    print("msb ns/call (dependent, best of 5): " + ", ".join(f"{k} {v:.2f}" for k, v in msb_ns.items()))
    maps = {"sorted": SORTED}
    for b in a.page_bits.split(","):
        maps[f"ladder-p{1 << int(b)}"] = make_ladder(int(b), MSB[a.msb])
    maps["words"] = make_words(MSB[a.msb])
    fns = {name: make_replay(m) for name, m in maps.items()}
    rows, failures = [], []
    print(ROW.format("workload", "map", "median", "min", "max", "bytes", "B/level", "x sorted", "pages peak/allocs"))
    for wl, (n_inst, n_ops, lo, hi, target, *mode) in WORKLOADS.items():
        ops, n_pre, peak, live = gen_ops(n_inst, n_ops // scale, lo, hi, target, *mode)
        ref = None  # sorted runs first and is the reference
        for name, m in maps.items():
            st = m["state"](n_inst, lo, hi, peak, n_inst * 2 * target)
            pairs = np.zeros((0, 3), np.int64) if ref is None else ref[3]
            ns, chk, bests, bad = bench(m, fns[name], st, n_inst, ops, n_pre, pairs)
            if ref is None:
                pairs = np.empty((live, 3), np.int64)
                ref = (np.median(ns), chk, bests, pairs[: sorted_dump(st, pairs)])
            ctr, mem, med = st[-1], m["nbytes"](st), float(np.median(ns))
            got, same = int(ctr[C_LV_HW] - ctr[C_LV_NFREE]), chk == ref[1] and np.array_equal(bests, ref[2])
            if ctr[C_ERR] or got != live or not same or bad:
                agree = "agree" if same else "DIFFER"
                failures.append(f"{wl}/{name}: {ctr[C_ERR]} pool errors, live {got}/{live}, checksum+bests {agree}, "
                                f"{bad} of sorted's (tick, slot) missing")  # fmt: skip
            r = dict(workload=wl, map=name, ns_op_median=med, ns_op_min=ns.min(), ns_op_max=ns.max(), bytes=mem,
                     live_levels=int(live), bytes_per_level=mem / max(int(live), 1), ratio_vs_sorted=med / ref[0],
                     pages_peak=int(ctr[C_PG_HW]), page_allocs=int(ctr[C_PG_ALLOCS]))  # fmt: skip
            rows.append({k: float(v) if isinstance(v, np.floating) else v for k, v in r.items()})
            print(ROW.format(wl, name, *(f"{r[k]:.1f}" for k in ("ns_op_median", "ns_op_min", "ns_op_max")), f"{mem:,}",
                             f"{r['bytes_per_level']:.1f}", f"{r['ratio_vs_sorted']:.3f}",
                             f"{r['pages_peak']}/{r['page_allocs']}"))  # fmt: skip
    print("ns/op; bytes = the map's arrays (ladder: + pool pages ever used); x sorted = ratio of medians")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(dict(quick=a.quick, msb=a.msb, msb_ns=msb_ns, rows=rows, failures=failures), f, indent=1)
    for msg in failures:
        print("CROSS-CHECK FAILED:", msg)
    if failures:
        raise SystemExit(1)
    print("cross-check ok: same checksum, best per instrument and live (tick, slot) set in every map")


if __name__ == "__main__":
    main()
