"""The market-data sockets of the server: the only place they are touched.

One PUB socket carries the feeds (plaintext and public, WIRE.md §6.3); one ROUTER serves
snapshot and replay requests. Publishing never blocks the trading loop: PUB drops at its
high-water mark (subscribers see the gap and recover). Requests are read with a budget per
call, so a flood of them cannot hold the loop.

Replies are streamed, not dumped: a reply waits here as a queue of packets and each loop
pass moves at most a budget of packets into the ROUTER, whose high-water mark per
requester is small. A requester that reads slowly holds at most that mark in libzmq and
its one reply here; one whose pipe stays full for ``reply_timeout`` seconds, or that
vanishes (ROUTER_MANDATORY reports it), loses the rest of its reply. At most
``max_replies_in_flight`` replies wait here at once.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import zmq

from qfix.marketdata import _send, feeds
from qfix.marketdata.publisher import Chunk, Packet

_POLLIN = int(zmq.POLLIN)  # a plain int: enum arithmetic costs microseconds per call

__all__ = ["FeedEndpoint"]


@dataclass
class _Outgoing:
    """One requester's reply still to send."""

    packets: deque[Packet]
    #: monotonic time since which its pipe has been full (None: it is taking packets)
    blocked_since: float | None = None


class FeedEndpoint:
    """Binds the PUB and the snapshot ROUTER; sends packets and reads requests.

    Args:
        pub_endpoint: e.g. ``tcp://127.0.0.1:5556`` (port 0 picks a free one).
        snapshot_endpoint: e.g. ``tcp://127.0.0.1:5557``.
        context: the zmq context.
        sndhwm: PUB high-water mark in messages (packets).
        reply_sndhwm: the snapshot ROUTER's high-water mark per requester, in packets.
        max_replies_in_flight: replies that may wait to be streamed at once.
        reply_timeout: seconds a requester's pipe may stay full before its reply is dropped.
    """

    def __init__(
        self,
        pub_endpoint: str,
        snapshot_endpoint: str,
        context: zmq.Context[Any],
        *,
        sndhwm: int = 1_000_000,
        reply_sndhwm: int = 16,
        max_replies_in_flight: int = 8,
        reply_timeout: float = 10.0,
        jitted: bool = True,
    ) -> None:
        #: chunks leave through the jitted sender (``_send``), not pyzmq
        self.jitted = jitted and _send.AVAILABLE
        self.pub = context.socket(zmq.PUB)
        self.pub.setsockopt(zmq.SNDHWM, sndhwm)
        self.pub.setsockopt(zmq.LINGER, 0)
        self.router = context.socket(zmq.ROUTER)
        self.router.setsockopt(zmq.ROUTER_MANDATORY, 1)
        self.router.setsockopt(zmq.SNDHWM, reply_sndhwm)
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
        self.max_replies_in_flight = max_replies_in_flight
        self.reply_timeout = reply_timeout
        #: requester identity -> its reply still to send, oldest request first
        self._outgoing: dict[bytes, _Outgoing] = {}

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
        out: list[tuple[bytes, bytes]] = []
        router = self.router
        # asked on every pass of the trading loop: a readiness check costs a third of
        # the exception an empty receive raises
        if not int(router.getsockopt(zmq.EVENTS)) & _POLLIN:
            return out
        for _ in range(budget):
            try:
                frames = router.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                break
            if len(frames) < 2:
                continue
            out.append((frames[0], frames[1] if len(frames) == 2 else b""))
        return out

    def can_take(self, identity: bytes) -> bool:
        """Whether a new reply for ``identity`` may be queued now: it has none in flight
        (a requester keeps at most one request outstanding) and the cap is not reached."""
        return identity not in self._outgoing and len(self._outgoing) < self.max_replies_in_flight

    @property
    def replies_in_flight(self) -> int:
        return len(self._outgoing)

    def reply(self, identity: bytes, packets: Iterable[Packet]) -> None:
        """Queue a reply; :meth:`pump` streams it. Call only when :meth:`can_take` agrees."""
        queued = deque(packets)
        if queued:
            self._outgoing[identity] = _Outgoing(queued)

    def reply_now(self, identity: bytes, packet: Packet) -> None:
        """Send a one-packet answer (Busy, Invalid) at once, or drop it if the requester
        cannot take it now; it never waits here."""
        try:
            self.router.send_multipart([identity, *packet.frames()], zmq.NOBLOCK)
        except zmq.ZMQError:
            self.replies_dropped += 1

    def pump(self, budget: int) -> None:
        """Move up to ``budget`` queued reply packets into the ROUTER, each requester as far
        as its high-water mark allows, round robin (a requester served this pass goes to
        the back); drop the replies of requesters that vanished, or whose pipe stayed full
        for ``reply_timeout`` seconds."""
        now = time.monotonic()
        for identity in list(self._outgoing):
            if budget <= 0:
                break
            out = self._outgoing.pop(identity)
            while out.packets and budget > 0:
                try:
                    self.router.send_multipart([identity, *out.packets[0].frames()], zmq.NOBLOCK)
                except zmq.Again:
                    if out.blocked_since is None:
                        out.blocked_since = now
                    break
                except zmq.ZMQError:  # EHOSTUNREACH: the requester is gone
                    self.replies_dropped += len(out.packets)
                    out.packets.clear()
                    break
                out.packets.popleft()
                out.blocked_since = None
                budget -= 1
            if not out.packets:
                continue
            if out.blocked_since is not None and now - out.blocked_since > self.reply_timeout:
                self.replies_dropped += len(out.packets)
                continue
            self._outgoing[identity] = out  # back of the queue

    def close(self) -> None:
        self._outgoing.clear()
        self.pub.close(0)
        self.router.close(0)
