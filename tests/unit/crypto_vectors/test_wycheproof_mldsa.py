"""Wycheproof ML-DSA-44/65/87: key generation from seeds, verification with context.

cryptography's sign() is hedged with no way to inject rnd, so deterministic signing
known answers cannot be checked; instead every signature of the sign files is
verified (with message and context, or with μ for the NIST 'Internal' cases), μ is
recomputed with MLDSAMuHasher, and signing is tested by round trip in
test_randomized_roundtrips.
"""

from __future__ import annotations

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import mldsa

from ._wycheproof import cases, h, load

ALGS = {
    44: (mldsa.MLDSA44PrivateKey, mldsa.MLDSA44PublicKey, 1312, 2420),
    65: (mldsa.MLDSA65PrivateKey, mldsa.MLDSA65PublicKey, 1952, 3309),
    87: (mldsa.MLDSA87PrivateKey, mldsa.MLDSA87PublicKey, 2592, 4627),
}


def _params(kind: str) -> list:
    out = []
    for level in ALGS:
        for p in cases(f"mldsa_{level}_{kind}_test.json"):
            group, test = p.values
            out.append(pytest.param(level, group, test, id=f"{level}-{p.id}"))
    return out


def test_file_shapes() -> None:
    for level in ALGS:
        for kind in ("verify", "sign_seed"):
            d = load(f"mldsa_{level}_{kind}_test.json")
            assert d["algorithm"] == f"ML-DSA-{level}"
            assert d["testGroups"]
    # Context coverage: empty, non-empty, 255-byte, and refused 256-byte contexts.
    ctx_lens = {
        len(h(t["ctx"])) for g in load("mldsa_65_verify_test.json")["testGroups"] for t in g["tests"] if "ctx" in t
    }
    assert {0, 7, 255, 256} <= ctx_lens


@pytest.mark.parametrize(("level", "group", "test"), _params("verify"))
def test_verify(level: int, group: dict, test: dict) -> None:
    _, pub_cls, pk_len, _ = ALGS[level]
    pk_bytes, msg, sig = h(group["publicKey"]), h(test["msg"]), h(test["sig"])
    ctx = h(test["ctx"]) if "ctx" in test else None
    if test["result"] == "valid":
        pub_cls.from_public_bytes(pk_bytes).verify(sig, msg, ctx)
        return
    assert test["result"] == "invalid"
    if len(pk_bytes) != pk_len:
        with pytest.raises(ValueError):
            pub_cls.from_public_bytes(pk_bytes)
        return
    pk = pub_cls.from_public_bytes(pk_bytes)
    if ctx is not None and len(ctx) > 255:
        with pytest.raises(ValueError):
            pk.verify(sig, msg, ctx)
    else:
        with pytest.raises(InvalidSignature):
            pk.verify(sig, msg, ctx)


@pytest.mark.parametrize(("level", "group", "test"), _params("sign_seed"))
def test_keygen_from_seed_and_signatures(level: int, group: dict, test: dict) -> None:
    priv_cls, pub_cls, pk_len, sig_len = ALGS[level]
    seed = h(group["privateSeed"])
    if len(seed) != 32:
        assert test["result"] == "invalid"
        with pytest.raises(ValueError):
            priv_cls.from_seed_bytes(seed)
        return
    sk = priv_cls.from_seed_bytes(seed)
    pk_bytes = sk.public_key().public_bytes_raw()
    assert pk_bytes == h(group["publicKey"])
    assert len(pk_bytes) == pk_len
    assert sk.private_bytes_raw() == seed
    pk = pub_cls.from_public_bytes(pk_bytes)
    ctx = h(test["ctx"]) if "ctx" in test else None
    if test["result"] == "invalid":
        # The only invalid signing case with a valid seed: a 256-byte context.
        assert ctx is not None and len(ctx) > 255
        with pytest.raises(ValueError):
            sk.sign(h(test["msg"]), ctx)
        return
    sig = h(test["sig"])
    assert len(sig) == sig_len
    if "msg" in test:
        msg = h(test["msg"])
        pk.verify(sig, msg, ctx)
        hasher = mldsa.MLDSAMuHasher(pk, ctx)
        hasher.update(msg)
        assert hasher.finalize() == h(test["mu"])
    pk.verify_mu(sig, h(test["mu"]))
