"""Order slots and price levels: allocation, queues, resting and retiring orders.

Theory of operation: a level is an intrusive FIFO of order slots linked through
``prev``/``next``; which levels a side has, and which is best, is the ladder's business
(``_ladder``), which these functions keep in step when a level appears or empties. Free
order slots and free levels are chained through their own link fields, so there is no
separate free stack.

Every level a chain changes is first :func:`_touch`-ed: its size and count at the chain's
start go to the touched list, which ``_output._chain_end`` compares with the final values.
:func:`relink` rebuilds levels, ladders and indices from restored order slots (snapshots).
"""

# Kernel signatures are inferred by Numba from the state dtypes; annotating them would be
# decorative, so the kernel modules relax mypy's untyped-def rules.
# mypy: allow-untyped-defs, allow-incomplete-defs, allow-untyped-calls

from __future__ import annotations

from typing import Final

import numpy as np

from qfix.engine._common import njit
from qfix.engine._index import _index_add, _index_remove
from qfix.engine._ladder import (
    _best_level,
    _ladder_best,
    _ladder_clear,
    _ladder_set,
    _level_below,
    _level_find,
    _lvtab_delete,
    _lvtab_insert,
    _rank,
)
from qfix.engine._state import state
from qfix.engine.types import (
    C_ERR,
    C_LEVELS,
    C_LFREE,
    C_LHW,
    C_LIVE,
    C_LV_DISP,
    C_NEXT_PRIO,
    C_NTOUCH,
    C_OFREE,
    C_OHW,
    C_RESTING,
    ERR_POOL,
    G_LV_BITS,
    S_CFG,
    S_CTR,
    S_INSTS,
    S_LEVEL_TAB,
    S_LEVELS,
    S_ORDERS,
    S_PTRS,
    S_SIDES,
    S_TOUCHED,
    S_WORDS,
    T_CNT,
    T_LV,
    T_PX,
    T_SIDE,
    T_SIZE,
)
from qfix.wire.codes import ORD_TYPE_LIMIT


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


@njit(_nrt=False, inline="always")
def _touch(S, lv):
    """Record level ``lv``'s size and count at the chain's start (once per chain)."""
    levels = S[S_LEVELS]
    if levels[lv].touch >= 0:
        return
    ctr = S[S_CTR]
    k = ctr[C_NTOUCH]
    ctr[C_NTOUCH] = k + 1
    S[S_TOUCHED][T_LV][k] = lv
    S[S_TOUCHED][T_PX][k] = levels[lv].price
    S[S_TOUCHED][T_SIDE][k] = levels[lv].side
    S[S_TOUCHED][T_SIZE][k] = levels[lv].total
    S[S_TOUCHED][T_CNT][k] = levels[lv].count
    levels[lv].touch = k


@njit(_nrt=False, inline="always")
def _level_get(S, ii, side, price):
    """Level of (instrument, side, price), created empty (and touched) if absent."""
    lv = _level_find(S, ii, side, price)
    if lv >= 0:
        _touch(S, lv)
        return lv
    return _level_new(S[S_PTRS], np.int64(ii), np.int64(side), np.int64(price))


@njit(_nrt=False)
def _level_new(P, ii, side, price):
    """A new empty level at (instrument, side, price), touched; -1 if the word pool is
    full. A call, not inlined: only the lookup above runs on every resting order, and
    each inlined copy of this body and the ladder and table inserts below it cost the
    cold compile seconds."""
    S = state(P)
    ctr = S[S_CTR]
    levels = S[S_LEVELS]
    sides = S[S_SIDES]
    si = 2 * ii + side
    if not _ladder_set(S, si, _rank(side, price)):
        ctr[C_ERR] = ERR_POOL
        return -1
    lv = ctr[C_LFREE]
    if lv >= 0:
        ctr[C_LFREE] = levels[lv].head
    else:
        lv = ctr[C_LHW]
        ctr[C_LHW] = lv + 1
    levels[lv].price = price
    levels[lv].total = 0
    levels[lv].count = 0
    levels[lv].head = -1
    levels[lv].tail = -1
    levels[lv].inst = ii
    levels[lv].side = side
    levels[lv].touch = -1
    _lvtab_insert(S, lv)
    ctr[C_LEVELS] += 1
    best = sides[si].best
    if best < 0 or _rank(side, price) > _rank(side, levels[best].price):
        sides[si].best = lv
    # A level removed earlier in this chain at the same price keeps its start values.
    nt = ctr[C_NTOUCH]
    for k in range(nt):
        if S[S_TOUCHED][T_LV][k] == -1 and S[S_TOUCHED][T_PX][k] == price and S[S_TOUCHED][T_SIDE][k] == side:
            S[S_TOUCHED][T_LV][k] = lv
            levels[lv].touch = k
            return lv
    _touch(S, lv)
    return lv


@njit(_nrt=False, inline="always")
def _level_drop(S, lv):
    """Remove empty level ``lv`` from its side's ladder and free it."""
    ctr = S[S_CTR]
    levels = S[S_LEVELS]
    sides = S[S_SIDES]
    side = levels[lv].side
    si = 2 * levels[lv].inst + side
    _lvtab_delete(S[S_LEVEL_TAB], levels, S[S_CFG][G_LV_BITS], ctr, lv)
    _ladder_clear(S[S_WORDS], sides, si, _rank(side, levels[lv].price))
    if sides[si].best == lv:
        sides[si].best = _ladder_best(
            S[S_WORDS], sides, S[S_LEVEL_TAB], levels, S[S_CFG][G_LV_BITS], ctr[C_LV_DISP], si
        )
    k = levels[lv].touch
    if k >= 0:
        S[S_TOUCHED][T_LV][k] = -1
    levels[lv].touch = -1
    levels[lv].count = 0
    levels[lv].total = 0
    levels[lv].inst = -1
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
    _unlink_keep_level(S, s, lv)
    orders[s].level = -1
    orders[s].prev = -1
    orders[s].next = -1
    if levels[lv].count == 0:
        _level_drop(S, lv)


@njit(_nrt=False, inline="always")
def _unlink_keep_level(S, s, lv):
    """Take slot ``s`` out of level ``lv``'s queue (count and total too) without dropping
    the level; ``_unlink`` uses it and then drops an emptied level."""
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
def _rest(S, s):
    """Make taker slot ``s`` a resting order: book (limit), indices, counters."""
    ctr = S[S_CTR]
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
    _index_add(S[S_PTRS], np.int64(s))
    lv_ = np.int64(orders[s].leaves)
    insts[ii].n_orders += 1
    insts[ii].lots += lv_
    sides[2 * ii + side].lots += lv_
    ctr[C_RESTING] += 1


@njit(_nrt=False, inline="always")
def _retire(S, s):
    """Remove resting slot ``s`` entirely (its Leaves leave the open lots)."""
    ctr = S[S_CTR]
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
    _index_remove(S[S_PTRS], np.int64(s))
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


@njit(cache=True, _nrt=False)
def relink(P, n):
    """Rebuild levels, ladders, indices and counters from order slots 0..n-1.

    Invariant: slots are ordered so that each level receives its orders in PrioSeq order.
    """
    S = state(P)
    ctr = S[S_CTR]
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
        _index_add(S[S_PTRS], s)
        lv_ = np.int64(orders[s].leaves)
        insts[ii].n_orders += 1
        insts[ii].lots += lv_
        sides[2 * ii + sd].lots += lv_
    for k in range(ctr[C_NTOUCH]):
        lv = S[S_TOUCHED][T_LV][k]
        if lv >= 0:
            levels[lv].touch = -1
    ctr[C_NTOUCH] = 0
    ctr[C_OHW] = n
    ctr[C_LIVE] = n
    ctr[C_RESTING] = n
    return True


#: rows of ``ranked_slots``'s scratch: per queue (and per queue being walked) the next
#: order slot to write, where it goes in ``out``, and one past the queue's last position
Q_SLOT: Final = 0
Q_AT: Final = 1
Q_END: Final = 2
Q_ROWS: Final = 3
#: queues walked side by side. A queue is a chain of order slots, so one queue at a time
#: waits for one cache miss per order; sixteen at a time overlap their misses (a prototype
#: over 500,000 orders in 2,000 queues: 74 ms one at a time, 8.4 ms sixteen at a time)
RANK_CHAINS: Final = 16


@njit(cache=True, _nrt=False)
def ranked_slots(P, first, last, markets, out, queues, chains):
    """Write the slots of the live orders of instruments ``first`` to ``last - 1`` into
    ``out`` in the state-hash order of ENGINE.md §5 and return how many.

    That order is the book's own: per instrument, bids then offers; per side, the resting
    market orders (``markets``: their slots sorted by instrument, side and PrioSeq, the
    host's job since they sit in no level), then the levels best first through the
    ladder, each level's queue front to back (queues are in PrioSeq order, invariant of
    ``_link_tail`` and ``relink``). A walk, so no sort of every live order.

    First the ladders are walked and every queue gets its place in ``out`` from its
    level's count (``queues``: ``Q_ROWS`` x at least the occupied levels); then the queues
    are walked ``RANK_CHAINS`` at a time (``chains``: ``Q_ROWS`` x ``RANK_CHAINS``). Returns
    -1, having written nothing past ``out``, if ``out`` or ``queues`` is too small, and -2
    if a queue is not as long as its level's count.
    """
    S = state(P)
    orders = S[S_ORDERS]
    levels = S[S_LEVELS]
    k = 0
    m = 0
    n_queues = 0
    while m < markets.size and orders[markets[m]].inst < first:
        m += 1
    for ii in range(first, last):
        for side in range(2):
            while m < markets.size and orders[markets[m]].inst == ii and orders[markets[m]].side == side:
                if k == out.size:
                    return -1
                out[k] = markets[m]
                k += 1
                m += 1
            si = 2 * ii + side
            lv = _best_level(S, si)
            while lv >= 0:
                if n_queues == queues.shape[1] or k + levels[lv].count > out.size:
                    return -1
                queues[Q_SLOT, n_queues] = levels[lv].head
                queues[Q_AT, n_queues] = k
                k += levels[lv].count
                queues[Q_END, n_queues] = k
                n_queues += 1
                lv = _level_below(S, si, lv)
    walking = 0
    taken = 0
    while True:
        # top the queues walked side by side up from those still waiting
        while walking < chains.shape[1] and taken < n_queues:
            for r in range(Q_ROWS):
                chains[r, walking] = queues[r, taken]
            walking += 1
            taken += 1
        if walking == 0:
            return k
        c = 0
        while c < walking:
            s = chains[Q_SLOT, c]
            at = chains[Q_AT, c]
            if s < 0:
                if at != chains[Q_END, c]:
                    return -2
                # the queue is done: the last one walked takes its place
                walking -= 1
                for r in range(Q_ROWS):
                    chains[r, c] = chains[r, walking]
                continue
            if at == chains[Q_END, c]:
                return -2
            out[at] = s
            chains[Q_AT, c] = at + 1
            chains[Q_SLOT, c] = orders[s].next
            c += 1


@njit(cache=True, _nrt=False)
def gather_book_orders(P, slots, out):
    """Copy what a snapshot shows of the orders in ``slots`` (instrument index, side,
    price in ticks, Shown, OrderID) into ``out`` (``types.BOOK_ORDER``), in that order.
    The slots are known up front, so their cache misses overlap without any help."""
    S = state(P)
    orders = S[S_ORDERS]
    for j in range(slots.size):
        s = slots[j]
        out[j].inst = orders[s].inst
        out[j].side = orders[s].side
        out[j].price = orders[s].price
        out[j].shown = orders[s].shown
        out[j].order_id = orders[s].order_id


@njit(cache=True, _nrt=False)
def ranked_levels(P, first, last, out):
    """Write the occupied level slots of instruments ``first`` to ``last - 1`` into
    ``out``, per instrument bids then offers, best first, and return how many (-1, having
    written nothing past ``out``, if it is too small): a walk of the ladders alone."""
    S = state(P)
    k = 0
    for ii in range(first, last):
        for side in range(2):
            si = 2 * ii + side
            lv = _best_level(S, si)
            while lv >= 0:
                if k == out.size:
                    return -1
                out[k] = lv
                k += 1
                lv = _level_below(S, si, lv)
    return k
