"""Every book a subscriber keeps, held in arrays, and the jitted code that applies feed
records to them.

Why: a subscriber of the whole feed applies hundreds of thousands of records a second.
Applied one at a time in Python, through dictionaries of 10,000 books, a record cost
3-4 us (docs/marketdata.md, "What applying the feed costs a subscriber"), so a Python
subscriber could not keep up with the server it watches. Here the L3 orders and their
queues, the L2 levels and the top of book of all instruments live in a few int64 tables
with open-addressing indexes, and :func:`apply_packets` runs the common case, a live
packet that continues its instrument's book exactly, from the received bytes to the
books without returning to Python. Everything else (sequencing surprises, gaps, replays,
snapshots, resets, and the rare templates: trades, status, reference data) stays with
the Python objects of ``recovery`` and ``book``, which read and write these tables.

Layout. ``orders`` has one row per resting order, linked in its level's queue (``O_PREV``
/ ``O_NEXT``); ``l3`` one row per (instrument, side, price) holding a queue; ``l2`` one
row per level the L2 feed published; ``insts`` one row per instrument (its first L3 and
L2 level, linked through ``L_PREV`` / ``L_NEXT``, and its BBO and last TransactTime).
Free rows are chained through their ``O_NEXT`` / ``L_NEXT`` and marked by an instrument of
``FREE``. Every index is a power-of-two array of row numbers (``EMPTY`` where none),
probed linearly from a splitmix64 hash of the row's key, and deletions shift
the following entries back (no tombstones, so a long run never slows the probes).

A record "does not fit" the book (``MISFIT``) exactly where the Python book raised
KeyError: an order added twice, an update of an order it does not hold, a new L2 level
that exists or a change of one that does not. The book is then out of step and the
caller recovers it from a snapshot.
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np
import numpy.typing as npt
from numba import njit

from qfix.wire import codes, schema

__all__ = [
    "APPLIED",
    "ASIDE",
    "IGNORED",
    "MISFIT",
    "Store",
    "apply_record",
    "clear_l2",
    "clear_l3",
    "l2_rows",
    "l3_rows",
]

Array = npt.NDArray[Any]

EMPTY: Final = -1  #: an index slot with no row
FREE: Final = -1  #: the instrument of a free row
BID: Final = 0
OFFER: Final = 1

# orders: one row per resting L3 order
O_ID: Final = 0
O_INST: Final = 1
O_SIDE: Final = 2
O_PRICE: Final = 3
O_SHOWN: Final = 4
O_PREV: Final = 5
O_NEXT: Final = 6
O_LEVEL: Final = 7
ORDER_COLUMNS: Final = 8  #: 64 bytes: one cache line

# l3 and l2: one row per price level (l3 holds a queue, l2 the published size and count)
L_KEY: Final = 0  #: 2 x instrument row + side
L_PRICE: Final = 1
L_HEAD: Final = 2
L_TAIL: Final = 3
L_COUNT: Final = 4
L_SIZE: Final = 5
L_PREV: Final = 6
L_NEXT: Final = 7
LEVEL_COLUMNS: Final = 8  #: 64 bytes: one cache line

# insts: one row per instrument
I_ID: Final = 0
I_L3: Final = 1
I_L2: Final = 2
I_BID: Final = 3
I_BID_SIZE: Final = 4
I_OFFER: Final = 5
I_OFFER_SIZE: Final = 6
I_TIME: Final = 7
INST_COLUMNS: Final = 8

# which table an index serves (how a row's key is hashed)
ORDERS: Final = 0
LEVELS: Final = 1
INSTS: Final = 2

# meta: live rows and the head of the free chain of each table
M_ORDERS: Final = 0
M_ORDER_FREE: Final = 1
M_L3: Final = 2
M_L3_FREE: Final = 3
M_L2: Final = 4
M_L2_FREE: Final = 5
META_SIZE: Final = 6

# what applying one record did
APPLIED: Final = 0
ASIDE: Final = 1  #: a template the Python book applies (trades, status, reference data)
IGNORED: Final = 2  #: a template no book holds (skipped, as the Python book skips it)
MISFIT: Final = 3  #: the record does not fit the book: it is out of step

_MSG: Final = codes.MESSAGE_SIZE
_VERSION: Final = codes.SCHEMA_VERSION
_NULL_PRICE: Final = codes.NULL_PRICE
_OFFER_CHAR: Final = codes.MD_ENTRY_OFFER
_NEW: Final = codes.MD_UPDATE_NEW
_DELETE: Final = codes.MD_UPDATE_DELETE
_ADD_ORDER: Final = codes.TEMPLATE_ADD_ORDER
_SNAPSHOT_ORDER: Final = codes.TEMPLATE_SNAPSHOT_ORDER
_EXECUTED: Final = codes.TEMPLATE_ORDER_EXECUTED
_REDUCED: Final = codes.TEMPLATE_ORDER_REDUCED
_ORDER_DELETE: Final = codes.TEMPLATE_ORDER_DELETE
_REPLACE: Final = codes.TEMPLATE_ORDER_REPLACE
_LEVEL: Final = codes.TEMPLATE_BOOK_LEVEL
_BBO: Final = codes.TEMPLATE_BEST_BID_OFFER
#: the templates a Python book applies itself; they touch none of these tables
ASIDE_TEMPLATES: Final = (
    codes.TEMPLATE_TRADE,
    codes.TEMPLATE_SECURITY_STATUS,
    codes.TEMPLATE_SNAPSHOT_START,
    codes.TEMPLATE_SECURITY_DEFINITION,
    codes.TEMPLATE_SECURITY_LIMITS,
    codes.TEMPLATE_INDICATIVE_AUCTION,
)


_TEMPLATE_AT: Final = schema.byte_offset(schema.ADD_ORDER, "templateId")
_VERSION_AT: Final = schema.byte_offset(schema.ADD_ORDER, "version")
_TIME_AT: Final = schema.byte_offset(schema.ADD_ORDER, "TransactTime")
_ADD_ID: Final = schema.byte_offset(schema.ADD_ORDER, "OrderID")
_ADD_PX: Final = schema.byte_offset(schema.ADD_ORDER, "MDEntryPx")
_ADD_SIZE: Final = schema.byte_offset(schema.ADD_ORDER, "MDEntrySize")
_ADD_TYPE: Final = schema.byte_offset(schema.ADD_ORDER, "MDEntryType")
_EXEC_ID: Final = schema.byte_offset(schema.ORDER_EXECUTED, "OrderID")
_EXEC_LEAVES: Final = schema.byte_offset(schema.ORDER_EXECUTED, "LeavesQty")
_REDUCED_ID: Final = schema.byte_offset(schema.ORDER_REDUCED, "OrderID")
_REDUCED_LEAVES: Final = schema.byte_offset(schema.ORDER_REDUCED, "LeavesQty")
_DELETE_ID: Final = schema.byte_offset(schema.ORDER_DELETE, "OrderID")
_REPLACE_OLD: Final = schema.byte_offset(schema.ORDER_REPLACE, "OrigOrderID")
_REPLACE_ID: Final = schema.byte_offset(schema.ORDER_REPLACE, "OrderID")
_REPLACE_PX: Final = schema.byte_offset(schema.ORDER_REPLACE, "MDEntryPx")
_REPLACE_SIZE: Final = schema.byte_offset(schema.ORDER_REPLACE, "MDEntrySize")
_LEVEL_PX: Final = schema.byte_offset(schema.BOOK_LEVEL, "MDEntryPx")
_LEVEL_SIZE: Final = schema.byte_offset(schema.BOOK_LEVEL, "MDEntrySize")
_LEVEL_COUNT: Final = schema.byte_offset(schema.BOOK_LEVEL, "NumberOfOrders")
_LEVEL_TYPE: Final = schema.byte_offset(schema.BOOK_LEVEL, "MDEntryType")
_LEVEL_ACTION: Final = schema.byte_offset(schema.BOOK_LEVEL, "MDUpdateAction")
_BBO_BID: Final = schema.byte_offset(schema.BEST_BID_OFFER, "BidPx")
_BBO_OFFER: Final = schema.byte_offset(schema.BEST_BID_OFFER, "OfferPx")
_BBO_BID_SIZE: Final = schema.byte_offset(schema.BEST_BID_OFFER, "BidSize")
_BBO_OFFER_SIZE: Final = schema.byte_offset(schema.BEST_BID_OFFER, "OfferSize")

_MIX1: Final = np.uint64(0xBF58476D1CE4E5B9)
_MIX2: Final = np.uint64(0x94D049BB133111EB)
_GOLDEN: Final = np.uint64(0x9E3779B97F4A7C15)


# --- reading little-endian fields from bytes ----------------------------------------------


@njit(cache=True, inline="always")
def read_u8(buf: Array, at: int) -> int:
    return int(buf[at])


@njit(cache=True, inline="always")
def read_u16(buf: Array, at: int) -> int:
    return int(buf[at]) | (int(buf[at + 1]) << 8)


@njit(cache=True, inline="always")
def read_u32(buf: Array, at: int) -> int:
    return int(buf[at]) | (int(buf[at + 1]) << 8) | (int(buf[at + 2]) << 16) | (int(buf[at + 3]) << 24)


@njit(cache=True, inline="always")
def read_i64(buf: Array, at: int) -> int:
    """Eight bytes as the int64 of the same bits (a u64 above 2^63 comes out negative)."""
    value = np.uint64(0)
    for b in range(7, -1, -1):
        value = (value << np.uint64(8)) | np.uint64(buf[at + b])
    return int(np.int64(value))


# --- hashing and the open-addressing indexes ----------------------------------------------


@njit(cache=True, inline="always")
def _mix(value: int) -> int:
    x = np.uint64(value)
    x ^= x >> np.uint64(30)
    x *= _MIX1
    x ^= x >> np.uint64(27)
    x *= _MIX2
    x ^= x >> np.uint64(31)
    return int(np.int64(x))


@njit(cache=True, inline="always")
def level_key(inst: int, side: int) -> int:
    return 2 * inst + side


@njit(cache=True, inline="always")
def level_hash(key: int, price: int) -> int:
    return _mix(int(np.int64(np.uint64(_mix(price)) ^ (np.uint64(key) * _GOLDEN))))


@njit(cache=True, inline="always")
def order_hash(inst: int, order_id: int) -> int:
    """Orders are keyed by (instrument, OrderID), as each book keeps its own: a record of
    one instrument never reaches another's order of the same OrderID."""
    return _mix(int(np.int64(np.uint64(order_id) ^ (np.uint64(inst) * _GOLDEN))))


@njit(cache=True, inline="always")
def _home(index: Array, h: int) -> int:
    return int(np.int64(np.uint64(h) & np.uint64(index.size - 1)))


@njit(cache=True, inline="always")
def _row_hash(rows: Array, row: int, kind: int) -> int:
    """The hash of a row's key (rows keep no hash: a row stays one cache line)."""
    if kind == ORDERS:
        return order_hash(rows[row, O_INST], rows[row, O_ID])
    if kind == LEVELS:
        return level_hash(rows[row, L_KEY], rows[row, L_PRICE])
    return _mix(rows[row, I_ID])


@njit(cache=True)
def _index_insert(index: Array, rows: Array, kind: int, row: int) -> None:
    mask = index.size - 1
    i = _home(index, _row_hash(rows, row, kind))
    while index[i] != EMPTY:
        i = (i + 1) & mask
    index[i] = row


@njit(cache=True)
def _index_erase(index: Array, rows: Array, kind: int, row: int) -> None:
    mask = index.size - 1
    i = _home(index, _row_hash(rows, row, kind))
    while index[i] != row:
        i = (i + 1) & mask
    # shift back every entry of the run after the hole whose home allows it
    while True:
        index[i] = EMPTY
        j = i
        while True:
            j = (j + 1) & mask
            other = index[j]
            if other == EMPTY:
                return
            home = _home(index, _row_hash(rows, other, kind))
            if ((j - home) & mask) >= ((j - i) & mask):
                index[i] = other
                i = j
                break


@njit(cache=True)
def find_order(index: Array, orders: Array, inst: int, order_id: int) -> int:
    mask = index.size - 1
    i = _home(index, order_hash(inst, order_id))
    while True:
        row = int(index[i])
        if row == EMPTY or (orders[row, O_ID] == order_id and orders[row, O_INST] == inst):
            return row
        i = (i + 1) & mask


@njit(cache=True)
def find_level(index: Array, levels: Array, key: int, price: int) -> int:
    mask = index.size - 1
    i = _home(index, level_hash(key, price))
    while True:
        row = int(index[i])
        if row == EMPTY or (levels[row, L_PRICE] == price and levels[row, L_KEY] == key):
            return row
        i = (i + 1) & mask


@njit(cache=True)
def find_inst(index: Array, insts: Array, security_id: int) -> int:
    mask = index.size - 1
    i = _home(index, _mix(security_id))
    while True:
        row = int(index[i])
        if row == EMPTY or insts[row, I_ID] == security_id:
            return row
        i = (i + 1) & mask


# --- rows: allocation and the linked lists ------------------------------------------------


@njit(cache=True, inline="always")
def _take(rows: Array, meta: Array, live_at: int, free_at: int, next_col: int) -> int:
    row = int(meta[free_at])
    meta[free_at] = rows[row, next_col]
    meta[live_at] += 1
    return row


@njit(cache=True, inline="always")
def _give(rows: Array, meta: Array, live_at: int, free_at: int, next_col: int, inst_col: int, row: int) -> None:
    rows[row, inst_col] = FREE
    rows[row, next_col] = meta[free_at]
    meta[free_at] = row
    meta[live_at] -= 1


@njit(cache=True)
def _level_new(
    levels: Array,
    index: Array,
    insts: Array,
    meta: Array,
    live_at: int,
    head_col: int,
    key: int,
    price: int,
) -> int:
    """A new level row linked first in its instrument's list (the list's order does not
    matter: readers sort by price)."""
    row = _take(levels, meta, live_at, live_at + 1, L_NEXT)
    levels[row, L_KEY] = key
    levels[row, L_PRICE] = price
    levels[row, L_HEAD] = EMPTY
    levels[row, L_TAIL] = EMPTY
    levels[row, L_COUNT] = 0
    levels[row, L_SIZE] = 0
    first = insts[key // 2, head_col]
    levels[row, L_PREV] = EMPTY
    levels[row, L_NEXT] = first
    if first != EMPTY:
        levels[first, L_PREV] = row
    insts[key // 2, head_col] = row
    _index_insert(index, levels, LEVELS, row)
    return row


@njit(cache=True)
def _level_drop(levels: Array, index: Array, insts: Array, meta: Array, live_at: int, head_col: int, row: int) -> None:
    _index_erase(index, levels, LEVELS, row)
    prev = levels[row, L_PREV]
    nxt = levels[row, L_NEXT]
    if prev == EMPTY:
        insts[levels[row, L_KEY] // 2, head_col] = nxt
    else:
        levels[prev, L_NEXT] = nxt
    if nxt != EMPTY:
        levels[nxt, L_PREV] = prev
    _give(levels, meta, live_at, live_at + 1, L_NEXT, L_KEY, row)


@njit(cache=True)
def _order_add(
    orders: Array,
    order_index: Array,
    l3: Array,
    l3_index: Array,
    insts: Array,
    meta: Array,
    inst: int,
    order_id: int,
    side: int,
    price: int,
    shown: int,
) -> None:
    key = level_key(inst, side)
    level = find_level(l3_index, l3, key, price)
    if level == EMPTY:
        level = _level_new(l3, l3_index, insts, meta, M_L3, I_L3, key, price)
    row = _take(orders, meta, M_ORDERS, M_ORDER_FREE, O_NEXT)
    orders[row, O_ID] = order_id
    orders[row, O_INST] = inst
    orders[row, O_SIDE] = side
    orders[row, O_PRICE] = price
    orders[row, O_SHOWN] = shown
    orders[row, O_LEVEL] = level
    tail = l3[level, L_TAIL]
    orders[row, O_PREV] = tail
    orders[row, O_NEXT] = EMPTY
    if tail == EMPTY:
        l3[level, L_HEAD] = row
    else:
        orders[tail, O_NEXT] = row
    l3[level, L_TAIL] = row
    l3[level, L_COUNT] += 1
    _index_insert(order_index, orders, ORDERS, row)


@njit(cache=True)
def _order_remove(
    orders: Array, order_index: Array, l3: Array, l3_index: Array, insts: Array, meta: Array, row: int
) -> None:
    _index_erase(order_index, orders, ORDERS, row)
    level = orders[row, O_LEVEL]
    prev = orders[row, O_PREV]
    nxt = orders[row, O_NEXT]
    if prev == EMPTY:
        l3[level, L_HEAD] = nxt
    else:
        orders[prev, O_NEXT] = nxt
    if nxt == EMPTY:
        l3[level, L_TAIL] = prev
    else:
        orders[nxt, O_PREV] = prev
    l3[level, L_COUNT] -= 1
    if l3[level, L_COUNT] == 0:
        _level_drop(l3, l3_index, insts, meta, M_L3, I_L3, level)
    _give(orders, meta, M_ORDERS, M_ORDER_FREE, O_NEXT, O_INST, row)


@njit(cache=True)
def clear_l3(
    orders: Array, order_index: Array, l3: Array, l3_index: Array, insts: Array, meta: Array, inst: int
) -> None:
    """Forget every L3 order and queue of one instrument."""
    while insts[inst, I_L3] != EMPTY:
        level = insts[inst, I_L3]
        while l3[level, L_HEAD] != EMPTY:
            # removing the last order also drops the level
            _order_remove(orders, order_index, l3, l3_index, insts, meta, l3[level, L_HEAD])


@njit(cache=True)
def clear_l2(l2: Array, l2_index: Array, insts: Array, meta: Array, inst: int) -> None:
    """Forget every L2 level of one instrument."""
    while insts[inst, I_L2] != EMPTY:
        _level_drop(l2, l2_index, insts, meta, M_L2, I_L2, insts[inst, I_L2])


# --- applying one record ------------------------------------------------------------------


@njit(cache=True, inline="always")
def _side(char: int) -> int:
    return OFFER if char == _OFFER_CHAR else BID


@njit(cache=True)
def apply_record(
    buf: Array,
    at: int,
    inst: int,
    orders: Array,
    order_index: Array,
    l3: Array,
    l3_index: Array,
    l2: Array,
    l2_index: Array,
    insts: Array,
    meta: Array,
) -> int:
    """Apply the record at ``buf[at:at + 60]`` to instrument row ``inst``; returns
    APPLIED, ASIDE, IGNORED or MISFIT. The tables must have room for one more order and
    one more level of each kind. TransactTime is kept (the highest, unsigned) for every
    template a book knows, unless the record does not fit."""
    template = read_u16(buf, at + _TEMPLATE_AT)
    if template in (_ADD_ORDER, _SNAPSHOT_ORDER):
        order_id = read_i64(buf, at + _ADD_ID)
        if find_order(order_index, orders, inst, order_id) != EMPTY:
            return MISFIT
        side = _side(read_u8(buf, at + _ADD_TYPE))
        price = read_i64(buf, at + _ADD_PX)
        shown = read_u32(buf, at + _ADD_SIZE)
        _order_add(orders, order_index, l3, l3_index, insts, meta, inst, order_id, side, price, shown)
        result = APPLIED
    elif template == _EXECUTED:
        row = find_order(order_index, orders, inst, read_i64(buf, at + _EXEC_ID))
        if row == EMPTY:
            return MISFIT
        leaves = read_u32(buf, at + _EXEC_LEAVES)
        if leaves:
            orders[row, O_SHOWN] = leaves
        else:
            # gone, or refilled by the AddOrder that follows
            _order_remove(orders, order_index, l3, l3_index, insts, meta, row)
        result = APPLIED
    elif template == _REDUCED:
        row = find_order(order_index, orders, inst, read_i64(buf, at + _REDUCED_ID))
        if row == EMPTY:
            return MISFIT
        orders[row, O_SHOWN] = read_u32(buf, at + _REDUCED_LEAVES)
        result = APPLIED
    elif template == _ORDER_DELETE:
        row = find_order(order_index, orders, inst, read_i64(buf, at + _DELETE_ID))
        if row == EMPTY:
            return MISFIT
        _order_remove(orders, order_index, l3, l3_index, insts, meta, row)
        result = APPLIED
    elif template == _REPLACE:
        row = find_order(order_index, orders, inst, read_i64(buf, at + _REPLACE_OLD))
        if row == EMPTY:
            return MISFIT
        side = orders[row, O_SIDE]
        _order_remove(orders, order_index, l3, l3_index, insts, meta, row)
        order_id = read_i64(buf, at + _REPLACE_ID)
        if find_order(order_index, orders, inst, order_id) != EMPTY:
            return MISFIT  # as the Python book did: the old order is already gone
        price = read_i64(buf, at + _REPLACE_PX)
        shown = read_u32(buf, at + _REPLACE_SIZE)
        _order_add(orders, order_index, l3, l3_index, insts, meta, inst, order_id, side, price, shown)
        result = APPLIED
    elif template == _LEVEL:
        side = _side(read_u8(buf, at + _LEVEL_TYPE))
        price = read_i64(buf, at + _LEVEL_PX)
        action = read_u8(buf, at + _LEVEL_ACTION)
        key = level_key(inst, side)
        level = find_level(l2_index, l2, key, price)
        if (action == _NEW) == (level != EMPTY):
            return MISFIT  # a new level that exists, or a change of one that does not
        if action == _DELETE:
            _level_drop(l2, l2_index, insts, meta, M_L2, I_L2, level)
        else:
            if level == EMPTY:
                level = _level_new(l2, l2_index, insts, meta, M_L2, I_L2, key, price)
            l2[level, L_SIZE] = read_i64(buf, at + _LEVEL_SIZE)
            l2[level, L_COUNT] = read_u32(buf, at + _LEVEL_COUNT)
        result = APPLIED
    elif template == _BBO:
        insts[inst, I_BID] = read_i64(buf, at + _BBO_BID)
        insts[inst, I_OFFER] = read_i64(buf, at + _BBO_OFFER)
        insts[inst, I_BID_SIZE] = read_i64(buf, at + _BBO_BID_SIZE)
        insts[inst, I_OFFER_SIZE] = read_i64(buf, at + _BBO_OFFER_SIZE)
        result = APPLIED
    elif template in ASIDE_TEMPLATES:
        result = ASIDE
    else:
        return IGNORED
    time = read_i64(buf, at + _TIME_AT)
    if np.uint64(time) > np.uint64(insts[inst, I_TIME]):
        insts[inst, I_TIME] = time
    return result


@njit(cache=True)
def apply_records(
    buf: Array,
    inst: int,
    asides: Array,
    orders: Array,
    order_index: Array,
    l3: Array,
    l3_index: Array,
    l2: Array,
    l2_index: Array,
    insts: Array,
    meta: Array,
) -> tuple[int, int]:
    """Apply every record of ``buf`` (a whole number of 60-byte records) of a version this
    codec speaks to instrument row ``inst``, listing the offsets of those the Python book
    applies in ``asides`` (room for one per record). Returns (asides listed, the record
    that did not fit or -1); the tables must have room for every record."""
    listed = 0
    for i in range(buf.size // _MSG):
        at = i * _MSG
        if read_u16(buf, at + _VERSION_AT) > _VERSION:
            continue
        result = apply_record(buf, at, inst, orders, order_index, l3, l3_index, l2, l2_index, insts, meta)
        if result == MISFIT:
            return listed, i
        if result == ASIDE:
            asides[listed] = at
            listed += 1
    return listed, -1


# --- growing the tables --------------------------------------------------------------------


@njit(cache=True)
def _short(rows: Array, index: Array, live: int, records: int) -> bool:
    """Whether a table lacks room for ``records`` more rows: one row always stays free
    (the end of the free chain) and the index stays at most half full."""
    return live + records > rows.shape[0] - 1 or 2 * (live + records) > index.size


@njit(cache=True)
def has_room(
    orders: Array, order_index: Array, l3: Array, l3_index: Array, l2: Array, l2_index: Array, meta: Array, records: int
) -> bool:
    """Room for ``records`` more records: each adds at most one order and one level of
    each kind."""
    return not (
        _short(orders, order_index, meta[M_ORDERS], records)
        or _short(l3, l3_index, meta[M_L3], records)
        or _short(l2, l2_index, meta[M_L2], records)
    )


@njit(cache=True)
def _reindex(index: Array, rows: Array, kind: int, inst_col: int) -> None:
    index[:] = EMPTY
    for row in range(rows.shape[0]):
        if rows[row, inst_col] != FREE:
            _index_insert(index, rows, kind, row)


def _grown(rows: Array, live: int, need: int, next_col: int, inst_col: int) -> tuple[Array, int]:
    """A copy of ``rows`` with room for ``need`` more live rows (at least doubled), the
    new rows chained free in front of the old free chain; returns it and the new chain's
    head (the caller keeps the old chain's head as the last new row's next)."""
    old = rows.shape[0]
    size = max(2 * old, 1024)
    while size < live + need:
        size *= 2
    out = np.empty((size, rows.shape[1]), np.int64)
    out[:old] = rows
    out[old:, inst_col] = FREE
    out[old : size - 1, next_col] = np.arange(old + 1, size)
    return out, old


class Store:
    """The tables of every book of one subscriber, grown as needed, and beside them the
    feeds' numbering (``channels``, one row per MDFeed code, and ``marks``, one row per
    instrument and feed: ``qfix.marketdata._live`` names their columns), so that the
    recovery code and the kernels read and write the same values."""

    def __init__(
        self,
        orders: int = 1024,
        levels: int = 1024,
        instruments: int = 256,
        *,
        feed_rows: int = 1,
        channel_columns: int = 1,
        mark_columns: int = 1,
    ) -> None:
        self.channels = np.zeros((feed_rows, channel_columns), np.int64)
        #: every mark starts at -1: "no RptSeq applied yet", until a feed's state sets it
        self.marks = np.full((instruments, feed_rows, mark_columns), -1, np.int64)
        self.meta = np.zeros(META_SIZE, np.int64)
        self.orders = self._empty(orders, ORDER_COLUMNS, O_NEXT, O_INST)
        self.l3 = self._empty(levels, LEVEL_COLUMNS, L_NEXT, L_KEY)
        self.l2 = self._empty(levels, LEVEL_COLUMNS, L_NEXT, L_KEY)
        self.insts = np.zeros((instruments, INST_COLUMNS), np.int64)
        self.order_index = np.full(4 * orders, EMPTY, np.int64)
        self.l3_index = np.full(4 * levels, EMPTY, np.int64)
        self.l2_index = np.full(4 * levels, EMPTY, np.int64)
        self.inst_index = np.full(4 * instruments, EMPTY, np.int64)
        self.slots: dict[int, int] = {}

    @staticmethod
    def _empty(size: int, columns: int, next_col: int, inst_col: int) -> Array:
        rows = np.zeros((size, columns), np.int64)
        rows[:, inst_col] = FREE
        rows[:, next_col] = np.arange(1, size + 1)
        rows[-1, next_col] = EMPTY
        return rows

    def tables(self) -> tuple[Array, Array, Array, Array, Array, Array, Array, Array]:
        """The arguments every kernel takes after the record: orders, their index, l3 and
        its index, l2 and its index, insts, meta."""
        return (self.orders, self.order_index, self.l3, self.l3_index, self.l2, self.l2_index, self.insts, self.meta)

    # --- instruments ---------------------------------------------------------------------

    def slot(self, security_id: int) -> int:
        """The instrument's row, made on first use."""
        slot = self.slots.get(security_id)
        if slot is not None:
            return slot
        slot = len(self.slots)
        if slot == self.insts.shape[0]:
            grown = np.zeros((2 * slot, INST_COLUMNS), np.int64)
            grown[:slot] = self.insts
            self.insts = grown
            marks = np.full((2 * slot, *self.marks.shape[1:]), -1, np.int64)
            marks[:slot] = self.marks
            self.marks = marks
            self.inst_index = np.full(8 * slot, EMPTY, np.int64)
            for row in range(slot):
                _index_insert(self.inst_index, self.insts, INSTS, row)
        row = self.insts[slot]
        row[:] = 0
        row[I_ID] = security_id
        row[I_L3] = row[I_L2] = EMPTY
        row[I_BID] = row[I_OFFER] = _NULL_PRICE
        _index_insert(self.inst_index, self.insts, INSTS, slot)
        self.slots[security_id] = slot
        return slot

    # --- room ----------------------------------------------------------------------------

    def ensure(self, records: int) -> None:
        """Room for ``records`` more records (see :func:`has_room`)."""
        meta = self.meta
        if _short(self.orders, self.order_index, meta[M_ORDERS], records):
            self.orders, meta[M_ORDER_FREE], self.order_index = self._grow(
                self.orders, self.order_index, meta, M_ORDERS, records, O_NEXT, O_INST, ORDERS
            )
        if _short(self.l3, self.l3_index, meta[M_L3], records):
            self.l3, meta[M_L3_FREE], self.l3_index = self._grow(
                self.l3, self.l3_index, meta, M_L3, records, L_NEXT, L_KEY, LEVELS
            )
        if _short(self.l2, self.l2_index, meta[M_L2], records):
            self.l2, meta[M_L2_FREE], self.l2_index = self._grow(
                self.l2, self.l2_index, meta, M_L2, records, L_NEXT, L_KEY, LEVELS
            )

    @staticmethod
    def _grow(
        rows: Array, index: Array, meta: Array, live_at: int, need: int, next_col: int, inst_col: int, kind: int
    ) -> tuple[Array, int, Array]:
        grown, first_new = _grown(rows, int(meta[live_at]), need + 1, next_col, inst_col)
        grown[-1, next_col] = meta[live_at + 1]  # the new rows first, then the old free chain
        size = 4 * grown.shape[0]
        new_index = np.full(size, EMPTY, np.int64) if size != index.size else index
        _reindex(new_index, grown, kind, inst_col)
        return grown, first_new, new_index


# --- reading one book out -------------------------------------------------------------------


@njit(cache=True)
def l3_rows(orders: Array, l3: Array, insts: Array, inst: int) -> Array:
    """One instrument's L3 orders as rows (side, price, OrderID, shown), level by level
    (in no particular order of levels), each level's queue in order."""
    count = 0
    level = insts[inst, I_L3]
    while level != EMPTY:
        count += l3[level, L_COUNT]
        level = l3[level, L_NEXT]
    out = np.empty((count, 4), np.int64)
    k = 0
    level = insts[inst, I_L3]
    while level != EMPTY:
        row = l3[level, L_HEAD]
        while row != EMPTY:
            out[k, 0] = orders[row, O_SIDE]
            out[k, 1] = orders[row, O_PRICE]
            out[k, 2] = orders[row, O_ID]
            out[k, 3] = orders[row, O_SHOWN]
            k += 1
            row = orders[row, O_NEXT]
        level = l3[level, L_NEXT]
    return out


@njit(cache=True)
def l2_rows(l2: Array, insts: Array, inst: int) -> Array:
    """One instrument's L2 levels as rows (side, price, size, orders), in no order."""
    count = 0
    level = insts[inst, I_L2]
    while level != EMPTY:
        count += 1
        level = l2[level, L_NEXT]
    out = np.empty((count, 4), np.int64)
    level = insts[inst, I_L2]
    for k in range(count):
        out[k, 0] = l2[level, L_KEY] % 2
        out[k, 1] = l2[level, L_PRICE]
        out[k, 2] = l2[level, L_SIZE]
        out[k, 3] = l2[level, L_COUNT]
        level = l2[level, L_NEXT]
    return out
