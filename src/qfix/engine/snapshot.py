"""Compact snapshots of the fast engine's state (for the journal's checkpoints).

Theory of operation: a snapshot holds only what the state hash covers plus the
event-hash link: the id counters and LastTime, the non-zero LastClOrdIDs, each
instrument's mutable columns, and the live order records in state-hash order. Levels,
price maps and indices are derived data: :func:`restore` writes the orders into slots
0..n-1 of a fresh engine and rebuilds everything else with one kernel pass
(``_kernels.relink``), which sees each level's orders in PrioSeq order. A restored
engine therefore has the same state hash and produces the same bytes as the original.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
from numpy.lib.recfunctions import repack_fields

from qfix.engine import _kernels as kern
from qfix.engine import types as ty
from qfix.engine.config import EngineConfig, InstrumentConfig
from qfix.engine.contract import EngineInvariantError
from qfix.engine.engine import Engine

Array = npt.NDArray[Any]

FORMAT_VERSION: Final = 1
_COUNTERS: Final = (ty.C_NEXT_OID, ty.C_NEXT_EXEC, ty.C_NEXT_TRADE, ty.C_NEXT_PRIO, ty.C_LAST_TIME)
_INSTRUMENT_COLUMNS: Final = (
    "sec_id",
    "phase",
    "ref",
    "lo",
    "hi",
    "next_uncross",
    "ind_p",
    "ind_v",
    "ind_i",
    "ind_side",
)


def export(engine: Engine) -> dict[str, Array]:
    """The engine's state as a dict of arrays (see the module docstring)."""
    sessions = np.flatnonzero(engine._last_cl).astype(np.int64)
    return {
        "version": np.array([FORMAT_VERSION], np.int64),
        "counters": engine._ctr[list(_COUNTERS)].copy(),
        "sessions": sessions,
        "last_clordid": engine._last_cl[sessions].copy(),
        "instruments": repack_fields(engine._insts[list(_INSTRUMENT_COLUMNS)]),
        "orders": engine.live_orders(),
        "event_hash": np.frombuffer(engine.event_hash(), np.uint8).copy(),
    }


def restore(
    instruments: Sequence[InstrumentConfig], snapshot: dict[str, Array], config: EngineConfig | None = None
) -> Engine:
    """A new engine in the state ``snapshot`` captured (same instrument table required)."""
    if int(snapshot["version"][0]) != FORMAT_VERSION:
        raise ValueError(f"snapshot format {int(snapshot['version'][0])} is not {FORMAT_VERSION}")
    config = config if config is not None else EngineConfig()
    engine = Engine(instruments, config)
    inst = snapshot["instruments"]
    if not np.array_equal(inst["sec_id"], engine._insts["sec_id"]):
        raise ValueError("snapshot instruments differ from the instrument table")
    orders = snapshot["orders"]
    if orders.shape[0] > config.max_orders:
        raise ValueError("snapshot holds more orders than EngineConfig.max_orders")
    for name in _INSTRUMENT_COLUMNS:
        engine._insts[name] = inst[name]
    engine._ctr[list(_COUNTERS)] = snapshot["counters"]
    engine._last_cl[snapshot["sessions"]] = snapshot["last_clordid"]
    n = orders.shape[0]
    engine._orders[:n] = orders.astype(ty.ORDER)
    if not kern.relink(engine._S, n):
        raise EngineInvariantError("snapshot does not fit the configured MaxLevels")
    engine._ehash = bytes(snapshot["event_hash"].tobytes())
    engine.check_invariants()
    return engine


def save(path: str | Path, snapshot: dict[str, Array]) -> None:
    """Write a snapshot as an uncompressed ``.npz`` file."""
    np.savez(Path(path), **snapshot)  # type: ignore[arg-type]


def load(path: str | Path) -> dict[str, Array]:
    """Read a snapshot written by :func:`save`."""
    with np.load(Path(path), allow_pickle=False) as data:
        return {key: data[key] for key in data.files}
