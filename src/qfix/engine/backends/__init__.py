"""Array backends for the clearing-price determination of call auctions (ENGINE.md §8).

``cpu`` is the Numba reference (:func:`qfix.engine.auction.clearing.determine`); ``cupy``
runs the same segmented pass as a CUDA kernel; ``mlx`` runs it as array operations on MLX's
default device where that device can (not Metal: no int64 scatters there), else on MLX's
CPU. Every backend returns the same
int64 results bit for bit; only the host builds grids, allocates and writes outputs.

Choosing: :func:`load` gives the backend named, or raises :class:`BackendUnavailable` with
the reason (never a silent fallback); :func:`select` resolves ``auto`` (cupy with a CUDA
device, else mlx with a GPU, else cpu) and says why it chose what it chose. The environment
variable ``QFIX_AUCTION_BACKEND`` (auto|cpu|cupy|mlx) overrides the default of ``auto``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Protocol

import numpy as np

from qfix.engine.auction.clearing import Clearing
from qfix.engine.auction.grid import PriceGrid

NAMES: Final = ("cpu", "cupy", "mlx")
ENV_VAR: Final = "QFIX_AUCTION_BACKEND"


class BackendUnavailable(RuntimeError):
    """The backend asked for cannot run here; the message says why and what to install."""


@dataclass(frozen=True)
class Determination:
    """A determination's result and where its time went (seconds)."""

    clearing: Clearing
    total_s: float  #: the whole call: grids in, P/V/I on the host out
    transfer_s: float  #: host <-> device copies within it (0 for cpu)


class Backend(Protocol):
    name: str
    #: what it runs on, e.g. "NVIDIA H200 (CUDA, cupy 14.2.0)"
    device: str

    def determine(self, grid: PriceGrid) -> Determination: ...

    def host_empty(self, n: int, dtype: Any) -> Any:
        """Host memory for a grid this backend will read (page-locked for a CUDA device)."""
        ...


class CpuBackend:
    """The reference: the Numba pass on this process's thread."""

    name = "cpu"

    def __init__(self) -> None:
        import numba

        self.device = f"host CPU (Numba {numba.__version__})"

    def determine(self, grid: PriceGrid) -> Determination:
        from qfix.engine.auction.clearing import determine

        start = time.perf_counter()
        price, volume, imbalance = determine(*grid.arrays())
        return Determination(Clearing(price, volume, imbalance), time.perf_counter() - start, 0.0)

    def host_empty(self, n: int, dtype: Any) -> Any:
        return np.empty(n, dtype)


def _load_cupy() -> Backend:
    from qfix.engine.backends.cupy import CupyBackend

    return CupyBackend()


def _load_mlx() -> Backend:
    from qfix.engine.backends.mlx import MlxBackend

    return MlxBackend()


_LOADERS: Final[dict[str, Callable[[], Backend]]] = {"cpu": CpuBackend, "cupy": _load_cupy, "mlx": _load_mlx}


def load(name: str) -> Backend:
    """The backend ``name`` (one of :data:`NAMES`), or BackendUnavailable saying why not."""
    if name not in _LOADERS:
        raise BackendUnavailable(f"unknown auction backend {name!r}: choose one of auto, {', '.join(NAMES)}")
    return _LOADERS[name]()


def availability() -> dict[str, str | None]:
    """Each backend's reason for being unavailable here, or None where it loads."""
    reasons: dict[str, str | None] = {}
    for name in NAMES:
        try:
            load(name)
        except BackendUnavailable as exc:
            reasons[name] = str(exc)
        else:
            reasons[name] = None
    return reasons


def select(name: str | None = None) -> tuple[Backend, str]:
    """The backend for ``name`` (default: $QFIX_AUCTION_BACKEND, else ``auto``) and why.

    A backend named explicitly must load or this raises; ``auto`` tries cupy, then mlx with
    a GPU, then cpu, and the reason lists what it passed over.
    """
    choice = name if name is not None else os.environ.get(ENV_VAR, "auto") or "auto"
    if choice != "auto":
        backend = load(choice)
        how = "named" if name is not None else f"from ${ENV_VAR}"
        return backend, f"{choice} ({how}): {backend.device}"
    skipped = []
    for candidate in ("cupy", "mlx"):
        try:
            backend = load(candidate)
        except BackendUnavailable as exc:
            skipped.append(f"{candidate}: {exc}")
            continue
        if candidate == "mlx" and not getattr(backend, "on_gpu", False):
            skipped.append(f"mlx: runs on the CPU only here ({backend.device})")
            continue
        return backend, f"auto chose {candidate}: {backend.device}"
    backend = load("cpu")
    return backend, "auto chose cpu (" + "; ".join(skipped) + ")"
