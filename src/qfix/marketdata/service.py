"""The snapshot and replay service (WIRE.md §6.5), sans-I/O: one request in, packets out.

A request is one 60-byte SnapshotRequest or ReplayRequest. Anything else, or one with a
field the design forbids, is answered by a RequestComplete with status Invalid only,
echoing the RequestID when it can be read; the caller decides when it is too busy to
serve (status Busy). Every reply ends with one unsequenced packet holding the
RequestComplete on the feed's channel topic. The service never changes the feed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from qfix.errors import QfixError
from qfix.marketdata import feeds
from qfix.marketdata.publisher import Packet, Publisher
from qfix.marketdata.snapshot import BookView, snapshot_packets
from qfix.wire import codes, schema
from qfix.wire.codec import new_records

__all__ = ["Reply", "RequestError", "SnapshotService", "parse_request", "request_complete"]

Array = npt.NDArray[Any]

_MSG: Final = codes.MESSAGE_SIZE
#: the feed whose channel topic carries a reply when the request names no valid feed
_FALLBACK_FEED: Final = codes.MD_FEED_L3


class RequestError(QfixError, ValueError):
    """A request the service refuses (status Invalid); ``request_id`` is its echo."""

    def __init__(self, message: str, request_id: int = 0, feed: int = _FALLBACK_FEED) -> None:
        super().__init__(message)
        self.request_id = request_id
        self.feed = feed


@dataclass(frozen=True)
class Request:
    template_id: int
    request_id: int
    feed: int
    security_id: int
    start: int = 0
    count: int = 0


@dataclass(frozen=True)
class Reply:
    """Packets to send in order (the last holds the RequestComplete), and its status."""

    packets: list[Packet]
    status: int
    records: int


def parse_request(data: bytes, known: Callable[[int], bool]) -> Request:
    """Check one request as WIRE.md §6.5 says; RequestError names the first fault."""
    if len(data) != _MSG:
        raise RequestError(f"a request is one {_MSG}-byte message, got {len(data)} bytes")
    head = np.frombuffer(data, schema.HEADER)[0]
    template_id = int(head["templateId"])
    if template_id not in (codes.TEMPLATE_SNAPSHOT_REQUEST, codes.TEMPLATE_REPLAY_REQUEST):
        raise RequestError(f"templateId {template_id} is not SnapshotRequest (43) or ReplayRequest (44)")
    rec = np.frombuffer(data, schema.TEMPLATES[template_id].dtype)[0]
    request_id = int(rec["RequestID"])
    feed = int(rec["MDFeed"])
    reply_feed = feed if feed in feeds.FEED_NAMES else _FALLBACK_FEED

    def fault(message: str) -> RequestError:
        return RequestError(message, request_id, reply_feed)

    if int(head["blockLength"]) != codes.BLOCK_LENGTH:
        raise fault(f"blockLength {int(head['blockLength'])}, expected {codes.BLOCK_LENGTH}")
    if int(head["schemaId"]) != codes.SCHEMA_MARKET_DATA:
        raise fault(f"schemaId {int(head['schemaId'])}, expected {codes.SCHEMA_MARKET_DATA}")
    if int(head["version"]) != codes.SCHEMA_VERSION:
        raise fault(f"version {int(head['version'])}, expected {codes.SCHEMA_VERSION}")
    if rec["Reserved"].any():
        raise fault("Reserved bytes are not zero")
    if int(rec["RptSeq"]) or int(rec["MatchEventIndicator"]):
        raise fault("RptSeq and MatchEventIndicator must be 0 in a request")
    if feed not in feeds.FEED_NAMES:
        raise fault(f"MDFeed {feed} is not 1 (L3), 2 (L2), 3 (BBO) or 4 (TRD)")
    security_id = int(rec["SecurityID"])
    if security_id and not known(security_id):
        raise fault(f"SecurityID {security_id} is not an instrument of this server")
    if template_id == codes.TEMPLATE_SNAPSHOT_REQUEST:
        return Request(template_id, request_id, feed, security_id)
    start, count = int(rec["FromChannelSeqNum"]), int(rec["Count"])
    if start == 0 or count == 0:
        raise fault("FromChannelSeqNum and Count must be >= 1")
    return Request(template_id, request_id, feed, security_id, start, count)


def request_complete(
    feed: int, request_id: int, security_id: int, last_seq: int, records: int, status: int, now: int
) -> Packet:
    """The unsequenced packet that ends every reply."""
    rec = new_records(codes.TEMPLATE_REQUEST_COMPLETE)
    rec["TransactTime"] = now
    rec["SecurityID"] = security_id
    rec["RequestID"] = request_id
    rec["LastChannelSeqNum"] = last_seq
    rec["RecordCount"] = records
    rec["RequestStatus"] = status
    raw = rec.view(np.uint8).reshape(1, _MSG)
    return Packet(feed, feeds.CHANNEL_SECURITY_ID, 0, now, raw)


class SnapshotService:
    """Answers snapshot and replay requests from the publisher's state and a book view.

    Args:
        publisher: the feed's numbering and retention.
        view: returns the books as they are now, of the instrument with the SecurityID
            given or of all (0); consistent with the publisher's last ChannelSeqNum (the
            caller serves requests only between engine calls).
        replay_max_records: the most records one replay reply carries (then Truncated).
        level_view: like ``view`` but may hold only levels (``BookView.levels``); serves
            the L2, BBO and TRD snapshots when given, so they never read every order.
        whole_share: the most of the caller's time that snapshots of every instrument may
            take. One that took t seconds holds the next back until t / ``whole_share``
            has passed since it began; those asked for meanwhile are answered Busy. 1.0
            holds none back.
        clock: monotonic seconds (for the share).
    """

    def __init__(
        self,
        publisher: Publisher,
        view: Callable[[int], BookView],
        replay_max_records: int = 100_000,
        *,
        level_view: Callable[[int], BookView] | None = None,
        whole_share: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 0 < whole_share <= 1:
            raise ValueError(f"whole_share must be in (0, 1], got {whole_share}")
        self.publisher = publisher
        self.view = view
        self.level_view = level_view
        self.replay_max_records = replay_max_records
        self.whole_share = whole_share
        self._clock = clock
        self._whole_free_at = 0.0
        #: requests answered Invalid
        self.invalid = 0
        #: snapshots of every instrument served, and the nanoseconds they took
        self.whole_snapshots = 0
        self.whole_snapshot_ns = 0

    def _known(self, security_id: int) -> bool:
        ids = self.publisher.security_ids
        at = int(np.searchsorted(ids, security_id))
        return at < ids.size and int(ids[at]) == security_id

    def busy(self, data: bytes, now: int) -> Reply:
        """The reply to a request the caller has no capacity for (status Busy)."""
        try:
            req = parse_request(data, self._known)
        except RequestError as exc:
            return self._invalid(exc, now)
        return self._busy(req, now)

    @staticmethod
    def _busy(req: Request, now: int) -> Reply:
        done = request_complete(req.feed, req.request_id, req.security_id, 0, 0, codes.REQUEST_BUSY, now)
        return Reply([done], codes.REQUEST_BUSY, 0)

    def handle(self, data: bytes, now: int) -> Reply:
        try:
            req = parse_request(data, self._known)
        except RequestError as exc:
            return self._invalid(exc, now)
        if req.template_id == codes.TEMPLATE_SNAPSHOT_REQUEST:
            began = self._clock()
            whole = req.security_id == 0
            if whole and began < self._whole_free_at:
                # every instrument's book holds the caller's loop while it is read and
                # packed: at most ``whole_share`` of its time
                return self._busy(req, now)
            by_levels = self.level_view is not None and req.feed != codes.MD_FEED_L3
            view = self.level_view(req.security_id) if by_levels and self.level_view else self.view(req.security_id)
            packets, records = snapshot_packets(req.feed, view, self.publisher, req.security_id, now)
            last = int(self.publisher.channel_seq[req.feed])
            status = codes.REQUEST_COMPLETED
            if whole:
                spent = self._clock() - began
                self._whole_free_at = began + spent / self.whole_share
                self.whole_snapshots += 1
                self.whole_snapshot_ns += int(spent * 1e9)
        else:
            held = self.publisher.retention[req.feed].replay(
                req.start,
                req.count,
                req.security_id,
                self.replay_max_records,
                int(self.publisher.channel_seq[req.feed]),
            )
            packets, records, last, status = held.packets, held.records, held.last_seq, held.status
        done = request_complete(req.feed, req.request_id, req.security_id, last, records, status, now)
        return Reply([*packets, done], status, records)

    def _invalid(self, exc: RequestError, now: int) -> Reply:
        self.invalid += 1
        done = request_complete(exc.feed, exc.request_id, 0, 0, 0, codes.REQUEST_INVALID, now)
        return Reply([done], codes.REQUEST_INVALID, 0)
