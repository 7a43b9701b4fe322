"""The structural invariants of ENGINE.md §6 and §1.3, checked from scratch.

Theory of operation: :func:`check_invariants` recomputes every redundant figure the
engine maintains incrementally (level sizes and counts, open lots per instrument and
side, the number of levels and live orders, index membership, free-list length) from the
order slots and price ladders alone, and returns the number of the first rule that fails
(0 if none); the host turns a code into an ``EngineInvariantError``. It is a test and
operations hook, never on the order path, so it favours plain loops over speed.
"""

# Kernel signatures are inferred by Numba from the state dtypes; annotating them would be
# decorative, so the kernel modules relax mypy's untyped-def rules.
# mypy: allow-untyped-defs, allow-incomplete-defs, allow-untyped-calls

from __future__ import annotations

import numpy as np

from qfix.engine._common import njit
from qfix.engine._index import (
    _acc_find,
    _acc_tab,
    _cl_find,
    _cl_tab,
    _oid_find,
    _oid_tab,
    _ses_heads,
)
from qfix.engine._ladder import _best_level, _level_find, _lv_home_of, _msb, _rank, _word_rank
from qfix.engine._match import _matches_on_entry
from qfix.engine._state import state
from qfix.engine.types import (
    C_ACC_DISP,
    C_CL_DISP,
    C_LEVELS,
    C_LHW,
    C_LIVE,
    C_LV_DISP,
    C_OFREE,
    C_OHW,
    C_OID_DISP,
    C_RESTING,
    G_CL_BITS,
    G_LV_BITS,
    G_MAX_ORDERS,
    G_OID_BITS,
    INV_BEST_LEVEL,
    INV_BOOK_CROSSED,
    INV_INDEX_MISSING,
    INV_LADDER_WORDS,
    INV_LEVEL_COUNT,
    INV_LEVEL_MISFILED,
    INV_LEVEL_TABLE,
    INV_LEVEL_TOTALS,
    INV_MAP_OVER_CAPACITY,
    INV_MAP_UNSORTED,
    INV_OPEN_LOTS,
    INV_ORDER_LISTS,
    INV_PRIO_ORDER,
    INV_QTY_IDENTITIES,
    INV_QUEUE_LINKS,
    INV_SLOT_ACCOUNTING,
    INV_TIF_RESTING,
    S_CFG,
    S_CTR,
    S_INDEX,
    S_INSTS,
    S_LEVEL_TAB,
    S_LEVELS,
    S_NARROW,
    S_ORDERS,
    S_PTRS,
    S_SIDES,
    S_WIDE,
    S_WORDS,
)
from qfix.wire.codes import (
    ORD_TYPE_LIMIT,
    ORD_TYPE_MARKET,
    TIF_FOK,
    TIF_IOC,
)


@njit(_nrt=False)
def _queue_ok(orders, levels, lv, ii, sd, price):
    """0 if level ``lv``'s queue links, PrioSeq order, size and count hold, else a code."""
    cnt = 0
    size = np.int64(0)
    prev = -1
    last_prio = -1
    s = levels[lv].head
    while s >= 0:
        if orders[s].order_id == 0 or orders[s].level != lv or orders[s].prev != prev:
            return INV_QUEUE_LINKS
        if orders[s].prio <= last_prio:
            return INV_PRIO_ORDER
        if orders[s].price != price or orders[s].inst != ii or orders[s].side != sd:
            return INV_QUEUE_LINKS
        last_prio = orders[s].prio
        cnt += 1
        size += np.int64(orders[s].shown)
        prev = s
        s = orders[s].next
    if prev != levels[lv].tail or cnt == 0:
        return INV_LEVEL_TOTALS
    if cnt != levels[lv].count or size != levels[lv].total:
        return INV_LEVEL_TOTALS
    return 0


@njit(_nrt=False)
def _level_table_ok(P):
    """0 if the level table files every occupied level once, within the displacement
    bound of its home, and nothing else; free level slots are marked free."""
    S = state(P)
    tab = S[S_LEVEL_TAB]
    levels = S[S_LEVELS]
    ctr = S[S_CTR]
    bits = S[S_CFG][G_LV_BITS]
    mask = (1 << bits) - 1
    filed = 0
    for i in range(1 << bits):
        lv = tab[i]
        if lv < 0:
            continue
        if lv >= ctr[C_LHW] or levels[lv].inst < 0 or ((i - _lv_home_of(levels, lv, bits)) & mask) > ctr[C_LV_DISP]:
            return INV_LEVEL_TABLE
        filed += 1
    occupied = 0
    for lv in range(ctr[C_LHW]):
        occupied += levels[lv].inst >= 0
    if filed != ctr[C_LEVELS] or occupied != ctr[C_LEVELS]:
        return INV_LEVEL_TABLE
    return 0


@njit(cache=True, _nrt=False)
def check_invariants(P):
    """0 if ENGINE.md §6 rules 1, 3, 4, 6 and the §1.3 identities hold, else a code."""
    S = state(P)
    ctr = S[S_CTR]
    cfg = S[S_CFG]
    orders = S[S_ORDERS]
    levels = S[S_LEVELS]
    insts = S[S_INSTS]
    sides = S[S_SIDES]
    words = S[S_WORDS]
    ninst = insts.shape[0]
    nlevels = 0
    for ii in range(ninst):
        for sd in range(2):
            si = 2 * ii + sd
            off = sides[si].off
            n = sides[si].n
            if n > sides[si].cap:
                return INV_MAP_OVER_CAPACITY
            if n == 0 and sides[si].best != -1:
                return INV_BEST_LEVEL
            first = True  # words and bits run best first, so the first level is the best
            for pos in range(n - 1, -1, -1):
                key = words[off + pos].key
                if pos > 0 and words[off + pos - 1].key >= key:
                    return INV_MAP_UNSORTED
                left = words[off + pos].bits
                if left == 0:
                    return INV_LADDER_WORDS
                while left != 0:
                    b = _msb(left)
                    left ^= np.uint64(1) << np.uint64(b)
                    price = _rank(sd, _word_rank(key, b))
                    lv = _level_find(S, ii, sd, price)
                    if lv < 0 or levels[lv].inst != ii or levels[lv].side != sd or levels[lv].price != price:
                        return INV_LEVEL_MISFILED
                    if first and sides[si].best != lv:
                        return INV_BEST_LEVEL
                    first = False
                    code = _queue_ok(orders, levels, lv, ii, sd, price)
                    if code:
                        return code
                    nlevels += 1
        b = _best_level(S, 2 * ii)
        a = _best_level(S, 2 * ii + 1)
        if _matches_on_entry(insts, ii) and b >= 0 and a >= 0 and levels[b].price >= levels[a].price:
            return INV_BOOK_CROSSED
    if nlevels != ctr[C_LEVELS]:
        return INV_LEVEL_COUNT
    code = _level_table_ok(S[S_PTRS])
    if code:
        return code
    n_orders = S[S_WIDE][0]
    lots = S[S_WIDE][1]
    side_lots = S[S_NARROW][0]
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
            return INV_QTY_IDENTITIES
        if disp == 0 and shown != leaves:
            return INV_QTY_IDENTITIES
        if disp > 0 and shown > disp:
            return INV_QTY_IDENTITIES
        if (
            _oid_find(_oid_tab(S[S_INDEX], S[S_CFG]), orders, cfg[G_OID_BITS], S[S_CTR][C_OID_DISP], orders[s].order_id)
            != s
        ):
            return INV_INDEX_MISSING
        if (
            _cl_find(
                _cl_tab(S[S_INDEX], S[S_CFG]),
                orders,
                cfg[G_CL_BITS],
                S[S_CTR][C_CL_DISP],
                orders[s].session,
                orders[s].clordid,
            )
            != s
        ):
            return INV_INDEX_MISSING
        ii = orders[s].inst
        if orders[s].ord_type == ORD_TYPE_LIMIT:
            if orders[s].level < 0:
                return INV_QUEUE_LINKS
        elif orders[s].level != -1:
            return INV_QUEUE_LINKS
        if _matches_on_entry(insts, ii) and (
            orders[s].tif == TIF_IOC or orders[s].tif == TIF_FOK or orders[s].ord_type == ORD_TYPE_MARKET
        ):
            return INV_TIF_RESTING
        n_orders[ii] += 1
        lots[ii] += leaves
        side_lots[2 * ii + orders[s].side] += leaves
    if live != ctr[C_RESTING] or live != ctr[C_LIVE]:
        return INV_SLOT_ACCOUNTING
    free = 0
    s = ctr[C_OFREE]
    while s >= 0:
        free += 1
        if free > cfg[G_MAX_ORDERS]:
            return INV_SLOT_ACCOUNTING
        s = orders[s].next
    if live + free + (cfg[G_MAX_ORDERS] - ctr[C_OHW]) != cfg[G_MAX_ORDERS]:
        return INV_SLOT_ACCOUNTING
    for ii in range(ninst):
        if n_orders[ii] != insts[ii].n_orders or lots[ii] != insts[ii].lots:
            return INV_OPEN_LOTS
        for sd in range(2):
            if side_lots[2 * ii + sd] != sides[2 * ii + sd].lots:
                return INV_OPEN_LOTS
    if not _lists_ok(S[S_PTRS], live):
        return INV_ORDER_LISTS
    return 0


@njit(_nrt=False)
def _lists_ok(P, live):
    """Every live order is in exactly one session list and one account list, each well
    linked and filed under its head (``_index._lists_link``)."""
    S = state(P)
    ctr = S[S_CTR]
    cfg = S[S_CFG]
    orders = S[S_ORDERS]
    heads = _ses_heads(S[S_INDEX], S[S_CFG])
    acc_tab = _acc_tab(S[S_INDEX], S[S_CFG])
    bits = cfg[G_CL_BITS]
    for s in range(ctr[C_OHW]):
        if orders[s].order_id == 0:
            continue
        p = orders[s].ses_prev
        n = orders[s].ses_next
        if p >= 0 and (orders[p].order_id == 0 or orders[p].ses_next != s or orders[p].session != orders[s].session):
            return False
        if p < 0 and heads[orders[s].session] != s:
            return False
        if n >= 0 and orders[n].ses_prev != s:
            return False
        p = orders[s].acc_prev
        n = orders[s].acc_next
        if p >= 0 and (orders[p].order_id == 0 or orders[p].acc_next != s or orders[p].account != orders[s].account):
            return False
        if p < 0 and _acc_find(acc_tab, orders, bits, ctr[C_ACC_DISP], np.int64(orders[s].account)) != s:
            return False
        if n >= 0 and orders[n].acc_prev != s:
            return False
    # walks from the heads reach every live order once (no list closes on itself)
    seen = 0
    for sess in range(heads.shape[0]):
        s = heads[sess]
        while s >= 0 and seen <= live:
            seen += 1
            s = orders[s].ses_next
    if seen != live:
        return False
    seen = 0
    for i in range(1 << bits):
        s = acc_tab[i]
        while s >= 0 and seen <= live:
            seen += 1
            s = orders[s].acc_next
    return seen == live
