"""QZMQ v1 numbers: message layouts, record types, limits (docs/qzmq.md §1, §4, §9).

Everything here is fixed by protocol version 1; configurable values live in
:mod:`qfix.qzmq._config`.
"""

from __future__ import annotations

import enum

MAGIC = b"QZ"
VERSION = 0x01
SUITE = 0x0001
SERVER_SIG_ALG = 0x02  # suite 0001: the server always signs with ML-DSA-65

MAX_FRAME = 65_536

#: the handshake message header is ``51 5A version type``
HEADER_LEN = 4


class Mode(enum.IntEnum):
    HYBRID = 0x01
    PQ_ONLY = 0x02


class MsgType(enum.IntEnum):
    CLIENT_HELLO = 0x01
    HELLO_RETRY = 0x02
    SERVER_HELLO = 0x03
    CLIENT_AUTH = 0x04
    ERROR = 0x05


class ErrorCode(enum.IntEnum):
    MISMATCH = 0x01
    FAILED = 0x02


class RecordType(enum.IntEnum):
    DATA = 0x10
    READY = 0x11
    KEY_UPDATE = 0x12
    REKEY_INIT = 0x13
    REKEY_RESP = 0x14
    REKEY_DONE = 0x15
    DATA_FIXED = 0x16
    CLOSE = 0x17


class CloseReason(enum.IntEnum):
    NORMAL = 0x00
    PROTOCOL_ERROR = 0x01
    REKEY_OVERDUE = 0x02
    SUPERSEDED = 0x03
    USAGE_LIMIT = 0x04


#: record types each side may receive (receive procedure step 1)
CLIENT_TO_SERVER = frozenset({0x10, 0x12, 0x13, 0x15, 0x16, 0x17})
SERVER_TO_CLIENT = frozenset({0x10, 0x11, 0x12, 0x13, 0x14, 0x16, 0x17})

# --- sizes ---------------------------------------------------------------------------
RANDOM_LEN = 32
KID_LEN = 16
COOKIE_LEN = 24
COOKIE_MAC_LEN = 20
HASH_LEN = 48
EK_LEN = 1184
CT_LEN = 1088
X25519_LEN = 32
TAG_LEN = 16
SERVER_SIG_LEN = 3309
MAX_CLIENT_SIG_LEN = 4627

RECORD_HEADER_LEN = 10
RECORD_OVERHEAD = RECORD_HEADER_LEN + TAG_LEN
MIN_RECORD = RECORD_OVERHEAD
MAX_PLAINTEXT = MAX_FRAME - RECORD_OVERHEAD
FIXED_MSG_LEN = 60
MAX_FIXED_MSGS = 1091

ERROR_LEN = 5
HELLO_RETRY_LEN = HEADER_LEN + COOKIE_LEN
CLIENT_AUTH_LEN = 4712
CLIENT_AUTH_PT_LEN = CLIENT_AUTH_LEN - HEADER_LEN - TAG_LEN


def hello_body_len(mode: Mode) -> int:
    """B: CLIENT_HELLO bytes before cookie_len (1271 hybrid, 1239 pq-only)."""
    return 7 + RANDOM_LEN + KID_LEN + EK_LEN + (X25519_LEN if mode is Mode.HYBRID else 0)


def server_hello_clear_len(mode: Mode) -> int:
    """C: SERVER_HELLO bytes before the AEAD ciphertext (1159 hybrid, 1127 pq-only)."""
    return 7 + RANDOM_LEN + CT_LEN + (X25519_LEN if mode is Mode.HYBRID else 0)


def server_hello_len(mode: Mode) -> int:
    return server_hello_clear_len(mode) + SERVER_SIG_LEN + HASH_LEN + TAG_LEN


def rekey_init_len(mode: Mode) -> int:
    return EK_LEN + (X25519_LEN if mode is Mode.HYBRID else 0)


def rekey_resp_len(mode: Mode) -> int:
    return CT_LEN + (X25519_LEN if mode is Mode.HYBRID else 0)


# --- fixed limits of version 1 ---------------------------------------------------------
COOKIE_LIFETIME = 60
COOKIE_KEY_ROTATION = 120.0
KNOWN_NET_TTL = 24 * 3600.0
KNOWN_NETS_PER_KID = 4
CLIENT_REKEY_MIN_GAP = 10.0  # client: own re-key / server request spacing
SERVER_REKEY_MIN_GAP = 5.0  # server: REKEY_INIT after t_key
REKEY_RESP_TIMEOUT = 10.0
REKEY_GRACE = 60.0
BAD_RECORD_WINDOW = 60.0
RECV_BLOCK_LIMIT = 1 << 33
RECV_RECORD_LIMIT = 1 << 31
MAX_SEQ = (1 << 64) - 1

CTX_SERVER_AUTH = b"qzmq1 server auth"
CTX_CLIENT_AUTH = b"qzmq1 client auth"
