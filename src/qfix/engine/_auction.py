"""Phase changes, uncrosses and indicative publication (ENGINE.md §7): the kernels behind
``Engine.set_phase``, ``Engine.auction_tick`` and ``Engine.publish_indicative``.

Theory of operation: the host decides what an uncross does before any kernel runs. It reads
the live orders of the instruments to uncross, determines each clearing price on an auction
backend and allocates the fills (``qfix.engine.auction.uncross``), and passes the result as
flat arrays: per instrument (in chain order) P, a range of fills (buy slot, sell slot, lots,
in the pairing order of §7.5 rule 4) and a range of remainder candidates (the market and
IOC orders, ascending OrderID). :func:`uncross_chains` checks the bound U against the free
space first and then applies them, one chain per instrument: the fills with their five
records each and the Shown rule of §7.5 rule 5, the remainder cancels of rule 6, the
end-of-event block, and for a phase change the SecurityStatus, which is then the
instrument's last MD record. Nothing here re-derives a price or an allocation, so the
arithmetic lives in one place, the one the backends are checked against.
"""

# Kernel signatures are inferred by Numba from the state dtypes; annotating them would be
# decorative, so the kernel modules relax mypy's untyped-def rules.
# mypy: allow-untyped-defs, allow-incomplete-defs, allow-untyped-calls

from __future__ import annotations

import numpy as np

from qfix.engine._commands import _cancel_one
from qfix.engine._common import STATUS_FULL, STATUS_OK, U_BASE, _later, _views, njit
from qfix.engine._layout import (
    IND_IMBALANCE_Q,
    IND_MATCHED_Q,
    IND_PX_Q,
    IND_SIDE_B,
    MD_MEI_B,
    OUT_B,
    OUT_Q,
    SS_HALT_REASON_B,
    SS_STATUS_B,
)
from qfix.engine._levels import _reduce_resting, _retire, _touch
from qfix.engine._output import (
    _chain_begin,
    _eoe_block,
    _mark_event_end,
    _md,
    _w_er,
    _w_executed,
    _w_trade,
)
from qfix.engine._state import bind, state
from qfix.engine.config import (
    PHASE_CLOSED,
    PHASE_CONTINUOUS,
    PHASE_HALTED,
    PHASE_PRE_CLOSE,
    PHASE_PRE_OPEN,
)
from qfix.engine.types import (
    C_CAP,
    C_LAST_TIME,
    C_NEXT_TRADE,
    C_OHW,
    C_W,
    NO_PRICE,
    S_CTR,
    S_INSTS,
    S_LEVELS,
    S_ORDERS,
    S_OUT,
    S_PTRS,
)
from qfix.wire.codes import (
    AGGRESSOR_NONE,
    EXEC_REASON_IOC_FOK_REMAINDER,
    EXEC_REASON_NONE,
    EXEC_TYPE_CANCELED,
    EXEC_TYPE_TRADE,
    HALT_REASON_NONE,
    HALT_REASON_OPERATOR,
    LIQUIDITY_AUCTION,
    MEI_END_OF_EVENT,
    NULL_PRICE,
    ORD_STATUS_CANCELED,
    ORD_STATUS_FILLED,
    ORD_STATUS_PARTIALLY_FILLED,
    ORD_TYPE_LIMIT,
    TEMPLATE_INDICATIVE_AUCTION,
    TEMPLATE_SECURITY_STATUS,
    TIF_IOC,
    TRADE_CONDITION_AUCTION,
    TRADING_STATUS_BATCH_AUCTION,
    TRADING_STATUS_CLOSED,
    TRADING_STATUS_CONTINUOUS,
    TRADING_STATUS_HALT,
    TRADING_STATUS_PRE_CLOSE,
    TRADING_STATUS_PRE_OPEN,
)

#: ENGINE.md §2.4 bound of an uncross: an uncross of n orders has at most n - 1 fills of 5
#: records, 2 records per cancelled remainder and a BookLevel per touched level, then the
#: BBO and the SecurityStatus
U_PER_ORDER = 8
U_PER_INSTRUMENT = 2
#: ``phase`` argument of :func:`uncross_chains` for a frequent-batch tick (no phase change)
TICK = -1


@njit(_nrt=False, inline="always")
def _auction_fill(S, s, q):
    """Take ``q`` lots off order ``s`` in an uncross (§7.5 rule 5: Shown -= q while q is
    below it, else a refill from Display; the queue place is kept). Returns the Leaves left;
    the caller retires the order once its records are written."""
    orders = S[S_ORDERS]
    levels = S[S_LEVELS]
    old_shown = np.int64(orders[s].shown)
    orders[s].cum = np.int64(orders[s].cum) + q
    _reduce_resting(S, s, q)
    left = np.int64(orders[s].leaves)
    if left == 0:
        shown = np.int64(0)
    elif q < old_shown:
        shown = old_shown - q
    else:
        display = np.int64(orders[s].display)
        shown = left if display == 0 else min(display, left)
    lv = orders[s].level
    if lv >= 0:
        _touch(S, lv)
        levels[lv].total += shown - old_shown
    orders[s].shown = shown
    return left


@njit(_nrt=False, inline="always")
def _fill_records(S, O, t, s, px9, q, left):
    """The ER Trade (Auction liquidity) of one side of a fill."""
    orders = S[S_ORDERS]
    _w_er(
        S,
        O,
        orders[s].clordid,
        t,
        orders[s].order_id,
        px9,
        q,
        left,
        EXEC_TYPE_TRADE,
        ORD_STATUS_FILLED if left == 0 else ORD_STATUS_PARTIALLY_FILLED,
        EXEC_REASON_NONE,
        LIQUIDITY_AUCTION,
        orders[s].session,
    )


@njit(_nrt=False, inline="always")
def _executed(S, O, t, sec, s, px9, q, trade_id):
    """MD OrderExecuted of one side of a fill (market orders have none), Shown after it."""
    orders = S[S_ORDERS]
    if orders[s].ord_type == ORD_TYPE_LIMIT:
        _w_executed(S, O, t, sec, orders[s].order_id, px9, q, np.int64(orders[s].shown), trade_id, AGGRESSOR_NONE)


@njit(_nrt=False)
def _uncross(P, t, ii, px, fill_lo, fill_hi, buy_slot, sell_slot, fill_qty, cancel_lo, cancel_hi, cancel_slot):
    """§7.5 rules 4-6 for instrument ``ii`` at clearing price ``px`` (ticks): the planned
    fills in pairing order, then the market and IOC remainders, ascending OrderID."""
    S = state(P)
    O = _views(S[S_OUT])
    orders = S[S_ORDERS]
    ctr = S[S_CTR]
    insts = S[S_INSTS]
    sec = insts[ii].sec_id
    px9 = px * insts[ii].tick
    for k in range(fill_lo, fill_hi):
        b = buy_slot[k]
        s = sell_slot[k]
        q = fill_qty[k]
        trade_id = ctr[C_NEXT_TRADE]
        ctr[C_NEXT_TRADE] += 1
        b_left = _auction_fill(S, b, q)
        s_left = _auction_fill(S, s, q)
        # Each step for the buyer, then the seller: loops over the pair, so that the cold
        # compile inlines each writer once, not once per side.
        pair = ((np.int64(b), b_left), (np.int64(s), s_left))
        for slot, left in pair:
            _fill_records(S, O, t, slot, px9, q, left)
        for slot, _left in pair:
            _executed(S, O, t, sec, slot, px9, q, trade_id)
        _w_trade(S, O, t, sec, trade_id, px9, q, AGGRESSOR_NONE, TRADE_CONDITION_AUCTION)
        for slot, left in pair:
            if left == 0:
                _retire(S, slot)
    for k in range(cancel_lo, cancel_hi):
        s = cancel_slot[k]
        # a candidate filled completely above has left the book (its slot is free)
        if orders[s].order_id != 0:
            _cancel_one(
                S,
                O,
                s,
                t,
                orders[s].clordid,
                EXEC_REASON_IOC_FOK_REMAINDER,
                -1,
                EXEC_TYPE_CANCELED,
                ORD_STATUS_CANCELED,
            )


@njit(_nrt=False, inline="always")
def _trading_status(phase, fba):
    if phase == PHASE_CLOSED:
        return TRADING_STATUS_CLOSED
    if phase == PHASE_PRE_OPEN:
        return TRADING_STATUS_PRE_OPEN
    if phase == PHASE_CONTINUOUS:
        return TRADING_STATUS_BATCH_AUCTION if fba else TRADING_STATUS_CONTINUOUS
    if phase == PHASE_PRE_CLOSE:
        return TRADING_STATUS_PRE_CLOSE
    return TRADING_STATUS_HALT


@njit(_nrt=False, inline="always")
def _security_status(S, O, t, ii, phase):
    insts = S[S_INSTS]
    o8 = O[3]
    r = _md(S, O, TEMPLATE_SECURITY_STATUS, t, insts[ii].sec_id)
    if r < 0:
        return
    o8[r * OUT_B + SS_STATUS_B] = _trading_status(phase, insts[ii].fba >= 0)
    o8[r * OUT_B + SS_HALT_REASON_B] = HALT_REASON_OPERATOR if phase == PHASE_HALTED else HALT_REASON_NONE


@njit(_nrt=False, inline="always")
def _command_start(S, now, u):
    """A command whose bound ``u`` fits the free space runs at t = max(now, LastTime), which
    becomes LastTime; returns (fits, t), changing nothing when it does not fit."""
    ctr = S[S_CTR]
    if ctr[C_CAP] - ctr[C_W] < u:
        return False, ctr[C_LAST_TIME]
    t = _later(now, ctr[C_LAST_TIME])
    ctr[C_LAST_TIME] = t
    return True, t


@njit(cache=True, _nrt=False)
def uncross_chains(
    P, ob, now, idx, phase, next_uncross, px, fill_start, buy_slot, sell_slot, fill_qty, cancel_start, cancel_slot
):
    """One chain per instrument index in ``idx`` (ascending): its planned uncross (an empty
    fill and cancel range where there is none), the end-of-event block, then either the new
    ``phase`` with its SecurityStatus (``set_phase``) or, with ``phase`` = TICK, the
    instrument's ``next_uncross`` (a frequent-batch tick). ``fill_start`` and
    ``cancel_start`` hold len(idx) + 1 offsets into the plan's arrays.

    Returns (status, needed); nothing changes when the bound does not fit.
    """
    S = state(P)
    insts = S[S_INSTS]
    bind(P, S_OUT, ob)
    O = _views(ob)
    u = U_BASE
    for k in range(idx.shape[0]):
        u += U_PER_ORDER * insts[idx[k]].n_orders + U_PER_INSTRUMENT
    fits, t = _command_start(S, now, u)
    if not fits:
        return STATUS_FULL, u
    for k in range(idx.shape[0]):
        ii = idx[k]
        _chain_begin(S, ii)
        if px[k] != NO_PRICE:
            insts[ii].ref = px[k]
        _uncross(
            S[S_PTRS],
            t,
            ii,
            px[k],
            fill_start[k],
            fill_start[k + 1],
            buy_slot,
            sell_slot,
            fill_qty,
            cancel_start[k],
            cancel_start[k + 1],
            cancel_slot,
        )
        _eoe_block(S, O, ii, t)
        if phase == TICK:
            insts[ii].next_uncross = next_uncross[k]
        else:
            insts[ii].phase = phase
            insts[ii].ind_p = NO_PRICE
            insts[ii].ind_v = 0
            insts[ii].ind_i = 0
            insts[ii].ind_side = 0
            _security_status(S, O, t, ii, phase)
        _mark_event_end(S, O)
    return STATUS_OK, 0


@njit(cache=True, _nrt=False)
def publish_indicative(P, ob, now, idx, px, volume, imbalance, side):
    """IndicativeAuction (ENGINE.md §7.3) for each instrument index in ``idx`` (ascending),
    whose values the host found changed: P in ticks (NO_PRICE when V = 0), V, |I| and the
    ImbalanceSide code; they become the instrument's last published values.

    Returns (status, needed): the bound is 16 + one record per configured instrument.
    """
    S = state(P)
    insts = S[S_INSTS]
    O = _views(ob)  # written here only: no kernel it calls reads the table's OUTPUT slot
    o64, _o32, _o16, o8 = O
    u = U_BASE + insts.shape[0]
    fits, t = _command_start(S, now, u)
    if not fits:
        return STATUS_FULL, u
    for k in range(idx.shape[0]):
        ii = idx[k]
        insts[ii].ind_p = px[k]
        insts[ii].ind_v = volume[k]
        insts[ii].ind_i = imbalance[k]
        insts[ii].ind_side = side[k]
        r = _md(S, O, TEMPLATE_INDICATIVE_AUCTION, t, insts[ii].sec_id)
        if r < 0:
            continue
        o64[r * OUT_Q + IND_PX_Q] = NULL_PRICE if px[k] == NO_PRICE else px[k] * insts[ii].tick
        o64[r * OUT_Q + IND_MATCHED_Q] = volume[k]
        o64[r * OUT_Q + IND_IMBALANCE_Q] = imbalance[k]
        o8[r * OUT_B + IND_SIDE_B] = side[k]
        o8[r * OUT_B + MD_MEI_B] = MEI_END_OF_EVENT
    return STATUS_OK, 0


@njit(cache=True, _nrt=False)
def gather_book(P, place, instrument, slot, buy, price, leaves, market, priority, order_id, ioc):
    """Columns of every live order whose instrument index has ``place[inst] >= 0`` (its
    place in the uncross), in slot order; returns how many. One pass over the slots in
    use: resting market orders sit in no level, so a ladder walk would miss them."""
    S = state(P)
    orders = S[S_ORDERS]
    ctr = S[S_CTR]
    n = 0
    for s in range(ctr[C_OHW]):
        if orders[s].order_id == 0:
            continue
        k = place[orders[s].inst]
        if k < 0:
            continue
        instrument[n] = k
        slot[n] = s
        buy[n] = orders[s].side == 0
        price[n] = orders[s].price
        leaves[n] = orders[s].leaves
        market[n] = orders[s].ord_type != ORD_TYPE_LIMIT
        priority[n] = orders[s].prio
        order_id[n] = orders[s].order_id
        ioc[n] = orders[s].tif == TIF_IOC
        n += 1
    return n
