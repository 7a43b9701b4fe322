"""QZMQ v1 handshake: Client and Server endpoints (QZMQ.md §3, §7, §8).

Sans-I/O.  One Client object is one connection attempt; one Server object serves one
routing id (with its peer address), holding at most one pending handshake and one
established session, as §7 requires for a single routing id.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Iterable
from typing import Any

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives.asymmetric import mldsa
from cryptography.hazmat.primitives.asymmetric.mlkem import MLKEM768PrivateKey, MLKEM768PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from . import schedule as qs
from .session import Output, Session

_PRIV = {
    qs.ALG_ML_DSA_44: mldsa.MLDSA44PrivateKey,
    qs.ALG_ML_DSA_65: mldsa.MLDSA65PrivateKey,
    qs.ALG_ML_DSA_87: mldsa.MLDSA87PrivateKey,
}
_PUB = {
    qs.ALG_ML_DSA_44: mldsa.MLDSA44PublicKey,
    qs.ALG_ML_DSA_65: mldsa.MLDSA65PublicKey,
    qs.ALG_ML_DSA_87: mldsa.MLDSA87PublicKey,
}


def _private_key(alg: int, key: Any) -> Any:
    if isinstance(key, bytes | bytearray):
        return _PRIV[alg].from_seed_bytes(bytes(key))
    if not isinstance(key, _PRIV[alg]):
        raise TypeError("private key does not match alg")
    return key


def _public_raw(alg: int, key: Any) -> bytes:
    if isinstance(key, bytes | bytearray):
        return _PUB[alg].from_public_bytes(bytes(key)).public_bytes_raw()
    if not isinstance(key, _PUB[alg]):
        raise TypeError("public key does not match alg")
    raw: bytes = key.public_bytes_raw()
    return raw


def error_frame(code: int, version: int = qs.VERSION) -> bytes:
    return qs.header(qs.T_ERROR, version) + bytes([code])


class _Fail(Exception):
    def __init__(self, code: int = qs.ERR_FAILED) -> None:
        self.code = code


class Client:
    """Client (DEALER side) of one QZMQ connection attempt."""

    def __init__(
        self,
        *,
        mode: int,
        server_public_key: Any,
        client_alg: int,
        client_key: Any,
        client_random: bytes | None = None,
        mlkem_seed: bytes | None = None,
        x25519_private: bytes | None = None,
        rekey_after_records: int = 2**30,
        rekey_after_blocks: int = 2**32,
        max_bad_records: int = 64,
    ) -> None:
        if mode not in qs.MODES:
            raise ValueError("mode must be HYBRID (1) or PQ_ONLY (2)")
        if client_alg not in _PRIV:
            raise ValueError("client_alg must be 1, 2 or 3")
        self.mode = mode
        self.server_pk_raw = _public_raw(qs.SERVER_ALG, server_public_key)
        self._server_pk = _PUB[qs.SERVER_ALG].from_public_bytes(self.server_pk_raw)
        self.client_alg = client_alg
        self._sk = _private_key(client_alg, client_key)
        self.client_pk_raw: bytes = self._sk.public_key().public_bytes_raw()
        self.client_kid = qs.kid(self.client_pk_raw)
        self._random = client_random if client_random is not None else os.urandom(32)
        if len(self._random) != 32:
            raise ValueError("client_random must be 32 bytes")
        self._mlkem = MLKEM768PrivateKey.from_seed_bytes(mlkem_seed if mlkem_seed is not None else os.urandom(64))
        self._x25519: X25519PrivateKey | None = None
        if mode == qs.HYBRID:
            self._x25519 = (
                X25519PrivateKey.from_private_bytes(x25519_private)
                if x25519_private is not None
                else X25519PrivateKey.generate()
            )
        self._session_args = {
            "rekey_after_records": rekey_after_records,
            "rekey_after_blocks": rekey_after_blocks,
            "max_bad_records": max_bad_records,
        }
        self._state = "START"
        self.session: Session | None = None
        self.failure: int | None = None
        self.hello_retries = 0
        self._body = b""
        self._hello = b""
        self.handshake_secrets: dict[str, bytes] = {}
        """HS, c_hs, s_hs, TH_f and the epoch-0 application secrets, for KAT checks."""

    def hello(self) -> bytes:
        """START → WAIT_SH: the CLIENT_HELLO without cookie."""
        if self._state != "START":
            raise RuntimeError("hello() already called")
        body = (
            qs.header(qs.T_CLIENT_HELLO)
            + bytes([self.mode])
            + qs.SUITE.to_bytes(2, "big")
            + self._random
            + qs.kid(self.server_pk_raw)
            + self._mlkem.public_key().public_bytes_raw()
        )
        if self._x25519 is not None:
            body += self._x25519.public_key().public_bytes_raw()
        assert len(body) == qs.hello_body_len(self.mode)
        self._body = body
        self._hello = body + b"\x00"
        self._state = "WAIT_SH"
        return self._hello

    @property
    def state(self) -> str:
        """START, WAIT_SH, WAIT_READY, ESTABLISHED, FAILED or CLOSED."""
        live = self._state in ("WAIT_READY", "ESTABLISHED")
        if live and self.session is not None and self.session.closed:
            return "CLOSED"
        return self._state

    @property
    def established(self) -> bool:
        return self.session is not None and self.session.state == "ESTABLISHED"

    def _fail(self, out: Output, code: int, send_error: bool) -> Output:
        if send_error:
            out.frames.append(error_frame(qs.ERR_FAILED))
        self._state = "FAILED"
        self.failure = code
        self.session = None
        self._mlkem = None  # type: ignore[assignment]
        self._x25519 = None
        out.failed = code
        out.events.append("FAILED")
        return out

    def receive(self, frame: bytes, now: float = 0.0) -> Output:
        out = Output()
        if self.state == "WAIT_SH":
            return self._receive_wait_sh(frame, out)
        if self.state == "WAIT_READY":
            assert self.session is not None
            if frame[:1] == b"\x51":
                # Any handshake message (ERROR included) in WAIT_READY: FAILED, send nothing.
                return self._fail(out, qs.ERR_FAILED, send_error=False)
            res = self.session.receive(frame, now)
            if res.failed is not None:
                return self._fail(res, qs.ERR_FAILED, send_error=False)
            if self.session.state == "ESTABLISHED":
                self._state = "ESTABLISHED"
            return res
        if self.state == "ESTABLISHED":
            assert self.session is not None
            if frame[:1] == b"\x51":
                out.events.append("DROPPED")
                return out
            return self.session.receive(frame, now)
        out.events.append("DROPPED")
        return out

    def _receive_wait_sh(self, frame: bytes, out: Output) -> Output:
        hdr = frame[:4]
        if len(frame) >= 4 and hdr[:2] == qs.MAGIC and hdr[3] == qs.T_ERROR:
            # Never answer an ERROR.  Only a version-01 ERROR 01 is a MISMATCH hint.
            if len(frame) == qs.ERROR_LEN and hdr[2] == qs.VERSION and frame[4] == 1:
                return self._fail(out, qs.ERR_MISMATCH, send_error=False)
            return self._fail(out, qs.ERR_FAILED, send_error=False)
        if hdr == qs.header(qs.T_HELLO_RETRY) and len(frame) == qs.HELLO_RETRY_LEN:
            if self.hello_retries:
                return self._fail(out, qs.ERR_FAILED, send_error=True)
            self.hello_retries = 1
            self._hello = self._body + bytes([qs.COOKIE_LEN]) + frame[4:]
            out.frames.append(self._hello)
            out.events.append("HELLO_RETRY")
            return out
        try:
            auth = self._process_server_hello(frame)
        except _Fail as e:
            return self._fail(out, e.code, send_error=True)
        out.frames.append(auth)
        out.events.append("SERVER_HELLO")
        self._state = "WAIT_READY"
        return out

    def _process_server_hello(self, frame: bytes) -> bytes:
        mode = self.mode
        c = qs.sh_clear_len(mode)
        if frame[:4] != qs.header(qs.T_SERVER_HELLO) or len(frame) != qs.server_hello_len(mode):
            raise _Fail
        if frame[4] != mode or frame[5:7] != qs.SUITE.to_bytes(2, "big"):
            raise _Fail
        sh_clear = frame[:c]
        ct = frame[39 : 39 + qs.MLKEM_CT_LEN]
        try:
            ikm = self._mlkem.decapsulate(ct)
            if mode == qs.HYBRID:
                assert self._x25519 is not None
                x_s = X25519PublicKey.from_public_bytes(frame[1127:1159])
                ikm += self._x25519.exchange(x_s)
        except ValueError as e:
            raise _Fail from e
        hs = qs.handshake_secret(mode, ikm)
        items: list[tuple[int, bytes]] = [
            (qs.I_CLIENT_HELLO, self._hello),
            (qs.I_SH_CLEAR, sh_clear),
        ]
        th_hs = qs.transcript_hash(items)
        c_hs = qs.derive_secret(hs, "c hs traffic", th_hs)
        s_hs = qs.derive_secret(hs, "s hs traffic", th_hs)
        key, iv = qs.traffic_keys(s_hs)
        try:
            inner = AESGCM(key).decrypt(iv, frame[c:], sh_clear)
        except InvalidTag as e:
            raise _Fail from e
        sig_s, fin_s = inner[: qs.SIG_LEN[qs.SERVER_ALG]], inner[qs.SIG_LEN[qs.SERVER_ALG] :]
        items.append((qs.I_SERVER_ID, bytes([qs.SERVER_ALG]) + qs.H(self.server_pk_raw)))
        try:
            self._server_pk.verify(sig_s, qs.transcript_hash(items), qs.CTX_SERVER_AUTH)
        except InvalidSignature as e:
            raise _Fail from e
        items.append((qs.I_SIG_S, sig_s))
        if not hmac.compare_digest(fin_s, qs.finished_mac(s_hs, qs.transcript_hash(items))):
            raise _Fail
        items.append((qs.I_FIN_S, fin_s))
        # CLIENT_AUTH
        items.append((qs.I_CLIENT_ID, bytes([self.client_alg]) + qs.H(self.client_pk_raw)))
        sig_c = self._sk.sign(qs.transcript_hash(items), qs.CTX_CLIENT_AUTH)
        items.append((qs.I_SIG_C, sig_c))
        fin_c = qs.finished_mac(c_hs, qs.transcript_hash(items))
        items.append((qs.I_FIN_C, fin_c))
        th_f = qs.transcript_hash(items)
        pad = bytes(qs.MAX_SIG_LEN - len(sig_c))
        pt = bytes([self.client_alg]) + self.client_kid + sig_c + fin_c + pad
        hdr = qs.header(qs.T_CLIENT_AUTH)
        ckey, civ = qs.traffic_keys(c_hs)
        auth = hdr + AESGCM(ckey).encrypt(civ, pt, hdr)
        assert len(auth) == qs.CLIENT_AUTH_LEN
        secrets = qs.application_secrets(hs, th_f)
        self.handshake_secrets = {"HS": hs, "c_hs": c_hs, "s_hs": s_hs, "TH_f": th_f, **secrets}
        self.session = Session(
            is_client=True,
            mode=mode,
            secrets=secrets,
            peer_kid=qs.kid(self.server_pk_raw),
            peer_alg=qs.SERVER_ALG,
            wait_ready=True,
            **self._session_args,
        )
        self._mlkem = None  # type: ignore[assignment]
        self._x25519 = None
        return auth


class _Pending:
    def __init__(self, items: list[tuple[int, bytes]], hs: bytes, c_hs: bytes, s_hs: bytes):
        self.items = items
        self.hs = hs
        self.c_hs = c_hs
        self.s_hs = s_hs


class Server:
    """Server (ROUTER side) state for one routing id."""

    def __init__(
        self,
        *,
        mode: int,
        server_key: Any,
        clients: Iterable[tuple[int, Any]],
        cookie_policy: str = "never",
        cookie_key: bytes | None = None,
        previous_cookie_key: bytes | None = None,
        peer: str = "",
        routing_id: bytes = b"",
        server_random: bytes | None = None,
        x25519_private: bytes | None = None,
        rekey_after_records: int = 2**30,
        rekey_after_blocks: int = 2**32,
        max_bad_records: int = 64,
    ) -> None:
        if mode not in qs.MODES:
            raise ValueError("mode must be HYBRID (1) or PQ_ONLY (2)")
        if cookie_policy not in ("never", "always"):
            raise ValueError("cookie_policy must be 'never' or 'always'")
        self.mode = mode
        self._sk = _private_key(qs.SERVER_ALG, server_key)
        self.server_pk_raw: bytes = self._sk.public_key().public_bytes_raw()
        self.server_kid = qs.kid(self.server_pk_raw)
        self.allow: dict[bytes, tuple[int, Any, bytes]] = {}
        for alg, pk in clients:
            raw = _public_raw(alg, pk)
            self.allow[qs.kid(raw)] = (alg, _PUB[alg].from_public_bytes(raw), raw)
        self.cookie_policy = cookie_policy
        self.cookie_key = cookie_key if cookie_key is not None else os.urandom(32)
        self.previous_cookie_key = previous_cookie_key
        self.used_cookies: set[bytes] = set()
        self.peer = peer
        self.routing_id = routing_id
        self._fixed_random = server_random
        self._fixed_x25519 = x25519_private
        self._session_args = {
            "rekey_after_records": rekey_after_records,
            "rekey_after_blocks": rekey_after_blocks,
            "max_bad_records": max_bad_records,
        }
        self.pending: _Pending | None = None
        self.session: Session | None = None
        self.dropped = 0
        self.handshake_secrets: dict[str, bytes] = {}

    @property
    def state(self) -> str:
        if self.session is not None and self.session.state == "ESTABLISHED":
            return "ESTABLISHED"
        if self.pending is not None:
            return "WAIT_CA"
        return "CLOSED" if self.session is not None else "NONE"

    @property
    def established(self) -> bool:
        return self.state == "ESTABLISHED"

    def rotate_cookie_key(self, new_key: bytes | None = None) -> None:
        self.previous_cookie_key = self.cookie_key
        self.cookie_key = new_key if new_key is not None else os.urandom(32)

    def _drop(self, out: Output) -> Output:
        self.dropped += 1
        out.events.append("DROPPED")
        return out

    def receive(self, frame: bytes, now: float = 0.0) -> Output:
        """Demultiplex one frame (§2, §3.4): 51 → handshake, anything else → session."""
        out = Output()
        if frame[:1] != b"\x51":
            if self.session is None:
                return self._drop(out)
            return self.session.receive(frame, now)
        if len(frame) < 7 or frame[:2] != qs.MAGIC:
            return self._drop(out)
        version, mtype = frame[2], frame[3]
        if mtype == qs.T_CLIENT_HELLO or version != qs.VERSION:
            self.pending = None  # a new hello replaces a pending handshake
            return self._client_hello(frame, now, out)
        if self.pending is not None and mtype == qs.T_CLIENT_AUTH:
            return self._client_auth(frame, out)
        if self.pending is not None and mtype == qs.T_ERROR:
            self.pending = None
            return self._drop(out)
        return self._drop(out)

    def _cookie_ok(self, cookie: bytes, body: bytes, now: float) -> bool:
        ts = int.from_bytes(cookie[:4], "big")
        if (int(now) - ts) % 2**32 > 60 or cookie in self.used_cookies:
            return False
        for key in (self.cookie_key, self.previous_cookie_key):
            if key is not None and hmac.compare_digest(
                cookie, qs.make_cookie(key, ts, self.peer, self.routing_id, body)
            ):
                return True
        return False

    def _client_hello(self, frame: bytes, now: float, out: Output) -> Output:
        mode = self.mode
        # 1. version, mode, suite; cookie_len and exact length
        if (
            frame[2] != qs.VERSION
            or frame[3] != qs.T_CLIENT_HELLO
            or frame[4] != mode
            or frame[5:7] != qs.SUITE.to_bytes(2, "big")
        ):
            out.frames.append(error_frame(qs.ERR_MISMATCH, frame[2]))
            out.events.append("ERROR")
            return out
        b = qs.hello_body_len(mode)
        if len(frame) <= b or frame[b] not in (0, qs.COOKIE_LEN) or len(frame) != b + 1 + frame[b]:
            return self._error(out)
        body, cookie = frame[:b], frame[b + 1 :]
        # 2. cookie
        if cookie:
            if not self._cookie_ok(cookie, body, now):
                return self._error(out)
        elif self.cookie_policy == "always":
            ts = int(now) % 2**32
            c = qs.make_cookie(self.cookie_key, ts, self.peer, self.routing_id, body)
            out.frames.append(qs.header(qs.T_HELLO_RETRY) + c)
            out.events.append("HELLO_RETRY")
            return out
        # 3. cheap checks
        if not hmac.compare_digest(frame[39:55], self.server_kid):
            return self._error(out)
        try:
            ek = MLKEM768PublicKey.from_public_bytes(frame[55 : 55 + qs.MLKEM_EK_LEN])
        except ValueError:
            return self._error(out)
        # 4. (no rate limiting) record the cookie as used
        if cookie:
            self.used_cookies.add(cookie)
        # 5. encapsulate, X25519
        try:
            ikm, ct = ek.encapsulate()
            x_pub = b""
            if mode == qs.HYBRID:
                x = (
                    X25519PrivateKey.from_private_bytes(self._fixed_x25519)
                    if self._fixed_x25519 is not None
                    else X25519PrivateKey.generate()
                )
                ikm += x.exchange(X25519PublicKey.from_public_bytes(frame[1239:1271]))
                x_pub = x.public_key().public_bytes_raw()
        except ValueError:
            return self._error(out)
        # 6. derive, sign, send SERVER_HELLO
        srv_random = self._fixed_random if self._fixed_random is not None else os.urandom(32)
        sh_clear = qs.header(qs.T_SERVER_HELLO) + bytes([mode]) + qs.SUITE.to_bytes(2, "big") + srv_random + ct + x_pub
        hs = qs.handshake_secret(mode, ikm)
        items: list[tuple[int, bytes]] = [(qs.I_CLIENT_HELLO, frame), (qs.I_SH_CLEAR, sh_clear)]
        th_hs = qs.transcript_hash(items)
        c_hs = qs.derive_secret(hs, "c hs traffic", th_hs)
        s_hs = qs.derive_secret(hs, "s hs traffic", th_hs)
        items.append((qs.I_SERVER_ID, bytes([qs.SERVER_ALG]) + qs.H(self.server_pk_raw)))
        sig_s = self._sk.sign(qs.transcript_hash(items), qs.CTX_SERVER_AUTH)
        items.append((qs.I_SIG_S, sig_s))
        fin_s = qs.finished_mac(s_hs, qs.transcript_hash(items))
        items.append((qs.I_FIN_S, fin_s))
        key, iv = qs.traffic_keys(s_hs)
        sh = sh_clear + AESGCM(key).encrypt(iv, sig_s + fin_s, sh_clear)
        assert len(sh) == qs.server_hello_len(mode)
        self.pending = _Pending(items, hs, c_hs, s_hs)
        out.frames.append(sh)
        out.events.append("SERVER_HELLO")
        return out

    def _error(self, out: Output) -> Output:
        out.frames.append(error_frame(qs.ERR_FAILED))
        out.events.append("ERROR")
        return out

    def _client_auth(self, frame: bytes, out: Output) -> Output:
        p = self.pending
        assert p is not None
        self.pending = None
        try:
            session = self._verify_client_auth(p, frame)
        except _Fail:
            return self._error(out)
        # A verified CLIENT_AUTH replaces any session on this routing id (silently).
        self.session = session
        out.frames += session._seal(qs.R_READY, b"")
        out.events.append("ESTABLISHED")
        return out

    def _verify_client_auth(self, p: _Pending, frame: bytes) -> Session:
        if len(frame) != qs.CLIENT_AUTH_LEN or frame[:4] != qs.header(qs.T_CLIENT_AUTH):
            raise _Fail
        key, iv = qs.traffic_keys(p.c_hs)
        try:
            pt = AESGCM(key).decrypt(iv, frame[4:], frame[:4])
        except InvalidTag as e:
            raise _Fail from e
        alg, client_kid = pt[0], pt[1:17]
        if alg not in qs.SIG_LEN:
            raise _Fail
        s = qs.SIG_LEN[alg]
        sig_c, fin_c, pad = pt[17 : 17 + s], pt[17 + s : 65 + s], pt[65 + s :]
        if any(pad):
            raise _Fail
        entry = self.allow.get(client_kid)
        if entry is None or entry[0] != alg:
            raise _Fail
        _, pk, raw = entry
        items = list(p.items)
        items.append((qs.I_CLIENT_ID, bytes([alg]) + qs.H(raw)))
        try:
            pk.verify(sig_c, qs.transcript_hash(items), qs.CTX_CLIENT_AUTH)
        except InvalidSignature as e:
            raise _Fail from e
        items.append((qs.I_SIG_C, sig_c))
        if not hmac.compare_digest(fin_c, qs.finished_mac(p.c_hs, qs.transcript_hash(items))):
            raise _Fail
        items.append((qs.I_FIN_C, fin_c))
        th_f = qs.transcript_hash(items)
        secrets = qs.application_secrets(p.hs, th_f)
        self.handshake_secrets = {
            "HS": p.hs,
            "c_hs": p.c_hs,
            "s_hs": p.s_hs,
            "TH_f": th_f,
            **secrets,
        }
        return Session(
            is_client=False,
            mode=self.mode,
            secrets=secrets,
            peer_kid=client_kid,
            peer_alg=alg,
            **self._session_args,
        )
