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
from qfix.server import _routing, _stage_s
from qfix.wire import codes

_MSG: Final = codes.MESSAGE_SIZE
_MSG_WORDS: Final = _MSG // 4
_FRAME_MSGS: Final = codes.MAX_MSGS_PER_FRAME

#: the columns of ``frames_table``: where a frame starts in ``frames`` and its length
#: (bytes), its session's row in ``sessions`` and its RecvTime
FRAME_START: Final = 0
FRAME_BYTES: Final = 1
FRAME_SESSION: Final = 2
FRAME_RECV_TIME: Final = 3
FRAME_COLUMNS: Final = 4

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
RESULT_FIELDS: Final = 9


@numba.njit(cache=True, nogil=True)
def stage_frames(
    frames: npt.NDArray[np.uint8],
    frames_table: npt.NDArray[np.int64],
    sessions: npt.NDArray[np.uint64],
    accounts: npt.NDArray[np.uint32],
    blocked: npt.NDArray[np.uint32],
    inbound_words: npt.NDArray[np.uint32],
    result: npt.NDArray[np.int64],
) -> None:
    """Stages H and S over the frames of ``frames_table``, in its order, up to the first
    one that cannot be taken; the records they pass go to ``inbound_words`` ((n, 20)
    words of INBOUND records, at least as many as the pass's messages). Writes
    ``result[RESULT_FRAMES]`` and ``result[RESULT_INBOUND]``, zeroes the rest."""
    words_all = frames.view(np.uint32)
    reasons = np.zeros(_FRAME_MSGS, np.uint8)
    params = np.zeros(_stage_s.PARAMS, np.uint64)
    written = 0
    taken = 0
    for f in range(frames_table.shape[0]):
        row = frames_table[f, FRAME_SESSION]
        start = frames_table[f, FRAME_START]
        size = frames_table[f, FRAME_BYTES]
        k = size // _MSG
        if size == 0 or size % _MSG or k > _FRAME_MSGS:
            break  # stage F's refusal is built in Python
        raw = frames[start : start + size].reshape((k, _MSG))
        raw_words = words_all[start // 4 : (start + size) // 4].reshape((k, _MSG_WORDS))
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
            break
        sessions[row, SESSION_MARK] = mark
        sessions[row, SESSION_ORDERS] += orders
        written += passed
        taken += 1
    result[:] = 0
    result[RESULT_FRAMES] = taken
    result[RESULT_INBOUND] = written
    result[RESULT_STATUS] = kern.STATUS_OK


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
    result: npt.NDArray[np.int64],
) -> None:
    """One engine call over ``inbound[start:end]`` (``inbound_words`` are their words),
    the journaled ClOrdID ``marks`` raised for the records it ran, and
    ``_routing.split`` of its output (``out``, ``out_words``; ``order``, ``kept_rows``,
    ``kept_ids`` and ``groups`` as long as ``out``). ``marks`` and routing's
    ``last_exec_ids`` are cut to the known sessions. Writes the engine's and routing's
    entries of ``result``; RESULT_CONSUMED counts from ``start``."""
    status, consumed, needed, produced = kern.process(engine_state, out, inbound[start:end], end - start)
    result[RESULT_STATUS] = status
    result[RESULT_CONSUMED] = consumed
    result[RESULT_NEEDED] = needed
    result[RESULT_WRITTEN] = produced
    result[RESULT_GROUPS] = 0
    result[RESULT_MD] = 0
    result[RESULT_TRADES] = 0
    if status == kern.STATUS_BAD:
        return
    _stage_s.raise_marks(inbound_words[start : start + consumed], marks.size, marks)
    count, md, trades = _routing.split(out_words[:produced], last_exec_ids, order, kept_rows, kept_ids, groups)
    result[RESULT_GROUPS] = count
    result[RESULT_MD] = md
    result[RESULT_TRADES] = trades


@numba.njit(cache=True, nogil=True)
def run_pass(
    frames: npt.NDArray[np.uint8],
    frames_table: npt.NDArray[np.int64],
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
    result: npt.NDArray[np.int64],
) -> None:
    """:func:`stage_frames`, then :func:`match_records` over every record it passed, in
    one call (a server without a journal: nothing has to happen in between)."""
    stage_frames(frames, frames_table, sessions, accounts, blocked, inbound_words, result)
    written = result[RESULT_INBOUND]
    if written:
        match_records(
            inbound, inbound_words, 0, written, engine_state, out, out_words, marks, last_exec_ids,
            order, kept_rows, kept_ids, groups, result,
        )  # fmt: skip
