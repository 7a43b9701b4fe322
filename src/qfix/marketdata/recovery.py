"""Sequencing and gap recovery of one feed, for a subscriber (WIRE.md §6.6), sans-I/O.

Theory of operation. Every sequenced record names its instrument and RptSeq. A record is
applied only when it is the instrument's next (RptSeq = last + 1); a later one waits in
that instrument's pending map, keyed by RptSeq, and a wait reveals a gap: the state asks
for a replay of the missing ChannelSeqNums, and if that does not close it, a snapshot of
the instrument. Because waiting records are keyed, live packets, replayed packets and
snapshots may arrive in any order and still apply exactly once, in order.

A whole-feed subscriber also watches ChannelSeqNum: a packet beyond the next expected one,
or a heartbeat naming a higher last number, means records of some instrument were lost,
possibly its last ones, so the missing range is replayed for every instrument. A
ChannelSeqNum below the expected one, or a Reset, drops the feed's books and starts again
from a snapshot. Requests leave through :attr:`FeedState.wants`; the caller sends them
one at a time and hands the replies back. An epoch number ties each request to the feed
numbering it was made under, so a reply that straddles a reset is ignored.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Final

from qfix.marketdata.book import Book
from qfix.wire import codes, schema

__all__ = ["FeedState", "FeedStats", "Want"]

_MSG: Final = codes.MESSAGE_SIZE
_HEAD: Final = struct.Struct("<HHHH")
_U32: Final = struct.Struct("<I")
_U64: Final = struct.Struct("<Q")
_RPT_SEQ_AT: Final = int(schema.ADD_ORDER.fields["RptSeq"][1])  # type: ignore[index]
_MEI_AT: Final = int(schema.ADD_ORDER.fields["MatchEventIndicator"][1])  # type: ignore[index]
_HEARTBEAT: Final = struct.Struct("<QB")  # LastChannelSeqNum, ChannelEvent
_HEARTBEAT_AT: Final = int(schema.CHANNEL_HEARTBEAT.fields["LastChannelSeqNum"][1])  # type: ignore[index]
_SNAPSHOT_L_AT: Final = int(schema.SNAPSHOT_START.fields["LastChannelSeqNum"][1])  # type: ignore[index]
#: records one instrument may hold back while it waits for a gap to close
_MAX_PENDING: Final = 1_000_000
SNAPSHOT: Final = "snapshot"
REPLAY: Final = "replay"


@dataclass(frozen=True)
class Want:
    """A request the feed needs sent: a snapshot of ``security_id`` (0 = all) or a replay
    of ChannelSeqNums ``[start, start + count)`` filtered to ``security_id`` (0 = all)."""

    feed: int
    kind: str
    security_id: int
    epoch: int
    start: int = 0
    count: int = 0


@dataclass
class FeedStats:
    packets: int = 0
    records: int = 0
    #: packets dropped because a record was not schema 61 with a 52-byte block
    bad_packets: int = 0
    #: records skipped: a newer version or an unknown template
    skipped: int = 0
    gaps: int = 0
    replays: int = 0
    snapshots: int = 0
    resets: int = 0
    #: records that did not fit the book (it was out of step): recovered by snapshot
    out_of_step: int = 0


@dataclass
class _Instrument:
    last: int | None = None  # last applied RptSeq; None until a snapshot set it
    last_cseq: int = 0
    pending: dict[int, tuple[int, bytes]] = field(default_factory=dict)
    recovering: bool = False


class FeedState:
    """One feed's numbering and recovery over a shared set of books.

    Args:
        feed: the MDFeed code.
        books: SecurityID -> Book, shared by every feed of one subscriber.
        security_ids: the instruments subscribed to; None for the whole feed.
    """

    def __init__(self, feed: int, books: dict[int, Book], security_ids: frozenset[int] | None = None) -> None:
        self.feed = feed
        self.books = books
        self.security_ids = security_ids
        self.stats = FeedStats()
        self.wants: list[Want] = []
        self.epoch = 0
        self._inst: dict[int, _Instrument] = {}
        self._next_cseq = 0  # whole feed only: the next ChannelSeqNum expected, 0 = unknown
        self._first_live = 0
        self._start()

    @property
    def whole_feed(self) -> bool:
        return self.security_ids is None

    @property
    def next_channel_seq(self) -> int:
        return self._next_cseq

    def synced(self, security_id: int) -> bool:
        """Whether the instrument's book is live: snapshot taken and no gap open."""
        inst = self._inst.get(security_id)
        return inst is not None and inst.last is not None and not inst.pending

    def open_gaps(self) -> int:
        """Instruments not live now (waiting for a snapshot or a replay)."""
        return sum(1 for k in self._wanted_ids() if not self.synced(k))

    def _wanted_ids(self) -> list[int]:
        return sorted(self.security_ids) if self.security_ids is not None else sorted(self._inst)

    def _start(self) -> None:
        if self.security_ids is None:
            self.wants.append(Want(self.feed, SNAPSHOT, 0, self.epoch))
        else:
            for k in sorted(self.security_ids):
                self._instrument(k).recovering = True
                self.wants.append(Want(self.feed, SNAPSHOT, k, self.epoch))

    def _instrument(self, security_id: int) -> _Instrument:
        inst = self._inst.get(security_id)
        if inst is None:
            inst = self._inst[security_id] = _Instrument()
            self.books.setdefault(security_id, Book(security_id))
        return inst

    # --- live and replayed packets ------------------------------------------------------

    def packet(self, seq: int, security_id: int, data: bytes, *, replayed: bool = False) -> set[int]:
        """A packet of records (``data``, a multiple of 60 bytes) with its header's
        ChannelSeqNum (0 = unsequenced). Returns instruments whose event completed."""
        n = len(data) // _MSG
        if n == 0 or len(data) % _MSG or not self._well_formed(data, n):
            self.stats.bad_packets += 1
            return set()
        self.stats.packets += 1
        self.stats.records += n
        if seq == 0:
            if security_id == 0:
                self._channel(data, n)
            return set()
        if self.security_ids is not None and security_id not in self.security_ids:
            return set()
        if self.whole_feed and not replayed and self._channel_order(seq, n):
            return set()
        inst = self._instrument(security_id)
        for i in range(n):
            rpt = _U32.unpack_from(data, i * _MSG + _RPT_SEQ_AT)[0]
            if inst.last is None or rpt > inst.last:
                inst.pending[rpt] = (seq + i, data[i * _MSG : (i + 1) * _MSG])
        return self._drain(security_id, inst)

    def _well_formed(self, data: bytes, n: int) -> bool:
        for i in range(n):
            block, _, schema_id, _ = _HEAD.unpack_from(data, i * _MSG)
            if block != codes.BLOCK_LENGTH or schema_id != codes.SCHEMA_MARKET_DATA:
                return False
        return True

    def _channel_order(self, seq: int, n: int) -> bool:
        """Track ChannelSeqNum; True if the packet started a reset (and is to be dropped)."""
        if not self._first_live:
            self._first_live = seq
        if self._next_cseq and seq < self._next_cseq:
            self.reset()  # lower than expected: the publisher restarted its numbering
            self._first_live = seq
            self._next_cseq = seq + n
            return False
        if self._next_cseq and seq > self._next_cseq:
            self._want_channel_replay(self._next_cseq, seq - self._next_cseq)
        self._next_cseq = max(self._next_cseq, seq + n)
        return False

    def _want_channel_replay(self, start: int, count: int) -> None:
        self.stats.gaps += 1
        self.wants.append(Want(self.feed, REPLAY, 0, self.epoch, start, count))

    def _drain(self, security_id: int, inst: _Instrument) -> set[int]:
        done: set[int] = set()
        if inst.last is None:
            if len(inst.pending) > _MAX_PENDING:
                inst.pending.clear()
            return done
        book = self.books[security_id]
        pending = inst.pending
        while pending:
            item = pending.pop(inst.last + 1, None)
            if item is None:
                break
            cseq, rec = item
            _, template_id, _, version = _HEAD.unpack_from(rec)
            if version > codes.SCHEMA_VERSION:
                self.stats.skipped += 1
            else:
                try:
                    book.apply(template_id, rec)
                except KeyError:
                    self._out_of_step(security_id, inst)
                    return done
            inst.last += 1
            inst.last_cseq = cseq
            if rec[_MEI_AT] & codes.MEI_END_OF_EVENT:
                done.add(security_id)
        if pending and not inst.recovering:
            self.stats.gaps += 1
            inst.recovering = True
            first_waiting = min(pending.values())[0]
            start = inst.last_cseq + 1
            if first_waiting > start:
                self.wants.append(Want(self.feed, REPLAY, security_id, self.epoch, start, first_waiting - start))
            else:
                self.wants.append(Want(self.feed, SNAPSHOT, security_id, self.epoch))
        if len(pending) > _MAX_PENDING:
            pending.clear()
        return done

    def _out_of_step(self, security_id: int, inst: _Instrument) -> None:
        self.stats.out_of_step += 1
        inst.last = None
        if not inst.recovering:
            inst.recovering = True
            self.wants.append(Want(self.feed, SNAPSHOT, security_id, self.epoch))

    # --- channel records ------------------------------------------------------------------

    def _channel(self, data: bytes, n: int) -> None:
        for i in range(n):
            _, template_id, _, _ = _HEAD.unpack_from(data, i * _MSG)
            if template_id != codes.TEMPLATE_CHANNEL_HEARTBEAT:
                continue
            last, event = _HEARTBEAT.unpack_from(data, i * _MSG + _HEARTBEAT_AT)
            if event == codes.CHANNEL_EVENT_RESET or (self._next_cseq and last < self._next_cseq - 1):
                # a heartbeat below what was seen: the publisher restarted and its Reset was missed
                self.reset()
            elif self.whole_feed and self._next_cseq and last >= self._next_cseq:
                self._want_channel_replay(self._next_cseq, last - self._next_cseq + 1)
                self._next_cseq = last + 1

    def reset(self) -> None:
        """Drop everything this feed built and start again from a snapshot."""
        self.stats.resets += 1
        self.epoch += 1
        self.wants = [w for w in self.wants if w.epoch == self.epoch]
        for k in self._inst:
            self.books[k].clear(self.feed)
        self._inst.clear()
        self._next_cseq = 0
        self._first_live = 0
        self._start()

    # --- replies ----------------------------------------------------------------------------

    def snapshot(self, security_id: int, data: bytes) -> set[int]:
        """One instrument's complete snapshot: SnapshotStart, body, SnapshotEnd."""
        rpt = _U32.unpack_from(data, _RPT_SEQ_AT)[0]
        last_cseq = _U64.unpack_from(data, _SNAPSHOT_L_AT)[0]
        if self.security_ids is not None and security_id not in self.security_ids:
            return set()
        inst = self._instrument(security_id)
        book = self.books[security_id]
        book.clear(self.feed)
        for i in range(len(data) // _MSG):
            _, template_id, _, version = _HEAD.unpack_from(data, i * _MSG)
            if version <= codes.SCHEMA_VERSION:
                book.apply(template_id, data, i * _MSG)
        self.stats.snapshots += 1
        inst.last = rpt
        inst.last_cseq = last_cseq
        inst.recovering = False
        for old in [r for r in inst.pending if r <= rpt]:
            del inst.pending[old]
        return self._drain(security_id, inst) | {security_id}

    def complete(self, want: Want, status: int, last_seq: int) -> None:
        """The RequestComplete of ``want`` arrived (its records were handed over before)."""
        if want.epoch != self.epoch:
            return
        if want.kind == SNAPSHOT:
            if want.security_id == 0 and self.whole_feed:
                if status != codes.REQUEST_COMPLETED:
                    self.wants.append(Want(self.feed, SNAPSHOT, 0, self.epoch))
                    return
                # live packets already queued may start above L: what lies between is lost
                if not self._next_cseq:
                    self._next_cseq = last_seq + 1
                elif self._first_live > last_seq + 1:
                    self._want_channel_replay(last_seq + 1, self._first_live - last_seq - 1)
            elif want.security_id and status != codes.REQUEST_COMPLETED:
                self.wants.append(Want(self.feed, SNAPSHOT, want.security_id, self.epoch))
            return
        self.stats.replays += 1
        if want.security_id == 0:
            if status != codes.REQUEST_COMPLETED:
                self.wants.append(Want(self.feed, SNAPSHOT, 0, self.epoch))
            return
        inst = self._instrument(want.security_id)
        inst.recovering = False
        if status != codes.REQUEST_COMPLETED or inst.pending or inst.last is None:
            inst.recovering = True
            self.wants.append(Want(self.feed, SNAPSHOT, want.security_id, self.epoch))
