"""Wycheproof HKDF-SHA-384 and HMAC-SHA-384 (complete files).

HKDF is checked both through cryptography's HKDF and through the split
Extract = HMAC(salt, IKM) / HKDFExpand that QZMQ.md §1 uses.
"""

from __future__ import annotations

import hashlib
import hmac as std_hmac

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as c_hmac
from cryptography.hazmat.primitives.kdf.hkdf import HKDF, HKDFExpand

from ._wycheproof import cases, h, load

HKDF_NAME = "hkdf_sha384_test.json"
HMAC_NAME = "hmac_sha384_test.json"


def test_file_shapes() -> None:
    assert load(HKDF_NAME)["algorithm"] == "HKDF-SHA-384"
    assert load(HMAC_NAME)["algorithm"] == "HMACSHA384"


@pytest.mark.parametrize(("group", "test"), cases(HKDF_NAME))
def test_hkdf_sha384(group: dict, test: dict) -> None:
    ikm, salt, info = h(test["ikm"]), h(test["salt"]), h(test["info"])
    size = test["size"]
    if test["result"] == "invalid":
        # The only invalid case class is an output longer than 255 * 48 bytes.
        assert size > 255 * 48
        with pytest.raises(ValueError):
            HKDF(hashes.SHA384(), size, salt, info).derive(ikm)
        with pytest.raises(ValueError):
            HKDFExpand(hashes.SHA384(), size, info)
        return
    okm = h(test["okm"])
    assert HKDF(hashes.SHA384(), size, salt, info).derive(ikm) == okm
    # RFC 5869: an empty salt means HashLen zero bytes.
    prk = std_hmac.new(salt or bytes(48), ikm, hashlib.sha384).digest()
    assert HKDFExpand(hashes.SHA384(), size, info).derive(prk) == okm


@pytest.mark.parametrize(("group", "test"), cases(HMAC_NAME))
def test_hmac_sha384(group: dict, test: dict) -> None:
    key, msg, tag = h(test["key"]), h(test["msg"]), h(test["tag"])
    n = group["tagSize"] // 8
    assert len(tag) == n or test["result"] == "invalid"
    full = std_hmac.new(key, msg, hashlib.sha384).digest()
    m = c_hmac.HMAC(key, hashes.SHA384())
    m.update(msg)
    assert m.finalize() == full
    if test["result"] == "valid":
        assert std_hmac.compare_digest(full[:n], tag)
        if n == 48:
            v = c_hmac.HMAC(key, hashes.SHA384())
            v.update(msg)
            v.verify(tag)
    else:
        assert not std_hmac.compare_digest(full[:n], tag)
        if n == 48:
            v = c_hmac.HMAC(key, hashes.SHA384())
            v.update(msg)
            with pytest.raises(InvalidSignature):
                v.verify(tag)
