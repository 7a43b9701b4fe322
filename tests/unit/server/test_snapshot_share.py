"""Snapshots of every instrument take at most ``marketdata.snapshot_share`` of the loop:
after one took t seconds the next, of any feed, waits until t / share has passed since it
began, and those asked for meanwhile are answered Busy. One-instrument snapshots and
replays are never held back."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import zmq

from qfix.engine import Engine
from qfix.journal.entries import Batch
from qfix.journal.replay import EngineDriver
from qfix.marketdata.recovery import REPLAY, SNAPSHOT, Want
from qfix.marketdata.subscriber import encode_request
from qfix.server import ensure_default_setup, load_config, with_overrides
from qfix.server import feed as feed_module
from qfix.server.feed import MarketData
from qfix.testing.generators import default_random_config, default_random_instruments, random_stream
from qfix.wire import codes

L3, L2 = codes.MD_FEED_L3, codes.MD_FEED_L2


class Clock:
    """A monotonic clock that moves only when told, or by ``build_s`` per view built."""

    def __init__(self) -> None:
        self.now = 100.0
        self.build_s = 0.5

    def __call__(self) -> float:
        return self.now


def _market_data(tmp_path: Path, share: float, monkeypatch: pytest.MonkeyPatch) -> tuple[MarketData, Clock]:
    config = with_overrides(
        load_config(ensure_default_setup(tmp_path / "home")), md_port=0, md_snapshot_port=0, md_snapshot_share=share
    )
    engine = Engine(default_random_instruments(), default_random_config())
    EngineDriver(engine, out_size=1 << 14).apply(Batch(random_stream(1, 500)), lambda out: None)
    clock = Clock()
    for name in ("book_view", "level_view"):
        build = getattr(feed_module, name)

        def slow(*args: Any, build: Any = build) -> Any:
            clock.now += clock.build_s
            return build(*args)

        monkeypatch.setattr(feed_module, name, slow)
    return MarketData(config, engine, zmq.Context.instance(), clock=clock), clock


@pytest.fixture
def feed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[MarketData, Clock]]:
    md, clock = _market_data(tmp_path, 0.1, monkeypatch)
    yield md, clock
    md.close()


def _status(md: MarketData, feed: int, security_id: int = 0, kind: str = SNAPSHOT) -> int:
    request = encode_request(Want(feed, kind, security_id, 0, 1 if kind == REPLAY else 0, 1), 7, 1)
    return md.service.handle(request, 1).status


def test_a_whole_snapshot_waits_its_share_and_nothing_else_does(feed: tuple[MarketData, Clock]) -> None:
    md, clock = feed
    service = md.service
    assert _status(md, L3) == codes.REQUEST_COMPLETED  # its view built from 100.0 to 100.5
    assert clock.now == 100.5
    assert service.whole_snapshots == 1 and service.whole_snapshot_ns == 500_000_000
    assert _status(md, L3) == codes.REQUEST_BUSY  # the view is built, but packing is work too
    md.flush(1)  # an engine call: the books may have moved, the view is gone
    clock.now = 104.9
    assert _status(md, L3) == codes.REQUEST_BUSY  # 0.5 s / 0.1 = 5 s from 100.0
    assert _status(md, L2) == codes.REQUEST_BUSY  # one share for every feed
    assert _status(md, L3, security_id=int(md.publisher.security_ids[0])) == codes.REQUEST_COMPLETED
    assert _status(md, L3, kind=REPLAY) != codes.REQUEST_BUSY
    assert service.whole_snapshots == 1
    clock.now = 105.0  # 100.0 + 0.5 / 0.1
    assert _status(md, L2) == codes.REQUEST_COMPLETED
    assert service.whole_snapshots == 2 and clock.now == 105.5


def test_a_share_of_one_never_holds_a_view_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    md, clock = _market_data(tmp_path, 1.0, monkeypatch)
    try:
        for _ in range(3):
            assert _status(md, L3) == codes.REQUEST_COMPLETED
            md.flush(1)
        assert md.service.whole_snapshots == 3 and clock.now == 101.5
        assert md.service.whole_snapshot_ns == 1_500_000_000
    finally:
        md.close()
