"""The two order indices: OrderID -> slot and (SessionID, ClOrdID) -> slot.

Theory of operation: open addressing with linear probing over tables of int32 slot
numbers only; keys are read back from the order record, so an entry costs 4 bytes and the
record stays the one source of truth. Deletion shifts later entries of the probe run back
instead of leaving tombstones, so lookups never slow down as orders come and go.

The host allocates each table for MaxOrders (a power of two at least twice it) but the
kernels use only its first ``2^bits`` entries, ``bits`` growing with the resting orders
(:func:`_index_grow`, load factor at most 1/2). A book of a thousand orders thus probes a
table of a few kilobytes that stays in cache, not one spread over tens of megabytes.

OrderIDs are dense counters (ENGINE.md §2.1 rule 4), so the OrderID table is indexed by
the OrderID itself modulo its size: almost every order sits in its home slot and orders
entered together share cache lines. ClOrdIDs are chosen by clients, so that table keeps a
multiplicative hash that takes the top ``bits`` of the product: no client can lay out
its ClOrdIDs to build long probe runs.

Identity hashing packs orders entered together into long runs of occupied slots, and a
plain linear-probing lookup or deletion walks to the end of its run. Each table
therefore keeps an upper bound on how far any entry sits from its home (``C_OID_DISP``,
``C_CL_DISP``: raised by inserts, reset when the table is rebuilt): a lookup probes at
most that many slots past the home, and a deletion stops looking for entries to shift
back once that many slots in a row could not move.
"""

# Kernel signatures are inferred by Numba from the state dtypes; annotating them would be
# decorative, so the kernel modules relax mypy's untyped-def rules.
# mypy: allow-untyped-defs, allow-incomplete-defs, allow-untyped-calls

from __future__ import annotations

from typing import Final

import numpy as np

from qfix.engine._common import njit
from qfix.engine.types import C_CL_DISP, C_OID_DISP, G_CL_BITS, G_INDEX_BITS_MAX, G_OID_BITS

HASH_MUL: Final = -7046029254386353131  #: 0x9E3779B97F4A7C15 as int64
HASH_MUL2: Final = -4658895280553007687  #: 0xBF58476D1CE4E5B9 as int64


@njit(_nrt=False, inline="always")
def _oid_home(oid, bits):
    return oid & ((1 << bits) - 1)


@njit(_nrt=False, inline="always")
def _cl_home(session, clordid, bits):
    h = (np.int64(clordid) ^ (np.int64(session) * HASH_MUL2)) * HASH_MUL
    return (h >> (64 - bits)) & ((1 << bits) - 1)


@njit(_nrt=False, inline="always")
def _home_of(orders, s, oid_table, bits):
    """Home slot of order slot ``s`` in the OrderID table (``oid_table``) or the ClOrdID table."""
    if oid_table:
        return _oid_home(orders[s].order_id, bits)
    return _cl_home(orders[s].session, orders[s].clordid, bits)


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


@njit(_nrt=False)
def _insert(tab, orders, bits, ctr, disp_at, oid_table, s):
    """File slot ``s`` at the first free slot from its home; raises the displacement bound."""
    mask = (1 << bits) - 1
    home = _home_of(orders, s, oid_table, bits)
    i = home
    while tab[i] >= 0:
        i = (i + 1) & mask
    tab[i] = s
    d = (i - home) & mask
    if d > ctr[disp_at]:
        ctr[disp_at] = d


@njit(_nrt=False)
def _delete(tab, orders, bits, ctr, disp_at, oid_table, s):
    """Remove slot ``s``; backward-shift deletion, so no tombstones are left behind.

    An entry at distance ``j - i`` past the hole can move into it only if it sits at
    least that far from its home, so the scan ends after ``disp`` slots that could not move.
    """
    mask = (1 << bits) - 1
    i = _home_of(orders, s, oid_table, bits)
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
        k = _home_of(orders, t, oid_table, bits)
        if ((j - k) & mask) < ((j - i) & mask):
            continue  # its home lies after the hole: it must stay
        tab[i] = t
        i = j
    tab[i] = -1


@njit(_nrt=False, inline="always")
def _oid_insert(tab, orders, bits, ctr, s):
    _insert(tab, orders, bits, ctr, C_OID_DISP, True, s)


@njit(_nrt=False, inline="always")
def _oid_delete(tab, orders, bits, ctr, s):
    """Remove slot ``s`` (keyed by its current order_id)."""
    _delete(tab, orders, bits, ctr, C_OID_DISP, True, s)


@njit(_nrt=False, inline="always")
def _cl_insert(tab, orders, bits, ctr, s):
    _insert(tab, orders, bits, ctr, C_CL_DISP, False, s)


@njit(_nrt=False, inline="always")
def _cl_delete(tab, orders, bits, ctr, s):
    """Remove slot ``s`` (keyed by its current session and clordid)."""
    _delete(tab, orders, bits, ctr, C_CL_DISP, False, s)


@njit(_nrt=False)
def _index_grow(tab_oid, tab_cl, orders, cfg, ctr, spill):
    """Double both index tables in place (their first ``2^bits`` entries become
    ``2^(bits + 1)``), re-inserting every entry; ``spill`` (int32, at least MaxOrders)
    holds the slots meanwhile. Returns False at the host's maximum size."""
    bits = cfg[G_OID_BITS]
    if bits >= cfg[G_INDEX_BITS_MAX]:
        return False
    n = 0
    for i in range(1 << bits):
        if tab_oid[i] >= 0:
            spill[n] = tab_oid[i]
            n += 1
    for i in range(1 << (bits + 1)):
        tab_oid[i] = -1
        tab_cl[i] = -1
    cfg[G_OID_BITS] = bits + 1
    cfg[G_CL_BITS] = bits + 1
    ctr[C_OID_DISP] = 0
    ctr[C_CL_DISP] = 0
    for k in range(n):
        _oid_insert(tab_oid, orders, bits + 1, ctr, spill[k])
        _cl_insert(tab_cl, orders, bits + 1, ctr, spill[k])
    return True
