"""Snapshot files and dicts are untrusted input (issue 8 item 4).

Before, restore handed the file's orders straight to the relink kernel: an instrument
index out of range or a side of 5 crashed the process (the kernels have no bounds
checks), and an OrderID at or above the next OrderID, a session out of range, a negative
counter or a 3-byte event hash were accepted silently. Now the file carries a format
version and a BLAKE2b checksum, every field is validated in NumPy first, and anything bad
raises SnapshotError (a ValueError) naming the field. These tests corrupt a rich snapshot
every way they can: truncations, bit flips, and every field of every array set to
out-of-range values, through the file path (re-checksummed) and the dict path.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _engine_records import batch, instrument, new_out, nos

from qfix.engine import Engine, EngineConfig, SnapshotError
from qfix.engine import snapshot as snap
from qfix.engine.config import PHASE_PRE_OPEN
from qfix.wire import codes

CONFIG = EngineConfig(max_orders=64, max_levels=32, max_instruments=4, max_sessions=16, stp_groups={7: 3},
                      event_hash=True)  # fmt: skip
INSTRUMENTS = [instrument(1), instrument(2, phase=PHASE_PRE_OPEN), instrument(3, fba_interval_ns=1_000)]


def _engine() -> Engine:
    """Icebergs, GTD, mapped STP groups, resting market (PreOpen) and IOC (FBA) orders."""
    eng = Engine(INSTRUMENTS, CONFIG)
    eng.process(
        batch(
            nos(1, "buy", 100, 7, max_floor=3),
            nos(2, "sell", 103, 2, session=2),
            nos(3, "buy", 99, 1, tif=codes.TIF_GTD, expire=30_000),
            nos(4, "sell", 101, 5, session=2, account=7),
            nos(5, "buy", 101, 2, session=3),  # trades against 4
            nos(6, "buy", None, 4, sec=2, session=4),  # market, rests in PreOpen
            nos(7, "sell", 98, 6, sec=2, session=4, tif=codes.TIF_GTC),
            nos(8, "buy", 97, 3, sec=3, tif=codes.TIF_IOC),  # rests until the batch auction
            nos(9, "sell", 102, 4, sec=3, session=5, max_floor=1),
        ),
        new_out(),
    )
    eng.check_invariants()
    return eng


@pytest.fixture(scope="module")
def original() -> Engine:
    return _engine()


def _restore(data: dict[str, np.ndarray]) -> Engine:
    return snap.restore(INSTRUMENTS, data, CONFIG)


def test_round_trip_file(original: Engine, tmp_path: Path) -> None:
    path = tmp_path / "state.snap"
    snap.save(path, snap.export(original))
    restored = _restore(snap.load(path))
    assert restored.state_hash() == original.state_hash() and restored.event_hash() == original.event_hash()
    assert restored.live_orders().size == 8


def test_the_reported_cases(original: Engine) -> None:
    """The exact corruptions of the issue, each must be named."""
    cases: list[tuple[str, Callable[[dict[str, np.ndarray]], None], str]] = [
        ("inst out of range", lambda d: d["orders"]["inst"].__setitem__(0, 9), "orders.inst"),
        ("side 5", lambda d: d["orders"]["side"].__setitem__(1, 5), "orders.side"),
        ("OrderID = next", lambda d: d["orders"]["order_id"].__setitem__(2, d["counters"][0]), "orders.order_id"),
        ("session out of range", lambda d: d["sessions"].__setitem__(0, CONFIG.max_sessions), "sessions"),
        ("negative counter", lambda d: d["counters"].__setitem__(1, -5), "counters"),
        ("3-byte event hash", lambda d: d.__setitem__("event_hash", d["event_hash"][:3].copy()), "event_hash"),
    ]
    for name, mutate, field in cases:
        data = snap.export(original)
        mutate(data)
        with pytest.raises(SnapshotError, match=field.replace(".", r"\.")):
            _restore(data)
        if name != "3-byte event hash":  # dumps refuses that one itself
            with pytest.raises(SnapshotError, match=field.replace(".", r"\.")):
                _restore(snap.loads(snap.dumps(data)))
        else:
            with pytest.raises(SnapshotError):
                snap.dumps(data)
    assert issubclass(SnapshotError, ValueError)


def _truncations(size: int, rng: np.random.Generator, n: int) -> list[int]:
    edges = [0, 1, 7, 8, 35, 36, 39, 40, size - 33, size - 32, size - 31, size - 1]
    return sorted({k for k in edges if 0 <= k < size} | {int(k) for k in rng.integers(0, size, n)})


def _check_truncations_and_flips(original: Engine, n: int, seed: int) -> None:
    data = snap.dumps(snap.export(original))
    rng = np.random.Generator(np.random.PCG64(seed))
    for k in _truncations(len(data), rng, n):
        with pytest.raises(SnapshotError):
            snap.loads(data[:k])
    with pytest.raises(SnapshotError):
        snap.loads(data + b"\0")
    for bit in rng.integers(0, 8 * len(data), n):
        flipped = bytearray(data)
        flipped[bit // 8] ^= 1 << (bit % 8)
        with pytest.raises(SnapshotError):
            snap.loads(bytes(flipped))


def test_truncations_and_bit_flips(original: Engine) -> None:
    _check_truncations_and_flips(original, 64, 1)


def _int_extremes(dtype: np.dtype[Any]) -> list[int]:
    info = np.iinfo(dtype)
    vals = {int(info.min), int(info.max), 0, 1, 2, 3, 5, -1, 255, 65535, 2**31 - 1, 2**32 - 1, 2**63 - 1}
    return sorted(v for v in vals if info.min <= v <= info.max)


def _mutations(data: dict[str, np.ndarray], rng: np.random.Generator, random_rows: int) -> Iterator[
    tuple[str, dict[str, np.ndarray]]
]:  # fmt: skip
    """(label, mutated copy): every field of every array set to extreme values, in the
    first row and ``random_rows`` random rows; plus reshaped, retyped and missing arrays."""
    for key, arr in data.items():
        fields = list(arr.dtype.names) if arr.dtype.names else [None]
        rows = sorted({0, *(int(r) for r in rng.integers(0, max(arr.shape[0], 1), random_rows))})
        for field in fields:
            dt = arr.dtype[field] if field else arr.dtype
            for row in rows:
                if row >= arr.shape[0]:
                    continue
                for value in _int_extremes(dt):
                    copy = {k: v.copy() for k, v in data.items()}
                    target = copy[key][field] if field else copy[key]
                    target[row] = value
                    yield f"{key}.{field}[{row}]={value}", copy
        for label, changed in (
            ("empty", arr[:0]),
            ("extra row", np.concatenate([arr, arr[-1:]]) if arr.size else arr),
            ("2-D", arr.reshape(1, -1)),
            ("float", arr.astype(np.float64) if arr.dtype.names is None else arr[:0]),
        ):
            copy = {k: v.copy() for k, v in data.items()}
            copy[key] = changed
            yield f"{key} {label}", copy
        copy = {k: v.copy() for k, v in data.items()}
        del copy[key]
        yield f"{key} missing", copy


#: fields rebuilt from the others on restore, so any value there restores the same state
_DERIVED = {"orders.level", "orders.prev", "orders.next"}


def _random_mutations(
    data: dict[str, np.ndarray], rng: np.random.Generator, n: int
) -> Iterator[tuple[str, dict[str, np.ndarray]]]:
    """``n`` copies with 1-3 random fields of random rows set to random bit patterns."""
    keys = [k for k in data if data[k].size]
    for _ in range(n):
        copy = {k: v.copy() for k, v in data.items()}
        labels = []
        for _ in range(int(rng.integers(1, 4))):
            key = str(rng.choice(keys))
            arr = copy[key]
            field = str(rng.choice(arr.dtype.names)) if arr.dtype.names else None
            target = arr[field] if field else arr
            row = int(rng.integers(0, arr.shape[0]))
            raw = rng.integers(0, 256, target.dtype.itemsize, dtype=np.uint8)
            extremes = _int_extremes(target.dtype)
            target[row] = raw.view(target.dtype)[0] if rng.random() < 0.5 else extremes[rng.integers(len(extremes))]
            labels.append(f"{key}.{field}[{row}]")
        yield " ".join(labels), copy


def _check_mutations(original: Engine, random_rows: int, seed: int, n_random: int = 0) -> dict[str, int]:
    base = snap.export(original)
    rng = np.random.Generator(np.random.PCG64(seed))
    seen = {"rejected": 0, "accepted": 0}
    for label, data in (*_mutations(base, rng, random_rows), *_random_mutations(base, rng, n_random)):
        for path in ("dict", "file"):
            try:
                eng = _restore(data) if path == "dict" else _restore(snap.loads(snap.dumps(data)))
            except SnapshotError as exc:
                assert "snapshot" in str(exc), label
                seen["rejected"] += 1
                continue
            # accepted: must be a coherent engine (mutations of derived fields, values that
            # happen to stay valid, a re-sorted row order)
            seen["accepted"] += 1
            eng.check_invariants()
            eng.state_hash()
            if all(part.split("[")[0] in _DERIVED for part in label.split(" ")):
                assert eng.state_hash() == original.state_hash(), label
            eng.process(batch(nos(90, "sell", 99, 1, session=9)), new_out())
            eng.check_invariants()
    return seen


def test_every_field_out_of_range(original: Engine) -> None:
    seen = _check_mutations(original, 1, 2, n_random=200)
    # accepted ones are values that stay valid (the same value, another live session, ...)
    assert seen["rejected"] > seen["accepted"] > 0


@pytest.mark.slow
def test_every_field_out_of_range_many_rows_and_flips(original: Engine) -> None:
    _check_mutations(original, 8, 3, n_random=20_000)
    _check_truncations_and_flips(original, 20_000, 4)
