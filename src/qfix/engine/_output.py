"""Output record writers and the end-of-event block of a chain.

Theory of operation: each writer reserves the next record of the caller's OUTPUT buffer,
zeroes it and stores each field at its word index from ``_layout`` (derived from
``qfix.wire.schema``), so the bytes are exactly what the wire codec would produce and no
structured-dtype access runs per record. A writer past the buffer sets ``C_ERR`` and
writes nothing: the bound U makes that impossible, so it flags a bug instead of
corrupting memory. ExecIDs are taken at write time, so the order of writes is the order of
ExecIDs.

Chains: before an event changes an instrument, :func:`_chain_begin` records its best bid
and offer; every level the chain changes was touched (``_levels._touch``). At the end,
:func:`_chain_end` emits a BookLevel per changed level (bids high to low, then offers low
to high) and a BestBidOffer if the top moved. ``C_LAST_MD``/``C_LAST_TRADE`` remember
where the instrument's last MD and Trade records went so the MatchEventIndicator bits are
patched in at the end, without a second pass over the chain.
"""

# Kernel signatures are inferred by Numba from the state dtypes; annotating them would be
# decorative, so the kernel modules relax mypy's untyped-def rules.
# mypy: allow-untyped-defs, allow-incomplete-defs, allow-untyped-calls

from __future__ import annotations

import numpy as np

from qfix.engine._common import (
    _sort_pairs,
    _views,
    njit,
)
from qfix.engine._ladder import _best_level
from qfix.engine._layout import (
    ADD_ENTRY_TYPE_B,
    ADD_ORDER_ID_Q,
    ADD_PX_Q,
    ADD_SIZE_I,
    BBO_BID_PX_Q,
    BBO_BID_SIZE_Q,
    BBO_OFFER_PX_Q,
    BBO_OFFER_SIZE_Q,
    BL_ACTION_B,
    BL_COUNT_I,
    BL_ENTRY_TYPE_B,
    BL_PX_Q,
    BL_SIZE_Q,
    CXL_CLORDID_Q,
    CXL_EXEC_ID_Q,
    CXL_EXEC_REASON_B,
    CXL_ORD_STATUS_B,
    CXL_ORDER_ID_Q,
    CXL_ORIG_CLORDID_Q,
    CXL_REASON_B,
    CXL_RESPONSE_TO_B,
    CXL_TIME_Q,
    DEL_ORDER_ID_Q,
    ER_CLORDID_Q,
    ER_EXEC_ID_Q,
    ER_EXEC_REASON_B,
    ER_EXEC_TYPE_B,
    ER_LAST_PX_Q,
    ER_LAST_QTY_I,
    ER_LEAVES_I,
    ER_LIQUIDITY_B,
    ER_ORD_STATUS_B,
    ER_ORDER_ID_Q,
    ER_TIME_Q,
    EXE_AGGRESSOR_B,
    EXE_LEAVES_I,
    EXE_ORDER_ID_Q,
    EXE_PX_Q,
    EXE_QTY_I,
    EXE_TRADE_ID_Q,
    HDR_BLOCK_LENGTH_H,
    HDR_SCHEMA_ID_H,
    HDR_TEMPLATE_ID_H,
    MD_MEI_B,
    MD_SECURITY_I,
    MD_TIME_Q,
    OMCR_ACCOUNT_I,
    OMCR_CLORDID_Q,
    OMCR_EXEC_ID_Q,
    OMCR_EXEC_REASON_B,
    OMCR_REJECT_REASON_B,
    OMCR_RESPONSE_B,
    OMCR_SECURITY_I,
    OMCR_SIDE_B,
    OMCR_TIME_Q,
    OMCR_TOTAL_I,
    OMCR_TYPE_B,
    OUT_B,
    OUT_DEST_I,
    OUT_H,
    OUT_I,
    OUT_Q,
    RED_CANCELED_I,
    RED_LEAVES_I,
    RED_ORDER_ID_Q,
    RPL_ENTRY_TYPE_B,
    RPL_ORDER_ID_Q,
    RPL_ORIG_ORDER_ID_Q,
    RPL_PX_Q,
    RPL_SIZE_I,
    TRD_AGGRESSOR_B,
    TRD_CONDITION_B,
    TRD_PX_Q,
    TRD_QTY_I,
    TRD_TRADE_ID_Q,
)
from qfix.engine._state import state
from qfix.engine.types import (
    C_BA_PX,
    C_BA_SZ,
    C_BB_PX,
    C_BB_SZ,
    C_CAP,
    C_ERR,
    C_LAST_MD,
    C_LAST_TRADE,
    C_NEXT_EXEC,
    C_NTOUCH,
    C_W,
    ERR_OUTPUT_BOUND,
    NO_PRICE,
    S_CTR,
    S_INSTS,
    S_LEVELS,
    S_OUT,
    S_PTRS,
    S_TOUCHED,
    S_WIDE,
    T_CNT,
    T_LV,
    T_PX,
    T_SIDE,
    T_SIZE,
)
from qfix.wire.codes import (
    BLOCK_LENGTH,
    CXL_REJ_REASON_OTHER,
    CXL_REJ_REASON_PRICE_BAND,
    CXL_REJ_REASON_PRICE_INCREMENT,
    CXL_REJ_REASON_UNKNOWN_ORDER,
    EXEC_REASON_NONE,
    EXEC_REASON_PRICE_OFF_TICK,
    EXEC_REASON_PRICE_OUTSIDE_BAND,
    EXEC_REASON_UNKNOWN_ORDER,
    EXEC_REASON_UNKNOWN_SYMBOL,
    MASS_CANCEL_REJECT_NONE,
    MASS_CANCEL_REJECT_OTHER,
    MASS_CANCEL_REJECT_UNKNOWN_SECURITY,
    MD_DEST,
    MD_ENTRY_BID,
    MD_UPDATE_CHANGE,
    MD_UPDATE_DELETE,
    MD_UPDATE_NEW,
    MEI_END_OF_EVENT,
    MEI_LAST_TRADE_MSG,
    NULL_PRICE,
    SCHEMA_MARKET_DATA,
    SCHEMA_ORDER_ENTRY,
    TEMPLATE_ADD_ORDER,
    TEMPLATE_BEST_BID_OFFER,
    TEMPLATE_BOOK_LEVEL,
    TEMPLATE_EXECUTION_REPORT,
    TEMPLATE_ORDER_CANCEL_REJECT,
    TEMPLATE_ORDER_DELETE,
    TEMPLATE_ORDER_EXECUTED,
    TEMPLATE_ORDER_MASS_CANCEL_REPORT,
    TEMPLATE_ORDER_REDUCED,
    TEMPLATE_ORDER_REPLACE,
    TEMPLATE_TRADE,
)


@njit(_nrt=False, inline="always")
def _new_record(S, O, tid, schema, dest):
    """Reserve and zero one output record; returns its index or -1 past the buffer."""
    ctr = S[S_CTR]
    o64, o32, o16, _o8 = O
    r = ctr[C_W]
    if r >= ctr[C_CAP]:
        ctr[C_ERR] = ERR_OUTPUT_BOUND
        return -1
    ctr[C_W] = r + 1
    b = r * OUT_Q
    for k in range(OUT_Q):
        o64[b + k] = 0
    h = r * OUT_H
    o16[h + HDR_BLOCK_LENGTH_H] = BLOCK_LENGTH
    o16[h + HDR_TEMPLATE_ID_H] = tid
    o16[h + HDR_SCHEMA_ID_H] = schema
    o32[r * OUT_I + OUT_DEST_I] = dest
    return r


@njit(_nrt=False, inline="always")
def _w_er(S, O, clordid, t, oid, px9, last_qty, leaves, exec_type, status, reason, lli, dest):
    """ExecutionReport; takes the next ExecID."""
    ctr = S[S_CTR]
    o64, o32, _o16, o8 = O
    r = _new_record(S, O, TEMPLATE_EXECUTION_REPORT, SCHEMA_ORDER_ENTRY, dest)
    if r < 0:
        return r
    b = r * OUT_Q
    o64[b + ER_CLORDID_Q] = np.int64(clordid)
    o64[b + ER_TIME_Q] = t
    o64[b + ER_ORDER_ID_Q] = oid
    o64[b + ER_EXEC_ID_Q] = ctr[C_NEXT_EXEC]
    ctr[C_NEXT_EXEC] += 1
    o64[b + ER_LAST_PX_Q] = px9
    o32[r * OUT_I + ER_LAST_QTY_I] = last_qty
    o32[r * OUT_I + ER_LEAVES_I] = leaves
    c = r * OUT_B
    o8[c + ER_EXEC_TYPE_B] = exec_type
    o8[c + ER_ORD_STATUS_B] = status
    o8[c + ER_EXEC_REASON_B] = reason
    o8[c + ER_LIQUIDITY_B] = lli
    return r


@njit(_nrt=False, inline="always")
def _copy_record(S, O, src, dest):
    """Repeat record ``src`` (same ExecID) for another destination (ENGINE.md §2.4)."""
    ctr = S[S_CTR]
    o64, o32, _o16, _o8 = O
    r = ctr[C_W]
    if r >= ctr[C_CAP]:
        ctr[C_ERR] = ERR_OUTPUT_BOUND
        return
    ctr[C_W] = r + 1
    for k in range(OUT_Q):
        o64[r * OUT_Q + k] = o64[src * OUT_Q + k]
    o32[r * OUT_I + OUT_DEST_I] = dest


@njit(_nrt=False, inline="always")
def _w_ocr(S, O, clordid, t, oid, orig, status, response_to, reason, dest):
    """OrderCancelReject."""
    ctr = S[S_CTR]
    o64, _o32, _o16, o8 = O
    r = _new_record(S, O, TEMPLATE_ORDER_CANCEL_REJECT, SCHEMA_ORDER_ENTRY, dest)
    if r < 0:
        return
    b = r * OUT_Q
    o64[b + CXL_CLORDID_Q] = np.int64(clordid)
    o64[b + CXL_TIME_Q] = t
    o64[b + CXL_ORDER_ID_Q] = oid
    o64[b + CXL_EXEC_ID_Q] = ctr[C_NEXT_EXEC]
    ctr[C_NEXT_EXEC] += 1
    o64[b + CXL_ORIG_CLORDID_Q] = np.int64(orig)
    c = r * OUT_B
    o8[c + CXL_ORD_STATUS_B] = status
    o8[c + CXL_RESPONSE_TO_B] = response_to
    if reason == EXEC_REASON_UNKNOWN_ORDER:
        o8[c + CXL_REASON_B] = CXL_REJ_REASON_UNKNOWN_ORDER
    elif reason == EXEC_REASON_PRICE_OUTSIDE_BAND:
        o8[c + CXL_REASON_B] = CXL_REJ_REASON_PRICE_BAND
    elif reason == EXEC_REASON_PRICE_OFF_TICK:
        o8[c + CXL_REASON_B] = CXL_REJ_REASON_PRICE_INCREMENT
    else:
        o8[c + CXL_REASON_B] = CXL_REJ_REASON_OTHER
    o8[c + CXL_EXEC_REASON_B] = reason


@njit(_nrt=False, inline="always")
def _w_omcr(S, O, clordid, t, total, sec_raw, mtype, response, reason, account_raw, side, dest):
    """OrderMassCancelReport."""
    ctr = S[S_CTR]
    o64, o32, _o16, o8 = O
    r = _new_record(S, O, TEMPLATE_ORDER_MASS_CANCEL_REPORT, SCHEMA_ORDER_ENTRY, dest)
    if r < 0:
        return
    b = r * OUT_Q
    o64[b + OMCR_CLORDID_Q] = np.int64(clordid)
    o64[b + OMCR_TIME_Q] = t
    o64[b + OMCR_EXEC_ID_Q] = ctr[C_NEXT_EXEC]
    ctr[C_NEXT_EXEC] += 1
    o32[r * OUT_I + OMCR_TOTAL_I] = total
    o32[r * OUT_I + OMCR_SECURITY_I] = sec_raw
    c = r * OUT_B
    o8[c + OMCR_TYPE_B] = mtype
    o8[c + OMCR_RESPONSE_B] = response
    if reason == EXEC_REASON_NONE:
        o8[c + OMCR_REJECT_REASON_B] = MASS_CANCEL_REJECT_NONE
    elif reason == EXEC_REASON_UNKNOWN_SYMBOL:
        o8[c + OMCR_REJECT_REASON_B] = MASS_CANCEL_REJECT_UNKNOWN_SECURITY
    else:
        o8[c + OMCR_REJECT_REASON_B] = MASS_CANCEL_REJECT_OTHER
    o8[c + OMCR_EXEC_REASON_B] = reason
    o32[r * OUT_I + OMCR_ACCOUNT_I] = account_raw
    o8[c + OMCR_SIDE_B] = side


@njit(_nrt=False, inline="always")
def _md(S, O, tid, t, sec_id):
    """Start an MD record (template ``tid``) and remember it as the chain's last MD."""
    o64, o32, _o16, _o8 = O
    r = _new_record(S, O, tid, SCHEMA_MARKET_DATA, MD_DEST)
    if r < 0:
        return r
    o64[r * OUT_Q + MD_TIME_Q] = t
    o32[r * OUT_I + MD_SECURITY_I] = sec_id
    S[S_CTR][C_LAST_MD] = r
    return r


@njit(_nrt=False, inline="always")
def _w_add(S, O, t, sec_id, oid, px9, size, side):
    o64, o32, _o16, o8 = O
    r = _md(S, O, TEMPLATE_ADD_ORDER, t, sec_id)
    if r < 0:
        return
    o64[r * OUT_Q + ADD_ORDER_ID_Q] = oid
    o64[r * OUT_Q + ADD_PX_Q] = px9
    o32[r * OUT_I + ADD_SIZE_I] = size
    o8[r * OUT_B + ADD_ENTRY_TYPE_B] = MD_ENTRY_BID + side


@njit(_nrt=False, inline="always")
def _w_executed(S, O, t, sec_id, oid, px9, qty, leaves, trade_id, aggressor):
    o64, o32, _o16, o8 = O
    r = _md(S, O, TEMPLATE_ORDER_EXECUTED, t, sec_id)
    if r < 0:
        return
    o64[r * OUT_Q + EXE_ORDER_ID_Q] = oid
    o64[r * OUT_Q + EXE_PX_Q] = px9
    o32[r * OUT_I + EXE_QTY_I] = qty
    o32[r * OUT_I + EXE_LEAVES_I] = leaves
    o64[r * OUT_Q + EXE_TRADE_ID_Q] = trade_id
    o8[r * OUT_B + EXE_AGGRESSOR_B] = aggressor


@njit(_nrt=False, inline="always")
def _w_reduced(S, O, t, sec_id, oid, canceled, leaves):
    o64, o32, _o16, _o8 = O
    r = _md(S, O, TEMPLATE_ORDER_REDUCED, t, sec_id)
    if r < 0:
        return
    o64[r * OUT_Q + RED_ORDER_ID_Q] = oid
    o32[r * OUT_I + RED_CANCELED_I] = canceled
    o32[r * OUT_I + RED_LEAVES_I] = leaves


@njit(_nrt=False, inline="always")
def _w_delete(S, O, t, sec_id, oid):
    o64, _o32, _o16, _o8 = O
    r = _md(S, O, TEMPLATE_ORDER_DELETE, t, sec_id)
    if r < 0:
        return
    o64[r * OUT_Q + DEL_ORDER_ID_Q] = oid


@njit(_nrt=False, inline="always")
def _w_replace(S, O, t, sec_id, orig_oid, oid, px9, size, side):
    o64, o32, _o16, o8 = O
    r = _md(S, O, TEMPLATE_ORDER_REPLACE, t, sec_id)
    if r < 0:
        return
    o64[r * OUT_Q + RPL_ORIG_ORDER_ID_Q] = orig_oid
    o64[r * OUT_Q + RPL_ORDER_ID_Q] = oid
    o64[r * OUT_Q + RPL_PX_Q] = px9
    o32[r * OUT_I + RPL_SIZE_I] = size
    o8[r * OUT_B + RPL_ENTRY_TYPE_B] = MD_ENTRY_BID + side


@njit(_nrt=False, inline="always")
def _w_trade(S, O, t, sec_id, trade_id, px9, qty, aggressor, condition):
    o64, o32, _o16, o8 = O
    r = _md(S, O, TEMPLATE_TRADE, t, sec_id)
    if r < 0:
        return
    o64[r * OUT_Q + TRD_TRADE_ID_Q] = trade_id
    o64[r * OUT_Q + TRD_PX_Q] = px9
    o32[r * OUT_I + TRD_QTY_I] = qty
    o8[r * OUT_B + TRD_AGGRESSOR_B] = aggressor
    o8[r * OUT_B + TRD_CONDITION_B] = condition
    S[S_CTR][C_LAST_TRADE] = r


@njit(_nrt=False, inline="always")
def _chain_begin(S, ii):
    """Remember instrument ``ii``'s best bid/offer at the start of its part of a chain."""
    ctr = S[S_CTR]
    levels = S[S_LEVELS]
    b = _best_level(S, 2 * ii)
    a = _best_level(S, 2 * ii + 1)
    if b >= 0:
        ctr[C_BB_PX] = levels[b].price
        ctr[C_BB_SZ] = levels[b].total
    else:
        ctr[C_BB_PX] = NO_PRICE
        ctr[C_BB_SZ] = 0
    if a >= 0:
        ctr[C_BA_PX] = levels[a].price
        ctr[C_BA_SZ] = levels[a].total
    else:
        ctr[C_BA_PX] = NO_PRICE
        ctr[C_BA_SZ] = 0
    ctr[C_LAST_MD] = -1
    ctr[C_LAST_TRADE] = -1
    ctr[C_NTOUCH] = 0


@njit(_nrt=False, inline="always")
def _chain_end(S, O, ii, t):
    """End-of-event block of instrument ``ii``, then its MatchEventIndicator bits."""
    _chain_end_call(S[S_PTRS], np.int64(ii), np.int64(t))


@njit(_nrt=False)
def _chain_end_call(P, ii, t):
    """:func:`_chain_end`'s body: a call, compiled once, where inlined into the handlers
    (seven copies, four of them in ``_replace``) it cost the cold compile seconds; it runs
    once per accepted message. Inlining it again into the three message handlers made
    the compile 6 s longer and no path measurably faster (``qfix bench paths``, two
    alternating pairs, within their 5% spread)."""
    S = state(P)
    O = _views(S[S_OUT])
    _eoe_block(S, O, ii, t)
    _mark_event_end(S, O)


@njit(_nrt=False, inline="always")
def _mark_event_end(S, O):
    """EndOfEvent on the instrument's last MD record of the chain, LastTradeMsg on its last
    Trade. Separate from the block because a phase change's SecurityStatus comes after the
    block and is then the last MD record."""
    ctr = S[S_CTR]
    o8 = O[3]
    if ctr[C_LAST_MD] >= 0:
        o8[ctr[C_LAST_MD] * OUT_B + MD_MEI_B] |= MEI_END_OF_EVENT
    if ctr[C_LAST_TRADE] >= 0:
        o8[ctr[C_LAST_TRADE] * OUT_B + MD_MEI_B] |= MEI_LAST_TRADE_MSG
    ctr[C_LAST_MD] = -1
    ctr[C_LAST_TRADE] = -1


@njit(_nrt=False, inline="always")
def _eoe_block(S, O, ii, t):
    """BookLevel per changed level of instrument ``ii`` (bids high to low, then offers low
    to high), then BestBidOffer if the top moved."""
    ctr = S[S_CTR]
    levels = S[S_LEVELS]
    insts = S[S_INSTS]
    o64, o32, _o16, o8 = O
    nt = ctr[C_NTOUCH]
    sec = insts[ii].sec_id
    tick = insts[ii].tick
    if nt > 0:
        t_lv = S[S_TOUCHED][T_LV]
        t_px = S[S_TOUCHED][T_PX]
        t_side = S[S_TOUCHED][T_SIDE]
        t_size = S[S_TOUCHED][T_SIZE]
        t_cnt = S[S_TOUCHED][T_CNT]
        # bids by descending price, then offers ascending
        keys = S[S_WIDE][0]
        idx = S[S_WIDE][1]
        nb = 0
        for k in range(nt):
            if t_side[k] == 0:
                nb += 1
        pb = 0
        pa = nb
        for k in range(nt):
            if t_side[k] == 0:
                idx[pb] = k
                keys[pb] = -t_px[k]
                pb += 1
            else:
                idx[pa] = k
                keys[pa] = t_px[k]
                pa += 1
        _sort_pairs(keys, idx, 0, nb)
        _sort_pairs(keys, idx, nb, nt)
        for q in range(nt):
            k = idx[q]
            lv = t_lv[k]
            if lv >= 0:
                nsize = levels[lv].total
                ncnt = np.int64(levels[lv].count)
                levels[lv].touch = -1
            else:
                nsize = np.int64(0)
                ncnt = np.int64(0)
            osize = t_size[k]
            ocnt = t_cnt[k]
            if osize == nsize and ocnt == ncnt:
                continue
            if ocnt == 0:
                action = MD_UPDATE_NEW
            elif ncnt == 0:
                action = MD_UPDATE_DELETE
            else:
                action = MD_UPDATE_CHANGE
            r = _md(S, O, TEMPLATE_BOOK_LEVEL, t, sec)
            if r < 0:
                continue
            o64[r * OUT_Q + BL_PX_Q] = t_px[k] * tick
            o64[r * OUT_Q + BL_SIZE_Q] = nsize
            o32[r * OUT_I + BL_COUNT_I] = ncnt
            o8[r * OUT_B + BL_ENTRY_TYPE_B] = MD_ENTRY_BID + t_side[k]
            o8[r * OUT_B + BL_ACTION_B] = action
        ctr[C_NTOUCH] = 0
    b = _best_level(S, 2 * ii)
    a = _best_level(S, 2 * ii + 1)
    bpx = NO_PRICE
    bsz = 0
    apx = NO_PRICE
    asz = 0
    if b >= 0:
        bpx = levels[b].price
        bsz = levels[b].total
    if a >= 0:
        apx = levels[a].price
        asz = levels[a].total
    if bpx != ctr[C_BB_PX] or bsz != ctr[C_BB_SZ] or apx != ctr[C_BA_PX] or asz != ctr[C_BA_SZ]:
        r = _md(S, O, TEMPLATE_BEST_BID_OFFER, t, sec)
        if r >= 0:
            o64[r * OUT_Q + BBO_BID_PX_Q] = bpx * tick if bpx != NO_PRICE else NULL_PRICE
            o64[r * OUT_Q + BBO_OFFER_PX_Q] = apx * tick if apx != NO_PRICE else NULL_PRICE
            o64[r * OUT_Q + BBO_BID_SIZE_Q] = bsz
            o64[r * OUT_Q + BBO_OFFER_SIZE_Q] = asz
