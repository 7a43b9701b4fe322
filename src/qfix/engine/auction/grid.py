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

from dataclasses import dataclass

import numba
import numpy as np

from qfix.engine.auction.orders import Int64Array, Orders, validate_ref


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


def build_grid(bids: Orders, asks: Orders, ref: Int64Array) -> PriceGrid:
    """The grid of every instrument (``len(ref)`` of them) from both sides' orders."""
    ref = validate_ref(ref)
    n = int(ref.size)
    bids.validate(n, "bids")
    asks.validate(n, "asks")
    seg_start, price, buy_lots, sell_lots, market_buy, market_sell = _build_grid(
        ref, bids.instrument, bids.price, bids.qty, bids.market, asks.instrument, asks.price, asks.qty, asks.market
    )
    return PriceGrid(seg_start, price, buy_lots, sell_lots, market_buy, market_sell, ref.copy())


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
def _build_grid(ref, b_inst, b_price, b_qty, b_mkt, a_inst, a_price, a_qty, a_mkt):
    n = ref.size
    start, price, buy, sell, market_buy, market_sell = _bucket(
        n, ref, b_inst, b_price, b_qty, b_mkt, a_inst, a_price, a_qty, a_mkt
    )
    # pass 1: sort each instrument's entries by price in place; count its grid points
    points = np.zeros(n, np.int64)
    for s in range(n):
        lo = start[s]
        hi = start[s + 1]
        order = np.argsort(price[lo:hi])
        p = price[lo:hi][order]
        b = buy[lo:hi][order]
        q = sell[lo:hi][order]
        price[lo:hi] = p
        buy[lo:hi] = b
        sell[lo:hi] = q
        k = 1
        for j in range(lo + 1, hi):
            gap = price[j] - price[j - 1]
            if gap >= 3:
                k += 3  # a + 1, b - 1 and b
            elif gap == 2:
                k += 2  # a + 1 (= b - 1) and b
            elif gap == 1:
                k += 1
        points[s] = k
    seg_start = np.zeros(n + 1, np.int64)
    for s in range(n):
        seg_start[s + 1] = seg_start[s] + points[s]
    g = seg_start[n]
    out_price = np.empty(g, np.int64)
    out_buy = np.zeros(g, np.int64)
    out_sell = np.zeros(g, np.int64)
    # pass 2: merge equal prices, insert the gap points
    for s in range(n):
        w = seg_start[s]
        lo = start[s]
        out_price[w] = price[lo]
        out_buy[w] += buy[lo]
        out_sell[w] += sell[lo]
        for j in range(lo + 1, start[s + 1]):
            a = price[j - 1]
            b = price[j]
            if b != a:
                if b - a >= 2:
                    w += 1
                    out_price[w] = a + 1
                if b - a >= 3:
                    w += 1
                    out_price[w] = b - 1
                w += 1
                out_price[w] = b
            out_buy[w] += buy[j]
            out_sell[w] += sell[j]
    return seg_start, out_price, out_buy, out_sell, market_buy, market_sell
