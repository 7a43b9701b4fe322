"""Ceilings for the cupy auction backend on the auction workload's grid (run on a CUDA machine).

Measures, each the median of 7 runs after a warm-up, on the same grid that ``qfix bench
auction`` uses:

- host -> device copy of the grid's arrays from ordinary (pageable) NumPy memory, as the
  backend does today, and from page-locked (pinned) memory, plus the host copy into it;
- the same for a compact form (int32 price offsets from Ref and int32 lots, half the bytes),
  which is exact whenever the values fit;
- the determination kernel alone (CUDA events), and device -> host of the three results.

Usage: ``python scripts/probe_auction_device.py [--instruments N] [--orders N] --json PATH``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any

import numpy as np


def _median_ms(fn: Any, repeats: int = 7) -> float:
    fn()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1e3)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--instruments", type=int, default=10_000)
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--json", required=True)
    args = parser.parse_args()

    import cupy as cp
    import cupyx

    from qfix.bench.auction import workload
    from qfix.engine.auction import build_grid
    from qfix.engine.backends import load
    from qfix.engine.backends.cupy import _THREADS

    bids, asks, ref, digest = workload(args.instruments, args.orders)
    grid = build_grid(bids, asks, ref)
    arrays = grid.arrays()
    sync = cp.cuda.Stream.null.synchronize

    def h2d_pageable() -> None:
        [cp.asarray(a) for a in arrays]
        sync()

    pinned = [cupyx.empty_pinned(a.shape, a.dtype) for a in arrays]
    device = [cp.empty(a.shape, a.dtype) for a in arrays]

    def fill_pinned() -> None:
        for p, a in zip(pinned, arrays, strict=True):
            np.copyto(p, a)

    def h2d_pinned() -> None:
        for d, p in zip(device, pinned, strict=True):
            d.set(p)
        sync()

    seg = np.repeat(np.arange(grid.n_instruments), np.diff(grid.seg_start))
    offsets = grid.price - grid.ref[seg]
    compact_fits = bool(np.abs(offsets).max() < 2**31 and grid.buy_lots.max() < 2**31 and grid.sell_lots.max() < 2**31)
    compact = [offsets.astype(np.int32), grid.buy_lots.astype(np.int32), grid.sell_lots.astype(np.int32)]
    compact_pinned = [cupyx.empty_pinned(a.shape, a.dtype) for a in compact]
    for p, a in zip(compact_pinned, compact, strict=True):
        np.copyto(p, a)

    def h2d_compact_pageable() -> None:
        [cp.asarray(a) for a in compact]
        sync()

    def h2d_compact_pinned() -> None:
        for p in compact_pinned:
            cp.asarray(p)
        sync()

    backend = load("cupy")
    backend.determine(grid)
    n = grid.n_instruments
    out = [cp.empty(n, dtype=cp.int64) for _ in range(3)]
    blocks = (n + _THREADS - 1) // _THREADS
    from qfix.engine.auction.clearing import NO_PRICE

    def kernel_ms() -> float:
        start, end = cp.cuda.Event(), cp.cuda.Event()
        start.record()
        backend._kernel((blocks,), (_THREADS,), (*device, np.int64(n), np.int64(NO_PRICE), *out))
        end.record()
        end.synchronize()
        return float(cp.cuda.get_elapsed_time(start, end))

    kernel_ms()
    kernel = statistics.median(kernel_ms() for _ in range(7))

    def d2h() -> None:
        [cp.asnumpy(a) for a in out]

    full = [backend.determine(grid) for _ in range(7)]
    doc = {
        "probe": "auction_device",
        "device": backend.device,
        "workload_blake2b": digest,
        "grid_points": grid.n_points,
        "grid_bytes": grid.nbytes(),
        "compact_bytes": int(sum(a.nbytes for a in compact)) + int(grid.seg_start.nbytes + 3 * ref.nbytes),
        "compact_fits": compact_fits,
        "h2d_pageable_ms": _median_ms(h2d_pageable),
        "host_copy_into_pinned_ms": _median_ms(fill_pinned),
        "h2d_pinned_ms": _median_ms(h2d_pinned),
        "h2d_compact_pageable_ms": _median_ms(h2d_compact_pageable),
        "h2d_compact_pinned_ms": _median_ms(h2d_compact_pinned),
        "kernel_ms": kernel,
        "d2h_results_ms": _median_ms(d2h),
        "backend_determine_ms": statistics.median(r.total_s * 1e3 for r in full),
        "backend_transfer_ms": statistics.median(r.transfer_s * 1e3 for r in full),
    }
    with open(args.json, "w", encoding="utf-8") as fh:
        json.dump(doc, fh, indent=2)
    print(json.dumps(doc, indent=2))


if __name__ == "__main__":
    main()
