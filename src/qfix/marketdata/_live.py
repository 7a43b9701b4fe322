"""The in-order live packet, applied in jitted code: sequencing checks and book updates
for every packet that continues its instrument's book exactly.

Why: nearly every packet of a healthy feed is such a packet, and in Python its topic,
header, RptSeqs and records cost microseconds before the books were touched at all.
:func:`apply_packets` walks a table of received packets (``_recv``'s layout) and
applies each packet that passes every test ``recovery.FeedState.packet`` makes for its
in-order case, with the same effect on the numbering. At the first packet that does not
(a sequencing surprise, an instrument with no snapshot yet or records waiting, an
unsequenced or malformed packet, a record that does not fit its book) it stops and
names the packet, and Python handles it exactly as before; then the walk goes on.

The numbering lives in two arrays of the subscriber's ``Store``, so the Python recovery code
and this kernel read and write the same values: per feed (``channels``: the next
expected ChannelSeqNum and the others ``FeedState`` keeps) and per (instrument, feed)
(``marks``: the last applied RptSeq and its ChannelSeqNum, and whether records wait).
Counters the kernel adds to (packets, records, skipped) are handed to ``FeedStats``
after each call.
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np
import numpy.typing as npt
from numba import njit

from qfix.marketdata import _recv, feeds
from qfix.marketdata._store import (
    ASIDE,
    EMPTY,
    MISFIT,
    Store,
    apply_record,
    find_inst,
    has_room,
    read_i64,
    read_u8,
    read_u16,
    read_u32,
)
from qfix.wire import codes, schema

__all__ = ["apply_packets", "new_store", "walk"]

Array = npt.NDArray[Any]

#: the largest value a numbering array holds: ChannelSeqNums and SendingTimes are u64 on
#: the wire, and one at or above 2^63 (no feed lives that long) is clamped to this
I64_MAX: Final = (1 << 63) - 1

# channels: one row per MDFeed code
C_ON: Final = 0  #: the subscriber follows this feed
C_WHOLE: Final = 1  #: whole feed (no instrument filter): ChannelSeqNum is tracked
C_NEXT: Final = 2  #: next ChannelSeqNum expected, 0 = unknown
C_FIRST_LIVE: Final = 3
C_TOP: Final = 4  #: highest live ChannelSeqNum seen
C_FLOOR_TIME: Final = 5  #: when the last whole-feed snapshot was served
C_PACKETS: Final = 6
C_RECORDS: Final = 7
C_SKIPPED: Final = 8
CHANNEL_COLUMNS: Final = 9
FEED_ROWS: Final = max(feeds.ALL_FEEDS) + 1

# marks: one row per (instrument, feed)
S_LAST: Final = 0  #: last applied RptSeq, NONE until a snapshot set it
S_LAST_CSEQ: Final = 1
S_WAITING: Final = 2  #: records wait in the instrument's pending map
MARK_COLUMNS: Final = 3
NONE: Final = -1  #: the value every mark starts at (``Store`` fills them so)

# why apply_packets stopped
DONE: Final = 0  #: every packet of the range was applied
SLOW: Final = 1  #: the packet needs the Python path
ROOM: Final = 2  #: the tables need room for the packet's records first
OUT_OF_STEP: Final = 3  #: a record of the packet did not fit its book
# stop: what apply_packets reports
STOP_ROW: Final = 0
STOP_WHY: Final = 1
STOP_RECORD: Final = 2  #: OUT_OF_STEP: the record that did not fit
STOP_ASIDES: Final = 3  #: ASIDE records listed in asides
STOP_UPDATES: Final = 4  #: (feed, SecurityID) pairs listed in updates
#: an update is one int64: the feed above this bit, the SecurityID (u32) below
UPDATE_FEED_SHIFT: Final = 32
STOP_SIZE: Final = 5
# asides: one row per record the Python book applies
A_AT: Final = 0  #: the record's offset in the arena
A_INST: Final = 1  #: its instrument row
A_FEED: Final = 2
ASIDE_COLUMNS: Final = 3

_MSG: Final = codes.MESSAGE_SIZE
_MAX_RECORDS: Final = codes.MAX_MSGS_PER_FRAME
_HEADER_SIZE: Final = feeds.HEADER_SIZE
_DIGITS: Final = 10
_MAX_SECURITY_ID: Final = (1 << 32) - 1
_BLOCK: Final = codes.BLOCK_LENGTH
_SCHEMA: Final = codes.SCHEMA_MARKET_DATA
_VERSION: Final = codes.SCHEMA_VERSION
_END_OF_EVENT: Final = codes.MEI_END_OF_EVENT


_BLOCK_AT: Final = schema.byte_offset(schema.ADD_ORDER, "blockLength")
_SCHEMA_AT: Final = schema.byte_offset(schema.ADD_ORDER, "schemaId")
_VERSION_AT: Final = schema.byte_offset(schema.ADD_ORDER, "version")
_RPT_SEQ_AT: Final = schema.byte_offset(schema.ADD_ORDER, "RptSeq")
_MEI_AT: Final = schema.byte_offset(schema.ADD_ORDER, "MatchEventIndicator")
_SEQ_AT: Final = 0  # in the packet header: ChannelSeqNum, then SendingTime
_SENT_AT: Final = 8


def new_store() -> Store:
    """A subscriber's tables, with this module's numbering columns."""
    return Store(feed_rows=FEED_ROWS, channel_columns=CHANNEL_COLUMNS, mark_columns=MARK_COLUMNS)


def _prefixes() -> tuple[Array, Array]:
    """Each feed's topic prefix (``b"L3."``), padded, and its length."""
    names = {f: (feeds.FEED_NAMES[f] + ".").encode("ascii") for f in feeds.ALL_FEEDS}
    width = max(len(n) for n in names.values())
    table = np.zeros((FEED_ROWS, width), np.uint8)
    lengths = np.zeros(FEED_ROWS, np.int64)
    for f, name in names.items():
        table[f, : len(name)] = np.frombuffer(name, np.uint8)
        lengths[f] = len(name)
    return table, lengths


_PREFIXES, _PREFIX_LENGTHS = _prefixes()


@njit(cache=True)
def _topic(arena: Array, at: int, size: int, prefixes: Array, lengths: Array) -> tuple[int, int]:
    """(feed, SecurityID) of a topic of ours, (0, -1) otherwise."""
    for feed in range(prefixes.shape[0]):
        plen = lengths[feed]
        if plen == 0 or size != plen + _DIGITS:
            continue
        match = True
        for j in range(plen):
            if arena[at + j] != prefixes[feed, j]:
                match = False
                break
        if not match:
            continue
        security_id = 0
        for j in range(plen, size):
            digit = int(arena[at + j]) - 48
            if digit < 0 or digit > 9:
                return 0, -1
            security_id = 10 * security_id + digit
        return feed, security_id
    return 0, -1


@njit(cache=True)
def _in_order(arena: Array, body: int, n: int, last: int) -> bool:
    """Every record is schema 61 with its block length and RptSeqs run last + 1 on."""
    for i in range(n):
        at = body + i * _MSG
        if (
            read_u16(arena, at + _BLOCK_AT) != _BLOCK
            or read_u16(arena, at + _SCHEMA_AT) != _SCHEMA
            or read_u32(arena, at + _RPT_SEQ_AT) != last + 1 + i
        ):
            return False
    return True


@njit(cache=True)
def apply_packets(
    arena: Array,
    table: Array,
    start: int,
    stop_at: int,
    channels: Array,
    marks: Array,
    applied: Array,
    asides: Array,
    updates: Array,
    stop: Array,
    orders: Array,
    order_index: Array,
    l3: Array,
    l3_index: Array,
    l2: Array,
    l2_index: Array,
    insts: Array,
    meta: Array,
    inst_index: Array,
    prefixes: Array,
    prefix_lengths: Array,
) -> None:
    """Apply table rows ``start`` up to ``stop_at`` while each is an in-order live packet;
    ``stop`` says where and why the walk ended (``STOP_*``). ``applied[row]`` is set to 1
    for each packet applied; ``asides`` and ``updates`` are filled from row 0 on (their
    counts in ``stop``; ``asides`` has room for every record of the range, ``updates``
    for every packet)."""
    n_asides = 0
    n_updates = 0
    for row in range(start, stop_at):
        stop[STOP_ROW] = row
        stop[STOP_ASIDES] = n_asides
        stop[STOP_UPDATES] = n_updates
        stop[STOP_WHY] = SLOW
        topic_len = table[row, _recv.TOPIC_LEN]
        body_len = table[row, _recv.BODY_LEN]
        if (
            table[row, _recv.FRAMES] != 3
            or table[row, _recv.HEADER_LEN] != _HEADER_SIZE
            or body_len <= 0
            or body_len > _MAX_RECORDS * _MSG
            or body_len % _MSG
            or topic_len > _recv.MAX_TOPIC_BYTES
            or table[row, _recv.TOPIC_AT] + topic_len > arena.size
            or table[row, _recv.HEADER_AT] + _HEADER_SIZE > arena.size
            or table[row, _recv.BODY_AT] + body_len > arena.size
        ):
            return  # malformed, or cut short by the arena: Python's checks refuse it
        feed, security_id = _topic(arena, table[row, _recv.TOPIC_AT], topic_len, prefixes, prefix_lengths)
        if feed == 0 or channels[feed, C_ON] == 0 or security_id <= 0 or security_id > _MAX_SECURITY_ID:
            return
        header = table[row, _recv.HEADER_AT]
        seq = read_i64(arena, header + _SEQ_AT)
        sent = read_i64(arena, header + _SENT_AT)
        if seq <= 0 or np.uint64(sent) <= np.uint64(channels[feed, C_FLOOR_TIME]):
            return  # unsequenced, past 2^63, or sent before the last snapshot was served
        inst = find_inst(inst_index, insts, security_id)
        if inst == EMPTY:
            return
        last = marks[inst, feed, S_LAST]
        n = body_len // _MSG
        if seq > I64_MAX - n:
            return  # its numbers would pass int64: Python clamps them (I64_MAX)
        whole = channels[feed, C_WHOLE] != 0
        if last == NONE or marks[inst, feed, S_WAITING] != 0:
            return
        if whole:
            if seq != channels[feed, C_NEXT]:
                return  # a jump, a reset, or not yet known
        elif seq < marks[inst, feed, S_LAST_CSEQ]:
            return
        body = table[row, _recv.BODY_AT]
        if not _in_order(arena, body, n, last):
            return
        if not has_room(orders, order_index, l3, l3_index, l2, l2_index, meta, n):
            stop[STOP_WHY] = ROOM
            return
        # the numbering moves as FeedState.packet moves it, before any record is applied
        if whole:
            if channels[feed, C_FIRST_LIVE] == 0:
                channels[feed, C_FIRST_LIVE] = seq
            channels[feed, C_NEXT] = seq + n
        if seq + n - 1 > channels[feed, C_TOP]:
            channels[feed, C_TOP] = seq + n - 1
        channels[feed, C_PACKETS] += 1
        channels[feed, C_RECORDS] += n
        done = False
        failed = -1
        for i in range(n):
            at = body + i * _MSG
            if read_u16(arena, at + _VERSION_AT) > _VERSION:
                channels[feed, C_SKIPPED] += 1
            else:
                result = apply_record(arena, at, inst, orders, order_index, l3, l3_index, l2, l2_index, insts, meta)
                if result == MISFIT:
                    failed = i
                    break
                if result == ASIDE:
                    asides[n_asides, A_AT] = at
                    asides[n_asides, A_INST] = inst
                    asides[n_asides, A_FEED] = feed
                    n_asides += 1
            marks[inst, feed, S_LAST] = last + 1 + i
            marks[inst, feed, S_LAST_CSEQ] = seq + i
            if read_u8(arena, at + _MEI_AT) & _END_OF_EVENT:
                done = True
        if done:  # an event ended (before the record that did not fit, if one did not)
            updates[n_updates] = (feed << UPDATE_FEED_SHIFT) | security_id
            n_updates += 1
        if failed >= 0:
            stop[STOP_WHY] = OUT_OF_STEP
            stop[STOP_RECORD] = failed
            stop[STOP_ASIDES] = n_asides
            stop[STOP_UPDATES] = n_updates
            return
        applied[row] = 1
    stop[STOP_ROW] = stop_at
    stop[STOP_WHY] = DONE
    stop[STOP_ASIDES] = n_asides
    stop[STOP_UPDATES] = n_updates


def walk(
    arena: Array,
    table: Array,
    start: int,
    stop_at: int,
    store: Store,
    applied: Array,
    asides: Array,
    updates: Array,
    stop: Array,
) -> None:
    """:func:`apply_packets` over ``store``'s tables."""
    apply_packets(
        arena,
        table,
        start,
        stop_at,
        store.channels,
        store.marks,
        applied,
        asides,
        updates,
        stop,
        *store.tables(),
        store.inst_index,
        _PREFIXES,
        _PREFIX_LENGTHS,
    )
