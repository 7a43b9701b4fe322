"""Journal entries: every kind round-trips; a payload that does not fit its kind is refused."""

from __future__ import annotations

import numpy as np
import pytest

from qfix.journal import entries as e
from qfix.wire import schema


def _batch(n: int) -> np.ndarray:
    rng = np.random.default_rng(n)
    return rng.integers(0, 256, n * schema.INBOUND.itemsize, dtype=np.uint8).view(schema.INBOUND)


@pytest.mark.parametrize(
    "entry",
    [
        e.OpenSession(3, bytes(range(16))),
        e.CancelSessions(-5, (1, 2, 3)),
        e.CancelSessions(7, ()),
        e.CancelAccounts(2**63 - 1, (4294967294,)),
        e.SetPhase(10, (1, 9), 3),
        e.Expire(11),
        e.EndOfDay(-(2**63)),
        e.SetReference(12, 7, -20),
        e.BlockAccounts((500, 501), True),
        e.BlockAccounts((500,), False),
        e.AuctionTick(13),
        e.PublishIndicative(-1),
    ],
)
def test_commands_round_trip(entry: e.Entry) -> None:
    kind, payload = e.encode(entry)
    assert e.decode(kind, payload) == entry


def test_batches_round_trip_byte_for_byte() -> None:
    for n in (0, 1, 1000):
        records = _batch(n)
        kind, payload = e.encode(e.Batch(records))
        back = e.decode(kind, payload)
        assert isinstance(back, e.Batch) and back.records.tobytes() == records.tobytes()
        assert back.records.flags.writeable  # the engine is handed its own copy


@pytest.mark.parametrize(
    ("kind", "payload", "message"),
    [
        (99, b"", "unknown record kind 99"),
        (e.Kind.BATCH, b"x" * 81, "not a whole number of 80-byte records"),
        (e.Kind.OPEN_SESSION, b"x" * 19, "OPEN_SESSION payload: 19 bytes"),
        (e.Kind.CANCEL_SESSIONS, b"x" * 5, "CANCEL_SESSIONS payload: 5 bytes"),
        (e.Kind.CANCEL_SESSIONS, bytes(8) + (3).to_bytes(4, "little") + bytes(8), "count 3 implies"),
        (e.Kind.SET_PHASE, bytes(9), "too short for its count"),
        (e.Kind.EXPIRE, bytes(9), "EXPIRE payload: 9 bytes where 8"),
        (e.Kind.SET_REFERENCE, bytes(19), "SET_REFERENCE payload"),
        (e.Kind.BLOCK_ACCOUNTS, b"\x02" + bytes(4), "flag 2"),
        (e.Kind.AUCTION_TICK, bytes(7), "AUCTION_TICK payload: 7 bytes where 8"),
        (e.Kind.PUBLISH_INDICATIVE, bytes(9), "PUBLISH_INDICATIVE payload: 9 bytes where 8"),
    ],
)
def test_bad_payloads_are_refused_by_name(kind: int, payload: bytes, message: str) -> None:
    with pytest.raises(e.EntryError, match=message):
        e.decode(kind, payload)


def test_a_key_id_has_sixteen_bytes() -> None:
    with pytest.raises(ValueError, match="16 bytes"):
        e.encode(e.OpenSession(0, b"short"))
