"""`qfix bench journal`: a tiny run reports every result name, positive; the tail tiling is exact."""

from __future__ import annotations

import json
import math
from io import StringIO
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from rich.console import Console

from qfix.bench import _common, journal
from qfix.cli import main

TAIL = 20_000
REQUIRED = {
    "append.msgs_per_s",
    "append_batch_async.msgs_per_s",
    "append_none.msgs_per_s",
    "replay.msgs_per_s",
    "engine.msgs_per_s",
    "replay_over_engine",
    f"restart_s@{TAIL}",
    f"restart.build_s@{TAIL}",
    "replay_driver.msgs_per_s",
    "read.msgs_per_s",
    "live_fsync.msgs_per_s",
    "live_none.msgs_per_s",
    "live_fsync_over_engine",
}


@pytest.mark.benchmark
def test_bench_journal_tiny_run_reports_every_result_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shown = StringIO()
    monkeypatch.setattr(_common, "_progress_console", lambda: Console(file=shown, force_terminal=True, width=160))
    out, png, parent = tmp_path / "journal.json", tmp_path / "journal.png", tmp_path / "journals"
    args = [
        "bench", "journal", "--quick", "--messages", "4000", "--tail", str(TAIL),
        "--streams", str(tmp_path / "streams"), "--journal-dir", str(parent), "--json", str(out), "--plot", str(png),
    ]  # fmt: skip
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text())
    assert doc["benchmark"] == "journal" and doc["quick"] is True
    values = {r["name"]: r for r in doc["results"]}
    assert set(values) >= REQUIRED, REQUIRED - set(values)
    for r in doc["results"]:
        assert math.isfinite(r["value"]) and 0 < r["min"] <= r["value"] <= r["max"], r
        assert r["repeats"] == (1 if r["name"].startswith("restart.build_s") else 3), r
    assert doc["restart"]["tail_messages"] == TAIL and doc["restart"]["copies_of_the_stream"] == 4
    assert doc["restart"]["replayed_records"] == doc["workload"]["sessions"] + math.ceil(TAIL / 1000)
    assert doc["journal_filesystem"]["type"] != "unknown" and doc["workload"]["blake2b"]
    assert list(parent.iterdir()) == []  # the temporary journals are gone
    assert png.stat().st_size > 1000
    total = journal.steps(quick=True)
    assert f"{total}/{total}" in shown.getvalue()


def test_journal_dir_is_checked_before_measuring(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def run(*args: object, **kwargs: object) -> None:
        raise AssertionError("the benchmark ran although the journal folder is unusable")

    monkeypatch.setattr(journal, "run", run)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    result = CliRunner().invoke(main, ["bench", "journal", "--quick", "--journal-dir", str(blocker / "journals")])
    assert result.exit_code == 1 and "--journal-dir" in result.stderr and "cannot create the folder" in result.stderr


def test_filesystem_names_the_mount_holding_a_path(tmp_path: Path) -> None:
    fs = journal.filesystem(tmp_path)
    assert fs["path"] == str(tmp_path.resolve())
    assert fs["mount"] != "unknown" and (Path(fs["mount"]) == tmp_path or Path(fs["mount"]) in tmp_path.parents)
    assert fs["type"] != "unknown"
    assert journal.filesystem(Path("/"))["mount"] == "/"


def test_a_tiled_copy_moves_every_identifier_past_the_previous_copy() -> None:
    from qfix.testing import generators as gen
    from qfix.wire import codes, schema

    records = gen.mix(quick=True, n=2000).records
    copy = journal._tile(records, 2, order_ids=10_000)
    nos = schema.INBOUND_BY_TEMPLATE[codes.TEMPLATE_NEW_ORDER_SINGLE]
    tids = records.view(nos)["templateId"]
    assert np.array_equal(copy.view(nos)["templateId"], tids)
    assert int(copy.view(nos)["ClOrdID"].min()) > 2 * int(records.view(nos)["ClOrdID"].max()) - 1
    assert int(copy["RecvTime"].min()) > int(records["RecvTime"].max())
    for tid, view in schema.INBOUND_BY_TEMPLATE.items():
        rows = tids == tid
        assert np.all(copy.view(view)["SecurityID"][rows] == 3)
    cancels = tids == codes.TEMPLATE_ORDER_CANCEL_REQUEST
    cancel = schema.INBOUND_BY_TEMPLATE[codes.TEMPLATE_ORDER_CANCEL_REQUEST]
    assert cancels.any()
    moved = copy.view(cancel)["OrderID"][cancels].astype(np.int64) - records.view(cancel)["OrderID"][cancels]
    assert np.all(moved == 20_000)
    assert np.array_equal(journal._tile(records, 0, order_ids=10_000), records)
