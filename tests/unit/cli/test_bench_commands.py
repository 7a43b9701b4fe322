"""`qfix bench`: output paths are checked before any measuring; bad documents fail cleanly."""

from __future__ import annotations

import importlib
import json
import threading
from io import StringIO
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from rich.console import Console

from qfix.bench import _common
from qfix.cli import main
from qfix.errors import OutputPathError

COMMANDS = ["wire", "engine", "qzmq", "paths", "journal"]


def _no_measuring(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    def run(*args: object, **kwargs: object) -> _common.Report:
        raise AssertionError("the benchmark ran although an output path is unusable")

    monkeypatch.setattr(importlib.import_module(f"qfix.bench.{name}"), "run", run)


def _one_error_line(result: Result) -> str:
    assert result.exit_code == 1, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert "Traceback" not in result.output
    return lines[0]


@pytest.mark.parametrize("name", COMMANDS)
@pytest.mark.parametrize("option", ["--json", "--plot"])
def test_unwritable_output_fails_before_measuring(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, option: str
) -> None:
    _no_measuring(monkeypatch, name)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    target = blocker / "out" / "result.json"
    line = _one_error_line(CliRunner().invoke(main, ["bench", name, "--quick", option, str(target)]))
    assert option in line and str(target) in line and "cannot create the folder" in line


@pytest.mark.parametrize("name", COMMANDS)
def test_a_folder_is_not_an_output_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    _no_measuring(monkeypatch, name)
    result = CliRunner().invoke(main, ["bench", name, "--quick", "--json", str(tmp_path)])
    assert result.exit_code == 2 and "is a directory" in result.stderr  # click's usage error
    with pytest.raises(OutputPathError, match="is a folder"):
        _common.check_output_path(tmp_path, "--json")


def test_engine_streams_folder_is_checked_before_measuring(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _no_measuring(monkeypatch, "engine")
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    args = ["bench", "engine", "--quick", "--workload", "insert", "--streams", str(blocker / "streams")]
    line = _one_error_line(CliRunner().invoke(main, args))
    assert "--streams" in line and "insert-quick-seed1.qfs" in line


def test_check_output_path_creates_folders_and_keeps_existing_files(tmp_path: Path) -> None:
    target = tmp_path / "new" / "deeper" / "wire.json"
    assert _common.check_output_path(target, "--json") == target
    assert target.parent.is_dir() and list(target.parent.iterdir()) == []  # the probe is gone
    target.write_text("old figures")
    _common.check_output_path(target, "--json")
    assert target.read_text() == "old figures"


def test_check_output_path_refuses_a_read_only_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "wire.json"
    target.write_text("{}")

    def refuse(*args: object, **kwargs: object) -> object:
        raise PermissionError(13, "Permission denied", str(target))

    monkeypatch.setattr("builtins.open", refuse)  # root may write anywhere: simulate the refusal
    with pytest.raises(OutputPathError, match=r"--json .*wire.json: cannot write there: Permission denied"):
        _common.check_output_path(target, "--json")


def _tiny_report() -> _common.Report:
    report = _common.Report("wire", True)
    report.add(_common.from_samples("decode.batch1.msgs_per_s", [1.0, 2.0, 3.0], "msgs/s"))
    return report


def test_document_is_written_before_the_plot(tmp_path: Path) -> None:
    def failing_plot(report: _common.Report, path: str) -> None:
        raise OSError(28, "No space left on device", path)

    out = tmp_path / "wire.json"
    with pytest.raises(OSError):
        _common.finish(_tiny_report(), str(out), str(tmp_path / "wire.png"), failing_plot)
    assert json.loads(out.read_text())["results"][0]["value"] == 2.0


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"not json at all", "not JSON: Expecting value at line 1 column 1"),
        (b"\xff\xfe binary", "not UTF-8"),
        (b"[1, 2]", "a JSON list, not an object"),
        (b'{"benchmark": "wire"}', 'no "results" list'),
        (b'{"results": [{"name": "x"}]}', "results[0] has no valid 'value'"),
        (b'{"results": [7]}', "results[0] is not an object"),
        (b'{"results": [], "machine": "laptop"}', '"machine" is not an object'),
    ],
)
def test_markdown_refuses_what_is_not_a_benchmark_document(tmp_path: Path, content: bytes, message: str) -> None:
    good = tmp_path / "good.json"
    _tiny_report().write_json(good)
    bad = tmp_path / "bad.json"
    bad.write_bytes(content)
    result = CliRunner().invoke(main, ["bench", "markdown", str(good), str(bad)])
    line = _one_error_line(result)
    assert str(bad) in line and message in line
    assert result.stdout == ""  # every file is checked before anything is printed


def test_markdown_renders_a_document(tmp_path: Path) -> None:
    doc = tmp_path / "wire.json"
    _tiny_report().write_json(doc)
    result = CliRunner().invoke(main, ["bench", "markdown", str(doc)])
    assert result.exit_code == 0, result.output
    assert "| `decode.batch1.msgs_per_s` | 2 | msgs/s | 1 | 3 | 3 |" in result.stdout


def test_markdown_compares_two_documents(tmp_path: Path) -> None:
    before, after = tmp_path / "before.json", tmp_path / "after.json"
    _tiny_report().write_json(before)
    doc = json.loads(before.read_text())
    doc["results"][0]["value"] = 4  # twice the before median
    after.write_text(json.dumps(doc))
    result = CliRunner().invoke(main, ["bench", "markdown", "--compare", str(before), str(after)])
    assert result.exit_code == 0, result.output
    assert "| `decode.batch1.msgs_per_s` | 2 | 4 | 2 | msgs/s |" in result.stdout
    one = CliRunner().invoke(main, ["bench", "markdown", "--compare", str(before)])
    assert one.exit_code == 2 and "exactly two documents" in one.output


# --- progress ----------------------------------------------------------------------------


def _terminal() -> tuple[Console, StringIO]:
    buffer = StringIO()
    return Console(file=buffer, force_terminal=True, width=120), buffer


def test_progress_is_drawn_only_when_asked_and_has_no_thread() -> None:
    console, buffer = _terminal()
    threads = set(threading.enumerate())
    with _common.Progress(3, console=console) as progress:
        assert progress.enabled
        for i in range(3):
            progress.step(f"timed run {i + 1}/3")
            assert set(threading.enumerate()) == threads  # nothing redraws on its own
    text = buffer.getvalue()
    assert "timed run 3/3" in text and "3/3" in text and "done" in text


@pytest.mark.parametrize("quiet", [True, False])
def test_progress_is_off_with_quiet_or_without_a_terminal(quiet: bool) -> None:
    buffer = StringIO()
    console = Console(file=buffer, force_terminal=quiet)  # quiet wins even on a terminal
    with _common.Progress(2, quiet=quiet, console=console) as progress:
        progress.step("one")
        progress.step("two")
    assert not progress.enabled and progress.steps == 2 and buffer.getvalue() == ""


def test_progress_goes_to_stderr_by_default() -> None:
    assert _common._progress_console().stderr
