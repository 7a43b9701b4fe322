"""The QZMQ client: handshake state machine plus its session (sans-I/O).

Theory of operation. ``START -> WAIT_SH -> WAIT_READY -> ESTABLISHED`` with
``FAILED`` and ``CLOSED`` as terminal states (docs/qzmq.md §8). The caller feeds
every received frame to :meth:`ClientConnection.receive` with its own monotonic
``now``, sends whatever :meth:`ClientConnection.data_to_send` returns, and calls
:meth:`ClientConnection.handle_timer` at :meth:`ClientConnection.next_deadline`.
Any handshake failure is terminal: a client never falls back to another mode or
suite; the application retries with a fresh connection (and fresh ephemeral keys)
after a back-off.
"""

from __future__ import annotations

import enum
import hmac
import os
from collections.abc import Callable, Sequence

from qfix.crypto import primitives as _p
from qfix.crypto.keys import SigningKey, VerifyKey
from qfix.qzmq import _codec
from qfix.qzmq import _schedule as ks
from qfix.qzmq._config import Config
from qfix.qzmq._constants import (
    CLIENT_AUTH_PT_LEN,
    CTX_CLIENT_AUTH,
    CTX_SERVER_AUTH,
    ERROR_LEN,
    HASH_LEN,
    HELLO_RETRY_LEN,
    MAGIC,
    MAX_CLIENT_SIG_LEN,
    SERVER_SIG_ALG,
    SERVER_SIG_LEN,
    VERSION,
    CloseReason,
    ErrorCode,
    Mode,
    MsgType,
)
from qfix.qzmq._events import Closed, Established, Event, Failed
from qfix.qzmq._session import Session
from qfix.qzmq._util import Copyable
from qfix.qzmq.errors import ConfigError, ConnectionClosed, LocalProtocolError

__all__ = ["ClientConnection", "ClientState"]


class ClientState(enum.Enum):
    START = "start"
    WAIT_SH = "wait_sh"
    WAIT_READY = "wait_ready"
    ESTABLISHED = "established"
    FAILED = "failed"
    CLOSED = "closed"


class _HandshakeFailure(Exception):
    pass


class ClientConnection(Copyable):
    """One client connection attempt: handshake, then the established session.

    Args:
        key: the client's ML-DSA signing key (must be on the server's allow-list).
        server_key: the pinned ML-DSA-65 server key.
        config: shared QZMQ settings; ``mode`` must match the server's.
        rng: randomness for ``client_random`` (tests pass a fixed one).
        ephemeral: fixed ML-KEM / X25519 keys, for known-answer tests only.
    """

    __slots__ = (
        "_body",
        "_deadline",
        "_dk",
        "_hello",
        "_out",
        "_retried",
        "_rng",
        "_xk",
        "config",
        "key",
        "server_key",
        "session",
        "state",
    )

    def __init__(
        self,
        key: SigningKey,
        server_key: VerifyKey,
        config: Config | None = None,
        *,
        rng: Callable[[int], bytes] = os.urandom,
        ephemeral: tuple[_p.MLKEMPrivateKey, _p.X25519PrivateKey | None] | None = None,
    ) -> None:
        self.config = config or Config()
        if server_key.alg != SERVER_SIG_ALG:
            raise ConfigError("server key: suite 0001 pins an ML-DSA-65 server key")
        self.key = key
        self.server_key = server_key
        self._rng = rng
        self.state = ClientState.START
        self.session: Session | None = None
        self._out: list[bytes] = []
        self._deadline: float | None = None
        self._retried = False
        self._body = b""
        self._hello = b""
        if ephemeral is None:
            self._dk: _p.MLKEMPrivateKey | None = None
            self._xk: _p.X25519PrivateKey | None = None
        else:
            self._dk, self._xk = ephemeral

    # --- API --------------------------------------------------------------------------

    def connect(self, now: float) -> None:
        """START -> WAIT_SH: queue the first CLIENT_HELLO."""
        if self.state is not ClientState.START:
            raise LocalProtocolError("connect() once per connection; use a new one to retry")
        mode = self.config.mode
        if self._dk is None:
            self._dk = _p.mlkem_generate()
            self._xk = _p.x25519_generate() if mode is Mode.HYBRID else None
        x_pub = _p.x25519_public_bytes(self._xk) if self._xk is not None else None
        if (x_pub is None) != (mode is Mode.PQ_ONLY):
            raise LocalProtocolError("ephemeral keys do not match the configured mode")
        self._body = _codec.build_hello_body(
            mode,
            self._rng(32),
            self.server_key.kid,
            self._dk.public_key().public_bytes_raw(),
            x_pub,
        )
        self._hello = self._body + b"\x00"
        self._out.append(self._hello)
        self._deadline = now + self.config.handshake_timeout
        self.state = ClientState.WAIT_SH

    def data_to_send(self) -> list[bytes]:
        """Frames to send, in order (each one single-frame ZeroMQ message)."""
        out = self._out
        if self.session is not None and self.session.outbox:
            out.extend(self.session.outbox)
            self.session.outbox = []
        self._out = []
        return out

    def receive(self, frame: bytes | memoryview, now: float) -> list[Event]:
        state = self.state
        if (
            (state is ClientState.WAIT_SH or state is ClientState.WAIT_READY)
            and self._deadline is not None
            and now >= self._deadline
        ):
            # the caller's timer may run late: the handshake timeout holds on input too
            return self.handle_timer(now)
        if state is ClientState.ESTABLISHED or state is ClientState.WAIT_READY:
            assert self.session is not None
            events = self.session.receive(frame, now)
            return self._track(events)
        if state is ClientState.WAIT_SH:
            return self._on_handshake(bytes(frame), now)
        return []

    def handle_timer(self, now: float) -> list[Event]:
        if self.state in (ClientState.WAIT_SH, ClientState.WAIT_READY):
            if self._deadline is not None and now >= self._deadline:
                if self.state is ClientState.WAIT_SH:
                    self._out.append(_codec.build_error(ErrorCode.FAILED))
                return self._fail(ErrorCode.FAILED)
            return []
        if self.state is ClientState.ESTABLISHED:
            assert self.session is not None
            return self._track(self.session.handle_timer(now))
        return []

    def next_deadline(self) -> float | None:
        if self.state in (ClientState.WAIT_SH, ClientState.WAIT_READY):
            return self._deadline
        if self.state is ClientState.ESTABLISHED:
            assert self.session is not None
            return self.session.deadline()
        return None

    def _established(self) -> Session:
        if self.state is not ClientState.ESTABLISHED or self.session is None:
            raise ConnectionClosed(f"connection is {self.state.value}, not established")
        return self.session

    def send_fixed(self, payload: bytes) -> list[Event]:
        """Seal one DATA_FIXED record (k x 60-byte messages)."""
        return self._track(self._established().send_fixed(payload))

    def send_messages(self, messages: Sequence[bytes]) -> list[Event]:
        """Seal one DATA record."""
        return self._track(self._established().send_messages(messages))

    def request_rekey(self, now: float) -> list[Event]:
        return self._track(self._established().request_rekey(now))

    def close(self, reason: CloseReason = CloseReason.NORMAL) -> list[Event]:
        if self.state is ClientState.ESTABLISHED and self.session is not None:
            return self._track(self.session.close(reason))
        if self.state in (ClientState.START, ClientState.WAIT_SH, ClientState.WAIT_READY):
            return self._fail(ErrorCode.FAILED)
        return []

    def abort(self) -> list[Event]:
        """The transport failed (disconnect, failed send): end without sending."""
        if self.session is not None and self.state in (
            ClientState.ESTABLISHED,
            ClientState.WAIT_READY,
        ):
            return self._track(self.session.abort())
        if self.state in (ClientState.START, ClientState.WAIT_SH):
            return self._fail(ErrorCode.FAILED)
        return []

    def export(self, label: bytes, context: bytes, length: int) -> bytes:
        return self._established().export(label, context, length)

    # --- internals --------------------------------------------------------------------

    def _track(self, events: list[Event]) -> list[Event]:
        for ev in events:
            if isinstance(ev, Established):
                self.state = ClientState.ESTABLISHED
                self._deadline = None
            elif isinstance(ev, Failed):
                self.state = ClientState.FAILED
                self.session = None
            elif isinstance(ev, Closed):
                self.state = ClientState.CLOSED
        return events

    def _fail(self, code: ErrorCode) -> list[Event]:
        self.state = ClientState.FAILED
        self._dk = self._xk = None
        if self.session is not None:
            self.session.abort()
            self.session = None
        return [Failed(code)]

    def _on_handshake(self, frame: bytes, now: float) -> list[Event]:
        if len(frame) >= 4 and frame[:2] == MAGIC:
            version, mtype = frame[2], frame[3]
            if mtype == MsgType.ERROR:
                if version == VERSION and len(frame) == ERROR_LEN and frame[4] == 1:
                    return self._fail(ErrorCode.MISMATCH)
                return self._fail(ErrorCode.FAILED)
            if (
                mtype == MsgType.HELLO_RETRY
                and version == VERSION
                and len(frame) == HELLO_RETRY_LEN
                and not self._retried
            ):
                self._retried = True
                self._hello = _codec.with_cookie(self._body, frame[4:])
                self._out.append(self._hello)
                return []
            if mtype == MsgType.SERVER_HELLO and version == VERSION:
                try:
                    self._on_server_hello(frame, now)
                except _HandshakeFailure:
                    pass
                else:
                    return []
            self._out.append(_codec.build_error(ErrorCode.FAILED, version))
            return self._fail(ErrorCode.FAILED)
        self._out.append(_codec.build_error(ErrorCode.FAILED))
        return self._fail(ErrorCode.FAILED)

    def _on_server_hello(self, frame: bytes, now: float) -> None:
        mode = self.config.mode
        sh = _codec.parse_server_hello(frame, mode)
        if sh is None or self._dk is None:
            raise _HandshakeFailure
        try:
            ikm = _p.mlkem_decapsulate(self._dk, sh.ct)
            if mode is Mode.HYBRID:
                assert self._xk is not None and sh.x_pub is not None
                ikm += _p.x25519_exchange(self._xk, sh.x_pub)
        except _p.CryptoError:
            raise _HandshakeFailure from None
        hs = ks.handshake_secret(mode, ikm)
        tr = ks.Transcript()
        tr.add(0x01, self._hello)
        th_hs = tr.add(0x03, sh.clear)
        c_hs = ks.derive(hs, b"c hs traffic", th_hs)
        s_hs = ks.derive(hs, b"s hs traffic", th_hs)
        s_key, s_iv = ks.traffic_keys(s_hs)
        try:
            inner = _p.Aes256Gcm(s_key).decrypt(s_iv, sh.sealed, sh.clear)
        except _p.AuthenticationError:
            raise _HandshakeFailure from None
        sig_s, fin_s = inner[:SERVER_SIG_LEN], inner[SERVER_SIG_LEN:]
        th = tr.add(0x10, bytes([SERVER_SIG_ALG]) + _p.sha384(self.server_key.public))
        try:
            _p.mldsa_verify(self.server_key.key, sig_s, th, CTX_SERVER_AUTH)
        except _p.AuthenticationError:
            raise _HandshakeFailure from None
        th = tr.add(0x11, sig_s)
        if not hmac.compare_digest(ks.finished(s_hs, th), fin_s):
            raise _HandshakeFailure
        tr.add(0x12, fin_s)
        th = tr.add(0x20, bytes([self.key.alg]) + _p.sha384(self.key.public))
        sig_c = _p.mldsa_sign(self.key.key, th, CTX_CLIENT_AUTH)
        th = tr.add(0x21, sig_c)
        fin_c = ks.finished(c_hs, th)
        th_f = tr.add(0x22, fin_c)
        ms = ks.master_secret(hs)
        pad = bytes(MAX_CLIENT_SIG_LEN - len(sig_c))
        pt = bytes([self.key.alg]) + self.key.kid + sig_c + fin_c + pad
        assert len(pt) == CLIENT_AUTH_PT_LEN
        hdr = _codec.header(MsgType.CLIENT_AUTH)
        c_key, c_iv = ks.traffic_keys(c_hs)
        self._out.append(hdr + _p.Aes256Gcm(c_key).encrypt(c_iv, pt, hdr))
        self.session = Session(
            is_server=False,
            config=self.config,
            c_ap=ks.derive(ms, b"c ap traffic", th_f),
            s_ap=ks.derive(ms, b"s ap traffic", th_f),
            exp=ks.derive(ms, b"exp master", th_f),
            chain=ks.derive(ms, b"rekey chain", th_f),
            th_rk=th_f,
            now=now,
            peer_kid=self.server_key.kid,
        )
        # the ephemeral secrets are used once; drop them now
        self._dk = self._xk = None
        self.state = ClientState.WAIT_READY
        assert len(fin_c) == HASH_LEN
