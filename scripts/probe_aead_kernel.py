"""Ceiling probe: AES-256-GCM records sealed and opened from compiled code.

    .venv/bin/python scripts/probe_aead_kernel.py [--json F]

One order costs the server's loop about 150 us of Python around 5 us of matching
(docs/benchmarks.md, "Network"), and the rest of a record's path (decryption, stage S,
the engine, routing, encryption) could run as one compiled call only if the AEAD can be
called from Numba: `cryptography`'s AESGCM cannot. This probe calls OpenSSL's EVP
interface (the system's libcrypto, through ctypes function pointers, which Numba calls
in nopython mode) from a jitted function, checks that its records equal `cryptography`'s
byte for byte and that a flipped tag bit is refused, and times, per record of one
60-byte message and of 1,000: `cryptography` from Python (what the server does now), the
jitted seal/open called from Python, and the same inside one jitted loop (the floor of a
compiled record path). Medians of 7 repeats.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import json
import statistics
import time
from pathlib import Path
from typing import Any

import numba
import numpy as np
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_TAG = 16
_NONCE = 12
_CTRL_GCM_GET_TAG = 0x10
_CTRL_GCM_SET_TAG = 0x11
_REPEATS = 7

_path = ctypes.util.find_library("crypto")
if _path is None:
    raise SystemExit("no system libcrypto: this probe needs OpenSSL's shared library")
_lib = ctypes.CDLL(_path)
_P = ctypes.c_void_p
_I = ctypes.c_int


def _fn(name: str, restype: Any, *argtypes: Any) -> Any:
    f = getattr(_lib, name)
    f.restype = restype
    f.argtypes = list(argtypes)
    return f


_ctx_new = _fn("EVP_CIPHER_CTX_new", _P)
_aes_256_gcm = _fn("EVP_aes_256_gcm", _P)
_enc_init = _fn("EVP_EncryptInit_ex", _I, _P, _P, _P, _P, _P)
_enc_update = _fn("EVP_EncryptUpdate", _I, _P, _P, _P, _P, _I)
_enc_final = _fn("EVP_EncryptFinal_ex", _I, _P, _P, _P)
_dec_init = _fn("EVP_DecryptInit_ex", _I, _P, _P, _P, _P, _P)
_dec_update = _fn("EVP_DecryptUpdate", _I, _P, _P, _P, _P, _I)
_dec_final = _fn("EVP_DecryptFinal_ex", _I, _P, _P, _P)
_ctrl = _fn("EVP_CIPHER_CTX_ctrl", _I, _P, _I, _I, _P)
_NULL = 0


@numba.njit(nogil=True)
def seal(ctx: int, nonce: Any, aad: Any, plaintext: Any, out: Any, outl: Any) -> bool:
    """``out`` = ciphertext || tag of ``plaintext`` under the key ``ctx`` was set up with."""
    ok = _enc_init(ctx, _NULL, _NULL, _NULL, nonce.ctypes.data) == 1
    ok &= _enc_update(ctx, _NULL, outl.ctypes.data, aad.ctypes.data, aad.size) == 1
    ok &= _enc_update(ctx, out.ctypes.data, outl.ctypes.data, plaintext.ctypes.data, plaintext.size) == 1
    ok &= _enc_final(ctx, out.ctypes.data + plaintext.size, outl.ctypes.data) == 1
    ok &= _ctrl(ctx, _CTRL_GCM_GET_TAG, _TAG, out.ctypes.data + plaintext.size) == 1
    return ok


@numba.njit(nogil=True)
def open_(ctx: int, nonce: Any, aad: Any, sealed: Any, out: Any, outl: Any) -> bool:
    """``out`` = the plaintext of ``sealed`` (ciphertext || tag); False if the tag is wrong."""
    n = sealed.size - _TAG
    ok = _dec_init(ctx, _NULL, _NULL, _NULL, nonce.ctypes.data) == 1
    ok &= _dec_update(ctx, _NULL, outl.ctypes.data, aad.ctypes.data, aad.size) == 1
    ok &= _dec_update(ctx, out.ctypes.data, outl.ctypes.data, sealed.ctypes.data, n) == 1
    ok &= _ctrl(ctx, _CTRL_GCM_SET_TAG, _TAG, sealed.ctypes.data + n) == 1
    return ok and _dec_final(ctx, out.ctypes.data + n, outl.ctypes.data) == 1


@numba.njit(nogil=True)
def seal_open_loop(
    enc: int, dec: int, nonce: Any, aad: Any, plaintext: Any, sealed: Any, out: Any, outl: Any, n: int
) -> int:
    """``n`` seal-then-open round trips in one compiled loop; how many succeeded."""
    good = 0
    for _ in range(n):
        if seal(enc, nonce, aad, plaintext, sealed, outl) and open_(dec, nonce, aad, sealed, out, outl):
            good += 1
    return good


def _contexts(key: bytes) -> tuple[int, int]:
    enc, dec = _ctx_new(), _ctx_new()
    k = ctypes.create_string_buffer(key, len(key))
    if _enc_init(enc, _aes_256_gcm(), None, k, None) != 1 or _dec_init(dec, _aes_256_gcm(), None, k, None) != 1:
        raise SystemExit("EVP init failed")
    return int(enc), int(dec)


def _median_us(run: Any, count: int) -> float:
    times = []
    for _ in range(_REPEATS):
        t = time.perf_counter_ns()
        run()
        times.append((time.perf_counter_ns() - t) / count / 1e3)
    return statistics.median(times)


def _case(messages: int, key: bytes, rng: np.random.Generator) -> dict[str, Any]:
    """Check and time one record size."""
    enc, dec = _contexts(key)
    aead = AESGCM(key)
    nonce = np.frombuffer(rng.bytes(_NONCE), np.uint8).copy()
    aad = np.frombuffer(rng.bytes(10), np.uint8).copy()
    outl = np.zeros(1, np.int32)
    pt = np.frombuffer(rng.bytes(60 * messages), np.uint8).copy()
    sealed = np.zeros(pt.size + _TAG, np.uint8)
    out = np.zeros(pt.size + _TAG, np.uint8)
    n_b, p_b, a_b = nonce.tobytes(), pt.tobytes(), aad.tobytes()
    # the same bytes as cryptography's, and a flipped tag bit refused
    if not seal(enc, nonce, aad, pt, sealed, outl) or sealed.tobytes() != aead.encrypt(n_b, p_b, a_b):
        raise SystemExit("the compiled seal differs from cryptography's")
    if not open_(dec, nonce, aad, sealed, out, outl) or out[: pt.size].tobytes() != p_b:
        raise SystemExit("the compiled open did not give the plaintext back")
    bad = sealed.copy()
    bad[-1] ^= 1
    if open_(dec, nonce, aad, bad, out, outl):
        raise SystemExit("the compiled open accepted a wrong tag")
    count = 20_000 if messages == 1 else 2_000

    def python_aead() -> None:
        for _ in range(count):
            aead.decrypt(n_b, aead.encrypt(n_b, p_b, a_b), a_b)

    def jitted_from_python() -> None:
        for _ in range(count):
            seal(enc, nonce, aad, pt, sealed, outl)
            open_(dec, nonce, aad, sealed, out, outl)

    def jitted_loop() -> None:
        if seal_open_loop(enc, dec, nonce, aad, pt, sealed, out, outl, count) != count:
            raise SystemExit("a round trip failed in the loop")

    return {
        "cryptography_from_python_us": _median_us(python_aead, count),
        "jitted_called_from_python_us": _median_us(jitted_from_python, count),
        "jitted_loop_us": _median_us(jitted_loop, count),
        "what": "one seal and one open of a record of this many 60-byte messages",
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    rng = np.random.default_rng(1)
    key = rng.bytes(32)
    doc: dict[str, Any] = {"probe": "aead_kernel", "command": "scripts/probe_aead_kernel.py", "libcrypto": _path}
    doc["started"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    for messages in (1, 1000):
        doc[f"msgs{messages}"] = _case(messages, key, rng)
    if args.json:
        args.json.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(doc, indent=1))


if __name__ == "__main__":
    main()
