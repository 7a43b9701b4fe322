"""Sending a chunk of feed packets from jitted code, straight into libzmq.

Why: a chunk of the ``multi`` workload holds one packet per instrument touched, thousands
per engine call. ``scripts/probe_pub.py`` (docs/results/probe_pub.json) measured a
three-frame packet at 5.4 us through pyzmq's ``send_multipart`` and 1.2 us through three
``send`` calls, against 0.11 us through libzmq's own ``zmq_send`` called from Numba, with
no subscriber; with one draining subscriber the figures were 6.0, 2.0 and 1.6 us (libzmq's
own work then dominates). So the PUB socket's packets leave through one kernel call per
chunk that writes each topic and header into a scratch buffer and calls ``zmq_send``
three times.

Safety: the kernel must call the very libzmq that pyzmq's socket belongs to
(``qfix.native_zmq`` checks that); otherwise :data:`AVAILABLE` is False and the caller
sends through pyzmq.
"""

from __future__ import annotations

import logging
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import zmq
from numba import njit

from qfix.marketdata import feeds
from qfix.native_zmq import AVAILABLE, DONTWAIT, SNDMORE, zmq_errno
from qfix.native_zmq import send_frame as _send_frame

__all__ = ["AVAILABLE", "send_packets"]

log = logging.getLogger(__name__)

Array = npt.NDArray[Any]

_MSG: Final = 60
_DIGITS: Final = 10
_HEADER: Final = 16
_TOPIC_AT: Final = 0  # scratch layout: topic at 0 (at most 32 bytes), header at 32
_HEADER_AT: Final = 32
_SNDMORE: Final = SNDMORE
_DONTWAIT: Final = DONTWAIT


if not AVAILABLE:
    log.info("libzmq is not reachable from jitted code here; market data is sent through pyzmq")


@njit(cache=True, nogil=True)
def _send_packets(
    sock: int,
    prefix: Array,
    security_ids: Array,
    first_seq: int,
    sending_time: int,
    records: Array,
    bounds: Array,
    scratch: Array,
    error: Array,
) -> int:
    """Send packet i = records[bounds[i]:bounds[i+1]] as [prefix + 10 digits of
    security_ids[i]][ChannelSeqNum, SendingTime][records]; ChannelSeqNum is
    first_seq + bounds[i], or 0 when first_seq is 0. Returns the packets sent, or -1 - i
    if packet i failed (then zmq_errno tells why)."""
    plen = prefix.size
    for j in range(plen):
        scratch[_TOPIC_AT + j] = prefix[j]
    for b in range(8):
        scratch[_HEADER_AT + 8 + b] = (sending_time >> (8 * b)) & 0xFF
    base = scratch.ctypes.data
    data = records.ctypes.data
    for i in range(security_ids.size):
        sec = security_ids[i]
        for d in range(_DIGITS - 1, -1, -1):
            scratch[_TOPIC_AT + plen + d] = 48 + sec % 10
            sec //= 10
        seq = first_seq + bounds[i] if first_seq else 0
        for b in range(8):
            scratch[_HEADER_AT + b] = (seq >> (8 * b)) & 0xFF
        lo = bounds[i] * _MSG
        hi = bounds[i + 1] * _MSG
        if (
            _send_frame(sock, base + _TOPIC_AT, plen + _DIGITS, _SNDMORE | _DONTWAIT) < 0
            or _send_frame(sock, base + _HEADER_AT, _HEADER, _SNDMORE | _DONTWAIT) < 0
            or _send_frame(sock, data + lo, hi - lo, _DONTWAIT) < 0
        ):
            error[0] = zmq_errno()
            return -1 - i
    return security_ids.size


def send_packets(
    sock: zmq.Socket[Any],
    prefix: bytes,
    security_ids: Array,
    first_seq: int,
    sending_time: int,
    records: Array,
    bounds: Array,
) -> None:
    """Send a chunk's packets on ``sock`` (only when :data:`AVAILABLE`); ZMQError on failure.

    ``prefix`` is the topic up to the digits (``b"L3."``), ``records`` (n, 60) C-contiguous
    uint8, ``bounds`` each packet's first record then n."""
    scratch = np.zeros(64, np.uint8)
    error = np.zeros(1, np.int64)
    sent = _send_packets(
        sock.underlying,
        np.frombuffer(prefix, np.uint8),
        security_ids.astype(np.int64, copy=False),
        first_seq,
        feeds.u64_as_i64(sending_time),
        np.ascontiguousarray(records),
        bounds.astype(np.int64, copy=False),
        scratch,
        error,
    )
    if sent < 0:
        # the failed packet's earlier frames may be queued: the socket is not fit for use
        # after this (only a closed socket or a terminated context fail a PUB send)
        code = int(error[0])
        raise zmq.ZMQError(code, f"{zmq.strerror(code)} (zmq_send, packet {-1 - sent} of {security_ids.size})")
