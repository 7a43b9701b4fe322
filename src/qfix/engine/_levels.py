"""Order slots, price levels and the per-side sorted price maps (the ladder).

Theory of operation: a level is an intrusive FIFO of order slots linked through
``prev``/``next``. Each instrument side keeps its occupied levels in a sorted segment of
the shared pools (``pool_key``, ``pool_lv``), best level *last*, so taking or removing the
best level is O(1) and inserting a level moves only the levels better than it (the common
passive case sits near the touch). Keys are ``price`` for bids and ``-price`` for offers,
so both segments sort ascending. Segments grow by 1.5x from a bump pointer; when the pool
is exhausted every segment is repacked, which the pool size (4 x MaxLevels plus slack)
always makes room for, so the pool never fills before the logical level limit. Free order
slots and free levels are chained through their own link fields, so there is no separate
free stack.

Every level a chain changes is first :func:`_touch`-ed: its size and count at the chain's
start go to the touched list, which ``_output._chain_end`` compares with the final values.
:func:`relink` rebuilds levels, maps and indices from restored order slots (snapshots).
"""

# Kernel signatures are inferred by Numba from the state dtypes; annotating them would be
# decorative, so the kernel modules relax mypy's untyped-def rules.
# mypy: allow-untyped-defs, allow-incomplete-defs, allow-untyped-calls

from __future__ import annotations

import numpy as np

from qfix.engine._common import (
    _sort_pairs,
    njit,
)
from qfix.engine._index import _index_add, _index_remove, _ses_heads
from qfix.engine.types import (
    C_ERR,
    C_LEVELS,
    C_LFREE,
    C_LHW,
    C_LIVE,
    C_NEXT_PRIO,
    C_NTOUCH,
    C_OFREE,
    C_OHW,
    C_POOL_TOP,
    C_RESTING,
    ERR_POOL,
    G_POOL_SIZE,
    S_CFG,
    S_CTR,
    S_INDEX,
    S_INSTS,
    S_LEVELS,
    S_NARROW,
    S_ORDERS,
    S_POOL_KEY,
    S_POOL_LV,
    S_SCRATCH,
    S_SIDES,
    S_TOUCHED,
    S_WIDE,
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
    tmp_key = S[S_NARROW][0]
    tmp_lv = S[S_NARROW][1]
    for j in range(n):
        tmp_key[j] = pool_key[src + j]
        tmp_lv[j] = pool_lv[src + j]
    sides[si].cap = 0
    nsides = sides.shape[0]
    offs = S[S_WIDE][0]
    order = S[S_WIDE][1]
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
    S[S_TOUCHED][T_LV][k] = lv
    S[S_TOUCHED][T_PX][k] = levels[lv].price
    S[S_TOUCHED][T_SIDE][k] = levels[lv].side
    S[S_TOUCHED][T_SIZE][k] = levels[lv].total
    S[S_TOUCHED][T_CNT][k] = levels[lv].count
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
        if S[S_TOUCHED][T_LV][k] == -1 and S[S_TOUCHED][T_PX][k] == price and S[S_TOUCHED][T_SIDE][k] == side:
            S[S_TOUCHED][T_LV][k] = lv
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
        S[S_TOUCHED][T_LV][k] = -1
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
    _index_add(S[S_INDEX], _ses_heads(S[S_INDEX], S[S_CFG]), orders, cfg, ctr, S[S_SCRATCH], s)
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
    _index_remove(S[S_INDEX], _ses_heads(S[S_INDEX], S[S_CFG]), orders, cfg, ctr, s)
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
        _index_add(S[S_INDEX], _ses_heads(S[S_INDEX], S[S_CFG]), orders, cfg, ctr, S[S_SCRATCH], s)
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
