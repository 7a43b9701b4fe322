"""The QZMQ record layer's common case in compiled code: DATA_FIXED records opened and
sealed from a session's row of numbers, so that a compiled record path never returns to
Python for a record that needs nothing else.

Theory of operation. :meth:`Session.lease` copies what these kernels need of one
session into a row of an int64 table (the columns below): the EVP contexts of both
directions' keys, their IVs, epochs, usage counters and limits, the sequence numbers.
The kernels take a record only when the session's own code would do nothing but count
it: :func:`open_fixed` a DATA_FIXED record that is next in sequence, of the current
epoch, authentic, within the receive limits and of a valid length; :func:`seal_fixed`
a DATA_FIXED record whose sealing needs no KEY_UPDATE first. Anything else (a
duplicate, a junk or forged record, another record type, a limit reached) is *handed
back*: the kernel changes nothing and the caller gives the record to the session's
Python code, which does exactly what it always did. :meth:`Session.recall` copies the
numbers back; between a lease and its recall the row, not the object, is the session's
state, and nothing else may touch the session. A recalled row reads as not leased
(``ROW_LEASED`` 0): the kernels hand back every record of it until the next lease.

The row's columns are in ``_record_row``, which imports no Numba. The rules are
docs/qzmq.md §4's, in the order ``Session.receive`` applies them; the differential tests
run random streams through both and compare every byte and number.
"""

from __future__ import annotations

from typing import Any, Final

import numpy.typing as npt
from numba import njit

from qfix.crypto._gcm_kernel import open_record, seal_record
from qfix.qzmq import _constants as c
from qfix.qzmq._record_row import (
    HAND_BACK,
    HEADER_LEN,
    RECORD_OVERHEAD,
    ROW_COLUMNS,
    ROW_LEASED,
    ROW_RECV_BLOCKS,
    ROW_RECV_CTX,
    ROW_RECV_EPOCH,
    ROW_RECV_IV_HI,
    ROW_RECV_IV_LO,
    ROW_RECV_NEXT,
    ROW_RECV_RECORDS,
    ROW_SEND_BLOCK_LIMIT,
    ROW_SEND_BLOCKS,
    ROW_SEND_CTX,
    ROW_SEND_EPOCH,
    ROW_SEND_IV_HI,
    ROW_SEND_IV_LO,
    ROW_SEND_RECORD_LIMIT,
    ROW_SEND_RECORDS,
    ROW_SEND_SEQ,
)

# the row's columns come from _record_row (the session layer reads them without Numba)
__all__ = ["HAND_BACK", "HEADER_LEN", "RECORD_OVERHEAD", "ROW_COLUMNS", "open_fixed", "seal_fixed"]

Array = npt.NDArray[Any]

# the protocol's constants, restated: Numba freezes a global's value into the cached
# machine code, and its cache notices edits to this file only (qfix.numba_cache)
_DATA_FIXED: Final = 0x16
_HEADER: Final = HEADER_LEN
_TAG: Final = RECORD_OVERHEAD - HEADER_LEN
_MSG: Final = 60
_MAX_MSGS: Final = 1091
_MAX_FRAME: Final = 65_536
_RECV_BLOCK_LIMIT: Final = 1 << 33
_RECV_RECORD_LIMIT: Final = 1 << 31
# a sequence number the kernels handle stays below 2**63, far below the protocol's end
_SEQ_CAP: Final = (1 << 63) - 1
if (
    c.RecordType.DATA_FIXED.value != _DATA_FIXED
    or (_HEADER, _TAG, _MSG, _MAX_MSGS, _MAX_FRAME) != (
        c.RECORD_HEADER_LEN, c.TAG_LEN, c.FIXED_MSG_LEN, c.MAX_FIXED_MSGS, c.MAX_FRAME
    )
    or (_RECV_BLOCK_LIMIT, _RECV_RECORD_LIMIT) != (c.RECV_BLOCK_LIMIT, c.RECV_RECORD_LIMIT)
    or _SEQ_CAP >= c.MAX_SEQ - 1
):  # fmt: skip
    raise ImportError("qfix.qzmq._record_kernel restates constants that _constants changed: update both")


@njit(cache=True, nogil=True, inline="always")
def _nonce(hi: int, lo: int, seq: int, nonce: Array) -> None:
    """The record nonce, IV XOR seq, big-endian, into ``nonce[0:12]``."""
    for k in range(4):
        nonce[3 - k] = (hi >> (8 * k)) & 0xFF
    x = lo ^ seq
    for k in range(8):
        nonce[11 - k] = (x >> (8 * k)) & 0xFF


@njit(cache=True, nogil=True, inline="always")
def _blocks(n: int) -> int:
    """AES blocks a record of ``n`` plaintext bytes uses (its counter, tag and data)."""
    return (n + 15) // 16 + 2


@njit(cache=True, nogil=True)
def open_fixed(row: Array, frame: Array, start: int, n: int, out: Array, out_at: int, nonce: Array, cell: Array) -> int:
    """Open the record ``frame[start:start + n]`` of the session in ``row`` into
    ``out[out_at:]``; returns the plaintext's length, or HAND_BACK with nothing changed.

    ``nonce`` is 12 bytes of scratch, ``cell`` an int32 one. Taken: a DATA_FIXED record
    whose sequence number is the next, of the receive key's epoch, authentic, holding
    1 to 1,091 whole messages, within the receive limits."""
    if not row[ROW_LEASED] or n < _HEADER + _TAG or n > _MAX_FRAME or frame[start] != _DATA_FIXED:
        return HAND_BACK
    if frame[start + 1] != row[ROW_RECV_EPOCH]:
        return HAND_BACK
    if frame[start + 2] & 0x80:
        return HAND_BACK  # at least 2**63: never the next one here
    seq = 0
    for k in range(2, _HEADER):
        seq = (seq << 8) | frame[start + k]
    if seq != row[ROW_RECV_NEXT]:
        return HAND_BACK
    body = n - _HEADER - _TAG
    if body == 0 or body % _MSG or body > _MSG * _MAX_MSGS:
        return HAND_BACK
    records = row[ROW_RECV_RECORDS] + 1
    blocks = row[ROW_RECV_BLOCKS] + _blocks(body)
    if blocks > _RECV_BLOCK_LIMIT or records > _RECV_RECORD_LIMIT:
        return HAND_BACK
    _nonce(row[ROW_RECV_IV_HI], row[ROW_RECV_IV_LO], seq, nonce)
    base = frame.ctypes.data + start
    if not open_record(
        row[ROW_RECV_CTX], nonce.ctypes.data, base, _HEADER, base + _HEADER, n - _HEADER,
        out.ctypes.data + out_at, cell,
    ):  # fmt: skip
        return HAND_BACK
    row[ROW_RECV_NEXT] = seq + 1
    row[ROW_RECV_RECORDS] = records
    row[ROW_RECV_BLOCKS] = blocks
    return body


@njit(cache=True, nogil=True)
def seal_fixed(
    row: Array, payload: Array, start: int, n: int, out: Array, out_at: int, nonce: Array, cell: Array
) -> int:
    """Seal ``payload[start:start + n]`` (1 to 1,091 whole messages) as the session's next
    DATA_FIXED record into ``out[out_at:]``; returns the record's length, or HAND_BACK
    with nothing changed when the session's Python code must seal it (a usage limit
    reached: it sends a KEY_UPDATE first; the sequence numbers' end)."""
    if not row[ROW_LEASED] or n == 0 or n % _MSG or n > _MSG * _MAX_MSGS:
        return HAND_BACK
    if row[ROW_SEND_RECORDS] >= row[ROW_SEND_RECORD_LIMIT] or row[ROW_SEND_BLOCKS] >= row[ROW_SEND_BLOCK_LIMIT]:
        return HAND_BACK
    seq = row[ROW_SEND_SEQ]
    if seq >= _SEQ_CAP:
        return HAND_BACK
    at = out_at
    out[at] = _DATA_FIXED
    out[at + 1] = row[ROW_SEND_EPOCH]
    for k in range(8):
        out[at + _HEADER - 1 - k] = (seq >> (8 * k)) & 0xFF
    _nonce(row[ROW_SEND_IV_HI], row[ROW_SEND_IV_LO], seq, nonce)
    base = out.ctypes.data + at
    if not seal_record(
        row[ROW_SEND_CTX], nonce.ctypes.data, base, _HEADER, payload.ctypes.data + start, n, base + _HEADER, cell
    ):
        return HAND_BACK
    row[ROW_SEND_SEQ] = seq + 1
    row[ROW_SEND_RECORDS] += 1
    row[ROW_SEND_BLOCKS] += _blocks(n)
    return _HEADER + n + _TAG
