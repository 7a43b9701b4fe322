"""Allocation at the clearing price (ENGINE.md §7.5) and the pairing of fills into trades.

Per side the eligible orders (market, or a limit at P or better) are ranked: market orders
first, then price (buys descending, sells ascending), then priority. Levels are runs of
equal rank price (all market orders form the first level). V lots go to whole levels while
they fit; the first level that does not fit is the margin and shares the rest Rm by time
priority (``TIME``) or pro rata (``PRO_RATA``: floor(Rm × qi / Qm), then one lot each to the
first orders by priority until Rm is used); later levels get nothing. Two pointers then pair
the buy and sell allocations in priority order into trades at P.
"""

# Jitted passes take arrays whose types Numba infers; annotating them would be decorative.
# mypy: allow-untyped-defs, allow-incomplete-defs, allow-untyped-calls

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numba
import numpy as np

from qfix.engine.auction.orders import Int64Array, Orders

#: margin rule: time priority (continuous books, opening and closing auctions)
TIME: Final = 0
#: margin rule: pro rata with ENGINE.md §7.5's rounding (an option for frequent batch auctions)
PRO_RATA: Final = 1
ALLOCATIONS: Final = {"time": TIME, "pro_rata": PRO_RATA}

#: rank of a market order's price: ahead of every limit on both sides
_MARKET_RANK: Final = np.iinfo(np.int64).min
_LOW32: Final = np.uint64(0xFFFF_FFFF)
#: limits are counted over their rank-price span when it is at most this many times the
#: largest bucket (the counting scratch's size)
_DENSE_FACTOR: Final = 4


@dataclass(frozen=True)
class Trades:
    """One row per fill pair, in instrument order, then in priority order within it."""

    instrument: Int64Array
    bid: Int64Array  #: row of the buy order in the bids given
    ask: Int64Array  #: row of the sell order in the asks given
    qty: Int64Array
    price: Int64Array

    def __len__(self) -> int:
        return int(self.qty.size)


@numba.njit(cache=True, nogil=True, inline="always")
def _muldiv_floor(a, b, c):
    """floor(a × b / c) exactly for 0 <= a < c < 2^63 and 0 <= b < 2^63 (the product may
    exceed 64 bits when a level holds more than 2^32 lots)."""
    ua = np.uint64(a)
    ub = np.uint64(b)
    uc = np.uint64(c)
    if ua == 0 or ub == 0:
        return np.int64(0)
    if ua <= np.uint64(0xFFFF_FFFF) and ub <= np.uint64(0xFFFF_FFFF):
        return np.int64((ua * ub) // uc)
    # 128-bit product from 32-bit limbs, then restoring division (hi < c since a < c)
    a1 = ua >> np.uint64(32)
    a0 = ua & _LOW32
    b1 = ub >> np.uint64(32)
    b0 = ub & _LOW32
    p00 = a0 * b0
    p01 = a0 * b1
    p10 = a1 * b0
    p11 = a1 * b1
    mid = (p00 >> np.uint64(32)) + (p01 & _LOW32) + (p10 & _LOW32)
    lo = (p00 & _LOW32) | (mid << np.uint64(32))
    hi = p11 + (p01 >> np.uint64(32)) + (p10 >> np.uint64(32)) + (mid >> np.uint64(32))
    r = hi
    q = np.uint64(0)
    for bit in range(63, -1, -1):
        r = (r << np.uint64(1)) | ((lo >> np.uint64(bit)) & np.uint64(1))
        q = q << np.uint64(1)
        if r >= uc:
            r -= uc
            q |= np.uint64(1)
    return np.int64(q)


@numba.njit(cache=True, nogil=True)
def _rows_by_instrument(n, inst):
    """Counting sort of row numbers by instrument, row order kept within each."""
    start = np.zeros(n + 1, np.int64)
    for i in range(inst.size):
        start[inst[i] + 1] += 1
    for s in range(n):
        start[s + 1] += start[s]
    rows = np.empty(inst.size, np.int64)
    fill = start[:n].copy()
    for i in range(inst.size):
        rows[fill[inst[i]]] = i
        fill[inst[i]] += 1
    return start, rows


@numba.njit(cache=True, nogil=True)
def _rank_into(lo, hi, price, market, priority, p, is_buy, keep, rank, spare_keep, spare_rank, counts):
    """Write the eligible positions ``lo`` to ``hi - 1`` of one instrument's bucket in
    priority order into ``keep[:m]`` and their rank prices (levels are runs of equal rank
    price) into ``rank[:m]``; returns m.

    Market orders come first in row order; limits follow by rank price, stably. When rows
    are already in priority order and the limits' ranks span few ticks, a counting sort
    over that span orders them without comparisons or allocation; otherwise two stable
    comparison sorts (priority, then rank price) do.
    """
    rows_in_priority = True
    for r in range(lo + 1, hi):
        if priority[r] < priority[r - 1]:
            rows_in_priority = False
            break
    m = 0
    low = _MARKET_RANK
    high = _MARKET_RANK
    for r in range(lo, hi):
        if market[r]:
            keep[m] = r
            rank[m] = _MARKET_RANK
            m += 1
    markets = m
    for r in range(lo, hi):
        if not market[r] and (price[r] >= p if is_buy else price[r] <= p):
            keep[m] = r
            key = -price[r] if is_buy else price[r]
            rank[m] = key
            if m == markets:
                low = key
                high = key
            else:
                low = min(low, key)
                high = max(high, key)
            m += 1
    if rows_in_priority and m - markets < 2:
        return m
    span = high - low + 1
    if rows_in_priority and span <= counts.size - 1:
        counts[: span + 1] = 0
        for k in range(markets, m):
            counts[rank[k] - low + 1] += 1
        for t in range(span):
            counts[t + 1] += counts[t]
        for k in range(markets, m):
            at = markets + counts[rank[k] - low]
            counts[rank[k] - low] += 1
            spare_keep[at] = keep[k]
            spare_rank[at] = rank[k]
        keep[markets:m] = spare_keep[markets:m]
        rank[markets:m] = spare_rank[markets:m]
        return m
    if not rows_in_priority:
        prio = np.empty(m, np.int64)
        for k in range(m):
            prio[k] = priority[keep[k]]
        by_prio = np.argsort(prio, kind="mergesort")
        keep[:m] = keep[:m][by_prio]
        rank[:m] = rank[:m][by_prio]
    by_rank = np.argsort(rank[:m], kind="mergesort")
    keep[:m] = keep[:m][by_rank]
    rank[:m] = rank[:m][by_rank]
    return m


@numba.njit(cache=True, nogil=True)
def _fill_side(keep, rank, qty, volume, pro_rata, filled):
    """Allocate ``volume`` lots over the ranked rows into ``filled``."""
    rest = volume
    i = 0
    m = keep.size
    while i < m and rest > 0:
        j = i
        level = np.int64(0)
        while j < m and rank[j] == rank[i]:
            level += qty[keep[j]]
            j += 1
        if level <= rest:
            for k in range(i, j):
                filled[keep[k]] = qty[keep[k]]
            rest -= level
        elif pro_rata:
            given = np.int64(0)
            for k in range(i, j):
                share = _muldiv_floor(rest, qty[keep[k]], level)
                filled[keep[k]] = share
                given += share
            left = rest - given
            for k in range(i, i + left):
                filled[keep[k]] += 1
            rest = 0
        else:
            for k in range(i, j):
                take = min(qty[keep[k]], rest)
                filled[keep[k]] = take
                rest -= take
        i = j


@numba.njit(cache=True, nogil=True)
def _allocate(
    price_at, volume_at, b_inst, b_price, b_qty, b_mkt, b_prio, a_inst, a_price, a_qty, a_mkt, a_prio, pro_rata
):
    n = price_at.size
    b_start, b_rows = _rows_by_instrument(n, b_inst)
    a_start, a_rows = _rows_by_instrument(n, a_inst)
    # each side's columns in bucket order, so the passes below read memory in sequence;
    # positions map back to rows through b_rows / a_rows at the end
    bp, bq, bm, bo = b_price[b_rows], b_qty[b_rows], b_mkt[b_rows], b_prio[b_rows]
    ap, aq, am, ao = a_price[a_rows], a_qty[a_rows], a_mkt[a_rows], a_prio[a_rows]
    widest = 1
    for s in range(n):
        widest = max(widest, b_start[s + 1] - b_start[s], a_start[s + 1] - a_start[s])
    b_keep = np.empty(widest, np.int64)
    b_rank = np.empty(widest, np.int64)
    a_keep = np.empty(widest, np.int64)
    a_rank = np.empty(widest, np.int64)
    spare_keep = np.empty(widest, np.int64)
    spare_rank = np.empty(widest, np.int64)
    counts = np.zeros(_DENSE_FACTOR * widest + 1, np.int64)
    b_got = np.zeros(b_inst.size, np.int64)
    a_got = np.zeros(a_inst.size, np.int64)
    cap = b_inst.size + a_inst.size
    t_inst = np.empty(cap, np.int64)
    t_bid = np.empty(cap, np.int64)
    t_ask = np.empty(cap, np.int64)
    t_qty = np.empty(cap, np.int64)
    t = 0
    for s in range(n):
        if volume_at[s] <= 0:
            continue
        p = price_at[s]
        mb = _rank_into(b_start[s], b_start[s + 1], bp, bm, bo, p, True, b_keep, b_rank, spare_keep, spare_rank, counts)
        ma = _rank_into(
            a_start[s], a_start[s + 1], ap, am, ao, p, False, a_keep, a_rank, spare_keep, spare_rank, counts
        )
        _fill_side(b_keep[:mb], b_rank[:mb], bq, volume_at[s], pro_rata, b_got)
        _fill_side(a_keep[:ma], a_rank[:ma], aq, volume_at[s], pro_rata, a_got)
        i = 0
        j = 0
        b_left = np.int64(0)
        a_left = np.int64(0)
        while True:
            while b_left == 0 and i < mb:
                b_left = b_got[b_keep[i]]
                i += 1
            while a_left == 0 and j < ma:
                a_left = a_got[a_keep[j]]
                j += 1
            if b_left == 0 or a_left == 0:
                break
            q = min(b_left, a_left)
            t_inst[t] = s
            t_bid[t] = b_rows[b_keep[i - 1]]
            t_ask[t] = a_rows[a_keep[j - 1]]
            t_qty[t] = q
            t += 1
            b_left -= q
            a_left -= q
    b_filled = np.zeros(b_inst.size, np.int64)
    a_filled = np.zeros(a_inst.size, np.int64)
    b_filled[b_rows] = b_got
    a_filled[a_rows] = a_got
    return b_filled, a_filled, t_inst[:t].copy(), t_bid[:t].copy(), t_ask[:t].copy(), t_qty[:t].copy()


def allocate(
    price: Int64Array, volume: Int64Array, bids: Orders, asks: Orders, pro_rata: bool
) -> tuple[Int64Array, Int64Array, Int64Array, Int64Array, Int64Array, Int64Array]:
    """Allocation and pairing at each instrument's clearing ``price`` for its ``volume``
    (instruments with volume <= 0 are skipped): the lots each bid and ask row receives,
    then per fill its instrument, bid row, ask row and lots, in instrument order and then
    in the pairing order of ENGINE.md §7.5 rule 4."""
    result: tuple[Int64Array, Int64Array, Int64Array, Int64Array, Int64Array, Int64Array] = _allocate(
        price,
        volume,
        bids.instrument,
        bids.price,
        bids.qty,
        bids.market,
        bids.priority,
        asks.instrument,
        asks.price,
        asks.qty,
        asks.market,
        asks.priority,
        pro_rata,
    )
    return result
