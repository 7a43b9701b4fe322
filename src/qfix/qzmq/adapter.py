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

import contextlib
import itertools
import logging
import math
import multiprocessing
import os
import pickle
import select
import signal
import time
from collections import deque
from collections.abc import Callable, Sequence
from collections.abc import Set as AbstractSet
from multiprocessing.connection import Connection

import zmq
from zmq.utils.monitor import recv_monitor_message

from qfix.crypto.keys import SigningKey
from qfix.crypto.primitives import SignatureAlg
from qfix.qzmq._client import ClientConnection, ClientState
from qfix.qzmq._constants import MAX_FRAME, VERSION, CloseReason, MsgType
from qfix.qzmq._events import Event, SealedFixed
from qfix.qzmq._server import ServerProtocol
from qfix.qzmq._work import AuthWork, Done, Work, run

__all__ = ["ClientEndpoint", "HandshakeWorkers", "ServerEndpoint"]

_log = logging.getLogger(__name__)

#: frames kept per peer while its queue is full before the session is given up
MAX_BACKLOG = 4096
#: handshake frames read but not yet processed; beyond this they are dropped (counted)
MAX_HANDSHAKE_QUEUE = 4096
#: handshake frames read from the socket per ``poll()`` call, at most: reading one costs
#: microseconds, and a flood that never pauses must not hold the call for milliseconds
MAX_HANDSHAKE_READS = 256
#: share of wall time the loop may spend on handshake frames (reading, checking,
#: answering); past it, frames from nets without a known client are dropped unanswered
#: (QZMQ.md §3.4 step 4 allows a silent drop) until the share has built up again
HANDSHAKE_SHARE = 0.2
#: the most handshake time the share builds up to (and the most it can be overdrawn,
#: so that a burst of handshakes in a quiet spell is not paid for later), in seconds
_HANDSHAKE_BURST = 0.01
#: the share is enforced only while records arrived within this many seconds: with
#: no session trading, handshakes hurt nobody (a restart's reconnecting clients)
_TRADING_WINDOW = 0.1
#: niceness added to handshake workers: they only take CPU the trading loop leaves
WORKER_NICE = 10
#: work items sent to one worker and not yet answered (one running, one waiting)
_PER_WORKER = 2
_TIMER_TICK = 0.05
_MONITOR_INTERVAL = 0.01  #: seconds between reads of the socket monitor when wait() saw nothing
#: known-net handshake frames handled in a row before a waiting stranger's
_KNOWN_RUN = 4
#: how long hellos_to_shed() reuses its list of known nets (walking them costs
#: microseconds per net, every pass of a flood)
_KNOWN_NETS_TTL = 0.05
#: with ``poll(read_by_caller=True)``: the least time one call spends on queued handshake frames
#: before it returns to a socket with input (its caller reads the socket, and sheds
#: strangers' hellos there far more cheaply than this endpoint's read could)
HANDSHAKE_SLICE = 200e-6
#: handshake frames one read goes on to take after its first record before it returns,
#: so that a flood's frames, dealt out between the records, cannot hold them for long
#: and are still drained at a steady pace
READS_AFTER_RECORD = 8
#: select() handles descriptors below FD_SETSIZE only
_SELECT_FD_LIMIT = 1024
_CLIENT_HELLO = int(MsgType.CLIENT_HELLO)
_VERSION = VERSION
_MONITORS = itertools.count()


def _close_monitored(sock: zmq.Socket[bytes], monitor: zmq.Socket[bytes], linger: int) -> None:
    """Close a socket and its monitor, in the one safe order.

    libzmq's I/O thread sends monitor events with a blocking send, and a closing socket
    still emits DISCONNECTED and CLOSED while the reaper tears its transports down. If
    the monitor's reading end is gone by then, that send waits forever on a PAIR without
    a peer, and with it the context's I/O thread: every other socket of the context
    stops moving (seen as handshakes that never reach a new server in the same
    process). Stopping the monitor first makes the socket emit nothing more."""
    sock.disable_monitor()
    monitor.close(linger=0)
    sock.close(linger=linger)


def _monitor_address() -> str:
    """A monitor endpoint no other socket of this process has used. pyzmq's default
    names it after the socket's descriptor, which a new socket reuses while libzmq may
    still hold the closed one's endpoint: the monitor then fails with "Address already
    in use" (seen when a client reconnected many times in one process)."""
    return f"inproc://qfix-monitor-{os.getpid()}-{next(_MONITORS)}"


_POLLIN = int(zmq.POLLIN)  # plain ints: enum arithmetic costs microseconds per frame
_NOBLOCK = int(zmq.NOBLOCK)


def _worker_main(conn: Connection, seeds: list[tuple[int, bytes]]) -> None:
    """A handshake worker process: load the server keys once, then run work items
    until the parent closes its end of the pipe."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    with contextlib.suppress(OSError):
        os.nice(WORKER_NICE)  # on a busy machine the trading loop goes first
    keys = {k.kid: k for k in (SigningKey.from_seed(SignatureAlg(a), seed) for a, seed in seeds)}
    while True:
        try:
            item = pickle.loads(conn.recv_bytes())
        except (EOFError, OSError):
            return
        done = pickle.dumps(run(item, keys), pickle.HIGHEST_PROTOCOL)
        try:
            conn.send_bytes(done)
        except OSError:  # the parent closed its end while this item ran: it is stopping
            return


class _Worker:
    __slots__ = ("conn", "jobs", "proc")

    def __init__(self, proc: multiprocessing.process.BaseProcess, conn: Connection) -> None:
        self.proc = proc
        self.conn = conn
        self.jobs: set[int] = set()


class HandshakeWorkers:
    """Worker processes that run the server handshake's asymmetric work
    (:mod:`qfix.qzmq._work`) on other cores, outside the trading loop's GIL.

    Workers are started with ``spawn`` (the server process has zmq threads, so it must
    not fork) and load the server keys once, from their seeds. Each worker has at most
    two items outstanding; the rest wait here, ordered: CLIENT_AUTH checks first
    (they finish handshakes), then hellos from known nets, then the others, so a
    stranger's flood never queues ahead of a returning client. A worker that dies is
    replaced; its items are reported lost (their handshakes end; clients retry).
    """

    def __init__(self, count: int, keys: Sequence[SigningKey]) -> None:
        if count < 1:
            raise ValueError("handshake_workers: at least 1")
        self._mp = multiprocessing.get_context("spawn")
        self._seeds = [(int(k.alg), k.seed) for k in keys]
        self._queues: tuple[deque[Work], deque[Work], deque[Work]] = (deque(), deque(), deque())
        self.workers = [self._start() for _ in range(count)]
        self.restarts = 0
        self.sent = 0  #: items sent to workers
        self.skipped = 0  #: items not sent: their handshake had ended
        self.received = 0  #: results received

    def _start(self) -> _Worker:
        parent, child = self._mp.Pipe(duplex=True)
        proc = self._mp.Process(target=_worker_main, args=(child, self._seeds), name="qzmq-handshake", daemon=True)
        proc.start()
        child.close()
        return _Worker(proc, parent)

    def fds(self) -> list[int]:
        """Descriptors that become readable when results are ready."""
        return [w.conn.fileno() for w in self.workers]

    @property
    def queued(self) -> int:
        return sum(len(q) for q in self._queues)

    @property
    def busy(self) -> bool:
        """Whether any item waits here or is outstanding at a worker."""
        return any(self._queues) or any(w.jobs for w in self.workers)

    def submit(self, items: Sequence[Work]) -> None:
        for item in items:
            prio = 0 if isinstance(item, AuthWork) else 1 if item.known else 2
            self._queues[prio].append(item)

    def dispatch(self, live: Callable[[int], bool]) -> None:
        """Send queued items to idle workers; items whose handshake ended are skipped."""
        for w in self.workers:
            while len(w.jobs) < _PER_WORKER:
                item = self._next(live)
                if item is None:
                    return
                w.jobs.add(item.job)
                try:
                    w.conn.send_bytes(pickle.dumps(item, pickle.HIGHEST_PROTOCOL))
                    self.sent += 1
                except OSError:  # it died: collect() reports its jobs lost, replaces it
                    break

    def _next(self, live: Callable[[int], bool]) -> Work | None:
        for q in self._queues:
            while q:
                item = q.popleft()
                if live(item.job):
                    return item
                self.skipped += 1
        return None

    def check(self) -> list[int]:
        """Replace workers that died; return their jobs (lost). Called on the timer."""
        lost: list[int] = []
        for i, w in enumerate(self.workers):
            if not w.proc.is_alive():
                lost += self._replace(i)
        return lost

    def _replace(self, i: int) -> list[int]:
        w = self.workers[i]
        _log.error("handshake worker %s died (exit code %s); restarting", w.proc.pid, w.proc.exitcode)
        self._stop(w)
        self.workers[i] = self._start()
        self.restarts += 1
        return list(w.jobs)

    def collect(self) -> tuple[list[Done], list[int]]:
        """Results ready now, and the jobs of workers that died (each is replaced)."""
        done: list[Done] = []
        lost: list[int] = []
        for i, w in enumerate(self.workers):
            # only a worker with items outstanding is asked (a dead idle worker is
            # found when an item is sent to it: the send fails, the item stays listed)
            if not w.jobs:
                continue
            try:
                while w.jobs and w.conn.poll(0):
                    d: Done = pickle.loads(w.conn.recv_bytes())
                    w.jobs.discard(d.job)
                    done.append(d)
                    self.received += 1
            except (EOFError, OSError):
                lost += self._replace(i)
        return done, lost

    def _stop(self, w: _Worker, timeout: float = 0.0) -> None:
        w.conn.close()
        w.proc.join(timeout)
        if w.proc.is_alive():
            w.proc.kill()
            w.proc.join(1.0)

    def close(self) -> None:
        for w in self.workers:
            w.conn.close()  # a worker exits on EOF
        for w in self.workers:
            self._stop(w, 1.0)
        self.workers = []


def _is_hello(frame: bytes) -> bool:
    """Whether a handshake frame is (processed as) a CLIENT_HELLO (QZMQ.md §3.4:
    type 01, or any version other than 01)."""
    return len(frame) < 4 or frame[3] == _CLIENT_HELLO or frame[2] != _VERSION


def _frame_fd(frame: zmq.Frame) -> int:
    """The descriptor of the transport the frame came on, -1 if unknown."""
    try:
        return int(frame.get(zmq.SRCFD))
    except (zmq.ZMQError, AttributeError, TypeError, ValueError):
        return -1


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
        handshake_share: share of wall time spent on handshake frames past which
            frames from nets without a known client are dropped unanswered (counted
            in ``handshake_frames_shed``); 1.0 never drops.
        handshake_workers: run the handshakes' asymmetric work (ML-KEM, X25519,
            ML-DSA signing and verification) in this many worker processes instead of
            in the caller's loop; 0 (default) does it inline. Sets ``protocol.offload``.
        idle_spin_us: how long :meth:`wait` polls without sleeping before it sleeps
            (0, the default: it sleeps at once). Trades a core's idle time for the
            wake-up of a sleeping thread.
        sealed_fixed: hand every record of an established session to the caller
            unopened, as a ``SealedFixed`` event, for the compiled record kernels
            (default False: records are opened here). The caller must give each one,
            in order, to the kernels or to ``ServerProtocol.receive_sealed``, and call
            :meth:`settled` when it has: a dropped transport of a session with records
            still out waits until then, so that what the peer sent before it left is
            taken first.
    """

    def __init__(
        self,
        protocol: ServerProtocol,
        endpoint: str,
        *,
        context: zmq.Context[zmq.Socket[bytes]] | None = None,
        clock: Callable[[], float] = time.monotonic,
        handshake_workers: int = 0,
        handshake_share: float = HANDSHAKE_SHARE,
        idle_spin_us: int = 0,
        sealed_fixed: bool = False,
    ) -> None:
        if not 0.0 < handshake_share <= 1.0:
            raise ValueError(f"handshake_share must be in (0, 1], got {handshake_share}")
        if idle_spin_us < 0:
            raise ValueError(f"idle_spin_us must be at least 0, got {idle_spin_us}")
        self._spin_s = idle_spin_us / 1e6
        self.protocol = protocol
        self.sealed_fixed = sealed_fixed
        #: sessions with SealedFixed events handed out since the last settled()
        self._unsettled: set[int] = set()
        self.workers: HandshakeWorkers | None = None
        if handshake_workers:
            self.workers = HandshakeWorkers(handshake_workers, list(protocol.server_keys()))
            protocol.offload = True
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
        self._monitor = sock.get_monitor_socket(zmq.EVENT_DISCONNECTED, addr=_monitor_address())
        self._rid_by_fd: dict[int, bytes] = {}
        self._dead: list[bytes] = []
        #: with a caller that reads the socket: transports noted dropped before its last
        #: read began (:meth:`caller_reads`), ended by the poll() after that read
        self._dead_before_read: list[bytes] = []
        self._known_nets: tuple[float, list[int]] = (-1.0, [])  #: hellos_to_shed()'s, and when
        # reading the monitor costs microseconds per call even when it holds nothing:
        # poll() reads it when the last wait() saw it readable, else at least every
        # _MONITOR_INTERVAL (a caller that never waits still learns of every drop)
        self._monitor_ready = False
        self._monitor_read = 0.0
        #: the last wait() saw a handshake worker's descriptor readable
        self._others_ready = False
        # handshake frames wait here (routing id, frame, peer) while records go first
        self._hs: deque[tuple[bytes, bytes, str]] = deque()
        #: handshake frames from nets where a client authenticated before (QZMQ.md §3.5):
        #: taken before the others, so a stranger's flood cannot crowd a returning client out
        self._hs_known: deque[tuple[bytes, bytes, str]] = deque()
        self._known_run = 0  #: known-net frames handled in a row while strangers waited
        #: handshake frames dropped because MAX_HANDSHAKE_QUEUE were waiting
        self.handshake_frames_dropped = 0
        #: handshake frames from nets without a known client dropped unanswered because
        #: handshakes had used up their share of the loop's time (``handshake_share``)
        self.handshake_frames_shed = 0
        self._share = handshake_share
        # seconds of handshake work the loop may still do (may go negative: one frame
        # is never cut short), topped up by ``_share`` of the wall time that passes
        self._hs_budget = _HANDSHAKE_BURST
        self._hs_refilled = time.perf_counter()
        self._last_record = -_TRADING_WINDOW  #: perf_counter time a record was last read
        # the wait polls the sockets' notification descriptors (ZMQ_FD), not the sockets:
        # zmq_poll asks every socket for its events before and after it sleeps, each
        # ask a system call or two, which cost the one-order round trip tens of
        # microseconds; see wait() for the rule that keeps descriptors safe to sleep on
        self._socket_fd = int(sock.getsockopt(zmq.FD))
        self._monitor_fd = int(self._monitor.getsockopt(zmq.FD))
        self._poller = self._new_poller()
        self._restarts_seen = 0  #: worker restarts the poller knows of (their pipes are new)

    def _new_poller(self) -> select.poll:
        poller = select.poll()
        for fd in (self._socket_fd, self._monitor_fd, *(self.workers.fds() if self.workers is not None else ())):
            poller.register(fd, select.POLLIN)
        return poller

    def wait(self, timeout_ms: int) -> bool:
        """Wait up to ``timeout_ms`` for anything :meth:`poll` would act on: a frame, a
        dropped transport or a finished handshake computation. (Polling ``socket``
        alone also works; finished handshakes then wait for the next wake-up.)"""
        if self._hs or self._hs_known:
            timeout_ms = 0
        if self.workers is not None and self.workers.restarts != self._restarts_seen:
            self._reregister()
        # A ZMQ_FD signals commands for the socket, not frames: any call on the socket
        # (a send, a receive, this check) may take in the command that announced a
        # frame. Asking for the events right before sleeping takes in every command
        # so far, so the descriptor then signals whatever comes later. The monitor is
        # only ever drained to empty by _disconnected(), so its descriptor is safe as
        # it stands (and it is read every _MONITOR_INTERVAL regardless).
        if int(self.socket.getsockopt(zmq.EVENTS)) & _POLLIN:
            return True
        ready = self._spin() if self._spin_s and timeout_ms else []
        if not ready:
            ready = self._poller.poll(timeout_ms)
        mon = self._monitor_fd
        others = False
        for fd, _ in ready:
            if fd == mon:
                self._monitor_ready = True
            elif fd != self._socket_fd:
                others = True
        self._others_ready = others
        return bool(ready)

    def readable(self) -> bool:
        """Whether a frame is waiting on the socket (a cheap check between polls)."""
        return bool(int(self.socket.getsockopt(zmq.EVENTS)) & _POLLIN)

    def _spin(self) -> list[tuple[int, int]]:
        """Poll the descriptors without sleeping for up to ``idle_spin_us``: a thread
        that sleeps is woken by the next frame only after its CPU has left its idle state
        and its caches have gone cold (on the 2-core VM of docs/benchmarks.md, half of a
        one-order batch's time), which a loop that keeps polling for a while skips."""
        poll = self._poller.poll
        deadline = time.perf_counter() + self._spin_s
        while True:
            ready = poll(0)
            if ready or time.perf_counter() >= deadline:
                return ready

    def _reregister(self) -> None:
        self._poller = self._new_poller()
        self._restarts_seen = self.workers.restarts if self.workers is not None else 0

    def poll(self, timeout_ms: int = 0, max_frames: int = 4096, *, read_by_caller: bool = False) -> list[Event]:
        """Receive up to ``max_frames`` messages, run timers, send; return the events.

        Records of established sessions are processed as they are read; handshake
        frames are queued and processed after them, one at a time, going back to the
        socket whenever it has input and returning as soon as there is an event, so a
        flood of hellos delays a record by at most one hello's cheap checks (queued
        handshake frames are taken up by the next calls; :meth:`wait` does not sleep
        while any are queued). Handshake results finished by the workers are applied
        on each call.

        With ``read_by_caller`` true the caller reads :attr:`socket` itself, saying so
        with :meth:`caller_reads` before each read, and gives this endpoint what it
        reads through :meth:`take_frame` and :meth:`take_handshake`. Nothing is read
        here; transports noted dropped before the caller's read began are ended (what
        they sent before they went has been read, as after this endpoint's own read);
        the queued handshake frames are taken until there is an event, or the socket
        has input again once the call has spent ``HANDSHAKE_SLICE`` on them, so that
        the caller's read comes back to it soon."""
        events: list[Event] = []
        proto = self.protocol
        self._others_ready = False  # whatever a worker finished is collected below
        # transports dropped so far are noted before the frames are read (their fds
        # cannot have been reused by a connection whose frames are still unread), and
        # ended after them (a CLOSE the peer sent before it left is read first)
        read = not read_by_caller
        if read:
            dead = self._dead
            self._dead = self._disconnected() if self._monitor_due() else []
        else:
            # the caller read the socket before this call: what was noted before its read
            # began is ended now, what is noted since waits for its next read
            dead, self._dead_before_read = self._dead_before_read, []
            self._dead += self._disconnected() if self._monitor_due() else []
        budget = [max_frames, MAX_HANDSHAKE_READS]  # records, handshake frames read per call
        self._refill(time.perf_counter())
        if timeout_ms and not (self._hs or self._hs_known):
            self.wait(timeout_ms)
        sock = self.socket
        drained = self._read(budget, events) if read else False
        workers = self.workers
        if workers is not None:
            events += self._collect(workers)
        # handshake frames: at least one per call (so that they progress under any
        # load of records; a stranger's hello past the handshakes' share is dropped
        # instead), then more until there is something to hand back
        hs, known = self._hs, self._hs_known
        n = max_frames
        slice_end = time.perf_counter() + HANDSHAKE_SLICE
        while (hs or known) and n:
            n -= 1
            # known nets first, but at most _KNOWN_RUN in a row while strangers wait: a
            # host behind a shared NAT must not starve everyone else's handshakes
            if known and (not hs or self._known_run < _KNOWN_RUN):
                rid, frame, peer = known.popleft()
                self._known_run += 1
            elif self._shedding() and _is_hello(hs[0][1]):
                hs.popleft()
                self.handshake_frames_shed += 1
                continue
            else:
                rid, frame, peer = hs.popleft()
                self._known_run = 0
            t0 = time.perf_counter()
            events += proto.receive(rid, frame, self._clock(), peer)
            if workers is not None:
                workers.submit(proto.work_to_do())
                workers.dispatch(proto.job_live)
            self._hs_budget -= time.perf_counter() - t0
            if not read:
                if events or (time.perf_counter() >= slice_end and int(sock.getsockopt(zmq.EVENTS)) & _POLLIN):
                    break
                continue
            if budget[0] and budget[1] and int(sock.getsockopt(zmq.EVENTS)) & _POLLIN:
                drained = self._read(budget, events)
            if events:
                break
        if drained:
            dead += self._dead
            self._dead = []
        for rid in dead:
            if self._unsettled and proto.conn_for_routing_id(rid) in self._unsettled:
                self._dead.append(rid)  # ended once its records are taken (settled())
                continue
            events += self._transport_gone(rid)
        now = self._clock()
        if now >= self._next_timer:
            events += proto.handle_timer(now)
            self._next_timer = now + _TIMER_TICK
            if workers is not None and (lost := workers.check()):
                self._reregister()
                for job in lost:
                    proto.work_lost(job)
        if workers is not None:
            workers.submit(proto.work_to_do())
            workers.dispatch(proto.job_live)
        events += self.flush()
        return events

    def _read(self, budget: list[int], events: list[Event]) -> bool:
        """Read while input is ready and both budgets last (``budget[0]`` records,
        ``budget[1]`` handshake frames, for the whole ``poll()`` call): records (and
        other non-handshake frames) are processed at once, handshake frames queued, the
        time spent on them charged to the handshakes' share. True when the socket was
        drained."""
        sock = self.socket
        # libzmq deals frames out round-robin over the connections, so a record can sit
        # behind one frame from every flooding connection: handshake frames do not use
        # up the records' budget (they are only queued or dropped here), and a separate
        # cap keeps a flood that never pauses from holding the call
        clock = time.perf_counter
        after_record = -1  # handshake frames read since this call's first record
        while budget[0] > 0 and budget[1] > 0:
            t0 = clock()
            # not asked first: a receive that finds nothing raises once per call, and
            # asking (ZMQ_EVENTS) would cost about half of that for every frame
            # (scripts/probe_zmq_calls.py)
            try:
                rid = sock.recv(_NOBLOCK)
            except zmq.Again:
                return True
            # a ROUTER message is its routing id and at least one part, and arrives whole,
            # so the frame is here (two plain reads cost a third of a recv_multipart of
            # Frames); one with more parts is drained and refused
            frame = sock.recv(_NOBLOCK, copy=False)
            if frame.more:
                while sock.getsockopt(zmq.RCVMORE):
                    sock.recv(_NOBLOCK)
                budget[0] -= 1
                events += self.take_malformed(rid)
                continue
            buf = frame.buffer
            if len(buf) and buf[0] == 0x51:
                budget[1] -= 1
                if self._queue_handshake(rid, frame.bytes, _frame_fd(frame), _peer_address(frame)):
                    # reading it is handshake work too; a dropped frame's read is not
                    # charged, or a flood whose reading alone took the share would
                    # keep every stranger out for as long as it lasts
                    self._hs_budget -= clock() - t0
                if after_record >= 0:
                    after_record += 1
                    if after_record >= READS_AFTER_RECORD:
                        # the records read go first: reading on through a flood (up to
                        # MAX_HANDSHAKE_READS frames, milliseconds) would hold them back
                        return False
                continue
            budget[0] -= 1
            after_record = max(after_record, 0)
            events += self.take_frame(rid, buf)
        return False

    def take_frame(self, rid: bytes, frame: bytes | memoryview) -> list[Event]:
        """What :meth:`poll` does with a frame that is not a handshake's, for a frame the
        caller read off :attr:`socket` itself (the server's compiled read)."""
        proto = self.protocol
        conn = proto.conn_for_routing_id(rid)
        if conn is not None:
            self._last_record = time.perf_counter()
            if self.sealed_fixed:
                # every record, whatever its type: the session's records must be
                # taken in order, and the kernels stop at the first they cannot open
                self._unsettled.add(conn)
                return [SealedFixed(frame, conn)]
        return proto.receive(rid, frame, self._clock())

    def take_handshake(self, rid: bytes, frame: bytes, fd: int, peer: str) -> None:
        """What :meth:`poll` does with a handshake frame (queue it, or drop it), for one
        the caller read off :attr:`socket` itself; ``fd`` is its transport's descriptor
        (-1 if unknown), ``peer`` its address."""
        t0 = time.perf_counter()
        if self._queue_handshake(rid, frame, fd, peer):
            self._hs_budget -= time.perf_counter() - t0

    def take_malformed(self, rid: bytes) -> list[Event]:
        """What :meth:`poll` does with a message that is not [routing id, frame], for one
        the caller read off :attr:`socket` itself (and drained)."""
        return self.protocol.receive_bad_frame_count(rid, self._clock())

    def records_read(self) -> None:
        """The caller read records of established sessions off :attr:`socket` itself
        (the handshakes' share counts from the last one, see ``handshake_share``)."""
        self._last_record = time.perf_counter()

    def busy(self) -> bool:
        """Whether :meth:`poll` has work besides reading the socket: handshake frames
        queued or computing, frames waiting for room, a handshake result or a dropped
        transport to take up, a timer due. A caller that reads the socket itself calls
        poll() only then."""
        workers = self.workers
        return bool(
            self._hs
            or self._hs_known
            or self._backlog  # a peer's pipe may have room again: poll() drains it
            or self._dead
            or self._dead_before_read
            or self._others_ready
            or self._monitor_ready
            or (workers is not None and workers.busy)
            or self._clock() >= self._next_timer
            or time.perf_counter() - self._monitor_read >= _MONITOR_INTERVAL
        )

    @property
    def backlogged(self) -> AbstractSet[bytes]:
        """Routing ids with frames waiting for room on the socket: a frame for one of
        them sent directly would overtake them."""
        return self._backlog.keys()

    def settled(self) -> None:
        """Every ``SealedFixed`` event handed out so far has been given to the kernels or
        to ``ServerProtocol.receive_sealed`` (see ``sealed_fixed``)."""
        self._unsettled.clear()

    def _shedding(self) -> bool:
        """Whether strangers' hellos are dropped now: handshakes used up their share
        while sessions are trading (the budget is topped up here first, so a long
        ``poll()`` call does not shed on a stale balance)."""
        if self._hs_budget > 0.0 or self._share >= 1.0:
            return False
        now = time.perf_counter()
        self._refill(now)
        return self._hs_budget <= 0.0 and now - self._last_record < _TRADING_WINDOW

    def caller_reads(self) -> None:
        """A caller that reads :attr:`socket` itself is about to read it: the
        transports noted dropped so far are ended by the ``poll(read_by_caller=True)``
        after that read (those noted later wait for the read after)."""
        self._dead_before_read += self._dead
        self._dead = []

    def hellos_to_shed(self) -> list[int] | None:
        """For a caller that reads :attr:`socket` itself: None while strangers' hellos
        are taken, else (handshakes are over their share while sessions trade) the IPv4
        nets, as integers, whose hellos are still taken (known clients'; any other
        peer's is dropped, as :meth:`poll` would drop it). Decided now, for one read;
        the list is the same object for ``_KNOWN_NETS_TTL`` (a net that became known
        within it may be missing: its client has just authenticated, so its next hello
        comes far later)."""
        if not self._shedding():
            return None
        now = time.perf_counter()
        at, nets = self._known_nets
        if now - at >= _KNOWN_NETS_TTL:
            nets = self.protocol.known_ipv4_nets(self._clock())
            self._known_nets = (now, nets)
        return nets

    def hellos_shed(self, count: int) -> None:
        """Count hellos such a caller dropped (``handshake_frames_shed``)."""
        self.handshake_frames_shed += count

    def _refill(self, now: float) -> None:
        """Add the share of the wall time since the last top-up (within the bounds)."""
        budget = max(-_HANDSHAKE_BURST, self._hs_budget) + (now - self._hs_refilled) * self._share
        self._hs_budget = min(_HANDSHAKE_BURST, budget)
        self._hs_refilled = now

    def _queue_handshake(self, rid: bytes, data: bytes, fd: int, peer: str) -> bool:
        """Queue a handshake frame (``fd``: its transport's descriptor, -1 if unknown;
        ``peer``: its address), known nets' and others' apart; False if it was dropped
        (counted): its queue is full, or it is a hello from a net without a known client
        while handshakes have used up their share of the loop's time (a CLIENT_AUTH is
        never dropped for time: its handshake's dear work is done)."""
        self._note_fd(fd, rid)
        hs, known = self._hs, self._hs_known
        if len(hs) >= MAX_HANDSHAKE_QUEUE and len(known) >= MAX_HANDSHAKE_QUEUE:
            self.handshake_frames_dropped += 1
            return False
        if self.protocol.is_known_peer(peer, self._clock()):
            if len(known) >= MAX_HANDSHAKE_QUEUE:
                self.handshake_frames_dropped += 1
                return False
            known.append((rid, data, peer))
            return True
        if self._shedding() and _is_hello(data):
            self.handshake_frames_shed += 1
            return False
        if len(hs) >= MAX_HANDSHAKE_QUEUE:
            self.handshake_frames_dropped += 1
            return False
        hs.append((rid, data, peer))
        return True

    def _collect(self, workers: HandshakeWorkers) -> list[Event]:
        events: list[Event] = []
        done, lost = workers.collect()
        if lost:
            self._reregister()
        proto = self.protocol
        for d in done:
            events += proto.complete(d, self._clock())
        for job in lost:
            proto.work_lost(job)
        return events

    def _note_fd(self, fd: int, rid: bytes) -> None:
        if fd < 0:
            return
        old = self._rid_by_fd.get(fd)
        if old is not None and old != rid:
            # the kernel gave a closed connection's descriptor to this one. libzmq queues
            # the old connection's DISCONNECTED before it closes the descriptor, so it is
            # readable now: read it (it ends the old one), and end the old one here if it
            # never came (a lost or already-consumed event), so that no late event can
            # be taken for this connection's
            self._dead += self._disconnected()
            if self._rid_by_fd.get(fd) == old:
                self._dead.append(old)
        self._rid_by_fd[fd] = rid

    def _monitor_due(self) -> bool:
        now = time.perf_counter()
        if self._monitor_ready or now - self._monitor_read >= _MONITOR_INTERVAL:
            self._monitor_ready = False
            self._monitor_read = now
            return True
        return False

    def _disconnected(self) -> list[bytes]:
        """Routing ids whose transport the monitor reported dropped since the last call."""
        rids: list[bytes] = []
        mon = self._monitor
        while int(mon.getsockopt(zmq.EVENTS)) & _POLLIN:
            try:
                msg = recv_monitor_message(mon, zmq.NOBLOCK)
            except zmq.Again:
                break
            if msg["event"] == zmq.EVENT_DISCONNECTED:
                rid = self._fd_disconnected(int(msg["value"]))
                if rid is not None:
                    rids.append(rid)
        return rids

    def _fd_disconnected(self, fd: int) -> bytes | None:
        """The routing id whose transport on ``fd`` dropped (None if none was noted)."""
        return self._rid_by_fd.pop(fd, None)

    def _transport_gone(self, rid: bytes) -> list[Event]:
        if self.protocol.conn_for_routing_id(rid) is not None:
            self.disconnects += 1
        self._backlog.pop(rid, None)
        return self.protocol.transport_failed(rid)

    def flush(self) -> list[Event]:
        """Send what the protocol produced (backlogs first); return session-ending events.

        Established sessions' frames go first, then the rest (handshake replies, in
        order): under a hello flood one loop pass answers hundreds of hellos, and a
        session's reply queued behind all of them waited milliseconds. Each routing id's
        frames keep their order; sending the handshake replies is charged to the
        handshakes' share of the loop (``handshake_share``)."""
        events: list[Event] = []
        self._gone.clear()
        for rid in list(self._backlog):
            events += self._drain(rid)
        has_session = self.protocol.has_session
        later: list[tuple[bytes, bytes]] = []
        later_rids: set[bytes] = set()
        for rid, frame in self.protocol.data_to_send():
            if rid in later_rids or not has_session(rid):
                later.append((rid, frame))
                later_rids.add(rid)
                continue
            events += self._queue_or_send(rid, frame)
        if later:
            t0 = time.perf_counter()
            for rid, frame in later:
                events += self._queue_or_send(rid, frame)
            self._hs_budget -= time.perf_counter() - t0
        return events

    def _queue_or_send(self, rid: bytes, frame: bytes) -> list[Event]:
        if rid in self._gone:
            return []  # its session ended in this flush: never send after a gap
        q = self._backlog.get(rid)
        if q is not None:
            q.append(frame)
            if len(q) > MAX_BACKLOG:
                return self._give_up(rid)
            return []
        return self._send(rid, frame)

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
        if self.workers is not None:
            self.workers.close()
        _close_monitored(self.socket, self._monitor, 0)


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
        self._monitor = sock.get_monitor_socket(zmq.EVENT_DISCONNECTED | zmq.EVENT_CLOSED, addr=_monitor_address())
        sock.connect(endpoint)
        self.socket = sock
        # read once: pyzmq's attribute access costs microseconds per wait
        self._fds = [int(sock.getsockopt(zmq.FD)), int(self._monitor.getsockopt(zmq.FD))]
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

    def poll(self, timeout_ms: float = 0, max_frames: int = 4096) -> list[Event]:
        """Receive what arrives within ``timeout_ms`` (fractions of a millisecond are
        honoured), run timers, send; return the events."""
        events: list[Event] = []
        if self._backlog:
            events += self.flush()
            if self._backlog:
                timeout_ms = min(timeout_ms, 1)
        frames_ready, monitor_ready = self._wait(timeout_ms)
        conn = self.connection
        if frames_ready:
            sock = self.socket
            for _ in range(max_frames):
                try:
                    frame = sock.recv(_NOBLOCK, copy=False)
                except zmq.Again:
                    break
                events += conn.receive(frame.buffer, self._clock())
                # a client gets a few records per wait: asking beats the exception that
                # a receive finding nothing raises
                if not int(sock.getsockopt(zmq.EVENTS)) & _POLLIN:
                    break
        if monitor_ready:
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

    def _wait(self, timeout_ms: float) -> tuple[bool, bool]:
        """Whether the socket and the monitor have input, waiting up to ``timeout_ms``.

        zmq_poll counts whole milliseconds, so a client pacing its sends in steps
        shorter than that would oversleep by up to a millisecond each time; a timeout
        that is not a whole number of milliseconds selects on the sockets'
        edge-triggered descriptors instead, re-reading ZMQ_EVENTS after every wake-up as
        libzmq requires. ``select`` cannot take descriptors from 1024 up (a process with
        many open files): those wait in zmq_poll, rounded up to the next millisecond."""
        fds = self._fds
        whole = timeout_ms <= 0 or timeout_ms == int(timeout_ms)
        if whole or max(fds) >= _SELECT_FD_LIMIT:
            ready = dict(self._poller.poll(math.ceil(timeout_ms) if timeout_ms > 0 else 0))
            return bool(ready.get(self.socket)), bool(ready.get(self._monitor))
        deadline = time.monotonic() + timeout_ms / 1e3
        while True:
            frames = bool(int(self.socket.getsockopt(zmq.EVENTS)) & _POLLIN)
            monitor = bool(int(self._monitor.getsockopt(zmq.EVENTS)) & _POLLIN)
            left = deadline - time.monotonic()
            if frames or monitor or left <= 0:
                return frames, monitor
            select.select(fds, [], [], left)

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
        _close_monitored(self.socket, self._monitor, 100)
        return events
