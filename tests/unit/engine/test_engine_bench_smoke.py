"""`qfix bench engine` writes every result name BENCHMARKS.md requires (slow: minutes)."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path

import pytest
from click.testing import CliRunner
from rich.console import Console

from qfix.bench import _common, engine
from qfix.cli import main

REQUIRED = [f"{w}.{k}" for w in ("mix", "insert", "multi") for k in ("ops_per_s", "ns_per_op", "ops_per_s_hashed")] + [
    "single.p50_ns",
    "batch.p99_us",
    "bytes_per_resting_order",
    "warmup_cached_s",
    "warmup_cold_s",
    "reference_speedup",
]


@pytest.mark.benchmark
@pytest.mark.slow
def test_bench_engine_quick_writes_every_result_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shown = StringIO()
    monkeypatch.setattr(_common, "_progress_console", lambda: Console(file=shown, force_terminal=True, width=160))
    out = tmp_path / "engine.json"
    args = ["bench", "engine", "--quick", "--streams", str(tmp_path / "streams"), "--json", str(out)]
    args += ["--plot", str(tmp_path / "engine.png")]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text())
    names = {r["name"] for r in doc["results"]}
    assert set(REQUIRED) <= names
    assert doc["benchmark"] == "engine" and doc["quick"] is True
    assert set(doc["workloads"]) == {"mix", "insert", "multi"}
    assert (tmp_path / "engine.png").stat().st_size > 0
    total = engine.steps(["mix", "insert", "multi"], quick=True)
    assert f"{total}/{total}" in shown.getvalue()
