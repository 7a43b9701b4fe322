"""The `qfix` group is the one place where an expected failure becomes one line on stderr."""

from __future__ import annotations

import errno
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from qfix.cli import QfixGroup, main
from qfix.errors import ConfigError, QfixError


def _group(exc: BaseException) -> click.Group:
    group = QfixGroup(name="qfix", lazy={})

    @group.command()
    def boom() -> None:
        raise exc

    return group


def _one_error_line(stderr: str) -> str:
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("Error: ") and "Traceback" not in stderr
    return lines[0]


def test_qfix_error_becomes_one_line_and_exit_1() -> None:
    result = CliRunner().invoke(_group(ConfigError("EngineConfig.max_orders\nmust be positive")), ["boom"])
    assert result.exit_code == 1
    assert _one_error_line(result.stderr) == "Error: EngineConfig.max_orders must be positive"
    assert result.stdout == ""


def test_os_error_names_the_path() -> None:
    exc = FileNotFoundError(errno.ENOENT, "No such file or directory", "/nowhere/x.json")
    result = CliRunner().invoke(_group(exc), ["boom"])
    assert result.exit_code == 1
    assert _one_error_line(result.stderr) == "Error: /nowhere/x.json: No such file or directory"


def test_a_bug_keeps_its_exception() -> None:
    result = CliRunner().invoke(_group(ZeroDivisionError("bug")), ["boom"])
    assert isinstance(result.exception, ZeroDivisionError)


def test_broken_pipe_is_left_to_click() -> None:
    result = CliRunner().invoke(_group(BrokenPipeError(errno.EPIPE, "Broken pipe")), ["boom"])
    assert "Broken pipe" not in result.stderr


def test_usage_errors_keep_clicks_exit_status() -> None:
    result = CliRunner().invoke(main, ["bench", "wire", "--no-such-option"])
    assert result.exit_code == 2 and "No such option" in result.stderr


def test_errors_from_nested_commands_are_caught_by_the_root(tmp_path: Path) -> None:
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("x")
    result = CliRunner().invoke(main, ["keygen", "--out", str(not_a_folder / "key")])
    assert result.exit_code == 1
    assert str(not_a_folder / "key") in _one_error_line(result.stderr)


def test_qfix_error_subclass_message_only_shape() -> None:
    class ServerError(QfixError):
        """What the lead's qfix.server errors will look like."""

    result = CliRunner().invoke(_group(ServerError("port 5555 in use")), ["boom"])
    assert _one_error_line(result.stderr) == "Error: port 5555 in use"


def _python_m(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "qfix", *args], capture_output=True, text=True, timeout=120, check=False, cwd=cwd
    )


def test_python_m_qfix_help(tmp_path: Path) -> None:
    done = _python_m("--help", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Usage: qfix ") and "keygen" in done.stdout and "bench" in done.stdout


@pytest.mark.parametrize("out", ["missing-folder/key", "file/key"])
def test_python_m_qfix_fails_cleanly(tmp_path: Path, out: str) -> None:
    (tmp_path / "file").write_text("x")
    done = _python_m("keygen", "--out", str(tmp_path / out), cwd=tmp_path)
    assert done.returncode == 1
    assert "cannot create" in _one_error_line(done.stderr)
    assert list(tmp_path.iterdir()) == [tmp_path / "file"]
