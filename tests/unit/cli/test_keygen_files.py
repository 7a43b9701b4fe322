"""`qfix keygen` writes each key file whole or not at all, and never leaves half a pair."""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from click.testing import CliRunner, Result

from qfix.cli import main
from qfix.crypto import KeyFileError, SignatureAlg, generate_signing_key, keys, load_private_key, load_public_key


def _keygen(out: Path) -> Result:
    return CliRunner().invoke(main, ["keygen", "--role", "client", "--out", str(out)])


def _patch_os(monkeypatch: pytest.MonkeyPatch, **replacements: Callable[..., Any]) -> None:
    """Replace functions of ``os`` as seen by qfix.crypto.keys only."""
    names = {name: getattr(os, name) for name in dir(os)}
    names.update(replacements)
    monkeypatch.setattr(keys, "os", SimpleNamespace(**names))


def _fail_on_call(n: int, real: Callable[..., Any], exc: OSError) -> Callable[..., Any]:
    calls = 0

    def fn(*args: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == n:
            raise exc
        return real(*args)

    return fn


def test_keygen_writes_both_files_with_their_modes(tmp_path: Path) -> None:
    out = tmp_path / "client"
    result = _keygen(out)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["client", "client.pub"]  # no temporary left
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "client.pub").stat().st_mode) == 0o644
    assert load_public_key(tmp_path / "client.pub").kid == load_private_key(out).kid


def test_failure_while_writing_the_private_key_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def short_write(fd: int, data: Any) -> int:
        os.write(fd, bytes(data[:10]))  # part of the seed reaches the disk, then the disk is full
        raise OSError(errno.ENOSPC, "No space left on device")

    _patch_os(monkeypatch, write=short_write)
    result = _keygen(tmp_path / "client")
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1 and "No space left on device" in result.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("call", [1, 2])
def test_fsync_failure_on_either_file_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, call: int
) -> None:
    fail = _fail_on_call(call, os.fsync, OSError(errno.EIO, "Input/output error"))

    def fsync(fd: int) -> None:  # count the files' fsyncs, not the folder's
        return fail(fd) if stat.S_ISREG(os.fstat(fd).st_mode) else os.fsync(fd)

    _patch_os(monkeypatch, fsync=fsync)
    result = _keygen(tmp_path / "client")
    assert result.exit_code == 1 and "Input/output error" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_failure_on_the_public_key_removes_the_private_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _patch_os(monkeypatch, link=_fail_on_call(2, os.link, OSError(errno.EDQUOT, "Disk quota exceeded")))
    result = _keygen(tmp_path / "client")
    assert result.exit_code == 1 and "client.pub: cannot create: Disk quota exceeded" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_file_system_without_hard_links_falls_back_to_rename(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_links(*args: Any) -> None:
        raise OSError(errno.EPERM, "Operation not permitted")

    _patch_os(monkeypatch, link=no_links)
    result = _keygen(tmp_path / "client")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["client", "client.pub"]
    assert stat.S_IMODE((tmp_path / "client").stat().st_mode) == 0o600
    assert load_public_key(tmp_path / "client.pub").kid == load_private_key(tmp_path / "client").kid


def test_an_existing_public_file_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    (tmp_path / "client.pub").write_text("keep me")
    result = _keygen(tmp_path / "client")
    assert result.exit_code == 1 and "client.pub: already exists" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["client.pub"]
    assert (tmp_path / "client.pub").read_text() == "keep me"


def test_a_file_appearing_while_writing_is_not_overwritten(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "k"

    def racing_fsync(fd: int) -> None:
        os.fsync(fd)
        if not target.exists():
            target.write_text("someone else's")

    _patch_os(monkeypatch, fsync=racing_fsync)
    with pytest.raises(KeyFileError, match="already exists"):
        keys.write_private_key(target, generate_signing_key(SignatureAlg.ML_DSA_44))
    assert target.read_text() == "someone else's"
    assert [p.name for p in tmp_path.iterdir()] == ["k"]


def test_a_symlink_in_the_way_is_refused(tmp_path: Path) -> None:
    (tmp_path / "elsewhere").write_text("x")
    (tmp_path / "k").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(KeyFileError, match="already exists"):
        keys.write_key_pair(tmp_path / "k", generate_signing_key(SignatureAlg.ML_DSA_44))
    assert (tmp_path / "elsewhere").read_text() == "x"
