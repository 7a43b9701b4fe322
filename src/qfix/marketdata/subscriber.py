"""The market-data subscriber of the SDK: feeds in, exact books out.

:class:`Subscriber` connects a SUB socket to the feed and a DEALER to the snapshot and
replay service, and keeps a :class:`~qfix.marketdata.book.Book` per instrument from the
feeds it is given. Sequencing and recovery are :class:`~qfix.marketdata.recovery.FeedState`'s
business; this module only moves packets between the sockets and the feed states and
sends their requests one at a time (WIRE.md §6.5 allows one outstanding per DEALER).

Example::

    from qfix.marketdata import Subscriber
    with Subscriber("tcp://127.0.0.1:5556", "tcp://127.0.0.1:5557") as md:
        while True:
            for update in md.poll(100):
                book = md.books[update.security_id]
                print(book.definition.symbol, book.bbo)
"""

from __future__ import annotations

import itertools
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import zmq

from qfix.marketdata import _live, _recv, _store, feeds
from qfix.marketdata.book import Book
from qfix.marketdata.recovery import SNAPSHOT, FeedState, Want
from qfix.wire import codes, schema
from qfix.wire.codec import new_records

__all__ = ["Subscriber", "SubscriberCore", "Update", "encode_request", "warm_up"]

_MSG: Final = codes.MESSAGE_SIZE
_TEMPLATE_AT: Final = 2
_MIN_BACKOFF: Final = 0.05  # seconds before asking again after a Busy answer, doubling up to
_MAX_BACKOFF: Final = 2.0
_UNPACK_HEADER: Final = feeds.HEADER.unpack
#: parsed topics kept (every feed of 10,000 instruments is 40,000)
_TOPIC_CACHE: Final = 1 << 18
_UNSEEN: Final = (-1, -1)
_FRAMES: Final = 3  #: topic, header, records
_SECURITY_ID_MASK: Final = (1 << _live.UPDATE_FEED_SHIFT) - 1
#: each frame's offset and length columns in a packet table
_FRAME_COLUMNS: Final = (
    (_recv.TOPIC_AT, _recv.TOPIC_LEN),
    (_recv.HEADER_AT, _recv.HEADER_LEN),
    (_recv.BODY_AT, _recv.BODY_LEN),
)
#: messages read from one socket per poll, so that one socket cannot starve the other
_READ_BUDGET: Final = 10_000
#: the packet arena of a Subscriber's socket reads, and its table's rows
ARENA_BYTES: Final = 4 << 20
TABLE_ROWS: Final = 4096


@dataclass(frozen=True, slots=True)
class Update:
    """An instrument whose book changed and is consistent again (an event ended, or a
    snapshot was applied) on ``feed``."""

    feed: int
    security_id: int


def encode_request(want: Want, request_id: int, now: int) -> bytes:
    """The 60-byte SnapshotRequest or ReplayRequest for ``want``."""
    if want.kind == SNAPSHOT:
        rec = new_records(codes.TEMPLATE_SNAPSHOT_REQUEST)
    else:
        rec = new_records(codes.TEMPLATE_REPLAY_REQUEST)
        rec["FromChannelSeqNum"] = want.start
        rec["Count"] = min(want.count, 2**32 - 1)
    rec["TransactTime"] = now
    rec["SecurityID"] = want.security_id
    rec["RequestID"] = request_id
    rec["MDFeed"] = want.feed
    return rec.tobytes()


def warm_up() -> bool:
    """Compile (or load from Numba's cache) the kernels a subscriber runs, by applying one
    made-up instrument's snapshot and live packet to a throwaway subscriber: without it
    the first packets wait for the compiler, seconds on a cold cache. Returns whether the
    live packet took the jitted path (it should)."""
    security_id = 1
    core = SubscriberCore([codes.MD_FEED_L3], [security_id])
    order = new_records(codes.TEMPLATE_SNAPSHOT_ORDER)
    order["SecurityID"] = security_id
    order["OrderID"] = 1
    start = new_records(codes.TEMPLATE_SNAPSHOT_START)
    start["SecurityID"] = security_id
    start["TotNumReports"] = 1
    end = new_records(codes.TEMPLATE_SNAPSHOT_END)
    end["SecurityID"] = security_id
    core.feeds[codes.MD_FEED_L3].snapshot(security_id, start.tobytes() + order.tobytes() + end.tobytes())
    live = new_records(codes.TEMPLATE_ORDER_DELETE)
    live["SecurityID"] = security_id
    live["RptSeq"] = 1
    live["OrderID"] = 1
    topic = feeds.topic(codes.MD_FEED_L3, security_id)
    core.feed_message([topic, feeds.pack_header(1, 1), live.tobytes()])
    return bool(core.applied[0]) and not core.books[security_id].orders


class SubscriberCore:
    """The subscriber without sockets: feed messages and reply messages in, request bytes
    out (sans-I/O, so tests drive it packet by packet).

    Args:
        feeds_: the feeds to follow (MDFeed codes).
        security_ids: instruments to follow; None for every instrument.
        request_timeout: seconds to wait for a reply before asking again.
    """

    def __init__(
        self, feeds_: Iterable[int], security_ids: Iterable[int] | None = None, *, request_timeout: float = 5.0
    ) -> None:
        self.request_timeout = request_timeout
        self.books: dict[int, Book] = {}
        self.security_ids = None if security_ids is None else frozenset(security_ids)
        self.store = _live.new_store()
        self.feeds = {f: FeedState(f, self.books, self.security_ids, self.store) for f in sorted(set(feeds_))}
        if not self.feeds:
            raise ValueError("a subscriber needs at least one feed")
        self._queue: deque[Want] = deque()
        self._outstanding: Want | None = None
        self._sent_at = 0.0
        self._request_ids = itertools.count(1)
        self._request_id = 0
        self._snap_parts: list[bytes] = []
        self._now = 0.0  # the monotonic time of the last next_request call
        self._backoff = 0.0
        self._not_before = 0.0
        #: requests that timed out and were asked again
        self.timeouts = 0
        self._topics: dict[bytes, tuple[int, int] | None] = {}
        #: after :meth:`feed_packets`: 1 for each table row the jitted path applied on arrival
        self.applied = np.zeros(0, np.uint8)
        self._asides = np.zeros((0, _live.ASIDE_COLUMNS), np.int64)
        self._updates = np.zeros(0, np.int64)
        self._stop = np.zeros(_live.STOP_SIZE, np.int64)

    def topics(self) -> list[bytes]:
        """The SUB subscriptions this subscriber needs."""
        if self.security_ids is None:
            return [feeds.FEED_NAMES[f].encode() + b"." for f in self.feeds]
        return [feeds.topic(f, k) for f in self.feeds for k in sorted({0, *self.security_ids})]

    def open_gaps(self) -> int:
        """Instruments, summed over feeds, whose book is not live (waiting for recovery)."""
        return sum(state.open_gaps() for state in self.feeds.values())

    def idle(self) -> bool:
        """No request outstanding or queued and no gap open."""
        self._collect_wants()
        return self._outstanding is None and not self._queue and self.open_gaps() == 0

    def feed_message(self, frames: list[bytes]) -> set[tuple[int, int]]:
        """One message from the SUB socket; returns the (feed, SecurityID) pairs updated."""
        updates: set[tuple[int, int]] = set()
        self.feed_messages([frames], updates)
        return updates

    def feed_messages(self, messages: list[list[bytes]], updates: set[tuple[int, int]] | None = None) -> None:
        """Messages from the SUB socket as pyzmq gives them, packed into one packet table
        for :meth:`feed_packets` (a table per call, not per message, keeps the cost per
        packet down where the socket is read through pyzmq)."""
        if not messages:
            return
        table = np.zeros((len(messages), _recv.COLUMNS), np.int64)
        sizes = [[len(m[k]) if k < len(m) else _recv.MISSING for k in range(_FRAMES)] for m in messages]
        lengths = np.array(sizes, np.int64)
        ends = np.cumsum(np.maximum(lengths, 0).ravel()).reshape(lengths.shape)
        for k, (at_col, len_col) in enumerate(_FRAME_COLUMNS):
            table[:, at_col] = ends[:, k] - np.maximum(lengths[:, k], 0)
            table[:, len_col] = lengths[:, k]
        table[:, _recv.FRAMES] = [len(m) for m in messages]
        arena = np.frombuffer(b"".join(f for m in messages for f in m[:_FRAMES]), np.uint8)
        self.feed_packets(arena, table, len(messages), updates)

    def feed_packets(
        self,
        arena: npt.NDArray[np.uint8],
        table: npt.NDArray[np.int64],
        count: int,
        updates: set[tuple[int, int]] | None = None,
    ) -> None:
        """The first ``count`` messages of a packet table (``_recv``'s layout, frames in
        ``arena``), adding the (feed, SecurityID) pairs updated to ``updates`` unless it
        is None (a caller that reads the books without notices saves building them).
        Packets that continue their books exactly are applied by jitted code; each other
        one goes through :meth:`_feed_frames` as before, in order."""
        store = self.store
        self._room(arena.size, count)
        applied = self.applied[:count]
        applied[:] = 0
        stop = self._stop
        row = 0
        while row < count:
            _live.walk(arena, table, row, count, store, applied, self._asides, self._updates, stop)
            self._apply_asides(arena, int(stop[_live.STOP_ASIDES]))
            if updates is not None:
                keys = np.unique(self._updates[: stop[_live.STOP_UPDATES]])
                updates.update(
                    zip((keys >> _live.UPDATE_FEED_SHIFT).tolist(), (keys & _SECURITY_ID_MASK).tolist(), strict=True)
                )
            row = int(stop[_live.STOP_ROW])
            why = int(stop[_live.STOP_WHY])
            if why == _live.ROOM:
                store.ensure(int(table[row, _recv.BODY_LEN]) // _MSG)
            elif why == _live.OUT_OF_STEP:
                self._misfit(arena, table, row, int(stop[_live.STOP_RECORD]))
                row += 1
            elif why == _live.SLOW:
                changed = self._feed_frames(self._frames(arena, table, row))
                if updates is not None:
                    updates |= changed
                row += 1
        for state in self.feeds.values():
            state.take_counts()

    def _room(self, arena_bytes: int, count: int) -> None:
        if self.applied.size < count:
            self.applied = np.zeros(max(count, 2 * self.applied.size), np.uint8)
            self._updates = np.zeros(self.applied.size, np.int64)
        if self._asides.shape[0] < arena_bytes // _MSG + 1:
            self._asides = np.zeros((arena_bytes // _MSG + 1, _live.ASIDE_COLUMNS), np.int64)

    def _apply_asides(self, arena: npt.NDArray[np.uint8], count: int) -> None:
        """The records the jitted path left to the books (trades, status, reference data),
        in order, before anything else touches the books."""
        if not count:
            return
        insts = self.store.insts
        view = arena.data  # a memoryview of the arena
        for at, inst, _ in self._asides[:count].tolist():
            template_id = int(arena[at + _TEMPLATE_AT]) | int(arena[at + _TEMPLATE_AT + 1]) << 8
            self.books[int(insts[inst, _store.I_ID])].apply(template_id, view, at)

    def _misfit(self, arena: npt.NDArray[np.uint8], table: npt.NDArray[np.int64], row: int, failed: int) -> None:
        frames = self._frames(arena, table, row)
        where = feeds.parse_topic(frames[0])
        if where is None:  # the jitted path parsed it: cannot happen
            raise RuntimeError("a packet the jitted path applied has no topic")
        seq, _ = _UNPACK_HEADER(frames[1])
        self.feeds[where[0]].misfit(where[1], seq, frames[2], failed)

    @staticmethod
    def _frames(arena: npt.NDArray[np.uint8], table: npt.NDArray[np.int64], row: int) -> list[bytes]:
        """Table row ``row`` as the frames pyzmq would have given. A frame the arena cut
        short, or frames past the third (dropped by the receive), give a message of the
        wrong frame count, which every path ignores (a prefix of records must never be
        taken for a whole packet)."""
        frames: list[bytes] = []
        for at_col, len_col in _FRAME_COLUMNS[: int(table[row, _recv.FRAMES])]:
            at = int(table[row, at_col])
            size = int(table[row, len_col])
            if size > arena.size - at:
                return frames  # truncated: fewer than three frames
            frames.append(arena[at : at + size].tobytes())
        if int(table[row, _recv.FRAMES]) > _FRAMES:
            frames.append(b"")  # the extra frames were dropped; the count still rules it out
        return frames

    def _feed_frames(self, frames: list[bytes], *, replayed: bool = False) -> set[tuple[int, int]]:
        updates: set[tuple[int, int]] = set()
        if len(frames) != 3:
            return updates
        topic = frames[0]
        where = self._topics.get(topic, _UNSEEN)
        if where is _UNSEEN:
            where = feeds.parse_topic(topic)
            if len(self._topics) >= _TOPIC_CACHE:
                self._topics.clear()  # topics nobody subscribed to cannot fill memory
            self._topics[topic] = where
        if where is None or where[0] not in self.feeds:
            return updates
        feed, security_id = where
        header = frames[1]
        if len(header) != feeds.HEADER_SIZE:
            self.feeds[feed].stats.bad_packets += 1
            return updates
        seq, sent = _UNPACK_HEADER(header)
        for k in self.feeds[feed].packet(seq, security_id, frames[2], sent, replayed=replayed):
            updates.add((feed, k))
        return updates

    def reply_message(self, frames: list[bytes]) -> set[tuple[int, int]]:
        """One message from the DEALER (a reply to the outstanding request)."""
        updates: set[tuple[int, int]] = set()
        want = self._outstanding
        if want is None or len(frames) != 3:
            return updates
        where = feeds.parse_topic(frames[0])
        if where is None:
            return updates
        feed, security_id = where
        data = frames[2]
        self._sent_at = self._now  # the reply is arriving: its timeout runs from its last packet
        if security_id == 0 and len(data) == _MSG and data[_TEMPLATE_AT] == codes.TEMPLATE_REQUEST_COMPLETE:
            done = np.frombuffer(data, schema.REQUEST_COMPLETE)[0]
            if int(done["RequestID"]) == self._request_id:
                self._outstanding = None
                status = int(done["RequestStatus"])
                if status == codes.REQUEST_BUSY:
                    self._backoff = min(_MAX_BACKOFF, max(_MIN_BACKOFF, 2 * self._backoff))
                    self._not_before = self._now + self._backoff
                else:
                    self._backoff = 0.0
                state = self.feeds[want.feed]
                state.complete(want, status, int(done["LastChannelSeqNum"]), int(done["TransactTime"]))
            return updates
        if feed != want.feed or want.epoch != self.feeds[feed].epoch:
            return updates  # a reply made before a reset of its feed: its numbering is gone
        if want.kind != SNAPSHOT:
            return self._feed_frames(frames, replayed=True)
        self._snap_parts.append(data)
        last = data[-_MSG:]
        if len(last) == _MSG and last[_TEMPLATE_AT] == codes.TEMPLATE_SNAPSHOT_END:
            whole = b"".join(self._snap_parts)
            self._snap_parts = []
            if self.feeds[feed].epoch == want.epoch:
                for k in self.feeds[feed].snapshot(security_id, whole):
                    updates.add((feed, k))
        return updates

    def _collect_wants(self) -> None:
        for state in self.feeds.values():
            if state.wants:
                for want in state.wants:
                    if want not in self._queue and want != self._outstanding:
                        self._queue.append(want)
                state.wants.clear()

    def next_request(self, now: float, now_ns: int) -> tuple[bytes | None, bool]:
        """The next request to send, if one may be sent now, and whether the outstanding
        one timed out (the caller then replaces its DEALER, dropping any late reply)."""
        self._now = now
        self._collect_wants()
        timed_out = False
        if self._outstanding is None and now < self._not_before:
            return None, False  # the service said Busy: wait before asking again
        if self._outstanding is not None:
            if now - self._sent_at < self.request_timeout:
                return None, False
            self.timeouts += 1
            timed_out = True
            self._queue.appendleft(self._outstanding)
            self._outstanding = None
        while self._queue:
            want = self._queue.popleft()
            if want.epoch != self.feeds[want.feed].epoch:
                continue  # made before a reset of its feed
            self._request_id = next(self._request_ids)
            self._outstanding = want
            self._sent_at = now
            self._snap_parts = []
            return encode_request(want, self._request_id, now_ns), timed_out
        return None, timed_out


class Subscriber:
    """Keeps every subscribed instrument's book from the feed, recovering gaps.

    Args:
        endpoint: the feed's PUB endpoint (``tcp://host:md_port``).
        snapshot_endpoint: the snapshot and replay service's endpoint.
        feeds_: the feeds to follow (MDFeed codes); all four by default.
        security_ids: instruments to follow; None (default) for every instrument.
        context: a zmq context (a private one by default).
        request_timeout: seconds to wait for a reply before asking again.
        rcvhwm: the SUB socket's high-water mark (packets).
        rcvbuf: the SUB socket's kernel receive buffer in bytes (0: the system's default).
        jitted: receive packets with jitted calls into libzmq (None: wherever that is
            possible, ``qfix.marketdata._recv.AVAILABLE``); False reads through pyzmq.
    """

    def __init__(
        self,
        endpoint: str,
        snapshot_endpoint: str,
        feeds_: Iterable[int] = feeds.ALL_FEEDS,
        *,
        security_ids: Iterable[int] | None = None,
        context: zmq.Context[Any] | None = None,
        request_timeout: float = 5.0,
        rcvhwm: int = 1_000_000,
        rcvbuf: int = 0,
        jitted: bool | None = None,
    ) -> None:
        if jitted is None:
            jitted = _recv.AVAILABLE
        elif jitted and not _recv.AVAILABLE:
            raise ValueError("jitted=True, but libzmq is not reachable from jitted code in this process")
        self.core = SubscriberCore(feeds_, security_ids, request_timeout=request_timeout)
        self.books = self.core.books
        self.feeds = self.core.feeds
        self._own_context = context is None
        self.context: zmq.Context[Any] = context if context is not None else zmq.Context()
        self.snapshot_endpoint = snapshot_endpoint
        self.sub = self.context.socket(zmq.SUB)
        self.sub.setsockopt(zmq.RCVHWM, rcvhwm)
        if rcvbuf:
            self.sub.setsockopt(zmq.RCVBUF, rcvbuf)
        self.sub.setsockopt(zmq.LINGER, 0)
        for prefix in self.core.topics():
            self.sub.setsockopt(zmq.SUBSCRIBE, prefix)
        self.sub.connect(endpoint)
        self.dealer = self._dealer()
        self.closed = False
        # where libzmq is reachable from jitted code, packets are received a table at a time
        self._arena = np.zeros(ARENA_BYTES, np.uint8) if jitted else None
        self._table = np.zeros((TABLE_ROWS, _recv.COLUMNS), np.int64) if jitted else None

    def _dealer(self) -> zmq.Socket[Any]:
        sock: zmq.Socket[Any] = self.context.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.connect(self.snapshot_endpoint)
        return sock

    def __enter__(self) -> Subscriber:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.sub.close(0)
        self.dealer.close(0)
        if self._own_context:
            self.context.term()

    # --- reading the books -----------------------------------------------------------------

    def by_symbol(self, symbol: str) -> Book:
        """The book of the instrument whose SecurityDefinition names ``symbol``."""
        for book in self.books.values():
            if book.definition is not None and book.definition.symbol == symbol:
                return book
        raise KeyError(f"no instrument {symbol!r} on this feed (yet)")

    def open_gaps(self) -> int:
        """Instruments, summed over feeds, whose book is not live (waiting for recovery)."""
        return self.core.open_gaps()

    def idle(self) -> bool:
        """No request outstanding or queued and no gap open."""
        return self.core.idle()

    # --- the loop ------------------------------------------------------------------------

    def poll(self, timeout_ms: int = 0) -> list[Update]:
        """Wait up to ``timeout_ms`` for packets, apply all that are ready, send the next
        request; returns the instruments that changed."""
        updates: set[tuple[int, int]] = set()
        self._send_next()
        poller = zmq.Poller()
        poller.register(self.sub, zmq.POLLIN)
        poller.register(self.dealer, zmq.POLLIN)
        ready = dict(poller.poll(timeout_ms))
        if self.dealer in ready:
            self._read(self.dealer, self.core.reply_message, updates)
        if self.sub in ready:
            if self._arena is not None and self._table is not None:
                self._read_packets(self._arena, self._table, updates)
            else:
                self._read_batched(updates)
        self._send_next()
        return [Update(f, k) for f, k in sorted(updates)]

    def run_until(self, done: Callable[[], bool], timeout: float) -> bool:
        """Poll until ``done()`` is true (True) or ``timeout`` seconds pass (False)."""
        end = time.monotonic() + timeout
        while not done():
            left = end - time.monotonic()
            if left <= 0:
                return False
            self.poll(int(min(left, 0.05) * 1000) + 1)
        return True

    def __iter__(self) -> Iterator[Update]:
        """Updates as they happen, until the subscriber is closed."""
        while not self.closed:
            yield from self.poll(100)

    @staticmethod
    def _read(
        sock: zmq.Socket[Any], handle: Callable[[list[bytes]], set[tuple[int, int]]], updates: set[tuple[int, int]]
    ) -> None:
        for _ in range(_READ_BUDGET):
            try:
                frames = sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            updates |= handle(frames)

    def _read_batched(self, updates: set[tuple[int, int]]) -> None:
        """The SUB's waiting messages through pyzmq, applied a table at a time."""
        read = 0
        while read < _READ_BUDGET:
            messages = []
            for _ in range(TABLE_ROWS):
                try:
                    messages.append(self.sub.recv_multipart(zmq.NOBLOCK))
                except zmq.Again:
                    break
            self.core.feed_messages(messages, updates)
            read += len(messages)
            if len(messages) < TABLE_ROWS:
                return

    def _read_packets(
        self, arena: npt.NDArray[np.uint8], table: npt.NDArray[np.int64], updates: set[tuple[int, int]]
    ) -> None:
        """The SUB's waiting packets through the jitted receive, a table at a time."""
        read = 0
        while read < _READ_BUDGET:
            got = _recv.recv_packets(self.sub, arena, table)
            if not got:
                return
            self.core.feed_packets(arena, table, got, updates)
            read += got

    def _send_next(self) -> None:
        while True:
            request, timed_out = self.core.next_request(time.monotonic(), time.time_ns())
            if timed_out:
                self.dealer.close(0)
                self.dealer = self._dealer()
            if request is None:
                return
            self.dealer.send(request)
            return
