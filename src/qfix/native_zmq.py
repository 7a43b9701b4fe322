"""libzmq called from jitted code: the declarations every kernel that sends or receives
on a pyzmq socket shares (the feed's packets, the server's records).

Why: pyzmq costs microseconds per frame in Python (an object per frame, an exception per
empty read), where libzmq's own calls cost a fraction of one (docs/results/probe_pub.json,
probe_sub_recv.json). A kernel takes a socket as ``sock.underlying`` (its ``void *``).

Safety: the kernels must call the very libzmq that pyzmq's sockets belong to. The library
is loaded by the path of the one copy mapped into this process (pyzmq's wheel bundles
it), and only if every symbol Numba resolves is that copy's; otherwise :data:`AVAILABLE`
is False and callers go through pyzmq.

Pointers that libzmq returns (a message's data, a metadata string) are declared as
integers and turned into arrays with :func:`bytes_at`, so that jitted code can test them
for NULL.
"""

from __future__ import annotations

import errno
import logging
from typing import Any, Final

import numba
import zmq
from numba import njit, types
from numba.extending import intrinsic

from qfix.native_libs import load_mapped

__all__ = [
    "AVAILABLE",
    "DONTWAIT",
    "MSG_BYTES",
    "SNDMORE",
    "SRCFD",
    "bytes_at",
    "msg_recv",
    "recv_frame",
    "send_frame",
    "zmq_errno",
    "zmq_getsockopt",
    "zmq_msg_close",
    "zmq_msg_data",
    "zmq_msg_get",
    "zmq_msg_gets",
    "zmq_msg_init",
    "zmq_msg_more",
    "zmq_msg_recv",
    "zmq_msg_size",
    "zmq_recv",
    "zmq_send",
]

log = logging.getLogger(__name__)

SNDMORE: Final = int(zmq.SNDMORE)
DONTWAIT: Final = int(zmq.DONTWAIT)
SRCFD: Final = 2  #: zmq_msg_get's property: the file descriptor the message came from
#: a zmq_msg_t's size (libzmq 4: 64 bytes, pointer-aligned; allocate it as int64s)
MSG_BYTES: Final = 64
_SYMBOLS: Final = (
    "zmq_send",
    "zmq_recv",
    "zmq_errno",
    "zmq_msg_init",
    "zmq_msg_recv",
    "zmq_msg_data",
    "zmq_msg_size",
    "zmq_msg_more",
    "zmq_msg_get",
    "zmq_msg_gets",
    "zmq_msg_close",
    "zmq_getsockopt",
)


def _load() -> bool:
    import zmq.backend  # noqa: F401 - maps pyzmq's libzmq

    return load_mapped("libzmq", _SYMBOLS) is not None


#: whether the kernels of this module may be used in this process
AVAILABLE: Final = _load()
if not AVAILABLE:
    log.info("libzmq is not reachable from jitted code here; sockets are used through pyzmq")

_i, _p, _n = types.intc, types.voidptr, types.intp
zmq_send: Any = types.ExternalFunction("zmq_send", _i(_p, _p, types.size_t, _i))
zmq_recv: Any = types.ExternalFunction("zmq_recv", _i(_p, _p, types.size_t, _i))
zmq_errno: Any = types.ExternalFunction("zmq_errno", _i())
zmq_msg_init: Any = types.ExternalFunction("zmq_msg_init", _i(_p))
zmq_msg_recv: Any = types.ExternalFunction("zmq_msg_recv", _i(_p, _p, _i))
zmq_msg_data: Any = types.ExternalFunction("zmq_msg_data", _n(_p))
zmq_msg_size: Any = types.ExternalFunction("zmq_msg_size", types.size_t(_p))
zmq_msg_more: Any = types.ExternalFunction("zmq_msg_more", _i(_p))
zmq_msg_get: Any = types.ExternalFunction("zmq_msg_get", _i(_p, _i))
zmq_msg_gets: Any = types.ExternalFunction("zmq_msg_gets", _n(_p, _p))
zmq_msg_close: Any = types.ExternalFunction("zmq_msg_close", _i(_p))
# optvallen is a size_t*; it is passed as an address (an array's ctypes.data), which the
# C ABI passes exactly as it would a typed pointer
zmq_getsockopt: Any = types.ExternalFunction("zmq_getsockopt", _i(_p, _i, _p, _p))

_EINTR: Final = errno.EINTR
#: a signal arriving while libzmq works on a call fails it with EINTR; it is retried, a
#: bounded number of times, from the same frame so the message stays whole
EINTR_RETRIES: Final = 100


_U8_POINTER: Any = types.CPointer(types.uint8)  # type: ignore[no-untyped-call]
_carray: Any = numba.carray  # type: ignore[attr-defined]


@intrinsic
def _u8_pointer(typingctx: Any, address: Any) -> Any:
    """An integer address as a ``uint8 *`` (for ``numba.carray``)."""
    sig = _U8_POINTER(types.intp)

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        return builder.inttoptr(args[0], context.get_value_type(_U8_POINTER))

    return sig, codegen


_pointer: Any = _u8_pointer


@njit(cache=True, nogil=True, inline="always")
def bytes_at(address: int, size: int) -> Any:
    """The ``size`` bytes at ``address`` as a uint8 array (a view: valid while the
    memory is, e.g. until the message it belongs to is closed)."""
    return _carray(_pointer(address), size)


@njit(cache=True, nogil=True, inline="always")
def _interrupted(rc: int) -> bool:
    """Whether a libzmq call failed only because a signal arrived: worth one more try."""
    return rc < 0 and zmq_errno() == _EINTR


@njit(cache=True, nogil=True, inline="always")
def send_frame(sock: int, data: int, size: int, flags: int) -> int:
    """``zmq_send`` retried on EINTR; returns its result."""
    rc: int = zmq_send(sock, data, size, flags)
    for _ in range(EINTR_RETRIES):
        if not _interrupted(rc):
            break
        rc = zmq_send(sock, data, size, flags)
    return rc


@njit(cache=True, nogil=True, inline="always")
def recv_frame(sock: int, buf: int, room: int) -> int:
    """``zmq_recv`` without blocking, retried on EINTR; returns its result (the frame's
    whole size, of which at most ``room`` bytes were copied to ``buf``)."""
    rc: int = zmq_recv(sock, buf, room, DONTWAIT)
    for _ in range(EINTR_RETRIES):
        if not _interrupted(rc):
            break
        rc = zmq_recv(sock, buf, room, DONTWAIT)
    return rc


@njit(cache=True, nogil=True, inline="always")
def msg_recv(msg: int, sock: int) -> int:
    """``zmq_msg_recv`` without blocking, retried on EINTR; returns its result."""
    rc: int = zmq_msg_recv(msg, sock, DONTWAIT)
    for _ in range(EINTR_RETRIES):
        if not _interrupted(rc):
            break
        rc = zmq_msg_recv(msg, sock, DONTWAIT)
    return rc
