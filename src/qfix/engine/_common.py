"""Helpers every kernel module shares: the ``njit`` alias, statuses, time and lookup helpers,
and an allocation-free sort.

Theory of operation: every kernel is compiled with ``_nrt=False``. No kernel allocates
(scratch arrays come from the host through ``S``, sorting is the in-place insertion/heap
sort below), so Numba's per-call atomic reference counting of every array argument, which
once dominated the run time because ``S`` holds two dozen arrays, is switched off. Small
and medium helpers are ``inline="always"`` (a call passes every array descriptor of its
arguments); the per-message handlers stay calls, taking the state as one table of
addresses (``_state``), to keep cold compiles short.

Times are u64 nanoseconds (RecvTime) held as int64 bit patterns, so comparisons and day
arithmetic go through unsigned casts here rather than at every use.
"""

# Kernel signatures are inferred by Numba from the state dtypes; annotating them would be
# decorative, so the kernel modules relax mypy's untyped-def rules.
# mypy: allow-untyped-defs, allow-incomplete-defs, allow-untyped-calls

from __future__ import annotations

from typing import Any, Final

import numba
import numpy as np

from qfix.wire.codes import (
    NULL_PRICE,
    ORD_STATUS_NEW,
    ORD_STATUS_PARTIALLY_FILLED,
    ORD_TYPE_MARKET,
)

#: ``_nrt=False``: the kernels never allocate, so Numba's reference counting (an atomic
#: increment and decrement per array argument on every non-inlined call) is switched off.
njit: Any = numba.njit

NS_PER_DAY: Final = 86_400_000_000_000
STATUS_OK: Final = 0
STATUS_FULL: Final = 1
STATUS_BAD: Final = 2  #: a header or SessionID the host must refuse (nothing changed)
#: ENGINE.md §2.4: the records any inbound record or command may write besides the
#: per-order terms of its bound U
U_BASE: Final = 16


@njit(_nrt=False, inline="always")
def _views(b):
    """(int64, uint32, uint16, uint8) views of a byte buffer; little-endian host assumed."""
    return b.view(np.int64), b.view(np.uint32), b.view(np.uint16), b


@njit(_nrt=False, inline="always")
def _later(a, b):
    """max(a, b) of two u64 nanosecond times held as int64 bit patterns (WIRE.md §6.1:
    RecvTime is u64, so times at or above 2^63 are negative here and compare unsigned)."""
    if np.uint64(a) >= np.uint64(b):
        return a
    return b


@njit(_nrt=False, inline="always")
def _day_of(t):
    """day(t) = t // 86400e9 of a u64 time held as an int64 bit pattern (ENGINE.md §2.1 rule 3)."""
    return np.int64(np.uint64(t) // np.uint64(NS_PER_DAY))


#: the instrument table (``S[S_INST_TAB]``): open addressing, linear probing, entries
#: ``SecurityID << INST_KEY_SHIFT | instrument index`` so a probe reads no other line;
#: -1 empty (no SecurityID is 2^32 - 1 with an index of 2^32 - 1). Built once by the
#: host (:func:`instrument_table`); a sorted array's bisection cost a dependent load per
#: level, 14 of them for 10,000 instruments, on every message.
INST_KEY_SHIFT: Final = 32
INST_INDEX_MASK: Final = (1 << INST_KEY_SHIFT) - 1
INST_HASH_MUL: Final = -7046029254386353131  #: 0x9E3779B97F4A7C15 as int64


@njit(_nrt=False, inline="always")
def _inst_home(sid, mask):
    return ((sid * INST_HASH_MUL) >> INST_KEY_SHIFT) & mask


@njit(_nrt=False, inline="always")
def _find_inst(inst_tab, sid):
    """Index of SecurityID ``sid`` (0 .. 2^32 - 1) in the instrument table, or -1."""
    mask = inst_tab.shape[0] - 1
    i = _inst_home(sid, mask)
    while True:
        e = inst_tab[i]
        if e == -1:
            return np.int64(-1)
        if (e >> INST_KEY_SHIFT) & INST_INDEX_MASK == sid:
            return e & INST_INDEX_MASK
        i = (i + 1) & mask


def instrument_table(sec_ids: Any) -> Any:
    """The instrument table of the ascending SecurityIDs ``sec_ids`` (index = position):
    a power of two at least four times their count, so probe runs stay short."""
    size = 16
    while size < 4 * len(sec_ids):
        size *= 2
    tab = np.full(size, -1, np.int64)
    mask = size - 1
    for index, sid in enumerate(int(x) for x in sec_ids):
        # the kernel's own hash in Python ints: the bits it keeps (32 .. 32 + log2 size)
        # are the same as of the wrapped int64 product
        i = _inst_home.py_func(sid, mask)
        while tab[i] != -1:
            i = (i + 1) & mask
        tab[i] = np.int64(((sid << INST_KEY_SHIFT) | index) - ((1 << 64) if sid >= 1 << 31 else 0))
    return tab


@njit(_nrt=False, inline="always")
def _stp_group(map_acc, map_grp, account):
    """STP group of ``account`` (ENGINE.md §1.2): mapped, else the account itself."""
    n = map_acc.shape[0]
    if n == 0:
        return account
    lo = 0
    hi = n
    while lo < hi:
        mid = (lo + hi) >> 1
        if map_acc[mid] < account:
            lo = mid + 1
        else:
            hi = mid
    if lo < n and map_acc[lo] == account:
        return map_grp[lo]
    return account


@njit(_nrt=False, inline="always")
def _status_of(orders, s):
    """OrdStatus of a live order: New until it has a fill."""
    if orders[s].cum > 0:
        return ORD_STATUS_PARTIALLY_FILLED
    return ORD_STATUS_NEW


@njit(_nrt=False, inline="always")
def _order_px9(orders, insts, s):
    """The order's price on the wire (PRICE9), null for market orders."""
    if orders[s].ord_type == ORD_TYPE_MARKET:
        return NULL_PRICE
    return orders[s].price * insts[orders[s].inst].tick


@njit(_nrt=False)
def _sift(keys, vals, root, end):
    while True:
        child = 2 * root + 1
        if child > end:
            return
        if child + 1 <= end and keys[child] < keys[child + 1]:
            child += 1
        if keys[root] >= keys[child]:
            return
        k = keys[root]
        keys[root] = keys[child]
        keys[child] = k
        v = vals[root]
        vals[root] = vals[child]
        vals[child] = v
        root = child


@njit(_nrt=False)
def _sort_pairs(keys, vals, lo, hi):
    """Sort keys[lo:hi] ascending, permuting vals alike (distinct keys; no allocation)."""
    n = hi - lo
    if n < 2:
        return
    if n <= 16:
        for a in range(lo + 1, hi):
            kv = keys[a]
            vv = vals[a]
            b = a - 1
            while b >= lo and keys[b] > kv:
                keys[b + 1] = keys[b]
                vals[b + 1] = vals[b]
                b -= 1
            keys[b + 1] = kv
            vals[b + 1] = vv
        return
    ks = keys[lo:hi]
    vs = vals[lo:hi]
    for start in range((n - 2) // 2, -1, -1):
        _sift(ks, vs, start, n - 1)
    for end in range(n - 1, 0, -1):
        k = ks[0]
        ks[0] = ks[end]
        ks[end] = k
        v = vs[0]
        vs[0] = vs[end]
        vs[end] = v
        _sift(ks, vs, 0, end - 1)
