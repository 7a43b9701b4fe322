"""The composition root: QZMQ endpoint + session layer + engine + market data + metrics.

Theory of operation (ARCHITECTURE.md's batch loop). :meth:`Server.run_once` waits for
input, then keeps draining the socket without blocking until it holds ``batch``
messages, nothing more is ready, or the latency budget since the first frame is spent.
Each frame is decrypted by the QZMQ layer, checked by stages F, H and S
(:class:`~qfix.server.session.OrderEntry`) and its refusals are answered at once; the
accepted records of all frames go to the engine in one call, resumed after
``OUTPUT_FULL`` with a drained (and if needed grown) buffer. Reports leave per session
in DATA_FIXED records of at most 1,091 messages; market-data records of each engine call
are sequenced and published once the call is done (:class:`~qfix.server.feed.MarketData`),
and snapshot requests are answered between engine calls.

Backpressure is explicit: the ROUTER socket is ROUTER_MANDATORY with bounded
high-water marks; a peer that does not read its reports fills a bounded backlog and
its session is ended (never silently dropped records, never unbounded memory).
The handshake cryptography runs in ``handshake_workers`` worker processes (the
endpoint's business); records of established sessions are handled before queued
handshake frames, so a hello flood cannot delay trading.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import zmq

from qfix import native_zmq
from qfix.crypto import _gcm_kernel
from qfix.crypto.keys import load_allow_list
from qfix.engine import Engine, output_buffer
from qfix.engine.engine import transition_allowed
from qfix.errors import QfixError
from qfix.journal import REFUSED, Files, JournalError
from qfix.journal.entries import (
    AuctionTick,
    Batch,
    BlockAccounts,
    CancelAccounts,
    CancelSessions,
    EndOfDay,
    Entry,
    PublishIndicative,
    SetPhase,
)
from qfix.journal.replay import EngineDriver
from qfix.qzmq import (
    RECORD_OVERHEAD,
    Closed,
    CloseReason,
    ConnectionClosed,
    Established,
    Event,
    Messages,
    SealedFixed,
    ServerProtocol,
)
from qfix.qzmq._record_row import ROW_COLUMNS
from qfix.qzmq.adapter import MAX_HANDSHAKE_READS, READS_AFTER_RECORD, ServerEndpoint
from qfix.server import _serve, _stage_s
from qfix.server.admin import PHASES, AdminCommand, AdminError, encode_reply, parse_command
from qfix.server.config import ScheduledPhase, ServerConfig, ServerConfigError, end_of_day_offset_ns, load_keys
from qfix.server.feed import MarketData
from qfix.server.ledger import Ledger
from qfix.server.metrics import Metrics, StatusLine
from qfix.server.record_path import PassOutcome, RecordPath, Sent, Served
from qfix.server.routes import Routes
from qfix.server.session import OrderEntry, SessionState
from qfix.wire import codec, codes, schema

__all__ = ["Server"]

log = logging.getLogger(__name__)

Array = npt.NDArray[Any]

_MSG: Final = codes.MESSAGE_SIZE
_FRAME_MSGS: Final = codes.MAX_MSGS_PER_FRAME
_HOUSEKEEPING_S: Final = 0.05
#: indicative values are published at most this often (each publication reads every
#: resting order of the instruments in a call phase and is journaled)
_INDICATIVE_INTERVAL_S: Final = 0.05
_IDLE_WAIT_MS: Final = 20
#: the idle wait while snapshot replies stream: 16 packets per requester per wake-up
_STREAMING_WAIT_MS: Final = 1
_FRAME_SLACK: Final = 32
#: snapshot or replay requests answered per loop pass (a snapshot of a large book costs milliseconds)
_MD_REQUESTS_PER_PASS: Final = 4


def _frames_for(messages: int) -> int:
    """Frames to read for room of ``messages``: a batch overshoots its limit by at most
    ``_FRAME_SLACK`` full frames, so memory stays bounded whatever the frame sizes."""
    return -(-max(messages, 1) // _FRAME_MSGS) + _FRAME_SLACK


_DAY_NS: Final = 86_400 * 1_000_000_000


def _next_end_of_day(hhmm: str, now_ns: int) -> int:
    """The next wall-clock instant (ns) at UTC ``hhmm`` strictly after ``now_ns``; never if ""."""
    if not hhmm:
        return 2**63 - 1
    at = now_ns - now_ns % _DAY_NS + end_of_day_offset_ns(hhmm)
    return at if at > now_ns else at + _DAY_NS


def _warm_kernels(config: ServerConfig) -> None:
    """Compile (or load from Numba's cache) every kernel the loop may call, on a throwaway
    engine of the same types, so that no client ever waits on a compile (the first
    cancel-on-disconnect would otherwise stall the loop for as long as a compile takes)."""
    from qfix.engine import EngineConfig, backends
    from qfix.engine.auction.uncross import warm as warm_auctions

    scratch = Engine(config.instruments[:1], EngineConfig(max_orders=16, max_levels=16, max_sessions=2))
    out = output_buffer(64)
    scratch.process(np.zeros(0, schema.INBOUND), out)
    scratch.cancel_sessions(0, [0], out)
    first = config.instruments[0]
    sec = [first.security_id]
    # through a call phase and an (empty) opening auction, which gathers the book
    if first.phase not in (PHASES["closed"], PHASES["halted"]):
        scratch.set_phase(0, sec, PHASES["halted"], out)
    scratch.set_phase(0, sec, PHASES["pre-open"], out)
    scratch.publish_indicative(0, out)
    scratch.set_phase(0, sec, PHASES["continuous"], out)
    scratch.auction_tick(0, out)
    warm_auctions(backends.load("cpu"))
    # the session layer's compiled passes: stages H and S, routing, the journaled marks
    entry = OrderEntry(max_sessions=1)
    entry.login(0, b"", (1,), 0.0)
    frame = codec.new_records(codes.TEMPLATE_NEW_ORDER_SINGLE)
    frame["ClOrdID"] = 1
    frame["Account"] = 1
    arrival = entry.receive(0, frame.tobytes(), 0, 0.0)
    entry.route(out[:1])
    _stage_s.raise_marks(schema.as_words(arrival.inbound), 1, entry.journaled_marks)
    # the compiled record path in both its forms (one call, and two around a journal),
    # with its sealing when the server seals (a connection without a lease row: the
    # report is handed back, after the arena has grown)
    path = RecordPath(entry, scratch, _NoLeases() if _gcm_kernel.AVAILABLE else None)
    driver = EngineDriver(scratch, 64)
    for journal in (None, lambda records: 0):
        frame["ClOrdID"] += 1
        path.add(entry.by_conn[0], 0, frame.tobytes(), 0)
        if path.run(0.0, driver, journal).consumed != 1:
            raise RuntimeError("warming the record path: its order did not reach the engine")
    if _compiled_sockets(config) and path.leases is not None:
        # its compiled read and send, on a socket with nothing to read
        sock: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.ROUTER)
        try:
            sock.bind(f"inproc://qfix-warm-{id(path)}")
            routes = Routes(entry, _NoLeases(), frozenset())
            for journal in (None, lambda records: 0):
                path.serve(sock.underlying, routes, 0.0, 0, driver, 16, journal)
            path.send_kept(sock.underlying, 0, set())
        finally:
            sock.close(linger=0)


def _compiled_sockets(config: ServerConfig) -> bool:
    """Whether the record path reads and sends on the socket itself (``compiled_sockets``)."""
    return config.compiled_path and config.compiled_sockets and _gcm_kernel.AVAILABLE and native_zmq.AVAILABLE


class _NoLeases:
    """Leases for warming the record path's kernels: a table nobody holds a row of."""

    lease_table = np.zeros((1, ROW_COLUMNS), np.int64)
    lease_version = 0

    def lease(self, conn: int) -> int:
        return -1

    def lease_row(self, conn: int) -> int:
        return -1

    def relend(self) -> None:
        pass

    def routing_id(self, conn: int) -> bytes | None:
        return None


def _auction_backend_choice(config: ServerConfig) -> str:
    """Where this server's uncrosses will determine clearing prices, and why (ENGINE.md §8)."""
    from qfix.engine import backends
    from qfix.engine.auction.batch import DEVICE_MIN_INSTRUMENTS

    name = config.engine.auction_backend
    if name != "auto":
        return f"{name} (engine.auction_backend or ${backends.ENV_VAR})"
    if len(config.instruments) < DEVICE_MIN_INSTRUMENTS:
        return f"cpu (auto: fewer than {DEVICE_MIN_INSTRUMENTS} instruments, a device would not pay)"
    _, why = backends.select("auto")
    return f"{why}; cpu for uncrosses of fewer than {DEVICE_MIN_INSTRUMENTS} instruments"


def _warn_unknown_kids(config: ServerConfig, allow: Any) -> list[str]:
    """A per-key setting for a key the allow-list does not hold is most likely a typo:
    logged, and returned (for the reload's reply).

    An admin kid off the allow-list stops the start (``load_keys``); after ``qfix admin
    reload`` it is only warned about, since refusing the reload would keep serving a key
    the operator meant to revoke."""
    per_key = {
        "server.cancel_on_disconnect_by_kid": ([kid for kid, _ in config.cancel_on_disconnect_by_kid], ""),
        "keys.admin_kids": (config.admin_kids, "; the next start refuses it: take it out of keys.admin_kids"),
    }
    warnings = []
    for setting, (kids, consequence) in per_key.items():
        for kid in kids:
            if bytes.fromhex(kid) not in allow:
                warnings.append(f"{setting} names {kid}, which is not on the allow-list{consequence}")
                log.warning("%s", warnings[-1])
    return warnings


class Server:
    """One matching shard: order entry over QZMQ, the engine, the market-data feeds.

    Args:
        config: the validated configuration.
        on_status: called with the status line every ``config.status_interval`` seconds.
        context: the zmq context (tests pass their own).
        files: the journal's file system (tests pass a fault injector).
    """

    def __init__(
        self,
        config: ServerConfig,
        *,
        on_status: Callable[[str], None] | None = None,
        context: zmq.Context[zmq.Socket[bytes]] | None = None,
        files: Files | None = None,
    ) -> None:
        self.config = config
        now = time.monotonic()
        key, allow = load_keys(config)  # a refusal names keys.server_key, keys.allow_list or keys.admin_kids
        _warn_unknown_kids(config, allow)
        self.protocol = ServerProtocol([key], allow, config.qzmq, now=now)
        self.entry = OrderEntry(
            throttle=config.throttle,
            max_rejects=config.max_rejects,
            retransmit_keep=config.retransmit_keep,
            max_sessions=config.engine.max_sessions,
        )
        _warm_kernels(config)
        #: engine and session table, recovered from the journal and changed only through it
        self.ledger = Ledger(config, self.entry, files=files)
        self.engine: Engine = self.ledger.engine
        #: order records run through compiled calls per pass, sealed as they came when
        #: the AEAD is reachable from compiled code; None: each frame through
        #: OrderEntry.receive
        self._record_path: RecordPath | None = None
        sealed = config.compiled_path and _gcm_kernel.AVAILABLE
        if config.compiled_path:
            self._record_path = RecordPath(self.entry, self.engine, self.protocol if sealed else None)
        log.info("auction backend: %s", _auction_backend_choice(config))
        rec = self.ledger.recovery
        if config.journal_dir is not None:
            log.info(
                "journal %s (%s): checkpoint at %d, %d records replayed to sequence %d in %.2f s, %d resting orders",
                config.journal_dir,
                config.durability,
                rec.checkpoint_seq,
                rec.replayed,
                rec.last_seq,
                rec.seconds,
                self.engine.resting_orders,
            )
        self.metrics = Metrics(config.metrics_port)
        self.endpoint = ServerEndpoint(
            self.protocol,
            config.fix_endpoint,
            context=context,
            handshake_workers=config.handshake_workers,
            handshake_share=config.handshake_share,
            idle_spin_us=config.idle_spin_us,
            sealed_fixed=sealed,
        )
        #: the feeds and the snapshot service (None with ``md_enabled`` off)
        self.md: MarketData | None = None
        if config.md_enabled:
            try:
                self.md = MarketData(config, self.engine, context or zmq.Context.instance())
            except zmq.ZMQError as exc:
                self.endpoint.close()
                self.metrics.close()
                self.ledger.close(checkpoint=False)
                raise ServerConfigError(
                    f"cannot bind the market-data ports {config.md_endpoint} and {config.md_snapshot_endpoint}: "
                    f"{exc}; choose free ports (server.md_port, marketdata.snapshot_port)"
                ) from None
            self.md.start(time.time_ns())
        sock = self.endpoint.socket
        sock.setsockopt(zmq.SNDHWM, config.sndhwm)
        sock.setsockopt(zmq.RCVHWM, config.rcvhwm)
        self._on_status = on_status
        self._status = StatusLine(now)
        self._next_status = now + config.status_interval if config.status_interval else float("inf")
        self._next_housekeeping = now
        self._last_recv_ns = 0
        self._admin_kids = frozenset(bytes.fromhex(k) for k in config.admin_kids)
        #: the connections whose records the record path reads off the socket itself,
        #: and sends the reports of (None: the endpoint reads and sends every frame)
        self._routes: Routes | None = None
        if self._record_path is not None and _compiled_sockets(config):
            self._routes = Routes(self.entry, self.protocol, self._admin_kids)
            self._record_path.handshake_reads(MAX_HANDSHAKE_READS, READS_AFTER_RECORD)
        self._socket = sock.underlying
        self._next_eod_ns = _next_end_of_day(config.end_of_day, time.time_ns())
        #: whether any instrument is a frequent batch auction (else no tick is ever due)
        self._has_fba = any(i.fba_interval_ns is not None for i in config.instruments)
        #: batch-auction instruments with an interval: those a batch may have given orders
        #: since their last tick, so the loop ticks them when due even if no order follows
        #: (with interval 0 the tick after each batch is the only one)
        self._timed_fba = frozenset(i.security_id for i in config.instruments if i.fba_interval_ns)
        self._fba_pending: set[int] = set(self._timed_fba)
        #: whether any instrument is in a phase with indicative values; phases change only
        #: through ``_set_phase``, which refreshes it
        self._calling = self.engine.in_call_phase()
        #: the book changed since the indicative values were last published, and when that was
        self._indicative_pending = self._calling
        self._indicative_at = 0.0
        #: when each scheduled phase change is next due (UTC ns), in config.schedule's order
        self._next_phase_ns = [_next_end_of_day(entry.at, time.time_ns()) for entry in config.schedule]
        self.trading_days_closed = 0
        self._stopping = False
        self.closed = False
        #: why the server stopped taking orders on its own (a journal failure); "" if it did not
        self.failure = ""
        #: connections that ended while a batch was in hand: ended after it (``_finish_logouts``)
        self._ended: list[int] = []

    @property
    def record_path(self) -> RecordPath | None:
        """The compiled record path (None when ``compiled_path`` is off)."""
        return self._record_path

    @property
    def fix_endpoint(self) -> str:
        """The bound order-entry endpoint (with the real port when 0 was configured)."""
        return self.endpoint.endpoint

    @property
    def md_endpoints(self) -> tuple[str, str]:
        """The bound feed (PUB) and snapshot service endpoints; ValueError if market data is off."""
        if self.md is None:
            raise ValueError("market data is off (marketdata.enabled = false)")
        return self.md.pub_endpoint, self.md.snapshot_endpoint

    # --- the loop ---------------------------------------------------------------------

    def serve_forever(self) -> None:
        """Run until :meth:`stop` is called (e.g. from a signal handler), then shut down."""
        while not self._stopping:
            # the snapshot ROUTER is not in the loop's poller: while replies stream, wake
            # often enough to keep them moving (each pass tops up every requester's pipe)
            streaming = self.md is not None and self.md.streaming
            self.run_once(_STREAMING_WAIT_MS if streaming else _IDLE_WAIT_MS)
        self.shutdown()

    def stop(self) -> None:
        """Ask the loop to finish the batch in hand and shut down (signal-safe)."""
        self._stopping = True

    def run_once(self, timeout_ms: int = 0) -> int:
        """One batch: wait up to ``timeout_ms`` for input, collect, match, reply.

        Returns the number of orders handed to the engine."""
        batch_limit = self.config.batch
        budget = self.config.latency_budget_us / 1e6
        inbound: list[Array] = []
        held = 0
        first_recv = 0
        # wait for readiness first, so that the batch's time includes decryption
        self.endpoint.wait(timeout_ms)
        started = time.perf_counter_ns()
        reading = self._routes is not None and not self.failure
        if reading:
            # the record path reads the records itself and runs them; the endpoint gets
            # what it hands back, and a poll only when it has work of its own
            held, events = self._serve(batch_limit, inbound)
            if held:
                first_recv = started
            if self.endpoint.busy():
                events += self.endpoint.poll(0, max_frames=_frames_for(max(1, batch_limit - held)), read_by_caller=True)
        else:
            events = self.endpoint.poll(0, max_frames=_frames_for(batch_limit))
        deadline = time.monotonic() + budget
        while events:
            if not first_recv and any(isinstance(ev, (Messages, SealedFixed)) for ev in events):
                first_recv = started
            held += self._handle(events, inbound)
            # a poll costs tens of microseconds even with nothing to read: the next pass
            # takes up handshake results and timers if no frame is waiting (the socket is
            # asked again even when the poll read it to empty: under load more frames
            # come while stage S runs, and they belong in this batch)
            if reading or held >= batch_limit or time.monotonic() >= deadline or not self.endpoint.readable():
                break
            events = self.endpoint.poll(0, max_frames=_frames_for(batch_limit - held))
        self._match_now(inbound)
        self.endpoint.settled()
        if first_recv:
            for ev in self.endpoint.flush():
                if isinstance(ev, Closed):
                    self._logout(ev.conn)
            self.metrics.totals.handshakes_shed = self.endpoint.handshake_frames_shed
            self._journal_totals()
            self._md_totals()
            self.metrics.batch_done(time.perf_counter_ns() - first_recv if held else 0)
            if not held:
                self.metrics.totals.batches -= 1  # no engine call: not a batch
        # snapshots after the reports are out (they wait on no one); none once the journal
        # failed: the server is going down and its books may hold what is not durable
        if self.md is not None and not self.failure:
            self.md.serve(_MD_REQUESTS_PER_PASS)
        self._finish_logouts()
        self._housekeeping()
        return held

    def _handle(self, events: list[Event], inbound: list[Array], *, left: bool = False) -> int:
        """The events of a poll, in order; with ``left`` (the records the record path left,
        counted when they came) none of their frames goes to the record path."""
        held = 0
        totals = self.metrics.totals
        for ev in events:
            if isinstance(ev, SealedFixed):
                held += self._sealed(ev, inbound)
            elif isinstance(ev, Messages):
                state = self.entry.by_conn.get(ev.conn)
                if state is None:
                    continue
                if not ev.fixed and state.kid in self._admin_kids:
                    # commands take effect in sequence: what was collected before them is matched first
                    self._match_now(inbound)
                    for command in ev.frames:
                        self._admin(ev.conn, bytes(command))
                    continue
                path = self._record_path if ev.fixed and not left else None
                for frame in ev.frames:
                    recv_ns = max(time.time_ns(), self._last_recv_ns)
                    self._last_recv_ns = recv_ns
                    if not left:
                        totals.bytes_in += len(frame) + RECORD_OVERHEAD
                    if path is not None:
                        if inbound:  # what the Python path holds came first (the path holds nothing then)
                            self._match(inbound)
                            inbound.clear()
                        path.add(state, ev.conn, frame, recv_ns)
                        held += len(frame) // _MSG
                        continue
                    self._run_path(inbound)  # what the compiled path holds came first
                    taken, closed = self._receive(ev.conn, state, frame, recv_ns, inbound)
                    held += taken
                    if closed:
                        break
            elif isinstance(ev, Established):
                if ev.kid in self.entry.by_kid:
                    self._match_now(inbound)  # the hello's marks must include what the session sent
                self._login(ev)
            elif isinstance(ev, Closed):
                self._logout(ev.conn)
        return held

    def _sealed(self, ev: SealedFixed, inbound: list[Array]) -> int:
        """A session's record as it came: to the record path, or (an admin's, or one of
        a connection without a session) opened and handled here, after what the path
        holds. Returns the records it added."""
        state = self.entry.by_conn.get(ev.conn)
        path = self._record_path
        if state is None or path is None or state.kid in self._admin_kids:
            self._run_path(inbound)
            return self._handle(self.protocol.receive_sealed(ev.conn, ev.frame, time.monotonic()), inbound)
        recv_ns = max(time.time_ns(), self._last_recv_ns)
        self._last_recv_ns = recv_ns
        self.metrics.totals.bytes_in += len(ev.frame)
        if inbound:  # what the Python path holds came first (the path holds nothing then)
            self._match(inbound)
            inbound.clear()
        path.add(state, ev.conn, ev.frame, recv_ns, sealed=True)
        return max(0, len(ev.frame) - RECORD_OVERHEAD) // _MSG

    def _receive(
        self, conn: int, state: SessionState, frame: Any, recv_ns: int, inbound: list[Array]
    ) -> tuple[int, bool]:
        """Stages F, H and S for one frame in Python (``OrderEntry.receive``): its records
        join ``inbound``, its replies are sent. Returns (records, whether the session was
        closed for its refusals)."""
        totals = self.metrics.totals
        arrival = self.entry.receive(conn, frame, recv_ns, time.monotonic())
        totals.messages_in += arrival.messages
        if arrival.inbound.size:
            inbound.append(arrival.inbound)
        if arrival.replies.size:
            totals.rejects += arrival.rejected
            self._send(conn, arrival.replies)
        if arrival.close:
            log.warning("session %d sent too many refused messages; closing it", state.session_id)
            self._close_conn(conn, CloseReason.PROTOCOL_ERROR)
        return arrival.inbound.size, arrival.close

    def _run_path(self, inbound: list[Array]) -> None:
        """Run the frames the compiled record path collected (``RecordPath``): with a
        journal, the records stage S passed are journaled before the engine runs them and
        their reports wait until they are durable, as in :meth:`_apply`; the reports and
        market data go out; the frames it left go through :meth:`_receive`, in order, and
        their records join ``inbound``."""
        path = self._record_path
        if path is None or not path.pending:
            return
        ledger = self.ledger
        try:
            outcome = path.run(
                time.monotonic(), ledger.driver, ledger.journal_batch if ledger.writer is not None else None
            )
            # a batch the journal failed on gets no answer at all (see _match)
            ledger.wait_until_durable(outcome.journal_seq)
        except Exception as exc:
            self._path_failed(exc)
            return
        self._finish_pass(outcome, inbound)

    def _path_failed(self, exc: Exception) -> None:
        """A pass of the record path raised: its journal failed, or (as in _apply) the
        engine may have run part of it, so going on would leave the live state somewhere
        no replay reaches. The server stops taking orders."""
        if not isinstance(exc, JournalError):
            log.exception("the compiled record path failed")
            exc = JournalError(f"the compiled record path failed: {exc}")
        self._journal_failed(exc)

    def _serve(self, batch_limit: int, inbound: list[Array]) -> tuple[int, list[Event]]:
        """One pass of the record path reading the socket itself (``RecordPath.serve``):
        its records run and their reports sent, then what it handed back given to the
        endpoint. Returns (messages read, the endpoint's events)."""
        path = self._record_path
        routes = self._routes
        assert path is not None and routes is not None
        ledger = self.ledger
        recv_ns = max(time.time_ns(), self._last_recv_ns)
        served: Served | None = None
        endpoint = self.endpoint
        endpoint.caller_reads()
        path.shed_hellos(endpoint.hellos_to_shed())
        # the pass may send its reports itself unless frames the session layer queued
        # must go first (then they all leave through _send_kept's queue)
        send_blocked = None if self.protocol.has_output else endpoint.backlogged
        try:
            served = path.serve(
                self._socket, routes, time.monotonic(), recv_ns, ledger.driver, batch_limit,
                ledger.journal_batch if ledger.writer is not None else None, send_blocked,
            )  # fmt: skip
            # a batch the journal failed on gets no answer at all (see _match)
            if served.outcome is not None:
                ledger.wait_until_durable(served.outcome.journal_seq)
        except Exception as exc:
            self._path_failed(exc)
            # the pass gets no further answer (without a journal its reports may have
            # left already, inside the pass); what it read and dropped or handed back is
            # the endpoint's to count and take as ever
            if served is None:
                return 0, []
            if served.shed:
                endpoint.hellos_shed(served.shed)
            return 0, self._take_handed(served.handed)
        if served.shed:
            endpoint.hellos_shed(served.shed)
        if served.frames:
            self._last_recv_ns = recv_ns
            self.metrics.totals.bytes_in += served.bytes_in
            endpoint.records_read()
        if served.outcome is not None:
            self._finish_pass(served.outcome, inbound)
        events = self._take_handed(served.handed)
        if served.stop == _serve.STOP_ERROR:
            # after the pass is answered: the socket is unusable (closed, context ended)
            raise zmq.ZMQError(served.errno)
        return served.messages, events

    def _take_handed(self, handed: list[tuple[int, bytes, bytes, int, str]]) -> list[Event]:
        """Give the endpoint what the compiled read handed back, in the order it read it."""
        endpoint = self.endpoint
        events: list[Event] = []
        for kind, rid, frame, fd, peer in handed:
            if kind == _serve.KIND_HANDSHAKE:
                endpoint.take_handshake(rid, frame, fd, peer)
            elif kind == _serve.KIND_FRAME:
                events += endpoint.take_frame(rid, frame)
            else:
                events += endpoint.take_malformed(rid)
        return events

    def _finish_pass(self, outcome: PassOutcome, inbound: list[Array]) -> None:
        """What follows a pass of the record path: the totals, the reports out, market
        data and auctions, then the frames it left, through the Python path, in order
        (their records join ``inbound``)."""
        totals = self.metrics.totals
        # counted before the reports this method sends; a pass that sent its own
        # (``outcome.sent``) counts them a few microseconds after they left, so a reader
        # in another thread may briefly see a client's report before its order here
        totals.messages_in += outcome.messages
        totals.orders += outcome.consumed
        totals.compiled_records += outcome.consumed
        totals.frames_left += len(outcome.left)
        totals.md_records += outcome.md.shape[0]
        totals.trades += outcome.trades
        for state, msgs in outcome.routed:
            for conn in state.conns:
                self._send(conn, msgs)
        if outcome.sealed:
            self._queue_sealed(outcome.sealed)
        if outcome.kept:
            self._send_kept(outcome.kept)
        elif outcome.sent is not None:
            self._account_sent(outcome.sent)
        for conn, msgs in outcome.handed:
            self._send(conn, msgs)
        # the reports leave before the market data and the bookkeeping: they are what a
        # client waits for
        for ev in self.endpoint.flush():
            if isinstance(ev, Closed):
                self._logout(ev.conn)
        if self.md is not None:
            if outcome.md.size:
                self.md.collect(outcome.md)
            self.md.flush(time.time_ns())
        if outcome.consumed:
            self._auctions(after_batch=True)
        closed: set[int] = set()
        for item in outcome.left:
            if item.sealed:
                # the session layer opens it (or counts it, or closes the session) and
                # its frames go the Python path's way, after the path's
                events = self.protocol.receive_sealed(item.conn, item.frame, time.monotonic())
                self._handle(events, inbound, left=True)
                continue
            owner = self.entry.by_conn.get(item.conn)
            if owner is None or item.conn in closed:
                continue
            if self._receive(item.conn, owner, item.frame, item.recv_time, inbound)[1]:
                closed.add(item.conn)

    def _login(self, ev: Established) -> None:
        try:
            state, hello = self.ledger.login(ev.conn, ev.kid, ev.accounts, time.monotonic())
        except LookupError as exc:
            log.error("refusing session from kid %s: %s", ev.kid.hex(), exc)
            self._close_conn(ev.conn, CloseReason.NORMAL)
            return
        except JournalError as exc:
            self._journal_failed(exc)
            self._close_conn(ev.conn, CloseReason.NORMAL)
            return
        self.metrics.totals.sessions = self.protocol.session_count
        self.metrics.handshake_done(ev.handshake_s)
        log.info("session %d (kid %s, accounts %s) connected", state.session_id, ev.kid.hex(), list(ev.accounts))
        self._send(ev.conn, np.frombuffer(hello, np.uint8).reshape(1, _MSG))

    def _logout(self, conn: int) -> None:
        """A connection ended. Its session's end (and a cancel-on-disconnect) waits until the
        batch in hand is matched (``_finish_logouts``): whatever it sent before it went is
        matched first, in journal order, and no engine command runs in the middle of a
        batch (the reports of a batch can close a connection while they are sent)."""
        self._ended.append(conn)

    def _finish_logouts(self) -> None:
        while self._ended:
            ended, self._ended = self._ended, []
            for conn in dict.fromkeys(ended):
                self._end_connection(conn)

    def _end_connection(self, conn: int) -> None:
        last = self.entry.logout(conn)
        self.metrics.totals.sessions = self.protocol.session_count
        if last is None:
            return
        log.info("session %d disconnected", last.session_id)
        if self.config.cancels_on_disconnect(last.kid):
            self._cancel_session(last)

    def _cancel_session(self, state: SessionState) -> None:
        now = self._now_ns()
        self._apply(CancelSessions(now, (state.session_id,)))

    def _close_conn(self, conn: int, reason: CloseReason) -> None:
        try:
            events = self.endpoint.close_session(conn, reason)
        except ConnectionClosed:
            events = []
        self._logout(conn)
        for ev in events:
            if isinstance(ev, Closed) and ev.conn != conn:
                self._logout(ev.conn)

    # --- admin ------------------------------------------------------------------------

    def _admin(self, conn: int, data: bytes) -> None:
        try:
            cmd = parse_command(data)
            result = self._execute(cmd)
            reply = encode_reply(True, op=cmd.op, **result)
        except AdminError as exc:
            reply = encode_reply(False, error=str(exc))
        log.info("admin session %d: %s -> %s", conn, data[:200].decode("utf-8", "replace"), reply.decode())
        try:
            for ev in self.protocol.send_messages(conn, [reply]):
                if isinstance(ev, Closed):
                    self._logout(ev.conn)
        except ConnectionClosed:
            self._logout(conn)

    def _execute(self, cmd: AdminCommand) -> dict[str, Any]:
        known = {i.security_id for i in self.config.instruments}
        if unknown := [s for s in cmd.security_ids if s not in known]:
            raise AdminError(f"security_ids: {unknown} not configured on this server")
        if cmd.op == "halt":
            self._set_phase(cmd.security_ids, PHASES["halted"])
        elif cmd.op == "phase":
            self._set_phase(cmd.security_ids, cmd.phase)
        elif cmd.op == "resume":
            # a halt reopens through the call phase (ENGINE.md §7.1): Halted -> PreOpen ->
            # Continuous, the second step being the reopening auction
            self._set_phase(cmd.security_ids, PHASES["pre-open"])
            self._set_phase(cmd.security_ids, PHASES["continuous"])
        elif cmd.op == "kill":
            if not self._apply(BlockAccounts(cmd.accounts, True)):
                raise AdminError(f"not done: {self.ledger.failure}")
            now = self._now_ns()
            if not self._apply(CancelAccounts(now, cmd.accounts)):
                raise AdminError(f"accounts blocked, but their orders not cancelled: {self.ledger.failure}")
            return {"blocked": sorted(self.entry.blocked)}
        elif cmd.op == "unblock":
            if not self._apply(BlockAccounts(cmd.accounts, False)):
                raise AdminError(f"not done: {self.ledger.failure}")
            return {"blocked": sorted(self.entry.blocked)}
        elif cmd.op == "reload":
            return self._reload_allow_list()
        elif cmd.op == "end-of-day":
            return self._end_of_day()
        return {"status": self._status_doc()}

    def _end_of_day(self) -> dict[str, Any]:
        """Close the trading day: Day orders and due GTD orders expire (ENGINE.md §3.4), and
        the per-session daily counters start again. Run by the server's wall clock, never
        by the engine."""
        now = self._now_ns()
        before = self.engine.resting_orders
        if not self._apply(EndOfDay(now)):
            raise AdminError(f"the trading day was not closed: {self.ledger.failure}")
        expired = before - self.engine.resting_orders
        for state in self.entry.by_id:
            state.rejects = 0
        if self.md is not None:
            self.md.start(now)  # a new trading day restarts the feeds' numbering (WIRE.md §6.4)
        self.trading_days_closed += 1
        self._next_eod_ns = _next_end_of_day(self.config.end_of_day, now)
        log.info("end of trading day: %d orders expired", expired)
        return {"expired": expired}

    def _scheduled_phase(self, entry: ScheduledPhase) -> None:
        """A phase change of the schedule: applied to each named instrument (every one if
        none is named) whose phase allows it (ENGINE.md §7.1); the others are logged and
        left as they are, so one halted instrument does not stop the opening of the rest. A
        halted instrument is only ever closed by the schedule, never reopened."""
        rows = self.engine.instrument_rows()
        wanted = set(entry.security_ids) or {int(s) for s in rows["sec_id"]}
        # an operator's halt stands until the operator resumes; only closing passes it
        ready = [
            int(r["sec_id"])
            for r in rows
            if int(r["sec_id"]) in wanted
            and transition_allowed(int(r["phase"]), entry.phase)
            and (int(r["phase"]) != PHASES["halted"] or entry.phase == PHASES["closed"])
        ]
        if skipped := sorted(wanted - set(ready)):
            log.warning(
                "schedule %s: instruments %s cannot move to phase %d from theirs; left as they are",
                entry.at,
                skipped,
                entry.phase,
            )
        if not ready:
            return
        try:
            self._set_phase(tuple(ready), entry.phase)
        except AdminError as exc:
            log.error("schedule %s: phase %d not applied: %s", entry.at, entry.phase, exc)
            return
        log.info("schedule %s: instruments %s now in phase %d", entry.at, ready, entry.phase)

    def _set_phase(self, security_ids: tuple[int, ...], phase: int) -> None:
        # validated before it is journaled (ENGINE.md §7.1), so a refused change leaves no record
        phases = {int(r["sec_id"]): int(r["phase"]) for r in self.engine.instrument_rows()}
        names = {code: name for name, code in PHASES.items()}
        for sec in sorted(set(security_ids)):
            if sec not in phases:
                raise AdminError(f"security_ids: {sec} is not configured on this server")
            if not transition_allowed(phases[sec], phase):
                raise AdminError(
                    f"instrument {sec}: {names.get(phases[sec], phases[sec])} -> {names.get(phase, phase)} "
                    "is not a phase change ENGINE.md §7.1 allows"
                )
        now = self._now_ns()
        try:
            done = self._apply(SetPhase(now, security_ids, phase))
        except ValueError as exc:
            raise AdminError(str(exc)) from None
        if not done:
            raise AdminError(f"not done: {self.ledger.failure}")
        if self.md is not None:
            self.md.reference_changed(security_ids, now)
        self._calling = self.engine.in_call_phase()
        self._indicative_pending = self._calling
        self._indicative_at = 0.0  # a phase change publishes at once
        self._auctions(after_batch=False)

    def _reload_allow_list(self) -> dict[str, Any]:
        try:
            allow = load_allow_list(self.config.allow_list_file)
        except QfixError as exc:
            raise AdminError(f"allow-list not reloaded: {exc}") from None
        self.protocol.set_allow_list(allow)
        warnings = _warn_unknown_kids(self.config, allow)
        revoked = [info.conn for info in self.protocol.sessions() if info.kid not in allow]
        for conn in revoked:
            self._close_conn(conn, CloseReason.NORMAL)
        for state in self.entry.by_id:
            if state.kid in allow:
                state.set_accounts(allow[state.kid].accounts)
        reply: dict[str, Any] = {"clients": len(allow), "closed_sessions": len(revoked)}
        if warnings:
            reply["warnings"] = warnings
        return reply

    def _status_doc(self) -> dict[str, Any]:
        phases = {v: k for k, v in PHASES.items()}
        t = self.metrics.totals
        return {
            "orders": t.orders,
            "trades": t.trades,
            "batches": t.batches,
            "sessions": self.protocol.session_count,
            "resting_orders": self.engine.resting_orders,
            "journal_seq": self.ledger.last_seq,
            "state_hash": self.engine.state_hash().hex(),
            "blocked_accounts": sorted(self.entry.blocked),
            "instruments": {str(int(row["sec_id"])): phases.get(int(row["phase"]), "?") for row in self.engine._insts},
        }

    def _now_ns(self) -> int:
        now = max(time.time_ns(), self._last_recv_ns)
        self._last_recv_ns = now
        return now

    def _apply(self, entry: Entry) -> bool:
        """Journal and apply one input, dispatching its output; False (having applied
        nothing) if the journal failed: the server then stops acknowledging.

        A command the engine refuses raises (``REFUSED``), having changed nothing."""
        try:
            self.ledger.apply(entry, self._dispatch)
        except JournalError as exc:
            self._journal_failed(exc)
            return False
        except REFUSED:
            raise
        except Exception as exc:
            # e.g. an auction backend's device failing: the entry is journaled but was not
            # applied, so going on would leave the live state behind what a replay makes
            # of the journal; stop as for a journal failure
            log.exception("%s failed in the engine", type(entry).__name__)
            self._journal_failed(JournalError(f"{type(entry).__name__} failed in the engine: {exc}"))
            return False
        finally:
            if self.md is not None:
                self.md.flush(time.time_ns())
        return True

    def _journal_totals(self) -> None:
        totals, writer = self.metrics.totals, self.ledger.writer
        if writer is not None:
            totals.journal_records = self.ledger.last_seq - self.ledger.recovery.last_seq
            totals.journal_bytes = writer.bytes_written
            totals.journal_wait_ns = self.ledger.wait_ns

    def _md_totals(self) -> None:
        md = self.md
        if md is not None:
            totals = self.metrics.totals
            totals.md_packets = md.endpoint.packets_sent
            totals.md_send_errors = md.send_errors
            totals.md_requests = md.requests
            totals.md_requests_busy = md.busy
            totals.md_replies_dropped = md.endpoint.replies_dropped
            totals.md_whole_snapshots = md.service.whole_snapshots
            totals.md_whole_snapshot_ns = md.service.whole_snapshot_ns

    def _journal_failed(self, exc: JournalError) -> None:
        if not self._stopping:
            log.critical("%s; the server stops taking orders and shuts down", exc)
        self.failure = str(exc)
        self.entry.accepting = False
        self._stopping = True

    # --- matching and sending -----------------------------------------------------------

    def _match_now(self, inbound: list[Array]) -> None:
        """Match what was collected so far (before an input that must come after it)."""
        self._run_path(inbound)
        if inbound:
            self._match(inbound)
            inbound.clear()

    def _match(self, inbound: list[Array]) -> None:
        batch = inbound[0] if len(inbound) == 1 else np.concatenate(inbound)
        held = batch.size
        # A batch the journal failed on gets no answer at all: whether it is on disk is
        # unknown (part of a failed write may be), so neither a report nor a reject would
        # be true. The restart decides, and the client learns it on reconnect from
        # LastClOrdID and the retransmitted reports (docs/journal.md).
        if self._apply(Batch(batch)):
            self.metrics.totals.orders += held
            self._auctions(after_batch=True)

    def _auctions(self, *, after_batch: bool) -> bool:
        """Frequent batch auctions that are due (ENGINE.md §7.6), then the indicative values
        of the instruments in a call phase (§7.3). Both change engine state, so each is
        journaled like any command, and only when it can matter: a tick after a batch, or
        later for an instrument that has had orders since its last tick (an uncross leaves
        nothing to uncross, so an idle book is not ticked again); indicative values when
        the book changed since they were last published, at most every
        ``_INDICATIVE_INTERVAL_S``, since each publication reads every resting order.
        Returns whether anything was applied (its output then waits to be flushed)."""
        if self.failure or not (self._has_fba or self._calling):
            return False
        applied = False
        now = self._now_ns()
        if after_batch:
            self._fba_pending |= self._timed_fba
            self._indicative_pending = self._calling
        due = self.engine.auction_due(now) if self._has_fba else ()
        if due and (after_batch or not self._fba_pending.isdisjoint(due)):
            before = self.engine.instrument_rows()["ref"]
            if not self._apply(AuctionTick(now)):
                return False
            applied = True
            self._fba_pending.difference_update(due)
            self._indicative_pending = self._calling
            rows = self.engine.instrument_rows()
            moved = rows["sec_id"][rows["ref"] != before]
            if self.md is not None and moved.size:
                # an uncross moves Ref and the band with it: subscribers learn the new band
                self.md.reference_changed(tuple(int(s) for s in moved), now)
        clock = time.monotonic()
        if self._calling and self._indicative_pending and clock - self._indicative_at >= _INDICATIVE_INTERVAL_S:
            self._indicative_pending = False
            self._indicative_at = clock
            applied = self._apply(PublishIndicative(now)) or applied
        return applied

    def _dispatch(self, out: Array) -> None:
        if out.size == 0:
            return
        routed, md, trades = self.entry.route(out)
        for state, msgs in routed:
            for conn in state.conns:
                self._send(conn, msgs)
        if md.size:
            totals = self.metrics.totals
            totals.md_records += md.shape[0]
            totals.trades += trades
            if self.md is not None:
                self.md.collect(md)

    def _queue_sealed(self, sealed: list[tuple[int, bytes, int]]) -> None:
        """Queue the report records the record path sealed, counted as :meth:`_send` counts."""
        proto = self.protocol
        totals = self.metrics.totals
        by_conn = self.entry.by_conn
        now = time.monotonic()
        for conn, record, msgs in sealed:
            proto.queue_sealed(conn, (record,))
            totals.bytes_out += len(record)
            totals.messages_out += msgs
            state = by_conn.get(conn)
            if state is not None:
                state.last_sent = now

    def _send_kept(self, count: int) -> None:
        """Send the report records the record path kept sealed in its arena straight onto
        the socket, to every connection nothing already waits for; the rest (a connection
        with a backlog, or the socket refused one of its records: a full pipe, a peer
        gone) is queued as :meth:`_queue_sealed` does, behind what waits, to be sent,
        held back or given up on as the endpoint decides."""
        path = self._record_path
        assert path is not None
        if self.protocol.has_output:  # frames the session layer queued go first
            self._queue_sealed(path.kept_records(range(count)))
            return
        self._account_sent(Sent(*path.send_kept(self._socket, count, self.endpoint.backlogged)))

    def _account_sent(self, sent: Sent) -> None:
        """Count the records a pass put on the socket, note when their connections last
        heard from the server, and queue the records it held back, as
        :meth:`_queue_sealed` does; a send that failed otherwise raises ZMQError."""
        if sent.count:
            totals = self.metrics.totals
            totals.bytes_out += sent.size
            totals.messages_out += sent.messages
            now = time.monotonic()
            by_conn = self.entry.by_conn
            for conn in sent.conns:
                state = by_conn.get(conn)
                if state is not None:
                    state.last_sent = now
        if sent.held:
            path = self._record_path
            assert path is not None
            self._queue_sealed(path.kept_records(sent.held))
        if sent.errno:
            raise zmq.ZMQError(sent.errno)

    def _send(self, conn: int, msgs: Array) -> None:
        """Queue ``msgs`` (n, 60) to ``conn`` in DATA_FIXED records (flushed by the loop)."""
        proto = self.protocol
        totals = self.metrics.totals
        data = np.ascontiguousarray(msgs).tobytes()
        step = _FRAME_MSGS * _MSG
        state = self.entry.by_conn.get(conn)
        try:
            for start in range(0, len(data), step):
                chunk = data[start : start + step]
                for ev in proto.send_fixed(conn, chunk):
                    if isinstance(ev, Closed):
                        self._logout(ev.conn)
                totals.bytes_out += len(chunk) + RECORD_OVERHEAD
        except ConnectionClosed:
            self._logout(conn)
            return
        totals.messages_out += msgs.shape[0]
        if state is not None:
            state.last_sent = time.monotonic()

    # --- timers -------------------------------------------------------------------------

    def _housekeeping(self) -> None:
        # a frequent-batch instrument uncrosses on time even when no order follows, and
        # indicative values held back by the interval go out
        if (self._fba_pending or self._indicative_pending) and self._auctions(after_batch=False):
            for ev in self.endpoint.flush():
                if isinstance(ev, Closed):
                    self._logout(ev.conn)
        for k, due in enumerate(self._next_phase_ns):
            if time.time_ns() >= due and not self.failure:
                self._scheduled_phase(self.config.schedule[k])
                self._next_phase_ns[k] = _next_end_of_day(self.config.schedule[k].at, time.time_ns())
        if time.time_ns() >= self._next_eod_ns and not self.failure:
            with contextlib.suppress(AdminError):  # a journal failure: the server is stopping
                self._end_of_day()
        now = time.monotonic()
        writer = self.ledger.writer
        try:
            if self.ledger.checkpoint_due(now):
                self.ledger.checkpoint()
            if writer is not None and writer.failed and not self.failure:
                self.ledger.wait_durable(writer.next_seq - 1)  # batch-async: a sync behind the loop failed
        except JournalError as exc:
            self._journal_failed(exc)
        if now >= self._next_housekeeping:
            self.ledger.collect()
            self._next_housekeeping = now + _HOUSEKEEPING_S
            interval = self.config.heartbeat_interval
            for state in self.entry.by_id:
                if state.conns and now - state.last_sent >= interval:
                    hb = np.frombuffer(self.entry.heartbeat(state, time.time_ns()), np.uint8).reshape(1, _MSG)
                    for conn in list(state.conns):
                        self._send(conn, hb)
            for ev in self.endpoint.flush():
                if isinstance(ev, Closed):
                    self._logout(ev.conn)
            self._finish_logouts()
            if self.md is not None:
                self.md.heartbeat(time.time_ns())
        if now >= self._next_status:
            self._next_status = now + self.config.status_interval
            self._md_totals()
            self.metrics.totals.sessions = self.protocol.session_count
            self.metrics.totals.handshakes_shed = self.endpoint.handshake_frames_shed
            line = self._status.render(self.metrics.totals, now)
            if self._on_status is not None:
                self._on_status(line)

    # --- shutdown -----------------------------------------------------------------------

    def shutdown(self) -> None:
        """Stop accepting orders, answer what is in hand, close every session, unbind."""
        if self.closed:
            return
        self.entry.accepting = False
        # what already arrived is answered (refused with ApplicationNotAvailable)
        self.run_once(0)
        for info in self.protocol.sessions():
            try:
                events = self.endpoint.close_session(info.conn, CloseReason.NORMAL)
            except ConnectionClosed:
                continue
            for ev in events:
                if isinstance(ev, Closed):
                    self.entry.logout(ev.conn)
            self.entry.logout(info.conn)
        self.endpoint.flush()
        self.endpoint.close()
        if self.md is not None:
            self.md.close()
        self.metrics.close()
        try:
            self.ledger.close(checkpoint=not self.failure)
        except JournalError as exc:
            log.critical("the final checkpoint or journal sync failed: %s", exc)
            self.failure = self.failure or str(exc)
        self.closed = True
        log.info("server stopped")
