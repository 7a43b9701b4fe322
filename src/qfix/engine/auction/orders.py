"""One side of a call auction's order book as plain arrays: what :func:`batch_match` and the
grid builder take.

Prices are integer ticks (an engine divides by the instrument's tick size first); lots are
integers. Every check happens here, once, so the jitted passes behind it can trust their
input: a bad array is refused with a :class:`ValueError` that names the field and the
first offending row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

#: prices and Ref must stay this far inside int64 so that every candidate price, gap point
#: and distance |p - Ref| of ENGINE.md §7.4 is exact in int64
PRICE_LIMIT: Final = 2**62
#: an order's lots (ENGINE.md §7.5's pro-rata arithmetic assumes qi < 2^32)
QTY_LIMIT: Final = 2**32

Int64Array = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


def _int64(name: str, values: npt.ArrayLike) -> Int64Array:
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D array, got shape {array.shape}")
    if array.size and not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"{name}: expected integers, got {array.dtype}")
    if array.dtype == np.uint64 and array.size and int(array.max()) >= 2**63:
        raise ValueError(f"{name}: value {int(array.max())} does not fit int64")
    return np.ascontiguousarray(array, dtype=np.int64)


def _first_bad(mask: BoolArray) -> int:
    return int(np.flatnonzero(mask)[0])


@dataclass(frozen=True)
class Orders:
    """One side's orders: row ``i`` is one order.

    - ``instrument``: index of its instrument, ``0 <= instrument < n_instruments``;
    - ``price``: limit price in ticks (ignored where ``market``), ``|price| < 2**62``;
    - ``qty``: lots taking part (the Leaves, hidden quantity included), ``1 <= qty < 2**32``;
    - ``market``: a market order (takes part at any price, ahead of every limit);
    - ``priority``: time priority (PrioSeq), smaller first; equal values keep row order.
    """

    instrument: Int64Array
    price: Int64Array
    qty: Int64Array
    market: BoolArray
    priority: Int64Array

    @classmethod
    def from_arrays(
        cls,
        instrument: npt.ArrayLike,
        price: npt.ArrayLike,
        qty: npt.ArrayLike,
        market: npt.ArrayLike | None = None,
        priority: npt.ArrayLike | None = None,
    ) -> Orders:
        """Copies into contiguous int64/bool arrays; ``market`` defaults to all limits and
        ``priority`` to row order."""
        inst = _int64("instrument", instrument)
        n = inst.size
        mkt = np.zeros(n, np.bool_) if market is None else np.ascontiguousarray(market, dtype=np.bool_)
        prio = np.arange(n, dtype=np.int64) if priority is None else _int64("priority", priority)
        return cls(inst, _int64("price", price), _int64("qty", qty), mkt, prio)

    @classmethod
    def empty(cls) -> Orders:
        return cls.from_arrays(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64))

    def __len__(self) -> int:
        return int(self.instrument.size)

    def validate(self, n_instruments: int, side: str) -> None:
        """Raise ValueError naming ``side``, the field and the first bad row."""
        n = len(self)
        for name in ("price", "qty", "market", "priority"):
            array = getattr(self, name)
            if array.shape != (n,):
                raise ValueError(f"{side}.{name}: {array.shape[0]} rows, expected {n} (as instrument)")
        if n == 0:
            return
        bad = (self.instrument < 0) | (self.instrument >= n_instruments)
        if bad.any():
            i = _first_bad(bad)
            raise ValueError(f"{side}.instrument[{i}] = {self.instrument[i]}: outside 0..{n_instruments - 1}")
        bad = (self.qty < 1) | (self.qty >= QTY_LIMIT)
        if bad.any():
            i = _first_bad(bad)
            raise ValueError(f"{side}.qty[{i}] = {self.qty[i]}: lots must be 1..{QTY_LIMIT - 1}")
        bad = ~self.market & ((self.price <= -PRICE_LIMIT) | (self.price >= PRICE_LIMIT))
        if bad.any():
            i = _first_bad(bad)
            raise ValueError(f"{side}.price[{i}] = {self.price[i]}: a limit price must be inside ±2**62 ticks")


def validate_ref(ref: npt.ArrayLike) -> Int64Array:
    """The per-instrument reference prices (ENGINE.md §7.4's Ref), checked like prices."""
    out = _int64("ref", ref)
    bad = (out <= -PRICE_LIMIT) | (out >= PRICE_LIMIT)
    if bad.any():
        i = _first_bad(bad)
        raise ValueError(f"ref[{i}] = {out[i]}: must be inside ±2**62 ticks")
    return out
