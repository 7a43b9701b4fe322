"""Numbering and packing one engine call's market-data records, in one jitted pass.

Why: the same work done with whole-array NumPy operations cost about 200 us per engine
call (some 60 small array operations, a few microseconds each, whatever the number of
records), more than the engine call itself for the small calls of a busy server. Here
it is one kernel call per engine call. :mod:`qfix.marketdata.publisher` owns the
numbering state and decides resets; this module only fills arrays.

What the kernel does for each feed (WIRE.md §6.4): takes the records the feed carries
(``routes`` by templateId), ordered by instrument (stable, so each instrument keeps the
engine's order); stamps RptSeq (per feed and instrument) and MatchEventIndicator
(EndOfEvent on the last record of each of the engine's events within the feed,
LastTradeMsg on the last trade record of an event); and cuts packets at instrument
changes and every ``max_records`` records.
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np
import numpy.typing as npt
from numba import njit

from qfix.wire import codes, schema

__all__ = ["FEED_SLOTS", "OK", "dense_index", "sequence"]

Array = npt.NDArray[Any]


_MSG: Final = codes.MESSAGE_SIZE
_TEMPLATE_ID_AT: Final = schema.byte_offset(schema.HEADER, "templateId")
_TRANSACT_TIME_AT: Final = schema.byte_offset(schema.ADD_ORDER, "TransactTime")
_SECURITY_ID_AT: Final = schema.byte_offset(schema.ADD_ORDER, "SecurityID")
_RPT_SEQ_AT: Final = schema.byte_offset(schema.ADD_ORDER, "RptSeq")
_MEI_AT: Final = schema.byte_offset(schema.ADD_ORDER, "MatchEventIndicator")
_END_OF_EVENT: Final = codes.MEI_END_OF_EVENT
_LAST_TRADE: Final = codes.MEI_LAST_TRADE_MSG
_U32_MAX: Final = 2**32 - 1
#: the feeds in output order (row f of the output arrays is feed FEED_SLOTS[f])
FEED_SLOTS: Final = (codes.MD_FEED_L3, codes.MD_FEED_L2, codes.MD_FEED_BBO, codes.MD_FEED_TRD)
_FEEDS: Final = np.array(FEED_SLOTS, np.int64)
#: a call of fewer records than the instruments over this is ordered by a merge sort
_SORT_SWITCH: Final = 16
#: :func:`dense_index` spends at most this many int32 entries per instrument, plus the floor
DENSE_SLACK: Final = 16
DENSE_FLOOR: Final = 1 << 16
#: what :func:`sequence` returns when it numbered everything
OK: Final = 0
#: returned (negated, minus one) with the index of a record of an unconfigured SecurityID
_UNKNOWN_BASE: Final = 1 << 32


@njit(cache=True, nogil=True, inline="always")
def _u16(msgs: Array, i: int, at: int) -> int:
    return int(msgs[i, at]) | int(msgs[i, at + 1]) << 8


@njit(cache=True, nogil=True, inline="always")
def _u32(msgs: Array, i: int, at: int) -> int:
    return _u16(msgs, i, at) | _u16(msgs, i, at + 2) << 16


@njit(cache=True, nogil=True, inline="always")
def _i64(msgs: Array, i: int, at: int) -> int:
    value = 0
    for b in range(8):
        value |= int(msgs[i, at + b]) << (8 * b)
    return value


@njit(cache=True, nogil=True)
def _order_by_instrument(inst: Array, instruments: int) -> Array:
    """A stable order of the records by instrument: a counting sort when the call holds
    many records (it costs O(records + instruments)), a merge sort when it holds few."""
    n = inst.size
    if n * _SORT_SWITCH < instruments:
        return np.argsort(inst, kind="mergesort")
    starts = np.zeros(instruments + 1, np.int64)
    for i in range(n):
        starts[inst[i] + 1] += 1
    for k in range(instruments):
        starts[k + 1] += starts[k]
    order = np.empty(n, np.int64)
    for i in range(n):
        k = inst[i]
        order[starts[k]] = i
        starts[k] += 1
    return order


@njit(cache=True, nogil=True)
def _sequence(
    msgs: Array,
    security_ids: Array,
    dense: Array,
    routes: Array,
    trade_templates: Array,
    max_records: int,
    rpt_seq: Array,
    channel_seq: Array,
    last_time: Array,
    out_records: Array,
    out_bounds: Array,
    out_security: Array,
    out_counts: Array,
) -> int:
    n = msgs.shape[0]
    inst = np.empty(n, np.int64)
    for i in range(n):
        sec = _u32(msgs, i, _SECURITY_ID_AT)
        if dense.size:
            k = dense[sec] if sec < dense.size else -1
        else:
            k = np.searchsorted(security_ids, sec)
            if k >= security_ids.size or security_ids[k] != sec:
                k = -1
        if k < 0:
            return -_UNKNOWN_BASE - i
        inst[i] = k
    order = _order_by_instrument(inst, security_ids.size)
    # each record's event number within its instrument (EndOfEvent marks before it)
    event = np.empty(n, np.int64)
    prev = -1
    e = 0
    for j in range(n):
        i = order[j]
        if inst[i] != prev:
            prev = inst[i]
            e = 0
        event[j] = e
        if msgs[i, _MEI_AT] & _END_OF_EVENT:
            e += 1
    # a feed whose RptSeq would pass 2^32-1 must be reset first: report it, change nothing
    overflow = 0
    for f in range(_FEEDS.size):
        feed = _FEEDS[f]
        bit = 1 << (feed - 1)
        prev = -1
        run = 0
        for j in range(n):
            i = order[j]
            tid = _u16(msgs, i, _TEMPLATE_ID_AT)
            if tid >= routes.size or not (routes[tid] & bit):
                continue
            if inst[i] != prev:
                prev = inst[i]
                run = 0
            run += 1
            if rpt_seq[feed, inst[i]] + run > _U32_MAX:
                overflow |= bit
                break
    if overflow:
        return overflow
    # what the snapshots report: TransactTime of the last record of each instrument
    for j in range(n):
        i = order[j]
        if j == n - 1 or inst[order[j + 1]] != inst[i]:
            t = _i64(msgs, i, _TRANSACT_TIME_AT)
            if t > last_time[inst[i]]:
                last_time[inst[i]] = t
    ev_of = np.empty(n, np.int64)
    inst_of = np.empty(n, np.int64)
    for f in range(_FEEDS.size):
        feed = _FEEDS[f]
        bit = 1 << (feed - 1)
        count = 0
        packets = 0
        packet_start = 0
        prev = -1
        for j in range(n):
            i = order[j]
            tid = _u16(msgs, i, _TEMPLATE_ID_AT)
            if tid >= routes.size or not (routes[tid] & bit):
                continue
            k = inst[i]
            if k != prev or count - packet_start == max_records:
                out_bounds[f, packets] = count
                out_security[f, packets] = security_ids[k]
                packets += 1
                packet_start = count
                prev = k
            for b in range(_MSG):
                out_records[f, count, b] = msgs[i, b]
            rpt = rpt_seq[feed, k] + 1
            rpt_seq[feed, k] = rpt
            for b in range(4):
                out_records[f, count, _RPT_SEQ_AT + b] = (rpt >> (8 * b)) & 0xFF
            ev_of[count] = event[j]
            inst_of[count] = k
            count += 1
        # EndOfEvent on the last record of each event within this feed
        for c in range(count):
            last = c == count - 1 or inst_of[c + 1] != inst_of[c] or ev_of[c + 1] != ev_of[c]
            out_records[f, c, _MEI_AT] = _END_OF_EVENT if last else 0
        # LastTradeMsg on the last trade record of each event (scanning backwards)
        trade_tid = trade_templates[f]
        if trade_tid:
            seen_inst = -1
            seen_event = -1
            for c in range(count - 1, -1, -1):
                if _u16(out_records[f], c, _TEMPLATE_ID_AT) != trade_tid:
                    continue
                if inst_of[c] != seen_inst or ev_of[c] != seen_event:
                    out_records[f, c, _MEI_AT] |= _LAST_TRADE
                    seen_inst = inst_of[c]
                    seen_event = ev_of[c]
        out_bounds[f, packets] = count
        out_counts[f, 0] = count
        out_counts[f, 1] = packets
        channel_seq[feed] += count
    return OK


def dense_index(security_ids: Array) -> Array:
    """SecurityID -> instrument index (-1: none) as one array, when the largest
    SecurityID is small enough for it (at most ``DENSE_SLACK`` entries per instrument);
    otherwise an empty array, and :func:`sequence` bisects ``security_ids``."""
    if security_ids.size == 0 or int(security_ids[-1]) >= DENSE_SLACK * security_ids.size + DENSE_FLOOR:
        return np.zeros(0, np.int32)
    dense = np.full(int(security_ids[-1]) + 1, -1, np.int32)
    dense[security_ids] = np.arange(security_ids.size, dtype=np.int32)
    return dense


def sequence(
    msgs: Array,
    security_ids: Array,
    dense: Array,
    routes: Array,
    trade_templates: Array,
    max_records: int,
    rpt_seq: Array,
    channel_seq: Array,
    last_time: Array,
) -> tuple[int, Array, Array, Array, Array]:
    """Number and pack ``msgs`` (n, 60) into the four feeds, updating ``rpt_seq``,
    ``channel_seq`` and ``last_time`` in place. ``security_ids`` are the configured
    instruments, sorted; ``dense`` is :func:`dense_index` of them.

    Returns (status, records, bounds, security, counts): row f of each output array is
    feed ``FEED_SLOTS[f]``, holding ``counts[f, 0]`` records in ``counts[f, 1]`` packets
    (``bounds[f]``: each packet's first record, then the count). ``status`` is OK; or
    the bit mask (``1 << (feed - 1)``) of feeds whose RptSeq would pass 2^32-1 (nothing
    changed: reset them and call again); or ``-2**32 - i`` when record i names an
    unconfigured SecurityID (nothing changed)."""
    n = msgs.shape[0]
    records = np.empty((len(FEED_SLOTS), n, _MSG), np.uint8)
    bounds = np.empty((len(FEED_SLOTS), n + 1), np.int64)
    security = np.empty((len(FEED_SLOTS), n), np.int64)
    counts = np.zeros((len(FEED_SLOTS), 2), np.int64)
    status = _sequence(
        np.ascontiguousarray(msgs),
        security_ids,
        dense,
        routes,
        trade_templates,
        max_records,
        rpt_seq,
        channel_seq,
        last_time,
        records,
        bounds,
        security,
        counts,
    )
    return int(status), records, bounds, security, counts


def unknown_record(status: int) -> int | None:
    """The index of the record with an unconfigured SecurityID, if ``status`` says so."""
    return -status - _UNKNOWN_BASE if status <= -_UNKNOWN_BASE else None
