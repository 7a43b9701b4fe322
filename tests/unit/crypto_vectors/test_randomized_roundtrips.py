"""Randomized operations by round trip (QZMQ.md §10.2, §9.1)."""

from __future__ import annotations

import os

import pytest
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives.asymmetric import mldsa
from cryptography.hazmat.primitives.asymmetric.mlkem import MLKEM768PrivateKey, MLKEM768PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

MLDSA = {
    44: (mldsa.MLDSA44PrivateKey, mldsa.MLDSA44PublicKey),
    65: (mldsa.MLDSA65PrivateKey, mldsa.MLDSA65PublicKey),
    87: (mldsa.MLDSA87PrivateKey, mldsa.MLDSA87PublicKey),
}


def test_mlkem768_encapsulate_decapsulate_roundtrip() -> None:
    sk = MLKEM768PrivateKey.from_seed_bytes(os.urandom(64))
    pk = MLKEM768PublicKey.from_public_bytes(sk.public_key().public_bytes_raw())
    ss1, ct1 = pk.encapsulate()
    ss2, ct2 = pk.encapsulate()
    assert (len(ss1), len(ct1)) == (32, 1088)
    assert ct1 != ct2 and ss1 != ss2  # fresh randomness per encapsulation
    assert sk.decapsulate(ct1) == ss1
    assert sk.decapsulate(ct2) == ss2
    # A tampered ciphertext decapsulates (implicit rejection) to an unrelated key.
    bad = bytes([ct1[0] ^ 1]) + ct1[1:]
    assert sk.decapsulate(bad) != ss1
    # Another key pair cannot recover the secret.
    assert MLKEM768PrivateKey.generate().decapsulate(ct1) != ss1


def test_mlkem768_seed_is_deterministic() -> None:
    seed = os.urandom(64)
    a = MLKEM768PrivateKey.from_seed_bytes(seed).public_key().public_bytes_raw()
    b = MLKEM768PrivateKey.from_seed_bytes(seed).public_key().public_bytes_raw()
    assert a == b and len(a) == 1184


@pytest.mark.parametrize("level", sorted(MLDSA))
def test_mldsa_sign_verify_with_context(level: int) -> None:
    priv_cls, pub_cls = MLDSA[level]
    seed = os.urandom(32)
    sk = priv_cls.from_seed_bytes(seed)
    pk = pub_cls.from_public_bytes(sk.public_key().public_bytes_raw())
    data = b"qzmq transcript hash stand-in" * 2
    sig = sk.sign(data, b"qzmq1 client auth")
    pk.verify(sig, data, b"qzmq1 client auth")
    with pytest.raises(InvalidSignature):
        pk.verify(sig, data, b"qzmq1 server auth")
    with pytest.raises(InvalidSignature):
        pk.verify(sig, data, None)
    with pytest.raises(InvalidSignature):
        pk.verify(sig, data + b"x", b"qzmq1 client auth")
    other = priv_cls.from_seed_bytes(bytes(32)).public_key()
    with pytest.raises(InvalidSignature):
        other.verify(sig, data, b"qzmq1 client auth")


@pytest.mark.parametrize("level", sorted(MLDSA))
def test_mldsa_signing_is_hedged(level: int) -> None:
    """Two signatures of the same data with the same key differ (QZMQ.md §9.1)."""
    priv_cls, _ = MLDSA[level]
    sk = priv_cls.from_seed_bytes(bytes(range(32)))
    s1 = sk.sign(b"same data", b"ctx")
    s2 = sk.sign(b"same data", b"ctx")
    assert s1 != s2
    sk.public_key().verify(s1, b"same data", b"ctx")
    sk.public_key().verify(s2, b"same data", b"ctx")


def test_x25519_roundtrip() -> None:
    a, b = X25519PrivateKey.generate(), X25519PrivateKey.generate()
    assert a.exchange(b.public_key()) == b.exchange(a.public_key())


def test_aes256gcm_roundtrip_and_tamper() -> None:
    key, nonce = AESGCM.generate_key(256), os.urandom(12)
    aead = AESGCM(key)
    ct = aead.encrypt(nonce, b"payload", b"aad")
    assert aead.decrypt(nonce, ct, b"aad") == b"payload"
    with pytest.raises(InvalidTag):
        aead.decrypt(nonce, ct, b"aaD")
    with pytest.raises(InvalidTag):
        aead.decrypt(nonce, ct[:-1] + bytes([ct[-1] ^ 1]), b"aad")
