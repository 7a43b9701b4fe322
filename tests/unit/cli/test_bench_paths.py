"""`qfix bench paths`: a tiny run reports every path; a path the engine no longer takes is refused."""

from __future__ import annotations

import dataclasses
import json
from io import StringIO
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from rich.console import Console

from qfix.bench import _common, paths
from qfix.bench.engine import _instruments
from qfix.cli import main
from qfix.errors import BenchmarkError
from qfix.wire import schema

TINY = ["--batch", "32", "--repeats", "1", "--requests", "3", "--mass-orders", "400", "--levels", "50"]


def _required() -> set[str]:
    names = {f"paths.{p}.{k}" for p in paths.RECORD_PATHS for k in ("ns_per_record", "out_per_record")}
    names |= {f"paths.call_overhead.{k}" for k in ("ns_per_call", "ns_per_record_batch", "fixed_ns")}
    for path, unit in (("mass_cancel_account", "request"), ("cancel_sessions", "call")):
        for book in ("", "_small_book"):
            names |= {f"paths.{path}{book}.us_per_{unit}", f"paths.{path}{book}.out_per_{unit}"}
        names.add(f"paths.{path}.large_over_small_book")
    return names


@pytest.mark.benchmark
def test_bench_paths_quick_writes_every_result_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shown = StringIO()
    monkeypatch.setattr(_common, "_progress_console", lambda: Console(file=shown, force_terminal=True, width=160))
    out, png = tmp_path / "paths.json", tmp_path / "paths.png"
    result = CliRunner().invoke(main, ["bench", "paths", "--quick", *TINY, "--json", str(out), "--plot", str(png)])
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text())
    names = [r["name"] for r in doc["results"]]
    assert set(names) == _required() and len(names) == len(set(names))
    assert doc["benchmark"] == "paths" and doc["quick"] is True
    assert "paths.mass_cancel_account.us_per_request" in names
    by_name = {r["name"]: r for r in doc["results"]}
    assert by_name["paths.reject.out_per_record"]["value"] == 1  # one ER Rejected each
    assert by_name["paths.ioc_one_trade.out_per_record"]["value"] >= 5  # ER New, 2 ER Trade, OrderExecuted, Trade
    setup = doc["paths"]
    assert setup["batch"] == 32 and setup["levels_per_side"] == 50 and setup["mass_orders"] == 400
    assert setup["engine_config"]["max_orders"] >= 100_000
    assert png.stat().st_size > 1000
    total = paths.steps(paths.sizes(True, batch=32, repeats=1, requests=3, mass_orders=400, levels=50))
    assert f"{total}/{total}" in shown.getvalue()


def _runner(sizes: paths.Sizes) -> paths._Runner:
    return paths._Runner(_instruments("mix"), paths.engine_config(sizes), np.zeros(1 << 14, schema.OUTPUT))


def test_a_path_the_engine_no_longer_takes_is_refused() -> None:
    sizes = paths.sizes(True, batch=16, repeats=1, requests=2, mass_orders=200, levels=20)
    scenarios = {sc.name: sc for sc in paths._record_scenarios(sizes)}
    runner = _runner(sizes)
    runner.once(scenarios["rest_existing_level"], None)  # as built, it passes
    # the same check over records that take another path (they are rejected, nothing rests)
    changed = dataclasses.replace(scenarios["rest_existing_level"], batch=scenarios["reject"].batch)
    with pytest.raises(BenchmarkError, match="rest_existing_level: ER New count is 0, expected 16"):
        runner.once(changed, None)


def test_the_book_must_be_the_same_before_every_repeat() -> None:
    sizes = paths.sizes(True, batch=16, repeats=1, requests=2, mass_orders=200, levels=20)
    cancel = next(sc for sc in paths._record_scenarios(sizes) if sc.name == "cancel")
    runner = _runner(sizes)
    _, digest = runner.once(cancel, None)
    assert runner.once(cancel, digest)[0].written > 0
    with pytest.raises(BenchmarkError, match="prepared book differs between repeats"):
        runner.once(cancel, bytes(16))


def test_sizes_a_path_cannot_honour_are_refused() -> None:
    result = CliRunner().invoke(main, ["bench", "paths", "--quick", "--levels", "10", "--batch", "64"])
    assert result.exit_code == 2 and "at most 18 records with 10 levels a side" in result.stderr


@pytest.mark.parametrize("variant", ["", "_small_book"])
def test_bulk_variants_take_their_own_path(variant: str) -> None:
    sizes = paths.sizes(True, batch=16, repeats=1, requests=2, mass_orders=200, levels=20)
    runner = _runner(sizes)
    mass = paths._bulk_scenario(sizes, "mass_cancel_account", variant, 300, 10)
    assert mass.name == "mass_cancel_account" + variant and not mass.sessions
    assert set(mass.batch.view(schema.INBOUND_ORDER_MASS_CANCEL_REQUEST)["templateId"].tolist()) == {4}
    cod = paths._bulk_scenario(sizes, "cancel_sessions", variant, 300, 11)
    assert cod.name == "cancel_sessions" + variant and cod.sessions == [0, 1] and len(cod.batch) == 0
    for sc in (mass, cod):
        runner.once(sc, None)  # each check passes on its own path
    swapped = dataclasses.replace(mass, batch=cod.batch, sessions=cod.sessions)
    with pytest.raises(BenchmarkError, match="OrderMassCancelReport count is 0, expected 2"):
        runner.once(swapped, None)
