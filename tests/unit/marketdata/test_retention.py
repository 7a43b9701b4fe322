"""The replay ring against a plain list of every packet published: the same packets, the
same bytes and the same statuses for random chunks, ring sizes and requests."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from qfix.marketdata.publisher import Chunk, Retention
from qfix.wire import codes

L3 = codes.MD_FEED_L3


@dataclass
class Sent:
    seq: int
    security_id: int
    sending_time: int
    records: np.ndarray


def _chunk(rng: np.random.Generator, first_seq: int, sending_time: int) -> tuple[Chunk, list[Sent]]:
    n = int(rng.integers(1, 40))
    cuts = np.unique(rng.integers(1, n, int(rng.integers(0, n)))) if n > 1 else np.zeros(0, np.int64)
    bounds = np.concatenate(([0], cuts, [n])).astype(np.int64)
    ids = rng.integers(1, 4, bounds.size - 1).astype(np.int64)
    records = rng.integers(0, 256, (n, 60), dtype=np.uint8)
    chunk = Chunk(L3, first_seq, sending_time, records, bounds, ids)
    sent = [
        Sent(first_seq + int(bounds[i]), int(ids[i]), sending_time, records[bounds[i] : bounds[i + 1]])
        for i in range(ids.size)
    ]
    return chunk, sent


def _model(
    sent: list[Sent], keep: int, start: int, count: int, security_id: int, max_records: int
) -> tuple[int, list[Sent]]:
    last = sent[-1].seq + sent[-1].records.shape[0] - 1
    held = [p for p in sent if p.seq >= last - keep + 1]
    if start > last:
        return codes.REQUEST_COMPLETED, []
    if not held or start < held[0].seq:
        return codes.REQUEST_UNAVAILABLE, []
    first = max(i for i, p in enumerate(held) if p.seq <= start)
    wanted = [p for p in held[first:] if p.seq < start + count and security_id in (0, p.security_id)]
    out: list[Sent] = []
    total = 0
    for p in wanted:
        if total + p.records.shape[0] > max_records:
            return codes.REQUEST_TRUNCATED, out
        out.append(p)
        total += p.records.shape[0]
    return codes.REQUEST_COMPLETED, out


@pytest.mark.parametrize("seed", range(6))
def test_the_ring_replays_what_a_plain_list_would(seed: int) -> None:
    rng = np.random.default_rng(seed)
    keep = int(rng.choice([1, 7, 40, 100, 333]))
    ring = Retention(keep, L3)
    sent: list[Sent] = []
    seq = 1
    for step in range(300):
        chunk, packets = _chunk(rng, seq, 2**63 + step)
        ring.add(chunk)
        sent += packets
        seq += chunk.records.shape[0]
        last = seq - 1
        assert ring.held == last - next(p.seq for p in sent if p.seq >= last - keep + 1) + 1
        for _ in range(3):
            start = int(rng.integers(max(1, last - keep - 20), last + 5))
            count = int(rng.integers(1, 2 * keep + 5))
            security_id = int(rng.integers(0, 4))
            max_records = int(rng.integers(1, 3 * keep + 40))
            got = ring.replay(start, count, security_id, max_records, last)
            status, want = _model(sent, keep, start, count, security_id, max_records)
            assert got.status == status
            assert [(p.seq, p.security_id, p.sending_time) for p in got.packets] == [
                (p.seq, p.security_id, p.sending_time) for p in want
            ]
            assert all(np.array_equal(g.records, w.records) for g, w in zip(got.packets, want, strict=True))
            assert got.records == sum(p.records.shape[0] for p in want)
            assert got.last_seq == (want[-1].seq + want[-1].records.shape[0] - 1 if want else 0)


def test_a_ring_of_zero_keeps_nothing_and_a_reset_empties_it() -> None:
    rng = np.random.default_rng(1)
    empty = Retention(0, L3)
    chunk, _ = _chunk(rng, 1, 5)
    empty.add(chunk)
    assert empty.held == 0 and empty.replay(1, 1, 0, 100, 50).status == codes.REQUEST_UNAVAILABLE
    ring = Retention(100, L3)
    ring.add(chunk)
    assert ring.held == chunk.records.shape[0]
    ring.clear()
    assert ring.held == 0 and ring.first_seq == 0
    again, _ = _chunk(rng, 1, 6)  # numbering starts again at 1 after a reset
    ring.add(again)
    assert ring.first_seq == 1 and ring.replay(1, 1, 0, 1091, 40).packets[0].sending_time == 6
