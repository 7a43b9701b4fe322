"""Thin typed facade over `cryptography` (ML-KEM, ML-DSA, X25519, AES-GCM, HKDF) and key files.

Two layers as in pyca/cryptography: :mod:`qfix.crypto.primitives` is one function per
operation with exact sizes; :mod:`qfix.crypto.keys` holds long-term ML-DSA key files
and the server's client allow-list. Every failure is a :class:`CryptoError`.
"""

from qfix.crypto.keys import (
    KEY_FORMAT,
    AllowEntry,
    AllowList,
    KeyFileError,
    SigningKey,
    VerifyKey,
    generate_signing_key,
    load_allow_list,
    load_private_key,
    load_public_key,
    parse_allow_list,
    public_key_path,
    render_allow_entry,
    write_key_pair,
    write_private_key,
    write_public_key,
)
from qfix.crypto.primitives import (
    AuthenticationError,
    CryptoError,
    InvalidKeyError,
    SignatureAlg,
    kid,
)

__all__ = [
    "KEY_FORMAT",
    "AllowEntry",
    "AllowList",
    "AuthenticationError",
    "CryptoError",
    "InvalidKeyError",
    "KeyFileError",
    "SignatureAlg",
    "SigningKey",
    "VerifyKey",
    "generate_signing_key",
    "kid",
    "load_allow_list",
    "load_private_key",
    "load_public_key",
    "parse_allow_list",
    "public_key_path",
    "render_allow_entry",
    "write_key_pair",
    "write_private_key",
    "write_public_key",
]
