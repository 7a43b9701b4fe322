"""The jitted packet sender puts the same bytes on the wire as pyzmq does."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytest
import zmq

from qfix.marketdata import _send, feeds
from qfix.marketdata.adapter import FeedEndpoint
from qfix.marketdata.publisher import Chunk


def _chunk(rng: np.random.Generator) -> Chunk:
    records = rng.integers(0, 256, (40, 60), dtype=np.uint8)
    bounds = np.array([0, 1, 7, 20, 39, 40])
    ids = np.array([1, 42, 4_294_967_294, 7, 1_000_000_000])
    return Chunk(feeds.ALL_FEEDS[3], 123_456_789, 2**63 + 5, records, bounds, ids)


def _received(jitted: bool, chunk: Chunk) -> list[list[bytes]]:
    ctx: zmq.Context[Any] = zmq.Context()
    endpoint = FeedEndpoint("tcp://127.0.0.1:0", "tcp://127.0.0.1:0", ctx, jitted=jitted)
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.connect(endpoint.pub_endpoint)
    time.sleep(0.3)  # the subscription must reach the PUB before anything is sent
    endpoint.publish([chunk])
    got = []
    while sub.poll(1000):
        got.append(sub.recv_multipart())
        if len(got) == chunk.security_ids.size:
            break
    sub.close(0)
    endpoint.close()
    ctx.term()
    return got


@pytest.mark.skipif(not _send.AVAILABLE, reason="libzmq is not reachable from jitted code in this process")
def test_the_jitted_sender_sends_what_pyzmq_sends() -> None:
    chunk = _chunk(np.random.default_rng(1))
    jitted, plain = _received(True, chunk), _received(False, chunk)
    assert len(jitted) == chunk.security_ids.size
    assert jitted == plain
    assert [list(map(bytes, frames)) for frames in chunk.frames()] == plain
    assert plain[2][0] == b"TRD.4294967294"
    assert feeds.unpack_header(plain[2][1]) == (123_456_789 + 7, 2**63 + 5)
