"""The ``mlx`` backend: the segmented array formulation (:mod:`.segmented`) on MLX's default
device: CUDA with ``mlx[cuda13]``, else the CPU (``mlx[cpu]`` on Linux, or on Apple
silicon, below). Segmented reductions are MLX scatters (``array.at[seg].maximum``), exact
in int64.

A two-instrument determination is run when the backend loads. On Apple GPUs it fails:
Metal has no 64-bit atomics, and MLX refuses int64 scatters there. The backend then runs
on MLX's CPU device, says so in ``device``, and ``auto`` passes it over. A device that
gives wrong results, or where even the CPU fails, makes the backend unavailable.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from qfix.engine.auction.clearing import Clearing
from qfix.engine.auction.grid import PriceGrid
from qfix.engine.backends import BackendUnavailable, Determination
from qfix.engine.backends.segmented import determine_arrays


class MlxOps:
    """:class:`~qfix.engine.backends.segmented.ArrayOps` over ``mlx.core``."""

    def __init__(self, mx: Any) -> None:
        self.mx = mx

    def asarray(self, host: Any) -> Any:
        return self.mx.array(host)

    def full(self, n: int, value: int) -> Any:
        return self.mx.full((n,), value, dtype=self.mx.int64)

    def cumsum(self, a: Any) -> Any:
        return self.mx.cumsum(a)

    def take(self, a: Any, index: Any) -> Any:
        return self.mx.take(a, index)

    def where(self, condition: Any, a: Any, b: Any) -> Any:
        return self.mx.where(condition, a, b)

    def minimum(self, a: Any, b: Any) -> Any:
        return self.mx.minimum(a, b)

    def abs(self, a: Any) -> Any:
        return self.mx.abs(a)

    def astype_int64(self, a: Any) -> Any:
        return a.astype(self.mx.int64)

    def segment_max(self, n: int, seg: Any, values: Any, initial: int) -> Any:
        return self.full(n, initial).at[seg].maximum(values)

    def segment_min(self, n: int, seg: Any, values: Any, initial: int) -> Any:
        return self.full(n, initial).at[seg].minimum(values)

    def scatter_add_ones(self, size: int, index: Any) -> Any:
        ones = self.mx.ones(index.shape, dtype=self.mx.int64)
        return self.mx.zeros((size,), dtype=self.mx.int64).at[index].add(ones)


def _probe(mx: Any, ops: MlxOps, device: Any) -> str | None:
    """Run a two-instrument determination on ``device``; None if it works, else why not."""
    from qfix.engine.auction.clearing import determine

    # two instruments that both cross: (seg_start, price, buy, sell, market buy, market sell, ref)
    grid = (
        np.array([0, 2, 3], np.int64),
        np.array([10, 11, 5], np.int64),
        np.array([0, 3, 0], np.int64),
        np.array([2, 0, 0], np.int64),
        np.array([0, 1], np.int64),
        np.array([0, 1], np.int64),
        np.array([10, 5], np.int64),
    )
    try:
        with mx.stream(device):
            got = determine_arrays(ops, tuple(mx.array(a) for a in grid))
            mx.eval(*got)
    except Exception as exc:  # MLX raises plain RuntimeError/ValueError for unsupported ops
        return str(exc)
    want = determine(*grid)
    if any(not np.array_equal(np.array(g, dtype=np.int64), w) for g, w in zip(got, want, strict=True)):
        return "results differ from the CPU reference"
    return None


class MlxBackend:
    """MLX on its default device; raises BackendUnavailable without mlx."""

    name = "mlx"

    def __init__(self) -> None:
        try:
            import mlx.core as mx
        except ImportError as exc:
            raise BackendUnavailable(
                f"mlx is not installed ({exc}); install qfix[mlx] (mlx[cpu] on Linux, mlx on macOS)"
            ) from None
        except Exception as exc:  # a broken install (missing shared library, wrong CUDA)
            raise BackendUnavailable(f"mlx failed to load: {exc}") from None
        self._mx: Any = mx
        self._ops = MlxOps(mx)
        version = getattr(mx, "__version__", "?")
        device = mx.default_device()
        refused = _probe(mx, self._ops, device)
        if refused is not None and device.type == mx.gpu:
            # Metal has no 64-bit atomics, so MLX refuses int64 scatters on Apple GPUs: run
            # the same formulation on MLX's CPU device and say so (auto then passes over it)
            device = mx.Device(mx.cpu)
            retry = _probe(mx, self._ops, device)
            if retry is not None:
                raise BackendUnavailable(f"mlx cannot run the determination: {retry}")
            self.device = f"{device} (mlx {version}; the GPU could not run it: {refused})"
        elif refused is not None:
            raise BackendUnavailable(f"mlx cannot run the determination on {device}: {refused}")
        else:
            self.device = f"{device} (mlx {version})"
        self._stream = device
        self.on_gpu = device.type == mx.gpu

    def host_empty(self, n: int, dtype: Any) -> Any:
        return np.empty(n, dtype)

    def determine(self, grid: PriceGrid) -> Determination:
        mx = self._mx
        start = time.perf_counter()
        with mx.stream(self._stream):
            device_arrays = tuple(mx.array(a) for a in grid.arrays())
            mx.eval(*device_arrays)
            copied_in = time.perf_counter()
            results = determine_arrays(self._ops, device_arrays)
            mx.eval(*results)
        computed = time.perf_counter()
        price, volume, imbalance = (np.array(a, dtype=np.int64) for a in results)
        end = time.perf_counter()
        transfer = (copied_in - start) + (end - computed)
        return Determination(Clearing(price, volume, imbalance), end - start, transfer)
