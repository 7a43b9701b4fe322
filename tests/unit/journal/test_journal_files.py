"""Segment files: group commit, rotation, reopening, torn tails cut, damage refused by name."""

from __future__ import annotations

import errno
import random
import time
from pathlib import Path

import pytest

from qfix.journal import (
    JournalCorruptError,
    JournalError,
    JournalWriter,
    TornTail,
    cut_torn_tail,
    list_segments,
    read_journal,
)
from qfix.testing.faults import PowerCutFiles


def _write(directory: Path, n: int, *, first: int = 1, size: int = 100, **kwargs: object) -> list[bytes]:
    writer = JournalWriter(directory, first, **kwargs)  # type: ignore[arg-type]
    payloads = [bytes([i % 251]) * (size + i % 7) for i in range(first, first + n)]
    for i, p in enumerate(payloads):
        writer.append(1 + i % 3, p)
        if i % 3 == 2:
            writer.commit()
    writer.close()
    return payloads


def _read(directory: Path, after: int = 0, torn: list[TornTail] | None = None) -> list[tuple[int, int, bytes]]:
    return [(s, k, bytes(p)) for s, k, p in read_journal(directory, after, torn=torn)]


@pytest.mark.parametrize("durability", ["fsync", "batch-async", "none"])
def test_records_come_back_in_order_across_segments(tmp_path: Path, durability: str) -> None:
    payloads = _write(tmp_path, 40, durability=durability, segment_bytes=1000)
    segments = list_segments(tmp_path)
    assert len(segments) > 3 and segments[0].first_seq == 1
    got = _read(tmp_path)
    assert [s for s, _, _ in got] == list(range(1, 41))
    assert [p for _, _, p in got] == payloads
    assert [k for _, k, _ in got] == [1 + i % 3 for i in range(40)]
    assert [s for s, _, _ in _read(tmp_path, after=17)] == list(range(18, 41))


def test_a_reopened_writer_continues_the_last_segment(tmp_path: Path) -> None:
    first = _write(tmp_path, 5)
    second = _write(tmp_path, 5, first=6)
    assert len(list_segments(tmp_path)) == 1
    assert [p for _, _, p in _read(tmp_path)] == first + second


def test_a_torn_tail_is_reported_and_cut_off(tmp_path: Path) -> None:
    _write(tmp_path, 10)
    seg = list_segments(tmp_path)[-1].path
    size = seg.stat().st_size
    with seg.open("r+b") as f:
        f.truncate(size - 30)
    torn: list[TornTail] = []
    assert [s for s, _, _ in _read(tmp_path, torn=torn)] == list(range(1, 10))
    assert len(torn) == 1 and "runs past the end" in torn[0].why
    cut_torn_tail(torn[0])
    assert seg.stat().st_size == torn[0].offset
    _write(tmp_path, 1, first=10)  # the next record goes where the torn one was
    assert [s for s, _, _ in _read(tmp_path)] == list(range(1, 11))


def test_damage_before_the_end_stops_with_file_offset_and_command(tmp_path: Path) -> None:
    _write(tmp_path, 30, segment_bytes=1000)
    middle = list_segments(tmp_path)[1].path
    data = bytearray(middle.read_bytes())
    data[60] ^= 0x10
    middle.write_bytes(bytes(data))
    with pytest.raises(JournalCorruptError, match=rf"{middle.name}, offset \d+: .*qfix journal verify"):
        _read(tmp_path)


def test_a_missing_segment_is_damage(tmp_path: Path) -> None:
    _write(tmp_path, 30, segment_bytes=1000)
    list_segments(tmp_path)[1].path.unlink()
    with pytest.raises(JournalCorruptError, match="previous segment ended before"):
        _read(tmp_path)
    list_segments(tmp_path)[0].path.unlink()
    with pytest.raises(JournalCorruptError, match="is missing"):
        _read(tmp_path)


def test_a_last_segment_without_a_whole_header_is_torn(tmp_path: Path) -> None:
    _write(tmp_path, 3)
    (tmp_path / "journal-00000000000000000004.qjl").write_bytes(b"QFIX")
    torn: list[TornTail] = []
    assert len(_read(tmp_path, torn=torn)) == 3 and torn[0].offset == 0
    cut_torn_tail(torn[0])
    assert len(list_segments(tmp_path)) == 1


def test_a_failed_sync_refuses_everything_after(tmp_path: Path) -> None:
    files = PowerCutFiles(random.Random(1), fail_sync_after=2)  # segment header + directory
    writer = JournalWriter(tmp_path, durability="fsync", files=files)
    writer.append(1, b"x")
    with pytest.raises(JournalError, match=r"cannot make records 1\.\.1 durable.*nothing after"):
        writer.commit()
    assert writer.failed and writer.durable_seq == 0
    with pytest.raises(JournalError, match="refusing"):
        writer.append(1, b"y")


def test_batch_async_syncs_behind_the_commit(tmp_path: Path) -> None:
    writer = JournalWriter(tmp_path, durability="batch-async")
    for _ in range(5):
        writer.append(1, b"abc")
        writer.commit()
    deadline = time.monotonic() + 5
    while writer.durable_seq < 5 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert writer.durable_seq == 5
    writer.close()


def test_batch_async_reports_a_failed_sync_at_the_next_commit(tmp_path: Path) -> None:
    files = PowerCutFiles(random.Random(1), fail_sync_after=2)
    writer = JournalWriter(tmp_path, durability="batch-async", files=files)
    writer.append(1, b"x")
    writer.commit()  # written; the sync behind it fails
    deadline = time.monotonic() + 5
    while not writer.failed and time.monotonic() < deadline:
        time.sleep(0.01)
    with pytest.raises(JournalError, match=str(errno.EIO) + "|Input/output"):
        writer.append(1, b"y")
    writer.close()


@pytest.mark.parametrize("durability", ["fsync", "none"])
def test_a_power_cut_keeps_what_was_synced(tmp_path: Path, durability: str) -> None:
    lost = 0
    for seed in range(8):
        directory = tmp_path / f"{durability}-{seed}"
        files = PowerCutFiles(random.Random(seed))
        writer = JournalWriter(directory, durability=durability, files=files, segment_bytes=2000)
        for i in range(40):
            writer.append(1, bytes([i]) * 50)
            writer.commit()
        acknowledged = writer.durable_seq
        files.power_cut()
        torn: list[TornTail] = []
        survived = len(_read(directory, torn=torn))
        assert survived >= (acknowledged if durability == "fsync" else 0)
        lost += survived < 40
    # in mode none "durable" means only "written", and the cut shows it
    assert (lost == 0) if durability == "fsync" else (lost > 0)
