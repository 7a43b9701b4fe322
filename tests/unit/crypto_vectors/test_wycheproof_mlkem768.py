"""Wycheproof ML-KEM-768: key generation from seeds, decapsulation, ek checks.

cryptography builds ML-KEM private keys only from the 64-byte seed d ‖ z and offers
no way to inject the encapsulation randomness m, so Encaps known answers cannot be
checked; the encaps file is used for the FIPS 203 encapsulation-key check (modulus
and length) and encapsulation is tested by round trip in test_randomized_roundtrips.
"""

from __future__ import annotations

import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric.mlkem import MLKEM768PrivateKey, MLKEM768PublicKey

from ._wycheproof import cases, h, load

DECAPS = "mlkem_768_test.json"
KEYGEN = "mlkem_768_keygen_seed_test.json"
ENCAPS = "mlkem_768_encaps_test.json"


def test_file_shapes() -> None:
    for name in (DECAPS, KEYGEN, ENCAPS):
        groups = load(name)["testGroups"]
        assert groups
        assert all(g["parameterSet"] == "ML-KEM-768" for g in groups)


@pytest.mark.parametrize(("group", "test"), cases(KEYGEN))
def test_keygen_from_seed(group: dict, test: dict) -> None:
    assert test["result"] == "valid"
    seed, ek, dk = h(test["seed"]), h(test["ek"]), h(test["dk"])
    sk = MLKEM768PrivateKey.from_seed_bytes(seed)
    assert sk.public_key().public_bytes_raw() == ek
    assert sk.private_bytes_raw() == seed
    # FIPS 203 dk = dk_PKE (1152) ‖ ek (1184) ‖ H(ek) (32) ‖ z (32); cryptography
    # cannot export dk, so check the parts that follow from ek and the seed.
    assert len(dk) == 2400
    assert dk[1152:2336] == ek
    assert dk[2336:2368] == hashlib.sha3_256(ek).digest()
    assert dk[2368:] == seed[32:]


@pytest.mark.parametrize(("group", "test"), cases(DECAPS))
def test_decapsulation(group: dict, test: dict) -> None:
    seed, c = h(test["seed"]), h(test["c"])
    if test["result"] == "invalid":
        # Wrong seed length or wrong ciphertext length: both refused.
        with pytest.raises(ValueError):
            MLKEM768PrivateKey.from_seed_bytes(seed).decapsulate(c)
        return
    sk = MLKEM768PrivateKey.from_seed_bytes(seed)
    assert sk.public_key().public_bytes_raw() == h(test["ek"])
    # Valid includes implicit rejection (random / bit-flipped ct): K is then the
    # rejection key, which must match exactly too.
    assert sk.decapsulate(c) == h(test["K"])


@pytest.mark.parametrize(("group", "test"), cases(ENCAPS))
def test_encapsulation_key_check(group: dict, test: dict) -> None:
    ek = h(test["ek"])
    if test["result"] == "invalid":
        # Unreduced coefficients (FIPS 203 §7.2 modulus check) and wrong lengths.
        with pytest.raises(ValueError):
            MLKEM768PublicKey.from_public_bytes(ek)
        return
    pk = MLKEM768PublicKey.from_public_bytes(ek)
    assert pk.public_bytes_raw() == ek
    ss, ct = pk.encapsulate()
    assert (len(ss), len(ct)) == (32, len(h(test["c"]))) == (32, 1088)
