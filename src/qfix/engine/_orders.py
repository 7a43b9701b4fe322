"""One handler per inbound template: NewOrderSingle, OrderCancelRequest,
OrderCancelReplaceRequest and OrderMassCancelRequest (ENGINE.md §3).

Theory of operation: a new order and a replace are decided in two steps. The verdict
(:func:`_nos_verdict`, :func:`_replace_verdict`) runs every acceptance check in the
design's order without changing anything, so ``process`` can compute the record's bound U
from it before the record starts; the handler (:func:`_nos`, :func:`_replace`) then acts
on that verdict, so the checks run once per record. A mass cancel likewise splits into
:func:`_mass_check` and :func:`_mass`, with the orders collected in between. Fields are
read straight from the INBOUND words at the ``_layout`` indices of their template.
"""

# Kernel signatures are inferred by Numba from the state dtypes; annotating them would be
# decorative, so the kernel modules relax mypy's untyped-def rules.
# mypy: allow-untyped-defs, allow-incomplete-defs, allow-untyped-calls

from __future__ import annotations

from typing import Final

import numpy as np

from qfix.engine._commands import (
    _bulk_typed,
    _cancel_one,
)
from qfix.engine._common import (
    _day_of,
    _find_inst,
    _status_of,
    _stp_group,
    _views,
    njit,
)
from qfix.engine._index import (
    _find_clordid,
    _find_order_id,
    _index_remove,
    _index_set_clordid,
    _index_set_order_id,
)
from qfix.engine._ladder import _best_level
from qfix.engine._layout import (
    IN_B,
    IN_CLORDID_Q,
    IN_H,
    IN_I,
    IN_Q,
    IN_SESSION_ACCOUNT_I,
    IN_SESSION_I,
    NOS_ACCOUNT_I,
    NOS_EXEC_INST_B,
    NOS_EXPIRE_H,
    NOS_MAX_FLOOR_I,
    NOS_MIN_QTY_I,
    NOS_ORD_TYPE_B,
    NOS_PRICE_Q,
    NOS_QTY_I,
    NOS_SECURITY_I,
    NOS_SIDE_B,
    NOS_SMP_B,
    NOS_TIF_B,
    OCR_ORDER_ID_Q,
    OCR_ORIG_CLORDID_Q,
    OCR_SECURITY_I,
    OCR_SIDE_B,
    OCRR_EXEC_INST_B,
    OCRR_MAX_FLOOR_I,
    OCRR_MIN_QTY_I,
    OCRR_ORD_TYPE_B,
    OCRR_ORIG_CLORDID_Q,
    OCRR_PRICE_Q,
    OCRR_QTY_I,
    OCRR_SECURITY_I,
    OCRR_SIDE_B,
    OCRR_TIF_B,
    OMC_ACCOUNT_I,
    OMC_SECURITY_I,
    OMC_SIDE_B,
    OMC_TYPE_B,
)
from qfix.engine._levels import (
    _level_get,
    _link_tail,
    _order_alloc,
    _order_free,
    _touch,
    _unlink,
)
from qfix.engine._match import (
    _crosses,
    _market_limit,
    _match,
    _matches_on_entry,
    _remainder,
    _simulate,
)
from qfix.engine._output import (
    _chain_begin,
    _chain_end,
    _w_delete,
    _w_er,
    _w_ocr,
    _w_omcr,
    _w_reduced,
    _w_replace,
)
from qfix.engine._state import state
from qfix.engine.config import (
    PHASE_CLOSED,
    PHASE_CONTINUOUS,
    PHASE_HALTED,
)
from qfix.engine.types import (
    C_LEVELS,
    C_NEXT_OID,
    C_RESTING,
    G_MAX_LEVELS,
    G_MAX_ORDERS,
    NO_PRICE,
    S_CFG,
    S_CTR,
    S_IN,
    S_INST_TAB,
    S_INSTS,
    S_LAST_CL,
    S_LEVELS,
    S_ORDERS,
    S_OUT,
    S_PTRS,
    S_SIDES,
    S_STP_MAP,
    STP_ACCOUNT,
    STP_GROUP,
)
from qfix.wire.codes import (
    CXL_REJ_RESPONSE_TO_CANCEL,
    CXL_REJ_RESPONSE_TO_REPLACE,
    EXEC_INST_ALL_OR_NONE,
    EXEC_INST_POST_ONLY,
    EXEC_INST_RESERVED_MASK,
    EXEC_REASON_CAPACITY_FULL,
    EXEC_REASON_DUPLICATE_CLORDID,
    EXEC_REASON_EXPIRE_DATE_MISMATCH,
    EXEC_REASON_INCORRECT_QTY,
    EXEC_REASON_INVALID_EXEC_INST,
    EXEC_REASON_INVALID_EXPIRE_DATE,
    EXEC_REASON_INVALID_MASS_CANCEL_REQUEST,
    EXEC_REASON_INVALID_MAX_FLOOR,
    EXEC_REASON_INVALID_MIN_QTY,
    EXEC_REASON_INVALID_ORD_TYPE,
    EXEC_REASON_INVALID_SIDE,
    EXEC_REASON_INVALID_SMP_INSTRUCTION,
    EXEC_REASON_INVALID_TIME_IN_FORCE,
    EXEC_REASON_IOC_FOK_REMAINDER,
    EXEC_REASON_MASS_CANCEL,
    EXEC_REASON_MIN_QTY_NOT_MET,
    EXEC_REASON_NONE,
    EXEC_REASON_NOTIONAL_OVER_MAX,
    EXEC_REASON_OTHER_ACCOUNT,
    EXEC_REASON_POST_ONLY_WOULD_CROSS,
    EXEC_REASON_PRICE_NOT_ALLOWED,
    EXEC_REASON_PRICE_OFF_TICK,
    EXEC_REASON_PRICE_OUTSIDE_BAND,
    EXEC_REASON_PRICE_REQUIRED,
    EXEC_REASON_QTY_OVER_MAX,
    EXEC_REASON_TRADING_STATE_NOT_OPEN,
    EXEC_REASON_UNKNOWN_ORDER,
    EXEC_REASON_UNKNOWN_SYMBOL,
    EXEC_REASON_UNSUPPORTED,
    EXEC_REASON_USER_REQUEST,
    EXEC_TYPE_CANCELED,
    EXEC_TYPE_NEW,
    EXEC_TYPE_REJECTED,
    EXEC_TYPE_REPLACED,
    LIQUIDITY_NONE,
    MASS_CANCEL_RESPONSE_REJECTED,
    MASS_CANCEL_SIDE_BOTH,
    MASS_CANCEL_TYPE_ALL,
    MASS_CANCEL_TYPE_SECURITY,
    NULL_DATE,
    NULL_PRICE,
    NULL_U32,
    NULL_U64,
    ORD_STATUS_CANCELED,
    ORD_STATUS_NEW,
    ORD_STATUS_REJECTED,
    ORD_TYPE_LIMIT,
    ORD_TYPE_MARKET,
    ORD_TYPE_STOP,
    ORD_TYPE_STOP_LIMIT,
    SIDE_BUY,
    SIDE_SELL,
    SMP_CANCEL_AGGRESSIVE,
    SMP_DECREMENT,
    SMP_DEFAULT,
    TIF_DAY,
    TIF_FOK,
    TIF_GTC,
    TIF_GTD,
    TIF_IOC,
)

QTY_LIMIT: Final = 4_294_967_295  #: 2^32 - 1: open lots of a side (ENGINE.md §4 rule 2)


@njit(_nrt=False, inline="always")
def _reject_nos(S, O, I, r, t, reason):
    i64, i32, _i16, _i8 = I
    _w_er(
        S,
        O,
        np.uint64(i64[r * IN_Q + IN_CLORDID_Q]),
        t,
        -1,
        i64[r * IN_Q + NOS_PRICE_Q],
        i32[r * IN_I + NOS_QTY_I],
        0,
        EXEC_TYPE_REJECTED,
        ORD_STATUS_REJECTED,
        reason,
        LIQUIDITY_NONE,
        i32[r * IN_I + IN_SESSION_I],
    )


@njit(_nrt=False, inline="always")
def _check_nos_fields(S, I, r):
    """WIRE.md §5.2 NewOrderSingle checks 1-14 in order; returns (reason, instrument)."""
    i64, i32, i16, i8 = I
    insts = S[S_INSTS]
    ii = _find_inst(S[S_INST_TAB], np.int64(i32[r * IN_I + NOS_SECURITY_I]))
    if ii < 0:
        return EXEC_REASON_UNKNOWN_SYMBOL, ii
    c = r * IN_B
    side = i8[c + NOS_SIDE_B]
    ot = i8[c + NOS_ORD_TYPE_B]
    tif = i8[c + NOS_TIF_B]
    ei = i8[c + NOS_EXEC_INST_B]
    smp = i8[c + NOS_SMP_B]
    if side != SIDE_BUY and side != SIDE_SELL:
        return EXEC_REASON_INVALID_SIDE, ii
    if ot in (ORD_TYPE_STOP, ORD_TYPE_STOP_LIMIT):
        return EXEC_REASON_UNSUPPORTED, ii
    if ot != ORD_TYPE_MARKET and ot != ORD_TYPE_LIMIT:
        return EXEC_REASON_INVALID_ORD_TYPE, ii
    if tif != TIF_DAY and tif != TIF_GTC and tif != TIF_IOC and tif != TIF_FOK and tif != TIF_GTD:
        return EXEC_REASON_INVALID_TIME_IN_FORCE, ii
    if ei & EXEC_INST_RESERVED_MASK:
        return EXEC_REASON_INVALID_EXEC_INST, ii
    if ei & EXEC_INST_ALL_OR_NONE:
        return EXEC_REASON_UNSUPPORTED, ii
    if not (SMP_CANCEL_AGGRESSIVE <= smp <= SMP_DECREMENT or smp == SMP_DEFAULT):
        return EXEC_REASON_INVALID_SMP_INSTRUCTION, ii
    qty = np.int64(i32[r * IN_I + NOS_QTY_I])
    if qty < 1:
        return EXEC_REASON_INCORRECT_QTY, ii
    if qty > insts[ii].max_qty:
        return EXEC_REASON_QTY_OVER_MAX, ii
    px = i64[r * IN_Q + NOS_PRICE_Q]
    if ot == ORD_TYPE_LIMIT:
        if px == NULL_PRICE:
            return EXEC_REASON_PRICE_REQUIRED, ii
    elif px != NULL_PRICE:
        return EXEC_REASON_PRICE_NOT_ALLOWED, ii
    if px != NULL_PRICE and px % insts[ii].tick != 0:
        return EXEC_REASON_PRICE_OFF_TICK, ii
    exp = i16[r * IN_H + NOS_EXPIRE_H]
    if (tif == TIF_GTD) != (exp != NULL_DATE):
        return EXEC_REASON_EXPIRE_DATE_MISMATCH, ii
    mq = np.int64(i32[r * IN_I + NOS_MIN_QTY_I])
    if mq != NULL_U32 and (mq < 1 or mq > qty):
        return EXEC_REASON_INVALID_MIN_QTY, ii
    mf = np.int64(i32[r * IN_I + NOS_MAX_FLOOR_I])
    if mf == 0:
        return EXEC_REASON_INVALID_MAX_FLOOR, ii
    post = (ei & EXEC_INST_POST_ONLY) != 0
    if ot == ORD_TYPE_MARKET and ((tif != TIF_DAY and tif != TIF_IOC and tif != TIF_FOK) or post or mf != NULL_U32):
        return EXEC_REASON_UNSUPPORTED, ii
    resting_tif = tif in (TIF_DAY, TIF_GTC, TIF_GTD)
    if post and (not resting_tif or mq != NULL_U32):
        return EXEC_REASON_UNSUPPORTED, ii
    if mf != NULL_U32 and not resting_tif:
        return EXEC_REASON_UNSUPPORTED, ii
    if mq != NULL_U32 and tif == TIF_FOK:
        return EXEC_REASON_UNSUPPORTED, ii
    return EXEC_REASON_NONE, ii


@njit(_nrt=False, inline="always")
def _phase_accepts_new(insts, ii, ot, tif, has_minqty, post):
    """ENGINE.md §7.2 for a new order."""
    ph = insts[ii].phase
    if ph in (PHASE_CLOSED, PHASE_HALTED):
        return False
    if ph == PHASE_CONTINUOUS and insts[ii].fba < 0:
        return True
    if tif == TIF_FOK or has_minqty or post:
        return False
    if tif == TIF_IOC:
        return ph == PHASE_CONTINUOUS  # FBA: rests to the next tick
    if ot == ORD_TYPE_MARKET:
        return tif == TIF_DAY
    return True


@njit(_nrt=False, inline="always")
def _band_ok(insts, ii, p):
    return insts[ii].lo <= p <= insts[ii].hi


@njit(_nrt=False, inline="always")
def _notional_ok(insts, ii, lots, c):
    return lots <= insts[ii].max_notional // max(abs(c), 1)


@njit(_nrt=False, inline="always")
def _nos_verdict(S, I, r, t):
    """ENGINE.md §3.1 checks 1-8 of a NewOrderSingle, changing nothing.

    Returns (reason, instrument, price, limit): EXEC_REASON_NONE if the order would be
    accepted; its limit price in ticks (0 for market) and its matching limit L (the price
    for a limit order, the collar limit for a market order in a matching phase, else
    NO_PRICE). :func:`process` computes the bound U from it, :func:`_nos` acts on it.
    """
    ctr = S[S_CTR]
    cfg = S[S_CFG]
    levels = S[S_LEVELS]
    insts = S[S_INSTS]
    sides = S[S_SIDES]
    i64, i32, i16, i8 = I
    sess = i32[r * IN_I + IN_SESSION_I]
    clordid = np.uint64(i64[r * IN_Q + IN_CLORDID_Q])
    if clordid <= S[S_LAST_CL][sess]:
        return EXEC_REASON_DUPLICATE_CLORDID, np.int64(-1), np.int64(0), NO_PRICE
    reason, ii = _check_nos_fields(S, I, r)
    if reason != EXEC_REASON_NONE:
        return reason, np.int64(ii), np.int64(0), NO_PRICE
    c = r * IN_B
    side = np.int64(i8[c + NOS_SIDE_B]) - SIDE_BUY
    ot = i8[c + NOS_ORD_TYPE_B]
    tif = i8[c + NOS_TIF_B]
    post = (i8[c + NOS_EXEC_INST_B] & EXEC_INST_POST_ONLY) != 0
    qty = np.int64(i32[r * IN_I + NOS_QTY_I])
    mq = np.int64(i32[r * IN_I + NOS_MIN_QTY_I])
    exp = np.int64(i16[r * IN_H + NOS_EXPIRE_H])
    if not _phase_accepts_new(insts, ii, ot, tif, mq != NULL_U32, post):
        return EXEC_REASON_TRADING_STATE_NOT_OPEN, np.int64(ii), np.int64(0), NO_PRICE
    if tif == TIF_GTD and exp < _day_of(t):
        return EXEC_REASON_INVALID_EXPIRE_DATE, np.int64(ii), np.int64(0), NO_PRICE
    matching = _matches_on_entry(insts, ii)
    price = np.int64(0)
    if ot == ORD_TYPE_LIMIT:
        price = i64[r * IN_Q + NOS_PRICE_Q] // insts[ii].tick
        if not _band_ok(insts, ii, price):
            return EXEC_REASON_PRICE_OUTSIDE_BAND, np.int64(ii), np.int64(0), NO_PRICE
        limit = price
        cn = price
    else:
        limit = NO_PRICE
        if matching:
            limit = _market_limit(S, ii, side)
        cn = limit if limit != NO_PRICE else insts[ii].ref
    if not _notional_ok(insts, ii, qty, cn):
        return EXEC_REASON_NOTIONAL_OVER_MAX, np.int64(ii), np.int64(0), NO_PRICE
    if (
        ctr[C_RESTING] >= cfg[G_MAX_ORDERS]
        or ctr[C_LEVELS] >= cfg[G_MAX_LEVELS]
        or sides[2 * ii + side].lots + qty > QTY_LIMIT
    ):
        return EXEC_REASON_CAPACITY_FULL, np.int64(ii), np.int64(0), NO_PRICE
    if post and matching:
        opp = _best_level(S, 2 * ii + 1 - side)
        if opp >= 0 and _crosses(side, levels[opp].price, price):
            return EXEC_REASON_POST_ONLY_WOULD_CROSS, np.int64(ii), np.int64(0), NO_PRICE
    return EXEC_REASON_NONE, np.int64(ii), price, limit


@njit(_nrt=False)
def _nos(P, r, t, reason, ii, price, limit):
    """NewOrderSingle (ENGINE.md §3.1-§3.6), given its :func:`_nos_verdict`."""
    S = state(P)
    O = _views(S[S_OUT])
    I = _views(S[S_IN])
    ctr = S[S_CTR]
    orders = S[S_ORDERS]
    insts = S[S_INSTS]
    i64, i32, i16, i8 = I
    sess = i32[r * IN_I + IN_SESSION_I]
    clordid = np.uint64(i64[r * IN_Q + IN_CLORDID_Q])
    if reason != EXEC_REASON_DUPLICATE_CLORDID:
        S[S_LAST_CL][sess] = clordid  # §1.2 rule 4: even if the order is then rejected
    if reason != EXEC_REASON_NONE:
        _reject_nos(S, O, I, r, t, reason)
        return
    c = r * IN_B
    side = np.int64(i8[c + NOS_SIDE_B]) - SIDE_BUY
    ot = i8[c + NOS_ORD_TYPE_B]
    tif = i8[c + NOS_TIF_B]
    post = (i8[c + NOS_EXEC_INST_B] & EXEC_INST_POST_ONLY) != 0
    smp = np.int64(i8[c + NOS_SMP_B])
    qty = np.int64(i32[r * IN_I + NOS_QTY_I])
    mq = np.int64(i32[r * IN_I + NOS_MIN_QTY_I])
    mf = np.int64(i32[r * IN_I + NOS_MAX_FLOOR_I])
    exp = np.int64(i16[r * IN_H + NOS_EXPIRE_H])
    has_mq = mq != NULL_U32
    matching = _matches_on_entry(insts, ii)
    # accepted: the order takes a slot and an OrderID
    T = _order_alloc(S)
    oid = ctr[C_NEXT_OID]
    ctr[C_NEXT_OID] += 1
    acct = np.int64(i32[r * IN_I + NOS_ACCOUNT_I])
    if acct == NULL_U32:
        acct = np.int64(i32[r * IN_I + IN_SESSION_ACCOUNT_I])
    orders[T].order_id = oid
    orders[T].clordid = clordid
    orders[T].price = price
    orders[T].prio = 0
    orders[T].qty = qty
    orders[T].cum = 0
    orders[T].leaves = qty
    orders[T].shown = qty
    orders[T].display = mf if mf != NULL_U32 else 0
    orders[T].session = sess
    orders[T].account = acct
    orders[T].group = _stp_group(S[S_STP_MAP][STP_ACCOUNT], S[S_STP_MAP][STP_GROUP], acct)
    orders[T].inst = ii
    orders[T].level = -1
    orders[T].prev = -1
    orders[T].next = -1
    orders[T].expire = exp
    orders[T].side = side
    orders[T].ord_type = ot
    orders[T].tif = tif
    orders[T].post_only = 1 if post else 0
    orders[T].stp = smp if smp != SMP_DEFAULT else insts[ii].default_stp
    px9 = i64[r * IN_Q + NOS_PRICE_Q] if ot == ORD_TYPE_LIMIT else NULL_PRICE
    if matching and (has_mq or tif == TIF_FOK):
        need = qty if tif == TIF_FOK else mq
        e = 0
        if limit != NO_PRICE:
            e = _simulate(S[S_PTRS], T, limit)
        if e < need:
            why = EXEC_REASON_IOC_FOK_REMAINDER if tif == TIF_FOK else EXEC_REASON_MIN_QTY_NOT_MET
            _w_er(
                S,
                O,
                clordid,
                t,
                oid,
                px9,
                qty,
                0,
                EXEC_TYPE_CANCELED,
                ORD_STATUS_CANCELED,
                why,
                LIQUIDITY_NONE,
                sess,
            )
            _order_free(S, T)
            return
    _chain_begin(S, ii)
    _w_er(
        S,
        O,
        clordid,
        t,
        oid,
        px9,
        qty,
        qty,
        EXEC_TYPE_NEW,
        ORD_STATUS_NEW,
        EXEC_REASON_NONE,
        LIQUIDITY_NONE,
        sess,
    )
    if matching and limit != NO_PRICE:
        _match(S[S_PTRS], T, limit, t)
    _remainder(S, O, T, t, matching)
    _chain_end(S, O, ii, t)


@njit(_nrt=False)
def _cancel(P, r, t):
    """OrderCancelRequest (ENGINE.md §3.7)."""
    S = state(P)
    O = _views(S[S_OUT])
    I = _views(S[S_IN])
    orders = S[S_ORDERS]
    i64, i32, _i16, i8 = I
    sess = i32[r * IN_I + IN_SESSION_I]
    clordid = np.uint64(i64[r * IN_Q + IN_CLORDID_Q])
    orig = np.uint64(i64[r * IN_Q + OCR_ORIG_CLORDID_Q])
    last_cl = S[S_LAST_CL]
    reason = EXEC_REASON_NONE
    if clordid <= last_cl[sess]:
        reason = EXEC_REASON_DUPLICATE_CLORDID
    else:
        last_cl[sess] = clordid
    ii = -1
    side = np.int64(i8[r * IN_B + OCR_SIDE_B])
    req_oid = np.uint64(i64[r * IN_Q + OCR_ORDER_ID_Q])
    if reason == EXEC_REASON_NONE:
        ii = _find_inst(S[S_INST_TAB], np.int64(i32[r * IN_I + OCR_SECURITY_I]))
        if ii < 0:
            reason = EXEC_REASON_UNKNOWN_SYMBOL
        elif side != SIDE_BUY and side != SIDE_SELL:
            reason = EXEC_REASON_INVALID_SIDE
        elif req_oid == NULL_U64 and orig == NULL_U64:
            reason = EXEC_REASON_UNKNOWN_ORDER
    s = -1
    if reason == EXEC_REASON_NONE:
        if req_oid != NULL_U64:
            if req_oid < np.uint64(1 << 62):
                s = _find_order_id(S[S_PTRS], np.int64(req_oid))
        else:
            s = _find_clordid(S[S_PTRS], sess, orig)
        if s < 0 or orders[s].inst != ii or orders[s].side != side - SIDE_BUY:
            reason = EXEC_REASON_UNKNOWN_ORDER
        elif orders[s].session != sess and orders[s].account != i32[r * IN_I + IN_SESSION_ACCOUNT_I]:
            reason = EXEC_REASON_OTHER_ACCOUNT
    if reason != EXEC_REASON_NONE:
        _w_ocr(
            S,
            O,
            clordid,
            t,
            -1,
            orig,
            ORD_STATUS_REJECTED,
            CXL_REJ_RESPONSE_TO_CANCEL,
            reason,
            sess,
        )
        return
    _chain_begin(S, ii)
    _cancel_one(
        S,
        O,
        s,
        t,
        clordid,
        EXEC_REASON_USER_REQUEST,
        np.int64(sess),
        EXEC_TYPE_CANCELED,
        ORD_STATUS_CANCELED,
    )
    _chain_end(S, O, ii, t)


@njit(_nrt=False, inline="always")
def _replace_verdict(S, I, r, t):
    """ENGINE.md §3.8 rule 1 checks of an OrderCancelReplaceRequest, changing nothing.

    Returns (reason, instrument, slot, rule, price, display): EXEC_REASON_NONE if the
    replace goes ahead under §3.8 ``rule`` (2, 3 or 4) with the new price in ticks and new
    Display; ``slot`` is the looked-up order (-1 if the lookup failed). :func:`process`
    computes the bound U from it, :func:`_replace` acts on it.
    """
    ctr = S[S_CTR]
    cfg = S[S_CFG]
    orders = S[S_ORDERS]
    levels = S[S_LEVELS]
    insts = S[S_INSTS]
    sides = S[S_SIDES]
    i64, i32, _i16, i8 = I
    c = r * IN_B
    sess = i32[r * IN_I + IN_SESSION_I]
    clordid = np.uint64(i64[r * IN_Q + IN_CLORDID_Q])
    orig = np.uint64(i64[r * IN_Q + OCRR_ORIG_CLORDID_Q])
    reason = EXEC_REASON_NONE
    if clordid <= S[S_LAST_CL][sess]:
        reason = EXEC_REASON_DUPLICATE_CLORDID
    ii = np.int64(-1)
    side = np.int64(i8[c + OCRR_SIDE_B])
    ot = i8[c + OCRR_ORD_TYPE_B]
    tif = i8[c + OCRR_TIF_B]
    ei = i8[c + OCRR_EXEC_INST_B]
    qty = np.int64(i32[r * IN_I + OCRR_QTY_I])
    px = i64[r * IN_Q + OCRR_PRICE_Q]
    mf = np.int64(i32[r * IN_I + OCRR_MAX_FLOOR_I])
    mq = np.int64(i32[r * IN_I + OCRR_MIN_QTY_I])
    if reason == EXEC_REASON_NONE:
        ii = _find_inst(S[S_INST_TAB], np.int64(i32[r * IN_I + OCRR_SECURITY_I]))
        resting_tif = tif in (TIF_DAY, TIF_GTC, TIF_GTD)
        if ii < 0:
            reason = EXEC_REASON_UNKNOWN_SYMBOL
        elif side != SIDE_BUY and side != SIDE_SELL:
            reason = EXEC_REASON_INVALID_SIDE
        elif ot in (ORD_TYPE_MARKET, ORD_TYPE_STOP, ORD_TYPE_STOP_LIMIT):
            reason = EXEC_REASON_UNSUPPORTED
        elif ot != ORD_TYPE_LIMIT:
            reason = EXEC_REASON_INVALID_ORD_TYPE
        elif tif not in (TIF_DAY, TIF_GTC, TIF_IOC, TIF_FOK, TIF_GTD):
            reason = EXEC_REASON_INVALID_TIME_IN_FORCE
        elif ei & EXEC_INST_RESERVED_MASK:
            reason = EXEC_REASON_INVALID_EXEC_INST
        elif ei & EXEC_INST_ALL_OR_NONE:
            reason = EXEC_REASON_UNSUPPORTED
        elif qty < 1:
            reason = EXEC_REASON_INCORRECT_QTY
        elif qty > insts[ii].max_qty:
            reason = EXEC_REASON_QTY_OVER_MAX
        elif px == NULL_PRICE:
            reason = EXEC_REASON_PRICE_REQUIRED
        elif px % insts[ii].tick != 0:
            reason = EXEC_REASON_PRICE_OFF_TICK
        elif mq != NULL_U32:
            reason = EXEC_REASON_UNSUPPORTED
        elif mf == 0:
            reason = EXEC_REASON_INVALID_MAX_FLOOR
        elif ((ei & EXEC_INST_POST_ONLY) or mf != NULL_U32) and not resting_tif:
            reason = EXEC_REASON_UNSUPPORTED
    s = -1
    if reason == EXEC_REASON_NONE:
        s = _find_clordid(S[S_PTRS], sess, orig)
        if s < 0 or orders[s].inst != ii or orders[s].side != side - SIDE_BUY:
            reason = EXEC_REASON_UNKNOWN_ORDER
            s = -1
        elif orders[s].session != sess and orders[s].account != i32[r * IN_I + IN_SESSION_ACCOUNT_I]:
            reason = EXEC_REASON_OTHER_ACCOUNT
            s = -1
        elif (
            orders[s].ord_type != ORD_TYPE_LIMIT
            or orders[s].tif != tif
            or orders[s].post_only != (ei & EXEC_INST_POST_ONLY)
        ):
            reason = EXEC_REASON_UNSUPPORTED
    rule = 0
    price = 0
    disp = np.int64(0)
    if reason == EXEC_REASON_NONE:
        price = px // insts[ii].tick
        disp = mf if mf != NULL_U32 else np.int64(0)
        cum = np.int64(orders[s].cum)
        matching = _matches_on_entry(insts, ii)
        sd = orders[s].side
        if cum >= qty:
            rule = 2
        elif price == orders[s].price and disp == orders[s].display and qty <= orders[s].qty:
            rule = 3
        else:
            rule = 4
        ph = insts[ii].phase
        if ph in (PHASE_CLOSED, PHASE_HALTED):
            reason = EXEC_REASON_TRADING_STATE_NOT_OPEN
        elif orders[s].tif == TIF_GTD and np.int64(orders[s].expire) < _day_of(t):
            reason = EXEC_REASON_INVALID_EXPIRE_DATE
        elif not _band_ok(insts, ii, price):
            reason = EXEC_REASON_PRICE_OUTSIDE_BAND
        elif not _notional_ok(insts, ii, qty, price):
            reason = EXEC_REASON_NOTIONAL_OVER_MAX
        elif rule == 4 and (
            ctr[C_LEVELS] >= cfg[G_MAX_LEVELS]
            or sides[2 * ii + sd].lots - np.int64(orders[s].leaves) + (qty - cum) > QTY_LIMIT
        ):
            reason = EXEC_REASON_CAPACITY_FULL
        elif orders[s].post_only and matching:
            opp = _best_level(S, 2 * ii + 1 - sd)
            if opp >= 0 and _crosses(sd, levels[opp].price, price):
                reason = EXEC_REASON_POST_ONLY_WOULD_CROSS
    return reason, ii, s, rule, price, disp


@njit(_nrt=False)
def _replace(P, r, t, reason, ii, s, rule, price, disp):
    """OrderCancelReplaceRequest (ENGINE.md §3.8), given its :func:`_replace_verdict`."""
    S = state(P)
    O = _views(S[S_OUT])
    I = _views(S[S_IN])
    ctr = S[S_CTR]
    orders = S[S_ORDERS]
    levels = S[S_LEVELS]
    insts = S[S_INSTS]
    sides = S[S_SIDES]
    i64, i32, _i16, _i8 = I
    sess = i32[r * IN_I + IN_SESSION_I]
    clordid = np.uint64(i64[r * IN_Q + IN_CLORDID_Q])
    orig = np.uint64(i64[r * IN_Q + OCRR_ORIG_CLORDID_Q])
    qty = np.int64(i32[r * IN_I + OCRR_QTY_I])
    px = i64[r * IN_Q + OCRR_PRICE_Q]
    if reason != EXEC_REASON_DUPLICATE_CLORDID:
        S[S_LAST_CL][sess] = clordid  # §1.2 rule 4: even if the request is then rejected
    if reason != EXEC_REASON_NONE:
        # one writer for both lookups' outcomes, for the cold compile's sake
        rej_oid = np.int64(-1)
        rej_status = ORD_STATUS_REJECTED
        if s >= 0:
            rej_oid = orders[s].order_id
            rej_status = _status_of(orders, s)
        _w_ocr(S, O, clordid, t, rej_oid, orig, rej_status, CXL_REJ_RESPONSE_TO_REPLACE, reason, sess)
        return
    _chain_begin(S, ii)
    sec = insts[ii].sec_id
    tick = insts[ii].tick
    # Every rule falls through to the one end-of-event block below: each inlined copy of
    # it cost the cold compile seconds, and the paths write nothing after it.
    if rule == 2:
        _cancel_one(
            S,
            O,
            s,
            t,
            clordid,
            EXEC_REASON_USER_REQUEST,
            np.int64(sess),
            EXEC_TYPE_CANCELED,
            ORD_STATUS_CANCELED,
        )
    else:
        # the request's ClOrdID becomes the order's
        _index_set_clordid(S[S_PTRS], s, clordid)
        cum = np.int64(orders[s].cum)
        old_leaves = np.int64(orders[s].leaves)
        new_leaves = qty - cum
        sd = orders[s].side
        insts[ii].lots += new_leaves - old_leaves
        sides[2 * ii + sd].lots += new_leaves - old_leaves
        orders[s].qty = qty
        orders[s].leaves = new_leaves
        old_oid = orders[s].order_id
        # rule 3 keeps the order's place and OrderID; rule 4 loses priority, new OrderID
        oid = old_oid
        if rule != 3:
            oid = ctr[C_NEXT_OID]
            ctr[C_NEXT_OID] += 1
        # the report first: nothing below writes output before it
        _w_er(
            S,
            O,
            clordid,
            t,
            oid,
            px,
            qty,
            new_leaves,
            EXEC_TYPE_REPLACED,
            _status_of(orders, s),
            EXEC_REASON_NONE,
            LIQUIDITY_NONE,
            orders[s].session,
        )
        if rule == 3:
            old_shown = np.int64(orders[s].shown)
            new_shown = min(old_shown, new_leaves)
            if new_shown != old_shown:
                lv = orders[s].level
                _touch(S, lv)
                orders[s].shown = new_shown
                levels[lv].total -= old_shown - new_shown
                _w_reduced(S, O, t, sec, oid, old_shown - new_shown, new_shown)
        else:
            _unlink(S, s)
            _index_set_order_id(S[S_PTRS], s, oid)
            orders[s].price = price
            orders[s].display = disp
            orders[s].shown = min(disp, new_leaves) if disp > 0 else new_leaves
            crosses = False
            if _matches_on_entry(insts, ii):
                opp = _best_level(S, 2 * ii + 1 - sd)
                crosses = opp >= 0 and _crosses(sd, levels[opp].price, price)
            if not crosses:
                lv = _level_get(S, ii, sd, price)
                _link_tail(S, s, lv)
                _w_replace(S, O, t, sec, old_oid, oid, price * tick, orders[s].shown, sd)
            else:
                _w_delete(S, O, t, sec, old_oid)
                # It matches as a taker: take it off the book's accounting, then rest any
                # remainder.
                _index_remove(S[S_PTRS], s)
                insts[ii].n_orders -= 1
                insts[ii].lots -= new_leaves
                sides[2 * ii + sd].lots -= new_leaves
                ctr[C_RESTING] -= 1
                _match(S[S_PTRS], s, price, t)
                _remainder(S, O, s, t, True)
    _chain_end(S, O, ii, t)


@njit(_nrt=False, inline="always")
def _mass_check(S, I, r):
    """Checks 1-2 of an OrderMassCancelRequest without side effects: (reason, inst, side)."""
    i64, i32, _i16, i8 = I
    sess = i32[r * IN_I + IN_SESSION_I]
    clordid = np.uint64(i64[r * IN_Q + IN_CLORDID_Q])
    if clordid <= S[S_LAST_CL][sess]:
        return EXEC_REASON_DUPLICATE_CLORDID, -1, -1
    c = r * IN_B
    mtype = i8[c + OMC_TYPE_B]
    side = i8[c + OMC_SIDE_B]
    sec = np.int64(i32[r * IN_I + OMC_SECURITY_I])
    if mtype != MASS_CANCEL_TYPE_SECURITY and mtype != MASS_CANCEL_TYPE_ALL:
        return EXEC_REASON_INVALID_MASS_CANCEL_REQUEST, -1, -1
    if (mtype == MASS_CANCEL_TYPE_SECURITY) == (sec == NULL_U32):
        return EXEC_REASON_INVALID_MASS_CANCEL_REQUEST, -1, -1
    ii = -1
    if sec != NULL_U32:
        ii = _find_inst(S[S_INST_TAB], sec)
        if ii < 0:
            return EXEC_REASON_UNKNOWN_SYMBOL, -1, -1
    if side != MASS_CANCEL_SIDE_BOTH and side != SIDE_BUY and side != SIDE_SELL:
        return EXEC_REASON_INVALID_SIDE, -1, -1
    sf = -1 if side == MASS_CANCEL_SIDE_BOTH else np.int64(side) - SIDE_BUY
    return EXEC_REASON_NONE, ii, sf


@njit(_nrt=False)
def _mass(P, r, t, reason, ii, sf, n):
    """OrderMassCancelRequest (ENGINE.md §3.9) with its ``n`` orders already collected."""
    S = state(P)
    O = _views(S[S_OUT])
    I = _views(S[S_IN])
    i64, i32, _i16, i8 = I
    sess = i32[r * IN_I + IN_SESSION_I]
    clordid = np.uint64(i64[r * IN_Q + IN_CLORDID_Q])
    if reason != EXEC_REASON_DUPLICATE_CLORDID:
        S[S_LAST_CL][sess] = clordid
    c = r * IN_B
    mtype = i8[c + OMC_TYPE_B]
    if reason != EXEC_REASON_NONE:
        _w_omcr(
            S,
            O,
            clordid,
            t,
            0,
            i32[r * IN_I + OMC_SECURITY_I],
            mtype,
            MASS_CANCEL_RESPONSE_REJECTED,
            reason,
            i32[r * IN_I + OMC_ACCOUNT_I],
            i8[c + OMC_SIDE_B],
            sess,
        )
        return
    _w_omcr(
        S,
        O,
        clordid,
        t,
        n,
        i32[r * IN_I + OMC_SECURITY_I],
        mtype,
        mtype,
        EXEC_REASON_NONE,
        i32[r * IN_I + OMC_ACCOUNT_I],
        i8[c + OMC_SIDE_B],
        sess,
    )
    _bulk_typed(S[S_PTRS], n, t, EXEC_REASON_MASS_CANCEL, EXEC_TYPE_CANCELED, ORD_STATUS_CANCELED)
