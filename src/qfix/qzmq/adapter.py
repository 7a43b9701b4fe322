"""pyzmq binding of the QZMQ state machines: the only module of qfix.qzmq that imports zmq.

Theory of operation. :class:`ServerEndpoint` owns a ROUTER socket and a
:class:`~qfix.qzmq.ServerProtocol`; :class:`ClientEndpoint` owns a DEALER socket and
a :class:`~qfix.qzmq.ClientConnection`. ``poll()`` waits at most ``timeout_ms`` for
input, then drains up to ``max_frames`` messages without blocking (many records per
wake-up, as the batch loop wants), runs due timers with the endpoint's monotonic clock
and sends everything the state machine produced. Frames are received with
``copy=False`` so records are decrypted straight out of libzmq's buffers, and the
``Peer-Address`` property is read only for handshake frames.

Senders never drop a sealed record: a frame that cannot be sent now (``EAGAIN``: the
peer's queue is full) waits in a bounded per-peer backlog and is retried first on the
next call; if the backlog overflows, or libzmq reports the peer gone
(``EHOSTUNREACH``), the session ends (possible truncation). The server also watches
its ROUTER with a socket monitor: a transport libzmq dropped (the peer left, or sent
a frame over ``MAXMSGSIZE``) ends that routing id's session or handshake at the next
``poll()``, not at its next send or timeout. Monitor events name a file descriptor,
not a routing id; frames carry theirs (``SRCFD``), so the endpoint maps fd -> routing
id from each handshake frame (docs/qzmq.md, decisions and deviations). Socket options follow
docs/qzmq.md §2: ``MAXMSGSIZE`` on both ends, ``ROUTER_MANDATORY`` on the server, no
reconnect and ``IMMEDIATE`` on the client, which treats a disconnect as closed.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Sequence

import zmq
from zmq.utils.monitor import recv_monitor_message

from qfix.qzmq._client import ClientConnection, ClientState
from qfix.qzmq._constants import MAX_FRAME, CloseReason
from qfix.qzmq._events import Event
from qfix.qzmq._server import ServerProtocol

__all__ = ["ClientEndpoint", "ServerEndpoint"]

#: frames kept per peer while its queue is full before the session is given up
MAX_BACKLOG = 4096
_TIMER_TICK = 0.05


def _peer_address(frame: zmq.Frame) -> str:
    """The frame's ``Peer-Address``, ``""`` when absent (libzmq raises EINVAL for
    transports without one, such as inproc)."""
    try:
        return str(frame.get("Peer-Address") or "")
    except zmq.ZMQError:
        return ""


class ServerEndpoint:
    """A ROUTER socket serving many QZMQ sessions.

    Args:
        protocol: the sans-I/O server.
        endpoint: where to bind, e.g. ``"tcp://127.0.0.1:5555"`` (``:*`` picks a port).
        context: a zmq context (default: the process-wide instance).
        clock: monotonic time source in seconds.
    """

    def __init__(
        self,
        protocol: ServerProtocol,
        endpoint: str,
        *,
        context: zmq.Context[zmq.Socket[bytes]] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.protocol = protocol
        self._clock = clock
        ctx = context or zmq.Context.instance()
        sock = ctx.socket(zmq.ROUTER)
        sock.setsockopt(zmq.MAXMSGSIZE, MAX_FRAME)
        sock.setsockopt(zmq.ROUTER_MANDATORY, 1)
        sock.setsockopt(zmq.LINGER, 0)
        sock.bind(endpoint)
        self.socket = sock
        self.endpoint: str = sock.getsockopt_string(zmq.LAST_ENDPOINT)
        self._backlog: dict[bytes, deque[bytes]] = {}
        self._gone: set[bytes] = set()
        self._next_timer = 0.0
        self.send_failures = 0
        #: transports libzmq dropped (socket monitor) whose session or handshake ended
        self.disconnects = 0
        # the socket monitor reports a dropped transport by its file descriptor; frames
        # carry theirs (SRCFD), so each handshake frame records which routing id an fd
        # serves (one connection = one fd = one routing id; bounded by open fds)
        self._monitor = sock.get_monitor_socket(zmq.EVENT_DISCONNECTED)
        self._rid_by_fd: dict[int, bytes] = {}
        self._dead: list[bytes] = []

    def poll(self, timeout_ms: int = 0, max_frames: int = 4096) -> list[Event]:
        """Receive up to ``max_frames`` messages, run timers, send; return the events."""
        events: list[Event] = []
        sock = self.socket
        proto = self.protocol
        # transports dropped so far are noted before the frames are read (their fds
        # cannot have been reused by a connection whose frames are still unread), and
        # ended after them (a CLOSE the peer sent before it left is read first)
        dead = self._dead
        self._dead = self._disconnected()
        drained = True
        if sock.poll(timeout_ms, zmq.POLLIN):
            drained = False
            for _ in range(max_frames):
                try:
                    parts = sock.recv_multipart(zmq.NOBLOCK, copy=False)
                except zmq.Again:
                    drained = True
                    break
                now = self._clock()
                rid = parts[0].bytes
                if len(parts) != 2:
                    events += proto.receive_bad_frame_count(rid, now)
                    continue
                frame = parts[1]
                buf = frame.buffer
                peer = ""
                if len(buf) and buf[0] == 0x51:
                    peer = _peer_address(frame)
                    self._note_fd(frame, rid)
                events += proto.receive(rid, buf, now, peer)
        if drained:
            dead += self._dead
            self._dead = []
        for rid in dead:
            events += self._transport_gone(rid)
        now = self._clock()
        if now >= self._next_timer:
            events += proto.handle_timer(now)
            self._next_timer = now + _TIMER_TICK
        events += self.flush()
        return events

    def _note_fd(self, frame: zmq.Frame, rid: bytes) -> None:
        try:
            fd = int(frame.get(zmq.SRCFD))
        except (zmq.ZMQError, AttributeError, TypeError, ValueError):
            return
        if fd >= 0:
            self._rid_by_fd[fd] = rid

    def _disconnected(self) -> list[bytes]:
        """Routing ids whose transport the monitor reported dropped since the last call."""
        rids: list[bytes] = []
        mon = self._monitor
        while int(mon.getsockopt(zmq.EVENTS)) & zmq.POLLIN:
            try:
                msg = recv_monitor_message(mon, zmq.NOBLOCK)
            except zmq.Again:
                break
            if msg["event"] == zmq.EVENT_DISCONNECTED:
                rid = self._rid_by_fd.pop(int(msg["value"]), None)
                if rid is not None:
                    rids.append(rid)
        return rids

    def _transport_gone(self, rid: bytes) -> list[Event]:
        if self.protocol.conn_for_routing_id(rid) is not None:
            self.disconnects += 1
        self._backlog.pop(rid, None)
        return self.protocol.transport_failed(rid)

    def flush(self) -> list[Event]:
        """Send what the protocol produced (backlogs first); return session-ending events."""
        events: list[Event] = []
        self._gone.clear()
        for rid in list(self._backlog):
            events += self._drain(rid)
        for rid, frame in self.protocol.data_to_send():
            if rid in self._gone:
                continue  # its session ended in this flush: never send after a gap
            q = self._backlog.get(rid)
            if q is not None:
                q.append(frame)
                if len(q) > MAX_BACKLOG:
                    events += self._give_up(rid)
                continue
            events += self._send(rid, frame)
        return events

    def _send(self, rid: bytes, frame: bytes) -> list[Event]:
        try:
            self.socket.send_multipart((rid, frame), zmq.NOBLOCK, copy=len(frame) < 65536)
        except zmq.Again:
            self._backlog[rid] = deque([frame])
        except zmq.ZMQError as exc:
            if exc.errno != zmq.EHOSTUNREACH:
                raise
            return self._give_up(rid)
        return []

    def _drain(self, rid: bytes) -> list[Event]:
        q = self._backlog[rid]
        while q:
            try:
                self.socket.send_multipart((rid, q[0]), zmq.NOBLOCK)
            except zmq.Again:
                return []
            except zmq.ZMQError as exc:
                if exc.errno != zmq.EHOSTUNREACH:
                    raise
                return self._give_up(rid)
            q.popleft()
        del self._backlog[rid]
        return []

    def _give_up(self, rid: bytes) -> list[Event]:
        self.send_failures += 1
        self._backlog.pop(rid, None)
        self._gone.add(rid)
        # discards what is still queued for rid only; other peers' records are kept
        return self.protocol.transport_failed(rid)

    def send_fixed(self, conn: int, payload: bytes) -> list[Event]:
        """Seal and send one DATA_FIXED record to session ``conn``."""
        return self.protocol.send_fixed(conn, payload) + self.flush()

    def send_messages(self, conn: int, messages: Sequence[bytes]) -> list[Event]:
        return self.protocol.send_messages(conn, messages) + self.flush()

    def close_session(self, conn: int, reason: CloseReason = CloseReason.NORMAL) -> list[Event]:
        return self.protocol.close(conn, reason) + self.flush()

    def close(self) -> None:
        self._monitor.close(linger=0)
        self.socket.close(linger=0)


class ClientEndpoint:
    """A DEALER socket carrying one QZMQ client connection.

    A disconnect (monitor event, failed send) ends the connection; the application
    reconnects with a new :class:`ClientEndpoint` and a new handshake.
    """

    def __init__(
        self,
        connection: ClientConnection,
        endpoint: str,
        *,
        context: zmq.Context[zmq.Socket[bytes]] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.connection = connection
        self._clock = clock
        ctx = context or zmq.Context.instance()
        sock = ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.MAXMSGSIZE, MAX_FRAME)
        sock.setsockopt(zmq.RECONNECT_IVL, -1)
        sock.setsockopt(zmq.IMMEDIATE, 1)
        sock.setsockopt(zmq.LINGER, 0)
        self._monitor = sock.get_monitor_socket(zmq.EVENT_DISCONNECTED | zmq.EVENT_CLOSED)
        sock.connect(endpoint)
        self.socket = sock
        self._backlog: deque[bytes] = deque()
        self._poller = zmq.Poller()
        self._poller.register(sock, zmq.POLLIN)
        self._poller.register(self._monitor, zmq.POLLIN)
        self._next_timer = 0.0
        self._connected_once = False

    @property
    def state(self) -> ClientState:
        return self.connection.state

    def start(self) -> list[Event]:
        """Send the first CLIENT_HELLO."""
        self.connection.connect(self._clock())
        return self.flush()

    def poll(self, timeout_ms: int = 0, max_frames: int = 4096) -> list[Event]:
        events: list[Event] = []
        if self._backlog:
            events += self.flush()
            if self._backlog:
                timeout_ms = min(timeout_ms, 1)
        ready = dict(self._poller.poll(timeout_ms))
        conn = self.connection
        if ready.get(self.socket):
            for _ in range(max_frames):
                try:
                    frame = self.socket.recv(zmq.NOBLOCK, copy=False)
                except zmq.Again:
                    break
                events += conn.receive(frame.buffer, self._clock())
        if ready.get(self._monitor):
            while True:
                try:
                    msg = recv_monitor_message(self._monitor, zmq.NOBLOCK)
                except zmq.Again:
                    break
                if msg["event"] in (zmq.EVENT_DISCONNECTED, zmq.EVENT_CLOSED):
                    events += conn.abort()
        now = self._clock()
        if now >= self._next_timer or ((d := conn.next_deadline()) is not None and now >= d):
            events += conn.handle_timer(now)
            self._next_timer = now + _TIMER_TICK
        events += self.flush()
        return events

    def flush(self) -> list[Event]:
        self._backlog.extend(self.connection.data_to_send())
        sock = self.socket
        q = self._backlog
        while q:
            try:
                sock.send(q[0], zmq.NOBLOCK, copy=len(q[0]) < 65536)
            except zmq.Again:
                if len(q) > MAX_BACKLOG:
                    q.clear()
                    return self.connection.abort()
                return []
            q.popleft()
        return []

    def send_fixed(self, payload: bytes) -> list[Event]:
        return self.connection.send_fixed(payload) + self.flush()

    def send_messages(self, messages: Sequence[bytes]) -> list[Event]:
        return self.connection.send_messages(messages) + self.flush()

    def close(self, reason: CloseReason = CloseReason.NORMAL) -> list[Event]:
        """Send CLOSE (when established), then close the socket."""
        events = self.connection.close(reason)
        self.flush()
        self._monitor.close(linger=0)
        self.socket.close(linger=100)
        return events
