"""The established QZMQ session: record layer, sequencing, KEY_UPDATE, full re-key, CLOSE.

Theory of operation. One :class:`Session` serves both roles. Each direction has a
:class:`_Direction` (secret, epoch, AEAD object, usage counters); the sender owns
``send_seq``, the receiver ``recv_next``. Receiving runs the five steps of
docs/qzmq.md §4 in order: cheap length/type checks, the duplicate check (before any
AEAD work), the epoch check, AEAD open, and only then the strict ``seq == next`` rule
and the per-type action. A record failing before authentication is junk: it is
dropped and counted, and only too many of them in a 60 s window are fatal. An
authentic record out of order means records were deleted or swapped, and is fatal.

Sending checks the usage limits *before* sealing any record other than KEY_UPDATE,
and ratchets first when a limit is reached, so a KEY_UPDATE is never sealed under a
key the peer has already left behind after REKEY_RESP / REKEY_DONE.

The full re-key runs beside the data path: only the client starts it (at
``t_key + rekey_interval``, on a server request or an application request), the
server answers, and each side switches its *send* key right after sealing its re-key
record and its *receive* key right after authenticating the peer's one. Timers are
returned by :meth:`Session.deadline` and driven by :meth:`Session.handle_timer`; the
session never reads a clock.
"""

from __future__ import annotations

import contextlib
import enum
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy.typing as npt

if TYPE_CHECKING:
    from qfix.crypto._gcm_kernel import GcmKey

from qfix.crypto import primitives as _p
from qfix.qzmq import _record_row as rk
from qfix.qzmq import _schedule as ks
from qfix.qzmq._config import Config
from qfix.qzmq._constants import (
    BAD_RECORD_WINDOW,
    CLIENT_REKEY_MIN_GAP,
    CLIENT_TO_SERVER,
    CT_LEN,
    EK_LEN,
    FIXED_MSG_LEN,
    MAX_FIXED_MSGS,
    MAX_FRAME,
    MAX_PLAINTEXT,
    MAX_SEQ,
    MIN_RECORD,
    RECORD_HEADER_LEN,
    RECV_BLOCK_LIMIT,
    RECV_RECORD_LIMIT,
    REKEY_GRACE,
    REKEY_RESP_TIMEOUT,
    SERVER_REKEY_MIN_GAP,
    SERVER_TO_CLIENT,
    CloseReason,
    ErrorCode,
    Mode,
    RecordType,
    rekey_init_len,
    rekey_resp_len,
)
from qfix.qzmq._events import Closed, Established, Event, Failed, Messages
from qfix.qzmq._util import Copyable
from qfix.qzmq.errors import ConnectionClosed, LocalProtocolError

__all__ = ["Session", "SessionCounters"]

_HDR = struct.Struct(">BBQ")
_U16 = struct.Struct(">H")

_DATA = RecordType.DATA.value
_FIXED = RecordType.DATA_FIXED.value
_READY = RecordType.READY.value
_KEY_UPDATE = RecordType.KEY_UPDATE.value
_REKEY_INIT = RecordType.REKEY_INIT.value
_REKEY_RESP = RecordType.REKEY_RESP.value
_REKEY_DONE = RecordType.REKEY_DONE.value
_CLOSE = RecordType.CLOSE.value


class _Fatal(Exception):
    """Internal: unwinds record processing into a session close."""

    def __init__(self, reason: CloseReason = CloseReason.PROTOCOL_ERROR) -> None:
        super().__init__(reason.name)
        self.reason = reason


@dataclass(slots=True)
class SessionCounters(Copyable):
    """Per-session counters (exported as metrics)."""

    duplicates: int = 0
    failed_records: int = 0
    records_sent: int = 0
    records_recv: int = 0
    key_updates_sent: int = 0
    key_updates_recv: int = 0
    rekeys: int = 0


#: stands in for the AEAD of a closed session, whose keys are dropped (never used:
#: a closed session seals and opens nothing)
_DEAD_AEAD = _p.Aes256Gcm(bytes(32))


class _Direction(Copyable):
    """Keys and usage of one direction in the current epoch."""

    __slots__ = ("_kernel", "aead", "blocks", "epoch", "iv", "key", "records", "secret")

    def __init__(self, secret: bytes, epoch: int) -> None:
        self._kernel: GcmKey | None = None
        self.install(secret, epoch)

    def install(self, secret: bytes, epoch: int) -> None:
        key, iv = ks.traffic_keys(secret)
        self._drop_kernel()
        self.secret = secret
        self.epoch = epoch
        self.key = key
        self.aead = _p.Aes256Gcm(key)
        self.iv = int.from_bytes(iv, "big")
        self.blocks = 0
        self.records = 0

    def wipe(self) -> None:
        """Drop the secret and the AEAD key (the session is closed; counts stay)."""
        self._drop_kernel()
        self.secret = b""
        self.key = b""
        self.aead = _DEAD_AEAD
        self.iv = 0

    def kernel_ctx(self, *, encrypt: bool) -> int:
        """The address of this key's EVP context for the compiled record kernels, made on
        first use (most sessions of a client never need one)."""
        if self._kernel is None:
            from qfix.crypto._gcm_kernel import GcmKey  # Numba's only when a kernel needs it

            self._kernel = GcmKey(self.key, encrypt=encrypt)
        return self._kernel.ctx

    def _drop_kernel(self) -> None:
        if self._kernel is not None:
            self._kernel.close()
            self._kernel = None

    def __deepcopy__(self, memo: dict[int, Any]) -> Any:
        # an EVP context cannot be shared (whichever copy went first would free it) nor
        # copied: the copy makes its own when it needs one
        kernel, self._kernel = self._kernel, None
        try:
            return super().__deepcopy__(memo)
        finally:
            self._kernel = kernel

    def ratchet(self) -> None:
        self.install(ks.traffic_update(self.secret), self.epoch + 1)

    def nonce(self, seq: int) -> bytes:
        return (self.iv ^ seq).to_bytes(12, "big")


class _Rekey(enum.Enum):
    IDLE = 0
    WAIT_RESP = 1  # client
    WAIT_DONE = 2  # server


class Session(Copyable):
    """An established (or, on a client, READY-awaiting) QZMQ session."""

    __slots__ = (
        "_bad_count",
        "_bad_window_end",
        "_chain",
        "_exp",
        "_last_request",
        "_pending_recv",
        "_rekey",
        "_rekey_deadline",
        "_rekey_eph",
        "_rekey_init_pt",
        "_requested",
        "_rx_types",
        "_th_rk",
        "_want_rekey",
        "awaiting_ready",
        "channel_binding",
        "closed",
        "config",
        "conn",
        "counters",
        "is_server",
        "mode",
        "outbox",
        "peer_accounts",
        "peer_kid",
        "recv",
        "recv_next",
        "send",
        "send_seq",
        "t_key",
    )

    def __init__(
        self,
        *,
        is_server: bool,
        config: Config,
        c_ap: bytes,
        s_ap: bytes,
        exp: bytes,
        chain: bytes,
        th_rk: bytes,
        now: float,
        peer_kid: bytes,
        peer_accounts: tuple[int, ...] = (),
        conn: int = 0,
    ) -> None:
        self.is_server = is_server
        self.config = config
        self.mode: Mode = config.mode
        self.conn = conn
        self.peer_kid = peer_kid
        self.peer_accounts = peer_accounts
        self.send = _Direction(s_ap if is_server else c_ap, 0)
        self.recv = _Direction(c_ap if is_server else s_ap, 0)
        self._rx_types = CLIENT_TO_SERVER if is_server else SERVER_TO_CLIENT
        self.send_seq = 0
        self.recv_next = 0
        self._exp = exp
        self._chain = chain
        self._th_rk = th_rk
        self.channel_binding = ks.exporter(exp, b"EXPORTER-Channel-Binding", b"", 32)
        self.t_key = now
        self.awaiting_ready = not is_server
        self.closed = False
        self.outbox: list[bytes] = []
        self.counters = SessionCounters()
        self._bad_count = 0
        self._bad_window_end = -1.0
        self._rekey = _Rekey.IDLE
        self._rekey_deadline = 0.0
        self._rekey_eph: tuple[_p.MLKEMPrivateKey, _p.X25519PrivateKey | None] | None = None
        self._rekey_init_pt = b""
        self._pending_recv: bytes | None = None
        self._want_rekey = False
        self._last_request: float | None = None
        self._requested = False

    # --- sending --------------------------------------------------------------------

    def _seal(self, rtype: int, plaintext: bytes) -> None:
        """Seal one record under the current send key and queue it."""
        d = self.send
        seq = self.send_seq
        if rtype != _KEY_UPDATE and (
            d.blocks >= self.config.rekey_after_blocks or d.records >= self.config.rekey_after_records
        ):
            self._seal(_KEY_UPDATE, b"")
            d.ratchet()
            self.counters.key_updates_sent += 1
            seq = self.send_seq
        if seq >= MAX_SEQ - 1 and rtype != _CLOSE:
            # keep the last sequence number for the CLOSE that ends the session
            raise _Fatal(CloseReason.USAGE_LIMIT)
        n = len(plaintext)
        header = _HDR.pack(rtype, d.epoch & 0xFF, seq)
        out = bytearray(RECORD_HEADER_LEN + n + 16)
        out[:RECORD_HEADER_LEN] = header
        d.aead.encrypt_into(d.nonce(seq), plaintext, header, memoryview(out)[RECORD_HEADER_LEN:])
        self.send_seq = seq + 1
        d.records += 1
        d.blocks += (n + 15) // 16 + 2
        self.counters.records_sent += 1
        # handed out as the bytearray it was sealed into: copying 64 KiB per record
        # would cost as much as the encryption itself
        self.outbox.append(out)  # type: ignore[arg-type]

    # --- the compiled record kernels (qfix.qzmq._record_kernel) ----------------------

    def lease(self, row: npt.NDArray[Any]) -> bool:
        """Copy what the compiled record kernels need into ``row`` (an int64 row of
        ``_record_kernel.ROW_COLUMNS``); until :meth:`recall` the row is this session's
        state and nothing else may use the session. False, leaving ``row`` as it was,
        when the kernels cannot serve it: closed, not established, or no AEAD that
        compiled code can call here."""
        if self.closed or self.awaiting_ready:
            return False
        from qfix.crypto import _gcm_kernel  # Numba's only when a kernel needs it

        if not _gcm_kernel.AVAILABLE:
            return False
        r, s = self.recv, self.send
        row[rk.ROW_RECV_CTX] = r.kernel_ctx(encrypt=False)
        row[rk.ROW_RECV_IV_HI], row[rk.ROW_RECV_IV_LO] = _iv_words(r.iv)
        row[rk.ROW_RECV_EPOCH] = r.epoch & 0xFF
        row[rk.ROW_RECV_NEXT] = self.recv_next
        row[rk.ROW_RECV_RECORDS] = r.records
        row[rk.ROW_RECV_BLOCKS] = r.blocks
        row[rk.ROW_SEND_CTX] = s.kernel_ctx(encrypt=True)
        row[rk.ROW_SEND_IV_HI], row[rk.ROW_SEND_IV_LO] = _iv_words(s.iv)
        row[rk.ROW_SEND_EPOCH] = s.epoch & 0xFF
        row[rk.ROW_SEND_SEQ] = self.send_seq
        row[rk.ROW_SEND_RECORDS] = s.records
        row[rk.ROW_SEND_BLOCKS] = s.blocks
        row[rk.ROW_SEND_RECORD_LIMIT] = self.config.rekey_after_records
        row[rk.ROW_SEND_BLOCK_LIMIT] = self.config.rekey_after_blocks
        row[rk.ROW_LEASED] = 1
        return True

    def recall(self, row: npt.NDArray[Any]) -> None:
        """Take back the state a :meth:`lease` lent to ``row``, with what the kernels
        opened and sealed counted (each of their records moved a sequence number by one);
        the row reads as not leased from now on."""
        row[rk.ROW_LEASED] = 0
        opened = int(row[rk.ROW_RECV_NEXT]) - self.recv_next
        sealed = int(row[rk.ROW_SEND_SEQ]) - self.send_seq
        self.recv_next += opened
        self.recv.records = int(row[rk.ROW_RECV_RECORDS])
        self.recv.blocks = int(row[rk.ROW_RECV_BLOCKS])
        self.counters.records_recv += opened
        self.send_seq += sealed
        self.send.records = int(row[rk.ROW_SEND_RECORDS])
        self.send.blocks = int(row[rk.ROW_SEND_BLOCKS])
        self.counters.records_sent += sealed

    def _check_open(self) -> None:
        if self.closed or self.awaiting_ready:
            raise ConnectionClosed("session is not established")

    def _seal_app(self, rtype: int, plaintext: bytes) -> list[Event]:
        try:
            self._seal(rtype, plaintext)
        except _Fatal as exc:
            return self._fatal(exc.reason)
        return []

    def send_fixed(self, payload: bytes) -> list[Event]:
        """Seal one DATA_FIXED record of k x 60-byte messages (1 <= k <= 1091)."""
        self._check_open()
        n = len(payload)
        if n == 0 or n % FIXED_MSG_LEN or n > FIXED_MSG_LEN * MAX_FIXED_MSGS:
            raise LocalProtocolError("DATA_FIXED payload must be k x 60 bytes, 1 <= k <= 1091")
        return self._seal_app(_FIXED, payload)

    def send_messages(self, messages: Sequence[bytes]) -> list[Event]:
        """Seal one DATA record holding ``messages`` (each 1..65,535 bytes)."""
        self._check_open()
        if not messages:
            raise LocalProtocolError("a DATA record holds at least one message")
        parts = []
        for m in messages:
            if not 1 <= len(m) <= 0xFFFF:
                raise LocalProtocolError("a DATA message is 1..65,535 bytes")
            parts.append(_U16.pack(len(m)))
            parts.append(bytes(m))
        plaintext = b"".join(parts)
        if len(plaintext) > MAX_PLAINTEXT:
            raise LocalProtocolError("DATA record over the 65,536-byte frame limit")
        return self._seal_app(_DATA, plaintext)

    def send_ready(self) -> None:
        """Server: the first record of the session."""
        self._seal(_READY, b"")

    def close(self, reason: CloseReason = CloseReason.NORMAL) -> list[Event]:
        """Local close: send CLOSE, drop keys, report Closed(reason, False)."""
        if self.closed:
            return []
        return self._fatal(reason)

    def export(self, label: bytes, context: bytes, length: int) -> bytes:
        """TLS-style exporter over this session's ``exp`` (fixed for the session)."""
        if self.closed:
            raise ConnectionClosed("session is closed")
        return ks.exporter(self._exp, label, context, length)

    def request_rekey(self, now: float) -> list[Event]:
        """Client: start a full re-key now, or as soon as the 10 s spacing allows."""
        self._check_open()
        if self.is_server:
            raise LocalProtocolError("only the client starts a full re-key")
        if self._rekey is _Rekey.IDLE:
            self._want_rekey = True
            return self.handle_timer(now)
        return []

    # --- ending ---------------------------------------------------------------------

    def _drop_keys(self) -> None:
        self.closed = True
        self.send.wipe()
        self.recv.wipe()
        self._exp = self._chain = self._th_rk = b""
        self._rekey_eph = None
        self._pending_recv = None

    def _fatal(self, reason: CloseReason = CloseReason.PROTOCOL_ERROR) -> list[Event]:
        if self.closed:
            return []
        if self.awaiting_ready:
            # a client that never saw READY sends nothing (docs/qzmq.md §8)
            self._drop_keys()
            return [Failed(ErrorCode.FAILED, self.conn)]
        with contextlib.suppress(_Fatal):
            self._seal(_CLOSE, bytes([reason]))
        self._drop_keys()
        return [Closed(reason, False, self.conn)]

    def abort(self) -> list[Event]:
        """The transport is gone: drop keys without sending, report possible truncation."""
        if self.closed:
            return []
        self._drop_keys()
        if self.awaiting_ready:
            return [Failed(ErrorCode.FAILED, self.conn)]
        return [Closed(CloseReason.PROTOCOL_ERROR, False, self.conn)]

    # --- receiving ------------------------------------------------------------------

    def _failed_record(self, now: float) -> list[Event]:
        self.counters.failed_records += 1
        if self.awaiting_ready:
            return self._fatal()
        if now >= self._bad_window_end:
            self._bad_window_end = now + BAD_RECORD_WINDOW
            self._bad_count = 0
        self._bad_count += 1
        if self._bad_count > self.config.max_bad_records:
            return self._fatal()
        return []

    def bad_frame(self, now: float) -> list[Event]:
        """A frame that cannot be a record (e.g. wrong ZeroMQ frame count)."""
        if self.closed:
            return []
        return self._failed_record(now)

    def receive(self, frame: bytes | memoryview, now: float) -> list[Event]:
        """Process one received record frame."""
        if self.closed:
            return []
        n = len(frame)
        if n < MIN_RECORD or n > MAX_FRAME or frame[0] not in self._rx_types:
            return self._failed_record(now)
        rtype, epoch, seq = _HDR.unpack_from(frame)
        if seq < self.recv_next:
            self.counters.duplicates += 1
            return []
        d = self.recv
        if epoch != d.epoch & 0xFF:
            return self._failed_record(now)
        mv = memoryview(frame)
        try:
            pt = d.aead.decrypt(d.nonce(seq), mv[RECORD_HEADER_LEN:], mv[:RECORD_HEADER_LEN])
        except _p.AuthenticationError:
            return self._failed_record(now)
        try:
            if seq != self.recv_next:
                raise _Fatal
            self.recv_next = seq + 1
            d.records += 1
            d.blocks += (len(pt) + 15) // 16 + 2
            self.counters.records_recv += 1
            if d.blocks > RECV_BLOCK_LIMIT or d.records > RECV_RECORD_LIMIT:
                raise _Fatal(CloseReason.USAGE_LIMIT)
            return self._act(rtype, pt, now)
        except _Fatal as exc:
            return self._fatal(exc.reason)

    def _act(self, rtype: int, pt: bytes, now: float) -> list[Event]:
        if self.awaiting_ready:
            if rtype != _READY or pt:
                raise _Fatal
            self.awaiting_ready = False
            self.t_key = now
            return [Established(self.peer_kid, self.peer_accounts, self.channel_binding, self.conn)]
        if rtype == _FIXED:
            n = len(pt)
            if n == 0 or n % FIXED_MSG_LEN or n > FIXED_MSG_LEN * MAX_FIXED_MSGS:
                raise _Fatal
            return [Messages((pt,), True, self.conn)]
        if rtype == _DATA:
            return [Messages(_split_data(pt), False, self.conn)]
        if rtype == _KEY_UPDATE:
            if pt:
                raise _Fatal
            # during a re-key this ratchets the current (old) receive key: the new one
            # is installed only by REKEY_RESP / REKEY_DONE
            d = self.recv
            d.ratchet()
            self.counters.key_updates_recv += 1
            return []
        if rtype == _CLOSE:
            if len(pt) != 1:
                raise _Fatal
            try:
                reason = CloseReason(pt[0])
            except ValueError:
                reason = CloseReason.PROTOCOL_ERROR
            self._drop_keys()
            return [Closed(reason, True, self.conn)]
        if rtype == _REKEY_INIT:
            if self.is_server:
                self._server_rekey(pt, now)
                return []
            return self._client_on_request(pt, now)
        if rtype == _REKEY_RESP:
            self._client_on_resp(pt, now)
            return []
        if rtype == _REKEY_DONE:
            if self._rekey is not _Rekey.WAIT_DONE or pt or self._pending_recv is None:
                raise _Fatal
            self.recv.install(self._pending_recv, self.recv.epoch + 1)
            self._pending_recv = None
            self._rekey = _Rekey.IDLE
            self.t_key = now
            self._requested = False
            self.counters.rekeys += 1
            return []
        # READY after the first record
        raise _Fatal

    # --- full re-key ----------------------------------------------------------------

    def _start_rekey(self, now: float) -> None:
        """Client: send REKEY_INIT with fresh ephemerals."""
        dk = _p.mlkem_generate()
        ek = dk.public_key().public_bytes_raw()
        xk: _p.X25519PrivateKey | None = None
        pt = ek
        if self.mode is Mode.HYBRID:
            xk = _p.x25519_generate()
            pt = ek + _p.x25519_public_bytes(xk)
        self._seal(_REKEY_INIT, pt)
        self._rekey_eph = (dk, xk)
        self._rekey_init_pt = pt
        self._rekey = _Rekey.WAIT_RESP
        self._rekey_deadline = now + REKEY_RESP_TIMEOUT
        self._want_rekey = False

    def _client_on_request(self, pt: bytes, now: float) -> list[Event]:
        if pt:
            raise _Fatal
        if self._last_request is not None and now - self._last_request < CLIENT_REKEY_MIN_GAP:
            raise _Fatal
        self._last_request = now
        if self._rekey is _Rekey.IDLE:
            self._start_rekey(now)
        return []

    def _client_on_resp(self, pt: bytes, now: float) -> None:
        if self._rekey is not _Rekey.WAIT_RESP or self._rekey_eph is None or len(pt) != rekey_resp_len(self.mode):
            raise _Fatal
        dk, xk = self._rekey_eph
        try:
            ikm = _p.mlkem_decapsulate(dk, pt[:CT_LEN])
            if xk is not None:
                ikm += _p.x25519_exchange(xk, pt[CT_LEN:])
        except _p.CryptoError:
            raise _Fatal from None
        c_ap, s_ap, self._chain, self._th_rk = ks.rekey(self._chain, self._th_rk, self._rekey_init_pt, pt, ikm)
        self._rekey_eph = None
        self.recv.install(s_ap, self.recv.epoch + 1)
        self._seal(_REKEY_DONE, b"")
        self.send.install(c_ap, self.send.epoch + 1)
        self._rekey = _Rekey.IDLE
        self.t_key = now
        self.counters.rekeys += 1

    def _server_rekey(self, pt: bytes, now: float) -> None:
        if (
            self._rekey is not _Rekey.IDLE
            or len(pt) != rekey_init_len(self.mode)
            or now - self.t_key < SERVER_REKEY_MIN_GAP
        ):
            raise _Fatal
        try:
            ek = _p.mlkem_load_ek(pt[:EK_LEN])
            ss, ct = _p.mlkem_encapsulate(ek)
            resp = ct
            if self.mode is Mode.HYBRID:
                xk = _p.x25519_generate()
                ss += _p.x25519_exchange(xk, pt[EK_LEN:])
                resp = ct + _p.x25519_public_bytes(xk)
        except _p.CryptoError:
            raise _Fatal from None
        c_ap, s_ap, self._chain, self._th_rk = ks.rekey(self._chain, self._th_rk, pt, resp, ss)
        self._seal(_REKEY_RESP, resp)
        self.send.install(s_ap, self.send.epoch + 1)
        self._pending_recv = c_ap
        self._rekey = _Rekey.WAIT_DONE

    # --- timers ---------------------------------------------------------------------

    def deadline(self) -> float | None:
        """The next time :meth:`handle_timer` must run, or None."""
        if self.closed or self.awaiting_ready:
            return None
        interval = self.config.rekey_interval
        if self.is_server:
            overdue = self.t_key + interval + REKEY_GRACE
            if self._requested or self._rekey is not _Rekey.IDLE:
                return overdue
            return self.t_key + interval
        if self._rekey is _Rekey.WAIT_RESP:
            return self._rekey_deadline
        due = self.t_key + interval
        if self._want_rekey:
            due = min(due, self.t_key + CLIENT_REKEY_MIN_GAP)
        return due

    def handle_timer(self, now: float) -> list[Event]:
        if self.closed or self.awaiting_ready:
            return []
        try:
            interval = self.config.rekey_interval
            if self.is_server:
                if now >= self.t_key + interval + REKEY_GRACE:
                    return self._fatal(CloseReason.REKEY_OVERDUE)
                if now >= self.t_key + interval and not self._requested and self._rekey is _Rekey.IDLE:
                    self._seal(_REKEY_INIT, b"")
                    self._requested = True
                return []
            if self._rekey is _Rekey.WAIT_RESP:
                if now >= self._rekey_deadline:
                    return self._fatal(CloseReason.PROTOCOL_ERROR)
                return []
            if now >= self.t_key + interval or (self._want_rekey and now >= self.t_key + CLIENT_REKEY_MIN_GAP):
                self._start_rekey(now)
            return []
        except _Fatal as exc:
            return self._fatal(exc.reason)

    @property
    def rekey_pending(self) -> bool:
        return self._rekey is not _Rekey.IDLE


def _iv_words(iv: int) -> tuple[int, int]:
    """A 96-bit IV as the record kernels hold it: its first 4 bytes, then its last 8 as
    a signed 64-bit number (the same bits)."""
    lo = iv & ((1 << 64) - 1)
    return iv >> 64, lo - (1 << 64) if lo >> 63 else lo


def _split_data(pt: bytes) -> tuple[bytes, ...]:
    out = []
    i = 0
    n = len(pt)
    if n == 0:
        raise _Fatal
    while i < n:
        if i + 2 > n:
            raise _Fatal
        (m,) = _U16.unpack_from(pt, i)
        i += 2
        if m == 0 or i + m > n:
            raise _Fatal
        out.append(pt[i : i + m])
        i += m
    return tuple(out)
