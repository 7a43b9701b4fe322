"""The publisher: engine market-data records in, sequenced feed packets out (sans-I/O).

Theory of operation (WIRE.md §6.3-6.4). The engine emits every market-data record of a
call in one stream with RptSeq 0. For each engine call the publisher, per feed:
routes records by template (``feeds.FEEDS_OF_TEMPLATE``), orders them by instrument
(stable, so each instrument keeps the engine's order), numbers them (RptSeq per
instrument, ChannelSeqNum per feed), re-derives MatchEventIndicator per feed (an event
is what lies between two of the engine's EndOfEvent marks of one instrument), and cuts
packets at instrument changes and at 1,091 records. The work is done on whole arrays;
the only loop is over the packets themselves, which the caller must send anyway.

Sequenced packets are kept per feed in a bounded ring (:class:`Retention`) for the
replay service. Nothing here touches a socket or a clock: times come in as arguments.
"""

from __future__ import annotations

import bisect
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from qfix.marketdata import feeds
from qfix.wire import codes, schema
from qfix.wire.codec import new_records

__all__ = ["Chunk", "Packet", "Publisher", "Replay", "Retention"]

Array = npt.NDArray[Any]

_MSG: Final = codes.MESSAGE_SIZE
_MAX_RECORDS: Final = codes.MAX_MSGS_PER_FRAME
_U32_MAX: Final = 2**32 - 1


def _offset(dtype: np.dtype[np.void], name: str) -> int:
    return int(dtype.fields[name][1])  # type: ignore[index]


#: message offsets of the schema-61 prefix and suffix (the same in every md template)
TEMPLATE_ID_AT: Final = _offset(schema.HEADER, "templateId")
TRANSACT_TIME_AT: Final = _offset(schema.ADD_ORDER, "TransactTime")
SECURITY_ID_AT: Final = _offset(schema.ADD_ORDER, "SecurityID")
RPT_SEQ_AT: Final = _offset(schema.ADD_ORDER, "RptSeq")
MEI_AT: Final = _offset(schema.ADD_ORDER, "MatchEventIndicator")


def column(msgs: Array, at: int, dtype: str) -> Array:
    """One little-endian field of every message of ``msgs`` (n, 60), as a new array."""
    width = np.dtype(dtype).itemsize
    return np.ascontiguousarray(msgs[:, at : at + width]).view(dtype)[:, 0]


def set_column(msgs: Array, at: int, dtype: str, values: Array) -> None:
    width = np.dtype(dtype).itemsize
    msgs[:, at : at + width] = np.asarray(values, dtype).reshape(-1, 1).view(np.uint8)


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
    """The last ``keep`` (or a few more) sequenced records of one feed, as the chunks that
    carried them, for byte-identical replay."""

    def __init__(self, keep: int) -> None:
        if keep < 0:
            raise ValueError("keep must be >= 0")
        self.keep = keep
        self._chunks: deque[Chunk] = deque()
        self._held = 0

    @property
    def held(self) -> int:
        """Records held."""
        return self._held

    @property
    def first_seq(self) -> int:
        """The oldest ChannelSeqNum held (0 if none)."""
        return self._chunks[0].first_seq if self._chunks else 0

    def add(self, chunk: Chunk) -> None:
        if self.keep == 0:
            return
        self._chunks.append(chunk)
        self._held += chunk.records.shape[0]
        while self._held - self._chunks[0].records.shape[0] >= self.keep:
            self._held -= self._chunks.popleft().records.shape[0]

    def clear(self) -> None:
        self._chunks.clear()
        self._held = 0

    def replay(self, start: int, count: int, security_id: int, max_records: int, last_published: int) -> Replay:
        """The held packets with a record in ``[start, start + count)`` (of instrument
        ``security_id``, 0 = any), in order, up to ``max_records`` records.

        Unavailable if ``start`` is published but no longer held; Completed and empty if
        nothing at or after ``start`` has been published yet."""
        end = start + count
        if start > last_published:
            return Replay([], 0, codes.REQUEST_COMPLETED, 0)
        if not self._chunks or start < self.first_seq:
            return Replay([], 0, codes.REQUEST_UNAVAILABLE, 0)
        firsts = [c.first_seq for c in self._chunks]
        at = max(0, bisect.bisect_right(firsts, start) - 1)
        chosen: list[Packet] = []
        sent = 0
        for i in range(at, len(self._chunks)):
            chunk = self._chunks[i]
            if chunk.first_seq >= end:
                break
            seqs = chunk.first_seq + chunk.bounds
            # packets whose records reach into [start, end)
            lo = max(0, int(np.searchsorted(seqs[1:], start, side="right")))
            hi = int(np.searchsorted(seqs[:-1], end, side="left"))
            wanted = np.arange(lo, hi)
            if security_id:
                wanted = wanted[chunk.security_ids[lo:hi] == security_id]
            for j in wanted.tolist():
                n = int(chunk.bounds[j + 1] - chunk.bounds[j])
                if sent + n > max_records:
                    return Replay(chosen, sent, codes.REQUEST_TRUNCATED, chosen[-1].last_seq if chosen else 0)
                chosen += chunk.packets(j, j + 1)
                sent += n
        return Replay(chosen, sent, codes.REQUEST_COMPLETED, chosen[-1].last_seq if chosen else 0)


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
        n = ids.size
        #: last ChannelSeqNum per feed (index = MDFeed code)
        self.channel_seq = np.zeros(max(feeds.ALL_FEEDS) + 1, np.int64)
        #: last RptSeq per feed and instrument index
        self.rpt_seq = np.zeros((max(feeds.ALL_FEEDS) + 1, n), np.int64)
        #: TransactTime of the last record per instrument (what a snapshot reflects)
        self.last_time = np.zeros(n, np.int64)
        self.retention = {feed: Retention(retention) for feed in feeds.ALL_FEEDS}
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

        Returns what to send, in order: each feed's chunk (L3, L2, BBO, TRD). A feed whose
        RptSeq would pass 2^32-1 is reset first (its reset packet comes before its chunk)."""
        if msgs.shape[0] == 0:
            return []
        tids = column(msgs, TEMPLATE_ID_AT, "<u2")
        inst = self.index_of(column(msgs, SECURITY_ID_AT, "<u4").astype(np.int64))
        order = np.argsort(inst, kind="stable")
        msgs, inst, tids = msgs[order], inst[order], tids[order]
        times = column(msgs, TRANSACT_TIME_AT, "<u8").astype(np.int64)
        ends = (msgs[:, MEI_AT] & codes.MEI_END_OF_EVENT) != 0
        starts = _group_starts(inst)
        # event number within its instrument: EndOfEvent marks counted before each record
        before = np.cumsum(ends) - ends
        event = before - np.repeat(before[starts], np.diff(np.append(starts, inst.size)))
        last_of_inst = np.append(starts[1:], inst.size) - 1
        np.maximum.at(self.last_time, inst[last_of_inst], times[last_of_inst])
        masks = feeds.FEEDS_OF_TEMPLATE[np.minimum(tids, 255)]
        out: list[Packet | Chunk] = []
        for feed in feeds.ALL_FEEDS:
            rows = np.flatnonzero(masks & feeds.feed_bit(feed))
            if rows.size:
                reset, chunk = self._feed_chunk(feed, msgs[rows], inst[rows], event[rows], tids[rows], sending_time)
                out += reset
                out.append(chunk)
        return out

    def _feed_chunk(
        self, feed: int, msgs: Array, inst: Array, event: Array, tids: Array, sending_time: int
    ) -> tuple[list[Packet], Chunk]:
        starts = _group_starts(inst)
        counts = np.diff(np.append(starts, inst.size))
        insts = inst[starts]
        reset: list[Packet] = []
        if int((self.rpt_seq[feed, insts] + counts).max()) > _U32_MAX:
            reset = self.reset(feed, sending_time)
        rank = np.arange(inst.size) - np.repeat(starts, counts)
        set_column(msgs, RPT_SEQ_AT, "<u4", self.rpt_seq[feed, inst] + rank + 1)
        self.rpt_seq[feed, insts] += counts
        # MatchEventIndicator per feed: EndOfEvent on each event's last record here,
        # LastTradeMsg on its last trade record
        last = np.ones(inst.size, bool)
        last[:-1] = (inst[1:] != inst[:-1]) | (event[1:] != event[:-1])
        mei = np.where(last, codes.MEI_END_OF_EVENT, 0).astype(np.uint8)
        trade_tid = feeds.TRADE_TEMPLATE[feed]
        if trade_tid:
            trades = np.flatnonzero(tids == trade_tid)
            if trades.size:
                t_inst, t_event = inst[trades], event[trades]
                t_last = np.ones(trades.size, bool)
                t_last[:-1] = (t_inst[1:] != t_inst[:-1]) | (t_event[1:] != t_event[:-1])
                mei[trades[t_last]] |= codes.MEI_LAST_TRADE_MSG
        msgs[:, MEI_AT] = mei
        first_seq = int(self.channel_seq[feed]) + 1
        self.channel_seq[feed] += inst.size
        # packets: one per instrument run, cut every 1,091 records
        if int(counts.max()) <= _MAX_RECORDS:
            firsts = starts
        else:
            firsts = np.concatenate(
                [np.arange(s, s + c, _MAX_RECORDS) for s, c in zip(starts.tolist(), counts.tolist(), strict=True)]
            )
        chunk = Chunk(
            feed,
            first_seq,
            sending_time,
            msgs,
            np.append(firsts, inst.size),
            self.security_ids[inst[firsts]],
        )
        self.retention[feed].add(chunk)
        self.records_published += inst.size
        self.packets_published += firsts.size
        return reset, chunk

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


def _group_starts(sorted_keys: Array) -> Array:
    """Start index of each run of equal keys in a sorted, non-empty array."""
    return np.flatnonzero(np.concatenate(([True], sorted_keys[1:] != sorted_keys[:-1])))


def channel_packet(feed: int, now: int, last_seq: int, event: int) -> Packet:
    """One unsequenced packet on the feed's channel topic holding one ChannelHeartbeat."""
    rec = new_records(codes.TEMPLATE_CHANNEL_HEARTBEAT)
    rec["TransactTime"] = now
    rec["LastChannelSeqNum"] = last_seq
    rec["ChannelEvent"] = event
    return Packet(feed, feeds.CHANNEL_SECURITY_ID, 0, now, rec.view(np.uint8).reshape(1, _MSG))
