"""``qfix server`` and ``qfix client`` as a user runs them: real processes, signals, exit codes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

QFIX = [sys.executable, "-m", "qfix"]


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_bad_config_fails_fast_with_one_line(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text('[server]\nbatch = "lots"\n[keys]\nserver_key = "s.key"\nallow_list = "a.toml"\n')
    res = subprocess.run([*QFIX, "server", "--config", str(cfg)], capture_output=True, text=True, timeout=60)
    assert res.returncode == 1
    assert "server.batch: expected an integer" in res.stderr
    assert "Traceback" not in res.stderr


def test_server_serves_the_client_command_and_stops_on_sigterm(tmp_path: Path) -> None:
    port, md_port, snapshot_port = _free_port(), _free_port(), _free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    command = [
        *QFIX, "server", "--home", str(tmp_path / "home"), "--fix-port", str(port), "--status-interval", "0.2",
        "--md-port", str(md_port), "--snapshot-port", str(snapshot_port),
    ]  # fmt: skip
    srv = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        deadline = time.monotonic() + 300  # a cold Numba cache compiles first
        assert srv.stderr is not None
        for line in srv.stderr:
            if "listening on" in line or time.monotonic() > deadline:
                break
        res = subprocess.run(
            [
                *QFIX, "client", "--home", str(tmp_path / "home"), "--endpoint", f"tcp://127.0.0.1:{port}",
                "--order", "buy,5,1,65000.00,gtc", "--order", "sell,2,1,64000", "--wait", "0.5", "--json",
            ],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert res.returncode == 0, res.stderr
        assert res.stdout.count('"ExecutionReport"') >= 3  # two News and the self-trade cancel
        md = [
            *QFIX, "md", "--endpoint", f"tcp://127.0.0.1:{md_port}",
            "--snapshot-endpoint", f"tcp://127.0.0.1:{snapshot_port}", "--seconds", "1.5",
        ]  # fmt: skip
        ladder = subprocess.run([*md, "--symbol", "BTC-USD"], capture_output=True, text=True, timeout=60)
        assert ladder.returncode == 0, ladder.stderr
        assert "BTC-USD (1)" in ladder.stdout and "open 0" in ladder.stdout  # (the self-trade emptied the book)
        # the subscriber listens long enough for the client below to start, connect and
        # send (a `qfix client` takes about 1.5 s on a loaded 2-core machine; a 1.5 s
        # window missed its order there)
        feed = subprocess.Popen(
            [*md[:-2], "--seconds", "6", "--json", "--security-id", "1"], stdout=subprocess.PIPE, text=True
        )
        time.sleep(0.5)  # the subscription must reach the server first
        subprocess.run(
            [
                *QFIX, "client", "--home", str(tmp_path / "home"), "--endpoint", f"tcp://127.0.0.1:{port}",
                "--order", "buy,1,1,64999.00,gtc", "--wait", "0.3",
            ],
            capture_output=True, text=True, timeout=60, check=True,
        )  # fmt: skip
        lines, _ = feed.communicate(timeout=30)
        records = [json.loads(line) for line in lines.splitlines()]
        assert any(r["template"] == "AddOrder" and r["feed"] == "L3" and r["seq"] > 0 for r in records), lines
        assert any(r["template"] == "BookLevel" and r["feed"] == "L2" for r in records)
    finally:
        srv.send_signal(signal.SIGTERM)
        out, err = srv.communicate(timeout=30)
    assert srv.returncode == 0, err
    assert "server stopped" in err
    assert "orders/s" in out and "ns/order" in out


def test_live_demo_runs_and_reports_every_client() -> None:
    env = {**os.environ, "COLUMNS": "200"}
    res = subprocess.run(
        [*QFIX, "demo", "--seconds", "2", "--clients", "2"], capture_output=True, text=True, timeout=300, env=env
    )
    assert res.returncode == 0, res.stdout + res.stderr
    assert "demo summary" in res.stdout
    assert "client-1" in res.stdout and "client-2" in res.stdout
    assert "orders/s" in res.stdout and "BTC-USD" in res.stdout
