"""Stages H and S of WIRE.md §5.1 over one frame in one compiled pass.

Every frame of every session goes through here, so its cost is paid per record: as
NumPy steps (a mask, a view, a cumulative maximum, a field assignment each) stage S cost
about 40 us even for a one-order frame. One jitted loop does the header checks
(``codec.stage_h``), the throttle, the ClOrdID rule, the account checks and the copy
into inbound records, and hands back only counts; the refusals are built by the caller
from ``reasons``, off this path.

The frame and the inbound records are read and written as 32-bit words: every field
stage S touches starts at a multiple of 4 in both layouts (checked at import).
"""

from __future__ import annotations

from typing import Final

import numba
import numpy as np
import numpy.typing as npt

from qfix.wire import codec, codes, schema

#: ClOrdID, the first field of templates 1-4 (two words, little-endian)
_CLORDID: Final = schema.word_offset(schema.NEW_ORDER_SINGLE, "ClOrdID")
#: Account of the two templates that carry one
_NOS_ACCOUNT: Final = schema.word_offset(schema.NEW_ORDER_SINGLE, "Account")
_MASS_ACCOUNT: Final = schema.word_offset(schema.ORDER_MASS_CANCEL_REQUEST, "Account")
if any(
    schema.word_offset(dtype, "ClOrdID") != _CLORDID
    for dtype in (schema.ORDER_CANCEL_REQUEST, schema.ORDER_CANCEL_REPLACE_REQUEST, schema.ORDER_MASS_CANCEL_REQUEST)
):
    raise ImportError("stage S reads ClOrdID at one offset for templates 1-4; the schema moved it")
#: the inbound record's words after the message (WIRE.md §6.1)
_MESSAGE_WORDS: Final = schema.word_offset(schema.INBOUND, "SessionID")  # the message is what precedes it
_IN_SESSION_ID: Final = schema.word_offset(schema.INBOUND, "SessionID")
_IN_SESSION_ACCOUNT: Final = schema.word_offset(schema.INBOUND, "SessionAccount")
_IN_RESERVED: Final = schema.word_offset(schema.INBOUND, "InboundReserved")
_IN_RECV_TIME: Final = schema.word_offset(schema.INBOUND, "RecvTime")
INBOUND_WORDS: Final = schema.word_offset(schema.INBOUND)
if INBOUND_WORDS != _IN_RECV_TIME + 2:
    raise ImportError("stage S writes RecvTime as the inbound record's last two words; the schema moved it")
#: header word 0 holds the templateId in its high half
_TEMPLATE_SHIFT: Final = schema.TEMPLATE_ID_SHIFT

_NOS: Final = codes.TEMPLATE_NEW_ORDER_SINGLE
_MASS: Final = codes.TEMPLATE_ORDER_MASS_CANCEL_REQUEST
_LAST_ORDER_TEMPLATE: Final = codes.TEMPLATE_ORDER_MASS_CANCEL_REQUEST
_NULL_ACCOUNT: Final = codes.NULL_U32
_NOT_AVAILABLE: Final = codes.BRR_APPLICATION_NOT_AVAILABLE
_NOT_INCREASING: Final = codes.BRR_CLORDID_NOT_INCREASING
_UNKNOWN_ACCOUNT: Final = codes.BRR_UNKNOWN_ACCOUNT
_LOW32: Final = 0xFFFF_FFFF

#: the entries of ``stage_hs``'s ``session`` parameters
PARAM_SESSION_ID: Final = 0
PARAM_RECV_TIME: Final = 1
PARAM_MARK: Final = 2
PARAM_ALLOWANCE: Final = 3
PARAM_ACCEPTING: Final = 4
PARAM_SESSION_ACCOUNT: Final = 5
PARAMS: Final = 6

#: tables of stage H for what a client may send
DEFINED, ALLOWED, RESERVED = codec.STAGE_H_TABLES[codec.CLIENT_TO_SERVER]


@numba.njit(cache=True, nogil=True, inline="always")
def _member(value: int, members: npt.NDArray[np.uint32]) -> bool:
    """Whether ``value`` is in ``members`` (sorted ascending): an operator may block
    thousands of accounts, so a binary search, not a scan."""
    at = np.searchsorted(members, value)
    return bool(at < members.size and members[at] == value)


@numba.njit(cache=True, nogil=True)
def stage_hs(
    raw: npt.NDArray[np.uint8],
    words: npt.NDArray[np.uint32],
    accounts: npt.NDArray[np.uint32],
    blocked: npt.NDArray[np.uint32],
    session: npt.NDArray[np.uint64],
    reasons: npt.NDArray[np.uint8],
    inbound: npt.NDArray[np.uint32],
) -> tuple[int, int, int, int]:
    """Stages H and S for the k messages of one frame that passed stage F.

    ``raw`` (k, 60) bytes and ``words`` (k, 15) its 32-bit view; ``accounts`` the
    session's accounts and ``blocked`` the accounts an operator killed, each sorted
    ascending; ``session`` = (SessionID, RecvTime, ClOrdID mark, orders the throttle
    allows now, accepting 0/1, session account). Writes ``reasons[i]`` (0 = passed or not an order) and
    the passing orders, in frame order, into ``inbound`` (k, 20) as WIRE.md §6.1 records.

    Returns (inbound records written, the new ClOrdID mark, orders seen (what the
    throttle is charged, 0 when not accepting), other accepted messages (heartbeats and
    retransmit requests, left to the caller)).
    """
    codec.stage_h(words, raw, DEFINED, ALLOWED, RESERVED, reasons)
    session_id = np.uint32(session[PARAM_SESSION_ID])
    recv_time = session[PARAM_RECV_TIME]
    mark = session[PARAM_MARK]
    allowance = session[PARAM_ALLOWANCE]
    accepting = session[PARAM_ACCEPTING] != 0
    session_account = np.uint32(session[PARAM_SESSION_ACCOUNT])
    written = 0
    orders = 0
    others = 0
    for i in range(words.shape[0]):
        if reasons[i] != 0:
            continue
        template = words[i, 0] >> _TEMPLATE_SHIFT
        if template > _LAST_ORDER_TEMPLATE:
            others += 1
            continue
        if not accepting:
            reasons[i] = _NOT_AVAILABLE
            continue
        orders += 1
        if orders > allowance:
            reasons[i] = _NOT_AVAILABLE  # throttled: the mark stays, so it may be resent
            continue
        clordid = np.uint64(words[i, _CLORDID]) | (np.uint64(words[i, _CLORDID + 1]) << np.uint64(32))
        if clordid <= mark:
            reasons[i] = _NOT_INCREASING
            continue
        if template in (_NOS, _MASS):
            account = words[i, _NOS_ACCOUNT if template == _NOS else _MASS_ACCOUNT]
            if account == _NULL_ACCOUNT:
                account = session_account
            if not _member(account, accounts) or _member(account, blocked):
                reasons[i] = _UNKNOWN_ACCOUNT
                continue
        mark = clordid
        for w in range(_MESSAGE_WORDS):
            inbound[written, w] = words[i, w]
        inbound[written, _IN_SESSION_ID] = session_id
        inbound[written, _IN_SESSION_ACCOUNT] = session_account
        inbound[written, _IN_RESERVED] = 0
        inbound[written, _IN_RECV_TIME] = np.uint32(recv_time & np.uint64(_LOW32))
        inbound[written, _IN_RECV_TIME + 1] = np.uint32(recv_time >> np.uint64(32))
        written += 1
    return written, mark, orders, others


@numba.njit(cache=True, nogil=True)
def raise_marks(inbound: npt.NDArray[np.uint32], sessions: int, marks: npt.NDArray[np.uint64]) -> int:
    """Raise ``marks[SessionID]`` to the largest ClOrdID of each session's records in
    ``inbound`` ((n, 20) words of WIRE.md §6.1 records of templates 1-4).

    Returns -1, or, having raised nothing, the first SessionID not below ``sessions``."""
    sessions = min(sessions, marks.size)
    for i in range(inbound.shape[0]):
        if inbound[i, _IN_SESSION_ID] >= sessions:
            return int(inbound[i, _IN_SESSION_ID])
    for i in range(inbound.shape[0]):
        session_id = inbound[i, _IN_SESSION_ID]
        clordid = np.uint64(inbound[i, _CLORDID]) | (np.uint64(inbound[i, _CLORDID + 1]) << np.uint64(32))
        if clordid > marks[session_id]:
            marks[session_id] = clordid
    return -1
