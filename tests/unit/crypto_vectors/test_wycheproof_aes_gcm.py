"""Wycheproof AES-GCM, restricted to 256-bit keys, 96-bit IVs, 128-bit tags."""

from __future__ import annotations

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ._wycheproof import cases, h, load

NAME = "aes_gcm_test.json"


def test_file_shape() -> None:
    groups = load(NAME)["testGroups"]
    assert groups
    for g in groups:
        assert (g["keySize"], g["ivSize"], g["tagSize"]) == (256, 96, 128)


@pytest.mark.parametrize(("group", "test"), cases(NAME))
def test_aes_256_gcm(group: dict, test: dict) -> None:
    key, iv, aad = h(test["key"]), h(test["iv"]), h(test["aad"])
    msg, ct, tag = h(test["msg"]), h(test["ct"]), h(test["tag"])
    aead = AESGCM(key)
    if test["result"] == "valid":
        assert aead.encrypt(iv, msg, aad) == ct + tag
        assert aead.decrypt(iv, ct + tag, aad) == msg
    else:
        assert test["result"] == "invalid"
        with pytest.raises(InvalidTag):
            aead.decrypt(iv, ct + tag, aad)
