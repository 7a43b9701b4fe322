"""QZMQ v1 record layer, KEY_UPDATE, full re-key, exporter and CLOSE (QZMQ.md §4-§6, §8).

Sans-I/O: a Session turns records into Output objects and send requests into lists
of frames.  Time is only ever an argument (``now``, seconds), used for the failed-
record window of §4.  The re-key timers and rate limits of §5.2 are not enforced.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.mlkem import MLKEM768PrivateKey, MLKEM768PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from . import schedule as qs

# Receiver hard usage limits per epoch (§5.1), fixed by the spec.
RECV_LIMIT_BLOCKS = 2**33
RECV_LIMIT_RECORDS = 2**31

_TYPES_C2S = frozenset({qs.R_DATA, qs.R_KEY_UPDATE, qs.R_REKEY_INIT, qs.R_REKEY_DONE, qs.R_DATA_FIXED, qs.R_CLOSE})
_TYPES_S2C = frozenset(
    {
        qs.R_DATA,
        qs.R_READY,
        qs.R_KEY_UPDATE,
        qs.R_REKEY_INIT,
        qs.R_REKEY_RESP,
        qs.R_DATA_FIXED,
        qs.R_CLOSE,
    }
)


class ProtocolUsageError(Exception):
    """The caller asked for something the current state does not allow."""


@dataclass
class Output:
    """Result of feeding one frame (or of a local action that also ends a session)."""

    frames: list[bytes] = field(default_factory=list)
    """Frames to send to the peer, in order."""
    messages: list[bytes] = field(default_factory=list)
    """Application messages delivered (DATA: each u16-framed msg; DATA_FIXED: each 60 B)."""
    payloads: list[tuple[int, bytes]] = field(default_factory=list)
    """(record type, whole plaintext) of each delivered DATA / DATA_FIXED record."""
    events: list[str] = field(default_factory=list)
    """Names, see the package docstring."""
    failed: int | None = None
    """Handshake failure code: 1 MISMATCH, 2 FAILED (client: Failed(...) of §8)."""
    closed: tuple[int, bool] | None = None
    """(reason, authenticated) when the session ended with this frame."""

    def extend(self, other: Output) -> None:
        self.frames += other.frames
        self.messages += other.messages
        self.payloads += other.payloads
        self.events += other.events
        self.failed = other.failed if other.failed is not None else self.failed
        self.closed = other.closed if other.closed is not None else self.closed


class _Direction:
    """Traffic secret, key, iv, epoch and usage counters of one direction."""

    def __init__(self, secret: bytes) -> None:
        self.epoch = 0
        self._install(secret)

    def _install(self, secret: bytes) -> None:
        self.secret = secret
        self.key, self.iv = qs.traffic_keys(secret)
        self.aead = AESGCM(self.key)
        self.records = 0
        self.blocks = 0

    def ratchet(self) -> None:
        self._install(qs.next_traffic_secret(self.secret))
        self.epoch += 1

    def switch(self, secret: bytes, epoch: int) -> None:
        self._install(secret)
        self.epoch = epoch

    def count(self, plaintext_len: int) -> None:
        self.records += 1
        self.blocks += -(-plaintext_len // 16) + 2


def encode_data(msgs: Sequence[bytes]) -> bytes:
    """DATA plaintext: one or more u16 len ‖ msg, len >= 1."""
    if not msgs:
        raise ValueError("DATA needs at least one message")
    out = bytearray()
    for m in msgs:
        if not 1 <= len(m) <= 0xFFFF:
            raise ValueError("DATA message length must be 1..65535")
        out += len(m).to_bytes(2, "big") + m
    return bytes(out)


def decode_data(pt: bytes) -> list[bytes] | None:
    msgs, i = [], 0
    if not pt:
        return None
    while i < len(pt):
        if i + 2 > len(pt):
            return None
        n = int.from_bytes(pt[i : i + 2], "big")
        if n == 0 or i + 2 + n > len(pt):
            return None
        msgs.append(pt[i + 2 : i + 2 + n])
        i += 2 + n
    return msgs


class Session:
    """One established (or, client side, WAIT_READY) QZMQ session: the record layer."""

    def __init__(
        self,
        *,
        is_client: bool,
        mode: int,
        secrets: dict[str, bytes],
        peer_kid: bytes,
        peer_alg: int,
        rekey_after_records: int = 2**30,
        rekey_after_blocks: int = 2**32,
        max_bad_records: int = 64,
        wait_ready: bool = False,
    ) -> None:
        if not (0 < rekey_after_records <= 2**30 and 0 < rekey_after_blocks <= 2**32):
            raise ValueError("usage thresholds may only be lowered")
        self.is_client = is_client
        self.mode = mode
        self.peer_kid = peer_kid
        self.peer_alg = peer_alg
        c_ap, s_ap = secrets["c_ap"], secrets["s_ap"]
        self._send = _Direction(c_ap if is_client else s_ap)
        self._recv = _Direction(s_ap if is_client else c_ap)
        self._exp = secrets["exp"]
        self._chain = secrets["chain"]
        self._th_rk = secrets["th_rk"]
        self.send_seq = 0
        self.recv_next = 0
        self.rekey_after_records = rekey_after_records
        self.rekey_after_blocks = rekey_after_blocks
        self.max_bad_records = max_bad_records
        self.state = "WAIT_READY" if wait_ready else "ESTABLISHED"
        # re-key sub-state: client IDLE / WAIT_RESP, server IDLE / WAIT_DONE
        self.rekey_state = "IDLE"
        self.rekey_requested = False  # server: a request was sent and not yet answered
        self.rekeys_completed = 0
        self._rk_init_pt = b""
        self._rk_mlkem: MLKEM768PrivateKey | None = None
        self._rk_x25519: X25519PrivateKey | None = None
        self._pending_recv_secret: bytes | None = None
        self.duplicates = 0
        self.bad_records = 0
        self._bad_window_start: float | None = None
        self._bad_in_window = 0
        self.sealed_nonces: list[tuple[bytes, bytes]] = []
        """(key, nonce) of every record this side sealed, for no-reuse checks in tests."""

    # --- introspection ----------------------------------------------------------------
    @property
    def send_epoch(self) -> int:
        return self._send.epoch

    @property
    def recv_epoch(self) -> int:
        return self._recv.epoch

    @property
    def send_secret(self) -> bytes:
        return self._send.secret

    @property
    def recv_secret(self) -> bytes:
        return self._recv.secret

    @property
    def closed(self) -> bool:
        return self.state == "CLOSED"

    # --- exporter (§6) ------------------------------------------------------------
    def exporter(self, label: bytes | str, context: bytes, length: int) -> bytes:
        return qs.exporter(self._exp, label, context, length)

    @property
    def channel_binding(self) -> bytes:
        return qs.channel_binding(self._exp)

    # --- sending --------------------------------------------------------------------
    def _seal_one(self, rtype: int, pt: bytes) -> bytes:
        if self.send_seq >= 2**64 - 1:
            raise ProtocolUsageError("sequence space exhausted")
        hdr = bytes([rtype, self._send.epoch & 0xFF]) + self.send_seq.to_bytes(8, "big")
        nonce = qs.record_nonce(self._send.iv, self.send_seq)
        rec = hdr + self._send.aead.encrypt(nonce, pt, hdr)
        if len(rec) > qs.MAX_FRAME:
            raise ValueError("record over 65,536 bytes")
        self.sealed_nonces.append((self._send.key, nonce))
        self._send.count(len(pt))
        self.send_seq += 1
        return rec

    def _seal(self, rtype: int, pt: bytes) -> list[bytes]:
        """Seal a record other than KEY_UPDATE, first sending KEY_UPDATE at a limit."""
        if len(pt) + qs.MIN_RECORD > qs.MAX_FRAME:
            raise ValueError("record over 65,536 bytes")
        frames = []
        if self._send.blocks >= self.rekey_after_blocks or self._send.records >= self.rekey_after_records:
            frames.append(self._seal_one(qs.R_KEY_UPDATE, b""))
            self._send.ratchet()
        frames.append(self._seal_one(rtype, pt))
        return frames

    def _require_established(self) -> None:
        if self.state != "ESTABLISHED":
            raise ProtocolUsageError(f"session is {self.state}")

    def send_data(self, msgs: Sequence[bytes]) -> list[bytes]:
        """Seal one DATA record carrying msgs (each 1..65535 B)."""
        self._require_established()
        return self._seal(qs.R_DATA, encode_data(msgs))

    def send_fixed(self, msgs: bytes | Sequence[bytes]) -> list[bytes]:
        """Seal one DATA_FIXED record: 1..1091 messages of exactly 60 B (or their concatenation)."""
        self._require_established()
        pt = msgs if isinstance(msgs, bytes | bytearray) else b"".join(msgs)
        pt = bytes(pt)
        k, r = divmod(len(pt), qs.FIXED_MSG_LEN)
        if r or not 1 <= k <= qs.MAX_FIXED_MSGS:
            raise ValueError("DATA_FIXED needs 1..1091 messages of 60 bytes")
        return self._seal(qs.R_DATA_FIXED, pt)

    def send_key_update(self) -> list[bytes]:
        """Seal KEY_UPDATE under the current send key, then ratchet the send secret."""
        self._require_established()
        frame = self._seal_one(qs.R_KEY_UPDATE, b"")
        self._send.ratchet()
        return [frame]

    def close(self, reason: int = qs.CLOSE_NORMAL) -> list[bytes]:
        """Send CLOSE(reason) and end the session (Closed(reason, False) locally)."""
        if self.state == "CLOSED":
            return []
        frames = self._seal(qs.R_CLOSE, bytes([reason])) if self.state == "ESTABLISHED" else []
        self._drop_keys()
        return frames

    def start_rekey(self, *, mlkem_seed: bytes | None = None, x25519_private: bytes | None = None) -> list[bytes]:
        """Client: send REKEY_INIT {ek', [x']} (IDLE → WAIT_RESP)."""
        self._require_established()
        if not self.is_client:
            raise ProtocolUsageError("only the client starts a re-key; use request_rekey")
        if self.rekey_state != "IDLE":
            raise ProtocolUsageError("a re-key is already running")
        return self._start_rekey(mlkem_seed, x25519_private)

    def _start_rekey(self, mlkem_seed: bytes | None, x25519_private: bytes | None) -> list[bytes]:
        self._rk_mlkem = MLKEM768PrivateKey.from_seed_bytes(mlkem_seed or os.urandom(64))
        pt = self._rk_mlkem.public_key().public_bytes_raw()
        if self.mode == qs.HYBRID:
            self._rk_x25519 = (
                X25519PrivateKey.from_private_bytes(x25519_private) if x25519_private else X25519PrivateKey.generate()
            )
            pt += self._rk_x25519.public_key().public_bytes_raw()
        self._rk_init_pt = pt
        frames = self._seal(qs.R_REKEY_INIT, pt)
        self.rekey_state = "WAIT_RESP"
        return frames

    def request_rekey(self) -> list[bytes]:
        """Server: send the empty REKEY_INIT (a request that the client re-key)."""
        self._require_established()
        if self.is_client:
            raise ProtocolUsageError("the client uses start_rekey")
        frames = self._seal(qs.R_REKEY_INIT, b"")
        self.rekey_requested = True
        return frames

    # --- receiving ------------------------------------------------------------------
    def _drop_keys(self) -> None:
        self.state = "CLOSED"
        self._send = self._recv = None  # type: ignore[assignment]
        self._rk_mlkem = self._rk_x25519 = None
        self._pending_recv_secret = None

    def _fatal(self, out: Output, reason: int = qs.CLOSE_PROTOCOL_ERROR) -> Output:
        if self.state == "WAIT_READY":
            # §4: a client in WAIT_READY sends nothing and reports Failed(FAILED).
            self._drop_keys()
            out.events.append("FAILED")
            out.failed = qs.ERR_FAILED
            return out
        out.frames += self._seal(qs.R_CLOSE, bytes([reason]))
        self._drop_keys()
        out.events.append("CLOSED")
        out.closed = (reason, False)
        return out

    def _failed_record(self, out: Output, now: float) -> Output:
        if self.state == "WAIT_READY":
            return self._fatal(out)
        self.bad_records += 1
        if self._bad_window_start is None or now - self._bad_window_start >= 60:
            self._bad_window_start = now
            self._bad_in_window = 0
        self._bad_in_window += 1
        if self._bad_in_window > self.max_bad_records:
            return self._fatal(out)
        out.events.append("BAD_RECORD")
        return out

    def receive(self, rec: bytes, now: float = 0.0) -> Output:
        """Receive procedure of §4, steps 1-5."""
        out = Output()
        if self.state == "CLOSED":
            out.events.append("DROPPED")
            return out
        allowed = _TYPES_S2C if self.is_client else _TYPES_C2S
        # 1. length and type for this direction
        if not qs.MIN_RECORD <= len(rec) <= qs.MAX_FRAME or rec[0] not in allowed:
            return self._failed_record(out, now)
        rtype, epoch, seq = rec[0], rec[1], int.from_bytes(rec[2:10], "big")
        # 2. duplicate
        if seq < self.recv_next:
            self.duplicates += 1
            out.events.append("DUPLICATE")
            return out
        # 3. epoch
        if epoch != self._recv.epoch & 0xFF:
            return self._failed_record(out, now)
        # 4. AEAD, then strict sequencing
        try:
            pt = self._recv.aead.decrypt(qs.record_nonce(self._recv.iv, seq), rec[10:], rec[:10])
        except InvalidTag:
            return self._failed_record(out, now)
        if seq != self.recv_next:
            return self._fatal(out)
        self.recv_next = seq + 1
        self._recv.count(len(pt))
        if self._recv.blocks > RECV_LIMIT_BLOCKS or self._recv.records > RECV_LIMIT_RECORDS:
            return self._fatal(out, qs.CLOSE_USAGE_LIMIT)
        # 5. type allowed in state, plaintext length, act
        return self._act(out, rtype, pt)

    def _act(self, out: Output, rtype: int, pt: bytes) -> Output:
        if self.state == "WAIT_READY":
            if rtype != qs.R_READY or pt:
                return self._fatal(out)
            self.state = "ESTABLISHED"
            out.events.append("ESTABLISHED")
            return out
        if rtype == qs.R_READY:
            return self._fatal(out)
        if rtype == qs.R_DATA:
            msgs = decode_data(pt)
            if msgs is None:
                return self._fatal(out)
            out.messages += msgs
            out.payloads.append((rtype, pt))
            out.events.append("DATA")
            return out
        if rtype == qs.R_DATA_FIXED:
            k, r = divmod(len(pt), qs.FIXED_MSG_LEN)
            if r or not 1 <= k <= qs.MAX_FIXED_MSGS:
                return self._fatal(out)
            out.messages += [pt[i : i + qs.FIXED_MSG_LEN] for i in range(0, len(pt), 60)]
            out.payloads.append((rtype, pt))
            out.events.append("DATA_FIXED")
            return out
        if rtype == qs.R_KEY_UPDATE:
            if pt:
                return self._fatal(out)
            # Ratchets the current (during a re-key: old) receive secret.
            self._recv.ratchet()
            out.events.append("KEY_UPDATE")
            return out
        if rtype == qs.R_CLOSE:
            if len(pt) != 1:
                return self._fatal(out)
            reason = pt[0] if pt[0] <= qs.CLOSE_USAGE_LIMIT else qs.CLOSE_PROTOCOL_ERROR
            self._drop_keys()
            out.events.append("CLOSED")
            out.closed = (reason, True)
            return out
        if self.is_client:
            return self._act_rekey_client(out, rtype, pt)
        return self._act_rekey_server(out, rtype, pt)

    def _act_rekey_client(self, out: Output, rtype: int, pt: bytes) -> Output:
        if rtype == qs.R_REKEY_INIT:  # server request
            if pt:
                return self._fatal(out)
            out.events.append("REKEY_REQUEST")
            if self.rekey_state == "IDLE":
                out.frames += self._start_rekey(None, None)
            return out
        # REKEY_RESP
        if self.rekey_state != "WAIT_RESP" or len(pt) != qs.rekey_resp_len(self.mode):
            return self._fatal(out)
        assert self._rk_mlkem is not None
        try:
            ikm = self._rk_mlkem.decapsulate(pt[: qs.MLKEM_CT_LEN])
            if self.mode == qs.HYBRID:
                assert self._rk_x25519 is not None
                peer = X25519PublicKey.from_public_bytes(pt[qs.MLKEM_CT_LEN :])
                ikm += self._rk_x25519.exchange(peer)
        except ValueError:
            return self._fatal(out)
        new = qs.rekey_derive(self._chain, self._th_rk, self._rk_init_pt, pt, ikm)
        self._chain, self._th_rk = new["chain"], new["th_rk"]
        self._rk_mlkem = self._rk_x25519 = None
        self._rk_init_pt = b""
        # receive epoch f+1 where f is the epoch REKEY_RESP was sealed under
        self._recv.switch(new["s_ap"], self._recv.epoch + 1)
        # seal REKEY_DONE at send epoch e (after any usage KEY_UPDATE), then e+1
        out.frames += self._seal(qs.R_REKEY_DONE, b"")
        self._send.switch(new["c_ap"], self._send.epoch + 1)
        self.rekey_state = "IDLE"
        self.rekeys_completed += 1
        out.events.append("REKEYED")
        return out

    def _act_rekey_server(self, out: Output, rtype: int, pt: bytes) -> Output:
        if rtype == qs.R_REKEY_INIT:
            if self.rekey_state != "IDLE" or len(pt) != qs.rekey_init_len(self.mode):
                return self._fatal(out)
            try:
                ek = MLKEM768PublicKey.from_public_bytes(pt[: qs.MLKEM_EK_LEN])
                ikm, ct = ek.encapsulate()
                resp = ct
                if self.mode == qs.HYBRID:
                    peer = X25519PublicKey.from_public_bytes(pt[qs.MLKEM_EK_LEN :])
                    x = X25519PrivateKey.generate()
                    ikm += x.exchange(peer)
                    resp += x.public_key().public_bytes_raw()
            except ValueError:
                return self._fatal(out)
            new = qs.rekey_derive(self._chain, self._th_rk, pt, resp, ikm)
            self._chain, self._th_rk = new["chain"], new["th_rk"]
            out.frames += self._seal(qs.R_REKEY_RESP, resp)
            self._send.switch(new["s_ap"], self._send.epoch + 1)
            self._pending_recv_secret = new["c_ap"]
            self.rekey_state = "WAIT_DONE"
            out.events.append("REKEY_INIT")
            return out
        # REKEY_DONE
        if self.rekey_state != "WAIT_DONE" or pt:
            return self._fatal(out)
        assert self._pending_recv_secret is not None
        self._recv.switch(self._pending_recv_secret, self._recv.epoch + 1)
        self._pending_recv_secret = None
        self.rekey_state = "IDLE"
        self.rekey_requested = False
        self.rekeys_completed += 1
        out.events.append("REKEYED")
        return out
