"""Continuous-trading kernels of the fast engine (ENGINE.md §2-§4).

Theory of operation
-------------------
The host packs the whole engine state into one tuple ``S`` of preallocated arrays (see
``qfix.engine.types`` and ``Engine.__init__``) and hands the caller's OUTPUT buffer and
INBOUND batch over as byte arrays; :func:`_views` reinterprets each as int64, uint32,
uint16 and uint8 so every field is one aligned little-endian store. One call of
:func:`process` runs a whole batch.

Compilation: the five entry points (:func:`process`, :func:`command_bulk`,
:func:`set_phase`, :func:`relink`, :func:`check_invariants`) are ``cache=True``; the
helpers are compiled into them. Everything runs with ``_nrt=False``: no kernel allocates
(scratch arrays come from the host, sorting is an in-place heap sort), so Numba's
per-call atomic reference counting of every array argument is switched off. Small and
medium helpers are ``inline="always"`` because a call passing ``S`` passes every array
descriptor in it; the per-message handlers stay calls to keep cold compiles short. All
kernels live in this one module because Numba's cache only watches the file of the
cached function itself.

Book: a level is a FIFO of order slots linked through ``prev``/``next``. Each
instrument side keeps its occupied levels in a sorted segment of the shared pools
(``pool_key``, ``pool_lv``), best level *last*, so taking or removing the best level is
O(1) and inserting a level moves only the levels better than it (the common passive
case sits near the touch). Keys are ``price`` for bids and ``-price`` for offers, so both
segments sort ascending. Segments grow by 1.5x from a bump pointer; when the pool is
exhausted every segment is repacked, which the pool size (4 x MaxLevels plus slack)
always makes room for, so the pool can never fill before the logical level limit.

Indices: OrderID and (SessionID, ClOrdID) map to slots through linear-probing tables
holding only slot numbers (keys are read back from the order record), with
backward-shift deletion, so no tombstones accumulate.

Chains: before an event changes an instrument the chain records its best bid/offer;
every level the chain changes is appended once to the touched list with its size and
count at the chain's start. The end-of-event block compares those with the final
values. ``C_LAST_MD``/``C_LAST_TRADE`` remember where the instrument's last MD and Trade
records went so the MatchEventIndicator bits are patched in at the end.

Bounds: :func:`process` computes ENGINE.md §2.4's bound U before each record and stops
with OUTPUT_FULL when the free space is smaller; the writers additionally refuse to write
past the buffer (setting ``C_ERR``), so a wrong bound can never corrupt memory.
"""

# Kernel signatures are inferred by Numba from the state dtypes; annotating them would be
# decorative, so only this module relaxes mypy's untyped-def rules.
# mypy: allow-untyped-defs, allow-incomplete-defs, allow-untyped-calls

from __future__ import annotations

from typing import Any

import numba
import numpy as np

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
    HDR_VERSION_H,
    IN_B,
    IN_CLORDID_Q,
    IN_H,
    IN_I,
    IN_Q,
    IN_RECV_TIME_Q,
    IN_SESSION_ACCOUNT_I,
    IN_SESSION_I,
    MD_MEI_B,
    MD_SECURITY_I,
    MD_TIME_Q,
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
    SS_HALT_REASON_B,
    SS_STATUS_B,
    TRD_AGGRESSOR_B,
    TRD_CONDITION_B,
    TRD_PX_Q,
    TRD_QTY_I,
    TRD_TRADE_ID_Q,
)
from qfix.engine.config import (
    PHASE_CLOSED,
    PHASE_CONTINUOUS,
    PHASE_HALTED,
    PHASE_PRE_CLOSE,
    PHASE_PRE_OPEN,
)
from qfix.engine.types import (
    BULK_ACCOUNTS,
    BULK_EXPIRE,
    BULK_MASS_CANCEL,
    BULK_SESSIONS,
    C_BA_PX,
    C_BA_SZ,
    C_BB_PX,
    C_BB_SZ,
    C_CAP,
    C_ERR,
    C_LAST_MD,
    C_LAST_TIME,
    C_LAST_TRADE,
    C_LEVELS,
    C_LFREE,
    C_LHW,
    C_LIVE,
    C_NEXT_EXEC,
    C_NEXT_OID,
    C_NEXT_PRIO,
    C_NEXT_TRADE,
    C_NTOUCH,
    C_OFREE,
    C_OHW,
    C_POOL_TOP,
    C_RESTING,
    C_W,
    ERR_OUTPUT_BOUND,
    ERR_POOL,
    G_CL_BITS,
    G_MAX_LEVELS,
    G_MAX_ORDERS,
    G_MAX_SESSIONS,
    G_OID_BITS,
    G_POOL_SIZE,
    NO_PRICE,
    S_CFG,
    S_CL_TAB,
    S_CTR,
    S_INSTS,
    S_LAST_CL,
    S_LEVELS,
    S_MAP_ACC,
    S_MAP_GRP,
    S_NARROW0,
    S_NARROW1,
    S_OID_TAB,
    S_ORDERS,
    S_POOL_KEY,
    S_POOL_LV,
    S_SCRATCH,
    S_SEC_IDS,
    S_SIDES,
    S_T_CNT,
    S_T_LV,
    S_T_PX,
    S_T_SIDE,
    S_T_SIZE,
    S_WIDE0,
    S_WIDE1,
)
from qfix.wire.codes import (
    BLOCK_LENGTH,
    CXL_REJ_REASON_OTHER,
    CXL_REJ_REASON_PRICE_BAND,
    CXL_REJ_REASON_PRICE_INCREMENT,
    CXL_REJ_REASON_UNKNOWN_ORDER,
    CXL_REJ_RESPONSE_TO_CANCEL,
    CXL_REJ_RESPONSE_TO_REPLACE,
    EXEC_INST_ALL_OR_NONE,
    EXEC_INST_POST_ONLY,
    EXEC_INST_RESERVED_MASK,
    EXEC_REASON_ADMIN,
    EXEC_REASON_CANCEL_ON_DISCONNECT,
    EXEC_REASON_CAPACITY_FULL,
    EXEC_REASON_DUPLICATE_CLORDID,
    EXEC_REASON_EXPIRE_DATE_MISMATCH,
    EXEC_REASON_EXPIRED,
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
    EXEC_REASON_SELF_MATCH,
    EXEC_REASON_TRADING_STATE_NOT_OPEN,
    EXEC_REASON_UNKNOWN_ORDER,
    EXEC_REASON_UNKNOWN_SYMBOL,
    EXEC_REASON_UNSUPPORTED,
    EXEC_REASON_USER_REQUEST,
    EXEC_TYPE_CANCELED,
    EXEC_TYPE_EXPIRED,
    EXEC_TYPE_NEW,
    EXEC_TYPE_REJECTED,
    EXEC_TYPE_REPLACED,
    EXEC_TYPE_RESTATED,
    EXEC_TYPE_TRADE,
    HALT_REASON_NONE,
    HALT_REASON_OPERATOR,
    LIQUIDITY_ADDED,
    LIQUIDITY_NONE,
    LIQUIDITY_REMOVED,
    MASS_CANCEL_REJECT_NONE,
    MASS_CANCEL_REJECT_OTHER,
    MASS_CANCEL_REJECT_UNKNOWN_SECURITY,
    MASS_CANCEL_RESPONSE_REJECTED,
    MASS_CANCEL_SIDE_BOTH,
    MASS_CANCEL_TYPE_ALL,
    MASS_CANCEL_TYPE_SECURITY,
    MD_DEST,
    MD_ENTRY_BID,
    MD_UPDATE_CHANGE,
    MD_UPDATE_DELETE,
    MD_UPDATE_NEW,
    MEI_END_OF_EVENT,
    MEI_LAST_TRADE_MSG,
    NULL_DATE,
    NULL_PRICE,
    NULL_U32,
    NULL_U64,
    ORD_STATUS_CANCELED,
    ORD_STATUS_EXPIRED,
    ORD_STATUS_FILLED,
    ORD_STATUS_NEW,
    ORD_STATUS_PARTIALLY_FILLED,
    ORD_STATUS_REJECTED,
    ORD_TYPE_LIMIT,
    ORD_TYPE_MARKET,
    ORD_TYPE_STOP,
    ORD_TYPE_STOP_LIMIT,
    SCHEMA_MARKET_DATA,
    SCHEMA_ORDER_ENTRY,
    SCHEMA_VERSION,
    SIDE_BUY,
    SIDE_SELL,
    SMP_CANCEL_AGGRESSIVE,
    SMP_CANCEL_BOTH,
    SMP_CANCEL_PASSIVE,
    SMP_DEFAULT,
    TEMPLATE_ADD_ORDER,
    TEMPLATE_BEST_BID_OFFER,
    TEMPLATE_BOOK_LEVEL,
    TEMPLATE_EXECUTION_REPORT,
    TEMPLATE_NEW_ORDER_SINGLE,
    TEMPLATE_ORDER_CANCEL_REJECT,
    TEMPLATE_ORDER_CANCEL_REPLACE_REQUEST,
    TEMPLATE_ORDER_CANCEL_REQUEST,
    TEMPLATE_ORDER_DELETE,
    TEMPLATE_ORDER_EXECUTED,
    TEMPLATE_ORDER_MASS_CANCEL_REPORT,
    TEMPLATE_ORDER_MASS_CANCEL_REQUEST,
    TEMPLATE_ORDER_REDUCED,
    TEMPLATE_ORDER_REPLACE,
    TEMPLATE_SECURITY_STATUS,
    TEMPLATE_TRADE,
    TIF_DAY,
    TIF_FOK,
    TIF_GTC,
    TIF_GTD,
    TIF_IOC,
    TRADE_CONDITION_REGULAR,
    TRADING_STATUS_BATCH_AUCTION,
    TRADING_STATUS_CLOSED,
    TRADING_STATUS_CONTINUOUS,
    TRADING_STATUS_HALT,
    TRADING_STATUS_PRE_CLOSE,
    TRADING_STATUS_PRE_OPEN,
)

#: ``_nrt=False``: the kernels never allocate, so Numba's reference counting (an atomic
#: increment and decrement per array argument on every non-inlined call) is switched off.
njit: Any = numba.njit

NS_PER_DAY = 86_400_000_000_000
QTY_LIMIT = 4_294_967_295  # 2^32 - 1: open lots of a side (ENGINE.md §4 rule 2)
HASH_MUL = -7046029254386353131  # 0x9E3779B97F4A7C15 as int64
HASH_MUL2 = -4658895280553007687  # 0xBF58476D1CE4E5B9 as int64
STATUS_OK = 0
STATUS_FULL = 1
STATUS_BAD = 2  # a header or SessionID the host must refuse (nothing changed)

# ENGINE.md §2.4 bounds
U_BASE = 16


# ======================================================================================
# small helpers
# ======================================================================================


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


@njit(_nrt=False, inline="always")
def _find_inst(sec_ids, sid):
    """Index of SecurityID ``sid`` in the ascending ``sec_ids``, or -1."""
    lo = 0
    hi = sec_ids.shape[0]
    while lo < hi:
        mid = (lo + hi) >> 1
        if sec_ids[mid] < sid:
            lo = mid + 1
        else:
            hi = mid
    if lo < sec_ids.shape[0] and sec_ids[lo] == sid:
        return lo
    return -1


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


# ======================================================================================
# hash indices
# ======================================================================================


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


# ======================================================================================
# output writers (little-endian stores into the caller's OUTPUT buffer)
# ======================================================================================


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
def _w_trade(S, O, t, sec_id, trade_id, px9, qty, aggressor):
    o64, o32, _o16, o8 = O
    r = _md(S, O, TEMPLATE_TRADE, t, sec_id)
    if r < 0:
        return
    o64[r * OUT_Q + TRD_TRADE_ID_Q] = trade_id
    o64[r * OUT_Q + TRD_PX_Q] = px9
    o32[r * OUT_I + TRD_QTY_I] = qty
    o8[r * OUT_B + TRD_AGGRESSOR_B] = aggressor
    o8[r * OUT_B + TRD_CONDITION_B] = TRADE_CONDITION_REGULAR
    S[S_CTR][C_LAST_TRADE] = r


# ======================================================================================
# slots, levels, price maps
# ======================================================================================


@njit(_nrt=False, inline="always")
def _order_alloc(S):
    ctr = S[S_CTR]
    orders = S[S_ORDERS]
    s = ctr[C_OFREE]
    if s >= 0:
        ctr[C_OFREE] = orders[s].next
    else:
        s = ctr[C_OHW]
        ctr[C_OHW] = s + 1
    ctr[C_LIVE] += 1
    return s


@njit(_nrt=False, inline="always")
def _order_free(S, s):
    ctr = S[S_CTR]
    orders = S[S_ORDERS]
    orders[s].order_id = 0
    orders[s].level = -1
    orders[s].prev = -1
    orders[s].next = ctr[C_OFREE]
    ctr[C_OFREE] = s
    ctr[C_LIVE] -= 1


@njit(_nrt=False)
def _pool_grow(S, si):
    """Give side ``si`` room for one more level (1.5x growth; repack the pool if needed).

    Invariant: a repack keeps every other segment's capacity at most its old one and
    at most 2 x its size, so after it the pool holds <= 3.5 x MaxLevels + 3 entries.
    """
    ctr = S[S_CTR]
    cfg = S[S_CFG]
    sides = S[S_SIDES]
    pool_key = S[S_POOL_KEY]
    pool_lv = S[S_POOL_LV]
    size = cfg[G_POOL_SIZE]
    n = sides[si].n
    src = sides[si].off
    newcap = sides[si].cap + max(2, sides[si].cap >> 1)
    if ctr[C_POOL_TOP] + newcap <= size:
        top = ctr[C_POOL_TOP]
        for j in range(n):
            pool_key[top + j] = pool_key[src + j]
            pool_lv[top + j] = pool_lv[src + j]
        sides[si].off = top
        sides[si].cap = newcap
        ctr[C_POOL_TOP] = top + newcap
        return True
    tmp_key = S[S_NARROW0]
    tmp_lv = S[S_NARROW1]
    for j in range(n):
        tmp_key[j] = pool_key[src + j]
        tmp_lv[j] = pool_lv[src + j]
    sides[si].cap = 0
    nsides = sides.shape[0]
    offs = S[S_WIDE0]
    order = S[S_WIDE1]
    m_used = 0
    for k in range(nsides):
        if sides[k].cap > 0:
            offs[m_used] = sides[k].off
            order[m_used] = k
            m_used += 1
    _sort_pairs(offs, order, 0, m_used)
    top = 0
    for idx in range(m_used):
        k = order[idx]
        m = sides[k].n
        if m == 0:
            sides[k].cap = 0
            sides[k].off = 0
            continue
        # segments move down in offset order and never grow, so copies never overlap
        old = sides[k].off
        for j in range(m):
            pool_key[top + j] = pool_key[old + j]
            pool_lv[top + j] = pool_lv[old + j]
        sides[k].off = top
        sides[k].cap = min(sides[k].cap, m + max(1, m >> 1))
        top += sides[k].cap
    newcap = n + 1 + max(2, (n + 1) >> 1)
    if top + newcap > size:
        ctr[C_ERR] = ERR_POOL
        return False
    for j in range(n):
        pool_key[top + j] = tmp_key[j]
        pool_lv[top + j] = tmp_lv[j]
    sides[si].off = top
    sides[si].cap = newcap
    ctr[C_POOL_TOP] = top + newcap
    return True


@njit(_nrt=False)
def _shift_up(keys, lvs, a, b):
    """keys/lvs[a+1 .. b] = old [a .. b-1]. Unsigned indices drop Numba's negative-index
    fix-up, which lets LLVM turn each loop into one memmove."""
    j = np.uint64(b)
    lo = np.uint64(a)
    while j > lo:
        keys[j] = keys[j - np.uint64(1)]
        j -= np.uint64(1)
    j = np.uint64(b)
    while j > lo:
        lvs[j] = lvs[j - np.uint64(1)]
        j -= np.uint64(1)


@njit(_nrt=False)
def _shift_down(keys, lvs, a, b):
    """keys/lvs[a .. b-1] = old [a+1 .. b] (see _shift_up)."""
    j = np.uint64(a)
    hi = np.uint64(b)
    while j < hi:
        keys[j] = keys[j + np.uint64(1)]
        j += np.uint64(1)
    j = np.uint64(a)
    while j < hi:
        lvs[j] = lvs[j + np.uint64(1)]
        j += np.uint64(1)


@njit(_nrt=False, inline="always")
def _map_search(S, si, key):
    """First position in side ``si``'s sorted keys whose key is >= ``key``."""
    sides = S[S_SIDES]
    pool_key = S[S_POOL_KEY]
    off = sides[si].off
    lo = 0
    hi = sides[si].n
    while lo < hi:
        mid = (lo + hi) >> 1
        if pool_key[off + mid] < key:
            lo = mid + 1
        else:
            hi = mid
    return lo


@njit(_nrt=False, inline="always")
def _best_level(S, si):
    sides = S[S_SIDES]
    n = sides[si].n
    if n == 0:
        return -1
    return S[S_POOL_LV][sides[si].off + n - 1]


@njit(_nrt=False, inline="always")
def _touch(S, lv):
    """Record level ``lv``'s size and count at the chain's start (once per chain)."""
    levels = S[S_LEVELS]
    if levels[lv].touch >= 0:
        return
    ctr = S[S_CTR]
    k = ctr[C_NTOUCH]
    ctr[C_NTOUCH] = k + 1
    S[S_T_LV][k] = lv
    S[S_T_PX][k] = levels[lv].price
    S[S_T_SIDE][k] = levels[lv].side
    S[S_T_SIZE][k] = levels[lv].total
    S[S_T_CNT][k] = levels[lv].count
    levels[lv].touch = k


@njit(_nrt=False, inline="always")
def _level_get(S, ii, side, price):
    """Level of (instrument, side, price), created empty (and touched) if absent."""
    ctr = S[S_CTR]
    levels = S[S_LEVELS]
    sides = S[S_SIDES]
    pool_key = S[S_POOL_KEY]
    pool_lv = S[S_POOL_LV]
    si = 2 * ii + side
    key = price if side == 0 else -price
    pos = _map_search(S, si, key)
    n = sides[si].n
    if pos < n and pool_key[sides[si].off + pos] == key:
        lv = pool_lv[sides[si].off + pos]
        _touch(S, lv)
        return lv
    if n == sides[si].cap and not _pool_grow(S, si):
        return -1
    off = sides[si].off
    _shift_up(pool_key, pool_lv, off + pos, off + n)
    lv = ctr[C_LFREE]
    if lv >= 0:
        ctr[C_LFREE] = levels[lv].head
    else:
        lv = ctr[C_LHW]
        ctr[C_LHW] = lv + 1
    pool_key[off + pos] = key
    pool_lv[off + pos] = lv
    sides[si].n = n + 1
    ctr[C_LEVELS] += 1
    levels[lv].price = price
    levels[lv].total = 0
    levels[lv].count = 0
    levels[lv].head = -1
    levels[lv].tail = -1
    levels[lv].inst = ii
    levels[lv].side = side
    levels[lv].touch = -1
    # A level removed earlier in this chain at the same price keeps its start values.
    nt = ctr[C_NTOUCH]
    for k in range(nt):
        if S[S_T_LV][k] == -1 and S[S_T_PX][k] == price and S[S_T_SIDE][k] == side:
            S[S_T_LV][k] = lv
            levels[lv].touch = k
            return lv
    _touch(S, lv)
    return lv


@njit(_nrt=False, inline="always")
def _level_drop(S, lv):
    """Remove empty level ``lv`` from its price map and free it."""
    ctr = S[S_CTR]
    levels = S[S_LEVELS]
    sides = S[S_SIDES]
    pool_key = S[S_POOL_KEY]
    pool_lv = S[S_POOL_LV]
    ii = levels[lv].inst
    side = levels[lv].side
    si = 2 * ii + side
    price = levels[lv].price
    key = price if side == 0 else -price
    off = sides[si].off
    n = sides[si].n
    pos = n - 1 if n > 0 and pool_lv[off + n - 1] == lv else _map_search(S, si, key)
    _shift_down(pool_key, pool_lv, off + pos, off + n - 1)
    sides[si].n = n - 1
    k = levels[lv].touch
    if k >= 0:
        S[S_T_LV][k] = -1
    levels[lv].touch = -1
    levels[lv].count = 0
    levels[lv].total = 0
    levels[lv].head = ctr[C_LFREE]
    ctr[C_LFREE] = lv
    ctr[C_LEVELS] -= 1


@njit(_nrt=False, inline="always")
def _link_tail(S, s, lv):
    """Append slot ``s`` at the tail of level ``lv`` with a new PrioSeq."""
    ctr = S[S_CTR]
    S[S_ORDERS][s].prio = ctr[C_NEXT_PRIO]
    ctr[C_NEXT_PRIO] += 1
    _link(S, s, lv)


@njit(_nrt=False, inline="always")
def _link(S, s, lv):
    """Append slot ``s`` at the tail of level ``lv`` keeping its PrioSeq."""
    orders = S[S_ORDERS]
    levels = S[S_LEVELS]
    orders[s].level = lv
    tail = levels[lv].tail
    orders[s].prev = tail
    orders[s].next = -1
    if tail >= 0:
        orders[tail].next = s
    else:
        levels[lv].head = s
    levels[lv].tail = s
    levels[lv].count += 1
    levels[lv].total += np.int64(orders[s].shown)


@njit(_nrt=False, inline="always")
def _unlink(S, s):
    """Take slot ``s`` out of its level (dropping the level if it empties)."""
    orders = S[S_ORDERS]
    levels = S[S_LEVELS]
    lv = orders[s].level
    if lv < 0:
        return
    _touch(S, lv)
    p = orders[s].prev
    n = orders[s].next
    if p >= 0:
        orders[p].next = n
    else:
        levels[lv].head = n
    if n >= 0:
        orders[n].prev = p
    else:
        levels[lv].tail = p
    levels[lv].count -= 1
    levels[lv].total -= np.int64(orders[s].shown)
    orders[s].level = -1
    orders[s].prev = -1
    orders[s].next = -1
    if levels[lv].count == 0:
        _level_drop(S, lv)


@njit(_nrt=False, inline="always")
def _rest(S, s):
    """Make taker slot ``s`` a resting order: book (limit), indices, counters."""
    ctr = S[S_CTR]
    cfg = S[S_CFG]
    orders = S[S_ORDERS]
    insts = S[S_INSTS]
    sides = S[S_SIDES]
    ii = orders[s].inst
    side = orders[s].side
    if orders[s].ord_type == ORD_TYPE_LIMIT:
        lv = _level_get(S, ii, side, orders[s].price)
        if lv < 0:
            return
        _link_tail(S, s, lv)
    else:
        orders[s].level = -1
        orders[s].prio = ctr[C_NEXT_PRIO]
        ctr[C_NEXT_PRIO] += 1
    _oid_insert(S[S_OID_TAB], orders, cfg[G_OID_BITS], s)
    _cl_insert(S[S_CL_TAB], orders, cfg[G_CL_BITS], s)
    lv_ = np.int64(orders[s].leaves)
    insts[ii].n_orders += 1
    insts[ii].lots += lv_
    sides[2 * ii + side].lots += lv_
    ctr[C_RESTING] += 1


@njit(_nrt=False, inline="always")
def _retire(S, s):
    """Remove resting slot ``s`` entirely (its Leaves leave the open lots)."""
    ctr = S[S_CTR]
    cfg = S[S_CFG]
    orders = S[S_ORDERS]
    insts = S[S_INSTS]
    sides = S[S_SIDES]
    ii = orders[s].inst
    lv_ = np.int64(orders[s].leaves)
    insts[ii].n_orders -= 1
    insts[ii].lots -= lv_
    sides[2 * ii + orders[s].side].lots -= lv_
    ctr[C_RESTING] -= 1
    _unlink(S, s)
    _oid_delete(S[S_OID_TAB], orders, cfg[G_OID_BITS], s)
    _cl_delete(S[S_CL_TAB], orders, cfg[G_CL_BITS], s)
    _order_free(S, s)


@njit(_nrt=False, inline="always")
def _reduce_resting(S, s, d):
    """Take ``d`` lots off resting order ``s`` (fill or decrement): Leaves and open lots."""
    orders = S[S_ORDERS]
    insts = S[S_INSTS]
    sides = S[S_SIDES]
    ii = orders[s].inst
    orders[s].leaves = np.int64(orders[s].leaves) - d
    insts[ii].lots -= d
    sides[2 * ii + orders[s].side].lots -= d


# ======================================================================================
# chains: start snapshot and end-of-event block
# ======================================================================================


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
    """End-of-event block of instrument ``ii`` (BookLevel per changed level, then BBO)."""
    ctr = S[S_CTR]
    levels = S[S_LEVELS]
    insts = S[S_INSTS]
    o64, o32, _o16, o8 = O
    nt = ctr[C_NTOUCH]
    sec = insts[ii].sec_id
    tick = insts[ii].tick
    if nt > 0:
        t_lv = S[S_T_LV]
        t_px = S[S_T_PX]
        t_side = S[S_T_SIDE]
        t_size = S[S_T_SIZE]
        t_cnt = S[S_T_CNT]
        # bids by descending price, then offers ascending
        keys = S[S_WIDE0]
        idx = S[S_WIDE1]
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
    if ctr[C_LAST_MD] >= 0:
        o8[ctr[C_LAST_MD] * OUT_B + MD_MEI_B] |= MEI_END_OF_EVENT
    if ctr[C_LAST_TRADE] >= 0:
        o8[ctr[C_LAST_TRADE] * OUT_B + MD_MEI_B] |= MEI_LAST_TRADE_MSG
    ctr[C_LAST_MD] = -1
    ctr[C_LAST_TRADE] = -1


# ======================================================================================
# matching
# ======================================================================================


@njit(_nrt=False, inline="always")
def _crosses(side, p, limit):
    """Whether an aggressor on ``side`` with limit ``limit`` trades at opposite price p."""
    if side == 0:
        return p <= limit
    return p >= limit


@njit(_nrt=False, inline="always")
def _market_limit(S, ii, side):
    """Collar limit L of a market order (ENGINE.md §3.3), NO_PRICE if the opposite side is empty."""
    insts = S[S_INSTS]
    levels = S[S_LEVELS]
    opp = _best_level(S, 2 * ii + 1 - side)
    if opp < 0:
        return NO_PRICE
    p = levels[opp].price
    if side == 0:
        return min(p + insts[ii].collar, insts[ii].hi)
    return max(p - insts[ii].collar, insts[ii].lo)


@njit(_nrt=False)
def _simulate(S, T, limit):
    """E of ENGINE.md §3.5: lots taker slot ``T`` would trade now as an IOC, STP included.

    Walks the opposite levels best first, replaying each level's queue (refills go to
    the tail) in scratch rings; never changes the book.
    """
    orders = S[S_ORDERS]
    levels = S[S_LEVELS]
    sides = S[S_SIDES]
    pool_lv = S[S_POOL_LV]
    rs = S[S_SCRATCH]
    rl = S[S_WIDE0]
    rh = S[S_WIDE1]
    ii = orders[T].inst
    side = orders[T].side
    group = orders[T].group
    stp = orders[T].stp
    si = 2 * ii + 1 - side
    off = sides[si].off
    rem = np.int64(orders[T].leaves)
    e = 0
    for pos in range(sides[si].n - 1, -1, -1):
        lv = pool_lv[off + pos]
        if not _crosses(side, levels[lv].price, limit):
            break
        k = 0
        s = levels[lv].head
        while s >= 0:
            rs[k] = s
            rl[k] = orders[s].leaves
            rh[k] = orders[s].shown
            k += 1
            s = orders[s].next
        h = 0
        size = k
        while size > 0 and rem > 0:
            i = h
            h = (h + 1) % k
            size -= 1
            s = rs[i]
            lvs = rl[i]
            sh = rh[i]
            if orders[s].group == group:
                if stp in (SMP_CANCEL_AGGRESSIVE, SMP_CANCEL_BOTH):
                    return e
                if stp == SMP_CANCEL_PASSIVE:
                    continue
                d = min(rem, lvs)
                rem -= d
                continue
            q = min(rem, sh)
            e += q
            rem -= q
            lvs -= q
            sh -= q
            if lvs > 0 and sh == 0:
                disp = np.int64(orders[s].display)
                sh = min(disp, lvs) if disp > 0 else lvs
                j = (h + size) % k
                rs[j] = s
                rl[j] = lvs
                rh[j] = sh
                size += 1
        if rem == 0:
            break
    return e


@njit(_nrt=False, inline="always")
def _er_cancel_taker(S, O, T, t, reason, last_qty):
    """ER Canceled for the (non-resting) taker: LastQty = what it removes."""
    orders = S[S_ORDERS]
    insts = S[S_INSTS]
    _w_er(
        S,
        O,
        orders[T].clordid,
        t,
        orders[T].order_id,
        _order_px9(orders, insts, T),
        last_qty,
        0,
        EXEC_TYPE_CANCELED,
        ORD_STATUS_CANCELED,
        reason,
        LIQUIDITY_NONE,
        orders[T].session,
    )


@njit(_nrt=False)
def _match(S, O, T, limit, t):
    """Match taker slot ``T`` against the opposite side up to ``limit`` (ENGINE.md §3.2, §3.11).

    Invariant: T is not on the book; makers keep 0 < Shown <= Leaves after every step.
    Returns True when STP cancelled the taker (its Leaves are then 0).
    """
    orders = S[S_ORDERS]
    levels = S[S_LEVELS]
    insts = S[S_INSTS]
    ctr = S[S_CTR]
    ii = orders[T].inst
    side = orders[T].side
    si = 2 * ii + 1 - side
    group = orders[T].group
    stp = orders[T].stp
    sec = insts[ii].sec_id
    tick = insts[ii].tick
    aggressor = 1 + side
    t_sess = orders[T].session
    while orders[T].leaves > 0:
        lv = _best_level(S, si)
        if lv < 0:
            break
        p = levels[lv].price
        if not _crosses(side, p, limit):
            break
        M = levels[lv].head
        if orders[M].group == group:
            if stp in (SMP_CANCEL_PASSIVE, SMP_CANCEL_BOTH):
                mq = np.int64(orders[M].leaves)
                _w_er(
                    S,
                    O,
                    orders[M].clordid,
                    t,
                    orders[M].order_id,
                    orders[M].price * tick,
                    mq,
                    0,
                    EXEC_TYPE_CANCELED,
                    ORD_STATUS_CANCELED,
                    EXEC_REASON_SELF_MATCH,
                    LIQUIDITY_NONE,
                    orders[M].session,
                )
                _w_delete(S, O, t, sec, orders[M].order_id)
                _retire(S, M)
                if stp == SMP_CANCEL_PASSIVE:
                    continue
            if stp in (SMP_CANCEL_AGGRESSIVE, SMP_CANCEL_BOTH):
                tq = np.int64(orders[T].leaves)
                _er_cancel_taker(S, O, T, t, EXEC_REASON_SELF_MATCH, tq)
                orders[T].leaves = 0
                return True
            # Decrement: both lose d; any order left at 0 is cancelled.
            d = min(np.int64(orders[T].leaves), np.int64(orders[M].leaves))
            orders[M].qty = np.int64(orders[M].qty) - d
            old_shown = np.int64(orders[M].shown)
            _reduce_resting(S, M, d)
            mleft = np.int64(orders[M].leaves)
            if mleft == 0:
                _w_er(
                    S,
                    O,
                    orders[M].clordid,
                    t,
                    orders[M].order_id,
                    orders[M].price * tick,
                    d,
                    0,
                    EXEC_TYPE_CANCELED,
                    ORD_STATUS_CANCELED,
                    EXEC_REASON_SELF_MATCH,
                    LIQUIDITY_NONE,
                    orders[M].session,
                )
                _w_delete(S, O, t, sec, orders[M].order_id)
                _retire(S, M)
            else:
                new_shown = min(old_shown, mleft)
                _w_er(
                    S,
                    O,
                    orders[M].clordid,
                    t,
                    orders[M].order_id,
                    orders[M].price * tick,
                    d,
                    mleft,
                    EXEC_TYPE_RESTATED,
                    _status_of(orders, M),
                    EXEC_REASON_SELF_MATCH,
                    LIQUIDITY_NONE,
                    orders[M].session,
                )
                if new_shown != old_shown:
                    _touch(S, lv)
                    orders[M].shown = new_shown
                    levels[lv].total -= old_shown - new_shown
                    _w_reduced(S, O, t, sec, orders[M].order_id, old_shown - new_shown, new_shown)
            orders[T].qty = np.int64(orders[T].qty) - d
            tleft = np.int64(orders[T].leaves) - d
            orders[T].leaves = tleft
            if tleft == 0:
                _w_er(
                    S,
                    O,
                    orders[T].clordid,
                    t,
                    orders[T].order_id,
                    _order_px9(orders, insts, T),
                    d,
                    0,
                    EXEC_TYPE_CANCELED,
                    ORD_STATUS_CANCELED,
                    EXEC_REASON_SELF_MATCH,
                    LIQUIDITY_NONE,
                    t_sess,
                )
                return True
            _w_er(
                S,
                O,
                orders[T].clordid,
                t,
                orders[T].order_id,
                _order_px9(orders, insts, T),
                d,
                tleft,
                EXEC_TYPE_RESTATED,
                _status_of(orders, T),
                EXEC_REASON_SELF_MATCH,
                LIQUIDITY_NONE,
                t_sess,
            )
            if orders[T].shown > tleft:
                orders[T].shown = tleft
            continue
        # fill
        tl = np.int64(orders[T].leaves)
        msh = np.int64(orders[M].shown)
        q = min(tl, msh)
        trade_id = ctr[C_NEXT_TRADE]
        ctr[C_NEXT_TRADE] += 1
        px9 = p * tick
        orders[T].cum = np.int64(orders[T].cum) + q
        orders[T].leaves = tl - q
        orders[M].cum = np.int64(orders[M].cum) + q
        _reduce_resting(S, M, q)
        _touch(S, lv)
        orders[M].shown = msh - q
        levels[lv].total -= q
        tst = ORD_STATUS_FILLED if tl == q else ORD_STATUS_PARTIALLY_FILLED
        _w_er(
            S,
            O,
            orders[T].clordid,
            t,
            orders[T].order_id,
            px9,
            q,
            tl - q,
            EXEC_TYPE_TRADE,
            tst,
            EXEC_REASON_NONE,
            LIQUIDITY_REMOVED,
            t_sess,
        )
        mleft = np.int64(orders[M].leaves)
        mst = ORD_STATUS_FILLED if mleft == 0 else ORD_STATUS_PARTIALLY_FILLED
        _w_er(
            S,
            O,
            orders[M].clordid,
            t,
            orders[M].order_id,
            px9,
            q,
            mleft,
            EXEC_TYPE_TRADE,
            mst,
            EXEC_REASON_NONE,
            LIQUIDITY_ADDED,
            orders[M].session,
        )
        _w_executed(S, O, t, sec, orders[M].order_id, px9, q, msh - q, trade_id, aggressor)
        _w_trade(S, O, t, sec, trade_id, px9, q, aggressor)
        if mleft == 0:
            _retire(S, M)
        elif msh == q:
            disp = np.int64(orders[M].display)
            # refill: tail of the same level with a new PrioSeq
            _unlink_keep_level(S, M, lv)
            orders[M].shown = min(disp, mleft) if disp > 0 else mleft
            _link_tail(S, M, lv)
            _w_add(S, O, t, sec, orders[M].order_id, px9, orders[M].shown, orders[M].side)
    return False


@njit(_nrt=False, inline="always")
def _unlink_keep_level(S, s, lv):
    """Take slot ``s`` (Shown already 0) out of level ``lv``'s queue without dropping it."""
    orders = S[S_ORDERS]
    levels = S[S_LEVELS]
    p = orders[s].prev
    n = orders[s].next
    if p >= 0:
        orders[p].next = n
    else:
        levels[lv].head = n
    if n >= 0:
        orders[n].prev = p
    else:
        levels[lv].tail = p
    levels[lv].count -= 1
    levels[lv].total -= np.int64(orders[s].shown)


@njit(_nrt=False, inline="always")
def _remainder(S, O, T, t, matching):
    """Remainder step: cancel IOC/FOK/market leftovers in matching phases, else rest."""
    orders = S[S_ORDERS]
    insts = S[S_INSTS]
    left = np.int64(orders[T].leaves)
    if left == 0:
        _order_free(S, T)
        return
    tif = orders[T].tif
    if matching and (tif in (TIF_IOC, TIF_FOK) or orders[T].ord_type == ORD_TYPE_MARKET):
        _er_cancel_taker(S, O, T, t, EXEC_REASON_IOC_FOK_REMAINDER, left)
        _order_free(S, T)
        return
    disp = np.int64(orders[T].display)
    orders[T].shown = min(disp, left) if disp > 0 else left
    _rest(S, T)
    if orders[T].ord_type == ORD_TYPE_LIMIT:
        ii = orders[T].inst
        _w_add(
            S,
            O,
            t,
            insts[ii].sec_id,
            orders[T].order_id,
            orders[T].price * insts[ii].tick,
            orders[T].shown,
            orders[T].side,
        )


# ======================================================================================
# inbound messages
# ======================================================================================


@njit(_nrt=False, inline="always")
def _matches_on_entry(insts, ii):
    return insts[ii].phase == PHASE_CONTINUOUS and insts[ii].fba < 0


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


@njit(_nrt=False)
def _check_nos_fields(S, I, r):
    """WIRE.md §5.2 NewOrderSingle checks 1-14 in order; returns (reason, instrument)."""
    i64, i32, i16, i8 = I
    insts = S[S_INSTS]
    ii = _find_inst(S[S_SEC_IDS], np.int64(i32[r * IN_I + NOS_SECURITY_I]))
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
    if not (1 <= smp <= 4 or smp == SMP_DEFAULT):
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


@njit(_nrt=False)
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


@njit(_nrt=False, inline="always")
def _reach(S, ii, side, limit, qty):
    """(min(qty, lots), orders) of ENGINE.md §2.4 for an aggressor on ``side`` of instrument
    ``ii`` with matching limit ``limit`` (NO_PRICE: nothing reachable): lots = Σ Leaves and
    orders = count of the opposite side's live orders priced at or better than the limit.

    Walks the opposite levels best first, using each level's count; it reads order
    Leaves only until ``qty`` lots are reached, so the cost is the reachable levels plus
    at most ``qty`` orders, never the whole book.
    """
    orders = S[S_ORDERS]
    levels = S[S_LEVELS]
    sides = S[S_SIDES]
    pool_lv = S[S_POOL_LV]
    lots = np.int64(0)
    cnt = np.int64(0)
    if ii < 0 or limit == NO_PRICE:
        return lots, cnt
    si = 2 * ii + 1 - side
    off = sides[si].off
    for pos in range(sides[si].n - 1, -1, -1):
        lv = pool_lv[off + pos]
        if not _crosses(side, levels[lv].price, limit):
            break
        cnt += levels[lv].count
        s = levels[lv].head
        while lots < qty and s >= 0:
            lots += np.int64(orders[s].leaves)
            s = orders[s].next
    return min(lots, qty), cnt


@njit(_nrt=False)
def _nos(S, O, I, r, t, reason, ii, price, limit):
    """NewOrderSingle (ENGINE.md §3.1-§3.6), given its :func:`_nos_verdict`."""
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
    orders[T].group = _stp_group(S[S_MAP_ACC], S[S_MAP_GRP], acct)
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
            e = _simulate(S, T, limit)
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
        _match(S, O, T, limit, t)
    _remainder(S, O, T, t, matching)
    _chain_end(S, O, ii, t)


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
def _cancel(S, O, I, r, t):
    """OrderCancelRequest (ENGINE.md §3.7)."""
    cfg = S[S_CFG]
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
        ii = _find_inst(S[S_SEC_IDS], np.int64(i32[r * IN_I + OCR_SECURITY_I]))
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
                s = _oid_find(S[S_OID_TAB], orders, cfg[G_OID_BITS], np.int64(req_oid))
        else:
            s = _cl_find(S[S_CL_TAB], orders, cfg[G_CL_BITS], sess, orig)
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


@njit(_nrt=False)
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
        ii = _find_inst(S[S_SEC_IDS], np.int64(i32[r * IN_I + OCRR_SECURITY_I]))
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
        s = _cl_find(S[S_CL_TAB], orders, cfg[G_CL_BITS], sess, orig)
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
def _replace(S, O, I, r, t, reason, ii, s, rule, price, disp):
    """OrderCancelReplaceRequest (ENGINE.md §3.8), given its :func:`_replace_verdict`."""
    ctr = S[S_CTR]
    cfg = S[S_CFG]
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
        if s >= 0:
            _w_ocr(
                S,
                O,
                clordid,
                t,
                orders[s].order_id,
                orig,
                _status_of(orders, s),
                CXL_REJ_RESPONSE_TO_REPLACE,
                reason,
                sess,
            )
        else:
            _w_ocr(
                S,
                O,
                clordid,
                t,
                -1,
                orig,
                ORD_STATUS_REJECTED,
                CXL_REJ_RESPONSE_TO_REPLACE,
                reason,
                sess,
            )
        return
    _chain_begin(S, ii)
    sec = insts[ii].sec_id
    tick = insts[ii].tick
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
        _chain_end(S, O, ii, t)
        return
    # the request's ClOrdID becomes the order's
    _cl_delete(S[S_CL_TAB], orders, cfg[G_CL_BITS], s)
    orders[s].clordid = clordid
    _cl_insert(S[S_CL_TAB], orders, cfg[G_CL_BITS], s)
    cum = np.int64(orders[s].cum)
    old_leaves = np.int64(orders[s].leaves)
    new_leaves = qty - cum
    sd = orders[s].side
    insts[ii].lots += new_leaves - old_leaves
    sides[2 * ii + sd].lots += new_leaves - old_leaves
    orders[s].qty = qty
    orders[s].leaves = new_leaves
    if rule == 3:
        old_shown = np.int64(orders[s].shown)
        new_shown = min(old_shown, new_leaves)
        _w_er(
            S,
            O,
            clordid,
            t,
            orders[s].order_id,
            px,
            qty,
            new_leaves,
            EXEC_TYPE_REPLACED,
            _status_of(orders, s),
            EXEC_REASON_NONE,
            LIQUIDITY_NONE,
            orders[s].session,
        )
        if new_shown != old_shown:
            lv = orders[s].level
            _touch(S, lv)
            orders[s].shown = new_shown
            levels[lv].total -= old_shown - new_shown
            _w_reduced(S, O, t, sec, orders[s].order_id, old_shown - new_shown, new_shown)
        _chain_end(S, O, ii, t)
        return
    # rule 4: loses priority, new OrderID
    old_oid = orders[s].order_id
    _unlink(S, s)
    _oid_delete(S[S_OID_TAB], orders, cfg[G_OID_BITS], s)
    oid = ctr[C_NEXT_OID]
    ctr[C_NEXT_OID] += 1
    orders[s].order_id = oid
    _oid_insert(S[S_OID_TAB], orders, cfg[G_OID_BITS], s)
    orders[s].price = price
    orders[s].display = disp
    orders[s].shown = min(disp, new_leaves) if disp > 0 else new_leaves
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
    crosses = False
    if _matches_on_entry(insts, ii):
        opp = _best_level(S, 2 * ii + 1 - sd)
        crosses = opp >= 0 and _crosses(sd, levels[opp].price, price)
    if not crosses:
        lv = _level_get(S, ii, sd, price)
        _link_tail(S, s, lv)
        _w_replace(S, O, t, sec, old_oid, oid, price * tick, orders[s].shown, sd)
        _chain_end(S, O, ii, t)
        return
    _w_delete(S, O, t, sec, old_oid)
    # It matches as a taker: take it off the book's accounting, then rest any remainder.
    _oid_delete(S[S_OID_TAB], orders, cfg[G_OID_BITS], s)
    _cl_delete(S[S_CL_TAB], orders, cfg[G_CL_BITS], s)
    insts[ii].n_orders -= 1
    insts[ii].lots -= new_leaves
    sides[2 * ii + sd].lots -= new_leaves
    ctr[C_RESTING] -= 1
    _match(S, O, s, price, t)
    _remainder(S, O, s, t, True)
    _chain_end(S, O, ii, t)


@njit(_nrt=False)
def _collect(S, kind, a, b, ii_filter, side_filter, day, keys):
    """Collect live slots for a bulk removal into scratch S[S_SCRATCH]; returns the count.

    BULK_MASS_CANCEL: Account == a (ii_filter/side_filter may be -1 for any);
    BULK_SESSIONS: SessionID in keys; BULK_ACCOUNTS: Account in keys; BULK_EXPIRE: GTD
    with ExpireDate < day; BULK_END_OF_DAY: all but GTC and GTD with ExpireDate > day.
    """
    ctr = S[S_CTR]
    orders = S[S_ORDERS]
    out = S[S_SCRATCH]
    n = 0
    for s in range(ctr[C_OHW]):
        if orders[s].order_id == 0:
            continue
        take = False
        if kind == BULK_MASS_CANCEL:
            take = (
                np.int64(orders[s].account) == a
                and (ii_filter < 0 or orders[s].inst == ii_filter)
                and (side_filter < 0 or orders[s].side == side_filter)
            )
        elif kind in (BULK_SESSIONS, BULK_ACCOUNTS):
            v = np.int64(orders[s].session) if kind == BULK_SESSIONS else np.int64(orders[s].account)
            lo = 0
            hi = keys.shape[0]
            while lo < hi:
                mid = (lo + hi) >> 1
                if keys[mid] < v:
                    lo = mid + 1
                else:
                    hi = mid
            take = lo < keys.shape[0] and keys[lo] == v
        elif kind == BULK_EXPIRE:
            take = orders[s].tif == TIF_GTD and np.int64(orders[s].expire) < day
        else:
            tif = orders[s].tif
            take = not (tif == TIF_GTC or (tif == TIF_GTD and np.int64(orders[s].expire) > day))
        if take:
            out[n] = s
            n += 1
    return n


@njit(_nrt=False)
def _bulk(S, O, n, t, reason, exec_type, status):
    """Remove the ``n`` collected slots: per instrument ascending, per OrderID ascending."""
    orders = S[S_ORDERS]
    slots = S[S_SCRATCH]
    keys = S[S_WIDE0]
    vals = S[S_WIDE1]
    counts = S[S_NARROW0]
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


@njit(_nrt=False)
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
        ii = _find_inst(S[S_SEC_IDS], sec)
        if ii < 0:
            return EXEC_REASON_UNKNOWN_SYMBOL, -1, -1
    if side != MASS_CANCEL_SIDE_BOTH and side != SIDE_BUY and side != SIDE_SELL:
        return EXEC_REASON_INVALID_SIDE, -1, -1
    sf = -1 if side == MASS_CANCEL_SIDE_BOTH else np.int64(side) - SIDE_BUY
    return EXEC_REASON_NONE, ii, sf


@njit(_nrt=False)
def _mass(S, O, I, r, t, reason, ii, sf, n):
    """OrderMassCancelRequest (ENGINE.md §3.9) with its ``n`` orders already collected."""
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
    _bulk(S, O, n, t, EXEC_REASON_MASS_CANCEL, EXEC_TYPE_CANCELED, ORD_STATUS_CANCELED)


@njit(cache=True, _nrt=False)
def process(S, out, batch, n):
    """Run inbound records 0..n-1 of ``batch`` (INBOUND) into ``out`` (OUTPUT).

    Returns (status, consumed, needed, written).

    Both arrays are reinterpreted as bytes here (cheaper than NumPy views on the host).
    Every header and SessionID is checked first; a bad one returns (STATUS_BAD, index, 0) with nothing
    changed. Invariant: a record starts only if the free output space is at least its
    bound U (ENGINE.md §2.4), so the concatenated output equals an unbounded run's.
    """
    ctr = S[S_CTR]
    cfg = S[S_CFG]
    insts = S[S_INSTS]
    ctr[C_W] = 0
    ctr[C_CAP] = out.shape[0]
    ctr[C_ERR] = 0
    O = _views(out.view(np.uint8))
    I = _views(batch.view(np.uint8))
    i64, i32, i16, i8 = I
    for r in range(n):
        h = r * IN_H
        tid = i16[h + HDR_TEMPLATE_ID_H]
        if (
            i16[h + HDR_BLOCK_LENGTH_H] != BLOCK_LENGTH
            or tid < TEMPLATE_NEW_ORDER_SINGLE
            or tid > TEMPLATE_ORDER_MASS_CANCEL_REQUEST
            or i16[h + HDR_SCHEMA_ID_H] != SCHEMA_ORDER_ENTRY
            or i16[h + HDR_VERSION_H] != SCHEMA_VERSION
        ):
            return STATUS_BAD, r, 0, 0
        if np.int64(i32[r * IN_I + IN_SESSION_I]) >= cfg[G_MAX_SESSIONS]:
            return STATUS_BAD, r, 0, 0
    empty = S[S_NARROW0][:0]
    for r in range(n):
        tid = i16[r * IN_H + HDR_TEMPLATE_ID_H]
        free = ctr[C_CAP] - ctr[C_W]
        t = _later(i64[r * IN_Q + IN_RECV_TIME_Q], ctr[C_LAST_TIME])
        mass_reason = EXEC_REASON_NONE
        mass_ii = -1
        mass_sf = -1
        mass_n = 0
        reason = EXEC_REASON_NONE
        ii = np.int64(-1)
        price = np.int64(0)
        limit = NO_PRICE
        slot = -1
        rule = 0
        disp = np.int64(0)
        if tid in (TEMPLATE_NEW_ORDER_SINGLE, TEMPLATE_ORDER_CANCEL_REPLACE_REQUEST):
            # §2.4: only the opposite orders the order can reach count, and none if it is
            # rejected before matching or cannot match in this phase
            if tid == TEMPLATE_NEW_ORDER_SINGLE:
                qty = np.int64(i32[r * IN_I + NOS_QTY_I])
                reason, ii, price, limit = _nos_verdict(S, I, r, t)
                reach_limit = limit
            else:
                qty = np.int64(i32[r * IN_I + OCRR_QTY_I])
                reason, ii, slot, rule, price, disp = _replace_verdict(S, I, r, t)
                reach_limit = price
            side = np.int64(i8[r * IN_B + NOS_SIDE_B]) - SIDE_BUY
            if reason != EXEC_REASON_NONE or not _matches_on_entry(insts, ii):
                reach_limit = NO_PRICE
            lots, cnt = _reach(S, ii, side, reach_limit, qty)
            u = np.int64(U_BASE + 8 * (lots + cnt))
        elif tid == TEMPLATE_ORDER_CANCEL_REQUEST:
            u = np.int64(U_BASE)
        else:
            mass_reason, mass_ii, mass_sf = _mass_check(S, I, r)
            if mass_reason == EXEC_REASON_NONE:
                acct = np.int64(i32[r * IN_I + OMC_ACCOUNT_I])
                if acct == NULL_U32:
                    acct = np.int64(i32[r * IN_I + IN_SESSION_ACCOUNT_I])
                mass_n = _collect(S, BULK_MASS_CANCEL, acct, 0, mass_ii, mass_sf, 0, empty)
            u = np.int64(U_BASE + 4 * mass_n)
        if free < u:
            return STATUS_FULL, r, u, ctr[C_W]
        ctr[C_LAST_TIME] = t
        if tid == TEMPLATE_NEW_ORDER_SINGLE:
            _nos(S, O, I, r, t, reason, ii, price, limit)
        elif tid == TEMPLATE_ORDER_CANCEL_REQUEST:
            _cancel(S, O, I, r, t)
        elif tid == TEMPLATE_ORDER_CANCEL_REPLACE_REQUEST:
            _replace(S, O, I, r, t, reason, ii, slot, rule, price, disp)
        else:
            _mass(S, O, I, r, t, mass_reason, mass_ii, mass_sf, mass_n)
    return STATUS_OK, n, 0, ctr[C_W]


@njit(cache=True, _nrt=False)
def command_bulk(S, ob, now, kind, keys):
    """cancel_sessions, cancel_accounts, expire, end_of_day (``BULK_*`` ``kind``) as one chain.

    Returns (status, needed); nothing changes when the bound does not fit.
    """
    ctr = S[S_CTR]
    O = _views(ob)
    t = _later(now, ctr[C_LAST_TIME])
    day = _day_of(t)
    n = _collect(S, kind, 0, 0, -1, -1, day, keys)
    u = U_BASE + 4 * n
    if ctr[C_CAP] - ctr[C_W] < u:
        return STATUS_FULL, u
    ctr[C_LAST_TIME] = t
    if kind == BULK_SESSIONS:
        _bulk(S, O, n, t, EXEC_REASON_CANCEL_ON_DISCONNECT, EXEC_TYPE_CANCELED, ORD_STATUS_CANCELED)
    elif kind == BULK_ACCOUNTS:
        _bulk(S, O, n, t, EXEC_REASON_ADMIN, EXEC_TYPE_CANCELED, ORD_STATUS_CANCELED)
    else:
        _bulk(S, O, n, t, EXEC_REASON_EXPIRED, EXEC_TYPE_EXPIRED, ORD_STATUS_EXPIRED)
    return STATUS_OK, 0


# ======================================================================================
# admin, restore, invariants
# ======================================================================================


@njit(cache=True, _nrt=False)
def set_phase(S, ob, now, idx, phase, fba_flags):
    """SecurityStatus chain per instrument index in ``idx`` (ascending); no uncross here.

    Returns (status, needed). The host has validated every transition.
    """
    ctr = S[S_CTR]
    insts = S[S_INSTS]
    O = _views(ob)
    _o64, _o32, _o16, o8 = O
    u = U_BASE
    for k in range(idx.shape[0]):
        u += 8 * insts[idx[k]].n_orders + 2
    if ctr[C_CAP] - ctr[C_W] < u:
        return STATUS_FULL, u
    t = _later(now, ctr[C_LAST_TIME])
    ctr[C_LAST_TIME] = t
    for k in range(idx.shape[0]):
        ii = idx[k]
        insts[ii].phase = phase
        insts[ii].ind_p = NO_PRICE
        insts[ii].ind_v = 0
        insts[ii].ind_i = 0
        insts[ii].ind_side = 0
        r = _md(S, O, TEMPLATE_SECURITY_STATUS, t, insts[ii].sec_id)
        if r < 0:
            continue
        if phase == PHASE_CLOSED:
            status = TRADING_STATUS_CLOSED
        elif phase == PHASE_PRE_OPEN:
            status = TRADING_STATUS_PRE_OPEN
        elif phase == PHASE_CONTINUOUS:
            status = TRADING_STATUS_BATCH_AUCTION if fba_flags[k] else TRADING_STATUS_CONTINUOUS
        elif phase == PHASE_PRE_CLOSE:
            status = TRADING_STATUS_PRE_CLOSE
        else:
            status = TRADING_STATUS_HALT
        o8[r * OUT_B + SS_STATUS_B] = status
        o8[r * OUT_B + SS_HALT_REASON_B] = HALT_REASON_OPERATOR if phase == PHASE_HALTED else HALT_REASON_NONE
        o8[r * OUT_B + MD_MEI_B] = MEI_END_OF_EVENT
    return STATUS_OK, 0


@njit(cache=True, _nrt=False)
def relink(S, n):
    """Rebuild levels, price maps, indices and counters from order slots 0..n-1.

    Invariant: slots are ordered so that each level receives its orders in PrioSeq order.
    """
    ctr = S[S_CTR]
    cfg = S[S_CFG]
    orders = S[S_ORDERS]
    levels = S[S_LEVELS]
    insts = S[S_INSTS]
    sides = S[S_SIDES]
    ctr[C_NTOUCH] = 0
    for s in range(n):
        ii = orders[s].inst
        sd = orders[s].side
        orders[s].prev = -1
        orders[s].next = -1
        orders[s].level = -1
        if orders[s].ord_type == ORD_TYPE_LIMIT:
            lv = _level_get(S, ii, sd, orders[s].price)
            if lv < 0:
                return False
            _link(S, s, lv)
        _oid_insert(S[S_OID_TAB], orders, cfg[G_OID_BITS], s)
        _cl_insert(S[S_CL_TAB], orders, cfg[G_CL_BITS], s)
        lv_ = np.int64(orders[s].leaves)
        insts[ii].n_orders += 1
        insts[ii].lots += lv_
        sides[2 * ii + sd].lots += lv_
    for k in range(ctr[C_NTOUCH]):
        lv = S[S_T_LV][k]
        if lv >= 0:
            levels[lv].touch = -1
    ctr[C_NTOUCH] = 0
    ctr[C_OHW] = n
    ctr[C_LIVE] = n
    ctr[C_RESTING] = n
    return True


@njit(cache=True, _nrt=False)
def check_invariants(S):
    """0 if ENGINE.md §6 rules 1, 3, 4, 6 and the §1.3 identities hold, else a code."""
    ctr = S[S_CTR]
    cfg = S[S_CFG]
    orders = S[S_ORDERS]
    levels = S[S_LEVELS]
    insts = S[S_INSTS]
    sides = S[S_SIDES]
    pool_key = S[S_POOL_KEY]
    pool_lv = S[S_POOL_LV]
    ninst = insts.shape[0]
    nlevels = 0
    for ii in range(ninst):
        for sd in range(2):
            si = 2 * ii + sd
            off = sides[si].off
            n = sides[si].n
            if n > sides[si].cap:
                return 1
            for pos in range(n):
                key = pool_key[off + pos]
                lv = pool_lv[off + pos]
                if pos > 0 and pool_key[off + pos - 1] >= key:
                    return 2
                if levels[lv].inst != ii or levels[lv].side != sd:
                    return 3
                price = levels[lv].price
                if (price if sd == 0 else -price) != key:
                    return 3
                cnt = 0
                size = np.int64(0)
                prev = -1
                last_prio = -1
                s = levels[lv].head
                while s >= 0:
                    if orders[s].order_id == 0 or orders[s].level != lv or orders[s].prev != prev:
                        return 4
                    if orders[s].prio <= last_prio:
                        return 5
                    if orders[s].price != price or orders[s].inst != ii or orders[s].side != sd:
                        return 4
                    last_prio = orders[s].prio
                    cnt += 1
                    size += np.int64(orders[s].shown)
                    prev = s
                    s = orders[s].next
                if prev != levels[lv].tail or cnt == 0:
                    return 6
                if cnt != levels[lv].count or size != levels[lv].total:
                    return 6
                nlevels += 1
        b = _best_level(S, 2 * ii)
        a = _best_level(S, 2 * ii + 1)
        if _matches_on_entry(insts, ii) and b >= 0 and a >= 0 and levels[b].price >= levels[a].price:
            return 7
    if nlevels != ctr[C_LEVELS]:
        return 8
    n_orders = S[S_WIDE0]
    lots = S[S_WIDE1]
    side_lots = S[S_NARROW0]
    for ii in range(ninst):
        n_orders[ii] = 0
        lots[ii] = 0
        side_lots[2 * ii] = 0
        side_lots[2 * ii + 1] = 0
    live = 0
    for s in range(ctr[C_OHW]):
        if orders[s].order_id == 0:
            continue
        live += 1
        qty = np.int64(orders[s].qty)
        cum = np.int64(orders[s].cum)
        leaves = np.int64(orders[s].leaves)
        shown = np.int64(orders[s].shown)
        disp = np.int64(orders[s].display)
        if leaves != qty - cum or leaves <= 0 or shown <= 0 or shown > leaves:
            return 9
        if disp == 0 and shown != leaves:
            return 9
        if disp > 0 and shown > disp:
            return 9
        if _oid_find(S[S_OID_TAB], orders, cfg[G_OID_BITS], orders[s].order_id) != s:
            return 10
        if _cl_find(S[S_CL_TAB], orders, cfg[G_CL_BITS], orders[s].session, orders[s].clordid) != s:
            return 10
        ii = orders[s].inst
        if orders[s].ord_type == ORD_TYPE_LIMIT:
            if orders[s].level < 0:
                return 4
        elif orders[s].level != -1:
            return 4
        if _matches_on_entry(insts, ii) and (
            orders[s].tif == TIF_IOC or orders[s].tif == TIF_FOK or orders[s].ord_type == ORD_TYPE_MARKET
        ):
            return 11
        n_orders[ii] += 1
        lots[ii] += leaves
        side_lots[2 * ii + orders[s].side] += leaves
    if live != ctr[C_RESTING] or live != ctr[C_LIVE]:
        return 12
    free = 0
    s = ctr[C_OFREE]
    while s >= 0:
        free += 1
        if free > cfg[G_MAX_ORDERS]:
            return 12
        s = orders[s].next
    if live + free + (cfg[G_MAX_ORDERS] - ctr[C_OHW]) != cfg[G_MAX_ORDERS]:
        return 12
    for ii in range(ninst):
        if n_orders[ii] != insts[ii].n_orders or lots[ii] != insts[ii].lots:
            return 13
        for sd in range(2):
            if side_lots[2 * ii + sd] != sides[2 * ii + sd].lots:
                return 13
    return 0
