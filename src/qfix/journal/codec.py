"""The journal's record codec (sans-I/O): bytes in, records and verdicts out.

Theory of operation. A journal is a run of segment files. Each segment starts with a
24-byte header (``SEGMENT_MAGIC``, format version, the sequence number of its first
record) and then holds records back to back. A record is a 24-byte header
(``RECORD_MAGIC``, kind, flags, payload length, sequence number, and a CRC32C of those
20 bytes), the payload, and a CRC32C of the payload; sequence numbers are consecutive
across the whole journal, starting at 1. The header has its own checksum so that a
flipped bit in a length is seen as damage, never mistaken for a record cut short.

:func:`scan` reads one segment's bytes and returns every intact record plus a verdict
on what follows the last one. The distinction that recovery lives on:

* ``TORN``: the bytes after the last good record are what a write cut short by a
  crash leaves, whatever part of it landed: no intact record header follows anywhere
  after them (a prefix of the write, zeros where a file system extended the file
  before the data landed, pages of it that landed out of order). The writer never
  acknowledged them (it acknowledges only after the whole write is durable), so
  recovery discards them.
* ``CORRUPT``: an intact record header (checksum good, a later sequence number)
  follows the damage, which proves durable data beyond it; or a checksummed header
  holds nonsense, or a sequence number is out of order. Recovery stops and names the
  file and offset.

The rule cannot tell a flipped bit in the very last record from that record's write
cut short; recovery then also checks that the journal reaches the newest checkpoint,
which proves its records durable (docs/journal.md).

Nothing here opens a file, reads a clock or allocates per byte: payloads are views
into the caller's buffer.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass
from typing import Final

import google_crc32c

__all__ = [
    "FORMAT_VERSION",
    "HEADER_SIZE",
    "RECORD_HEADER",
    "RECORD_OVERHEAD",
    "SEGMENT_HEADER",
    "Record",
    "Scan",
    "Verdict",
    "encode_record",
    "encode_segment_header",
    "parse_segment_header",
    "scan",
]

SEGMENT_MAGIC: Final = b"QFIXJRNL"
RECORD_MAGIC: Final = b"QJR1"
FORMAT_VERSION: Final = 1
#: magic, format version, reserved (0), first sequence number
SEGMENT_HEADER: Final = struct.Struct("<8sIIQ")
#: magic, kind, flags (0), payload length, sequence number; then the CRC32C of those 20 bytes
RECORD_HEADER: Final = struct.Struct("<4sHHIQ")
_CRC: Final = struct.Struct("<I")
HEADER_SIZE: Final = RECORD_HEADER.size + _CRC.size
RECORD_OVERHEAD: Final = HEADER_SIZE + _CRC.size
#: the largest payload a record may declare; a bigger length is corruption, not a record
MAX_PAYLOAD: Final = 1 << 30


class Verdict(enum.Enum):
    """What follows the last intact record of a segment."""

    CLEAN = "clean"  #: nothing: the data ends exactly after it
    TORN = "torn"  #: a write cut short by a crash (discard it)
    CORRUPT = "corrupt"  #: damaged bytes that were once durable (stop)


@dataclass(frozen=True, slots=True)
class Record:
    seq: int
    kind: int
    offset: int  #: where the record starts in the scanned buffer
    payload: memoryview


@dataclass(frozen=True, slots=True)
class Scan:
    records: list[Record]
    end: int  #: the offset just past the last intact record
    verdict: Verdict
    problem: str = ""  #: for TORN and CORRUPT: what was found at ``end``


def encode_segment_header(first_seq: int) -> bytes:
    return SEGMENT_HEADER.pack(SEGMENT_MAGIC, FORMAT_VERSION, 0, first_seq)


def parse_segment_header(data: bytes | memoryview) -> int:
    """The first sequence number a segment header declares; ValueError naming what is wrong."""
    if len(data) < SEGMENT_HEADER.size:
        raise ValueError(f"{len(data)} bytes is shorter than the {SEGMENT_HEADER.size}-byte segment header")
    magic, version, reserved, first = SEGMENT_HEADER.unpack_from(data, 0)
    if magic != SEGMENT_MAGIC:
        raise ValueError("bad segment magic (not a qfix journal segment)")
    if version != FORMAT_VERSION:
        raise ValueError(f"segment format version {version}, this qfix reads {FORMAT_VERSION}")
    if reserved != 0 or first < 1:
        raise ValueError(f"segment header fields out of range (reserved {reserved}, first sequence {first})")
    return int(first)


def encode_record(seq: int, kind: int, payload: bytes | memoryview) -> bytes:
    """One record's bytes (header and its CRC32C, payload, the payload's CRC32C)."""
    header = RECORD_HEADER.pack(RECORD_MAGIC, kind, 0, len(payload), seq)
    payload = bytes(payload)  # google_crc32c takes bytes only (no memoryview)
    return b"".join((header, _CRC.pack(google_crc32c.value(header)), payload, _CRC.pack(google_crc32c.value(payload))))


def scan(data: bytes | memoryview, start: int, first_seq: int) -> Scan:
    """Every intact record of ``data[start:]``, expected from sequence ``first_seq`` on.

    ``data`` is one whole segment as read from disk; ``start`` is where its records
    begin (after the segment header). See the module docstring for the verdicts.
    """
    raw = bytes(data)  # google_crc32c takes bytes only; slices of it are what it checks
    view = memoryview(raw)
    size = len(view)
    records: list[Record] = []
    pos = start
    expect = first_seq
    while pos < size:
        rest = size - pos
        if rest < HEADER_SIZE:
            return _tail(records, pos, raw, expect, f"{rest} bytes, less than a record header", cut_short=True)
        (header_crc,) = _CRC.unpack_from(view, pos + RECORD_HEADER.size)
        if google_crc32c.value(raw[pos : pos + RECORD_HEADER.size]) != header_crc:
            return _tail(records, pos, raw, expect, "no intact record header here (header CRC32C mismatch)")
        magic, kind, flags, length, seq = RECORD_HEADER.unpack_from(view, pos)
        if magic != RECORD_MAGIC or flags != 0 or length > MAX_PAYLOAD:
            return Scan(records, pos, Verdict.CORRUPT, "a checksummed header with a bad magic, flags or length")
        if seq != expect:
            return Scan(records, pos, Verdict.CORRUPT, f"sequence number {seq} where {expect} was expected")
        body = pos + HEADER_SIZE
        end = body + length + _CRC.size
        if end > size:
            why = f"record {seq} of {length} payload bytes runs past the end"
            return _tail(records, pos, raw, expect, why, cut_short=True)
        payload = view[body : body + length]
        (crc,) = _CRC.unpack_from(view, end - _CRC.size)
        if google_crc32c.value(raw[body : body + length]) != crc:
            return _tail(records, pos, raw, expect, f"record {seq}: payload CRC32C mismatch", cut_short=end == size)
        records.append(Record(seq, kind, pos, payload))
        expect += 1
        pos = end
    return Scan(records, pos, Verdict.CLEAN)


def _intact_at(raw: bytes, at: int, expect: int) -> int:
    """The end of an intact record (header and payload checksums good, sequence number
    >= ``expect``) starting at ``at``, or -1."""
    if at + HEADER_SIZE > len(raw) or raw[at : at + len(RECORD_MAGIC)] != RECORD_MAGIC:
        return -1
    (crc,) = _CRC.unpack_from(raw, at + RECORD_HEADER.size)
    if google_crc32c.value(raw[at : at + RECORD_HEADER.size]) != crc:
        return -1
    _, _, flags, length, seq = RECORD_HEADER.unpack_from(raw, at)
    end = at + HEADER_SIZE + int(length) + _CRC.size
    if flags or seq < expect or end > len(raw):
        return -1
    body = at + HEADER_SIZE
    if google_crc32c.value(raw[body : body + length]) != _CRC.unpack_from(raw, end - _CRC.size)[0]:
        return -1
    return end


def intact_record_after(raw: bytes, pos: int, expect: int) -> bool:
    """Whether an intact record with a sequence number >= ``expect`` starts anywhere at or
    after ``pos`` and is followed by the end of the data or by another intact record:
    proof that durable data lies beyond ``pos``. The second record is asked for because
    a payload holds bytes a client chose (an order's ClOrdID, times), enough to forge
    one checksummed header, not a chain of two."""
    at = raw.find(RECORD_MAGIC, pos)
    while at >= 0:
        end = _intact_at(raw, at, expect)
        if end >= 0 and (end == len(raw) or _intact_at(raw, end, expect) >= 0):
            return True
        at = raw.find(RECORD_MAGIC, at + 1)
    return False


def _tail(records: list[Record], pos: int, raw: bytes, expect: int, why: str, *, cut_short: bool = False) -> Scan:
    """Judge the bytes from ``pos`` on, which do not start an intact record: a write cut
    short leaves no intact record after it (whatever landed of it, zeros or a prefix)."""
    if cut_short or not intact_record_after(raw, pos + 1, expect):
        return Scan(records, pos, Verdict.TORN, why)
    return Scan(records, pos, Verdict.CORRUPT, why)
