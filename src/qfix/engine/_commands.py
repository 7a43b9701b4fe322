"""Bulk removals (mass cancel, cancel-on-disconnect, admin cancel, expiry, end of day): the
entry points behind the host's admin commands (phase changes and auctions are ``_auction``'s).

Theory of operation: a bulk removal first collects the affected slots (:func:`_collect`,
one scan of the slots in use) without changing anything, so the caller can compare its
bound U (16 + 4 per order) with the free space; :func:`_bulk` then removes them in the
order the design fixes (instrument ascending, OrderID ascending), one chain per
instrument. Sorting uses the host's scratch arrays, as everywhere.
"""

# Kernel signatures are inferred by Numba from the state dtypes; annotating them would be
# decorative, so the kernel modules relax mypy's untyped-def rules.
# mypy: allow-untyped-defs, allow-incomplete-defs, allow-untyped-calls

from __future__ import annotations

import numpy as np

from qfix.engine._common import (
    STATUS_FULL,
    STATUS_OK,
    U_BASE,
    _day_of,
    _later,
    _order_px9,
    _sort_pairs,
    _views,
    njit,
)
from qfix.engine._index import _find_account_head, _ses_heads
from qfix.engine._levels import _retire
from qfix.engine._output import (
    _chain_begin,
    _chain_end,
    _copy_record,
    _w_delete,
    _w_er,
)
from qfix.engine._state import bind, state
from qfix.engine.types import (
    BULK_ACCOUNTS,
    BULK_EXPIRE,
    BULK_MASS_CANCEL,
    BULK_SESSIONS,
    C_CAP,
    C_LAST_TIME,
    C_OHW,
    C_W,
    S_CFG,
    S_CTR,
    S_INDEX,
    S_INSTS,
    S_NARROW,
    S_ORDERS,
    S_OUT,
    S_PTRS,
    S_SCRATCH,
    S_WIDE,
)
from qfix.wire.codes import (
    EXEC_REASON_ADMIN,
    EXEC_REASON_CANCEL_ON_DISCONNECT,
    EXEC_REASON_EXPIRED,
    EXEC_TYPE_CANCELED,
    EXEC_TYPE_EXPIRED,
    LIQUIDITY_NONE,
    NULL_U32,
    ORD_STATUS_CANCELED,
    ORD_STATUS_EXPIRED,
    ORD_TYPE_LIMIT,
    TIF_GTC,
    TIF_GTD,
)


@njit(_nrt=False, inline="always")
def _cancel_one(S, O, s, t, clordid, reason, req_sess, exec_type, status):
    """Remove resting order ``s`` with ER (Canceled/Expired) + MD OrderDelete (limit only).

    ``clordid`` is the causing request's (UserRequest) or the order's own.
    """
    orders = S[S_ORDERS]
    insts = S[S_INSTS]
    ii = orders[s].inst
    osess = orders[s].session
    r = _w_er(
        S,
        O,
        clordid,
        t,
        orders[s].order_id,
        _order_px9(orders, insts, s),
        orders[s].leaves,
        0,
        exec_type,
        status,
        reason,
        LIQUIDITY_NONE,
        osess,
    )
    if req_sess >= 0 and req_sess != osess and r >= 0:
        _copy_record(S, O, r, req_sess)
    if orders[s].ord_type == ORD_TYPE_LIMIT:
        _w_delete(S, O, t, insts[ii].sec_id, orders[s].order_id)
    _retire(S, s)


@njit(_nrt=False)
def _collect(P, kind, a, b, ii_filter, side_filter, day, keys):
    """Collect live slots for a bulk removal into scratch S[S_SCRATCH]; returns the count.

    BULK_MASS_CANCEL: Account == a (ii_filter/side_filter may be -1 for any);
    BULK_SESSIONS: SessionID in keys; BULK_ACCOUNTS: Account in keys; BULK_EXPIRE: GTD
    with ExpireDate < day; BULK_END_OF_DAY: all but GTC and GTD with ExpireDate > day.
    The first three walk the session and account order lists, so they cost the orders
    they remove, not the book; the daily expiries scan every slot.
    """
    S = state(P)
    ctr = S[S_CTR]
    orders = S[S_ORDERS]
    out = S[S_SCRATCH]
    n = 0
    if kind == BULK_MASS_CANCEL:
        return _collect_account(S, a, ii_filter, side_filter, 0)
    if kind == BULK_ACCOUNTS:
        for k in range(keys.shape[0]):
            n = _collect_account(S, keys[k], -1, -1, n)
        return n
    if kind == BULK_SESSIONS:
        heads = _ses_heads(S[S_INDEX], S[S_CFG])
        for k in range(keys.shape[0]):
            if 0 <= keys[k] < heads.shape[0]:
                s = heads[keys[k]]
                while s >= 0:
                    out[n] = s
                    n += 1
                    s = orders[s].ses_next
        return n
    for s in range(ctr[C_OHW]):
        if orders[s].order_id == 0:
            continue
        if kind == BULK_EXPIRE:
            take = orders[s].tif == TIF_GTD and np.int64(orders[s].expire) < day
        else:
            tif = orders[s].tif
            take = not (tif == TIF_GTC or (tif == TIF_GTD and np.int64(orders[s].expire) > day))
        if take:
            out[n] = s
            n += 1
    return n


@njit(_nrt=False, inline="always")
def _collect_account(S, account, ii_filter, side_filter, n):
    """Append the live slots of ``account`` (optionally one instrument index and side) to
    scratch S[S_SCRATCH] from position ``n``; returns the new count."""
    orders = S[S_ORDERS]
    out = S[S_SCRATCH]
    if account < 0 or account > NULL_U32:
        return n
    s = _find_account_head(S[S_PTRS], account)
    while s >= 0:
        if (ii_filter < 0 or orders[s].inst == ii_filter) and (side_filter < 0 or orders[s].side == side_filter):
            out[n] = s
            n += 1
        s = orders[s].acc_next
    return n


@njit(_nrt=False)
def _bulk(P, n, t, reason, exec_type, status):
    """Remove the ``n`` collected slots: per instrument ascending, per OrderID ascending."""
    S = state(P)
    O = _views(S[S_OUT])
    orders = S[S_ORDERS]
    slots = S[S_SCRATCH]
    keys = S[S_WIDE][0]
    vals = S[S_WIDE][1]
    counts = S[S_NARROW][0]
    ninst = S[S_INSTS].shape[0]
    for k in range(n):
        keys[k] = orders[slots[k]].order_id
        vals[k] = slots[k]
    _sort_pairs(keys, vals, 0, n)
    # stable counting sort by instrument (ascending SecurityID)
    for k in range(ninst + 1):
        counts[k] = 0
    for k in range(n):
        counts[orders[vals[k]].inst + 1] += 1
    for k in range(ninst):
        counts[k + 1] += counts[k]
    for k in range(n):
        ii = orders[vals[k]].inst
        slots[counts[ii]] = vals[k]
        counts[ii] += 1
    k = 0
    while k < n:
        ii = orders[slots[k]].inst
        _chain_begin(S, ii)
        while k < n and orders[slots[k]].inst == ii:
            s = slots[k]
            _cancel_one(S, O, s, t, orders[s].clordid, reason, -1, exec_type, status)
            k += 1
        _chain_end(S, O, ii, t)


@njit(_nrt=False, inline="always")
def _bulk_typed(P, n, t, reason, exec_type, status):
    """:func:`_bulk` with every argument as ``int64``: Numba compiles a called function once
    per distinct set of argument types, and constants passed as they are gave the four
    call sites (a mass cancel and the three bulk commands) a copy each, 3 s apiece."""
    _bulk(P, np.int64(n), np.int64(t), np.int64(reason), np.int64(exec_type), np.int64(status))


@njit(cache=True, _nrt=False)
def command_bulk(P, ob, now, kind, keys):
    """cancel_sessions, cancel_accounts, expire, end_of_day (``BULK_*`` ``kind``) as one chain.

    Returns (status, needed); nothing changes when the bound does not fit.
    """
    S = state(P)
    ctr = S[S_CTR]
    bind(P, S_OUT, ob)
    t = _later(now, ctr[C_LAST_TIME])
    day = _day_of(t)
    n = _collect(S[S_PTRS], kind, 0, 0, -1, -1, day, keys)
    u = U_BASE + 4 * n
    if ctr[C_CAP] - ctr[C_W] < u:
        return STATUS_FULL, u
    ctr[C_LAST_TIME] = t
    reason, exec_type, status = EXEC_REASON_EXPIRED, EXEC_TYPE_EXPIRED, ORD_STATUS_EXPIRED
    if kind == BULK_SESSIONS:
        reason, exec_type, status = EXEC_REASON_CANCEL_ON_DISCONNECT, EXEC_TYPE_CANCELED, ORD_STATUS_CANCELED
    elif kind == BULK_ACCOUNTS:
        reason, exec_type, status = EXEC_REASON_ADMIN, EXEC_TYPE_CANCELED, ORD_STATUS_CANCELED
    _bulk_typed(S[S_PTRS], n, t, reason, exec_type, status)
    return STATUS_OK, 0
