"""Properties of the fast engine (ENGINE.md §2.1 rule 1, §2.4, §5): batching, OUTPUT_FULL
resumption and snapshots never change the output bytes or the state hash."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from qfix.engine import Engine
from qfix.engine import snapshot as snap
from qfix.engine.contract import OUTPUT_FULL
from qfix.testing import generators as gen
from qfix.wire.schema import OUTPUT

_INSTRUMENTS = gen.default_random_instruments()
_CONFIG = gen.default_random_config()
_STREAMS: dict[int, np.ndarray] = {}


def _stream(seed: int) -> np.ndarray:
    if seed not in _STREAMS:
        _STREAMS[seed] = gen.random_stream(seed, 600, _INSTRUMENTS, config=_CONFIG)
    return _STREAMS[seed]


def _run(records: np.ndarray, sizes: list[int], out_size: int) -> tuple[bytes, bytes, int]:
    """Concatenated output of a run in batches of ``sizes`` (cycled) with resumption."""
    eng = Engine(_INSTRUMENTS, _CONFIG)
    chunks: list[bytes] = []
    fulls = 0
    i = 0
    k = 0
    while i < len(records):
        size = sizes[k % len(sizes)]
        k += 1
        out = np.zeros(out_size, OUTPUT)
        res = eng.process(records[i : i + size], out)
        chunks.append(out[: res.written].tobytes())
        i += res.consumed
        if res.status == OUTPUT_FULL:
            fulls += 1
            if res.consumed == 0:
                big = np.zeros(res.needed, OUTPUT)
                again = eng.process(records[i : i + 1], big)
                assert again.status != OUTPUT_FULL and again.written <= res.needed
                chunks.append(big[: again.written].tobytes())
                i += 1
    eng.check_invariants()
    return b"".join(chunks), eng.state_hash(), fulls


@settings(max_examples=25)
@given(
    seed=st.sampled_from([1, 2, 3]),
    sizes=st.lists(st.integers(1, 80), min_size=1, max_size=5),
    out_size=st.sampled_from([16, 30, 64, 1 << 14]),
)
def test_batching_and_buffers_do_not_change_output(seed: int, sizes: list[int], out_size: int) -> None:
    records = _stream(seed)
    one_by_one, h1, _ = _run(records, [1], 1 << 14)
    batched, h2, _ = _run(records, sizes, out_size)
    assert batched == one_by_one
    assert h1 == h2


@settings(max_examples=10)
@given(seed=st.sampled_from([4, 5]), cut=st.integers(0, 600))
def test_snapshot_restore_continues_identically(seed: int, cut: int) -> None:
    records = _stream(seed)
    eng = Engine(_INSTRUMENTS, _CONFIG)
    out = np.zeros(1 << 16, OUTPUT)
    eng.process(records[:cut], out)
    restored = snap.restore(_INSTRUMENTS, snap.export(eng), _CONFIG)
    assert restored.state_hash() == eng.state_hash()
    assert restored.event_hash() == eng.event_hash()
    a = np.zeros(1 << 16, OUTPUT)
    b = np.zeros(1 << 16, OUTPUT)
    ra = eng.process(records[cut:], a)
    rb = restored.process(records[cut:], b)
    assert ra == rb
    assert a[: ra.written].tobytes() == b[: rb.written].tobytes()
    assert restored.state_hash() == eng.state_hash() and restored.event_hash() == eng.event_hash()


def test_process_one_matches_batch() -> None:
    records = _stream(1)[:200]
    a = Engine(_INSTRUMENTS, _CONFIG)
    b = Engine(_INSTRUMENTS, _CONFIG)
    out = np.zeros(1 << 14, OUTPUT)
    res = a.process(records, out)
    singles = b"".join(b.process_one(records[i]).tobytes() for i in range(len(records)))
    assert singles == out[: res.written].tobytes()
    assert a.state_hash() == b.state_hash()
