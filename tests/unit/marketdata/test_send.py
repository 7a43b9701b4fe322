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

_PROBE = b"probe"


def _chunk(rng: np.random.Generator, sending_time: int = 2**63 + 5) -> Chunk:
    records = rng.integers(0, 256, (40, 60), dtype=np.uint8)
    bounds = np.array([0, 1, 7, 20, 39, 40])
    ids = np.array([1, 42, 4_294_967_294, 7, 1_000_000_000])
    return Chunk(feeds.ALL_FEEDS[3], 123_456_789, sending_time, records, bounds, ids)


def _received(jitted: bool, chunk: Chunk) -> list[list[bytes]]:
    ctx: zmq.Context[Any] = zmq.Context()
    endpoint = FeedEndpoint("tcp://127.0.0.1:0", "tcp://127.0.0.1:0", ctx, jitted=jitted)
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.LINGER, 0)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    got = []
    try:
        sub.connect(endpoint.pub_endpoint)
        # the subscription must reach the PUB before the chunk is sent: probe until one
        # arrives (a fixed sleep was too short on a loaded machine)
        deadline = time.monotonic() + 20
        while not sub.poll(50):
            assert time.monotonic() < deadline, "the subscription never reached the PUB"
            endpoint.pub.send_multipart([_PROBE, b"", b""])
        endpoint.publish([chunk])
        while sub.poll(5000):
            msg = sub.recv_multipart()
            if msg[0] != _PROBE:
                got.append(msg)
            if len(got) == chunk.security_ids.size:
                break
    finally:
        # a context left to the garbage collector with open sockets can block a later test
        sub.close(0)
        endpoint.close()
        ctx.term()
    return got


@pytest.mark.skipif(not _send.AVAILABLE, reason="libzmq is not reachable from jitted code in this process")
@pytest.mark.parametrize("sending_times", [(2**63 + 5,), (1_700_000_000_000_000_000, 2**63 + 5)])
def test_the_jitted_sender_sends_what_pyzmq_sends(sending_times: tuple[int, ...]) -> None:
    # a SendingTime below 2^63 first, then one above: one kernel signature must take both
    for t in sending_times[:-1]:
        small = _chunk(np.random.default_rng(2), t)
        assert _received(True, small) == _received(False, small)
    chunk = _chunk(np.random.default_rng(1))
    jitted, plain = _received(True, chunk), _received(False, chunk)
    assert len(jitted) == chunk.security_ids.size
    assert jitted == plain
    assert [list(map(bytes, frames)) for frames in chunk.frames()] == plain
    assert plain[2][0] == b"TRD.4294967294"
    assert feeds.unpack_header(plain[2][1]) == (123_456_789 + 7, 2**63 + 5)
