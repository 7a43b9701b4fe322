"""The compressed candidate-price grid of ENGINE.md §7.4, built on the host.

Per instrument the candidates are the distinct members of {limit prices, Ref} plus, in each
gap between consecutive members a < b, the prices a + 1 and b − 1: demand and supply are
constant strictly between members, so these points carry every value and every tie-break
position that the full tick range would. All instruments' grids are stored end to end as
segments (``seg_start``), the layout every backend's determination pass reads.

Each point holds the limit lots at exactly its price; market lots are per instrument. A
grid always has at least one point per instrument (its Ref), so no segment is empty.
"""

# Jitted passes take arrays whose types Numba infers; annotating them would be decorative.
# mypy: allow-untyped-defs, allow-incomplete-defs, allow-untyped-calls

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import numba
import numpy as np

from qfix.engine.auction.orders import Int64Array, Orders, validate_ref

#: how the grid's arrays are allocated: ``host_empty(n, dtype)``, like ``np.empty``
HostEmpty = Callable[[int, Any], Any]
#: a bucket is counted over its price range when that range is at most this many times
#: its number of entries (the scratch is this many times the largest bucket)
_DENSE_FACTOR: Final = 4


@dataclass(frozen=True)
class PriceGrid:
    """All instruments' candidate prices as segments: instrument ``s`` owns points
    ``seg_start[s]`` to ``seg_start[s + 1] - 1``, prices ascending."""

    seg_start: Int64Array  #: n + 1 offsets into the point arrays
    price: Int64Array  #: candidate price in ticks, ascending within a segment
    buy_lots: Int64Array  #: limit buy lots priced exactly here
    sell_lots: Int64Array  #: limit sell lots priced exactly here
    market_buy: Int64Array  #: per instrument: market buy lots
    market_sell: Int64Array  #: per instrument: market sell lots
    ref: Int64Array  #: per instrument: the reference price

    @property
    def n_instruments(self) -> int:
        return int(self.ref.size)

    @property
    def n_points(self) -> int:
        return int(self.price.size)

    def nbytes(self) -> int:
        """Bytes a backend moves to its device for one determination."""
        return sum(int(a.nbytes) for a in self.arrays())

    def arrays(self) -> tuple[Int64Array, ...]:
        """The arrays in the order every determination kernel takes them."""
        return (self.seg_start, self.price, self.buy_lots, self.sell_lots, self.market_buy, self.market_sell, self.ref)


def build_grid(bids: Orders, asks: Orders, ref: Int64Array, host_empty: HostEmpty = np.empty) -> PriceGrid:
    """The grid of every instrument (``len(ref)`` of them) from both sides' orders.

    ``host_empty(n, dtype)`` allocates the grid's arrays: a device backend passes one that
    returns page-locked memory, so its copies to the device run at full bus speed without
    an extra host copy.
    """
    ref = validate_ref(ref)
    n = int(ref.size)
    bids.validate(n, "bids")
    asks.validate(n, "asks")
    start, unique, price, buy, sell, market_buy, market_sell = _sorted_levels(
        ref, bids.instrument, bids.price, bids.qty, bids.market, asks.instrument, asks.price, asks.qty, asks.market
    )
    seg_start = host_empty(n + 1, np.int64)
    _segment_starts(price, start, unique, seg_start)
    g = int(seg_start[n])
    grid = PriceGrid(
        seg_start,
        host_empty(g, np.int64),
        host_empty(g, np.int64),
        host_empty(g, np.int64),
        host_empty(n, np.int64),
        host_empty(n, np.int64),
        host_empty(n, np.int64),
    )
    grid.market_buy[:] = market_buy
    grid.market_sell[:] = market_sell
    grid.ref[:] = ref
    _fill_points(price, buy, sell, start, unique, seg_start, grid.price, grid.buy_lots, grid.sell_lots)
    return grid


@numba.njit(cache=True, nogil=True)
def _bucket(n, ref, b_inst, b_price, b_qty, b_mkt, a_inst, a_price, a_qty, a_mkt):
    """Counting sort of every limit price (and each Ref) by instrument: entry arrays with
    their buy and sell lots, plus the market lots per instrument."""
    count = np.ones(n, np.int64)  # one entry per instrument for its Ref
    market_buy = np.zeros(n, np.int64)
    market_sell = np.zeros(n, np.int64)
    for i in range(b_inst.size):
        if b_mkt[i]:
            market_buy[b_inst[i]] += b_qty[i]
        else:
            count[b_inst[i]] += 1
    for i in range(a_inst.size):
        if a_mkt[i]:
            market_sell[a_inst[i]] += a_qty[i]
        else:
            count[a_inst[i]] += 1
    start = np.zeros(n + 1, np.int64)
    for s in range(n):
        start[s + 1] = start[s] + count[s]
    total = start[n]
    price = np.empty(total, np.int64)
    buy = np.zeros(total, np.int64)
    sell = np.zeros(total, np.int64)
    fill = start[:n].copy()
    for s in range(n):
        price[fill[s]] = ref[s]
        fill[s] += 1
    for i in range(b_inst.size):
        if not b_mkt[i]:
            s = b_inst[i]
            price[fill[s]] = b_price[i]
            buy[fill[s]] = b_qty[i]
            fill[s] += 1
    for i in range(a_inst.size):
        if not a_mkt[i]:
            s = a_inst[i]
            price[fill[s]] = a_price[i]
            sell[fill[s]] = a_qty[i]
            fill[s] += 1
    return start, price, buy, sell, market_buy, market_sell


@numba.njit(cache=True, nogil=True)
def _sorted_levels(ref, b_inst, b_price, b_qty, b_mkt, a_inst, a_price, a_qty, a_mkt):
    """Each instrument's distinct prices ascending with their summed lots, written over the
    front of its bucket (``unique[s]`` of them).

    A bucket whose price range is at most :data:`_DENSE_FACTOR` times its size is sorted by
    counting over the range (the usual auction book: many orders on few ticks); a sparse
    one by a comparison sort.
    """
    n = ref.size
    start, price, buy, sell, market_buy, market_sell = _bucket(
        n, ref, b_inst, b_price, b_qty, b_mkt, a_inst, a_price, a_qty, a_mkt
    )
    unique = np.zeros(n, np.int64)
    widest = 1
    for s in range(n):
        widest = max(widest, start[s + 1] - start[s])
    tick_buy = np.zeros(_DENSE_FACTOR * widest, np.int64)
    tick_sell = np.zeros(_DENSE_FACTOR * widest, np.int64)
    tick_seen = np.zeros(_DENSE_FACTOR * widest, np.bool_)
    for s in range(n):
        lo = start[s]
        hi = start[s + 1]
        low = price[lo]
        high = price[lo]
        for j in range(lo + 1, hi):
            low = min(low, price[j])
            high = max(high, price[j])
        span = high - low + 1
        w = lo
        if span <= _DENSE_FACTOR * (hi - lo):
            for j in range(lo, hi):
                t = price[j] - low
                tick_buy[t] += buy[j]
                tick_sell[t] += sell[j]
                tick_seen[t] = True
            for t in range(span):
                if tick_seen[t]:
                    price[w] = low + t
                    buy[w] = tick_buy[t]
                    sell[w] = tick_sell[t]
                    w += 1
                    tick_buy[t] = 0
                    tick_sell[t] = 0
                    tick_seen[t] = False
        else:
            order = np.argsort(price[lo:hi])
            p = price[lo:hi][order]
            b = buy[lo:hi][order]
            q = sell[lo:hi][order]
            for k in range(p.size):
                if k > 0 and p[k] == p[k - 1]:
                    buy[w - 1] += b[k]
                    sell[w - 1] += q[k]
                else:
                    price[w] = p[k]
                    buy[w] = b[k]
                    sell[w] = q[k]
                    w += 1
        unique[s] = w - lo
    return start, unique, price, buy, sell, market_buy, market_sell


@numba.njit(cache=True, nogil=True)
def _segment_starts(price, start, unique, seg_start):
    """Each segment's offset: its distinct prices plus the gap points between them."""
    seg_start[0] = 0
    for s in range(unique.size):
        lo = start[s]
        k = 1
        for j in range(lo + 1, lo + unique[s]):
            gap = price[j] - price[j - 1]
            k += 3 if gap >= 3 else gap  # b, plus a + 1 and b - 1 where they differ from a and b
        seg_start[s + 1] = seg_start[s] + k


@numba.njit(cache=True, nogil=True)
def _fill_points(price, buy, sell, start, unique, seg_start, out_price, out_buy, out_sell):
    for s in range(unique.size):
        lo = start[s]
        w = seg_start[s]
        out_price[w] = price[lo]
        out_buy[w] = buy[lo]
        out_sell[w] = sell[lo]
        for j in range(lo + 1, lo + unique[s]):
            a = price[j - 1]
            b = price[j]
            if b - a >= 2:
                w += 1
                out_price[w] = a + 1
                out_buy[w] = 0
                out_sell[w] = 0
            if b - a >= 3:
                w += 1
                out_price[w] = b - 1
                out_buy[w] = 0
                out_sell[w] = 0
            w += 1
            out_price[w] = b
            out_buy[w] = buy[j]
            out_sell[w] = sell[j]
