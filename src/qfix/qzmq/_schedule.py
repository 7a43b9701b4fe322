"""The QZMQ key schedule (docs/qzmq.md §3.2, §3.3, §5, §6), on top of HKDF-SHA-384.

Theory of operation: this module is pure functions over bytes plus one running
transcript object. It mirrors TLS 1.3's schedule with a ``"qzmq1 "`` label prefix:
``EL`` is HKDF-Expand-Label, ``D`` derives a 48-byte secret bound to a transcript
hash. Nothing here keeps state beyond what its caller passes in, so the known-answer
tests can call each step with fixed inputs.
"""

from __future__ import annotations

import struct

from qfix.crypto import primitives as _p
from qfix.qzmq._constants import HASH_LEN, SUITE, Mode

__all__ = [
    "EMPTY_HASH",
    "Transcript",
    "cookie_mac",
    "derive",
    "expand_label",
    "exporter",
    "finished",
    "handshake_secret",
    "item",
    "master_secret",
    "rekey",
    "salt0",
    "traffic_keys",
    "traffic_update",
]

EMPTY_HASH = _p.sha384(b"")
_TRANSCRIPT_PREFIX = b"qzmq1 transcript"
_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")


def expand_label(secret: bytes, label: bytes, ctx: bytes, length: int) -> bytes:
    """``EL(S, label, ctx, L)``."""
    full = b"qzmq1 " + label
    if len(full) > 255 or len(ctx) > 255:
        raise ValueError("label or context too long for EL")
    info = _U16.pack(length) + bytes([len(full)]) + full + bytes([len(ctx)]) + ctx
    return _p.hkdf_expand(secret, info, length)


def derive(secret: bytes, label: bytes, th: bytes) -> bytes:
    """``D(S, label, th) = EL(S, label, th, 48)``."""
    return expand_label(secret, label, th, HASH_LEN)


def traffic_keys(secret: bytes) -> tuple[bytes, bytes]:
    """``keys(X)``: (32-byte AES key, 12-byte IV)."""
    return expand_label(secret, b"key", b"", 32), expand_label(secret, b"iv", b"", 12)


def traffic_update(secret: bytes) -> bytes:
    """KEY_UPDATE ratchet: ``EL(secret, "traffic upd", "", 48)``."""
    return expand_label(secret, b"traffic upd", b"", HASH_LEN)


def salt0(mode: Mode, suite: int = SUITE) -> bytes:
    return _p.sha384(b"qzmq1 salt" + bytes([mode]) + _U16.pack(suite))


def handshake_secret(mode: Mode, ikm: bytes, suite: int = SUITE) -> bytes:
    """``HS = Extract(salt0, IKM)``."""
    return _p.hkdf_extract(salt0(mode, suite), ikm)


def master_secret(hs: bytes) -> bytes:
    """``MS = Extract(D(HS, "derived", H("")), 0^48)``."""
    return _p.hkdf_extract(derive(hs, b"derived", EMPTY_HASH), bytes(HASH_LEN))


def finished(hs_traffic: bytes, th: bytes) -> bytes:
    """Finished MAC: ``HMAC(EL(hs_traffic, "finished", "", 48), th)``."""
    return _p.hmac_sha384(expand_label(hs_traffic, b"finished", b"", HASH_LEN), th)


def exporter(exp: bytes, label: bytes, context: bytes, length: int) -> bytes:
    """``Exporter(label, context, L)``; label 1..249 bytes, L 1..12,240."""
    if not 1 <= len(label) <= 249:
        raise ValueError("exporter label must be 1..249 bytes")
    if not 1 <= length <= 255 * HASH_LEN:
        raise ValueError("exporter length must be 1..12240")
    return expand_label(derive(exp, label, EMPTY_HASH), b"exporter", _p.sha384(context), length)


def item(tag: int, data: bytes) -> bytes:
    return bytes([tag]) + _U32.pack(len(data)) + data


class Transcript:
    """Running ``TH(...)``: items are appended in order; ``hash()`` is TH so far."""

    __slots__ = ("_h",)

    def __init__(self) -> None:
        self._h = _p.Sha384(_TRANSCRIPT_PREFIX)

    def add(self, tag: int, data: bytes) -> bytes:
        """Append ``item(tag, data)`` and return the new TH."""
        self._h.update(bytes([tag]) + _U32.pack(len(data)))
        self._h.update(data)
        return self._h.digest()

    def hash(self) -> bytes:
        return self._h.digest()


def rekey(chain: bytes, th_rk: bytes, init_pt: bytes, resp_pt: bytes, ikm: bytes) -> tuple[bytes, bytes, bytes, bytes]:
    """Full re-key: ``(c_ap', s_ap', chain', TH')``."""
    th = _p.sha384(b"qzmq1 rekey" + th_rk + item(0x30, init_pt) + item(0x31, resp_pt))
    ms = _p.hkdf_extract(chain, ikm)
    return (
        derive(ms, b"c ap traffic", th),
        derive(ms, b"s ap traffic", th),
        derive(ms, b"rekey chain", th),
        th,
    )


def cookie_mac(key: bytes, ts: int, peer: bytes, routing_id: bytes, body: bytes) -> bytes:
    """The 24-byte cookie ``u32 ts || HMAC(K, ...)[0:20]`` for a hello body."""
    tsb = _U32.pack(ts & 0xFFFF_FFFF)
    msg = (
        b"qzmq1 cookie" + tsb + _U16.pack(len(peer)) + peer + _U16.pack(len(routing_id)) + routing_id + _p.sha384(body)
    )
    return tsb + _p.hmac_sha384(key, msg)[:20]
