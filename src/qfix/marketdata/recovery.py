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

Packets and replies travel on different sockets, so a packet older than a snapshot can
arrive after it. Every packet carries the server's SendingTime and every reply's
RequestComplete the time it was served: a packet sent before the last whole-feed
snapshot was served is never taken for a sign of a reset or a gap (its records are
simply already in the books), and a snapshot never rolls a book back behind records it
has already applied.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final

from qfix.marketdata import _live
from qfix.marketdata._live import I64_MAX, NONE
from qfix.marketdata._store import Store
from qfix.marketdata.book import Book
from qfix.wire import codes, schema

__all__ = ["FeedState", "FeedStats", "Want"]

_MSG: Final = codes.MESSAGE_SIZE
_HEAD: Final = struct.Struct("<HHHH")
_U32: Final = struct.Struct("<I")
_U64: Final = struct.Struct("<Q")
_RPT_SEQ_AT: Final = schema.byte_offset(schema.ADD_ORDER, "RptSeq")
_MEI_AT: Final = schema.byte_offset(schema.ADD_ORDER, "MatchEventIndicator")
#: blockLength, templateId, schemaId, version and RptSeq of a schema-61 record
_HEAD_RPT: Final = struct.Struct(f"<HHHH{_RPT_SEQ_AT - _HEAD.size}xI")
_HEARTBEAT: Final = struct.Struct("<QB")  # LastChannelSeqNum, ChannelEvent
_HEARTBEAT_AT: Final = schema.byte_offset(schema.CHANNEL_HEARTBEAT, "LastChannelSeqNum")
_SNAPSHOT_L_AT: Final = schema.byte_offset(schema.SNAPSHOT_START, "LastChannelSeqNum")
_TOT_AT: Final = schema.byte_offset(schema.SNAPSHOT_START, "TotNumReports")
_SECURITY_ID_AT: Final = schema.byte_offset(schema.ADD_ORDER, "SecurityID")
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
    #: snapshots that were not applied because the book was already past them
    stale_snapshots: int = 0
    #: requests the service answered Busy (asked again after a backoff)
    busy: int = 0
    resets: int = 0
    #: records that did not fit the book (it was out of step): recovered by snapshot
    out_of_step: int = 0
    #: requests the service refused as Invalid (not asked again)
    invalid: int = 0


def _clamped(value: int) -> int:
    return min(value, I64_MAX)


class _Instrument:
    """One instrument's numbering on one feed. ``last`` (the last applied RptSeq; None
    until a snapshot set it) and ``last_cseq`` live in the store's ``marks``, where the
    jitted in-order path reads and moves them too; ``pending`` and ``recovering`` are
    Python's alone, and :meth:`sync` tells the kernel whether records wait."""

    __slots__ = ("_feed", "_slot", "_store", "pending", "recovering")

    def __init__(self, store: Store, slot: int, feed: int) -> None:
        self._store = store
        self._slot = slot
        self._feed = feed
        self.pending: dict[int, tuple[int, bytes]] = {}
        self.recovering = False
        store.marks[slot, feed] = (NONE, 0, 0)

    @property
    def last(self) -> int | None:
        value = int(self._store.marks[self._slot, self._feed, _live.S_LAST])
        return None if value == NONE else value

    @last.setter
    def last(self, value: int | None) -> None:
        self._store.marks[self._slot, self._feed, _live.S_LAST] = NONE if value is None else value

    @property
    def last_cseq(self) -> int:
        return int(self._store.marks[self._slot, self._feed, _live.S_LAST_CSEQ])

    @last_cseq.setter
    def last_cseq(self, value: int) -> None:
        self._store.marks[self._slot, self._feed, _live.S_LAST_CSEQ] = _clamped(value)

    def sync(self) -> None:
        self._store.marks[self._slot, self._feed, _live.S_WAITING] = 1 if self.pending else 0

    def forget(self) -> None:
        """The feed dropped this instrument (a reset): nothing applied, nothing waiting."""
        self._store.marks[self._slot, self._feed] = (NONE, 0, 0)


def _channel_value(column: int) -> property:
    """A feed-level number kept in the store's ``channels`` row, where the jitted
    in-order path reads and moves it too (clamped to int64: see ``_live.I64_MAX``)."""

    def get(self: FeedState) -> int:
        return int(self.store.channels[self.feed, column])

    def put(self: FeedState, value: int) -> None:
        self.store.channels[self.feed, column] = _clamped(value)

    return property(get, put)


class FeedState:
    """One feed's numbering and recovery over a shared set of books.

    Args:
        feed: the MDFeed code.
        books: SecurityID -> Book, shared by every feed of one subscriber.
        security_ids: the instruments subscribed to; None for the whole feed.
    """

    #: whole feed only: the next ChannelSeqNum expected, 0 = unknown
    _next_cseq = _channel_value(_live.C_NEXT)
    #: whole feed only: the first live ChannelSeqNum since the last snapshot
    _first_live = _channel_value(_live.C_FIRST_LIVE)
    #: the highest live ChannelSeqNum seen
    _top_cseq = _channel_value(_live.C_TOP)
    #: when the last whole-feed snapshot was served (server clock)
    _floor_time = _channel_value(_live.C_FLOOR_TIME)

    def __init__(
        self,
        feed: int,
        books: dict[int, Book],
        security_ids: frozenset[int] | None = None,
        store: Store | None = None,
    ) -> None:
        self.feed = feed
        self.books = books
        self.security_ids = security_ids
        self.store = store if store is not None else _live.new_store()
        self.stats = FeedStats()
        self.wants: list[Want] = []
        self.epoch = 0
        self._inst: dict[int, _Instrument] = {}
        self.store.channels[feed] = 0
        self.store.channels[feed, _live.C_ON] = 1
        self.store.channels[feed, _live.C_WHOLE] = 1 if security_ids is None else 0
        self._start()

    @property
    def whole_feed(self) -> bool:
        return self.security_ids is None

    @property
    def next_channel_seq(self) -> int:
        return int(self._next_cseq)

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
            if security_id not in self.books:
                self.books[security_id] = Book(security_id, self.store)
            inst = self._inst[security_id] = _Instrument(self.store, self.store.slot(security_id), self.feed)
        return inst

    def take_counts(self) -> None:
        """Move what the jitted path counted into :attr:`stats`."""
        row = self.store.channels[self.feed]
        self.stats.packets += int(row[_live.C_PACKETS])
        self.stats.records += int(row[_live.C_RECORDS])
        self.stats.skipped += int(row[_live.C_SKIPPED])
        row[_live.C_PACKETS] = row[_live.C_RECORDS] = row[_live.C_SKIPPED] = 0

    # --- live and replayed packets ------------------------------------------------------

    def packet(
        self, seq: int, security_id: int, data: bytes, sending_time: int = 0, *, replayed: bool = False
    ) -> set[int]:
        """A packet of records (``data``, a multiple of 60 bytes) with its header's
        ChannelSeqNum (0 = unsequenced) and SendingTime. Returns the instruments whose
        event completed."""
        try:
            return self._packet(seq, security_id, data, sending_time, replayed)
        finally:
            self._sync(security_id)

    def _sync(self, security_id: int) -> None:
        inst = self._inst.get(security_id)
        if inst is not None:
            inst.sync()

    def _packet(self, seq: int, security_id: int, data: bytes, sending_time: int, replayed: bool) -> set[int]:
        n = len(data) // _MSG
        parsed = self._heads(data, n) if n and not len(data) % _MSG else None
        if parsed is None:
            self.stats.bad_packets += 1
            return set()
        heads, rpts = parsed
        self.stats.packets += 1
        self.stats.records += n
        fresh = not replayed and sending_time > self._floor_time
        if seq == 0:
            if security_id == 0 and fresh:
                self._channel(data, n)
            return set()
        if self.security_ids is not None and security_id not in self.security_ids:
            return set()
        inst = self._instrument(security_id)
        if fresh:
            if self.whole_feed:
                if self._next_cseq and seq < self._next_cseq:
                    self._reset_from(seq, n)  # lower than expected: the publisher restarted its numbering
                    inst = self._instrument(security_id)
                else:
                    self._track(seq, n)
            elif inst.last is not None and seq < inst.last_cseq:
                self.reset()
                inst = self._instrument(security_id)
            self._top_cseq = max(self._top_cseq, seq + n - 1)
        last = inst.last
        if last is not None and not inst.pending and rpts == list(range(last + 1, last + n + 1)):
            return self._apply_in_order(security_id, inst, last, seq, data, heads)
        for i, rpt in enumerate(rpts):
            if last is None or rpt > last:
                inst.pending[rpt] = (seq + i, data[i * _MSG : (i + 1) * _MSG])
        return self._drain(security_id, inst)

    @staticmethod
    def _heads(data: bytes, n: int) -> tuple[list[tuple[int, int]], list[int]] | None:
        """Each record's (templateId, version) and RptSeq, or None if a record is not
        schema 61 with its block length."""
        heads = []
        rpts = []
        for at in range(0, n * _MSG, _MSG):
            block, template_id, schema_id, version, rpt = _HEAD_RPT.unpack_from(data, at)
            if block != codes.BLOCK_LENGTH or schema_id != codes.SCHEMA_MARKET_DATA:
                return None
            heads.append((template_id, version))
            rpts.append(rpt)
        return heads, rpts

    def _apply_in_order(
        self, security_id: int, inst: _Instrument, last: int, seq: int, data: bytes, heads: list[tuple[int, int]]
    ) -> set[int]:
        """The common case: a packet that continues the instrument's book exactly (no gap
        waiting, RptSeqs ``last`` + 1 onwards) is applied straight from the packet, without
        passing through the pending map."""
        book = self.books[security_id]
        done = False
        for i, (template_id, version) in enumerate(heads):
            at = i * _MSG
            if version > codes.SCHEMA_VERSION:
                self.stats.skipped += 1
            else:
                try:
                    book.apply(template_id, data, at)
                except KeyError:
                    self._misfit(security_id, inst, last, seq, data, i)
                    return {security_id} if done else set()
            inst.last = last + 1 + i
            inst.last_cseq = seq + i
            if data[at + _MEI_AT] & codes.MEI_END_OF_EVENT:
                done = True
        return {security_id} if done else set()

    def _misfit(self, security_id: int, inst: _Instrument, last: int, seq: int, data: bytes, failed: int) -> None:
        """Record ``failed`` of an in-order packet (first RptSeq ``last`` + 1) did not fit
        the book: as _drain would, what follows it waits (for the snapshot to drop it)."""
        for j in range(failed + 1, len(data) // _MSG):
            inst.pending[last + 1 + j] = (seq + j, data[j * _MSG : (j + 1) * _MSG])
        self._out_of_step(security_id, inst)

    def misfit(self, security_id: int, seq: int, data: bytes, failed: int) -> None:
        """The jitted in-order path applied this packet up to record ``failed``, which did
        not fit the book (the numbering already stands after the record before it)."""
        inst = self._inst[security_id]
        last = inst.last
        if last is None:
            raise RuntimeError("the jitted path applied a packet to a book with no snapshot")
        self._misfit(security_id, inst, last - failed, seq, data, failed)
        inst.sync()

    def _track(self, seq: int, n: int) -> None:
        """Whole feed: follow ChannelSeqNum, asking for what a jump skipped."""
        if not self._first_live:
            self._first_live = seq
        if self._next_cseq and seq > self._next_cseq:
            self._want_channel_replay(self._next_cseq, seq - self._next_cseq)
        self._next_cseq = max(self._next_cseq, seq + n)

    def _reset_from(self, seq: int, n: int) -> None:
        self.reset()
        self._first_live = seq
        self._next_cseq = seq + n

    def _want_channel_replay(self, start: int, count: int) -> None:
        self.stats.gaps += 1
        self.wants.append(Want(self.feed, REPLAY, 0, self.epoch, start, count))

    def _drain(self, security_id: int, inst: _Instrument) -> set[int]:
        done: set[int] = set()
        pending = inst.pending
        if len(pending) > _MAX_PENDING:
            # too far behind to wait for the gap: start the instrument again from a snapshot
            pending.clear()
            inst.last = None
            self._want_snapshot(security_id, inst)
            return done
        if inst.last is None:
            return done
        book = self.books[security_id]
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
            self._want_hole(security_id, inst)
        return done

    def _want_hole(self, security_id: int, inst: _Instrument) -> None:
        """Ask for the records between the last applied one and the first waiting one."""
        inst.recovering = True
        first_waiting = min(inst.pending.values())[0]
        start = inst.last_cseq + 1
        if first_waiting > start:
            self.wants.append(Want(self.feed, REPLAY, security_id, self.epoch, start, first_waiting - start))
        else:
            self.wants.append(Want(self.feed, SNAPSHOT, security_id, self.epoch))

    def _want_snapshot(self, security_id: int, inst: _Instrument) -> None:
        if not inst.recovering:
            inst.recovering = True
            self.wants.append(Want(self.feed, SNAPSHOT, security_id, self.epoch))

    def _out_of_step(self, security_id: int, inst: _Instrument) -> None:
        self.stats.out_of_step += 1
        inst.last = None
        inst.recovering = False
        self._want_snapshot(security_id, inst)

    # --- channel records ------------------------------------------------------------------

    def _channel(self, data: bytes, n: int) -> None:
        for i in range(n):
            _, template_id, _, _ = _HEAD.unpack_from(data, i * _MSG)
            if template_id != codes.TEMPLATE_CHANNEL_HEARTBEAT:
                continue
            last, event = _HEARTBEAT.unpack_from(data, i * _MSG + _HEARTBEAT_AT)
            if event == codes.CHANNEL_EVENT_RESET or last < self._top_cseq:
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
        for k, inst in self._inst.items():
            self.books[k].clear(self.feed)
            inst.forget()
        self._inst.clear()
        self._next_cseq = 0
        self._first_live = 0
        self._top_cseq = 0
        self._start()

    # --- replies ----------------------------------------------------------------------------

    def snapshot(self, security_id: int, data: bytes) -> set[int]:
        """One instrument's complete snapshot: SnapshotStart, body, SnapshotEnd.

        A snapshot that is not whole (its count or its instrument does not match) is
        dropped and asked again; one older than what the book already applied is dropped."""
        try:
            return self._snapshot(security_id, data)
        finally:
            self._sync(security_id)

    def _snapshot(self, security_id: int, data: bytes) -> set[int]:
        if self.security_ids is not None and security_id not in self.security_ids:
            return set()
        inst = self._instrument(security_id)
        n = len(data) // _MSG
        total = _U32.unpack_from(data, _TOT_AT)[0]
        rpt = _U32.unpack_from(data, _RPT_SEQ_AT)[0]
        if n != total + 2 or any(
            _U32.unpack_from(data, i * _MSG + _SECURITY_ID_AT)[0] != security_id for i in range(n)
        ):
            self.stats.bad_packets += 1
            inst.recovering = False
            self._want_snapshot(security_id, inst)
            return set()
        if inst.last is not None and rpt <= inst.last:
            # the book is already past this snapshot (live records overtook the reply)
            self.stats.stale_snapshots += 1
            for old in [r for r in inst.pending if r <= inst.last]:
                del inst.pending[old]
            inst.recovering = False
            return self._drain(security_id, inst)
        book = self.books[security_id]
        book.clear(self.feed)
        try:
            book.apply_all(data)
        except KeyError:
            self.stats.bad_packets += 1
            inst.recovering = False
            self._want_snapshot(security_id, inst)
            return set()
        self.stats.snapshots += 1
        inst.last = rpt
        inst.last_cseq = _U64.unpack_from(data, _SNAPSHOT_L_AT)[0]
        inst.recovering = False
        for old in [r for r in inst.pending if r <= rpt]:
            del inst.pending[old]
        return self._drain(security_id, inst) | {security_id}

    def complete(self, want: Want, status: int, last_seq: int, served_at: int = 0) -> None:
        """The RequestComplete of ``want`` arrived (its records were handed over before);
        ``served_at`` is its TransactTime, when the service answered."""
        try:
            self._complete(want, status, last_seq, served_at)
        finally:
            self._sync(want.security_id)

    def _complete(self, want: Want, status: int, last_seq: int, served_at: int) -> None:
        if want.epoch != self.epoch:
            return
        if status == codes.REQUEST_INVALID:
            self.stats.invalid += 1  # asking again would get the same answer
            return
        if status == codes.REQUEST_BUSY:
            # the same question later (the caller backs off): falling back to a snapshot
            # would lose a tape's trades, which no snapshot holds
            self.stats.busy += 1
            self.wants.append(want)
            return
        if want.kind == SNAPSHOT:
            self._snapshot_done(want, status, last_seq, served_at)
            return
        self.stats.replays += 1
        end = want.start + want.count
        if status == codes.REQUEST_TRUNCATED and last_seq and last_seq + 1 < end:
            self.wants.append(Want(self.feed, REPLAY, want.security_id, self.epoch, last_seq + 1, end - last_seq - 1))
            return
        if want.security_id == 0:
            if status != codes.REQUEST_COMPLETED:
                self.wants.append(Want(self.feed, SNAPSHOT, 0, self.epoch))
            return
        inst = self._instrument(want.security_id)
        inst.recovering = False
        if status != codes.REQUEST_COMPLETED or inst.last is None:
            self._want_snapshot(want.security_id, inst)
        elif inst.pending:
            if inst.last_cseq >= want.start:
                # it moved the book on, and another hole opened behind it meanwhile: replay that too
                self._want_hole(want.security_id, inst)
            else:
                self._want_snapshot(want.security_id, inst)  # the ring no longer had it

    def _snapshot_done(self, want: Want, status: int, last_seq: int, served_at: int) -> None:
        if status != codes.REQUEST_COMPLETED:
            if want.security_id == 0:
                self.wants.append(want)
            else:
                inst = self._instrument(want.security_id)
                inst.recovering = False
                self._want_snapshot(want.security_id, inst)
            return
        if not self.whole_feed:
            self._floor_time = max(self._floor_time, served_at)
            return
        if want.security_id:
            return
        self._floor_time = max(self._floor_time, served_at)
        # live packets queued before the snapshot may start above L: what lies between is lost
        if not self._next_cseq:
            self._next_cseq = last_seq + 1
        elif self._first_live > last_seq + 1:
            self._want_channel_replay(last_seq + 1, self._first_live - last_seq - 1)
        self._first_live = 0
