"""Snapshot replies are streamed a budget at a time into a ROUTER with a small high-water
mark: a reader gets its whole reply in order over several passes, a requester that stops
reading holds no more than the mark and is dropped after the timeout, and the cap on
replies in flight turns further requests away (the server answers them Busy)."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytest
import zmq

from qfix.marketdata.adapter import FeedEndpoint
from qfix.marketdata.publisher import Packet
from qfix.marketdata.service import request_complete
from qfix.wire import codes, schema

_HWM = 2
_REQUEST_COMPLETE = schema.TEMPLATES[codes.TEMPLATE_REQUEST_COMPLETE].dtype


def _packets(n: int, request_id: int) -> list[Packet]:
    return [request_complete(codes.MD_FEED_L3, request_id, 0, k, k, 0, 1) for k in range(n)]


@pytest.fixture
def endpoint() -> Any:
    ctx: zmq.Context[Any] = zmq.Context()
    ep = FeedEndpoint(
        "inproc://md-pub",
        "inproc://md-snap",
        ctx,
        reply_sndhwm=_HWM,
        max_replies_in_flight=2,
        reply_timeout=0.3,
        jitted=False,
    )
    sockets: list[zmq.Socket[Any]] = []

    def requester() -> tuple[zmq.Socket[Any], bytes]:
        dealer = ctx.socket(zmq.DEALER)
        dealer.setsockopt(zmq.LINGER, 0)
        dealer.setsockopt(zmq.RCVHWM, 1)
        dealer.connect("inproc://md-snap")
        sockets.append(dealer)
        dealer.send(b"request")
        deadline = time.monotonic() + 10
        while True:
            got = ep.requests(1)
            if got:
                return dealer, got[0][0]
            assert time.monotonic() < deadline
            time.sleep(0.01)

    yield ep, requester
    for sock in sockets:
        sock.close(0)
    ep.close()
    ctx.term()


def _last_seq(frames: list[bytes]) -> int:
    """The LastChannelSeqNum of a RequestComplete packet: _packets numbers them with it."""
    return int(np.frombuffer(frames[-1], _REQUEST_COMPLETE)[0]["LastChannelSeqNum"])


def test_a_reader_gets_the_whole_reply_in_order(endpoint: Any) -> None:
    ep, requester = endpoint
    dealer, identity = requester()
    assert ep.can_take(identity)
    ep.reply(identity, _packets(40, 7))
    assert not ep.can_take(identity)  # one reply per requester at a time
    got = []
    deadline = time.monotonic() + 10
    while len(got) < 40:
        assert time.monotonic() < deadline
        ep.pump(3)
        while dealer.poll(0):
            got.append(_last_seq(dealer.recv_multipart()))
    assert got == list(range(40))
    ep.pump(3)
    assert ep.replies_in_flight == 0 and ep.replies_dropped == 0


def test_a_stalled_requester_is_bounded_then_dropped(endpoint: Any) -> None:
    ep, requester = endpoint
    _, stalled = requester()
    ep.reply(stalled, _packets(200, 1))
    for _ in range(20):
        ep.pump(1_000)
    held = len(ep._outgoing[stalled].packets)
    # inproc queues at most the sender's and the receiver's marks (2 + 1), plus one in flight
    assert held >= 200 - (_HWM + 1 + 2)
    _, second = requester()
    ep.reply(second, _packets(1, 2))
    other_dealer, other = requester()
    assert not ep.can_take(other)  # the cap of two replies in flight: the server answers Busy
    ep.reply_now(other, _packets(1, 9)[0])
    assert other_dealer.poll(5000)
    time.sleep(0.4)
    ep.pump(1_000)
    assert ep.replies_in_flight == 0  # the one-packet reply went out, the stalled one was dropped
    assert ep.replies_dropped == held
    assert ep.can_take(other)


def test_requesters_take_turns_and_only_a_full_pipe_times_out(endpoint: Any) -> None:
    """With a budget of one packet per pass, two readers alternate; one not reached in a
    pass because the budget ran out is not timed out, however long it waits."""
    ep, requester = endpoint
    first, a = requester()
    second, b = requester()
    ep.reply(a, _packets(6, 1))
    ep.reply(b, _packets(6, 2))
    time.sleep(0.4)  # longer than reply_timeout, before anything was tried
    got: dict[bytes, list[int]] = {a: [], b: []}
    deadline = time.monotonic() + 10
    while ep.replies_in_flight:
        assert time.monotonic() < deadline
        ep.pump(1)
        for dealer, name in ((first, a), (second, b)):
            while dealer.poll(0):
                got[name].append(_last_seq(dealer.recv_multipart()))
        assert abs(len(got[a]) - len(got[b])) <= 2  # turns: neither runs ahead
    for dealer, name in ((first, a), (second, b)):
        while len(got[name]) < 6 and dealer.poll(5000):
            got[name].append(_last_seq(dealer.recv_multipart()))
    assert got[a] == got[b] == list(range(6))
    assert ep.replies_dropped == 0
