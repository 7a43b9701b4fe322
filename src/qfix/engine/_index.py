"""The order indices: OrderID -> slot, (SessionID, ClOrdID) -> slot, and Account -> the
first slot of that account's order list.

The three tables and the session list heads live in one int32 array of the state,
``S[S_INDEX]`` (see the accessors below): the index entry points below take that one
array, not five.

Theory of operation: open addressing with linear probing over tables of int32 slot
numbers only; keys are read back from the order record, so an entry costs 4 bytes and the
record stays the one source of truth. Deletion shifts later entries of the probe run back
instead of leaving tombstones, so lookups never slow down as orders come and go.

The host allocates each table for MaxOrders (a power of two at least twice it) but the
kernels use only its first ``2^bits`` entries, ``bits`` growing with the resting orders
(:func:`_index_grow` keeps them at most a quarter full). A book of a thousand orders thus probes a
table of a few kilobytes that stays in cache, not one spread over tens of megabytes.

All three tables use a multiplicative hash that takes the top ``bits`` of the product.
Indexing the OrderID table by the OrderID itself (they are dense counters) was tried and
measured faster on the mix workload, but it packs orders entered together into runs of
occupied slots, and once OrderIDs wrap around the table, new ones land inside the runs
left by old orders that are still live and walk to their ends: the full 5-million-message
multi workload ran slower than before (docs/benchmarks.md). Clients choose ClOrdIDs and accounts, so
those tables must not let anyone lay out long runs on purpose either.

Linear probing still makes runs, so each table keeps an upper bound on how far any entry
sits from its home (``C_OID_DISP``, ``C_CL_DISP``, ``C_ACC_DISP``: raised by inserts,
reset when the table is rebuilt): a lookup probes at most that many slots past the home,
and a deletion stops looking for entries to shift back once that many slots in a row
could not move.
"""

# Kernel signatures are inferred by Numba from the state dtypes; annotating them would be
# decorative, so the kernel modules relax mypy's untyped-def rules.
# mypy: allow-untyped-defs, allow-incomplete-defs, allow-untyped-calls

from __future__ import annotations

from typing import Final

import numpy as np

from qfix.engine._cacheline import _prefetch
from qfix.engine._common import njit
from qfix.engine._state import state
from qfix.engine.types import (
    C_ACC_DISP,
    C_CL_DISP,
    C_OHW,
    C_OID_DISP,
    C_RESTING,
    G_CL_BITS,
    G_INDEX_BITS_MAX,
    G_MAX_SESSIONS,
    G_OID_BITS,
    S_CFG,
    S_CTR,
    S_INDEX,
    S_ORDERS,
    S_SCRATCH,
    S_WIDE,
)

#: slots per word of the bitmap that sorts the slots of a doubling (``_index_grow``)
MARK_SHIFT: Final = 6
MARK_BITS: Final = 1 << MARK_SHIFT
#: how many slots ahead a doubling asks for the table lines it will write
GROW_AHEAD: Final = 16


@njit(_nrt=False, inline="always")
def _oid_tab(ix, cfg):
    """The OrderID table: the first of the three tables in ``ix = S[S_INDEX]``, each
    ``2^G_INDEX_BITS_MAX`` entries (of which the first ``2^bits`` are in use). The
    accessors take the two arrays, not ``S``: every inlined ``S`` parameter is one more
    copy of the whole tuple for the compiler to take apart."""
    return ix[: 1 << cfg[G_INDEX_BITS_MAX]]


@njit(_nrt=False, inline="always")
def _cl_tab(ix, cfg):
    """The (SessionID, ClOrdID) table."""
    t = 1 << cfg[G_INDEX_BITS_MAX]
    return ix[t : 2 * t]


@njit(_nrt=False, inline="always")
def _acc_tab(ix, cfg):
    """The Account table (heads of the account order lists)."""
    t = 1 << cfg[G_INDEX_BITS_MAX]
    return ix[2 * t : 3 * t]


@njit(_nrt=False, inline="always")
def _ses_heads(ix, cfg):
    """Head slot of each SessionID's order list (-1 none), after the three tables."""
    t = 1 << cfg[G_INDEX_BITS_MAX]
    return ix[3 * t : 3 * t + cfg[G_MAX_SESSIONS]]


HASH_MUL: Final = -7046029254386353131  #: 0x9E3779B97F4A7C15 as int64
HASH_MUL2: Final = -4658895280553007687  #: 0xBF58476D1CE4E5B9 as int64


@njit(_nrt=False, inline="always")
def _oid_home(oid, bits):
    h = oid * HASH_MUL
    return (h >> (64 - bits)) & ((1 << bits) - 1)


@njit(_nrt=False, inline="always")
def _cl_home(session, clordid, bits):
    h = (np.int64(clordid) ^ (np.int64(session) * HASH_MUL2)) * HASH_MUL
    return (h >> (64 - bits)) & ((1 << bits) - 1)


@njit(_nrt=False, inline="always")
def _acc_home(account, bits):
    h = (np.int64(account) + 1) * HASH_MUL
    return (h >> (64 - bits)) & ((1 << bits) - 1)


#: which table ``_insert``/``_delete`` work on (the key is read from the order record)
KEY_ORDER_ID: Final = 0
KEY_CLORDID: Final = 1
KEY_ACCOUNT: Final = 2


@njit(_nrt=False, inline="always")
def _home_of(orders, s, key, bits):
    """Home slot of order slot ``s`` in the table of ``key`` (``KEY_*``)."""
    if key == KEY_ORDER_ID:
        return _oid_home(orders[s].order_id, bits)
    if key == KEY_CLORDID:
        return _cl_home(orders[s].session, orders[s].clordid, bits)
    return _acc_home(orders[s].account, bits)


@njit(_nrt=False, inline="always")
def _oid_find(tab, orders, bits, disp, oid):
    """Slot of live OrderID ``oid`` or -1 (probes at most ``disp`` slots past its home)."""
    mask = (1 << bits) - 1
    i = _oid_home(oid, bits)
    for _ in range(disp + 1):
        s = tab[i]
        if s < 0:
            return -1
        if orders[s].order_id == oid:
            return s
        i = (i + 1) & mask
    return -1


@njit(_nrt=False, inline="always")
def _cl_find(tab, orders, bits, disp, session, clordid):
    """Slot of the live order (``session``, ``clordid``) or -1."""
    mask = (1 << bits) - 1
    i = _cl_home(session, clordid, bits)
    for _ in range(disp + 1):
        s = tab[i]
        if s < 0:
            return -1
        if orders[s].clordid == clordid and orders[s].session == session:
            return s
        i = (i + 1) & mask
    return -1


@njit(_nrt=False, inline="always")
def _acc_find(tab, orders, bits, disp, account):
    """Head slot of ``account``'s order list, or -1."""
    mask = (1 << bits) - 1
    i = _acc_home(account, bits)
    for _ in range(disp + 1):
        s = tab[i]
        if s < 0:
            return -1
        if np.int64(orders[s].account) == account:
            return s
        i = (i + 1) & mask
    return -1


@njit(_nrt=False, inline="always")
def _acc_set_head(tab, orders, bits, old, new):
    """Put slot ``new`` (same Account) where the table holds head ``old``: same key, same probe run."""
    mask = (1 << bits) - 1
    i = _acc_home(orders[old].account, bits)
    while tab[i] != old:
        i = (i + 1) & mask
    tab[i] = new


@njit(_nrt=False)
def _insert(tab, orders, bits, ctr, disp_at, key, s):
    """File slot ``s`` at the first free slot from its home; raises the displacement bound."""
    mask = (1 << bits) - 1
    home = _home_of(orders, s, key, bits)
    i = home
    while tab[i] >= 0:
        i = (i + 1) & mask
    tab[i] = s
    d = (i - home) & mask
    if d > ctr[disp_at]:
        ctr[disp_at] = d


@njit(_nrt=False)
def _delete(tab, orders, bits, ctr, disp_at, key, s):
    """Remove slot ``s``; backward-shift deletion, so no tombstones are left behind.

    An entry at distance ``j - i`` past the hole can move into it only if it sits at
    least that far from its home, so the scan ends after ``disp`` slots that could not move.
    """
    mask = (1 << bits) - 1
    i = _home_of(orders, s, key, bits)
    while tab[i] != s:
        i = (i + 1) & mask
    disp = ctr[disp_at]
    j = i
    while True:
        j = (j + 1) & mask
        if ((j - i) & mask) > disp:
            break
        t = tab[j]
        if t < 0:
            break
        k = _home_of(orders, t, key, bits)
        if ((j - k) & mask) < ((j - i) & mask):
            continue  # its home lies after the hole: it must stay
        tab[i] = t
        i = j
    tab[i] = -1


@njit(_nrt=False, inline="always")
def _oid_insert(tab, orders, bits, ctr, s):
    _insert(tab, orders, bits, ctr, C_OID_DISP, KEY_ORDER_ID, s)


@njit(_nrt=False, inline="always")
def _oid_delete(tab, orders, bits, ctr, s):
    """Remove slot ``s`` (keyed by its current order_id)."""
    _delete(tab, orders, bits, ctr, C_OID_DISP, KEY_ORDER_ID, s)


@njit(_nrt=False, inline="always")
def _cl_insert(tab, orders, bits, ctr, s):
    _insert(tab, orders, bits, ctr, C_CL_DISP, KEY_CLORDID, s)


@njit(_nrt=False, inline="always")
def _cl_delete(tab, orders, bits, ctr, s):
    """Remove slot ``s`` (keyed by its current session and clordid)."""
    _delete(tab, orders, bits, ctr, C_CL_DISP, KEY_CLORDID, s)


@njit(_nrt=False, inline="always")
def _acc_insert(tab, orders, bits, ctr, s):
    """File slot ``s`` as the head of its Account's list (the account has no list yet)."""
    _insert(tab, orders, bits, ctr, C_ACC_DISP, KEY_ACCOUNT, s)


@njit(_nrt=False, inline="always")
def _acc_delete(tab, orders, bits, ctr, s):
    """Remove head ``s`` (its Account's list is now empty)."""
    _delete(tab, orders, bits, ctr, C_ACC_DISP, KEY_ACCOUNT, s)


@njit(_nrt=False)
def _slots_in_order(tab, size, hw, marks, out):
    """The slots filed in ``tab[:size]`` (all below ``hw``), ascending, into ``out``;
    returns how many. Sorted through a bitmap in ``marks`` (int64, at least
    ``ceil(hw / 64)`` words), so the cost is the table plus ``hw / 64`` words."""
    words = (hw + MARK_BITS - 1) >> MARK_SHIFT
    for w in range(words):
        marks[w] = 0
    for i in range(size):
        s = np.int64(tab[i])
        if s >= 0:
            marks[s >> MARK_SHIFT] |= np.int64(1) << (s & (MARK_BITS - 1))
    n = 0
    for w in range(words):
        m = marks[w]
        b = 0
        while m != 0:
            if m & 1:
                out[n] = (w << MARK_SHIFT) + b
                n += 1
            # a logical shift, so that bit 63 set does not keep the word negative
            m = np.int64(np.uint64(m) >> np.uint64(1))
            b += 1
    return n


@njit(_nrt=False)
def _index_grow(tab_oid, tab_cl, tab_acc, orders, cfg, ctr, spill, marks):
    """Double the three tables in place (their first ``2^bits`` entries become
    ``2^(bits + 1)``), re-inserting every entry; ``spill`` (int32, at least MaxOrders)
    holds the slots meanwhile, and list heads (``acc_prev`` -1) are re-filed in the
    Account table. Returns False at the host's maximum size.

    The slots are re-inserted in ascending order, sorted through a bitmap in ``marks``
    (int64, at least MaxOrders / 64 words): their records are then read one after
    another instead of in hash order, where each read was a cache miss."""
    bits = cfg[G_OID_BITS]
    if bits >= cfg[G_INDEX_BITS_MAX]:
        return False
    n = _slots_in_order(tab_oid, 1 << bits, ctr[C_OHW], marks, spill)
    for i in range(1 << (bits + 1)):
        tab_oid[i] = -1
        tab_cl[i] = -1
        tab_acc[i] = -1
    cfg[G_OID_BITS] = bits + 1
    cfg[G_CL_BITS] = bits + 1
    ctr[C_OID_DISP] = 0
    ctr[C_CL_DISP] = 0
    ctr[C_ACC_DISP] = 0
    for k in range(n):
        if k + GROW_AHEAD < n:
            # the new homes of a slot further on: its record is read in order anyway, and
            # the three table lines it will go to are random, so ask for them early
            a = spill[k + GROW_AHEAD]
            _prefetch(tab_oid, _oid_home(orders[a].order_id, bits + 1), 0)
            _prefetch(tab_cl, _cl_home(orders[a].session, orders[a].clordid, bits + 1), 0)
            if orders[a].acc_prev < 0:
                _prefetch(tab_acc, _acc_home(orders[a].account, bits + 1), 0)
        _oid_insert(tab_oid, orders, bits + 1, ctr, spill[k])
        _cl_insert(tab_cl, orders, bits + 1, ctr, spill[k])
        if orders[spill[k]].acc_prev < 0:
            _acc_insert(tab_acc, orders, bits + 1, ctr, spill[k])
    return True


@njit(_nrt=False, inline="always")
def _lists_link(orders, heads, acc_tab, cfg, ctr, s):
    """Put resting slot ``s`` into its session's and its account's order lists.

    A new order goes first in its session's list, and second in its account's (right
    after the head), so the Account table entry changes only when the list is created.
    """
    sess = orders[s].session
    h = heads[sess]
    orders[s].ses_prev = -1
    orders[s].ses_next = h
    if h >= 0:
        orders[h].ses_prev = s
    heads[sess] = s
    bits = cfg[G_CL_BITS]
    h = _acc_find(acc_tab, orders, bits, ctr[C_ACC_DISP], np.int64(orders[s].account))
    if h < 0:
        orders[s].acc_prev = -1
        orders[s].acc_next = -1
        _acc_insert(acc_tab, orders, bits, ctr, s)
    else:
        nxt = orders[h].acc_next
        orders[s].acc_prev = h
        orders[s].acc_next = nxt
        orders[h].acc_next = s
        if nxt >= 0:
            orders[nxt].acc_prev = s


@njit(_nrt=False, inline="always")
def _lists_unlink(orders, heads, acc_tab, cfg, ctr, s):
    """Take resting slot ``s`` out of its session's and its account's order lists."""
    p = orders[s].ses_prev
    n = orders[s].ses_next
    if p >= 0:
        orders[p].ses_next = n
    else:
        heads[orders[s].session] = n
    if n >= 0:
        orders[n].ses_prev = p
    p = orders[s].acc_prev
    n = orders[s].acc_next
    if p >= 0:
        orders[p].acc_next = n
        if n >= 0:
            orders[n].acc_prev = p
    elif n >= 0:
        orders[n].acc_prev = -1
        _acc_set_head(acc_tab, orders, cfg[G_CL_BITS], s, n)
    else:
        _acc_delete(acc_tab, orders, cfg[G_CL_BITS], ctr, s)


# --- entry points: calls taking only the state's address table, never inlined ----------
# Every variable a kernel inlines lives in the frame of the handler it is inlined into, and
# that frame is set up on every call whatever path the record then takes: inlining the
# index work into the handlers made even a reject 2.5x slower. So the handlers call these,
# passing the address table (``_state``) and the key.


@njit(_nrt=False)
def _index_add(P, s):
    """File new resting slot ``s``: OrderID and ClOrdID tables, session and account lists;
    the tables first grow if they would be more than a quarter full."""
    S = state(P)
    ix, orders, cfg, ctr = S[S_INDEX], S[S_ORDERS], S[S_CFG], S[S_CTR]
    if 4 * (ctr[C_RESTING] + 1) > (1 << cfg[G_OID_BITS]):
        _index_grow(
            _oid_tab(ix, cfg), _cl_tab(ix, cfg), _acc_tab(ix, cfg), orders, cfg, ctr, S[S_SCRATCH], S[S_WIDE][0]
        )
    _oid_insert(_oid_tab(ix, cfg), orders, cfg[G_OID_BITS], ctr, s)
    _cl_insert(_cl_tab(ix, cfg), orders, cfg[G_CL_BITS], ctr, s)
    _lists_link(orders, _ses_heads(ix, cfg), _acc_tab(ix, cfg), cfg, ctr, s)


@njit(_nrt=False)
def _index_remove(P, s):
    """Take resting slot ``s`` out of every index (its key fields still set)."""
    S = state(P)
    ix, orders, cfg, ctr = S[S_INDEX], S[S_ORDERS], S[S_CFG], S[S_CTR]
    _lists_unlink(orders, _ses_heads(ix, cfg), _acc_tab(ix, cfg), cfg, ctr, s)
    _oid_delete(_oid_tab(ix, cfg), orders, cfg[G_OID_BITS], ctr, s)
    _cl_delete(_cl_tab(ix, cfg), orders, cfg[G_CL_BITS], ctr, s)


@njit(_nrt=False)
def _index_set_clordid(P, s, clordid):
    """Re-key resting slot ``s`` under a new ClOrdID (a replace)."""
    S = state(P)
    ix, orders, cfg, ctr = S[S_INDEX], S[S_ORDERS], S[S_CFG], S[S_CTR]
    _cl_delete(_cl_tab(ix, cfg), orders, cfg[G_CL_BITS], ctr, s)
    orders[s].clordid = clordid
    _cl_insert(_cl_tab(ix, cfg), orders, cfg[G_CL_BITS], ctr, s)


@njit(_nrt=False)
def _index_set_order_id(P, s, oid):
    """Re-key resting slot ``s`` under a new OrderID (a replace that loses priority)."""
    S = state(P)
    ix, orders, cfg, ctr = S[S_INDEX], S[S_ORDERS], S[S_CFG], S[S_CTR]
    _oid_delete(_oid_tab(ix, cfg), orders, cfg[G_OID_BITS], ctr, s)
    orders[s].order_id = oid
    _oid_insert(_oid_tab(ix, cfg), orders, cfg[G_OID_BITS], ctr, s)


@njit(_nrt=False)
def _find_order_id(P, oid):
    """Slot of live OrderID ``oid`` or -1."""
    S = state(P)
    ix, cfg = S[S_INDEX], S[S_CFG]
    return _oid_find(_oid_tab(ix, cfg), S[S_ORDERS], cfg[G_OID_BITS], S[S_CTR][C_OID_DISP], oid)


@njit(_nrt=False)
def _find_clordid(P, session, clordid):
    """Slot of the live order (``session``, ``clordid``) or -1."""
    S = state(P)
    ix, cfg = S[S_INDEX], S[S_CFG]
    return _cl_find(_cl_tab(ix, cfg), S[S_ORDERS], cfg[G_CL_BITS], S[S_CTR][C_CL_DISP], session, clordid)


@njit(_nrt=False)
def _find_account_head(P, account):
    """First slot of ``account``'s order list, or -1."""
    S = state(P)
    ix, cfg = S[S_INDEX], S[S_CFG]
    return _acc_find(_acc_tab(ix, cfg), S[S_ORDERS], cfg[G_CL_BITS], S[S_CTR][C_ACC_DISP], account)
