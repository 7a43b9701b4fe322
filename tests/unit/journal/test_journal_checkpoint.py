"""Checkpoint files: round trip, atomic replacement, and every damage refused by name."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from qfix.journal import CheckpointError, list_checkpoints, load_checkpoint, write_checkpoint
from qfix.journal.checkpoint import decode_checkpoint, encode_checkpoint
from qfix.testing.faults import PowerCutFiles


def test_round_trip(tmp_path: Path) -> None:
    path = write_checkpoint(tmp_path, 42, {"a": [1, 2], "b": "x"}, b"engine-bytes")
    ck = load_checkpoint(path)
    assert (ck.seq, ck.meta, ck.engine) == (42, {"a": [1, 2], "b": "x"}, b"engine-bytes")
    assert list_checkpoints(tmp_path) == [(42, path)]
    assert not list(tmp_path.glob("*.tmp"))


def test_every_cut_and_many_flips_are_refused() -> None:
    data = encode_checkpoint(7, {"sessions": []}, bytes(range(200)))
    for cut in range(len(data)):
        with pytest.raises(CheckpointError, match="checkpoint x"):
            decode_checkpoint(data[:cut], Path("x"))
    rng = random.Random(3)
    for _ in range(200):
        flipped = bytearray(data)
        flipped[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        with pytest.raises(CheckpointError, match="checksum"):
            decode_checkpoint(bytes(flipped), Path("x"))


def test_a_checkpoint_cut_off_by_power_loss_is_absent_not_half_there(tmp_path: Path) -> None:
    files = PowerCutFiles(random.Random(5))
    real = files.sync_dir
    files.sync_dir = lambda path: None  # type: ignore[method-assign]
    write_checkpoint(tmp_path, 9, {}, b"x" * 1000, files)
    files.power_cut()  # renamed into place, but the directory was never synced
    assert list_checkpoints(tmp_path) == []
    files.sync_dir = real  # type: ignore[method-assign]
    path = write_checkpoint(tmp_path, 9, {}, b"x" * 1000, files)
    files.power_cut()
    assert load_checkpoint(path).engine == b"x" * 1000
