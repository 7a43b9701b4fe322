"""Matching a taker against the opposite side, and the read-only walks that predict it.

Theory of operation: :func:`_match` trades the taker against the best opposite level's
head until it is filled, the limit stops crossing or self-trade prevention cancels it
(ENGINE.md §3.2, §3.11); iceberg refills go to the tail of their level with a new PrioSeq.
Two walks answer questions without changing the book, so that every check happens before
the first record is written: :func:`_reach` bounds the records a taker can cause (the
bound U of ENGINE.md §2.4), reading the levels' counts and only as many Leaves as the
order's quantity; :func:`_simulate` computes what an order would trade now (FOK and
MinQty, ENGINE.md §3.5) by replaying each level's queue in scratch rings so refills land
at the back exactly as they would. :func:`_remainder` then cancels or rests what is left.
"""

# Kernel signatures are inferred by Numba from the state dtypes; annotating them would be
# decorative, so the kernel modules relax mypy's untyped-def rules.
# mypy: allow-untyped-defs, allow-incomplete-defs, allow-untyped-calls

from __future__ import annotations

import numpy as np

from qfix.engine._common import (
    _order_px9,
    _status_of,
    _views,
    njit,
)
from qfix.engine._ladder import _best_level, _level_below
from qfix.engine._levels import (
    _link_tail,
    _order_free,
    _reduce_resting,
    _rest,
    _retire,
    _touch,
    _unlink_keep_level,
)
from qfix.engine._output import (
    _w_add,
    _w_delete,
    _w_er,
    _w_executed,
    _w_reduced,
    _w_trade,
)
from qfix.engine._state import state
from qfix.engine.config import PHASE_CONTINUOUS
from qfix.engine.types import (
    C_NEXT_TRADE,
    NO_PRICE,
    S_CTR,
    S_INSTS,
    S_LEVELS,
    S_ORDERS,
    S_OUT,
    S_PTRS,
    S_SCRATCH,
    S_WIDE,
)
from qfix.wire.codes import (
    EXEC_REASON_IOC_FOK_REMAINDER,
    EXEC_REASON_NONE,
    EXEC_REASON_SELF_MATCH,
    EXEC_TYPE_CANCELED,
    EXEC_TYPE_RESTATED,
    EXEC_TYPE_TRADE,
    LIQUIDITY_ADDED,
    LIQUIDITY_NONE,
    LIQUIDITY_REMOVED,
    ORD_STATUS_CANCELED,
    ORD_STATUS_FILLED,
    ORD_STATUS_PARTIALLY_FILLED,
    ORD_TYPE_LIMIT,
    ORD_TYPE_MARKET,
    SMP_CANCEL_AGGRESSIVE,
    SMP_CANCEL_BOTH,
    SMP_CANCEL_PASSIVE,
    TIF_FOK,
    TIF_IOC,
    TRADE_CONDITION_REGULAR,
)


@njit(_nrt=False, inline="always")
def _matches_on_entry(insts, ii):
    return insts[ii].phase == PHASE_CONTINUOUS and insts[ii].fba < 0


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
    lots = np.int64(0)
    cnt = np.int64(0)
    if ii < 0 or limit == NO_PRICE:
        return lots, cnt
    si = 2 * ii + 1 - side
    lv = _best_level(S, si)
    while lv >= 0:
        if not _crosses(side, levels[lv].price, limit):
            break
        cnt += levels[lv].count
        s = levels[lv].head
        while lots < qty and s >= 0:
            lots += np.int64(orders[s].leaves)
            s = orders[s].next
        lv = _level_below(S, si, lv)
    return min(lots, qty), cnt


@njit(_nrt=False)
def _simulate(P, T, limit):
    """E of ENGINE.md §3.5: lots taker slot ``T`` would trade now as an IOC, STP included.

    Walks the opposite levels best first, replaying each level's queue (refills go to
    the tail) in scratch rings; never changes the book.
    """
    S = state(P)
    orders = S[S_ORDERS]
    levels = S[S_LEVELS]
    rs = S[S_SCRATCH]
    rl = S[S_WIDE][0]
    rh = S[S_WIDE][1]
    ii = orders[T].inst
    side = orders[T].side
    group = orders[T].group
    stp = orders[T].stp
    si = 2 * ii + 1 - side
    rem = np.int64(orders[T].leaves)
    e = 0
    nxt = _best_level(S, si)
    while nxt >= 0:
        lv = nxt
        if not _crosses(side, levels[lv].price, limit):
            break
        nxt = _level_below(S, si, lv)
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


@njit(_nrt=False, inline="always")
def _cancel_maker(S, O, M, t, sec, tick, last_qty):
    """Self-match prevention cancels resting order ``M``: its ER Canceled (LastQty
    ``last_qty``), the OrderDelete, and its removal from the book."""
    orders = S[S_ORDERS]
    _w_er(
        S,
        O,
        orders[M].clordid,
        t,
        orders[M].order_id,
        orders[M].price * tick,
        last_qty,
        0,
        EXEC_TYPE_CANCELED,
        ORD_STATUS_CANCELED,
        EXEC_REASON_SELF_MATCH,
        LIQUIDITY_NONE,
        orders[M].session,
    )
    _w_delete(S, O, t, sec, orders[M].order_id)
    _retire(S, M)


@njit(_nrt=False)
def _self_match(P, T, M, lv, t):
    """One step of self-match prevention (ENGINE.md §3.11) between taker ``T`` and the head
    ``M`` of level ``lv``, both of one STP group; True when the taker is done (its Leaves
    are then 0). A call, not inlined into :func:`_match`: it runs only when the groups
    meet, and its six report writers inlined there cost the cold compile seconds."""
    S = state(P)
    O = _views(S[S_OUT])
    orders = S[S_ORDERS]
    levels = S[S_LEVELS]
    insts = S[S_INSTS]
    ii = orders[T].inst
    stp = orders[T].stp
    sec = insts[ii].sec_id
    tick = insts[ii].tick
    t_sess = orders[T].session
    if stp in (SMP_CANCEL_PASSIVE, SMP_CANCEL_BOTH):
        _cancel_maker(S, O, M, t, sec, tick, np.int64(orders[M].leaves))
        if stp == SMP_CANCEL_PASSIVE:
            return False
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
        _cancel_maker(S, O, M, t, sec, tick, d)
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
    # the taker's report: Canceled once nothing is left, else Restated (one writer for both)
    t_type = EXEC_TYPE_CANCELED
    t_status = ORD_STATUS_CANCELED
    if tleft > 0:
        t_type = EXEC_TYPE_RESTATED
        t_status = _status_of(orders, T)
    _w_er(
        S,
        O,
        orders[T].clordid,
        t,
        orders[T].order_id,
        _order_px9(orders, insts, T),
        d,
        tleft,
        t_type,
        t_status,
        EXEC_REASON_SELF_MATCH,
        LIQUIDITY_NONE,
        t_sess,
    )
    if tleft == 0:
        return True
    if orders[T].shown > tleft:
        orders[T].shown = tleft
    return False


@njit(_nrt=False)
def _match(P, T, limit, t):
    """Match taker slot ``T`` against the opposite side up to ``limit`` (ENGINE.md §3.2, §3.11).

    Invariant: T is not on the book; makers keep 0 < Shown <= Leaves after every step.
    Returns True when STP cancelled the taker (its Leaves are then 0).
    """
    S = state(P)
    O = _views(S[S_OUT])
    orders = S[S_ORDERS]
    levels = S[S_LEVELS]
    insts = S[S_INSTS]
    ctr = S[S_CTR]
    ii = orders[T].inst
    side = orders[T].side
    si = 2 * ii + 1 - side
    group = orders[T].group
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
            if _self_match(S[S_PTRS], np.int64(T), np.int64(M), np.int64(lv), np.int64(t)):
                return True
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
        _w_trade(S, O, t, sec, trade_id, px9, q, aggressor, TRADE_CONDITION_REGULAR)
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
