"""QZMQ v1 constants, encodings and key schedule (QZMQ.md §1, §3.2, §3.3, §3.5, §4, §5, §6).

Pure functions over bytes, written from QZMQ.md alone with hashlib/hmac and
cryptography's HKDFExpand.  Nothing here keeps state.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

# --- constants (§1, §3.1, §4) -------------------------------------------------------
MAGIC = b"QZ"  # 51 5A
VERSION = 0x01
SUITE = 0x0001
HYBRID = 0x01
PQ_ONLY = 0x02
MODES = (HYBRID, PQ_ONLY)

ALG_ML_DSA_44 = 0x01
ALG_ML_DSA_65 = 0x02
ALG_ML_DSA_87 = 0x03
SERVER_ALG = ALG_ML_DSA_65
SIG_LEN = {ALG_ML_DSA_44: 2420, ALG_ML_DSA_65: 3309, ALG_ML_DSA_87: 4627}
PK_LEN = {ALG_ML_DSA_44: 1312, ALG_ML_DSA_65: 1952, ALG_ML_DSA_87: 2592}
MAX_SIG_LEN = 4627

# handshake message types
T_CLIENT_HELLO = 0x01
T_HELLO_RETRY = 0x02
T_SERVER_HELLO = 0x03
T_CLIENT_AUTH = 0x04
T_ERROR = 0x05
ERR_MISMATCH = 0x01
ERR_FAILED = 0x02

# record types
R_DATA = 0x10
R_READY = 0x11
R_KEY_UPDATE = 0x12
R_REKEY_INIT = 0x13
R_REKEY_RESP = 0x14
R_REKEY_DONE = 0x15
R_DATA_FIXED = 0x16
R_CLOSE = 0x17

CLOSE_NORMAL = 0x00
CLOSE_PROTOCOL_ERROR = 0x01
CLOSE_REKEY_OVERDUE = 0x02
CLOSE_SUPERSEDED = 0x03
CLOSE_USAGE_LIMIT = 0x04

MLKEM_EK_LEN = 1184
MLKEM_CT_LEN = 1088
X25519_LEN = 32
COOKIE_LEN = 24
MAX_FRAME = 65_536
RECORD_HEADER_LEN = 10
TAG_LEN = 16
MIN_RECORD = RECORD_HEADER_LEN + TAG_LEN  # 26
FIXED_MSG_LEN = 60
MAX_FIXED_MSGS = 1091

CLIENT_AUTH_LEN = 4712
HELLO_RETRY_LEN = 28
ERROR_LEN = 5

CTX_SERVER_AUTH = b"qzmq1 server auth"
CTX_CLIENT_AUTH = b"qzmq1 client auth"

# transcript item tags (§3.2)
I_CLIENT_HELLO = 0x01
I_SH_CLEAR = 0x03
I_SERVER_ID = 0x10
I_SIG_S = 0x11
I_FIN_S = 0x12
I_CLIENT_ID = 0x20
I_SIG_C = 0x21
I_FIN_C = 0x22


def hello_body_len(mode: int) -> int:
    """B of §3.1: 1271 (HYBRID) or 1239 (PQ_ONLY)."""
    return 4 + 1 + 2 + 32 + 16 + MLKEM_EK_LEN + (X25519_LEN if mode == HYBRID else 0)


def sh_clear_len(mode: int) -> int:
    """C of §3.1: 1159 (HYBRID) or 1127 (PQ_ONLY)."""
    return 4 + 1 + 2 + 32 + MLKEM_CT_LEN + (X25519_LEN if mode == HYBRID else 0)


def server_hello_len(mode: int) -> int:
    return sh_clear_len(mode) + SIG_LEN[SERVER_ALG] + 48 + TAG_LEN


def rekey_init_len(mode: int) -> int:
    return MLKEM_EK_LEN + (X25519_LEN if mode == HYBRID else 0)


def rekey_resp_len(mode: int) -> int:
    return MLKEM_CT_LEN + (X25519_LEN if mode == HYBRID else 0)


def header(msg_type: int, version: int = VERSION) -> bytes:
    return MAGIC + bytes([version, msg_type])


# --- hash, HMAC, HKDF (§1) ----------------------------------------------------------
def H(data: bytes) -> bytes:
    return hashlib.sha384(data).digest()


def hmac384(key: bytes, msg: bytes) -> bytes:
    return hmac.new(key, msg, hashlib.sha384).digest()


def extract(salt: bytes, ikm: bytes) -> bytes:
    """Extract(salt, IKM) = HMAC(salt, IKM)."""
    return hmac384(salt, ikm)


def expand(prk: bytes, info: bytes, length: int) -> bytes:
    return HKDFExpand(hashes.SHA384(), length, info).derive(prk)


def kid(public_key_raw: bytes) -> bytes:
    """kid(pk) = H(pk)[0:16] over the raw FIPS 204 public key."""
    return H(public_key_raw)[:16]


# --- key schedule (§3.3) ------------------------------------------------------------
def expand_label(secret: bytes, label: bytes | str, context: bytes, length: int) -> bytes:
    """EL(S, label, ctx, L)."""
    if isinstance(label, str):
        label = label.encode("ascii")
    full = b"qzmq1 " + label
    if len(full) > 255 or len(context) > 255 or not 0 < length < 65536:
        raise ValueError("label, context or length out of range")
    info = length.to_bytes(2, "big") + bytes([len(full)]) + full + bytes([len(context)]) + context
    return expand(secret, info, length)


def derive_secret(secret: bytes, label: bytes | str, th: bytes) -> bytes:
    """D(S, label, th) = EL(S, label, th, 48)."""
    return expand_label(secret, label, th, 48)


def traffic_keys(secret: bytes) -> tuple[bytes, bytes]:
    """keys(X) = (EL(X, "key", "", 32), EL(X, "iv", "", 12))."""
    return expand_label(secret, "key", b"", 32), expand_label(secret, "iv", b"", 12)


def salt0(mode: int, suite: int = SUITE) -> bytes:
    return H(b"qzmq1 salt" + bytes([mode]) + suite.to_bytes(2, "big"))


def handshake_secret(mode: int, ikm: bytes, suite: int = SUITE) -> bytes:
    """HS = Extract(salt0, IKM) with IKM = ss_mlkem ‖ ss_x25519 (HYBRID) or ss_mlkem."""
    return extract(salt0(mode, suite), ikm)


def master_secret(hs: bytes) -> bytes:
    """MS = Extract(D(HS, "derived", H("")), 0^48)."""
    return extract(derive_secret(hs, "derived", H(b"")), bytes(48))


def item(tag: int, data: bytes) -> bytes:
    return bytes([tag]) + len(data).to_bytes(4, "big") + data


def transcript_hash(items: Iterable[tuple[int, bytes]]) -> bytes:
    """TH(...) = H("qzmq1 transcript" ‖ item(tag, data) ‖ ...)."""
    return H(b"qzmq1 transcript" + b"".join(item(t, d) for t, d in items))


def finished_mac(hs_traffic_secret: bytes, th: bytes) -> bytes:
    """fin = HMAC(EL(hs_traffic, "finished", "", 48), th)."""
    return hmac384(expand_label(hs_traffic_secret, "finished", b"", 48), th)


def application_secrets(hs: bytes, th_f: bytes) -> dict[str, bytes]:
    """c_ap, s_ap (epoch 0), exp, chain from HS and TH_f (TH_rk = TH_f)."""
    ms = master_secret(hs)
    return {
        "c_ap": derive_secret(ms, "c ap traffic", th_f),
        "s_ap": derive_secret(ms, "s ap traffic", th_f),
        "exp": derive_secret(ms, "exp master", th_f),
        "chain": derive_secret(ms, "rekey chain", th_f),
        "th_rk": th_f,
    }


def next_traffic_secret(secret: bytes) -> bytes:
    """KEY_UPDATE ratchet: secret' = EL(secret, "traffic upd", "", 48)."""
    return expand_label(secret, "traffic upd", b"", 48)


def record_nonce(iv: bytes, seq: int) -> bytes:
    """nonce = iv XOR (0^4 ‖ u64 seq)."""
    pad = bytes(4) + seq.to_bytes(8, "big")
    return bytes(a ^ b for a, b in zip(iv, pad, strict=True))


def rekey_derive(chain: bytes, th_rk: bytes, init_pt: bytes, resp_pt: bytes, ikm: bytes) -> dict[str, bytes]:
    """Full re-key (§5.2): new c_ap, s_ap, chain and TH_rk (= TH')."""
    th = H(b"qzmq1 rekey" + th_rk + item(0x30, init_pt) + item(0x31, resp_pt))
    ms = extract(chain, ikm)
    return {
        "c_ap": derive_secret(ms, "c ap traffic", th),
        "s_ap": derive_secret(ms, "s ap traffic", th),
        "chain": derive_secret(ms, "rekey chain", th),
        "th_rk": th,
    }


def exporter(exp: bytes, label: bytes | str, context: bytes, length: int) -> bytes:
    """Exporter(label, context, L) = EL(D(exp, label, H("")), "exporter", H(context), L)."""
    if isinstance(label, str):
        label = label.encode("ascii")
    if not 1 <= len(label) <= 249 or not 1 <= length <= 12_240:
        raise ValueError("exporter label or length out of range")
    return expand_label(derive_secret(exp, label, H(b"")), "exporter", H(context), length)


def channel_binding(exp: bytes) -> bytes:
    return exporter(exp, "EXPORTER-Channel-Binding", b"", 32)


# --- cookies (§3.5) -----------------------------------------------------------------
def make_cookie(key: bytes, ts: int, peer: str, routing_id: bytes, body: bytes) -> bytes:
    """cookie = u32 ts ‖ HMAC(K, "qzmq1 cookie" ‖ u32 ts ‖ u16 len(peer) ‖ peer
    ‖ u16 len(routing_id) ‖ routing_id ‖ H(body))[0:20]."""
    p = peer.encode("ascii")
    ts_b = (ts % 2**32).to_bytes(4, "big")
    mac = hmac384(
        key,
        b"qzmq1 cookie"
        + ts_b
        + len(p).to_bytes(2, "big")
        + p
        + len(routing_id).to_bytes(2, "big")
        + routing_id
        + H(body),
    )
    return ts_b + mac[:20]
