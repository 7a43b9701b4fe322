"""``snapshot_packets`` builds every instrument's records at once; it must give, packet for
packet and byte for byte, what the first implementation (one instrument at a time, kept in
``snapshot_oracle``) gives: every feed, every instrument and each one alone, from order
views and level views, with empty and one-sided books among them."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from snapshot_oracle import oracle_snapshot_packets

from qfix.engine import Engine
from qfix.journal.entries import Batch
from qfix.journal.replay import EngineDriver
from qfix.marketdata import feeds
from qfix.marketdata.publisher import Packet, Publisher
from qfix.marketdata.snapshot import BookView, snapshot_packets
from qfix.server.feed import book_view, level_view, reference_records
from qfix.testing.generators import default_random_config, default_random_instruments, random_stream
from qfix.wire import codes


def _key(packets: list[Packet]) -> list[tuple[Any, ...]]:
    return [(p.feed, p.security_id, p.seq, p.sending_time, p.records.tobytes()) for p in packets]


def _published(seed: int, n: int) -> tuple[Engine, Publisher]:
    """An engine after ``n`` random messages, its market data through a publisher (so
    RptSeqs and TransactTimes are not zero)."""
    engine = Engine(default_random_instruments(), default_random_config())
    publisher = Publisher([i.security_id for i in engine.instruments])
    md: list[Any] = []
    EngineDriver(engine, out_size=1 << 14).apply(
        Batch(random_stream(seed, n)), lambda out: md.append(out["message"][out["dest"] == codes.MD_DEST])
    )
    publisher.publish(reference_records(engine, 5).reshape(-1, 60), 5)
    if md:
        publisher.publish(np.concatenate(md), 6)
    return engine, publisher


@pytest.mark.parametrize(("seed", "n"), [(1, 0), (2, 40), (3, 3_000)])
def test_every_feed_packs_as_the_oracle_does(seed: int, n: int) -> None:
    engine, publisher = _published(seed, n)
    orders = book_view(engine, 7)
    levels = level_view(engine, 7)
    orders_only = BookView(orders.orders, orders.status, orders.reference)
    ids = publisher.security_ids.tolist()
    checked = 0
    for feed in feeds.ALL_FEEDS:
        views = [orders] if feed == codes.MD_FEED_L3 else [orders_only, levels]
        for view in views:
            for security_id in [0, *ids]:
                got = snapshot_packets(feed, view, publisher, security_id, 9)
                want = oracle_snapshot_packets(feed, view, publisher, security_id, 9)
                assert got[1] == want[1]
                assert _key(got[0]) == _key(want[0]), (feed, security_id)
                checked += 1
    assert checked == (1 + 2 * 3) * (1 + len(ids))
    if n:
        assert orders.orders is not None and orders.orders.size > 0  # real books were packed


def test_a_book_longer_than_a_packet_is_cut_as_before() -> None:
    engine, publisher = _published(4, 0)
    view = book_view(engine, 7)
    k = 2_500  # over two packets of 1,091 records on one instrument, none on the others
    orders = np.zeros(k, view.orders.dtype)  # type: ignore[union-attr]
    orders["inst"] = 1
    orders["side"] = np.arange(k) >= k // 2
    orders["price"] = np.where(orders["side"] == 0, 1_000 - np.arange(k), 1_000 + np.arange(k))
    orders["shown"] = 1 + np.arange(k) % 7
    orders["order_id"] = 1 + np.arange(k)
    big = BookView(orders, view.status, view.reference)
    for feed in feeds.ALL_FEEDS:
        for security_id in (0, int(publisher.security_ids[1])):
            got = snapshot_packets(feed, big, publisher, security_id, 9)
            want = oracle_snapshot_packets(feed, big, publisher, security_id, 9)
            assert _key(got[0]) == _key(want[0]) and got[1] == want[1]
