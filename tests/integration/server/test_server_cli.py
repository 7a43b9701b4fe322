"""``qfix server`` and ``qfix client`` as a user runs them: real processes, signals, exit codes."""

from __future__ import annotations

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
    port = _free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    srv = subprocess.Popen(
        [*QFIX, "server", "--home", str(tmp_path / "home"), "--fix-port", str(port), "--status-interval", "0.2"],
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
