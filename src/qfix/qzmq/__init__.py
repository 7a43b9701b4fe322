"""QZMQ v1: the post-quantum secure channel between order-entry clients and the server.

Sans-I/O state machines (h11 style): :class:`ClientConnection` and
:class:`ServerProtocol` take frames plus the caller's monotonic ``now`` and return
events; frames to send are drained with ``data_to_send()``; timers are handed back
through ``next_deadline()`` / ``handle_timer(now)``. :mod:`qfix.qzmq.adapter` binds
them to pyzmq DEALER/ROUTER sockets. The protocol is specified in docs/qzmq.md.
"""

from qfix.qzmq._client import ClientConnection, ClientState
from qfix.qzmq._config import COOKIE_POLICIES, Config
from qfix.qzmq._constants import (
    FIXED_MSG_LEN,
    MAX_FIXED_MSGS,
    MAX_FRAME,
    RECORD_OVERHEAD,
    CloseReason,
    ErrorCode,
    Mode,
    RecordType,
)
from qfix.qzmq._events import Closed, Established, Event, Failed, Messages, SealedFixed
from qfix.qzmq._guard import net_of
from qfix.qzmq._schedule import exporter
from qfix.qzmq._server import ServerCounters, ServerProtocol, SessionInfo
from qfix.qzmq._session import Session, SessionCounters
from qfix.qzmq.errors import ConfigError, ConnectionClosed, LocalProtocolError, QzmqError

__all__ = [
    "COOKIE_POLICIES",
    "FIXED_MSG_LEN",
    "MAX_FIXED_MSGS",
    "MAX_FRAME",
    "RECORD_OVERHEAD",
    "ClientConnection",
    "ClientState",
    "CloseReason",
    "Closed",
    "Config",
    "ConfigError",
    "ConnectionClosed",
    "ErrorCode",
    "Established",
    "Event",
    "Failed",
    "LocalProtocolError",
    "Messages",
    "Mode",
    "QzmqError",
    "RecordType",
    "SealedFixed",
    "ServerCounters",
    "ServerProtocol",
    "Session",
    "SessionCounters",
    "SessionInfo",
    "exporter",
    "net_of",
]
