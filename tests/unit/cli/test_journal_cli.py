"""`qfix journal verify|dump|replay` over a journal the server's ledger wrote."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from qfix.cli import main
from qfix.journal import entries as ent
from qfix.journal import list_segments
from qfix.server import ensure_default_setup, load_config, with_overrides
from qfix.server.ledger import Ledger
from qfix.server.session import OrderEntry
from qfix.testing import builders
from qfix.wire import codes

P9 = 10**9


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str, str]:
    """(journal directory, config file, the live state and event hashes) after a few batches."""
    home = tmp_path_factory.mktemp("home")
    config_path = ensure_default_setup(home)
    text = config_path.read_text()
    config_path.write_text(text.replace("[engine]\n", "[engine]\nevent_hash = true\n"))
    journal = home / "journal"
    ledger = Ledger(with_overrides(load_config(config_path), journal_dir=journal), OrderEntry())
    ledger.login(1, b"k" * 16, (101,), 0.0)
    for k in range(5):
        side = codes.SIDE_BUY if k % 2 else codes.SIDE_SELL
        records = builders.batch(
            *(
                builders.new_order(10 * k + i + 1, side=side, price=(64_990 + i) * P9, qty=3, tif=codes.TIF_GTC)
                for i in range(8)
            )
        )
        ledger.apply(ent.Batch(records), lambda out: None)
    ledger.apply(ent.CancelSessions(10**18, (0,)), lambda out: None)
    live, chain = ledger.engine.state_hash().hex(), ledger.engine.event_hash().hex()
    ledger.close()
    assert chain != "00" * 32
    return journal, config_path, live, chain


def test_verify_reports_records_and_checkpoints(written: tuple[Path, Path, str, str]) -> None:
    journal, _, live, _ = written
    result = CliRunner().invoke(main, ["journal", "verify", str(journal), "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["ok"] and (doc["first_seq"], doc["last_seq"]) == (1, 7)
    assert doc["kinds"] == {"BATCH": 5, "CANCEL_SESSIONS": 1, "OPEN_SESSION": 1}
    assert [c["seq"] for c in doc["checkpoints"]] == [0, 7] and doc["checkpoints"][-1]["state_hash"] == live
    text = CliRunner().invoke(main, ["journal", "verify", str(journal)])
    assert text.exit_code == 0 and "records 1..7 (7)" in text.stdout


def test_dump_prints_one_json_line_per_record(written: tuple[Path, Path, str, str]) -> None:
    journal = written[0]
    result = CliRunner().invoke(main, ["journal", "dump", str(journal), "--from", "2", "--count", "2", "--records"])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(d["seq"], d["kind"], d["records"]) for d in lines] == [(2, "BATCH", 8), (3, "BATCH", 8)]
    assert len(lines[0]["inbound"]) == 8 and len(bytes.fromhex(lines[0]["inbound"][0])) == 80
    assert lines[0]["sessions"] == [0]


def test_replay_in_a_fresh_engine_gives_the_live_hashes(written: tuple[Path, Path, str, str]) -> None:
    journal, config_path, live, chain = written
    result = CliRunner().invoke(main, ["journal", "replay", str(journal), "--config", str(config_path), "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["state_hash"] == live and doc["event_hash"] == chain
    assert doc["last_seq"] == 7 and doc["orders"] == 40
    assert doc["resting_orders"] == 0  # the session's orders were cancelled by the last record


def test_verify_exits_1_on_damage(written: tuple[Path, Path, str, str], tmp_path: Path) -> None:
    journal = written[0]
    copy = tmp_path / "copy"
    copy.mkdir()
    for f in journal.iterdir():
        (copy / f.name).write_bytes(f.read_bytes())
    seg = list_segments(copy)[0].path
    data = bytearray(seg.read_bytes())
    data[40] ^= 0xFF  # inside the first record's header
    seg.write_bytes(bytes(data))
    result = CliRunner().invoke(main, ["journal", "verify", str(copy)])
    assert result.exit_code == 1 and "DAMAGED" in result.stderr and seg.name in result.stderr


def test_two_replays_in_fresh_processes_agree(written: tuple[Path, Path, str, str]) -> None:
    journal, config_path, live, chain = written
    command = [sys.executable, "-m", "qfix", "journal", "replay", str(journal), "--config", str(config_path), "--json"]
    docs = [json.loads(subprocess.run(command, capture_output=True, check=True, text=True).stdout) for _ in range(2)]
    assert {(d["state_hash"], d["event_hash"]) for d in docs} == {(live, chain)}
