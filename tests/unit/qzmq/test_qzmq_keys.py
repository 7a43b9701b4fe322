"""Key files, allow-list and ``qfix keygen``: every refusal of the key-file rules."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from qfix.cli import main
from qfix.crypto import (
    KeyFileError,
    SignatureAlg,
    generate_signing_key,
    load_allow_list,
    load_private_key,
    load_public_key,
    parse_allow_list,
    render_allow_entry,
    write_private_key,
    write_public_key,
)
from qfix.crypto import primitives as prim


@pytest.fixture(scope="module")
def key65():  # type: ignore[no-untyped-def]
    return generate_signing_key(SignatureAlg.ML_DSA_65)


def test_roundtrip_all_algs(tmp_path: Path) -> None:
    for alg in SignatureAlg:
        k = generate_signing_key(alg)
        write_private_key(tmp_path / alg.label, k)
        write_public_key(tmp_path / (alg.label + ".pub"), k)
        assert stat.S_IMODE(os.stat(tmp_path / alg.label).st_mode) == 0o600
        loaded = load_private_key(tmp_path / alg.label)
        assert (loaded.alg, loaded.public, loaded.kid, loaded.seed) == (alg, k.public, k.kid, k.seed)
        pub = load_public_key(tmp_path / (alg.label + ".pub"))
        assert pub.kid == k.kid == prim.kid(k.public)
        assert len(k.public) == alg.public_key_len


def test_never_overwrites(tmp_path: Path, key65) -> None:  # type: ignore[no-untyped-def]
    write_private_key(tmp_path / "k", key65)
    with pytest.raises(KeyFileError, match="already exists"):
        write_private_key(tmp_path / "k", key65)


def _text(k, *, with_seed: bool = True, **over: str) -> str:  # type: ignore[no-untyped-def]
    fields = {"format": "qzmq-key-1", "alg": k.alg.label, "kid": k.kid.hex(), "public": k.public.hex()}
    if with_seed:
        fields["seed"] = k.seed.hex()
    fields.update(over)
    return "".join(f'{a} = "{b}"\n' for a, b in fields.items() if b != "<drop>")


def _write(path: Path, text: str, mode: int = 0o600) -> Path:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    os.write(fd, text.encode())
    os.close(fd)
    os.chmod(path, mode)  # umask-independent, for the test only
    return path


@pytest.mark.parametrize(
    ("over", "match"),
    [
        ({"format": "qzmq-key-2"}, "format"),
        ({"alg": "ML-DSA-99"}, "unknown signature algorithm"),
        ({"alg": "ML-DSA-44"}, "public is 1952 bytes, expected 1312"),
        ({"kid": "00" * 16}, "kid does not match"),
        ({"kid": "00" * 15}, "kid is 15 bytes"),
        ({"seed": "00" * 32}, "seed does not produce"),
        ({"seed": "00" * 31}, "seed is 31 bytes"),
        ({"seed": "<drop>"}, "missing key"),
        ({"extra": "1"}, "unknown key"),
        ({"public": "zz"}, "lowercase hex"),
    ],
)
def test_private_refusals(tmp_path: Path, key65, over: dict[str, str], match: str) -> None:  # type: ignore[no-untyped-def]
    p = _write(tmp_path / "k", _text(key65, **over))
    with pytest.raises(KeyFileError, match=match):
        load_private_key(p)


def test_uppercase_hex_and_corrupt_toml(tmp_path: Path, key65) -> None:  # type: ignore[no-untyped-def]
    p = _write(tmp_path / "a", _text(key65, public=key65.public.hex().upper()))
    with pytest.raises(KeyFileError, match="lowercase hex"):
        load_private_key(p)
    p = _write(tmp_path / "b", "format = ")
    with pytest.raises(KeyFileError, match="not valid TOML"):
        load_private_key(p)
    p = _write(tmp_path / "c", b"\xff\xfe".decode("latin-1"))
    with pytest.raises(KeyFileError):
        load_private_key(p)


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o610, 0o601])
def test_private_permissions(tmp_path: Path, key65, mode: int) -> None:  # type: ignore[no-untyped-def]
    p = _write(tmp_path / "k", _text(key65), mode)
    with pytest.raises(KeyFileError, match="group or others"):
        load_private_key(p)


def test_private_symlink_and_not_regular(tmp_path: Path, key65) -> None:  # type: ignore[no-untyped-def]
    p = _write(tmp_path / "k", _text(key65))
    (tmp_path / "link").symlink_to(p)
    with pytest.raises(KeyFileError, match="cannot open"):
        load_private_key(tmp_path / "link")
    (tmp_path / "dir").mkdir(mode=0o700)
    with pytest.raises(KeyFileError):
        load_private_key(tmp_path / "dir")
    os.mkfifo(tmp_path / "fifo", 0o600)
    with pytest.raises(KeyFileError, match="not a regular file"):
        load_private_key(tmp_path / "fifo")


def test_private_wrong_owner(tmp_path: Path, key65, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    p = _write(tmp_path / "k", _text(key65))
    monkeypatch.setattr(os, "geteuid", lambda: os.stat(p).st_uid + 1)
    with pytest.raises(KeyFileError, match="owned by uid"):
        load_private_key(p)


def test_public_rules(tmp_path: Path, key65) -> None:  # type: ignore[no-untyped-def]
    p = _write(tmp_path / "p", _text(key65, with_seed=False), 0o664)
    with pytest.raises(KeyFileError, match="group or others write"):
        load_public_key(p)
    q = _write(tmp_path / "q", _text(key65, with_seed=False), 0o644)
    assert load_public_key(q, alg=SignatureAlg.ML_DSA_65).kid == key65.kid
    with pytest.raises(KeyFileError, match="expected ML-DSA-44"):
        load_public_key(q, alg=SignatureAlg.ML_DSA_44)
    r = _write(tmp_path / "r", _text(key65), 0o600)
    with pytest.raises(KeyFileError, match="private seed"):
        load_public_key(r)
    # a corrupt (but right-sized, right-kid) public key body
    bad = bytes(len(key65.public))
    s = _write(tmp_path / "s", _text(key65, with_seed=False, public=bad.hex(), kid=prim.kid(bad).hex()), 0o644)
    try:
        load_public_key(s)
    except KeyFileError as exc:
        assert "corrupt" in str(exc)


def test_allow_list(tmp_path: Path) -> None:
    a = generate_signing_key(SignatureAlg.ML_DSA_44)
    b = generate_signing_key(SignatureAlg.ML_DSA_87)
    text = render_allow_entry(a, [1001, 1002]) + render_allow_entry(b.verify_key(), [7])
    p = _write(tmp_path / "allow.toml", text, 0o644)
    al = load_allow_list(p)
    assert al[a.kid].accounts == (1001, 1002) and al[b.kid].alg is SignatureAlg.ML_DSA_87
    os.chmod(p, 0o666)
    with pytest.raises(KeyFileError, match="group or others write"):
        load_allow_list(p)


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda t, e: t + e, "appears twice"),
        (lambda t, e: t.replace("accounts = [1001, 1002]", "accounts = []"), "non-empty"),
        (lambda t, e: t.replace("1002]", "4294967295]"), "null"),
        (lambda t, e: t.replace("1002]", "-1]"), "outside"),
        (lambda t, e: t.replace("1002]", "1001]"), "listed twice"),
        (lambda t, e: t.replace("1002]", "true]"), "not an integer"),
        (lambda t, e: t.replace("accounts = [1001, 1002]\n", ""), "missing key"),
        (lambda t, e: "x = 1\n" + t, "unknown top-level"),
        (lambda t, e: t.replace('format = "qzmq-key-1"', 'format = "x"'), "format"),
    ],
)
def test_allow_list_refusals(mutate, match: str) -> None:  # type: ignore[no-untyped-def]
    a = generate_signing_key(SignatureAlg.ML_DSA_44)
    entry = render_allow_entry(a, [1001, 1002])
    with pytest.raises(KeyFileError, match=match):
        parse_allow_list(mutate(entry, entry))


def test_allow_list_same_public_twice_refused_whole() -> None:
    a = generate_signing_key(SignatureAlg.ML_DSA_44)
    b = generate_signing_key(SignatureAlg.ML_DSA_44)
    text = render_allow_entry(a, [1]) + render_allow_entry(b, [2]) + render_allow_entry(a, [3])
    with pytest.raises(KeyFileError, match="twice"):
        parse_allow_list(text)


def test_keygen_cli(tmp_path: Path) -> None:
    """Through the ``qfix`` group, which reports a refused key file as one line."""
    runner = CliRunner()
    out = tmp_path / "srv"
    res = runner.invoke(main, ["keygen", "--role", "server", "--out", str(out)])
    assert res.exit_code == 0, res.output
    k = load_private_key(out)
    assert k.alg is SignatureAlg.ML_DSA_65
    assert f"kid     {k.kid.hex()}" in res.output
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    assert load_public_key(str(out) + ".pub").kid == k.kid
    res = runner.invoke(main, ["keygen", "--role", "server", "--out", str(out)])
    assert res.exit_code != 0 and "already exists" in res.output
    res = runner.invoke(main, ["keygen", "--role", "server", "--alg", "ML-DSA-44", "--out", str(tmp_path / "x")])
    assert res.exit_code != 0 and "ML-DSA-65" in res.output
    res = runner.invoke(main, ["keygen", "--alg", "ML-DSA-87", "--account", "5", "--out", str(tmp_path / "c")])
    assert res.exit_code == 0, res.output
    entry = res.output.split("allow-list entry:\n", 1)[1]
    assert parse_allow_list(entry)[load_private_key(tmp_path / "c").kid].accounts == (5,)
