"""The determination as whole-array operations: segmented prefix sums and segmented
reductions (ENGINE.md §8 rule 3), for array libraries that have no custom kernels at hand.

Written once against :class:`ArrayOps`, a handful of primitives (cumsum, gather, where,
scatter-max and scatter-min into per-segment slots) that MLX, CuPy and NumPy all provide in
some form; every value is int64, so each backend computes exactly what the CPU reference
computes. The steps mirror :func:`qfix.engine.auction.clearing.determine`:

1. ``seg`` (the instrument of each point) from the segment starts;
2. D and S from global prefix sums minus each segment's base (exact in int64);
3. max V per segment, then min |I| among the points reaching it; the kept points;
4. per segment: any kept I > 0, any kept I < 0, the highest and lowest kept price, the
   kept point nearest Ref (unique, since kept points are contiguous) and its I;
5. the rule that applies picks P and I; V = 0 gives no price.
"""

from __future__ import annotations

from typing import Any, Final, Protocol

from qfix.engine.auction.clearing import NO_PRICE

INT64_MIN: Final = -(2**63)
INT64_MAX: Final = 2**63 - 1


class ArrayOps(Protocol):
    """The primitives one array library lends the formulation (arrays are int64 unless noted)."""

    def asarray(self, host: Any) -> Any: ...
    def full(self, n: int, value: int) -> Any: ...
    def cumsum(self, a: Any) -> Any: ...
    def take(self, a: Any, index: Any) -> Any: ...
    def where(self, condition: Any, a: Any, b: Any) -> Any: ...
    def minimum(self, a: Any, b: Any) -> Any: ...
    def abs(self, a: Any) -> Any: ...
    def astype_int64(self, a: Any) -> Any: ...
    def segment_max(self, n: int, seg: Any, values: Any, initial: int) -> Any: ...
    def segment_min(self, n: int, seg: Any, values: Any, initial: int) -> Any: ...
    def scatter_add_ones(self, size: int, index: Any) -> Any: ...


def determine_arrays(ops: ArrayOps, arrays: tuple[Any, ...]) -> tuple[Any, Any, Any]:
    """(P, V, I) per instrument, as the library's arrays, from a grid's device arrays
    (:meth:`PriceGrid.arrays` order)."""
    seg_start, price, buy, sell, market_buy, market_sell, ref = arrays
    n = int(ref.shape[0])
    g = int(price.shape[0])
    starts = seg_start[:n]
    last = seg_start[1:] - 1
    # 1. the instrument of each point: a 1 at each later segment's start, prefix-summed
    seg = ops.cumsum(ops.scatter_add_ones(g, seg_start[1:n]))
    # 2. D(p) = market buys + buys priced >= p; S(p) = market sells + sells priced <= p
    cum_buy = ops.cumsum(buy)
    cum_sell = ops.cumsum(sell)
    buy_end = ops.take(cum_buy, last)
    sell_base = ops.take(cum_sell, starts) - ops.take(sell, starts)
    demand = ops.take(market_buy + buy_end, seg) - cum_buy + buy
    supply = ops.take(market_sell - sell_base, seg) + cum_sell
    volume = ops.minimum(demand, supply)
    imbalance = demand - supply
    size = ops.abs(imbalance)
    # 3. the kept points
    best_v = ops.segment_max(n, seg, volume, 0)
    at_best = volume == ops.take(best_v, seg)
    best_abs = ops.segment_min(n, seg, ops.where(at_best, size, INT64_MAX), INT64_MAX)
    kept = at_best & (size == ops.take(best_abs, seg)) & (ops.take(best_v, seg) > 0)
    # 4. what each rule needs
    any_pos = ops.segment_max(n, seg, ops.astype_int64(kept & (imbalance > 0)), 0) > 0
    any_neg = ops.segment_max(n, seg, ops.astype_int64(kept & (imbalance < 0)), 0) > 0
    highest = ops.segment_max(n, seg, ops.where(kept, price, INT64_MIN), INT64_MIN)
    lowest = ops.segment_min(n, seg, ops.where(kept, price, INT64_MAX), INT64_MAX)
    distance = ops.where(kept, ops.abs(price - ops.take(ref, seg)), INT64_MAX)
    nearest_distance = ops.segment_min(n, seg, distance, INT64_MAX)
    is_nearest = kept & (distance == ops.take(nearest_distance, seg))
    nearest = ops.segment_max(n, seg, ops.where(is_nearest, price, INT64_MIN), INT64_MIN)
    nearest_imb = ops.segment_max(n, seg, ops.where(is_nearest, imbalance, INT64_MIN), INT64_MIN)
    # 5. the rules
    up = any_pos & ~any_neg
    down = any_neg & ~any_pos
    crossed = best_v > 0
    out_price = ops.where(up, highest, ops.where(down, lowest, nearest))
    out_imb = ops.where(up, best_abs, ops.where(down, -best_abs, nearest_imb))
    out_price = ops.where(crossed, out_price, NO_PRICE)
    out_imb = ops.where(crossed, out_imb, 0)
    return out_price, best_v, out_imb
