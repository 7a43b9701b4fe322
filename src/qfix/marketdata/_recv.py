"""Receiving feed packets in jitted code, straight from libzmq into a byte arena.

Why: a subscriber of the ``multi`` workload receives thousands of packets per engine call
of the server, and pyzmq costs microseconds per packet in Python (an object per frame, a
list per message). ``scripts/probe_sub_recv.py`` (docs/results/probe_sub_recv.json)
measured the receiving thread's CPU time for a three-frame packet of 4 records, received
while a PUB in another process sent 300,000, at 3.8 us through pyzmq's ``recv_multipart``,
0.72 us through three ``recv`` calls, and 0.33 us through :func:`recv_packets`; draining
a full queue (``--queued``, docs/results/probe_sub_recv-queued.json) 4.1, 1.0 and 0.27 us
(2 shared cores, medians of 3 rounds). So one kernel call drains every waiting packet
with ``zmq_recv``, copying each frame into one preallocated arena and writing its place
into a table of int64 rows that the consumer parses in bulk.

Safety: the kernel must call the very libzmq that pyzmq's socket belongs to. This module
calls the copy that :mod:`qfix.marketdata._send` loaded and checked (the one mapped into
the process, and only if the symbol Numba resolves is that copy's); where that check
failed :data:`AVAILABLE` is False and the caller receives through pyzmq. Every frame is
copied with the room left in the arena as ``zmq_recv``'s length, so no message, however
large or malformed, writes past the arena.
"""

from __future__ import annotations

import errno
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import zmq
from numba import njit

from qfix.marketdata import feeds
from qfix.marketdata._send import AVAILABLE
from qfix.native_zmq import recv_frame as _recv_frame
from qfix.native_zmq import zmq_errno as _zmq_errno
from qfix.native_zmq import zmq_getsockopt as _zmq_getsockopt
from qfix.wire import codes

__all__ = [
    "AVAILABLE",
    "BODY_AT",
    "BODY_LEN",
    "COLUMNS",
    "FRAMES",
    "HEADER_AT",
    "HEADER_LEN",
    "MAX_PACKET_BYTES",
    "MAX_TOPIC_BYTES",
    "MISSING",
    "TOPIC_AT",
    "TOPIC_LEN",
    "recv_packets",
]

Array = npt.NDArray[Any]

# The packet table: one int64 row per message received. ``*_AT`` is the frame's offset in
# the arena, ``*_LEN`` its true size as zmq_recv reports it; a ``*_LEN`` larger than the
# arena room the frame had (so larger than the next frame's offset minus ``*_AT``) means
# the frame was truncated, and the packet is bad.
TOPIC_AT: Final = 0
TOPIC_LEN: Final = 1
HEADER_AT: Final = 2
HEADER_LEN: Final = 3
BODY_AT: Final = 4
BODY_LEN: Final = 5
#: how many frames the message had: 3 for a well-formed packet; frames past the third are
#: read and dropped, a frame the message lacked has ``*_LEN`` = :data:`MISSING`
FRAMES: Final = 6
COLUMNS: Final = 7
#: the ``*_LEN`` of a frame the message did not have (its ``*_AT`` is where it would be)
MISSING: Final = -1

#: room for the longest topic a subscriber accepts; ours are at most 14 bytes (``BBO.`` and
#: 10 digits), a foreign longer one is still reported with its true length
MAX_TOPIC_BYTES: Final = 256
#: room a well-formed packet can need: topic, header, and a packet's most records (the
#: publisher cuts packets at MAX_MSGS_PER_FRAME records, WIRE.md §6.3)
MAX_PACKET_BYTES: Final = MAX_TOPIC_BYTES + feeds.HEADER_SIZE + codes.MAX_MSGS_PER_FRAME * codes.MESSAGE_SIZE

_KEPT_FRAMES: Final = 3  # topic, header, body
_FRAME_COLUMNS: Final = HEADER_AT - TOPIC_AT  # frame k's columns start at TOPIC_AT + k * this
_LEN_OFFSET: Final = TOPIC_LEN - TOPIC_AT  # a frame's LEN column, from its AT column
_DONTWAIT: Final = int(zmq.DONTWAIT)
_RCVMORE: Final = int(zmq.RCVMORE)
_EAGAIN: Final = errno.EAGAIN


@njit(cache=True, nogil=True, inline="always")
def _more(sock: int, more: Array, more_len: Array) -> int:
    """1 if the message just read has another frame, 0 if not, -1 on error."""
    # libzmq rejects an optvallen shorter than the option and overwrites it: set it each time
    more_len[0] = more.itemsize
    if _zmq_getsockopt(sock, _RCVMORE, more.ctypes.data, more_len.ctypes.data) < 0:
        return -1
    return 1 if more[0] else 0


@njit(cache=True, nogil=True)
def _recv_packets(
    sock: int,
    arena: Array,
    table: Array,
    room_per_packet: int,
    more: Array,
    more_len: Array,
    error: Array,
) -> int:
    """Receive waiting messages into ``arena`` (from offset 0) and ``table`` (from row 0)
    until none is waiting, the table is full, or less than ``room_per_packet`` bytes of the
    arena are left. Returns the messages received, or -1 - i if message i failed (then
    ``error[0]`` holds zmq_errno; row i may be partly written)."""
    base = arena.ctypes.data
    size = arena.size
    rows = table.shape[0]
    offset = 0
    count = 0
    while count < rows and size - offset >= room_per_packet:
        frame = 0
        has_more = 1
        while has_more:
            room = size - offset
            kept = frame < _KEPT_FRAMES
            # a frame past the third is taken with no room: dropped, nothing is written
            n = _recv_frame(sock, base + offset, room if kept else 0)
            if n < 0:
                code = _zmq_errno()
                # the later frames of a message are delivered with its first, so only the
                # first can find nothing waiting
                if frame == 0 and code == _EAGAIN:
                    return count
                error[0] = code
                return -1 - count
            if kept:
                at = TOPIC_AT + frame * _FRAME_COLUMNS
                table[count, at] = offset
                table[count, at + _LEN_OFFSET] = n
                offset += min(n, room)
            frame += 1
            has_more = _more(sock, more, more_len)
            if has_more < 0:
                error[0] = _zmq_errno()
                return -1 - count
        for missing in range(frame, _KEPT_FRAMES):
            at = TOPIC_AT + missing * _FRAME_COLUMNS
            table[count, at] = offset
            table[count, at + _LEN_OFFSET] = MISSING
        table[count, FRAMES] = frame
        count += 1
    return count


def recv_packets(
    sock: zmq.Socket[Any],
    arena: Array,
    table: Array,
    room_per_packet: int = MAX_PACKET_BYTES,
) -> int:
    """Receive the messages waiting on ``sock`` without blocking (only when :data:`AVAILABLE`).

    ``arena`` is a C-contiguous uint8 array the frames are copied into from offset 0,
    ``table`` a C-contiguous (rows, :data:`COLUMNS`) int64 array given one row per message
    from row 0. Receiving stops when no message is waiting, the table is full, or less than
    ``room_per_packet`` bytes of the arena are left (a message is not started then); the
    rest waits for the next call. Returns the messages received (0 when none was waiting);
    ZMQError on failure."""
    if not AVAILABLE:
        raise RuntimeError("libzmq is not reachable from jitted code in this process")
    if arena.dtype != np.uint8 or arena.ndim != 1 or not arena.flags.c_contiguous or not arena.flags.writeable:
        raise ValueError("arena must be a writeable C-contiguous 1-D uint8 array")
    if table.dtype != np.int64 or table.ndim != 2 or table.shape[1] != COLUMNS or not table.flags.c_contiguous:
        raise ValueError(f"table must be a C-contiguous (rows, {COLUMNS}) int64 array")
    if room_per_packet < 1:
        raise ValueError("room_per_packet must be positive")
    more = np.zeros(1, np.intc)
    more_len = np.zeros(1, np.uintp)  # a size_t
    error = np.zeros(1, np.int64)
    got = int(_recv_packets(sock.underlying, arena, table, room_per_packet, more, more_len, error))
    if got < 0:
        # the failed message's earlier frames may have been taken: the socket is not fit
        # for use after this (only a closed socket, a terminated context or a socket that
        # cannot receive fail here)
        code = int(error[0])
        raise zmq.ZMQError(code, f"{zmq.strerror(code)} (zmq_recv, message {-1 - got} of this call)")
    return got
