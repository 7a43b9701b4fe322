"""Uniform-price determination (ENGINE.md §7.4) on the CPU: the reference every backend
must equal bit for bit.

Per instrument, over its grid points ascending: D(p) = market buys + limit buys priced
>= p (a reverse prefix sum), S(p) = market sells + limit sells priced <= p (a forward
prefix sum), V = min(D, S), I = D − S. The rules, in order: maximum V (0 means no cross),
then minimum |I|; then buy pressure (every kept I > 0: highest price), sell pressure
(every kept I < 0: lowest price), else the kept price closest to Ref. Kept sets are
contiguous, so each rule's pick is unique.

The pass runs twice over a segment instead of storing D and S: the first finds the
maximum V and the minimum |I| there, the second reads the kept points' signs and the three
candidate picks. Both loops are the sequential form of the segmented scans and reductions
that the device backends run (:mod:`qfix.engine.backends`).
"""

# Jitted passes take arrays whose types Numba infers; annotating them would be decorative.
# mypy: allow-untyped-defs, allow-incomplete-defs, allow-untyped-calls

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numba
import numpy as np

from qfix.engine.auction.orders import Int64Array
from qfix.wire.codes import IMBALANCE_BUY, IMBALANCE_NONE, IMBALANCE_SELL, NULL_PRICE

#: the clearing price of an instrument that does not cross (the wire's null price)
NO_PRICE: Final = NULL_PRICE


@dataclass(frozen=True)
class Clearing:
    """Per instrument: clearing price P (``NO_PRICE`` where V = 0), matched volume V and
    the signed imbalance I = D(P) − S(P) (0 where V = 0)."""

    price: Int64Array
    volume: Int64Array
    imbalance: Int64Array

    @property
    def crossed(self) -> np.ndarray:
        return self.volume > 0

    @property
    def imbalance_side(self) -> np.ndarray:
        """WIRE.md ImbalanceSide codes: buy where I > 0, sell where I < 0, else none."""
        side = np.full(self.imbalance.size, IMBALANCE_NONE, np.uint8)
        side[self.imbalance > 0] = IMBALANCE_BUY
        side[self.imbalance < 0] = IMBALANCE_SELL
        return side

    def equals(self, other: Clearing) -> bool:
        return bool(
            np.array_equal(self.price, other.price)
            and np.array_equal(self.volume, other.volume)
            and np.array_equal(self.imbalance, other.imbalance)
        )


@numba.njit(cache=True, nogil=True)
def determine(seg_start, price, buy_lots, sell_lots, market_buy, market_sell, ref):
    """(P, V, I) of every instrument of a :class:`~qfix.engine.auction.grid.PriceGrid`."""
    n = ref.size
    out_price = np.empty(n, np.int64)
    out_volume = np.zeros(n, np.int64)
    out_imbalance = np.zeros(n, np.int64)
    for s in range(n):
        lo = seg_start[s]
        hi = seg_start[s + 1]
        buy_total = market_buy[s]
        for j in range(lo, hi):
            buy_total += buy_lots[j]
        # pass 1: the maximum V, and the minimum |I| among the points that reach it
        best_v = np.int64(-1)
        best_abs = np.int64(0)
        buy_above = buy_total  # D(p): market buys plus limit buys priced >= p
        sell_below = market_sell[s]  # S(p) once this point's sells are added
        for j in range(lo, hi):
            sell_below += sell_lots[j]
            v = min(buy_above, sell_below)
            a = abs(buy_above - sell_below)
            if v > best_v or (v == best_v and a < best_abs):
                best_v = v
                best_abs = a
            buy_above -= buy_lots[j]
        if best_v <= 0:
            out_price[s] = NO_PRICE
            continue
        # pass 2: over the kept points, the signs and the three candidate picks
        any_pos = False
        any_neg = False
        highest = np.int64(0)
        lowest = np.int64(0)
        nearest = np.int64(0)
        nearest_imb = np.int64(0)
        nearest_dist = np.int64(-1)
        buy_above = buy_total
        sell_below = market_sell[s]
        for j in range(lo, hi):
            sell_below += sell_lots[j]
            imb = buy_above - sell_below
            if min(buy_above, sell_below) == best_v and abs(imb) == best_abs:
                p = price[j]
                if imb > 0:
                    any_pos = True
                elif imb < 0:
                    any_neg = True
                if nearest_dist < 0:
                    lowest = p
                highest = p
                d = abs(p - ref[s])
                if nearest_dist < 0 or d < nearest_dist:
                    nearest_dist = d
                    nearest = p
                    nearest_imb = imb
            buy_above -= buy_lots[j]
        out_volume[s] = best_v
        if any_pos and not any_neg:
            out_price[s] = highest
            out_imbalance[s] = best_abs
        elif any_neg and not any_pos:
            out_price[s] = lowest
            out_imbalance[s] = -best_abs
        else:
            out_price[s] = nearest
            out_imbalance[s] = nearest_imb
    return out_price, out_volume, out_imbalance
