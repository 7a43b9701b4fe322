"""AES-256-GCM that jitted code can call: OpenSSL's EVP interface in the system libcrypto.

Why: `cryptography`'s AESGCM is a Python object, so a record that must be opened or
sealed sends a compiled record path back to Python once per record.
``scripts/probe_aead_kernel.py`` (docs/results/probe_aead_kernel.json) measured one seal
plus one open of a one-message record at 0.46 us inside a jitted loop through EVP, against
1.08 us through `cryptography` from Python, with the records equal byte for byte.

Safety: the kernels must call a real OpenSSL. The library is the libcrypto that Python's
own ``_hashlib`` maps into this process (so it is there wherever this Python runs), loaded
by the path of the one copy mapped, and only if the symbol Numba resolves is that copy's;
otherwise :data:`AVAILABLE` is False and callers keep `cryptography`. A key lives in an
EVP context that :class:`GcmKey` owns and frees (OpenSSL cleanses the key schedule when
it frees it), so a dropped key is gone from memory as `cryptography`'s would be.
"""

from __future__ import annotations

import ctypes
import logging
from typing import Any, Final

import numpy.typing as npt
from numba import njit, types

from qfix.native_libs import load_mapped

__all__ = ["AVAILABLE", "NONCE_LEN", "TAG_LEN", "GcmKey", "open_record", "seal_record"]

log = logging.getLogger(__name__)

Array = npt.NDArray[Any]

NONCE_LEN: Final = 12
TAG_LEN: Final = 16
KEY_LEN: Final = 32
#: EVP_CIPHER_CTX_ctrl commands (openssl/evp.h: EVP_CTRL_AEAD_GET_TAG, _SET_TAG)
_CTRL_GET_TAG: Final = 0x10
_CTRL_SET_TAG: Final = 0x11
_NULL: Final = 0


def _load() -> ctypes.CDLL | None:
    import _hashlib  # noqa: F401 - maps the libcrypto Python itself was built against

    lib = load_mapped("libcrypto.so", ("EVP_EncryptInit_ex", "EVP_DecryptFinal_ex", "EVP_CIPHER_CTX_ctrl"))
    if lib is None:
        return None
    lib.EVP_CIPHER_CTX_new.restype = ctypes.c_void_p
    lib.EVP_CIPHER_CTX_free.argtypes = [ctypes.c_void_p]
    lib.EVP_aes_256_gcm.restype = ctypes.c_void_p
    lib.EVP_EncryptInit_ex.argtypes = lib.EVP_DecryptInit_ex.argtypes = [ctypes.c_void_p] * 5
    return lib


_lib = _load()
#: whether :func:`seal_record`, :func:`open_record` and :class:`GcmKey` work in this process
AVAILABLE: Final = _lib is not None
if not AVAILABLE:
    log.info("no libcrypto reachable from jitted code here; records are sealed through cryptography")

_P = types.voidptr
_I = types.intc
_enc_init: Any = types.ExternalFunction("EVP_EncryptInit_ex", _I(_P, _P, _P, _P, _P))
_enc_update: Any = types.ExternalFunction("EVP_EncryptUpdate", _I(_P, _P, _P, _P, _I))
_enc_final: Any = types.ExternalFunction("EVP_EncryptFinal_ex", _I(_P, _P, _P))
_dec_init: Any = types.ExternalFunction("EVP_DecryptInit_ex", _I(_P, _P, _P, _P, _P))
_dec_update: Any = types.ExternalFunction("EVP_DecryptUpdate", _I(_P, _P, _P, _P, _I))
_dec_final: Any = types.ExternalFunction("EVP_DecryptFinal_ex", _I(_P, _P, _P))
_ctrl: Any = types.ExternalFunction("EVP_CIPHER_CTX_ctrl", _I(_P, _I, _I, _P))


@njit(cache=True, nogil=True)
def seal_record(ctx: int, nonce: int, aad: int, aad_len: int, plaintext: int, n: int, out: int, outl: Array) -> bool:
    """Write the ciphertext of the ``n`` bytes at ``plaintext``, then the 16-byte tag, at
    ``out`` under the key of the encrypting context ``ctx``; ``nonce`` is the address of
    12 bytes, ``aad`` of ``aad_len`` bytes. ``outl`` is an int32 scratch cell. Addresses
    may not overlap except ``plaintext == out``. False if OpenSSL failed."""
    cell = outl.ctypes.data
    ok = _enc_init(ctx, _NULL, _NULL, _NULL, nonce) == 1
    ok = ok and _enc_update(ctx, _NULL, cell, aad, aad_len) == 1
    ok = ok and (n == 0 or _enc_update(ctx, out, cell, plaintext, n) == 1)
    ok = ok and _enc_final(ctx, out + n, cell) == 1
    return bool(ok and _ctrl(ctx, _CTRL_GET_TAG, TAG_LEN, out + n) == 1)


@njit(cache=True, nogil=True)
def open_record(ctx: int, nonce: int, aad: int, aad_len: int, sealed: int, n: int, out: int, outl: Array) -> bool:
    """Write the plaintext of the ``n`` bytes at ``sealed`` (ciphertext then the 16-byte
    tag, ``n >= 16``) at ``out`` under the key of the decrypting context ``ctx``; False
    if the tag is wrong (``out`` then holds unauthenticated bytes the caller must
    ignore) or OpenSSL failed."""
    body = n - TAG_LEN
    if body < 0:
        return False
    cell = outl.ctypes.data
    ok = _dec_init(ctx, _NULL, _NULL, _NULL, nonce) == 1
    ok = ok and _dec_update(ctx, _NULL, cell, aad, aad_len) == 1
    ok = ok and (body == 0 or _dec_update(ctx, out, cell, sealed, body) == 1)
    # the tag is set after the data, before the final call that checks it
    ok = ok and _ctrl(ctx, _CTRL_SET_TAG, TAG_LEN, sealed + body) == 1
    return bool(ok and _dec_final(ctx, out + body, cell) == 1)


class GcmKey:
    """One AES-256-GCM key in an EVP context, for sealing (``encrypt=True``) or opening.

    ``ctx`` is the address the kernels take; it stays valid until :meth:`close`, which
    frees the context (and with it the key schedule). Not thread-safe: a context holds
    the state of the record in progress."""

    __slots__ = ("_free", "ctx", "encrypt")

    def __init__(self, key: bytes, *, encrypt: bool) -> None:
        self.ctx: int = 0
        if _lib is None:
            raise RuntimeError("no libcrypto reachable from jitted code (check AVAILABLE first)")
        if len(key) != KEY_LEN:
            raise ValueError("AES-256-GCM needs a 32-byte key")
        lib = _lib
        init = lib.EVP_EncryptInit_ex if encrypt else lib.EVP_DecryptInit_ex
        ctx = lib.EVP_CIPHER_CTX_new()
        if not ctx:
            raise MemoryError("EVP_CIPHER_CTX_new failed")
        self._free = lib.EVP_CIPHER_CTX_free
        self.ctx = ctx
        self.encrypt = encrypt
        buf = ctypes.create_string_buffer(key, KEY_LEN)
        try:
            if init(ctx, lib.EVP_aes_256_gcm(), None, buf, None) != 1:
                self.close()
                raise RuntimeError("EVP cipher initialisation failed")
        finally:
            ctypes.memset(buf, 0, KEY_LEN)

    def close(self) -> None:
        """Free the context; the key is gone. Idempotent."""
        if getattr(self, "ctx", 0):
            self._free(self.ctx)
            self.ctx = 0

    def __del__(self) -> None:
        self.close()
