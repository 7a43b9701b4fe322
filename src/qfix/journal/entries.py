"""What a journal record holds: one state-changing input of the server, in its place.

Theory of operation (ARCHITECTURE.md: the journal is the replication unit). Every
input that changes state is one entry: a batch of 80-byte INBOUND records exactly as
the engine received them, an engine command of ENGINE.md §2.1 with its ``now``, or a
change of the session table (a client key given its SessionID, accounts blocked or
unblocked by an operator). Replaying the entries in sequence order into a fresh
engine and session table gives the same state at every sequence number.

Payloads are fixed little-endian structs followed by arrays; :func:`decode` checks
each length before reading, and raises :class:`EntryError` naming the kind and what
is wrong, so a record that passed its checksum but holds nonsense stops recovery with
a message, never a crash.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from qfix.errors import QfixError
from qfix.wire import codes, schema

__all__ = [
    "AuctionTick",
    "Batch",
    "BlockAccounts",
    "CancelAccounts",
    "CancelSessions",
    "EndOfDay",
    "Entry",
    "EntryError",
    "Expire",
    "Kind",
    "OpenSession",
    "PublishIndicative",
    "SetPhase",
    "SetReference",
    "decode",
    "encode",
]

Array = npt.NDArray[Any]


class Kind(enum.IntEnum):
    """Record kinds (the ``kind`` field of a record header); never renumbered."""

    BATCH = 1
    OPEN_SESSION = 2
    CANCEL_SESSIONS = 3
    CANCEL_ACCOUNTS = 4
    SET_PHASE = 5
    EXPIRE = 6
    END_OF_DAY = 7
    SET_REFERENCE = 8
    BLOCK_ACCOUNTS = 9
    AUCTION_TICK = 10
    PUBLISH_INDICATIVE = 11


class EntryError(QfixError, ValueError):
    """A checksummed record's payload does not decode as its kind says."""


@dataclass(frozen=True, slots=True)
class Batch:
    """Records handed to ``Engine.process`` in one call (resumes after OUTPUT_FULL included)."""

    records: Array  #: INBOUND records


@dataclass(frozen=True, slots=True)
class OpenSession:
    """A client key was given a SessionID (its first login ever)."""

    session_id: int
    kid: bytes


@dataclass(frozen=True, slots=True)
class CancelSessions:
    now: int
    session_ids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class CancelAccounts:
    now: int
    accounts: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class SetPhase:
    now: int
    security_ids: tuple[int, ...]
    phase: int


@dataclass(frozen=True, slots=True)
class Expire:
    now: int


@dataclass(frozen=True, slots=True)
class EndOfDay:
    now: int


@dataclass(frozen=True, slots=True)
class SetReference:
    now: int
    security_id: int
    px_ticks: int


@dataclass(frozen=True, slots=True)
class AuctionTick:
    """Frequent batch auctions that were due were uncrossed (ENGINE.md §7.6)."""

    now: int


@dataclass(frozen=True, slots=True)
class PublishIndicative:
    """Indicative auction values were published (ENGINE.md §7.3); they are engine state."""

    now: int


@dataclass(frozen=True, slots=True)
class BlockAccounts:
    """An operator blocked (``blocked=True``, e.g. ``kill``) or unblocked accounts at stage S."""

    accounts: tuple[int, ...]
    blocked: bool


Entry = (
    Batch
    | OpenSession
    | CancelSessions
    | CancelAccounts
    | SetPhase
    | Expire
    | EndOfDay
    | SetReference
    | BlockAccounts
    | AuctionTick
    | PublishIndicative
)

_NOW: Final = struct.Struct("<q")
_COUNT: Final = struct.Struct("<I")
_SESSION: Final = struct.Struct("<I")
_PHASE: Final = struct.Struct("<qB")
_REFERENCE: Final = struct.Struct("<qIq")
_BLOCK: Final = struct.Struct("<B")
_KID_SIZE: Final = 16
_RECORD: Final = codes.INBOUND_SIZE


def _u32s(values: tuple[int, ...]) -> bytes:
    return _COUNT.pack(len(values)) + np.asarray(values, "<u4").tobytes()


def encode(entry: Entry) -> tuple[Kind, bytes]:
    """The record kind and payload of ``entry``."""
    if isinstance(entry, Batch):
        return Kind.BATCH, np.ascontiguousarray(entry.records).tobytes()
    if isinstance(entry, OpenSession):
        if len(entry.kid) != _KID_SIZE:
            raise ValueError(f"a key id has {_KID_SIZE} bytes, not {len(entry.kid)}")
        return Kind.OPEN_SESSION, _SESSION.pack(entry.session_id) + entry.kid
    if isinstance(entry, CancelSessions):
        return Kind.CANCEL_SESSIONS, _NOW.pack(entry.now) + _u32s(entry.session_ids)
    if isinstance(entry, CancelAccounts):
        return Kind.CANCEL_ACCOUNTS, _NOW.pack(entry.now) + _u32s(entry.accounts)
    if isinstance(entry, SetPhase):
        return Kind.SET_PHASE, _PHASE.pack(entry.now, entry.phase) + _u32s(entry.security_ids)
    if isinstance(entry, Expire):
        return Kind.EXPIRE, _NOW.pack(entry.now)
    if isinstance(entry, EndOfDay):
        return Kind.END_OF_DAY, _NOW.pack(entry.now)
    if isinstance(entry, SetReference):
        return Kind.SET_REFERENCE, _REFERENCE.pack(entry.now, entry.security_id, entry.px_ticks)
    if isinstance(entry, BlockAccounts):
        return Kind.BLOCK_ACCOUNTS, _BLOCK.pack(entry.blocked) + _u32s(entry.accounts)
    if isinstance(entry, AuctionTick):
        return Kind.AUCTION_TICK, _NOW.pack(entry.now)
    if isinstance(entry, PublishIndicative):
        return Kind.PUBLISH_INDICATIVE, _NOW.pack(entry.now)
    raise TypeError(f"not a journal entry: {entry!r}")


def _read_u32s(kind: Kind, data: memoryview, offset: int) -> tuple[int, ...]:
    if len(data) < offset + _COUNT.size:
        raise EntryError(f"{kind.name} payload: {len(data)} bytes, too short for its count")
    (n,) = _COUNT.unpack_from(data, offset)
    start = offset + _COUNT.size
    if len(data) != start + 4 * n:
        raise EntryError(f"{kind.name} payload: {len(data)} bytes, but its count {n} implies {start + 4 * n}")
    return tuple(int(v) for v in np.frombuffer(data, "<u4", n, start))


def _fixed(kind: Kind, data: memoryview, layout: struct.Struct, exact: bool = True) -> tuple[Any, ...]:
    if len(data) < layout.size or (exact and len(data) != layout.size):
        raise EntryError(f"{kind.name} payload: {len(data)} bytes where {layout.size} are expected")
    return layout.unpack_from(data, 0)


def decode(kind: int, payload: bytes | memoryview) -> Entry:
    """The entry a record holds; EntryError if the payload does not fit its kind."""
    data = memoryview(payload)
    try:
        k = Kind(kind)
    except ValueError:
        raise EntryError(f"unknown record kind {kind}") from None
    if k is Kind.BATCH:
        if len(data) % _RECORD:
            raise EntryError(f"BATCH payload: {len(data)} bytes is not a whole number of {_RECORD}-byte records")
        return Batch(np.frombuffer(data, schema.INBOUND).copy())
    if k is Kind.OPEN_SESSION:
        if len(data) != _SESSION.size + _KID_SIZE:
            raise EntryError(f"OPEN_SESSION payload: {len(data)} bytes where {_SESSION.size + _KID_SIZE} are expected")
        return OpenSession(_SESSION.unpack_from(data, 0)[0], bytes(data[_SESSION.size :]))
    if k is Kind.CANCEL_SESSIONS:
        (now,) = _fixed(k, data, _NOW, exact=False)
        return CancelSessions(now, _read_u32s(k, data, _NOW.size))
    if k is Kind.CANCEL_ACCOUNTS:
        (now,) = _fixed(k, data, _NOW, exact=False)
        return CancelAccounts(now, _read_u32s(k, data, _NOW.size))
    if k is Kind.SET_PHASE:
        now, phase = _fixed(k, data, _PHASE, exact=False)
        return SetPhase(now, _read_u32s(k, data, _PHASE.size), phase)
    if k is Kind.EXPIRE:
        return Expire(_fixed(k, data, _NOW)[0])
    if k is Kind.END_OF_DAY:
        return EndOfDay(_fixed(k, data, _NOW)[0])
    if k is Kind.SET_REFERENCE:
        return SetReference(*_fixed(k, data, _REFERENCE))
    if k is Kind.AUCTION_TICK:
        return AuctionTick(_fixed(k, data, _NOW)[0])
    if k is Kind.PUBLISH_INDICATIVE:
        return PublishIndicative(_fixed(k, data, _NOW)[0])
    (blocked,) = _fixed(k, data, _BLOCK, exact=False)
    if blocked > 1:
        raise EntryError(f"BLOCK_ACCOUNTS payload: flag {blocked} is neither 0 nor 1")
    return BlockAccounts(_read_u32s(k, data, _BLOCK.size), bool(blocked))
