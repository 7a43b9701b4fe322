"""Cache-line prefetches for the records of a batch still to come.

Theory of operation: with thousands of books (the ``multi`` workload: 10,000 instruments,
500,000 live orders) nearly every lookup a message makes misses the cache, and each miss
depends on the one before it (table entry -> order record -> its level and queue
neighbours), so the core waits on them one after another. :func:`process` knows the whole
batch in advance, so while it handles record ``r`` it asks for the lines that records
``r + 1`` to ``r + AHEAD`` will need, one link of the chain per step:

- ``r + AHEAD``: the index-table line where the record's target order is found (by
  OrigClOrdID or OrderID), the line where its own new ClOrdID will be filed, and the
  instrument-table line of its SecurityID;
- ``r + AHEAD - 1``: the target's order record, read through that (now cached) entry,
  and the instrument's record and side rows;
- ``r + AHEAD - 2``: the target's level, its neighbours in the level queue (and for a
  cancel in the session and account lists), the OrderID-table line a replace re-keys; for a
  new order or a replace, the level-table line of its price, the last ladder word of its
  side and the best level of the other side;
- ``r + 1``: the level at the new price, read through that level-table line, and the
  OrderID-table lines of the next two OrderIDs the engine will hand out.

A prefetch never faults and changes nothing, so every guess may be wrong (the home entry
need not be the order, an earlier record of the batch may move it): a wrong guess costs
a wasted line, never a wrong result. The engine's output is unchanged by construction;
the differential suites check it anyway.
"""

# Kernel signatures are inferred by Numba from the state dtypes; annotating them would be
# decorative, so the kernel modules relax mypy's untyped-def rules.
# mypy: allow-untyped-defs, allow-incomplete-defs, allow-untyped-calls

from __future__ import annotations

from typing import Final

import numpy as np

from qfix.engine._cacheline import _LINE, _prefetch
from qfix.engine._common import _find_inst, _inst_home, njit
from qfix.engine._index import _cl_home, _cl_tab, _oid_home, _oid_tab
from qfix.engine._ladder import _lv_home
from qfix.engine._layout import (
    HDR_TEMPLATE_ID_H,
    IN_B,
    IN_CLORDID_Q,
    IN_H,
    IN_I,
    IN_Q,
    IN_SESSION_I,
    NOS_ORD_TYPE_B,
    NOS_PRICE_Q,
    NOS_SECURITY_I,
    NOS_SIDE_B,
    OCR_ORDER_ID_Q,
    OCR_ORIG_CLORDID_Q,
    OCRR_ORD_TYPE_B,
    OCRR_ORIG_CLORDID_Q,
    OCRR_PRICE_Q,
    OCRR_SECURITY_I,
    OCRR_SIDE_B,
)
from qfix.engine.types import (
    C_NEXT_OID,
    G_CL_BITS,
    G_LV_BITS,
    G_OID_BITS,
    S_CFG,
    S_CTR,
    S_INDEX,
    S_INST_TAB,
    S_INSTS,
    S_LEVEL_TAB,
    S_LEVELS,
    S_ORDERS,
    S_SIDES,
    S_WORDS,
)
from qfix.wire.codes import (
    NULL_U64,
    ORD_TYPE_LIMIT,
    SIDE_BUY,
    SIDE_SELL,
    TEMPLATE_NEW_ORDER_SINGLE,
    TEMPLATE_ORDER_CANCEL_REPLACE_REQUEST,
    TEMPLATE_ORDER_CANCEL_REQUEST,
)

#: how many records ahead the first link of each chain is asked for (one link per record
#: closer; see the module docstring)
AHEAD: Final = 4
#: resting orders from which :func:`process` prefetches. Below, the tables and records
#: mostly stay in the last-level cache, where the lookahead's own work costs more than it
#: saves: at 16,384 the quick insert stream (up to 57,625 resting) ran at 0.89x, at
#: 131,072 it runs as without the lookahead while multi (500,000) keeps its gain
DEEP_BOOK_ORDERS: Final = 1 << 17


@njit(_nrt=False, inline="always")
def _prefetch_record(arr, index):
    """Both lines an element of ``arr`` may straddle (records are not line-aligned)."""
    _prefetch(arr, index, 0)
    _prefetch(arr, index, arr.itemsize - 1)


@njit(_nrt=False, inline="always")
def _target_entry(S, I, r, tid, read):
    """The index-table entry where record ``r`` (a cancel or replace) finds its order:
    prefetched (``read`` False) or read back as a slot guess (-1: none)."""
    i64, i32, _i16, _i8 = I
    ix = S[S_INDEX]
    cfg = S[S_CFG]
    orig_at = OCR_ORIG_CLORDID_Q if tid == TEMPLATE_ORDER_CANCEL_REQUEST else OCRR_ORIG_CLORDID_Q
    orig = np.uint64(i64[r * IN_Q + orig_at])
    if tid == TEMPLATE_ORDER_CANCEL_REQUEST and np.uint64(i64[r * IN_Q + OCR_ORDER_ID_Q]) != NULL_U64:
        tab = _oid_tab(ix, cfg)
        home = _oid_home(i64[r * IN_Q + OCR_ORDER_ID_Q], cfg[G_OID_BITS])
    elif orig != NULL_U64:
        tab = _cl_tab(ix, cfg)
        home = _cl_home(i32[r * IN_I + IN_SESSION_I], orig, cfg[G_CL_BITS])
    else:
        return -1
    if not read:
        _prefetch(tab, home, 0)
        return -1
    return np.int64(tab[home])


# a NewOrderSingle and a replace keep Side and OrdType at the same places (not SecurityID
# or Price)
assert NOS_SIDE_B == OCRR_SIDE_B and NOS_ORD_TYPE_B == OCRR_ORD_TYPE_B


@njit(_nrt=False, inline="always")
def _book_lines(S, I, r, tid, stage):
    """The lines a new order or replace (record ``r``) reads in its instrument's book, one
    link further per ``stage`` (0 to 3, as in the module docstring)."""
    i64, i32, _i16, i8 = I
    nos = tid == TEMPLATE_NEW_ORDER_SINGLE
    sid = np.int64(i32[r * IN_I + (NOS_SECURITY_I if nos else OCRR_SECURITY_I)])
    tab = S[S_INST_TAB]
    if stage == 0:
        _prefetch(tab, _inst_home(sid, tab.shape[0] - 1), 0)
        return
    ii = _find_inst(tab, sid)
    side = np.int64(i8[r * IN_B + NOS_SIDE_B])
    if ii < 0 or (side != SIDE_BUY and side != SIDE_SELL):
        return
    side -= SIDE_BUY
    insts = S[S_INSTS]
    sides = S[S_SIDES]
    if stage == 1:
        for at in range(0, insts.itemsize, _LINE):
            _prefetch(insts, ii, at)
        _prefetch(sides, 2 * ii, 0)
        _prefetch(sides, 2 * ii + 1, sides.itemsize - 1)
        return
    si = 2 * ii + side
    tick = insts[ii].tick
    if i8[r * IN_B + NOS_ORD_TYPE_B] != ORD_TYPE_LIMIT or tick <= 0:
        return
    price = i64[r * IN_Q + (NOS_PRICE_Q if nos else OCRR_PRICE_Q)] // tick
    level_tab = S[S_LEVEL_TAB]
    home = _lv_home(si, price, S[S_CFG][G_LV_BITS])
    if stage == 2:
        _prefetch(level_tab, home, 0)
        n = sides[si].n
        if n > 0:
            _prefetch(S[S_WORDS], sides[si].off + n - 1, 0)
        best = sides[si ^ 1].best
        if best >= 0:
            _prefetch_record(S[S_LEVELS], best)
        return
    lv = level_tab[home]
    if lv >= 0:
        _prefetch_record(S[S_LEVELS], lv)


@njit(_nrt=False, inline="always")
def _target_lines(S, I, r, tid, stage):
    """The lines a cancel or replace (record ``r``) reads around the order it addresses,
    one link further per ``stage`` (0 to 2)."""
    if stage == 0:
        _target_entry(S, I, r, tid, False)
        return
    s = _target_entry(S, I, r, tid, True)
    if s < 0:
        return
    orders = S[S_ORDERS]
    if stage == 1:
        _prefetch_record(orders, s)
        return
    o = orders[s]
    if o.level >= 0:
        _prefetch_record(S[S_LEVELS], o.level)
    for link in (o.prev, o.next):
        if link >= 0:
            _prefetch_record(orders, link)
    if tid == TEMPLATE_ORDER_CANCEL_REQUEST:
        for link in (o.ses_prev, o.ses_next, o.acc_prev, o.acc_next):
            if link >= 0:
                _prefetch_record(orders, link)
    else:
        cfg = S[S_CFG]
        _prefetch(_oid_tab(S[S_INDEX], cfg), _oid_home(o.order_id, cfg[G_OID_BITS]), 0)


@njit(_nrt=False, inline="always")
def _record_lines(S, I, x, stage):
    """Stage ``stage`` of the lookahead for record ``x``."""
    i64, i32, i16, _i8 = I
    tid = i16[x * IN_H + HDR_TEMPLATE_ID_H]
    targets = tid in (TEMPLATE_ORDER_CANCEL_REQUEST, TEMPLATE_ORDER_CANCEL_REPLACE_REQUEST)
    enters = tid in (TEMPLATE_NEW_ORDER_SINGLE, TEMPLATE_ORDER_CANCEL_REPLACE_REQUEST)
    if targets and stage <= 2:
        _target_lines(S, I, x, tid, stage)
    if enters:
        if stage == 0:  # where the record's own ClOrdID will be filed if it is accepted
            cfg = S[S_CFG]
            home = _cl_home(i32[x * IN_I + IN_SESSION_I], np.uint64(i64[x * IN_Q + IN_CLORDID_Q]), cfg[G_CL_BITS])
            _prefetch(_cl_tab(S[S_INDEX], cfg), home, 0)
        _book_lines(S, I, x, tid, stage)


@njit(_nrt=False, inline="always")
def prefetch_ahead(S, I, r, n):
    """Ask for what records ``r + 1`` .. ``r + AHEAD`` of the batch will read (see the
    module docstring); called by :func:`process` before it handles record ``r``."""
    for stage in range(AHEAD):
        x = r + AHEAD - stage
        if x < n:
            _record_lines(S, I, x, stage)
    # the OrderIDs records r and r + 1 take if they are accepted orders or moves
    cfg = S[S_CFG]
    oids = _oid_tab(S[S_INDEX], cfg)
    nxt = S[S_CTR][C_NEXT_OID]
    _prefetch(oids, _oid_home(nxt, cfg[G_OID_BITS]), 0)
    _prefetch(oids, _oid_home(nxt + 1, cfg[G_OID_BITS]), 0)


__all__ = ["AHEAD", "DEEP_BOOK_ORDERS", "prefetch_ahead"]
