"""The `qfix` command: lazy subcommands, the demo, and the benchmarks' documents and progress."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path

import pytest
from click.testing import CliRunner
from rich.console import Console

from qfix.bench import _common
from qfix.cli import main


@pytest.fixture
def progress_display(monkeypatch: pytest.MonkeyPatch) -> StringIO:
    """What the benchmarks' progress display would draw on a terminal."""
    buffer = StringIO()
    monkeypatch.setattr(_common, "_progress_console", lambda: Console(file=buffer, force_terminal=True, width=160))
    return buffer


def test_help_lists_commands() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0, result.output
    assert "demo" in result.output and "bench" in result.output


def test_demo_shows_accepted_and_rejected_messages() -> None:
    result = CliRunner(env={"COLUMNS": "200"}).invoke(main, ["demo", "--frame"])
    assert result.exit_code == 0, result.output
    assert result.output.count("accepted") == 6
    assert "WrongSchema" in result.output and "NonzeroReserved" in result.output
    # the accepted messages were matched: a fill of the IOC buy against the resting sell
    assert "engine output" in result.output
    assert "OrderExecuted" in result.output and "TradeID=1" in result.output


@pytest.mark.benchmark
def test_bench_wire_quick_writes_every_result_name(tmp_path: Path, progress_display: StringIO) -> None:
    from qfix.bench.wire import STEPS

    out, png = tmp_path / "wire.json", tmp_path / "wire.png"
    result = CliRunner().invoke(main, ["bench", "wire", "--quick", "--json", str(out), "--plot", str(png)])
    assert result.exit_code == 0, result.output
    shown = progress_display.getvalue()
    assert "decode_validate, batch 10000" in shown and f"{STEPS}/{STEPS}" in shown
    doc = json.loads(out.read_text())
    names = {r["name"] for r in doc["results"]}
    required = {f"decode_validate.batch{b}.msgs_per_s" for b in (1, 100, 1000, 10000)} | {
        "encode.batch1000.msgs_per_s",
        "baseline.batch1000.msgs_per_s",
        "decode_validate_over_baseline.batch1000",
    }
    assert required <= names
    assert doc["benchmark"] == "wire" and doc["quick"] is True
    assert {"cpu", "cores", "python", "numpy", "numba", "qfix", "gpu"} <= set(doc["machine"])
    for r in doc["results"]:
        assert r["min"] <= r["value"] <= r["max"] and r["value"] > 0
    assert png.stat().st_size > 1000


@pytest.mark.benchmark
@pytest.mark.integration
def test_bench_qzmq_quick_writes_every_result_name(tmp_path: Path, progress_display: StringIO) -> None:
    from qfix.bench.qzmq import STEPS

    out = tmp_path / "qzmq.json"
    args = ["bench", "qzmq", "--quick", "--json", str(out), "--plot", str(tmp_path / "q.png")]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert f"{STEPS}/{STEPS}" in progress_display.getvalue()
    doc = json.loads(out.read_text())
    names = {r["name"] for r in doc["results"]}
    required = {
        "handshake.hybrid.per_s",
        "handshake.pq_only.per_s",
        "handshake.hybrid.wall_per_s",
        "handshake.pq_only.wall_per_s",
        "e2e.encrypted.orders_per_s",
        "e2e.plaintext.orders_per_s",
        "e2e.encrypted_over_plaintext",
        "wire_overhead_per_msg.batch1000",
    } | {f"record.batch{b}.encrypt_gbps" for b in (1, 64, 1000)}
    assert required <= names
    for r in doc["results"]:
        assert r["min"] <= r["value"] <= r["max"] and r["value"] > 0, r["name"]
