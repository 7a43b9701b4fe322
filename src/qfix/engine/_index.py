"""The two order indices: OrderID -> slot and (SessionID, ClOrdID) -> slot.

Theory of operation: open addressing with linear probing over tables of int32 slot
numbers only; keys are read back from the order record, so an entry costs 4 bytes and the
record stays the one source of truth. Deletion shifts later entries of the probe run back
instead of leaving tombstones, so lookups never slow down as orders come and go. The
tables are sized by the host to a power of two at least twice MaxOrders (load factor at
most 1/2), and the multiplicative hashes take the top ``bits`` of the product.
"""

# Kernel signatures are inferred by Numba from the state dtypes; annotating them would be
# decorative, so the kernel modules relax mypy's untyped-def rules.
# mypy: allow-untyped-defs, allow-incomplete-defs, allow-untyped-calls

from __future__ import annotations

from typing import Final

import numpy as np

from qfix.engine._common import njit

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
def _oid_find(tab, orders, bits, oid):
    """Slot of live OrderID ``oid`` or -1."""
    mask = (1 << bits) - 1
    i = _oid_home(oid, bits)
    while True:
        s = tab[i]
        if s < 0:
            return -1
        if orders[s].order_id == oid:
            return s
        i = (i + 1) & mask


@njit(_nrt=False)
def _oid_insert(tab, orders, bits, s):
    mask = (1 << bits) - 1
    i = _oid_home(orders[s].order_id, bits)
    while tab[i] >= 0:
        i = (i + 1) & mask
    tab[i] = s


@njit(_nrt=False)
def _oid_delete(tab, orders, bits, s):
    """Remove slot ``s`` (keyed by its current order_id); backward-shift deletion."""
    mask = (1 << bits) - 1
    i = _oid_home(orders[s].order_id, bits)
    while tab[i] != s:
        i = (i + 1) & mask
    j = i
    while True:
        j = (j + 1) & mask
        t = tab[j]
        if t < 0:
            break
        k = _oid_home(orders[t].order_id, bits)
        if i <= j:
            if i < k <= j:
                continue
        elif i < k or k <= j:
            continue
        tab[i] = t
        i = j
    tab[i] = -1


@njit(_nrt=False, inline="always")
def _cl_find(tab, orders, bits, session, clordid):
    mask = (1 << bits) - 1
    i = _cl_home(session, clordid, bits)
    while True:
        s = tab[i]
        if s < 0:
            return -1
        if orders[s].clordid == clordid and orders[s].session == session:
            return s
        i = (i + 1) & mask


@njit(_nrt=False)
def _cl_insert(tab, orders, bits, s):
    mask = (1 << bits) - 1
    i = _cl_home(orders[s].session, orders[s].clordid, bits)
    while tab[i] >= 0:
        i = (i + 1) & mask
    tab[i] = s


@njit(_nrt=False)
def _cl_delete(tab, orders, bits, s):
    mask = (1 << bits) - 1
    i = _cl_home(orders[s].session, orders[s].clordid, bits)
    while tab[i] != s:
        i = (i + 1) & mask
    j = i
    while True:
        j = (j + 1) & mask
        t = tab[j]
        if t < 0:
            break
        k = _cl_home(orders[t].session, orders[t].clordid, bits)
        if i <= j:
            if i < k <= j:
                continue
        elif i < k or k <= j:
            continue
        tab[i] = t
        i = j
    tab[i] = -1
