"""The expensive steps of the server handshake as pure functions over bytes.

Theory of operation. A CLIENT_HELLO that passed the cheap checks and the rate limits
becomes a :class:`HelloWork` (ML-KEM encapsulation, X25519, key schedule, ML-DSA-65
signature, AEAD seal: the SERVER_HELLO); a CLIENT_AUTH whose AEAD, allow-list and
Finished checks passed becomes an :class:`AuthWork` (the ML-DSA verification of the
client's signature). :func:`run` turns an item into a :class:`HelloDone` or
:class:`AuthDone`. :class:`~qfix.qzmq.ServerProtocol` runs items itself at once
(inline, the default) or hands them to its caller, who may run them anywhere (the
adapter runs them in worker processes) and feeds the results back. Items and results
hold only bytes and ints, so they pickle cheaply; the server key is named by its kid
and each runner holds the keys (a worker loads them once, from their seeds).

Everything random is either an input (``server_random``) or drawn inside the
primitives (ML-KEM encapsulation, X25519 key generation, hedged ML-DSA signing), so
inline and offloaded handshakes run the same function and differ only in that
randomness.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from qfix.crypto import primitives as _p
from qfix.crypto.keys import SigningKey
from qfix.qzmq import _codec
from qfix.qzmq import _schedule as ks
from qfix.qzmq._constants import CT_LEN, CTX_CLIENT_AUTH, CTX_SERVER_AUTH, SERVER_SIG_ALG, SUITE, Mode, MsgType

__all__ = ["AuthDone", "AuthWork", "Done", "HelloDone", "HelloWork", "Work", "run", "server_hello", "verify_client"]


@dataclass(frozen=True, slots=True)
class HelloWork:
    """Build a SERVER_HELLO for an admitted CLIENT_HELLO."""

    job: int
    known: bool  #: from a known net (a scheduling hint: such work goes first)
    mode: int
    hello: bytes  #: the CLIENT_HELLO as received (transcript item 01)
    ek: bytes  #: the client's ML-KEM-768 encapsulation key (already checked once)
    x_pub: bytes  #: the client's X25519 share; b"" in pq-only mode
    server_kid: bytes
    server_random: bytes


@dataclass(frozen=True, slots=True)
class HelloDone:
    """The SERVER_HELLO and what the pending handshake keeps; ``frame`` is b"" when the
    key exchange failed (a low-order X25519 share)."""

    job: int
    frame: bytes
    hs: bytes = b""
    c_hs: bytes = b""
    sig_s: bytes = b""
    fin_s: bytes = b""


@dataclass(frozen=True, slots=True)
class AuthWork:
    """Verify a client's CLIENT_AUTH signature over ``message`` (TH(01..12, 20))."""

    job: int
    known: bool
    alg: int
    public: bytes
    signature: bytes
    message: bytes


@dataclass(frozen=True, slots=True)
class AuthDone:
    job: int
    ok: bool


Work = HelloWork | AuthWork
Done = HelloDone | AuthDone

#: parsed client public keys (parsing costs a few per cent of a verification)
_PUBLIC: dict[tuple[int, bytes], _p.MLDSAPublicKey] = {}
_PUBLIC_MAX = 1024


def server_hello(item: HelloWork, skey: SigningKey) -> HelloDone:
    """Steps 5 and 6 of the server's hello processing (docs/qzmq.md §3)."""
    mode = Mode(item.mode)
    try:
        ek = _p.mlkem_load_ek(item.ek)
        ikm, ct = _p.mlkem_encapsulate(ek)
        x_pub = b""
        if mode is Mode.HYBRID:
            xk = _p.x25519_generate()
            ikm += _p.x25519_exchange(xk, item.x_pub)
            x_pub = _p.x25519_public_bytes(xk)
    except _p.CryptoError:
        return HelloDone(item.job, b"")
    assert len(ct) == CT_LEN
    sh_clear = (
        _codec.header(MsgType.SERVER_HELLO) + bytes([mode]) + SUITE.to_bytes(2, "big") + item.server_random + ct + x_pub
    )
    hs = ks.handshake_secret(mode, ikm)
    tr = ks.Transcript()
    tr.add(0x01, item.hello)
    th_hs = tr.add(0x03, sh_clear)
    c_hs = ks.derive(hs, b"c hs traffic", th_hs)
    s_hs = ks.derive(hs, b"s hs traffic", th_hs)
    th = tr.add(0x10, bytes([SERVER_SIG_ALG]) + _p.sha384(skey.public))
    sig_s = _p.mldsa_sign(skey.key, th, CTX_SERVER_AUTH)
    th = tr.add(0x11, sig_s)
    fin_s = ks.finished(s_hs, th)
    s_key, s_iv = ks.traffic_keys(s_hs)
    sealed = _p.Aes256Gcm(s_key).encrypt(s_iv, sig_s + fin_s, sh_clear)
    return HelloDone(item.job, sh_clear + sealed, hs, c_hs, sig_s, fin_s)


def verify_client(item: AuthWork) -> AuthDone:
    alg = _p.SignatureAlg(item.alg)
    key = _PUBLIC.get((alg, item.public))
    try:
        if key is None:
            key = _p.mldsa_load_public(alg, item.public)
            if len(_PUBLIC) >= _PUBLIC_MAX:
                _PUBLIC.clear()
            _PUBLIC[alg, item.public] = key
        _p.mldsa_verify(key, item.signature, item.message, CTX_CLIENT_AUTH)
    except _p.CryptoError:
        return AuthDone(item.job, False)
    return AuthDone(item.job, True)


def run(item: Work, keys: Mapping[bytes, SigningKey]) -> Done:
    """Do one item; ``keys``: the server's signing keys by kid."""
    if isinstance(item, HelloWork):
        return server_hello(item, keys[item.server_kid])
    return verify_client(item)
