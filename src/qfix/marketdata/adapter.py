"""The market-data sockets of the server: the only place they are touched.

One PUB socket carries the feeds (plaintext and public, WIRE.md §6.3); one ROUTER serves
snapshot and replay requests. Publishing never blocks the trading loop: PUB drops at its
high-water mark (subscribers see the gap and recover), and a requester that stops reading
its reply loses the rest of it (ROUTER_MANDATORY turns a full or vanished peer into an
error we count instead of a wait). Requests are read with a budget per call, so a flood of
them cannot hold the loop.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import zmq

from qfix.marketdata import _send, feeds
from qfix.marketdata.publisher import Chunk, Packet

__all__ = ["FeedEndpoint"]


class FeedEndpoint:
    """Binds the PUB and the snapshot ROUTER; sends packets and reads requests.

    Args:
        pub_endpoint: e.g. ``tcp://127.0.0.1:5556`` (port 0 picks a free one).
        snapshot_endpoint: e.g. ``tcp://127.0.0.1:5557``.
        context: the zmq context.
        sndhwm: PUB high-water mark in messages (packets).
    """

    def __init__(
        self,
        pub_endpoint: str,
        snapshot_endpoint: str,
        context: zmq.Context[Any],
        *,
        sndhwm: int = 1_000_000,
        jitted: bool = True,
    ) -> None:
        #: chunks leave through the jitted sender (``_send``), not pyzmq
        self.jitted = jitted and _send.AVAILABLE
        self.pub = context.socket(zmq.PUB)
        self.pub.setsockopt(zmq.SNDHWM, sndhwm)
        self.pub.setsockopt(zmq.LINGER, 0)
        self.router = context.socket(zmq.ROUTER)
        self.router.setsockopt(zmq.ROUTER_MANDATORY, 1)
        self.router.setsockopt(zmq.SNDHWM, 100_000)
        self.router.setsockopt(zmq.RCVHWM, 1_000)
        self.router.setsockopt(zmq.LINGER, 0)
        try:
            self.pub.bind(pub_endpoint)
            self.router.bind(snapshot_endpoint)
        except zmq.ZMQError:
            self.close()
            raise
        #: packets sent on the PUB
        self.packets_sent = 0
        self.bytes_sent = 0
        #: reply packets not delivered (the requester vanished or stopped reading)
        self.replies_dropped = 0

    @property
    def pub_endpoint(self) -> str:
        return str(self.pub.getsockopt_string(zmq.LAST_ENDPOINT))

    @property
    def snapshot_endpoint(self) -> str:
        return str(self.router.getsockopt_string(zmq.LAST_ENDPOINT))

    def publish(self, items: Iterable[Packet | Chunk]) -> None:
        send = self.pub.send_multipart
        sent = 0
        size = 0
        for item in items:
            if isinstance(item, Chunk):
                if self.jitted:
                    prefix = feeds.FEED_NAMES[item.feed].encode("ascii") + b"."
                    _send.send_packets(
                        self.pub,
                        prefix,
                        item.security_ids,
                        item.first_seq,
                        item.sending_time,
                        item.records,
                        item.bounds,
                    )
                    sent += item.security_ids.size
                else:
                    for frames in item.frames():
                        send(frames, copy=True)
                        sent += 1
                size += item.records.nbytes
            else:
                send(item.frames(), copy=True)
                sent += 1
                size += item.records.nbytes
        self.packets_sent += sent
        self.bytes_sent += size

    def requests(self, budget: int) -> list[tuple[bytes, bytes]]:
        """Up to ``budget`` waiting requests as (requester identity, request bytes);
        messages that are not one frame after the identity come back as b"" (invalid)."""
        out = []
        for _ in range(budget):
            try:
                frames = self.router.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                break
            if len(frames) < 2:
                continue
            out.append((frames[0], frames[1] if len(frames) == 2 else b""))
        return out

    def reply(self, identity: bytes, packets: Iterable[Packet]) -> None:
        for packet in packets:
            try:
                self.router.send_multipart([identity, *packet.frames()], zmq.NOBLOCK)
            except (zmq.Again, zmq.ZMQError):
                self.replies_dropped += 1
                return

    def close(self) -> None:
        self.pub.close(0)
        self.router.close(0)
