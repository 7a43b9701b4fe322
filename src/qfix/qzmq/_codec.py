"""Byte layouts of the QZMQ handshake messages (docs/qzmq.md §3.1).

Builders return exact bytes; parsers check exact lengths and return the fields as
slices. Parsers never judge content beyond layout: the state machines do that, in
the order the protocol fixes.
"""

from __future__ import annotations

from dataclasses import dataclass

from qfix.qzmq._constants import (
    COOKIE_LEN,
    CT_LEN,
    EK_LEN,
    HEADER_LEN,
    KID_LEN,
    MAGIC,
    RANDOM_LEN,
    SUITE,
    VERSION,
    X25519_LEN,
    ErrorCode,
    Mode,
    MsgType,
    hello_body_len,
    server_hello_clear_len,
    server_hello_len,
)

__all__ = [
    "Hello",
    "ServerHello",
    "build_error",
    "build_hello_body",
    "header",
    "parse_hello",
    "parse_server_hello",
    "with_cookie",
]


def header(mtype: MsgType, version: int = VERSION) -> bytes:
    return MAGIC + bytes([version, mtype])


def build_error(code: ErrorCode, version: int = VERSION) -> bytes:
    return header(MsgType.ERROR, version) + bytes([code])


def build_hello_body(mode: Mode, client_random: bytes, server_kid: bytes, ek: bytes, x_pub: bytes | None) -> bytes:
    body = (
        header(MsgType.CLIENT_HELLO)
        + bytes([mode])
        + SUITE.to_bytes(2, "big")
        + client_random
        + server_kid
        + ek
        + (x_pub or b"")
    )
    assert len(body) == hello_body_len(mode)
    return body


def with_cookie(body: bytes, cookie: bytes) -> bytes:
    return body + bytes([len(cookie)]) + cookie


@dataclass(frozen=True, slots=True)
class Hello:
    body: bytes
    server_kid: bytes
    ek: bytes
    x_pub: bytes | None
    cookie: bytes | None


def parse_hello(frame: bytes, mode: Mode) -> Hello | None:
    """Layout of a CLIENT_HELLO already known to have the configured version, mode and
    suite; None when cookie_len or the length is wrong."""
    b = hello_body_len(mode)
    if len(frame) < b + 1:
        return None
    clen = frame[b]
    if clen not in (0, COOKIE_LEN) or len(frame) != b + 1 + clen:
        return None
    off = 7 + RANDOM_LEN
    return Hello(
        body=frame[:b],
        server_kid=frame[off : off + KID_LEN],
        ek=frame[off + KID_LEN : off + KID_LEN + EK_LEN],
        x_pub=frame[b - X25519_LEN : b] if mode is Mode.HYBRID else None,
        cookie=frame[b + 1 :] if clen else None,
    )


@dataclass(frozen=True, slots=True)
class ServerHello:
    clear: bytes
    ct: bytes
    x_pub: bytes | None
    sealed: bytes


def parse_server_hello(frame: bytes, mode: Mode) -> ServerHello | None:
    if len(frame) != server_hello_len(mode) or frame[:HEADER_LEN] != header(MsgType.SERVER_HELLO):
        return None
    if frame[4] != mode or int.from_bytes(frame[5:7], "big") != SUITE:
        return None
    c = server_hello_clear_len(mode)
    off = 7 + RANDOM_LEN
    return ServerHello(
        clear=frame[:c],
        ct=frame[off : off + CT_LEN],
        x_pub=frame[off + CT_LEN : c] if mode is Mode.HYBRID else None,
        sealed=frame[c:],
    )
