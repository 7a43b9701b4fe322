"""The record path of one loop pass in compiled calls: stages H and S over every plain
order frame of the pass, the engine, and the split of its output by destination.

The Python path pays, per frame and per engine call, for objects and NumPy steps around
three small kernels (stage S, the engine, routing). Here they run together: one call
(:func:`run_pass`) for a server without a journal, two (:func:`stage_frames`, then
:func:`match_records`) for one whose journal must hold the records before the engine
runs them.

It takes only what needs no Python: frames whose stages H and S pass every message as
an order. At the first frame with anything else (a refusal, a heartbeat, a
RetransmitRequest) it stops: that frame and every later one are *left* to the Python
path, in order, after these calls. So the engine sees the pass's records in the order
they came, as on the Python path alone (only the engine call is cut in two). Nothing of
a left frame is committed here (stage S is a pure function of its parameters).

The frames are read as 32-bit words, as stage S reads them (every record is 60 bytes,
so each starts at a multiple of 4 when the frames are packed from offset 0).
"""

from __future__ import annotations

from typing import Any, Final

import numba
import numpy as np
import numpy.typing as npt

from qfix.engine import _kernels as kern
from qfix.qzmq import _record_kernel as rk
from qfix.qzmq import _record_row as lease_cols
from qfix.server import _routing, _stage_s
from qfix.wire import codes

_MSG: Final = codes.MESSAGE_SIZE
_MSG_WORDS: Final = _MSG // 4
_FRAME_MSGS: Final = codes.MAX_MSGS_PER_FRAME

#: the columns of ``frames_table``: where a frame starts in ``frames`` and its length
#: (bytes), its session's row in ``sessions``, its RecvTime, and its connection's row of
#: the lease table (a sealed record) or FRAME_PLAIN / FRAME_NOT_LEASED
FRAME_START: Final = 0
FRAME_BYTES: Final = 1
FRAME_SESSION: Final = 2
FRAME_RECV_TIME: Final = 3
FRAME_LEASE: Final = 4
FRAME_COLUMNS: Final = 5
FRAME_PLAIN: Final = -1  #: the frame is plaintext (the messages themselves)
FRAME_NOT_LEASED: Final = -2  #: a sealed record whose session the kernels cannot serve

#: the columns of ``sealed``: one record sealed here, for the receiving connection
#: ``conn_rows[SEALED_CONN]``, at ``arena[start:start + bytes]``, holding ``msgs`` messages
SEALED_CONN: Final = 0
SEALED_START: Final = 1
SEALED_BYTES: Final = 2
SEALED_MSGS: Final = 3
SEALED_COLUMNS: Final = 4
#: the columns of ``handed``: a connection whose messages of a group, from the group's
#: message ``from`` on, are Python's to seal (its row is not leased, or a usage limit)
HANDED_GROUP: Final = 0
HANDED_CONN: Final = 1
HANDED_FROM: Final = 2
HANDED_COLUMNS: Final = 3
#: the columns of ``dest_conns``, one row per SessionID: its receiving connections as
#: ``conn_rows[start:end]``
DEST_START: Final = 0
DEST_END: Final = 1

#: the columns of ``sessions``, one row per session with frames in the pass: what stage S
#: needs (SessionID, ClOrdID mark, orders the throttle allows, accepting, session account,
#: its accounts as ``accounts[start:end]``), and (written here) the orders charged to its
#: throttle
SESSION_ID: Final = 0
SESSION_MARK: Final = 1
SESSION_ALLOWANCE: Final = 2
SESSION_ACCEPTING: Final = 3
SESSION_ACCOUNT: Final = 4
SESSION_ACCOUNTS_START: Final = 5
SESSION_ACCOUNTS_END: Final = 6
SESSION_ORDERS: Final = 7
SESSION_COLUMNS: Final = 8

#: the entries of ``run_pass``'s result
RESULT_FRAMES: Final = 0  #: frames taken (the rest, from the first left one, are Python's)
RESULT_INBOUND: Final = 1  #: inbound records stage S passed (every message of those frames)
RESULT_STATUS: Final = 2  #: the engine's status (kern.STATUS_*), STATUS_OK with no record
RESULT_CONSUMED: Final = 3  #: inbound records the engine ran
RESULT_NEEDED: Final = 4  #: output records the next one needs (STATUS_FULL)
RESULT_WRITTEN: Final = 5  #: output records written
RESULT_GROUPS: Final = 6  #: destinations in ``groups``
RESULT_MD: Final = 7  #: market-data records (the end of ``order``)
RESULT_TRADES: Final = 8  #: Trade records among them
RESULT_SEALED: Final = 9  #: records sealed into ``arena`` (rows of ``sealed``)
RESULT_HANDED: Final = 10  #: rows of ``handed``
#: bytes ``arena`` must hold for the output's records (then nothing was sealed, and
#: RESULT_SEALED and RESULT_HANDED are 0 until seal_groups runs again); 0 if it held them
RESULT_ARENA_NEEDED: Final = 11
RESULT_FIELDS: Final = 12


@numba.njit(cache=True, nogil=True)
def stage_frames(
    frames: npt.NDArray[np.uint8],
    frames_table: npt.NDArray[np.int64],
    plain: npt.NDArray[np.uint8],
    leases: npt.NDArray[np.int64],
    nonce: npt.NDArray[np.uint8],
    cell: npt.NDArray[np.int32],
    sessions: npt.NDArray[np.uint64],
    accounts: npt.NDArray[np.uint32],
    blocked: npt.NDArray[np.uint32],
    inbound_words: npt.NDArray[np.uint32],
    result: npt.NDArray[np.int64],
) -> None:
    """Stages H and S over the frames of ``frames_table``, in its order, up to the first
    one that cannot be taken; the records they pass go to ``inbound_words`` ((n, 20)
    words of INBOUND records, at least as many as the pass's messages). A sealed
    record is opened on its lease row first (``_record_kernel.open_fixed``), one that
    cannot be opened is left, and one whose messages are then left is closed again (its
    row as before the open: the session's Python code opens it once more). The
    messages go to ``plain`` (as long as ``frames``) from offset 0, each frame's at a
    multiple of 60. Writes ``result[RESULT_FRAMES]`` and ``result[RESULT_INBOUND]``,
    zeroes the rest."""
    words_all = plain.view(np.uint32)
    reasons = np.zeros(_FRAME_MSGS, np.uint8)
    params = np.zeros(_stage_s.PARAMS, np.uint64)
    written = 0
    taken = 0
    at = 0
    for f in range(frames_table.shape[0]):
        row = frames_table[f, FRAME_SESSION]
        start = frames_table[f, FRAME_START]
        size = frames_table[f, FRAME_BYTES]
        lease = frames_table[f, FRAME_LEASE]
        before_next = before_records = before_blocks = 0
        if lease == FRAME_NOT_LEASED:
            break
        if lease == FRAME_PLAIN:
            plain[at : at + size] = frames[start : start + size]
        else:
            key = leases[lease]
            before_next = key[lease_cols.ROW_RECV_NEXT]
            before_records = key[lease_cols.ROW_RECV_RECORDS]
            before_blocks = key[lease_cols.ROW_RECV_BLOCKS]
            size = rk.open_fixed(key, frames, start, size, plain, at, nonce, cell)
            if size == rk.HAND_BACK:
                break
        k = size // _MSG
        if size == 0 or size % _MSG or k > _FRAME_MSGS:
            break  # stage F's refusal is built in Python (an opened record is never here)
        raw = plain[at : at + size].reshape((k, _MSG))
        raw_words = words_all[at // 4 : (at + size) // 4].reshape((k, _MSG_WORDS))
        params[_stage_s.PARAM_SESSION_ID] = sessions[row, SESSION_ID]
        params[_stage_s.PARAM_RECV_TIME] = np.uint64(frames_table[f, FRAME_RECV_TIME])
        params[_stage_s.PARAM_MARK] = sessions[row, SESSION_MARK]
        params[_stage_s.PARAM_ALLOWANCE] = sessions[row, SESSION_ALLOWANCE] - sessions[row, SESSION_ORDERS]
        params[_stage_s.PARAM_ACCEPTING] = sessions[row, SESSION_ACCEPTING]
        params[_stage_s.PARAM_SESSION_ACCOUNT] = sessions[row, SESSION_ACCOUNT]
        own = accounts[sessions[row, SESSION_ACCOUNTS_START] : sessions[row, SESSION_ACCOUNTS_END]]
        passed, mark, orders, _ = _stage_s.stage_hs(
            raw, raw_words, own, blocked, params, reasons[:k], inbound_words[written : written + k]
        )
        if passed != k:  # a refusal or a message that is not an order: Python's to answer
            if lease >= 0:
                leases[lease, lease_cols.ROW_RECV_NEXT] = before_next
                leases[lease, lease_cols.ROW_RECV_RECORDS] = before_records
                leases[lease, lease_cols.ROW_RECV_BLOCKS] = before_blocks
            break
        sessions[row, SESSION_MARK] = mark
        sessions[row, SESSION_ORDERS] += orders
        written += passed
        taken += 1
        at += size
    result[:] = 0
    result[RESULT_FRAMES] = taken
    result[RESULT_INBOUND] = written
    result[RESULT_STATUS] = kern.STATUS_OK


@numba.njit(cache=True, nogil=True)
def seal_groups(
    out_bytes: npt.NDArray[np.uint8],
    order: npt.NDArray[np.int64],
    groups: npt.NDArray[np.int64],
    count: int,
    dest_conns: npt.NDArray[np.int64],
    conn_rows: npt.NDArray[np.int64],
    leases: npt.NDArray[np.int64],
    arena: npt.NDArray[np.uint8],
    sealed: npt.NDArray[np.int64],
    handed: npt.NDArray[np.int64],
    nonce: npt.NDArray[np.uint8],
    cell: npt.NDArray[np.int32],
    result: npt.NDArray[np.int64],
) -> None:
    """Seal each of the first ``count`` groups of a split (``_routing.split``: their
    records are ``out_bytes[order[...]]``, the first 60 bytes of each) for every
    receiving connection of its destination (``dest_conns``, ``conn_rows``), in records of
    at most 1,091 messages, on the connection's lease row. What a row cannot seal (not
    leased, a usage limit) goes to ``handed``, for Python to seal after the records here.

    Nothing is sealed when ``arena`` is too small: ``result[RESULT_ARENA_NEEDED]`` then
    says how large it must be (``sealed`` needs a row per 86 bytes of it, ``handed`` one
    per group and connection). Writes RESULT_SEALED, RESULT_HANDED and
    RESULT_ARENA_NEEDED."""
    result[RESULT_SEALED] = 0
    result[RESULT_HANDED] = 0
    need = 0
    begin = 0
    for g in range(count):
        sid = groups[g, _routing.GROUP_DEST]
        end = groups[g, _routing.GROUP_END]
        k = end - begin
        if sid < dest_conns.shape[0]:
            conns = dest_conns[sid, DEST_END] - dest_conns[sid, DEST_START]
            need += conns * (k * _MSG + (k + _FRAME_MSGS - 1) // _FRAME_MSGS * rk.RECORD_OVERHEAD)
        begin = end
    if need > arena.size:
        result[RESULT_ARENA_NEEDED] = need
        return
    result[RESULT_ARENA_NEEDED] = 0
    n_sealed = 0
    n_handed = 0
    at = 0
    begin = 0
    for g in range(count):
        sid = groups[g, _routing.GROUP_DEST]
        end = groups[g, _routing.GROUP_END]
        if sid < dest_conns.shape[0]:
            for c in range(dest_conns[sid, DEST_START], dest_conns[sid, DEST_END]):
                lease = conn_rows[c]
                for first in range(begin, end, _FRAME_MSGS):
                    last = min(first + _FRAME_MSGS, end)
                    body = at + rk.HEADER_LEN
                    for j in range(first, last):
                        pos = body + (j - first) * _MSG
                        arena[pos : pos + _MSG] = out_bytes[order[j], :_MSG]
                    size = rk.HAND_BACK
                    if lease >= 0:
                        size = rk.seal_fixed(leases[lease], arena, body, (last - first) * _MSG, arena, at, nonce, cell)
                    if size == rk.HAND_BACK:
                        handed[n_handed, HANDED_GROUP] = g
                        handed[n_handed, HANDED_CONN] = c
                        handed[n_handed, HANDED_FROM] = first - begin
                        n_handed += 1
                        break
                    sealed[n_sealed, SEALED_CONN] = c
                    sealed[n_sealed, SEALED_START] = at
                    sealed[n_sealed, SEALED_BYTES] = size
                    sealed[n_sealed, SEALED_MSGS] = last - first
                    n_sealed += 1
                    at += size
        begin = end
    result[RESULT_SEALED] = n_sealed
    result[RESULT_HANDED] = n_handed


@numba.njit(cache=True, nogil=True)
def match_records(
    inbound: npt.NDArray[Any],
    inbound_words: npt.NDArray[np.uint32],
    start: int,
    end: int,
    engine_state: Any,
    out: npt.NDArray[Any],
    out_words: npt.NDArray[np.uint32],
    marks: npt.NDArray[np.uint64],
    last_exec_ids: npt.NDArray[np.uint64],
    order: npt.NDArray[np.int64],
    kept_rows: npt.NDArray[np.int64],
    kept_ids: npt.NDArray[np.uint64],
    groups: npt.NDArray[np.int64],
    out_bytes: npt.NDArray[np.uint8],
    dest_conns: npt.NDArray[np.int64],
    conn_rows: npt.NDArray[np.int64],
    leases: npt.NDArray[np.int64],
    arena: npt.NDArray[np.uint8],
    sealed: npt.NDArray[np.int64],
    handed: npt.NDArray[np.int64],
    nonce: npt.NDArray[np.uint8],
    cell: npt.NDArray[np.int32],
    result: npt.NDArray[np.int64],
) -> None:
    """One engine call over ``inbound[start:end]`` (``inbound_words`` are their words),
    the journaled ClOrdID ``marks`` raised for the records it ran, ``_routing.split`` of
    its output (``out``, ``out_words``; ``order``, ``kept_rows``, ``kept_ids`` and
    ``groups`` as long as ``out``) and :func:`seal_groups` of the split (``out_bytes``
    is ``out`` as bytes; ``dest_conns`` with no rows seals nothing). ``marks`` and
    routing's ``last_exec_ids`` are cut to the known sessions. Writes the engine's,
    routing's and sealing's entries of ``result``; RESULT_CONSUMED counts from ``start``."""
    status, consumed, needed, produced = kern.process(engine_state, out, inbound[start:end], end - start)
    result[RESULT_STATUS] = status
    result[RESULT_CONSUMED] = consumed
    result[RESULT_NEEDED] = needed
    result[RESULT_WRITTEN] = produced
    result[RESULT_GROUPS] = 0
    result[RESULT_MD] = 0
    result[RESULT_TRADES] = 0
    result[RESULT_SEALED] = 0
    result[RESULT_HANDED] = 0
    result[RESULT_ARENA_NEEDED] = 0
    if status == kern.STATUS_BAD:
        return
    _stage_s.raise_marks(inbound_words[start : start + consumed], marks.size, marks)
    count, md, trades = _routing.split(out_words[:produced], last_exec_ids, order, kept_rows, kept_ids, groups)
    result[RESULT_GROUPS] = count
    result[RESULT_MD] = md
    result[RESULT_TRADES] = trades
    if dest_conns.shape[0]:
        seal_groups(
            out_bytes, order, groups, count, dest_conns, conn_rows, leases, arena, sealed, handed, nonce, cell, result
        )


@numba.njit(cache=True, nogil=True)
def run_pass(
    frames: npt.NDArray[np.uint8],
    frames_table: npt.NDArray[np.int64],
    plain: npt.NDArray[np.uint8],
    sessions: npt.NDArray[np.uint64],
    accounts: npt.NDArray[np.uint32],
    blocked: npt.NDArray[np.uint32],
    inbound: npt.NDArray[Any],
    inbound_words: npt.NDArray[np.uint32],
    engine_state: Any,
    out: npt.NDArray[Any],
    out_words: npt.NDArray[np.uint32],
    marks: npt.NDArray[np.uint64],
    last_exec_ids: npt.NDArray[np.uint64],
    order: npt.NDArray[np.int64],
    kept_rows: npt.NDArray[np.int64],
    kept_ids: npt.NDArray[np.uint64],
    groups: npt.NDArray[np.int64],
    out_bytes: npt.NDArray[np.uint8],
    dest_conns: npt.NDArray[np.int64],
    conn_rows: npt.NDArray[np.int64],
    leases: npt.NDArray[np.int64],
    arena: npt.NDArray[np.uint8],
    sealed: npt.NDArray[np.int64],
    handed: npt.NDArray[np.int64],
    nonce: npt.NDArray[np.uint8],
    cell: npt.NDArray[np.int32],
    result: npt.NDArray[np.int64],
) -> None:
    """:func:`stage_frames`, then :func:`match_records` over every record it passed, in
    one call (a server without a journal: nothing has to happen in between)."""
    stage_frames(frames, frames_table, plain, leases, nonce, cell, sessions, accounts, blocked, inbound_words, result)
    written = result[RESULT_INBOUND]
    if written:
        match_records(
            inbound, inbound_words, 0, written, engine_state, out, out_words, marks, last_exec_ids,
            order, kept_rows, kept_ids, groups, out_bytes, dest_conns, conn_rows, leases, arena, sealed,
            handed, nonce, cell, result,
        )  # fmt: skip
