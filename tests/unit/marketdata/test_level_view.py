"""Level feeds' snapshots built from the engine's ladders (``level_view``: no order read)
are byte for byte those built from every order (``book_view``), for every instrument and
for each one; an L3 snapshot from a levels-only view is refused, not made up."""

from __future__ import annotations

import numpy as np
import pytest

from qfix.engine import Engine, output_buffer
from qfix.marketdata import feeds
from qfix.marketdata.publisher import Publisher
from qfix.marketdata.snapshot import snapshot_packets
from qfix.server.feed import book_view, level_view
from qfix.testing import generators as gen
from qfix.wire import codes


def _records(packets: list) -> bytes:  # type: ignore[type-arg]
    return b"".join(p.records.tobytes() for p in packets)


def test_level_snapshots_equal_the_order_built_ones() -> None:
    instruments = gen.default_random_instruments()
    config = gen.default_random_config()
    engine = Engine(instruments, config)
    records = gen.random_stream(21, 3_000, instruments, config=config, depth=(20, 60))
    out = output_buffer(1 << 14)
    done = 0
    while done < records.size:
        done += engine.process(records[done:], out).consumed
    publisher = Publisher([i.security_id for i in instruments])
    full, levels = book_view(engine, 1), level_view(engine, 1)
    assert levels.levels is not None and levels.levels.size > 0
    for feed in feeds.ALL_FEEDS:
        if feed == codes.MD_FEED_L3:
            with pytest.raises(ValueError, match="L3 snapshot needs a view with orders"):
                snapshot_packets(feed, levels, publisher, 0, 1)
            continue
        for sec in [0, *(i.security_id for i in instruments)]:
            one = level_view(engine, 1, int(publisher.index_of(np.array([sec]))[0])) if sec else levels
            want, n_want = snapshot_packets(feed, full, publisher, sec, 1)
            got, n_got = snapshot_packets(feed, one, publisher, sec, 1)
            assert n_got == n_want and _records(got) == _records(want)
