"""The QZMQ server: demultiplexer, handshake state machine and session table (sans-I/O).

Theory of operation. :class:`ServerProtocol` receives ``(routing_id, frame, peer,
now)`` and returns events; frames to send are drained with
:meth:`ServerProtocol.data_to_send` as ``(routing_id, frame)`` pairs. Routing ids
are lookup keys only: a frame starting with ``51`` goes to the handshake of its
routing id, anything else to the session installed on that routing id, if any.

No state exists for a routing id until a SERVER_HELLO was sent (``WAIT_CA``).
The hello checks run in the protocol's order, cheapest first, and asymmetric work
(ML-KEM, X25519, ML-DSA) starts only after the cookie, the cheap checks and the rate
limits passed, so junk hellos cost one SHA-384 and one HMAC each and never touch
established sessions. A session is created only when CLIENT_AUTH verifies; it is
identified by ``conn`` (a counter) and by the client kid, and it replaces a session
on the same routing id only at that moment.

The asymmetric work itself (the SERVER_HELLO, the CLIENT_AUTH signature check) is a
work item (:mod:`qfix.qzmq._work`). Inline (the default) the protocol runs it at once;
with ``offload`` set it queues it for the caller (:meth:`ServerProtocol.work_to_do`),
who runs it anywhere and hands the result back (:meth:`ServerProtocol.complete`). A
handshake whose work is in flight is pending (it counts against the caps, and its
deadline runs); if it ends meanwhile (timeout, a new hello on its routing id, a
transport failure), its late result is discarded.
"""

from __future__ import annotations

import contextlib
import hmac
import ipaddress
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from qfix.crypto import primitives as _p
from qfix.crypto.keys import AllowEntry, AllowList, SigningKey
from qfix.qzmq import _codec
from qfix.qzmq import _record_row as rk
from qfix.qzmq import _schedule as ks
from qfix.qzmq._config import Config
from qfix.qzmq._constants import (
    CLIENT_AUTH_LEN,
    CLIENT_AUTH_PT_LEN,
    HASH_LEN,
    KID_LEN,
    MAGIC,
    MAX_CLIENT_SIG_LEN,
    SERVER_SIG_ALG,
    SUITE,
    VERSION,
    CloseReason,
    ErrorCode,
    MsgType,
)
from qfix.qzmq._events import Closed, Established, Event
from qfix.qzmq._guard import Guard, net_of
from qfix.qzmq._session import Session
from qfix.qzmq._util import Copyable
from qfix.qzmq._work import AuthDone, AuthWork, Done, HelloDone, HelloWork, Work, run
from qfix.qzmq.errors import ConfigError, ConnectionClosed

__all__ = ["DEFAULT_MAX_WORK_IN_FLIGHT", "ServerCounters", "ServerProtocol", "SessionInfo"]

#: offloaded hellos in flight, each for unknown and for known nets, before refusals
DEFAULT_MAX_WORK_IN_FLIGHT = 256

_HELLO = MsgType.CLIENT_HELLO.value
_AUTH = MsgType.CLIENT_AUTH.value
_ERROR = MsgType.ERROR.value


@dataclass(slots=True)
class ServerCounters(Copyable):
    """Server-wide counters (exported as metrics)."""

    auth_failed: int = 0
    dropped_frames: int = 0
    hello_busy: int = 0  #: hellos refused because offloaded work was at its limit
    handshakes: int = 0
    hello_failed: int = 0
    hello_mismatch: int = 0
    hello_rate_limited: int = 0
    hello_retry: int = 0
    pending_timeouts: int = 0
    records_without_session: int = 0
    server_hellos: int = 0
    sessions_closed: int = 0
    work_discarded: int = 0  #: results for handshakes that had ended meanwhile
    work_lost: int = 0  #: items whose runner died (their handshakes end)

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.__slots__}


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """What the application may know about an established session."""

    conn: int
    kid: bytes
    accounts: tuple[int, ...]
    routing_id: bytes
    channel_binding: bytes


class _Pending(Copyable):
    """A pending handshake: its SERVER_HELLO being built (``job``, ``hello``), sent
    and CLIENT_AUTH awaited (WAIT_CA, ``job == 0``), or CLIENT_AUTH's signature being
    checked (``job``, ``auth``)."""

    __slots__ = (
        "auth", "c_hs", "deadline", "hello", "hs", "job", "known", "net", "server_kid", "started", "transcript",
    )  # fmt: skip

    def __init__(
        self, net: str, started: float, deadline: float, known: bool, job: int, hello: bytes, server_kid: bytes
    ) -> None:
        self.started = started  #: when its CLIENT_HELLO was accepted
        self.hs = b""
        self.c_hs = b""
        self.transcript = ks.Transcript()
        self.net = net
        self.deadline = deadline
        self.known = known
        self.job = job
        self.hello = hello
        self.server_kid = server_kid
        self.auth: tuple[bytes, AllowEntry, bytes] | None = None  # kid, entry, TH(01..22)


class _Entry(Copyable):
    __slots__ = ("recalled", "routing_id", "row", "session")

    def __init__(self, routing_id: bytes, session: Session) -> None:
        self.routing_id = routing_id
        self.session = session
        self.row = -1  #: its row of the lease table, once it has one (kept until it ends)
        self.recalled = False  #: listed for the next relend()


class _Reject(Exception):
    def __init__(self, code: ErrorCode | None) -> None:
        super().__init__(code)
        self.code = code


class ServerProtocol(Copyable):
    """All QZMQ handshakes and sessions of one server socket.

    Args:
        server_keys: the server's ML-DSA-65 identity keys (more than one during a key
            rotation; the client names one by kid).
        allow_list: client kid -> key and accounts.
        config: QZMQ settings.
        rng: randomness for server_random and cookie keys.
        now: the caller's monotonic time at creation (starts the cookie key clock).
        offload: queue the handshakes' asymmetric work for the caller
            (:meth:`work_to_do`, :meth:`complete`) instead of doing it inline.
        max_work_in_flight: with ``offload``, hellos whose work is queued or running,
            counted apart for unknown and known nets; a hello beyond it is refused.
    """

    __slots__ = (
        "_by_kid",
        "_by_rid",
        "_free_rows",
        "_guard",
        "_in_flight",
        "_jobs",
        "_lease_table",
        "_next_conn",
        "_next_job",
        "_out",
        "_pending",
        "_pending_by_net",
        "_pending_known",
        "_recalled",
        "_rng",
        "_sessions",
        "_srv_keys",
        "_work",
        "allow_list",
        "config",
        "counters",
        "lease_version",
        "max_work_in_flight",
        "offload",
    )

    def __init__(
        self,
        server_keys: Sequence[SigningKey],
        allow_list: AllowList,
        config: Config | None = None,
        *,
        rng: Callable[[int], bytes] = os.urandom,
        now: float = 0.0,
        offload: bool = False,
        max_work_in_flight: int = DEFAULT_MAX_WORK_IN_FLIGHT,
    ) -> None:
        self.config = config or Config()
        if not server_keys:
            raise ConfigError("server key: at least one ML-DSA-65 key is required")
        for k in server_keys:
            if k.alg != SERVER_SIG_ALG:
                raise ConfigError("server key: suite 0001 needs ML-DSA-65 server keys")
        self._srv_keys = {k.kid: k for k in server_keys}
        self.allow_list = allow_list
        self._rng = rng
        c = self.config
        self._guard = Guard(
            net_rate=c.hello_rate_per_address,
            total_rate=c.hello_rate_total,
            known_rate=c.hello_rate_known,
            rng=rng,
            now=now,
        )
        self._pending: dict[bytes, _Pending] = {}
        self._pending_by_net: dict[str, int] = {}
        self._pending_known = 0  # pending handshakes admitted from known nets
        self._sessions: dict[int, _Entry] = {}
        self._by_rid: dict[bytes, int] = {}
        self._by_kid: dict[bytes, list[int]] = {}
        self._next_conn = 1
        self._out: list[tuple[bytes, bytes]] = []
        self.counters = ServerCounters()
        self.offload = offload
        self.max_work_in_flight = max_work_in_flight
        self._work: list[Work] = []
        self._jobs: dict[int, bytes] = {}  # job -> routing id of its pending handshake
        self._in_flight = [0, 0]  # offloaded hellos in flight: unknown nets, known nets
        self._next_job = 1
        # sessions' record state lent to the compiled record kernels (see lease())
        self._lease_table = np.zeros((0, rk.ROW_COLUMNS), np.int64)
        self._free_rows: list[int] = []
        self._recalled: list[_Entry] = []
        #: moves whenever a session gets or gives back its row (a cache of rows checks it)
        self.lease_version = 0

    # --- queries ----------------------------------------------------------------------

    @property
    def pending_count(self) -> int:
        return len(self._pending)

    @property
    def session_count(self) -> int:
        return len(self._sessions)

    def server_keys(self) -> list[SigningKey]:
        """The server's identity keys (a worker process loads them from their seeds)."""
        return list(self._srv_keys.values())

    def job_live(self, job: int) -> bool:
        """Whether the handshake of work item ``job`` is still pending (else its
        result would be discarded, so the item need not run)."""
        return job in self._jobs

    @property
    def work_in_flight(self) -> int:
        """Work items handed out (or still to be) whose handshake is still pending."""
        return len(self._jobs)

    def sessions(self) -> list[SessionInfo]:
        return [self.session_info(c) for c in self._sessions]

    def session_info(self, conn: int) -> SessionInfo:
        e = self._entry(conn)
        s = e.session
        return SessionInfo(conn, s.peer_kid, s.peer_accounts, e.routing_id, s.channel_binding)

    def session(self, conn: int) -> Session:
        """The session object (counters, exporter)."""
        return self._entry(conn).session

    def conn_for_routing_id(self, routing_id: bytes) -> int | None:
        return self._by_rid.get(routing_id)

    def routing_id(self, conn: int) -> bytes | None:
        """The routing id session ``conn`` is on (None: no such session); recalls nothing."""
        e = self._sessions.get(conn)
        return None if e is None else e.routing_id

    def cookie_required(self) -> bool:
        policy = self.config.cookie_policy
        if policy == "always":
            return True
        if policy == "never":
            return False
        return len(self._pending) >= self.config.cookie_load_threshold

    # --- output -----------------------------------------------------------------------

    @property
    def has_output(self) -> bool:
        """Whether :meth:`data_to_send` would return anything."""
        return bool(self._out)

    def data_to_send(self) -> list[tuple[bytes, bytes]]:
        out = self._out
        self._out = []
        return out

    # --- offloaded work -----------------------------------------------------------------

    def work_to_do(self) -> list[Work]:
        """Work items queued since the last call (``offload`` only); run each with
        :func:`qfix.qzmq._work.run` and hand the result to :meth:`complete`."""
        work = self._work
        self._work = []
        return work

    def complete(self, done: Done, now: float) -> list[Event]:
        """The result of a work item. A result whose handshake ended meanwhile is
        discarded (counted)."""
        rid = self._jobs.get(done.job)
        if rid is None:
            self.counters.work_discarded += 1
            return []
        p = self._pending[rid]
        if isinstance(done, HelloDone):
            self._hello_done(rid, p, done)
            return []
        try:
            return self._auth_done(rid, p, done, now)
        except _Reject:
            self.counters.auth_failed += 1
            self._out.append((rid, _codec.build_error(ErrorCode.FAILED)))
            return []

    def work_lost(self, job: int) -> None:
        """A work item will never complete (its runner died): its handshake ends with
        ERROR FAILED, so the client retries at once instead of timing out."""
        rid = self._jobs.get(job)
        if rid is not None:
            self.counters.work_lost += 1
            self._drop_pending(rid)
            self._out.append((rid, _codec.build_error(ErrorCode.FAILED)))

    def _dispatch(self, item: Work, rid: bytes, now: float) -> list[Event]:
        self._jobs[item.job] = rid
        if self.offload:
            self._work.append(item)
            return []
        return self.complete(run(item, self._srv_keys), now)

    def _new_job(self) -> int:
        job = self._next_job
        self._next_job += 1
        return job

    def _flush(self, entry: _Entry) -> None:
        s = entry.session
        if s.outbox:
            rid = entry.routing_id
            self._out.extend((rid, f) for f in s.outbox)
            s.outbox = []

    def _after(self, entry: _Entry, events: list[Event]) -> list[Event]:
        self._flush(entry)
        if entry.session.closed:
            self._remove(entry.session.conn)
        return events

    # --- application API ----------------------------------------------------------------

    def _entry(self, conn: int) -> _Entry:
        try:
            return self._recall(self._sessions[conn])
        except KeyError:
            raise ConnectionClosed(f"no established session {conn}") from None

    # --- the compiled record kernels (qfix.qzmq._record_kernel) --------------------------

    @property
    def lease_table(self) -> npt.NDArray[np.int64]:
        """The rows :meth:`lease` lends (int64, ``_record_row.ROW_COLUMNS`` columns).
        A new array when it grows: read it again after each :meth:`lease`."""
        return self._lease_table

    def lease(self, conn: int) -> int:
        """Lend session ``conn``'s record state to its row of :attr:`lease_table` (the
        same row for the session's whole life) and return the row; -1 when the kernels
        cannot serve it (no such session, or ``Session.lease`` refused).

        Until it is recalled the row is the session's state. Every call of this object
        that concerns the session recalls it first, so a caller may use any API at any
        time; the row then reads as not leased and the kernels hand its records back
        until :meth:`lease` or :meth:`relend`."""
        e = self._sessions.get(conn)
        if e is None:
            return -1
        if e.row < 0:
            e.row = self._free_rows.pop() if self._free_rows else self._grow_leases()
            self.lease_version += 1
        row = self._lease_table[e.row]
        if not row[rk.ROW_LEASED] and not e.session.lease(row):
            return -1
        return e.row

    def lease_row(self, conn: int) -> int:
        """Session ``conn``'s row of :attr:`lease_table`, given at its first :meth:`lease`
        and kept for its life, leased or not; -1 if it has none."""
        e = self._sessions.get(conn)
        return -1 if e is None else e.row

    def relend(self) -> None:
        """:meth:`lease` again every session recalled since the last call."""
        recalled, self._recalled = self._recalled, []
        for e in recalled:
            e.recalled = False
            if self._sessions.get(e.session.conn) is e:
                self.lease(e.session.conn)

    def receive_sealed(self, conn: int, frame: bytes | memoryview, now: float) -> list[Event]:
        """A record of session ``conn`` that a ``SealedFixed`` event carried and the
        kernels handed back (or that the caller does not open itself): everything
        :meth:`receive` does with it."""
        e = self._sessions.get(conn)
        if e is None:
            self.counters.records_without_session += 1
            return []
        self._recall(e)
        return self._after(e, e.session.receive(frame, now))

    def queue_sealed(self, conn: int, records: Iterable[bytes]) -> None:
        """Queue records the kernels sealed on ``conn``'s leased row, in order, behind
        everything queued for it before (:meth:`data_to_send`); nothing if the session
        has ended since (its peer is owed nothing more)."""
        e = self._sessions.get(conn)
        if e is not None:
            rid = e.routing_id
            self._out.extend((rid, r) for r in records)

    def _grow_leases(self) -> int:
        old = self._lease_table
        n = old.shape[0]
        self._lease_table = np.zeros((max(16, 2 * n), rk.ROW_COLUMNS), np.int64)
        self._lease_table[:n] = old
        self._free_rows = list(range(self._lease_table.shape[0] - 1, n, -1))
        return n

    def _recall(self, e: _Entry) -> _Entry:
        if e.row >= 0:
            if self._lease_table[e.row, rk.ROW_LEASED]:
                e.session.recall(self._lease_table[e.row])
            # relend() leases it (again): also a session whose lease was refused before
            # (not yet READY), which its row's users cannot ask for by themselves
            if not e.recalled:
                e.recalled = True
                self._recalled.append(e)
        return e

    def __deepcopy__(self, memo: dict[int, Any]) -> Any:
        new = super().__deepcopy__(memo)
        # the copy's sessions make their own EVP contexts (Session copies share none), so
        # each takes its numbers back from the copied table and leases anew when asked
        for e in new._sessions.values():
            new._recall(e)
            e.recalled = False
        new._recalled = []
        return new

    def send_fixed(self, conn: int, payload: bytes) -> list[Event]:
        e = self._entry(conn)
        return self._after(e, e.session.send_fixed(payload))

    def send_messages(self, conn: int, messages: Sequence[bytes]) -> list[Event]:
        e = self._entry(conn)
        return self._after(e, e.session.send_messages(messages))

    def close(self, conn: int, reason: CloseReason = CloseReason.NORMAL) -> list[Event]:
        e = self._entry(conn)
        return self._after(e, e.session.close(reason))

    def export(self, conn: int, label: bytes, context: bytes, length: int) -> bytes:
        return self._entry(conn).session.export(label, context, length)

    def transport_failed(self, routing_id: bytes) -> list[Event]:
        """A send to ``routing_id`` failed (EHOSTUNREACH, or its backlog overflowed): its
        session ends and frames still queued for it are discarded. Frames queued for
        other routing ids are kept: a sender never drops a record it has sealed."""
        self._drop_pending(routing_id)
        if any(r == routing_id for r, _ in self._out):
            self._out = [(r, f) for r, f in self._out if r != routing_id]
        conn = self._by_rid.get(routing_id)
        if conn is None:
            return []
        e = self._recall(self._sessions[conn])
        return self._after(e, e.session.abort())

    def is_known_peer(self, peer: str, now: float) -> bool:
        """Whether a client on the allow-list authenticated from ``peer``'s net before
        (QZMQ.md §3.5): its hellos take the reserved bucket, and a transport queues them
        ahead of strangers' so that a flood cannot delay them."""
        return self._guard.is_known(net_of(peer), now, self.allow_list.__contains__)

    def known_ipv4_nets(self, now: float) -> list[int]:
        """The known nets (:meth:`is_known_peer`) that are IPv4 addresses, as integers:
        for a reader that tells a known client's hello from a stranger's by its peer
        address without this object (``qfix.server._serve``)."""
        nets = []
        for net in self._guard.known_nets(now, self.allow_list.__contains__):
            with contextlib.suppress(ValueError):
                nets.append(int(ipaddress.IPv4Address(net)))
        return nets

    def set_allow_list(self, allow_list: AllowList) -> None:
        """Replace the allow-list; kids that left it lose their known nets."""
        self.allow_list = allow_list
        self._guard.forget_kids(allow_list.__contains__)

    def _remove(self, conn: int) -> None:
        e = self._sessions.pop(conn, None)
        if e is None:
            return
        if e.row >= 0:
            self._recall(e)
            self._free_rows.append(e.row)
            e.row = -1
            self.lease_version += 1
        self.counters.sessions_closed += 1
        if self._by_rid.get(e.routing_id) == conn:
            del self._by_rid[e.routing_id]
        conns = self._by_kid.get(e.session.peer_kid)
        if conns is not None and conn in conns:
            conns.remove(conn)
            if not conns:
                del self._by_kid[e.session.peer_kid]

    # --- timers -----------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        best: float | None = None
        for p in self._pending.values():
            if best is None or p.deadline < best:
                best = p.deadline
        for e in self._sessions.values():
            d = e.session.deadline()
            if d is not None and (best is None or d < best):
                best = d
        return best

    def handle_timer(self, now: float) -> list[Event]:
        for rid in [r for r, p in self._pending.items() if now >= p.deadline]:
            self.counters.pending_timeouts += 1
            self._drop_pending(rid)
        events: list[Event] = []
        for e in list(self._sessions.values()):
            d = e.session.deadline()
            if d is not None and now >= d:
                self._recall(e)
                events += self._after(e, e.session.handle_timer(now))
        return events

    # --- receiving ----------------------------------------------------------------------

    def receive_bad_frame_count(self, routing_id: bytes, now: float) -> list[Event]:
        """A ZeroMQ message that was not ``[routing_id, frame]``."""
        conn = self._by_rid.get(routing_id)
        if conn is None:
            self.counters.dropped_frames += 1
            return []
        e = self._recall(self._sessions[conn])
        return self._after(e, e.session.bad_frame(now))

    def has_session(self, routing_id: bytes) -> bool:
        """Whether ``routing_id`` carries an established session."""
        return routing_id in self._by_rid

    def receive(self, routing_id: bytes, frame: bytes | memoryview, now: float, peer: str = "") -> list[Event]:
        """Process one single-frame message from ``routing_id`` (peer: its IP address)."""
        if len(frame) and frame[0] == 0x51:
            return self._on_handshake(routing_id, bytes(frame), now, peer)
        conn = self._by_rid.get(routing_id)
        if conn is None:
            self.counters.records_without_session += 1
            return []
        e = self._recall(self._sessions[conn])
        return self._after(e, e.session.receive(frame, now))

    def _on_handshake(self, rid: bytes, frame: bytes, now: float, peer: str) -> list[Event]:
        if len(frame) < 7 or frame[:2] != MAGIC:
            self.counters.dropped_frames += 1
            return []
        version, mtype = frame[2], frame[3]
        if mtype == _HELLO or version != VERSION:
            self._drop_pending(rid)
            try:
                self._on_hello(rid, frame, now, peer)
            except _Reject as rej:
                if rej.code is not None:
                    self._out.append((rid, _codec.build_error(rej.code, version)))
            return []
        pending = self._pending.get(rid)
        if pending is not None and now >= pending.deadline:
            # the caller's timer may run late: the handshake timeout holds on input too
            self.counters.pending_timeouts += 1
            self._drop_pending(rid)
            pending = None
        if pending is not None and mtype == _AUTH and pending.job:
            # its SERVER_HELLO is not sent yet, or its CLIENT_AUTH is being checked
            self.counters.dropped_frames += 1
            return []
        if pending is not None and mtype == _AUTH:
            try:
                return self._on_auth(rid, frame, pending, now)
            except _Reject:
                self._drop_pending(rid)
                self.counters.auth_failed += 1
                self._out.append((rid, _codec.build_error(ErrorCode.FAILED)))
                return []
        if pending is not None and mtype == _ERROR:
            self._drop_pending(rid)
            return []
        self.counters.dropped_frames += 1
        return []

    def _drop_pending(self, rid: bytes) -> None:
        p = self._pending.pop(rid, None)
        if p is not None:
            self._end_job(p)
            self._pending_known -= p.known
            left = self._pending_by_net[p.net] - 1
            if left:
                self._pending_by_net[p.net] = left
            else:
                del self._pending_by_net[p.net]

    def _on_hello(self, rid: bytes, frame: bytes, now: float, peer: str) -> None:
        c = self.config
        mode = c.mode
        # 1. version, mode, suite; then layout
        if frame[2] != VERSION or frame[4] != mode or int.from_bytes(frame[5:7], "big") != SUITE:
            self.counters.hello_mismatch += 1
            raise _Reject(ErrorCode.MISMATCH)
        hello = _codec.parse_hello(frame, mode)
        if hello is None:
            self.counters.hello_failed += 1
            raise _Reject(ErrorCode.FAILED)
        # 2. cookie
        peer_b = peer.encode("ascii", "replace")
        guard = self._guard
        if hello.cookie is not None:
            if not guard.cookie_valid(hello.cookie, now, peer_b, rid, hello.body):
                self.counters.hello_failed += 1
                raise _Reject(ErrorCode.FAILED)
        elif self.cookie_required():
            self.counters.hello_retry += 1
            cookie = guard.make_cookie(now, peer_b, rid, hello.body)
            self._out.append((rid, _codec.header(MsgType.HELLO_RETRY) + cookie))
            raise _Reject(None)
        # 3. and 4. cheap checks, caps and buckets. Tokens are taken only once the
        # checks passed, but whether they are there is asked before the ML-KEM key
        # check, the dearest of them (~20 us): a refused flood then costs less, and
        # the answer (FAILED) is the same either way (docs/qzmq.md, deviation 19)
        skey = self._srv_keys.get(hello.server_kid)
        if skey is None:
            self.counters.hello_failed += 1
            raise _Reject(ErrorCode.FAILED)
        net = net_of(peer)
        known = guard.is_known(net, now, self.allow_list.__contains__)
        if self.offload and self._in_flight[known] >= self.max_work_in_flight:
            self.counters.hello_busy += 1
            raise _Reject(ErrorCode.FAILED)
        if (
            self._pending_by_net.get(net, 0) >= c.max_pending_per_address
            or self._pending_total_reached(known)
            or len(self._sessions) >= c.max_sessions
            or not guard.can_admit(net, known, now)
        ):
            self.counters.hello_rate_limited += 1
            raise _Reject(ErrorCode.FAILED)
        try:
            _p.mlkem_load_ek(hello.ek)
        except _p.CryptoError:
            self.counters.hello_failed += 1
            raise _Reject(ErrorCode.FAILED) from None
        admitted = guard.admit(net, known, now)
        assert admitted
        if hello.cookie is not None:
            guard.record_cookie(hello.cookie, now)
        # 5. and 6. key exchange, derive, sign, send (a work item); the routing id now
        # has a pending handshake
        job = self._new_job()
        p = _Pending(net, now, now + c.handshake_timeout, known, job, frame, hello.server_kid)
        self._pending[rid] = p
        self._pending_known += known
        self._pending_by_net[net] = self._pending_by_net.get(net, 0) + 1
        self._in_flight[known] += 1
        x_pub = hello.x_pub if hello.x_pub is not None else b""
        item = HelloWork(job, known, mode, frame, hello.ek, x_pub, hello.server_kid, self._rng(32))
        self._dispatch(item, rid, now)

    def _hello_done(self, rid: bytes, p: _Pending, done: HelloDone) -> None:
        self._end_job(p)
        if not done.frame:
            self.counters.hello_failed += 1
            self._drop_pending(rid)
            self._out.append((rid, _codec.build_error(ErrorCode.FAILED)))
            return
        skey = self._srv_keys[p.server_kid]
        clear_len = len(done.frame) - len(done.sig_s) - len(done.fin_s) - _p.Aes256Gcm.TAG_LEN
        tr = p.transcript
        tr.add(0x01, p.hello)
        tr.add(0x03, done.frame[:clear_len])
        tr.add(0x10, bytes([SERVER_SIG_ALG]) + _p.sha384(skey.public))
        tr.add(0x11, done.sig_s)
        tr.add(0x12, done.fin_s)
        p.hs, p.c_hs, p.hello = done.hs, done.c_hs, b""
        self._out.append((rid, done.frame))
        self.counters.server_hellos += 1

    def _end_job(self, p: _Pending) -> None:
        if p.job:
            self._jobs.pop(p.job, None)
            if p.auth is None:
                self._in_flight[p.known] -= 1
            p.job = 0

    def _pending_total_reached(self, known: bool) -> bool:
        """``max_pending_total``, counted apart for known and unknown nets.

        Strangers with many nets can hold ``max_pending_total`` handshakes open (the
        global bucket refills faster than pending ones time out); counting known nets
        apart keeps them from locking out clients that recently authenticated. Known
        nets' handshakes are bounded by their own bucket as well (docs/qzmq.md,
        decisions and deviations).
        """
        limit = self.config.max_pending_total
        if known:
            return self._pending_known >= limit
        return len(self._pending) - self._pending_known >= limit

    def _on_auth(self, rid: bytes, frame: bytes, p: _Pending, now: float) -> list[Event]:
        if len(frame) != CLIENT_AUTH_LEN:
            raise _Reject(ErrorCode.FAILED)
        hdr = frame[:4]
        c_key, c_iv = ks.traffic_keys(p.c_hs)
        try:
            pt = _p.Aes256Gcm(c_key).decrypt(c_iv, frame[4:], hdr)
        except _p.AuthenticationError:
            raise _Reject(ErrorCode.FAILED) from None
        assert len(pt) == CLIENT_AUTH_PT_LEN
        try:
            alg = _p.SignatureAlg(pt[0])
        except ValueError:
            raise _Reject(ErrorCode.FAILED) from None
        kid = pt[1 : 1 + KID_LEN]
        s = alg.signature_len
        sig_c = pt[1 + KID_LEN : 1 + KID_LEN + s]
        fin_c = pt[1 + KID_LEN + s : 1 + KID_LEN + s + HASH_LEN]
        pad = pt[1 + KID_LEN + s + HASH_LEN :]
        assert len(pad) == MAX_CLIENT_SIG_LEN - s
        if pad.count(0) != len(pad):
            raise _Reject(ErrorCode.FAILED)
        entry = self.allow_list.get(kid)
        if entry is None or entry.alg != alg:
            raise _Reject(ErrorCode.FAILED)
        # the Finished MAC is checked before the signature (both must hold; the MAC is
        # cheap, so a forged CLIENT_AUTH never costs a verification)
        tr = p.transcript
        th_sig = tr.add(0x20, bytes([alg]) + _p.sha384(entry.key.public))
        th = tr.add(0x21, sig_c)
        if not hmac.compare_digest(ks.finished(p.c_hs, th), fin_c):
            raise _Reject(ErrorCode.FAILED)
        th_f = tr.add(0x22, fin_c)
        p.job = self._new_job()
        p.auth = (kid, entry, th_f)
        return self._dispatch(AuthWork(p.job, p.known, alg, entry.key.public, sig_c, th_sig), rid, now)

    def _auth_done(self, rid: bytes, p: _Pending, done: AuthDone, now: float) -> list[Event]:
        assert p.auth is not None
        kid, entry, th_f = p.auth
        self._drop_pending(rid)
        # the allow-list may have been replaced while the signature was checked
        if not done.ok or self.allow_list.get(kid) != entry:
            raise _Reject(ErrorCode.FAILED)
        # max_sessions also holds for handshakes admitted while below it: only a
        # session that replaces one (same routing id, or the same client beyond
        # max_sessions_per_client) may be installed at the limit
        conns = self._by_kid.get(kid, [])
        if (
            len(self._sessions) >= self.config.max_sessions
            and rid not in self._by_rid
            and len(conns) < self.config.max_sessions_per_client
        ):
            raise _Reject(ErrorCode.FAILED)
        ms = ks.master_secret(p.hs)
        events: list[Event] = []
        # the new session replaces the one on this routing id (silently, no CLOSE)
        old = self._by_rid.get(rid)
        if old is not None:
            old_entry = self._recall(self._sessions[old])
            old_entry.session.abort()
            self._remove(old)
            events.append(Closed(CloseReason.SUPERSEDED, False, old))
        conn = self._next_conn
        self._next_conn += 1
        session = Session(
            is_server=True,
            config=self.config,
            c_ap=ks.derive(ms, b"c ap traffic", th_f),
            s_ap=ks.derive(ms, b"s ap traffic", th_f),
            exp=ks.derive(ms, b"exp master", th_f),
            chain=ks.derive(ms, b"rekey chain", th_f),
            th_rk=th_f,
            now=now,
            peer_kid=kid,
            peer_accounts=entry.accounts,
            conn=conn,
        )
        new = _Entry(rid, session)
        self._sessions[conn] = new
        self._by_rid[rid] = conn
        conns = self._by_kid.setdefault(kid, [])
        conns.append(conn)
        session.send_ready()
        self._flush(new)
        self.counters.handshakes += 1
        self._guard.remember(kid, p.net, now)
        events.append(Established(kid, entry.accounts, session.channel_binding, conn, now - p.started))
        while len(conns) > self.config.max_sessions_per_client:
            oldest = self._recall(self._sessions[conns[0]])
            events += self._after(oldest, oldest.session.close(CloseReason.SUPERSEDED))
        return events
