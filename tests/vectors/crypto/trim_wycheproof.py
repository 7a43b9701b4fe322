"""Reproduce the trimmed Wycheproof copies in this directory.

Usage: python trim_wycheproof.py /path/to/wycheproof/testvectors_v1 OUTDIR

Only selects test groups / test cases; every value kept is copied verbatim from the
upstream file (see README.md for the source commit).  Files not listed in TRIM are
copied byte for byte.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

VERBATIM = [
    "x25519_test.json",
    "hkdf_sha384_test.json",
    "hmac_sha384_test.json",
]


def _aes_gcm(d: dict) -> dict:
    d["testGroups"] = [g for g in d["testGroups"] if g["keySize"] == 256 and g["ivSize"] == 96]
    return d


def _first(n: int):
    def f(d: dict) -> dict:
        for g in d["testGroups"]:
            g["tests"] = g["tests"][:n]
        return d

    return f


def _mlkem_decaps(d: dict) -> dict:
    # Keep the first 25 of the 100 "official round 3 seeds" cases, everything else.
    for g in d["testGroups"]:
        g["tests"] = [
            t
            for t in g["tests"]
            if not t.get("comment", "").startswith("Test vector based on official round 3")
            or int(t["comment"].rsplit(" ", 1)[1]) < 25
        ]
    return d


def _mlkem_encaps(d: dict) -> dict:
    for g in d["testGroups"]:
        kept, seen = [], {}
        for t in g["tests"]:
            c = t.get("comment", "")
            key = "round3" if c.startswith("Test vector based on official round 3") else c
            seen[key] = seen.get(key, 0) + 1
            if key in ("round3", "Public key not reduced") and seen[key] > 25:
                continue
            kept.append(t)
        g["tests"] = kept
    return d


def _mldsa_verify(d: dict) -> dict:
    # Keep every test with a context and at most 2 tests per (result, flags) class in
    # each group, so that every kind of valid and invalid case stays represented.
    for g in d["testGroups"]:
        kept, seen = [], {}
        for t in g["tests"]:
            key = (t["result"], tuple(t.get("flags", [])))
            seen[key] = seen.get(key, 0) + 1
            if "ctx" in t or seen[key] <= 2:
                kept.append(t)
        g["tests"] = kept
    return d


def _mldsa_sign_seed(d: dict) -> dict:
    for g in d["testGroups"]:
        kept = [t for i, t in enumerate(g["tests"]) if i < 1 or "ctx" in t]
        g["tests"] = kept
    return d


TRIM = {
    "aes_gcm_test.json": _aes_gcm,
    "mlkem_768_test.json": _mlkem_decaps,
    "mlkem_768_keygen_seed_test.json": _first(25),
    "mlkem_768_encaps_test.json": _mlkem_encaps,
    **{f"mldsa_{k}_verify_test.json": _mldsa_verify for k in (44, 65, 87)},
    **{f"mldsa_{k}_sign_seed_test.json": _mldsa_sign_seed for k in (44, 65, 87)},
}


def main(src: Path, out: Path) -> None:
    for name in VERBATIM:
        shutil.copyfile(src / name, out / name)
    for name, fn in TRIM.items():
        d = json.loads((src / name).read_text())
        d = fn(d)
        d["numberOfTests"] = sum(len(g["tests"]) for g in d["testGroups"])
        (out / name).write_text(json.dumps(d, indent=2) + "\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
