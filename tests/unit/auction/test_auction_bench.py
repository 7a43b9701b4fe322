"""`qfix bench auction` on a small book: every backend that loads is measured and checked
against the cpu reference (the array determination and the engine's own uncross), and a
backend named but missing fails by name."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from qfix.cli import main
from qfix.engine.backends import availability


@pytest.mark.benchmark
def test_bench_auction_small_book(tmp_path: Path) -> None:
    out = tmp_path / "auction.json"
    args = ["bench", "auction", "--quick", "--instruments", "300", "--orders", "20000", "--json", str(out), "-q"]
    result = CliRunner().invoke(main, [*args, "--plot", str(tmp_path / "auction.png")])
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text())
    names = {r["name"] for r in doc["results"]}
    loaded = [name for name, why_not in availability().items() if why_not is None]
    for backend in loaded:
        for figure in (
            "determine_ms",
            "transfer_ms",
            "batch_match_ms",
            "batch_match_orders_per_s",
            "first_call_ms",
            "uncross_ms",
            "orders_per_s",
            "uncross_records",
        ):
            assert f"{backend}.{figure}" in names
    results = {r["name"]: r for r in doc["results"]}
    # every order of the book takes part; about half of them trade, each fill writing 5 records
    assert results["cpu.uncross_records"]["value"] > 20_000
    assert "not_reported" not in doc
    assert doc["workloads"]["auction"]["orders"] == 20000
    assert (tmp_path / "auction.png").stat().st_size > 0
    assert {n for n, _ in doc["sweep"]["series"]["cpu"]} == {10_000, 20_000, 100_000}


def test_bench_auction_named_backend_missing() -> None:
    missing = [name for name, why_not in availability().items() if why_not is not None]
    if not missing:
        pytest.skip("every backend loads here")
    result = CliRunner().invoke(main, ["bench", "auction", "--backend", missing[0], "--quick", "-q"])
    assert result.exit_code != 0
    assert f"--backend {missing[0]}:" in result.output
