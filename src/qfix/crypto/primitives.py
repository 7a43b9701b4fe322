"""Typed facade over the `cryptography` primitives that QZMQ uses.

Theory of operation: every primitive call of qfix goes through this module, so that
(1) foreign exceptions are translated into :class:`CryptoError` subclasses in exactly
one place, (2) the callers see one function per operation with exact byte sizes, and
(3) tests can count or forbid asymmetric work by patching the module attributes (the
protocol code calls ``primitives.NAME(...)`` through the module, never a bound alias).
Nothing home-made lives below this line: hashing, HMAC, HKDF, AES-GCM, ML-KEM, ML-DSA
and X25519 all come from `cryptography`.
"""

from __future__ import annotations

import enum
from typing import TypeAlias

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as _hmac
from cryptography.hazmat.primitives.asymmetric import mldsa, mlkem, x25519
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

from qfix.errors import QfixError

__all__ = [
    "HASH_LEN",
    "KID_LEN",
    "MLDSA_SEED_LEN",
    "MLKEM768_CT_LEN",
    "MLKEM768_EK_LEN",
    "MLKEM768_SEED_LEN",
    "MLKEM768_SS_LEN",
    "X25519_LEN",
    "Aes256Gcm",
    "AuthenticationError",
    "CryptoError",
    "InvalidKeyError",
    "MLDSAPrivateKey",
    "MLDSAPublicKey",
    "MLKEMPrivateKey",
    "MLKEMPublicKey",
    "Sha384",
    "SignatureAlg",
    "X25519PrivateKey",
    "hkdf_expand",
    "hkdf_extract",
    "hmac_sha384",
    "kid",
    "mldsa_from_seed",
    "mldsa_generate",
    "mldsa_load_public",
    "mldsa_sign",
    "mldsa_verify",
    "mlkem_decapsulate",
    "mlkem_encapsulate",
    "mlkem_from_seed",
    "mlkem_generate",
    "mlkem_load_ek",
    "sha384",
    "x25519_exchange",
    "x25519_from_bytes",
    "x25519_generate",
    "x25519_public_bytes",
]

HASH_LEN = 48
KID_LEN = 16
MLKEM768_EK_LEN = 1184
MLKEM768_CT_LEN = 1088
MLKEM768_SS_LEN = 32
MLKEM768_SEED_LEN = 64
MLDSA_SEED_LEN = 32
X25519_LEN = 32


class CryptoError(QfixError):
    """Base of every error raised by :mod:`qfix.crypto`."""


class InvalidKeyError(CryptoError, ValueError):
    """A key or key share is malformed or fails its validity check."""


class AuthenticationError(CryptoError):
    """An AEAD tag, MAC or signature did not verify."""


MLKEMPrivateKey: TypeAlias = mlkem.MLKEM768PrivateKey
MLKEMPublicKey: TypeAlias = mlkem.MLKEM768PublicKey
X25519PrivateKey: TypeAlias = x25519.X25519PrivateKey
MLDSAPrivateKey: TypeAlias = mldsa.MLDSA44PrivateKey | mldsa.MLDSA65PrivateKey | mldsa.MLDSA87PrivateKey
MLDSAPublicKey: TypeAlias = mldsa.MLDSA44PublicKey | mldsa.MLDSA65PublicKey | mldsa.MLDSA87PublicKey


class SignatureAlg(enum.IntEnum):
    """ML-DSA parameter sets with their QZMQ alg byte as value."""

    ML_DSA_44 = 1
    ML_DSA_65 = 2
    ML_DSA_87 = 3

    @property
    def label(self) -> str:
        """The name used in key files, e.g. ``"ML-DSA-65"``."""
        return self.name.replace("_", "-")

    @property
    def public_key_len(self) -> int:
        return _PK_LEN[self]

    @property
    def signature_len(self) -> int:
        return _SIG_LEN[self]

    @classmethod
    def from_label(cls, label: str) -> SignatureAlg:
        for alg in cls:
            if alg.label == label:
                return alg
        raise InvalidKeyError(
            f"unknown signature algorithm {label!r}: expected one of " + ", ".join(a.label for a in cls)
        )


_PK_LEN = {SignatureAlg.ML_DSA_44: 1312, SignatureAlg.ML_DSA_65: 1952, SignatureAlg.ML_DSA_87: 2592}
_SIG_LEN = {SignatureAlg.ML_DSA_44: 2420, SignatureAlg.ML_DSA_65: 3309, SignatureAlg.ML_DSA_87: 4627}
_PRIV_CLS: dict[SignatureAlg, type[MLDSAPrivateKey]] = {
    SignatureAlg.ML_DSA_44: mldsa.MLDSA44PrivateKey,
    SignatureAlg.ML_DSA_65: mldsa.MLDSA65PrivateKey,
    SignatureAlg.ML_DSA_87: mldsa.MLDSA87PrivateKey,
}
_PUB_CLS: dict[SignatureAlg, type[MLDSAPublicKey]] = {
    SignatureAlg.ML_DSA_44: mldsa.MLDSA44PublicKey,
    SignatureAlg.ML_DSA_65: mldsa.MLDSA65PublicKey,
    SignatureAlg.ML_DSA_87: mldsa.MLDSA87PublicKey,
}

_SHA384 = hashes.SHA384()


# --- hashing, MAC, KDF ---------------------------------------------------------------


def sha384(data: bytes) -> bytes:
    """SHA-384 of ``data`` (48 bytes)."""
    h = hashes.Hash(_SHA384)
    h.update(data)
    return h.finalize()


class Sha384:
    """Incremental SHA-384 whose intermediate state can be copied (running transcripts)."""

    __slots__ = ("_h",)

    def __init__(self, data: bytes = b"", *, _h: hashes.Hash | None = None) -> None:
        self._h = _h if _h is not None else hashes.Hash(_SHA384)
        if data:
            self._h.update(data)

    def update(self, data: bytes) -> None:
        self._h.update(data)

    def copy(self) -> Sha384:
        return Sha384(_h=self._h.copy())

    def __deepcopy__(self, memo: dict[int, object]) -> Sha384:
        # the hash context is mutable and cannot be pickled: copy it, never share it
        return self.copy()

    def digest(self) -> bytes:
        """Digest of everything so far; the object stays usable."""
        return self._h.copy().finalize()


def hmac_sha384(key: bytes, data: bytes) -> bytes:
    """HMAC-SHA-384 (48 bytes)."""
    h = _hmac.HMAC(key, _SHA384)
    h.update(data)
    return h.finalize()


def hkdf_extract(salt: bytes, ikm: bytes) -> bytes:
    """HKDF-Extract with SHA-384 (RFC 5869): ``HMAC(salt, IKM)``."""
    return hmac_sha384(salt, ikm)


def hkdf_expand(prk: bytes, info: bytes, length: int) -> bytes:
    """HKDF-Expand with SHA-384 (RFC 5869); ``length`` <= 255 * 48."""
    try:
        return HKDFExpand(_SHA384, length, info).derive(prk)
    except ValueError as exc:
        raise CryptoError(f"HKDF-Expand: {exc}") from exc


# --- AEAD ---------------------------------------------------------------------------


class Aes256Gcm:
    """AES-256-GCM with 12-byte nonces and 16-byte tags."""

    __slots__ = ("_aead",)
    TAG_LEN = 16

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise InvalidKeyError("AES-256-GCM needs a 32-byte key")
        self._aead = AESGCM(key)

    def encrypt(self, nonce: bytes, data: bytes, aad: bytes) -> bytes:
        """Ciphertext followed by the tag."""
        return self._aead.encrypt(nonce, data, aad)

    def encrypt_into(self, nonce: bytes, data: bytes, aad: bytes, out: memoryview) -> None:
        """Write ciphertext and tag into ``out`` (exactly ``len(data) + 16`` bytes)."""
        self._aead.encrypt_into(nonce, data, aad, out)

    def decrypt(self, nonce: bytes, data: bytes | memoryview, aad: bytes | memoryview) -> bytes:
        """Plaintext, or :class:`AuthenticationError`."""
        try:
            return self._aead.decrypt(nonce, data, aad)
        except InvalidTag:
            raise AuthenticationError("AEAD tag mismatch") from None


# --- ML-KEM-768 ---------------------------------------------------------------------


def mlkem_generate() -> MLKEMPrivateKey:
    """A fresh ML-KEM-768 decapsulation key."""
    return mlkem.MLKEM768PrivateKey.generate()


def mlkem_from_seed(seed: bytes) -> MLKEMPrivateKey:
    """ML-KEM-768 key from its 64-byte ``d || z`` seed (tests and vectors)."""
    if len(seed) != MLKEM768_SEED_LEN:
        raise InvalidKeyError("an ML-KEM-768 seed is 64 bytes")
    try:
        return mlkem.MLKEM768PrivateKey.from_seed_bytes(seed)
    except ValueError as exc:
        raise InvalidKeyError(f"ML-KEM-768 seed: {exc}") from exc


def mlkem_load_ek(ek: bytes) -> MLKEMPublicKey:
    """Parse an encapsulation key, running the FIPS 203 modulus check."""
    if len(ek) != MLKEM768_EK_LEN:
        raise InvalidKeyError("an ML-KEM-768 encapsulation key is 1184 bytes")
    try:
        return mlkem.MLKEM768PublicKey.from_public_bytes(ek)
    except ValueError as exc:
        raise InvalidKeyError(f"ML-KEM-768 encapsulation key: {exc}") from exc


def mlkem_encapsulate(public: MLKEMPublicKey) -> tuple[bytes, bytes]:
    """``(shared_secret, ciphertext)``."""
    ss, ct = public.encapsulate()
    return ss, ct


def mlkem_decapsulate(private: MLKEMPrivateKey, ct: bytes) -> bytes:
    """Shared secret (implicit rejection: a tampered ct yields an unrelated secret)."""
    if len(ct) != MLKEM768_CT_LEN:
        raise InvalidKeyError("an ML-KEM-768 ciphertext is 1088 bytes")
    try:
        return private.decapsulate(ct)
    except ValueError as exc:
        raise InvalidKeyError(f"ML-KEM-768 ciphertext: {exc}") from exc


# --- X25519 -------------------------------------------------------------------------


def x25519_generate() -> X25519PrivateKey:
    return x25519.X25519PrivateKey.generate()


def x25519_from_bytes(raw: bytes) -> X25519PrivateKey:
    """X25519 private key from 32 raw bytes (tests and vectors)."""
    try:
        return x25519.X25519PrivateKey.from_private_bytes(raw)
    except ValueError as exc:
        raise InvalidKeyError(f"X25519 private key: {exc}") from exc


def x25519_public_bytes(private: X25519PrivateKey) -> bytes:
    return private.public_key().public_bytes_raw()


def x25519_exchange(private: X25519PrivateKey, peer_public: bytes) -> bytes:
    """Shared secret; an all-zero result (low-order share) is :class:`InvalidKeyError`."""
    if len(peer_public) != X25519_LEN:
        raise InvalidKeyError("an X25519 public key is 32 bytes")
    try:
        return private.exchange(x25519.X25519PublicKey.from_public_bytes(peer_public))
    except ValueError as exc:
        raise InvalidKeyError(f"X25519 exchange: {exc}") from exc


# --- ML-DSA -------------------------------------------------------------------------


def mldsa_generate(alg: SignatureAlg) -> MLDSAPrivateKey:
    return _PRIV_CLS[alg].generate()


def mldsa_from_seed(alg: SignatureAlg, seed: bytes) -> MLDSAPrivateKey:
    """ML-DSA private key from its 32-byte FIPS 204 seed xi."""
    if len(seed) != MLDSA_SEED_LEN:
        raise InvalidKeyError("an ML-DSA seed is 32 bytes")
    try:
        return _PRIV_CLS[alg].from_seed_bytes(seed)
    except ValueError as exc:
        raise InvalidKeyError(f"{alg.label} seed: {exc}") from exc


def mldsa_load_public(alg: SignatureAlg, raw: bytes) -> MLDSAPublicKey:
    if len(raw) != alg.public_key_len:
        raise InvalidKeyError(f"an {alg.label} public key is {alg.public_key_len} bytes")
    try:
        return _PUB_CLS[alg].from_public_bytes(raw)
    except ValueError as exc:
        raise InvalidKeyError(f"{alg.label} public key: {exc}") from exc


def mldsa_sign(private: MLDSAPrivateKey, data: bytes, context: bytes) -> bytes:
    """Hedged (randomized) ML-DSA signature with a FIPS 204 context string."""
    return private.sign(data, context)


def mldsa_verify(public: MLDSAPublicKey, signature: bytes, data: bytes, context: bytes) -> None:
    """Raise :class:`AuthenticationError` unless ``signature`` verifies."""
    try:
        public.verify(signature, data, context)
    except (InvalidSignature, ValueError):
        raise AuthenticationError("signature does not verify") from None


def kid(public_raw: bytes) -> bytes:
    """QZMQ key id: the first 16 bytes of SHA-384 over the raw public key."""
    return sha384(public_raw)[:KID_LEN]
