"""Wycheproof X25519 (testvectors_v1/x25519_test.json, complete)."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from ._wycheproof import cases, h, load

NAME = "x25519_test.json"


def test_file_shape() -> None:
    d = load(NAME)
    assert d["algorithm"] == "XDH"
    assert all(g["curve"] == "curve25519" for g in d["testGroups"])
    assert sum(len(g["tests"]) for g in d["testGroups"]) == d["numberOfTests"]


@pytest.mark.parametrize(("group", "test"), cases(NAME))
def test_x25519(group: dict, test: dict) -> None:
    priv = X25519PrivateKey.from_private_bytes(h(test["private"]))
    pub = X25519PublicKey.from_public_bytes(h(test["public"]))
    shared = h(test["shared"])
    assert test["result"] in ("valid", "acceptable")
    if shared == bytes(32):
        # Low-order / zero-shared-secret cases: cryptography refuses an all-zero
        # result (QZMQ.md §3.4 step 5 relies on this ValueError).
        with pytest.raises(ValueError):
            priv.exchange(pub)
    else:
        assert priv.exchange(pub) == shared
