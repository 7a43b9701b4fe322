"""The record codec: round trips, and every cut and flipped bit judged as torn or corrupt."""

from __future__ import annotations

import random

import pytest

from qfix.journal import codec
from qfix.journal.codec import HEADER_SIZE, Verdict, encode_record, scan


def _records(n: int, seed: int = 1, first: int = 1) -> tuple[bytes, list[tuple[int, int]]]:
    rng = random.Random(seed)
    parts, spans = [], []
    at = 0
    for i in range(n):
        rec = encode_record(first + i, rng.randint(1, 9), rng.randbytes(rng.randint(0, 300)))
        parts.append(rec)
        spans.append((at, at + len(rec)))
        at += len(rec)
    return b"".join(parts), spans


def test_records_round_trip_and_end_clean() -> None:
    data, spans = _records(50)
    result = scan(data, 0, 1)
    assert result.verdict is Verdict.CLEAN and result.end == len(data)
    assert [r.seq for r in result.records] == list(range(1, 51))
    assert [r.offset for r in result.records] == [s for s, _ in spans]
    rng = random.Random(1)
    for rec in result.records:
        assert rec.kind == rng.randint(1, 9)
        assert bytes(rec.payload) == rng.randbytes(rng.randint(0, 300))


def test_every_cut_is_a_torn_tail_after_the_whole_records() -> None:
    data, spans = _records(4)
    ends = [e for _, e in spans]
    for cut in range(len(data) + 1):
        result = scan(data[:cut], 0, 1)
        whole = sum(1 for e in ends if e <= cut)
        assert len(result.records) == whole, cut
        assert result.end == (ends[whole - 1] if whole else 0)
        assert result.verdict is (Verdict.CLEAN if cut == result.end else Verdict.TORN), cut


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_flipped_bit_is_corruption_unless_it_is_in_the_last_record(seed: int) -> None:
    data, spans = _records(5, seed)
    rng = random.Random(seed)
    for _ in range(300):
        pos = rng.randrange(len(data))
        flipped = bytearray(data)
        flipped[pos] ^= 1 << rng.randrange(8)
        result = scan(bytes(flipped), 0, 1)
        hit = next(i for i, (s, e) in enumerate(spans) if s <= pos < e)
        assert len(result.records) == hit and result.end == spans[hit][0]
        # an intact record after the damage proves it was durable; a flipped bit in the
        # final record cannot be told from a torn write (the checkpoint check covers that)
        last = hit == len(spans) - 1
        assert result.verdict is (Verdict.TORN if last else Verdict.CORRUPT), (pos, result.problem)


def test_zero_bytes_after_the_last_record_are_a_torn_tail() -> None:
    data, _ = _records(3)
    result = scan(data + bytes(5000), 0, 1)
    assert result.verdict is Verdict.TORN and len(result.records) == 3


def test_a_sequence_gap_is_corruption() -> None:
    data = encode_record(1, 1, b"a") + encode_record(3, 1, b"b")
    result = scan(data, 0, 1)
    assert result.verdict is Verdict.CORRUPT and "sequence number 3 where 2" in result.problem
    assert scan(encode_record(7, 1, b""), 0, 1).verdict is Verdict.CORRUPT


def test_garbage_after_a_good_record_is_corruption() -> None:
    data = encode_record(1, 1, b"abc") + b"\x01" * 100 + encode_record(2, 1, b"d")
    result = scan(data, 0, 1)
    assert result.verdict is Verdict.CORRUPT and len(result.records) == 1


def test_segment_header() -> None:
    header = codec.encode_segment_header(42)
    assert codec.parse_segment_header(header) == 42
    for bad, message in [
        (header[:10], "shorter"),
        (b"X" + header[1:], "magic"),
        (header[:8] + (9).to_bytes(4, "little") + header[12:], "version"),
        (codec.SEGMENT_HEADER.pack(codec.SEGMENT_MAGIC, codec.FORMAT_VERSION, 0, 0), "out of range"),
    ]:
        with pytest.raises(ValueError, match=message):
            codec.parse_segment_header(bad)


@pytest.mark.parametrize("landed", [0, 5, 10, 23, 24, 30])
def test_a_write_that_landed_in_part_then_zeros_is_torn(landed: int) -> None:
    """A file system may extend the file before all of the data lands: whatever part
    of the last write landed, zeros follow and no intact record does."""
    good, _ = _records(2)
    last = encode_record(3, 1, b"z" * 200)
    data = good + last[:landed] + bytes(len(last) - landed)
    result = scan(data, 0, 1)
    assert result.verdict is Verdict.TORN and len(result.records) == 2


def test_pages_that_landed_out_of_order_are_torn_when_nothing_intact_follows() -> None:
    good, _ = _records(2)
    a, b = encode_record(3, 1, b"a" * 100), encode_record(4, 1, b"b" * 100)
    # the second record's tail landed, the first did not: no intact header after the hole
    data = good + bytes(len(a)) + bytes(30) + b[30:]
    assert scan(data, 0, 1).verdict is Verdict.TORN
    # but if the second record landed whole, the hole is damage to durable data
    assert scan(good + bytes(len(a)) + b, 0, 1).verdict is Verdict.CORRUPT


def test_one_forged_header_in_a_payload_proves_nothing() -> None:
    """A payload holds bytes a client chose: enough for one checksummed header, so only a
    chain of two intact records counts as proof of durable data beyond the damage."""
    good, _ = _records(2)
    forged = encode_record(2**62, 1, b"")  # a whole record a client could spell in its fields
    payload = b"\x00" * 40 + forged + b"\x00" * 40  # ... landed inside a record whose header did not
    last = encode_record(3, 1, payload)
    data = good + bytes(HEADER_SIZE) + last[HEADER_SIZE:]
    assert scan(data, 0, 1).verdict is Verdict.TORN
