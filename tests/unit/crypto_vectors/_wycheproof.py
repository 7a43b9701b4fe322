"""Loading helpers for the trimmed Wycheproof files in tests/vectors/crypto/."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest

VECTOR_DIR = Path(__file__).resolve().parents[2] / "vectors" / "crypto"


@cache
def load(name: str) -> dict[str, Any]:
    with open(VECTOR_DIR / name, encoding="utf-8") as f:
        data: dict[str, Any] = json.load(f)
    return data


def cases(name: str) -> list[Any]:
    """One pytest.param per test case: (group, test), id 'tcN'."""
    out = []
    for group in load(name)["testGroups"]:
        for test in group["tests"]:
            out.append(pytest.param(group, test, id=f"tc{test['tcId']}"))
    assert out, f"no test cases in {name}"
    return out


def h(s: str) -> bytes:
    return bytes.fromhex(s)
