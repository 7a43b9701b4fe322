"""Cache-line prefetches for the records of a batch still to come.

Theory of operation: with thousands of books (the ``multi`` workload: 10,000 instruments,
500,000 live orders) nearly every lookup a message makes misses the cache, and each miss
depends on the one before it (table entry -> order record -> its level and queue
neighbours), so the core waits on them one after another. :func:`process` knows the whole
batch in advance, so while it handles record ``r`` it asks for the lines that records
``r + 1`` to ``r + TABLE_AHEAD`` will need, one link of the chain per step:

- ``r + TABLE_AHEAD``: the index-table line where the record's target order is found
  (by OrigClOrdID or OrderID), the line where its own new ClOrdID will be filed, and the
  instrument-table line of its SecurityID;
- ``r + RECORD_AHEAD``: the target's order record, read through that (now cached) entry,
  and the instrument's record and side rows;
- ``r + 1``: the target's level and its queue neighbours, read from that record; for a
  new order or a replace, the level-table line of its price, the last ladder word of its
  side and the best level of the other side (read from the now cached rows).

A prefetch never faults and changes nothing, so every guess may be wrong (the home entry
need not be the order, an earlier record of the batch may move it): a wrong guess costs
a wasted line, never a wrong result. The engine's output is unchanged by construction;
the differential suites check it anyway.
"""

# Kernel signatures are inferred by Numba from the state dtypes; annotating them would be
# decorative, so the kernel modules relax mypy's untyped-def rules.
# mypy: allow-untyped-defs, allow-incomplete-defs, allow-untyped-calls

from __future__ import annotations

from typing import Any, Final

import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

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
    G_CL_BITS,
    G_LV_BITS,
    G_OID_BITS,
    S_CFG,
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

#: how many records ahead the table lines are asked for, and the order records
TABLE_AHEAD: Final = 3
RECORD_AHEAD: Final = 2
#: resting orders from which :func:`process` prefetches: a smaller book stays in the
#: caches, where the lookahead's own work (about 8% of a mix message) buys nothing
DEEP_BOOK_ORDERS: Final = 1 << 14

# llvm.prefetch(ptr, rw, locality, cache type)
_READ: Final = 0
_LOCALITY_HIGH: Final = 3  #: keep in every cache level (prefetcht0)
_DATA_CACHE: Final = 1
_LINE: Final = 64


def _prefetch_intrinsic(typingctx: Any, arr: Any, index: Any, offset: Any) -> Any:
    """Ask for the cache line holding byte ``offset`` of element ``index`` of ``arr``
    (no bounds check: the address is only a hint and never dereferenced)."""
    sig = types.void(arr, types.intp, types.intp)

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        aryty = signature.args[0]
        ary = context.make_array(aryty)(context, builder, args[0])
        item = cgutils.get_item_pointer(context, builder, aryty, ary, [args[1]], wraparound=False)
        byte = ir.IntType(8)
        at = builder.gep(builder.bitcast(item, byte.as_pointer()), [args[2]])
        i32 = ir.IntType(32)
        fn = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [at.type, i32, i32, i32]), "llvm.prefetch.p0"
        )
        builder.call(fn, [at, i32(_READ), i32(_LOCALITY_HIGH), i32(_DATA_CACHE)])
        return context.get_dummy_value()

    return sig, codegen


#: ``_prefetch(arr, index, offset)`` in kernels (typed Any: mypy would see the typing hook)
_prefetch: Any = intrinsic(_prefetch_intrinsic)


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
    link further per ``stage``: 0 the instrument-table line, 1 the instrument record and
    its two side rows, 2 the level-table line of the price, the side's last ladder word
    and the other side's best level."""
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
    n = sides[si].n
    if n > 0:
        _prefetch(S[S_WORDS], sides[si].off + n - 1, 0)
    best = sides[si ^ 1].best
    if best >= 0:
        _prefetch_record(S[S_LEVELS], best)
    tick = insts[ii].tick
    if i8[r * IN_B + NOS_ORD_TYPE_B] == ORD_TYPE_LIMIT and tick > 0:
        price = i64[r * IN_Q + (NOS_PRICE_Q if nos else OCRR_PRICE_Q)] // tick
        _prefetch(S[S_LEVEL_TAB], _lv_home(si, price, S[S_CFG][G_LV_BITS]), 0)


@njit(_nrt=False, inline="always")
def prefetch_ahead(S, I, r, n):
    """Ask for what records ``r + 1`` .. ``r + TABLE_AHEAD`` of the batch will read (see the
    module docstring); called by :func:`process` before it handles record ``r``."""
    i64, i32, i16, _i8 = I
    orders = S[S_ORDERS]
    a = r + TABLE_AHEAD
    if a < n:
        tid = i16[a * IN_H + HDR_TEMPLATE_ID_H]
        if tid in (TEMPLATE_ORDER_CANCEL_REQUEST, TEMPLATE_ORDER_CANCEL_REPLACE_REQUEST):
            _target_entry(S, I, a, tid, False)
        if tid in (TEMPLATE_NEW_ORDER_SINGLE, TEMPLATE_ORDER_CANCEL_REPLACE_REQUEST):
            # where the record's own ClOrdID will be filed if it is accepted
            cfg = S[S_CFG]
            home = _cl_home(i32[a * IN_I + IN_SESSION_I], np.uint64(i64[a * IN_Q + IN_CLORDID_Q]), cfg[G_CL_BITS])
            _prefetch(_cl_tab(S[S_INDEX], cfg), home, 0)
            _book_lines(S, I, a, tid, 0)
    b = r + RECORD_AHEAD
    if b < n:
        tid = i16[b * IN_H + HDR_TEMPLATE_ID_H]
        if tid in (TEMPLATE_ORDER_CANCEL_REQUEST, TEMPLATE_ORDER_CANCEL_REPLACE_REQUEST):
            s = _target_entry(S, I, b, tid, True)
            if s >= 0:
                _prefetch_record(orders, s)
        if tid in (TEMPLATE_NEW_ORDER_SINGLE, TEMPLATE_ORDER_CANCEL_REPLACE_REQUEST):
            _book_lines(S, I, b, tid, 1)
    c = r + 1
    if c < n:
        tid = i16[c * IN_H + HDR_TEMPLATE_ID_H]
        if tid in (TEMPLATE_ORDER_CANCEL_REQUEST, TEMPLATE_ORDER_CANCEL_REPLACE_REQUEST):
            s = _target_entry(S, I, c, tid, True)
            if s >= 0:
                o = orders[s]
                if o.level >= 0:
                    _prefetch_record(S[S_LEVELS], o.level)
                if o.prev >= 0:
                    _prefetch_record(orders, o.prev)
                if o.next >= 0:
                    _prefetch_record(orders, o.next)
        if tid in (TEMPLATE_NEW_ORDER_SINGLE, TEMPLATE_ORDER_CANCEL_REPLACE_REQUEST):
            _book_lines(S, I, c, tid, 2)


__all__ = ["RECORD_AHEAD", "TABLE_AHEAD", "prefetch_ahead"]
