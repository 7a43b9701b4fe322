"""A real server on a loopback port, run by a thread of the test process."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from qfix.client import Client
from qfix.server import Server, ensure_default_setup, load_config, with_overrides


class Running:
    """A started server, its setup directory and a client factory."""

    def __init__(self, server: Server, home: Path) -> None:
        self.server = server
        self.home = home
        self.thread = threading.Thread(target=server.serve_forever, name="qfix-server", daemon=True)
        self.clients: list[Client] = []

    def client(self, n: int = 1, *, connect: bool = True) -> Client:
        c = Client.from_files(self.server.fix_endpoint, self.home / f"client-{n}.key", self.home / "server.key.pub")
        if connect:
            c.connect(timeout=10.0, attempts=2)  # a loaded 2-core CI machine can miss one handshake
        self.clients.append(c)
        return c

    def operator(self) -> Client:
        """A connected session of the setup's admin key (``keys.admin_kids``)."""
        c = Client.from_files(self.server.fix_endpoint, self.home / "admin.key", self.home / "server.key.pub")
        c.connect(timeout=10.0, attempts=2)
        self.clients.append(c)
        return c

    def stop(self) -> None:
        for c in self.clients:
            c.close()
        self.server.stop()
        self.thread.join(10)
        assert not self.thread.is_alive(), "server loop did not stop"


@pytest.fixture(scope="session")
def setup_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("qfix-home")
    ensure_default_setup(home)
    return home


@pytest.fixture
def start_server(setup_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Running]]:
    started: list[Running] = []

    def start(*, journal: bool = True, **overrides: Any) -> Running:
        # each server journals (fsync, the default) into a directory of its own, or with
        # journal=False runs without one (durability "none"), as the benchmarks do
        if journal:
            overrides.setdefault("journal_dir", tmp_path_factory.mktemp("journal"))
        else:
            overrides["durability"] = "none"
        files = overrides.pop("files", None)  # a fault-injecting file layer for the journal
        # every port the server binds is a free one unless the test names it
        ports = {"fix_port": 0, "md_port": 0, "md_snapshot_port": 0} | {
            k: overrides.pop(k) for k in ("fix_port", "md_port", "md_snapshot_port") if k in overrides
        }
        config = with_overrides(load_config(setup_home / "qfix.toml"), status_interval=0, **ports, **overrides)
        if not journal:
            config = dataclasses.replace(config, journal_dir=None)
        running = Running(Server(config, files=files), setup_home)
        running.thread.start()
        started.append(running)
        return running

    yield start
    for running in started:
        if running.thread.is_alive():
            running.stop()
