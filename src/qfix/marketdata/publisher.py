"""The publisher: engine market-data records in, sequenced feed packets out (sans-I/O).

Theory of operation (WIRE.md §6.3-6.4). The engine emits every market-data record of a
call in one stream with RptSeq 0. For each engine call the publisher, per feed:
routes records by template (``feeds.FEEDS_OF_TEMPLATE``), orders them by instrument
(stable, so each instrument keeps the engine's order), numbers them (RptSeq per
instrument, ChannelSeqNum per feed), re-derives MatchEventIndicator per feed (an event
is what lies between two of the engine's EndOfEvent marks of one instrument), and cuts
packets at instrument changes and at 1,091 records. That work is one jitted pass
(:mod:`qfix.marketdata._sequence`); the publisher keeps the numbering state, resets a
feed before its RptSeq would overflow, and keeps the chunks for replay.

Sequenced packets are kept per feed in a bounded ring (:class:`Retention`) for the
replay service. Nothing here touches a socket or a clock: times come in as arguments.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from qfix.marketdata import feeds
from qfix.marketdata._ring import lower_bound, ring_add
from qfix.marketdata._sequence import FEED_SLOTS, OK, dense_index, sequence, unknown_record
from qfix.wire import codes, schema
from qfix.wire.codec import new_records

__all__ = ["Chunk", "Packet", "Publisher", "Replay", "Retention"]

Array = npt.NDArray[Any]

_MSG: Final = codes.MESSAGE_SIZE
_MAX_RECORDS: Final = codes.MAX_MSGS_PER_FRAME
_TRADE_TEMPLATES: Final = np.array([feeds.TRADE_TEMPLATE[f] for f in FEED_SLOTS], np.int64)


#: message offsets of the schema-61 prefix and suffix (the same in every md template)
TEMPLATE_ID_AT: Final = schema.byte_offset(schema.HEADER, "templateId")
TRANSACT_TIME_AT: Final = schema.byte_offset(schema.ADD_ORDER, "TransactTime")
SECURITY_ID_AT: Final = schema.byte_offset(schema.ADD_ORDER, "SecurityID")
RPT_SEQ_AT: Final = schema.byte_offset(schema.ADD_ORDER, "RptSeq")
MEI_AT: Final = schema.byte_offset(schema.ADD_ORDER, "MatchEventIndicator")


def column(msgs: Array, at: int, dtype: str) -> Array:
    """One little-endian field of every message of ``msgs`` (n, 60), as a new array."""
    width = np.dtype(dtype).itemsize
    return np.ascontiguousarray(msgs[:, at : at + width]).view(dtype)[:, 0]


@dataclass(frozen=True, slots=True)
class Packet:
    """One feed packet, a ZeroMQ message of three frames: ``[topic][header][records]``."""

    feed: int
    security_id: int
    #: ChannelSeqNum of the first record; 0 for an unsequenced packet
    seq: int
    sending_time: int
    #: the records, (n, 60) uint8, never written again
    records: Array

    @property
    def count(self) -> int:
        return int(self.records.shape[0])

    @property
    def last_seq(self) -> int:
        return self.seq + self.count - 1 if self.seq else 0

    def frames(self) -> tuple[bytes, bytes, memoryview]:
        return (
            feeds.topic(self.feed, self.security_id),
            feeds.pack_header(self.seq, self.sending_time),
            self.records.data.cast("B"),
        )


@dataclass(frozen=True, slots=True)
class Chunk:
    """Consecutive sequenced packets of one feed from one engine call: compact enough to
    keep millions of records for replay (60 bytes per record, 16 per packet)."""

    feed: int
    first_seq: int
    sending_time: int
    records: Array
    #: index of each packet's first record, then ``len(records)``
    bounds: Array
    security_ids: Array

    @property
    def last_seq(self) -> int:
        return self.first_seq + int(self.records.shape[0]) - 1

    def frames(self) -> Iterator[tuple[bytes, bytes, memoryview]]:
        """Each packet's three frames, in order (what the PUB socket sends)."""
        data = self.records.data.cast("B")
        bounds = self.bounds.tolist()
        pack, topic, feed, first, sent = feeds.pack_header, feeds.topic, self.feed, self.first_seq, self.sending_time
        for i, security_id in enumerate(self.security_ids.tolist()):
            lo, hi = bounds[i], bounds[i + 1]
            yield topic(feed, security_id), pack(first + lo, sent), data[lo * _MSG : hi * _MSG]

    def packets(self, lo: int = 0, hi: int | None = None) -> list[Packet]:
        """Packets ``lo`` to ``hi`` (exclusive) of the chunk."""
        hi = self.security_ids.size if hi is None else hi
        b, ids = self.bounds, self.security_ids
        return [
            Packet(self.feed, int(ids[i]), self.first_seq + int(b[i]), self.sending_time, self.records[b[i] : b[i + 1]])
            for i in range(lo, hi)
        ]


@dataclass(frozen=True, slots=True)
class Replay:
    """What the retention ring holds for a replay request."""

    packets: list[Packet]
    records: int
    #: RequestStatus: Completed, Truncated or Unavailable
    status: int
    last_seq: int


class Retention:
    """The last ``keep`` sequenced records of one feed, and the packets that carried them,
    in rings allocated once, for byte-identical replay.

    ChannelSeqNums of a feed are consecutive between resets, so record ``seq`` lives at
    slot ``(seq - 1) % keep``; each packet's first ChannelSeqNum, record count, SecurityID
    and SendingTime sit in a second ring of ``keep`` entries (a packet holds at least one
    record). A packet is held while all of its records are. Memory is therefore fixed at
    :data:`BYTES_PER_RECORD` per record kept, whatever the packets look like, and a
    replay finds its first packet by bisection."""

    #: bytes allocated per record of ``keep``: the record and one packet entry
    BYTES_PER_RECORD: Final = _MSG + 8 + 4 + 4 + 8

    def __init__(self, keep: int, feed: int = codes.MD_FEED_L3) -> None:
        if keep < 0:
            raise ValueError("keep must be >= 0")
        self.keep = keep
        self.feed = feed
        # np.zeros maps untouched pages lazily: memory is taken as the feed fills the ring
        self._records = np.zeros((keep, _MSG), np.uint8)
        self._seq = np.zeros(keep, np.int64)
        self._count = np.zeros(keep, np.int32)
        self._security = np.zeros(keep, np.uint32)
        self._time = np.zeros(keep, np.int64)  # SendingTime's u64 bit pattern
        self._first = 0  #: ring position (not yet wrapped) of the oldest packet held
        self._end = 0  #: one past the newest
        self._last_seq = 0

    @property
    def held(self) -> int:
        """Records held."""
        return self._last_seq - self.first_seq + 1 if self._end > self._first else 0

    @property
    def first_seq(self) -> int:
        """The oldest ChannelSeqNum held (0 if none)."""
        return int(self._seq[self._first % self.keep]) if self._end > self._first else 0

    def add(self, chunk: Chunk) -> None:
        n = int(chunk.records.shape[0])
        if self.keep == 0 or n == 0:
            return
        if self._end > self._first and chunk.first_seq != self._last_seq + 1:
            self.clear()  # not the continuation of what is held: keep only the new
        self._first, self._end = ring_add(
            self._records,
            self._seq,
            self._count,
            self._security,
            self._time,
            self._first,
            self._end,
            chunk.records,
            chunk.first_seq,
            chunk.bounds,
            chunk.security_ids,
            feeds.u64_as_i64(chunk.sending_time),
        )
        self._last_seq = chunk.first_seq + n - 1

    def _lower_bound(self, seq: int) -> int:
        """The ring position of the first held packet starting at or after ``seq``."""
        return int(lower_bound(self._seq, self._first, self._end, seq))

    def clear(self) -> None:
        self._first = self._end = 0
        self._last_seq = 0

    def replay(self, start: int, count: int, security_id: int, max_records: int, last_published: int) -> Replay:
        """The held packets with a record in ``[start, start + count)`` (of instrument
        ``security_id``, 0 = any), in order, up to ``max_records`` records.

        Unavailable if ``start`` is published but no longer held; Completed and empty if
        nothing at or after ``start`` has been published yet."""
        if start > last_published:
            return Replay([], 0, codes.REQUEST_COMPLETED, 0)
        if self._end == self._first or start < self.first_seq:
            return Replay([], 0, codes.REQUEST_UNAVAILABLE, 0)
        keep = self.keep
        # the packet holding ``start`` is the last one starting at or before it
        lo = max(self._first, self._lower_bound(start + 1) - 1)
        hi = self._lower_bound(start + count)
        at = np.arange(lo, hi) % keep
        if security_id:
            at = at[self._security[at] == security_id]
        counts = self._count[at].astype(np.int64)
        fit = int(np.searchsorted(np.cumsum(counts), max_records, side="right"))
        status = codes.REQUEST_TRUNCATED if fit < at.size else codes.REQUEST_COMPLETED
        at, counts = at[:fit], counts[:fit]
        if not at.size:
            return Replay([], 0, status, 0)
        seqs = self._seq[at]
        # one gather of every record (a copy: the ring moves on), then a view per packet
        offsets = np.repeat(seqs - np.cumsum(counts) + counts, counts) + np.arange(int(counts.sum()))
        records = self._records[(offsets - 1) % keep]
        bounds = np.concatenate(([0], np.cumsum(counts))).tolist()
        packets = [
            Packet(self.feed, security, seq, sending_time, records[bounds[i] : bounds[i + 1]])
            for i, (security, seq, sending_time) in enumerate(
                zip(self._security[at].tolist(), seqs.tolist(), self._time[at].view(np.uint64).tolist(), strict=True)
            )
        ]
        return Replay(packets, int(counts.sum()), status, packets[-1].last_seq)


class Publisher:
    """Sequences the engine's market-data records into the four feeds.

    Args:
        security_ids: the configured instruments, ascending.
        retention: sequenced records kept per feed for replay.
    """

    def __init__(self, security_ids: Sequence[int], retention: int = 1_000_000) -> None:
        ids = np.asarray(security_ids, np.int64)
        if ids.size and bool((np.diff(ids) <= 0).any()):
            raise ValueError("security_ids must be strictly ascending")
        self.security_ids = ids
        self._dense = dense_index(ids)
        n = ids.size
        #: last ChannelSeqNum per feed (index = MDFeed code)
        self.channel_seq = np.zeros(max(feeds.ALL_FEEDS) + 1, np.int64)
        #: last RptSeq per feed and instrument index
        self.rpt_seq = np.zeros((max(feeds.ALL_FEEDS) + 1, n), np.int64)
        #: TransactTime of the last record per instrument (what a snapshot reflects)
        self.last_time = np.zeros(n, np.int64)
        self.retention = {feed: Retention(retention, feed) for feed in feeds.ALL_FEEDS}
        self._topics_ready = False
        #: sequenced records published since the start, per feed
        self.records_published = 0
        self.packets_published = 0

    # --- numbering ----------------------------------------------------------------------

    def index_of(self, security_ids: Array) -> Array:
        """Instrument index of each SecurityID; ValueError for one not configured."""
        idx = np.searchsorted(self.security_ids, security_ids)
        bad = (idx >= self.security_ids.size) | (
            self.security_ids[np.minimum(idx, self.security_ids.size - 1)] != security_ids
        )
        if self.security_ids.size == 0 or bool(bad.any()):
            raise ValueError(f"market-data record for an unconfigured SecurityID {security_ids[bad][:5].tolist()}")
        return idx

    def publish(self, msgs: Array, sending_time: int) -> list[Packet | Chunk]:
        """Sequence the market-data records of one engine call (n, 60), in engine order.

        Returns what to send, in order: each feed's reset packet if its RptSeq would pass
        2^32-1, then each feed's chunk (L3, L2, BBO, TRD). ValueError, changing nothing, if
        a record names an unconfigured SecurityID."""
        if msgs.shape[0] == 0:
            return []
        out: list[Packet | Chunk] = []
        while True:
            status, records, bounds, security, counts = sequence(
                msgs,
                self.security_ids,
                self._dense,
                feeds.FEEDS_OF_TEMPLATE,
                _TRADE_TEMPLATES,
                _MAX_RECORDS,
                self.rpt_seq,
                self.channel_seq,
                self.last_time,
            )
            if status == OK:
                break
            bad = unknown_record(status)
            if bad is not None:
                sec = int(column(msgs[bad : bad + 1], SECURITY_ID_AT, "<u4")[0])
                raise ValueError(f"market-data record for an unconfigured SecurityID [{sec}]")
            out += [p for f in FEED_SLOTS if status & feeds.feed_bit(f) for p in self.reset(f, sending_time)]
        for slot, feed in enumerate(FEED_SLOTS):
            n, packets = int(counts[slot, 0]), int(counts[slot, 1])
            if not n:
                continue
            first_seq = int(self.channel_seq[feed]) - n + 1
            chunk = Chunk(
                feed, first_seq, sending_time, records[slot, :n], bounds[slot, : packets + 1], security[slot, :packets]
            )
            self.retention[feed].add(chunk)
            self.records_published += n
            self.packets_published += packets
            out.append(chunk)
        return out

    # --- channel records --------------------------------------------------------------------

    def heartbeat(self, feed: int, now: int) -> Packet:
        """An unsequenced ChannelHeartbeat(Heartbeat) with the feed's last ChannelSeqNum."""
        return channel_packet(feed, now, int(self.channel_seq[feed]), codes.CHANNEL_EVENT_HEARTBEAT)

    def reset(self, feed: int, now: int) -> list[Packet]:
        """Restart the feed's numbering at 1: an unsequenced ChannelHeartbeat(Reset), after
        which the feed's ChannelSeqNum and every RptSeq start again (WIRE.md §6.4)."""
        self.channel_seq[feed] = 0
        self.rpt_seq[feed] = 0
        self.retention[feed].clear()
        return [channel_packet(feed, now, 0, codes.CHANNEL_EVENT_RESET)]


def channel_packet(feed: int, now: int, last_seq: int, event: int) -> Packet:
    """One unsequenced packet on the feed's channel topic holding one ChannelHeartbeat."""
    rec = new_records(codes.TEMPLATE_CHANNEL_HEARTBEAT)
    rec["TransactTime"] = now
    rec["LastChannelSeqNum"] = last_seq
    rec["ChannelEvent"] = event
    return Packet(feed, feeds.CHANNEL_SECURITY_ID, 0, now, rec.view(np.uint8).reshape(1, _MSG))
