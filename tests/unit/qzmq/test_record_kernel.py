"""The compiled record kernels (qfix.qzmq._record_kernel) against the session's own code.

Two servers in the same state (one a deep copy of the other) take the same frames: the
reference through ``ServerProtocol.receive`` alone, the twin through ``open_fixed`` on a
leased row first and, where the kernel hands a record back, through the session after a
recall. Both must give the same events and the same session state after every frame, and
the same bytes for every record they seal. The streams mix in what the kernel must hand
back: duplicates, junk and forged records, DATA records, KEY_UPDATEs (the client's usage
limit is low), a record of a bad length, a gap.
"""

from __future__ import annotations

import copy
import random
from typing import Any

import numpy as np
import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from qzmq_testlib import RID, config, establish

from qfix.crypto import _gcm_kernel as gcm
from qfix.qzmq import Messages
from qfix.qzmq import _record_kernel as rk
from qfix.qzmq._constants import RecordType
from qfix.qzmq._server import ServerProtocol
from qfix.qzmq._session import Session

pytestmark = pytest.mark.skipif(not gcm.AVAILABLE, reason="no libcrypto reachable from jitted code")

_MSG = 60


class _Kernel:
    """The twin server's records through the kernels, the rest through the session."""

    def __init__(self, server: ServerProtocol, conn: int) -> None:
        self.server, self.conn = server, conn
        self.row = np.zeros(rk.ROW_COLUMNS, np.int64)
        self.nonce = np.zeros(gcm.NONCE_LEN, np.uint8)
        self.cell = np.zeros(1, np.int32)
        self.out = np.zeros(70_000, np.uint8)
        self.taken = self.handed_back = 0

    def _session(self) -> Session | None:
        return self.server.session(self.conn) if self.server.session_count else None

    def receive(self, frame: bytes, now: float) -> list[Any]:
        s = self._session()
        if s is not None and s.lease(self.row):
            buf = np.frombuffer(frame, np.uint8)
            n = rk.open_fixed(self.row, buf, 0, len(frame), self.out, 0, self.nonce, self.cell)
            s.recall(self.row)
            if n != rk.HAND_BACK:
                self.taken += 1
                return [Messages((self.out[:n].tobytes(),), True, self.conn)]
        self.handed_back += 1
        return self.server.receive(RID, frame, now)

    def send_fixed(self, payload: bytes) -> list[bytes]:
        s = self._session()
        assert s is not None and s.lease(self.row)
        buf = np.frombuffer(payload, np.uint8)
        n = rk.seal_fixed(self.row, buf, 0, len(payload), self.out, 0, self.nonce, self.cell)
        s.recall(self.row)
        if n == rk.HAND_BACK:
            self.handed_back += 1
            self.server.send_fixed(self.conn, payload)
            return [f for _, f in self.server.data_to_send()]
        self.taken += 1
        return [self.out[:n].tobytes()]


def _state(server: ServerProtocol, conn: int) -> tuple[Any, ...]:
    if not server.session_count:
        return ("closed",)
    s = server.session(conn)
    c = s.counters
    return (
        s.recv_next, s.send_seq, s.recv.epoch, s.send.epoch, s.recv.records, s.recv.blocks,
        s.send.records, s.send.blocks, c.records_recv, c.records_sent, c.duplicates, c.failed_records,
        c.key_updates_recv, c.key_updates_sent, s.closed,
    )  # fmt: skip


def _payload(rng: random.Random) -> bytes:
    k = rng.choice((1, 1, 2, 3, 7, 1091))
    return rng.randbytes(k * _MSG)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_kernels_match_the_session_over_random_streams(seed: int) -> None:
    rng = random.Random(seed)
    # low usage limits, so that KEY_UPDATEs come up both ways
    link, conn = establish(cfg=config(rekey_after_records=17, max_bad_records=1000))
    ref = link.server
    twin = copy.deepcopy(ref)
    kernel = _Kernel(twin, conn)
    client = link.client
    client_session = client.session  # type: ignore[attr-defined]
    sent: list[bytes] = []
    kinds: dict[str, int] = {}
    for step in range(600):
        now = step * 0.01
        roll = rng.random()
        if roll < 0.25:
            # the server sends: the same bytes from both, which the client opens
            payload = _payload(rng)
            ref.send_fixed(conn, payload)
            want = [f for _, f in ref.data_to_send()]
            assert kernel.send_fixed(payload) == want, step
            for f in want:
                client.receive(f, now)
            kinds["sent"] = kinds.get("sent", 0) + 1
            continue
        if roll < 0.3 and sent:
            frames, kind = [rng.choice(sent)], "duplicate"
        elif roll < 0.35:
            client.send_messages([b"admin"])
            frames, kind = client.data_to_send(), "data"
        elif roll < 0.45:
            client.send_fixed(_payload(rng))
            real = client.data_to_send()
            bad = bytearray(real[-1])
            bad[rng.randrange(len(bad))] ^= 1 << rng.randrange(8)
            frames, kind = [*real[:-1], bytes(bad), real[-1]], "forged"
        else:
            client.send_fixed(_payload(rng))
            frames, kind = client.data_to_send(), "fixed"
        kinds[kind] = kinds.get(kind, 0) + 1
        for f in frames:
            assert kernel.receive(f, now) == ref.receive(RID, f, now), (step, kind)
            assert _state(twin, conn) == _state(ref, conn), (step, kind)
        sent += frames
    assert kernel.taken > 300 and kernel.handed_back > 100, (kernel.taken, kernel.handed_back)
    assert ref.session(conn).counters.key_updates_recv > 5 and ref.session(conn).counters.key_updates_sent > 5
    assert set(kinds) == {"sent", "duplicate", "data", "forged", "fixed"}
    # the end: an authentic record of a bad length closes both alike
    client_session._seal(RecordType.DATA_FIXED.value, b"x" * 59)
    for f in client.data_to_send():  # a KEY_UPDATE may come first
        assert kernel.receive(f, 9.0) == ref.receive(RID, f, 9.0)
    assert _state(twin, conn) == _state(ref, conn) == ("closed",)


def test_a_gap_and_a_closed_session_are_handed_back() -> None:
    link, conn = establish()
    ref = link.server
    twin = copy.deepcopy(ref)
    kernel = _Kernel(twin, conn)
    link.client.send_fixed(b"a" * _MSG)
    link.client.send_fixed(b"b" * _MSG)
    _first, second = link.client.data_to_send()
    assert kernel.receive(second, 0.0) == ref.receive(RID, second, 0.0)
    assert kernel.handed_back == 1 and _state(twin, conn) == _state(ref, conn) == ("closed",)
    assert not link.server.session_count and not twin.session_count
    assert kernel.receive(second, 0.0) == ref.receive(RID, second, 0.0) == []


def test_leased_numbers_come_back_and_the_iv_keeps_its_bits() -> None:
    link, conn = establish()
    s = link.server.session(conn)
    row = np.zeros(rk.ROW_COLUMNS, np.int64)
    assert s.lease(row)
    iv = (int(row[rk.ROW_SEND_IV_HI]) << 64) | (int(row[rk.ROW_SEND_IV_LO]) & ((1 << 64) - 1))
    assert iv == s.send.iv
    row[rk.ROW_RECV_NEXT] += 3
    row[rk.ROW_SEND_SEQ] += 2
    before = s.counters.records_recv, s.counters.records_sent
    recv_next, send_seq = s.recv_next, s.send_seq
    s.recall(row)
    assert (s.recv_next, s.send_seq) == (recv_next + 3, send_seq + 2)
    assert (s.counters.records_recv, s.counters.records_sent) == (before[0] + 3, before[1] + 2)
    s.close()
    assert not s.lease(np.zeros(rk.ROW_COLUMNS, np.int64))


@pytest.mark.parametrize("size", [0, 1, 60, 65_510])
def test_the_aead_equals_cryptography_and_refuses_a_flipped_bit(size: int) -> None:
    rng = random.Random(size)
    key, nonce, aad, pt = rng.randbytes(32), rng.randbytes(12), rng.randbytes(10), rng.randbytes(size)
    sealer, opener = gcm.GcmKey(key, encrypt=True), gcm.GcmKey(key, encrypt=False)
    cell = np.zeros(1, np.int32)
    n_arr, a_arr = np.frombuffer(nonce, np.uint8), np.frombuffer(aad, np.uint8)
    p_arr = np.frombuffer(pt, np.uint8)
    out = np.zeros(size + gcm.TAG_LEN, np.uint8)
    assert gcm.seal_record(sealer.ctx, n_arr.ctypes.data, a_arr.ctypes.data, 10, p_arr.ctypes.data, size,
                           out.ctypes.data, cell)  # fmt: skip
    assert out.tobytes() == AESGCM(key).encrypt(nonce, pt, aad)
    back = np.zeros(max(size, 1), np.uint8)
    assert gcm.open_record(opener.ctx, n_arr.ctypes.data, a_arr.ctypes.data, 10, out.ctypes.data, out.size,
                           back.ctypes.data, cell)  # fmt: skip
    assert back[:size].tobytes() == pt
    for where in (0, out.size - 1):
        bad = out.copy()
        bad[where] ^= 0x80
        assert not gcm.open_record(opener.ctx, n_arr.ctypes.data, a_arr.ctypes.data, 10, bad.ctypes.data,
                                   bad.size, back.ctypes.data, cell)  # fmt: skip
    assert not gcm.open_record(opener.ctx, n_arr.ctypes.data, a_arr.ctypes.data, 10, out.ctypes.data, 15,
                               back.ctypes.data, cell)  # fmt: skip
    sealer.close()
    sealer.close()
    assert sealer.ctx == 0
    with pytest.raises(ValueError, match="32-byte"):
        gcm.GcmKey(b"short", encrypt=True)


def test_the_protocol_recalls_a_leased_session_before_it_touches_it() -> None:
    """Leased rows stay the session's state only until the session layer is used for it:
    a send through the protocol recalls it (the kernel then hands back), relend() leases
    it again on the same row, a deep copy keeps the numbers, and a closed session's row
    is freed for the next session."""
    link, conn = establish()
    proto = link.server
    row = proto.lease(conn)
    assert row >= 0 and proto.lease(conn) == row
    table = proto.lease_table
    nonce, cell = np.zeros(gcm.NONCE_LEN, np.uint8), np.zeros(1, np.int32)
    out = np.zeros(200, np.uint8)
    payload = np.frombuffer(b"p" * _MSG, np.uint8)
    n = rk.seal_fixed(table[row], payload, 0, _MSG, out, 0, nonce, cell)
    assert n == _MSG + rk.RECORD_OVERHEAD
    proto.queue_sealed(conn, (out[:n].tobytes(),))
    proto.send_fixed(conn, b"q" * _MSG)  # recalls: the kernel's record is counted first
    assert not table[row, rk.ROW_LEASED]
    assert rk.seal_fixed(table[row], payload, 0, _MSG, out, 0, nonce, cell) == rk.HAND_BACK
    got = [ev for f in link.to_client() for ev in link.client.receive(f, 0.0)]
    assert [ev.frames for ev in got if isinstance(ev, Messages)] == [(b"p" * _MSG,), (b"q" * _MSG,)]
    twin = copy.deepcopy(proto)
    proto.relend()
    assert proto.lease_table[row, rk.ROW_LEASED] == 1 and proto.lease(conn) == row
    assert twin.session(conn).send_seq == proto.session(conn).send_seq
    version = proto.lease_version
    proto.close(conn)
    assert proto.lease(conn) == -1 and proto.lease_version == version + 1
    _, conn2 = establish(server=proto, rid=b"\x00\x00\x00\x00\x02")
    assert proto.lease(conn2) == row  # the freed row, leased afresh
