"""The ``mlx`` backend: the segmented array formulation (:mod:`.segmented`) on MLX's default
device: Metal on Apple silicon, CUDA with ``mlx[cuda13]``, else the CPU (``mlx[cpu]`` on
Linux). Segmented reductions are MLX scatters (``array.at[seg].maximum``), exact in int64.
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
        device = mx.default_device()
        self.on_gpu = device.type == mx.gpu
        version = getattr(mx, "__version__", "?")
        self.device = f"{device} (mlx {version})"

    def host_empty(self, n: int, dtype: Any) -> Any:
        return np.empty(n, dtype)

    def determine(self, grid: PriceGrid) -> Determination:
        mx = self._mx
        start = time.perf_counter()
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
