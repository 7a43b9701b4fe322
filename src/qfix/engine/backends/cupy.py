"""The ``cupy`` backend: the determination pass as one CUDA kernel (NVRTC, int64 only).

One thread owns one instrument's segment and runs the two passes of
:func:`qfix.engine.auction.clearing.determine` (a forward and a reverse prefix sum fused
with the reductions), so the result is the CPU reference's bit for bit. Instruments are
independent, so a batch of thousands keeps the device busy; a single huge instrument
would run on one thread, which is why the engine uses a device only above a configured
instrument count (ENGINE.md §8 rule 4).
"""

from __future__ import annotations

import time
from typing import Any, Final

import numpy as np

from qfix.engine.auction.clearing import NO_PRICE, Clearing
from qfix.engine.auction.grid import PriceGrid
from qfix.engine.backends import BackendUnavailable, Determination

_THREADS: Final = 128

KERNEL_SOURCE: Final = r"""
typedef long long i64;

__device__ __forceinline__ i64 abs64(i64 x) { return x < 0 ? -x : x; }
__device__ __forceinline__ i64 min64(i64 a, i64 b) { return a < b ? a : b; }

extern "C" __global__ void qfix_determine(
    const i64* __restrict__ seg_start, const i64* __restrict__ price,
    const i64* __restrict__ buy_lots, const i64* __restrict__ sell_lots,
    const i64* __restrict__ market_buy, const i64* __restrict__ market_sell,
    const i64* __restrict__ ref, const i64 n, const i64 no_price,
    i64* __restrict__ out_price, i64* __restrict__ out_volume, i64* __restrict__ out_imbalance)
{
    const i64 s = (i64)blockIdx.x * blockDim.x + threadIdx.x;
    if (s >= n) return;
    const i64 lo = seg_start[s];
    const i64 hi = seg_start[s + 1];
    i64 buy_total = market_buy[s];
    for (i64 j = lo; j < hi; ++j) buy_total += buy_lots[j];

    /* pass 1: maximum V, then minimum |I| among the points reaching it */
    i64 best_v = -1, best_abs = 0;
    i64 buy_above = buy_total, sell_below = market_sell[s];
    for (i64 j = lo; j < hi; ++j) {
        sell_below += sell_lots[j];
        const i64 v = min64(buy_above, sell_below);
        const i64 a = abs64(buy_above - sell_below);
        if (v > best_v || (v == best_v && a < best_abs)) { best_v = v; best_abs = a; }
        buy_above -= buy_lots[j];
    }
    if (best_v <= 0) {
        out_price[s] = no_price; out_volume[s] = 0; out_imbalance[s] = 0;
        return;
    }

    /* pass 2: the kept points' signs and the three candidate picks */
    bool any_pos = false, any_neg = false;
    i64 highest = 0, lowest = 0, nearest = 0, nearest_imb = 0, nearest_dist = -1;
    buy_above = buy_total; sell_below = market_sell[s];
    const i64 r = ref[s];
    for (i64 j = lo; j < hi; ++j) {
        sell_below += sell_lots[j];
        const i64 imb = buy_above - sell_below;
        if (min64(buy_above, sell_below) == best_v && abs64(imb) == best_abs) {
            const i64 p = price[j];
            if (imb > 0) any_pos = true; else if (imb < 0) any_neg = true;
            if (nearest_dist < 0) lowest = p;
            highest = p;
            const i64 d = abs64(p - r);
            if (nearest_dist < 0 || d < nearest_dist) { nearest_dist = d; nearest = p; nearest_imb = imb; }
        }
        buy_above -= buy_lots[j];
    }
    out_volume[s] = best_v;
    if (any_pos && !any_neg) { out_price[s] = highest; out_imbalance[s] = best_abs; }
    else if (any_neg && !any_pos) { out_price[s] = lowest; out_imbalance[s] = -best_abs; }
    else { out_price[s] = nearest; out_imbalance[s] = nearest_imb; }
}
"""


class CupyBackend:
    """CUDA through CuPy; raises BackendUnavailable without cupy or a CUDA device."""

    name = "cupy"

    def __init__(self) -> None:
        try:
            import cupy
            import cupyx
        except ImportError as exc:
            raise BackendUnavailable(
                f"cupy is not installed ({exc}); install qfix[cupy] (or the cupy-cuda* wheel matching your CUDA)"
            ) from None
        try:
            count = cupy.cuda.runtime.getDeviceCount()
        except Exception as exc:  # cupy raises its own CUDARuntimeError without a driver
            raise BackendUnavailable(f"cupy found no usable CUDA driver: {exc}") from None
        if count < 1:
            raise BackendUnavailable("cupy found no CUDA device")
        self._cp: Any = cupy
        self._cupyx: Any = cupyx
        props = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)
        name = props["name"].decode() if isinstance(props["name"], bytes) else str(props["name"])
        self.device = f"{name} (CUDA, cupy {cupy.__version__})"
        self._kernel = cupy.RawKernel(KERNEL_SOURCE, "qfix_determine")
        try:
            self._kernel.compile()  # NVRTC: a broken toolkit shows here, not at the first call
        except Exception as exc:
            raise BackendUnavailable(f"cupy could not compile the determination kernel: {exc}") from None
        self.on_gpu = True

    def host_empty(self, n: int, dtype: Any) -> Any:
        """Page-locked host memory from cupy's pinned pool (reused across calls): the copy
        to the device then runs at bus speed, about 6x faster than from pageable memory
        for the auction workload's 23 MB grid on an H200 (docs/benchmarks.md)."""
        return self._cupyx.empty_pinned((n,), dtype)

    def determine(self, grid: PriceGrid) -> Determination:
        cp = self._cp
        start = time.perf_counter()
        device_arrays = [cp.asarray(a) for a in grid.arrays()]
        cp.cuda.Stream.null.synchronize()
        copied_in = time.perf_counter()
        n = grid.n_instruments
        out = [cp.empty(n, dtype=cp.int64) for _ in range(3)]
        blocks = (n + _THREADS - 1) // _THREADS
        if n:
            self._kernel((blocks,), (_THREADS,), (*device_arrays, np.int64(n), np.int64(NO_PRICE), *out))
        cp.cuda.Stream.null.synchronize()
        computed = time.perf_counter()
        price, volume, imbalance = (cp.asnumpy(a) for a in out)
        end = time.perf_counter()
        transfer = (copied_in - start) + (end - computed)
        return Determination(Clearing(price, volume, imbalance), end - start, transfer)
