"""``batch_match``: a uniform-price call auction over many instruments at once.

The host builds the price grids, a backend determines every clearing price (the only
data-parallel step, ENGINE.md §8), and the host allocates and pairs the fills.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import numpy as np
import numpy.typing as npt

from qfix.engine.auction.allocation import ALLOCATIONS, PRO_RATA, Trades, allocate
from qfix.engine.auction.clearing import Clearing
from qfix.engine.auction.grid import build_grid
from qfix.engine.auction.orders import Int64Array, Orders

if TYPE_CHECKING:
    from qfix.engine.backends import Backend

#: ENGINE.md §8 rule 4: below this many instruments ``auto`` stays on the CPU, where a
#: device's launch and copies cost more than the pass itself
DEVICE_MIN_INSTRUMENTS: Final = 256


@dataclass(frozen=True)
class BatchMatch:
    """What one call auction over every instrument produced, and where its time went."""

    clearing: Clearing
    trades: Trades
    bid_filled: Int64Array  #: lots each bid row received
    ask_filled: Int64Array  #: lots each ask row received
    backend: str  #: the backend that determined the prices
    grid_s: float  #: building the price grids (host)
    determine_s: float  #: the determination, copies included
    transfer_s: float  #: host <-> device copies within the determination
    allocate_s: float  #: allocation and pairing (host)


def resolve_backend(backend: str | Backend | None, n_instruments: int) -> Backend:
    """The backend for ``backend`` (a name, a loaded backend, ``"auto"`` or None for
    $QFIX_AUCTION_BACKEND else auto) over ``n_instruments``: auto stays on the CPU below
    :data:`DEVICE_MIN_INSTRUMENTS`. A named backend that cannot run raises."""
    from qfix.engine import backends

    if backend is None:
        backend = os.environ.get(backends.ENV_VAR) or "auto"
    if backend == "auto":
        if n_instruments < DEVICE_MIN_INSTRUMENTS:
            return backends.load("cpu")
        return backends.select("auto")[0]
    if isinstance(backend, str):
        return backends.load(backend)
    return backend


def batch_match(
    bids: Orders,
    asks: Orders,
    ref: npt.ArrayLike,
    *,
    allocation: str = "time",
    backend: str | Backend | None = "auto",
) -> BatchMatch:
    """Uncross every instrument (``len(ref)`` of them) at its uniform clearing price.

    ``ref`` is each instrument's reference price in ticks; ``allocation`` is ``"time"`` or
    ``"pro_rata"`` (the margin rule of ENGINE.md §7.5); ``backend`` is a backend name
    (``cpu``, ``cupy``, ``mlx``), a loaded backend, ``"auto"`` (a device only from
    :data:`DEVICE_MIN_INSTRUMENTS` instruments up) or None ($QFIX_AUCTION_BACKEND, else
    auto). A named backend that cannot run raises BackendUnavailable; bad arrays raise
    ValueError naming the field and row. Returns prices, trades and fills per order.
    """
    if allocation not in ALLOCATIONS:
        raise ValueError(f"allocation {allocation!r}: choose one of {', '.join(ALLOCATIONS)}")
    ref_array = np.asarray(ref)
    engine = resolve_backend(backend, int(ref_array.size))
    start = time.perf_counter()
    grid = build_grid(bids, asks, ref_array, engine.host_empty)
    grid_done = time.perf_counter()
    determination = engine.determine(grid)
    clearing = determination.clearing
    allocate_start = time.perf_counter()
    b_filled, a_filled, t_inst, t_bid, t_ask, t_qty = allocate(
        clearing.price, clearing.volume, bids, asks, ALLOCATIONS[allocation] == PRO_RATA
    )
    end = time.perf_counter()
    trades = Trades(t_inst, t_bid, t_ask, t_qty, clearing.price[t_inst])
    return BatchMatch(
        clearing,
        trades,
        b_filled,
        a_filled,
        engine.name,
        grid_done - start,
        determination.total_s,
        determination.transfer_s,
        end - allocate_start,
    )
