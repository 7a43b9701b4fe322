"""The compiled record path (sans-I/O): a loop pass's order records opened, through
stages H and S, the engine and routing, and the reports sealed, in compiled calls
(``_pass``).

Theory of operation. While a pass collects input, every record of a trading session
(sealed, as a ``SealedFixed`` event gives it) or every plain DATA_FIXED frame is
:meth:`RecordPath.add`-ed here instead of going through the session layer and
:meth:`OrderEntry.receive` one by one. :meth:`RecordPath.run` packs what the kernel
needs (the frames, each sealed one with its connection's row of the QZMQ lease table,
one row per session with its ClOrdID mark, throttle allowance and accounts), calls it
(once; twice with a journal, which takes the passed records between stage S and the
engine), and applies what it changed to the sessions (marks, throttle, retransmission
histories). The caller gets the reports (sealed records per connection, or per session
as messages when the path has no leases), the market data and the frames the kernel
*left* (from the first one it could not take, all of them): those it hands to the
session layer and :meth:`OrderEntry.receive` in order, exactly as without this path, and
matches their records after the kernel's. The engine so sees every record in the order
it came, whichever path took it.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

import numpy as np
import numpy.typing as npt
import zmq

from qfix import native_zmq as nz
from qfix.crypto import _gcm_kernel
from qfix.engine import Engine, output_buffer
from qfix.engine import _kernels as kern
from qfix.journal.replay import EngineDriver
from qfix.qzmq import _record_kernel as rk
from qfix.server import _pass, _routing, _serve
from qfix.server.routes import Routes
from qfix.server.session import OrderEntry, SessionState
from qfix.wire import codes, schema

__all__ = ["Journal", "Leases", "Left", "PassOutcome", "RecordPath", "Served"]

Array = npt.NDArray[Any]

_MSG: Final = codes.MESSAGE_SIZE
# run() builds the kernel's tables as Python tuples, in column order
_FRAME_ORDER: Final = (
    _pass.FRAME_START,
    _pass.FRAME_BYTES,
    _pass.FRAME_SESSION,
    _pass.FRAME_RECV_TIME,
    _pass.FRAME_LEASE,
)
_SESSION_ORDER: Final = (
    _pass.SESSION_ID,
    _pass.SESSION_MARK,
    _pass.SESSION_ALLOWANCE,
    _pass.SESSION_ACCEPTING,
    _pass.SESSION_ACCOUNT,
    _pass.SESSION_ACCOUNTS_START,
    _pass.SESSION_ACCOUNTS_END,
    _pass.SESSION_ORDERS,
)
if tuple(range(_pass.FRAME_COLUMNS)) != _FRAME_ORDER or tuple(range(_pass.SESSION_COLUMNS)) != _SESSION_ORDER:
    raise ImportError("the record path's tables are built in column order; _pass renumbered them")
_NO_MESSAGES: Final = np.zeros((0, _MSG), np.uint8)
#: a sealed record's smallest size: a sealed table row per this many arena bytes
_SMALLEST_RECORD: Final = _MSG + rk.RECORD_OVERHEAD
#: the handed-back messages of one serve(): room for every handshake frame it may read
#: (the read stops when less than a frame's room is left)
_HAND_ROWS: Final = 258
#: handshake frames serve() reads after its first record until told otherwise
#: (:meth:`RecordPath.handshake_reads`; the server sets the endpoint's own limits)
_HANDSHAKES_AFTER_RECORD: Final = 8
_HAND_BYTES: Final = 8 * _serve.HAND_ROOM
_PEER_KEY: Final = np.frombuffer(b"Peer-Address\0", np.uint8).copy()
#: no known nets (read-only: never written)
_NO_NETS: Final = np.zeros(0, np.int64)

#: takes the records stage S passed, before the engine runs them; returns a sequence number
Journal = Callable[[Array], int]


class Leases(Protocol):
    """Where the path's connections lend their QZMQ record state (``ServerProtocol``)."""

    @property
    def lease_table(self) -> npt.NDArray[np.int64]: ...

    @property
    def lease_version(self) -> int: ...

    def lease(self, conn: int) -> int: ...

    def relend(self) -> None: ...

    def routing_id(self, conn: int) -> bytes | None: ...


@dataclass(slots=True)
class Left:
    """A frame the kernel left to the Python path: a sealed record for the session
    layer, then :meth:`OrderEntry.receive`, or a plain frame for the latter only."""

    conn: int
    #: the frame (bytes, as the Python path always gets them: a writable array would
    #: need stage S compiled a second time, mid-session)
    frame: bytes
    recv_time: int
    sealed: bool = False


@dataclass(slots=True)
class Sent:
    """Report records put on the socket: how many, their bytes and messages, the
    connections they went to, and the rows of the arena held back in order (for the
    caller's queue, :meth:`RecordPath.kept_records`)."""

    count: int
    size: int
    messages: int
    conns: list[int]
    held: list[int]
    #: zmq_errno of a send that failed otherwise than by a refusal (0: none): the sends
    #: stopped there, and the records after it are neither sent nor held
    errno: int = 0


@dataclass(slots=True)
class PassOutcome:
    """What one :meth:`RecordPath.run` made of the pass."""

    #: reports per session, as ``OrderEntry.route`` gives them, engine call after engine
    #: call (a session appears once per call that addressed it); only without leases
    routed: list[tuple[SessionState, Array]]
    md: Array  #: market-data messages (m, 60) in emission order
    trades: int  #: Trades among them
    messages: int  #: messages of the frames taken (every one passed stage S)
    consumed: int  #: inbound records the engine ran: all of them
    ran: Array  #: those records (a view of the path's buffer: valid until the next run)
    left: list[Left]  #: frames for the Python path, in arrival order
    calls: int = 0  #: engine calls it took (more than one when the output overflowed)
    journal_seq: int = 0  #: what the journal callback returned (0 without one)
    #: with leases: (connection, record, messages in it) for every report record the
    #: kernel sealed, in the order each connection must send them
    sealed: list[tuple[int, bytes, int]] = field(default_factory=list)
    #: with leases: (connection, messages) the kernel left for Python to seal, after
    #: that connection's sealed records, in order
    handed: list[tuple[int, Array]] = field(default_factory=list)
    #: :meth:`RecordPath.serve` only: records sealed and still in the path's arena, for
    #: :meth:`RecordPath.send_kept` (then ``sealed`` is empty); they go before ``handed``
    kept: int = 0
    #: :meth:`RecordPath.serve` with ``send_blocked``: what the pass sent itself (then
    #: ``kept`` is 0 and ``sealed`` empty; the held rows still wait in the arena)
    sent: Sent | None = None


@dataclass(slots=True)
class Served:
    """What one :meth:`RecordPath.serve` read and did."""

    #: the pass, None when no frame was taken
    outcome: PassOutcome | None
    frames: int  #: frames taken off the socket for the pass
    bytes_in: int  #: their bytes
    messages: int  #: the messages they hold, by their sizes
    #: messages handed back to the endpoint, in the order read: (kind, routing id,
    #: frame, transport descriptor, peer address), kind a ``_serve.KIND_*``
    handed: list[tuple[int, bytes, bytes, int, str]]
    stop: int  #: why reading stopped (``_serve.STOP_*``)
    errno: int = 0  #: with STOP_ERROR: zmq_errno of the failed read
    shed: int = 0  #: strangers' hellos dropped unread by Python (:meth:`RecordPath.shed_hellos`)


class RecordPath:
    """Collects the plain order frames of a pass and runs them in compiled calls.

    Args:
        entry: the session table (stage S's state and the reports' histories).
        engine: the engine the pass runs on.
        leases: the QZMQ sessions' lease table: sealed records are opened and the
            reports sealed in the kernel (``None``: frames are plain, and the reports
            come back as messages per session).
    """

    def __init__(self, entry: OrderEntry, engine: Engine, leases: Leases | None = None) -> None:
        if leases is not None and not _gcm_kernel.AVAILABLE:
            raise ValueError("sealed records need an AEAD that compiled code can call (_gcm_kernel.AVAILABLE)")
        self.entry = entry
        self.engine = engine
        self.leases = leases
        self._pending: list[tuple[int, SessionState, bytes | memoryview, int, bool]] = []
        self._inbound = np.zeros(0, schema.INBOUND)
        self._inbound_words = schema.as_words(self._inbound)
        self._plain = np.zeros(0, np.uint8)
        self._out: Array = np.zeros(0, schema.OUTPUT)
        self._bind(output_buffer(1))
        self._result = np.zeros(_pass.RESULT_FIELDS, np.int64)
        self._nonce = np.zeros(_gcm_kernel.NONCE_LEN, np.uint8)
        self._cell = np.zeros(1, np.int32)
        # the receiving connections of every session, as the kernel seals for them; built
        # again when a session or a connection comes or goes
        self._dest_conns = np.zeros((0, 2), np.int64)
        self._conn_rows = np.zeros(0, np.int64)
        self._conn_ids: list[int] = []
        self._dest_key: tuple[int, int] = (-1, -1)
        self._arena = np.zeros(0, np.uint8)
        self._sealed = np.zeros((0, _pass.SEALED_COLUMNS), np.int64)
        self._handed = np.zeros((0, _pass.HANDED_COLUMNS), np.int64)
        self._no_leases = np.zeros((0, rk.ROW_COLUMNS), np.int64)
        # serve()'s: the routing ids of _conn_ids (``_rids[at:at + len]`` per row of
        # ``_rid_at``), the read's buffers and scratch
        self._rid_at = np.zeros((0, 2), np.int64)
        self._rids = np.zeros(1, np.uint8)
        self._sent = np.zeros(_serve.SENT_FIELDS, np.int64)
        self._conn_rid_list: list[bytes] = []
        self._blocked = np.zeros(16, np.uint8)
        self._held = np.zeros(16, np.int64)
        self._frames = np.zeros(0, np.uint8)
        self._frames_table = np.zeros((0, _serve.FRAME_COLUMNS), np.int64)
        self._hand = np.zeros(_HAND_BYTES, np.uint8)
        self._hand_table = np.zeros((_HAND_ROWS, _serve.HAND_COLUMNS), np.int64)
        self._read = np.zeros(_serve.READ_FIELDS, np.int64)
        self._limits = np.zeros(_serve.LIMIT_FIELDS, np.int64)
        self._known_nets = _NO_NETS
        self._known_list: list[int] | None = None
        self.handshake_reads(_HAND_ROWS - 2, _HANDSHAKES_AFTER_RECORD)
        self._throttle = np.array([entry.table.rate, entry.table.burst], np.float64)
        self._msg = np.zeros(nz.MSG_BYTES // 8, np.int64)
        self._rid = np.zeros(_serve.MAX_ROUTING_ID, np.uint8)
        self._row_of = np.full(entry.max_sessions, -1, np.int64)
        self._pass_sessions = np.zeros((16, _pass.SESSION_COLUMNS), np.uint64)
        self.records = 0  #: inbound records run so far

    @property
    def pending(self) -> int:
        """Frames collected since the last :meth:`run`."""
        return len(self._pending)

    def add(
        self, state: SessionState, conn: int, frame: bytes | memoryview, recv_time: int, *, sealed: bool = False
    ) -> None:
        """Collect one DATA_FIXED frame of ``conn`` (a connection of ``state``), or with
        ``sealed`` (only with leases) one record of it as it came; the frame must stay
        unchanged until :meth:`run`."""
        self._pending.append((conn, state, frame, recv_time, sealed))

    def run(self, now: float, driver: EngineDriver, journal: Journal | None = None) -> PassOutcome:
        """Run the collected frames on ``driver``'s engine and output buffer; ``now`` is the
        monotonic time for the throttles. Empties the collection.

        With ``journal``, the records stage S passed are handed to it before the engine
        runs them (its return value is kept as ``PassOutcome.journal_seq``); whatever it
        raises propagates, with the engine not run. A pass whose output does not fit the
        buffer runs in several engine calls, the buffer grown between them
        (``EngineDriver.reserve``)."""
        pending, self._pending = self._pending, []
        if not pending:
            raise ValueError("no frame was collected")
        entry = self.entry
        leases = self.leases
        if leases is not None:
            leases.relend()
        stage, states, sessions = self._pack(pending, now)
        self._bind(driver.out)
        self._destinations()
        known = len(entry.by_id)
        marks, last_exec_ids = entry.journaled_marks[:known], entry.last_exec_ids[:known]
        lease_table = self._lease_table()
        if journal is None:
            _pass.run_pass(
                *stage, self._inbound, self._inbound_words, self.engine.kernel_state, self._out,
                self._out_words, marks, last_exec_ids, self._order, self._kept_rows, self._kept_ids,
                self._groups, self._out_bytes, self._dest_conns, self._conn_rows, lease_table, self._arena,
                self._sealed, self._handed, self._nonce, self._cell, self._result,
            )  # fmt: skip
        else:
            frames, table, plain, sessions_, accounts, blocked = stage
            _pass.stage_frames(
                frames, table, plain, lease_table, self._nonce, self._cell, sessions_, accounts, blocked,
                self._inbound_words, self._result,
            )  # fmt: skip
        result = self._result.tolist()
        taken = result[_pass.RESULT_FRAMES]
        passed = result[_pass.RESULT_INBOUND]
        for state, row_after in zip(states, sessions.tolist(), strict=True):
            state.hwm = row_after[_pass.SESSION_MARK]
            if row_after[_pass.SESSION_ORDERS]:
                state.bucket.spend(row_after[_pass.SESSION_ORDERS])
        outcome = PassOutcome(
            routed=[],
            md=_NO_MESSAGES,
            trades=0,
            messages=passed,
            consumed=0,
            ran=self._inbound[:passed],
            left=[Left(conn, bytes(frame), t, sealed) for conn, _, frame, t, sealed in pending[taken:]],
        )
        if passed:
            self._engine_calls(outcome, result, passed, marks, last_exec_ids, driver, journal, keep=False)
        return outcome

    def _engine_calls(
        self,
        outcome: PassOutcome,
        result: list[int],
        passed: int,
        marks: Array,
        last_exec_ids: Array,
        driver: EngineDriver,
        journal: Journal | None,
        *,
        keep: bool,
    ) -> None:
        """The ``passed`` records stage S passed, after the kernel (``result``): with
        ``journal``, handed to it and then run by the engine (the kernel stopped after
        stage S); the engine call's output taken into ``outcome``, and the engine called
        again, on a larger buffer, until it has run them all. With ``keep``, a single
        call's sealed records stay in the arena (``outcome.kept``)."""
        if journal is not None:
            outcome.journal_seq = journal(self._inbound[:passed])
            self._match(0, passed, marks, last_exec_ids)
            result = self._result.tolist()
        entry = self.entry
        md_parts = []
        while True:
            status = result[_pass.RESULT_STATUS]
            if status == kern.STATUS_BAD:  # stage S passed it: a bug, not input
                raise RuntimeError("the engine refused a record stage S had passed")
            written = result[_pass.RESULT_WRITTEN]
            self.engine.after_kernel(self._out, written)
            out_messages = self._out_messages
            groups = self._groups[: result[_pass.RESULT_GROUPS]]
            ends = entry.file_reports(out_messages, groups, self._kept_rows, self._kept_ids)
            if self.leases is None:
                routed, md = entry.deliveries(out_messages, self._order[:written], ends, result[_pass.RESULT_MD])
                outcome.routed += routed
            else:
                md = entry.market_data(out_messages, self._order[:written], result[_pass.RESULT_MD])
                if result[_pass.RESULT_ARENA_NEEDED]:
                    self._grow_arena(result[_pass.RESULT_ARENA_NEEDED], groups.shape[0])
                    result = self._result.tolist()
                self._take_sealed(result, groups, out_messages, outcome, keep)
            if md.size:
                md_parts.append(md)
            outcome.trades += result[_pass.RESULT_TRADES]
            outcome.consumed += result[_pass.RESULT_CONSUMED]
            outcome.calls += 1
            if outcome.consumed == passed:
                break
            # the next call seals into the arena again: what it holds leaves as bytes
            self._release_kept(outcome)
            keep = False
            # the output did not fit: a larger buffer for the rest (and the next passes)
            needed = result[_pass.RESULT_NEEDED]
            driver.reserve(max(needed, 2 * driver.out_size))
            if driver.out_size < needed:
                raise RuntimeError(f"the engine needs {needed} output records, over the worst case {driver.worst_case}")
            self._bind(driver.out)
            self._match(outcome.consumed, passed, marks, last_exec_ids)
            result = self._result.tolist()
        if md_parts:
            outcome.md = np.concatenate(md_parts) if len(md_parts) > 1 else md_parts[0]
        self.records += outcome.consumed

    def _pack(
        self, pending: list[tuple[int, SessionState, bytes | memoryview, int, bool]], now: float
    ) -> tuple[tuple[Array, Array, Array, Array, Array, Array], list[SessionState], Array]:
        """The kernel's inputs for stages H and S: (frames, frames_table, plain, sessions,
        accounts, blocked), the pass's sessions in row order and their table. Grows the
        inbound buffer to the pass's messages and the plaintext buffer to its bytes."""
        entry = self.entry
        leases = self.leases
        # built in Python lists and converted once: NumPy's per-item assignments would
        # cost more than the kernel itself
        rows: dict[int, int] = {}
        states: list[SessionState] = []
        table = []
        chunks = []
        at = 0
        for conn, state, frame, recv_time, sealed in pending:
            row = rows.get(state.session_id)
            if row is None:
                row = rows[state.session_id] = len(states)
                states.append(state)
            size = len(frame)
            lease = _pass.FRAME_PLAIN
            if sealed:
                lease = leases.lease(conn) if leases is not None else -1
                if lease < 0:
                    lease = _pass.FRAME_NOT_LEASED
            table.append((at, size, row, recv_time, lease))
            chunks.append(frame)
            at += size
        frames = np.frombuffer(b"".join(chunks), np.uint8)
        if self._plain.size < at:
            # read as 32-bit words: a multiple of 4 long
            self._plain = np.zeros(max(at + 3 & ~3, 2 * self._plain.size), np.uint8)
        accepting = entry.accepting
        session_rows = []
        parts = []
        start = 0
        for state in states:
            own = state.sorted_accounts
            parts.append(own)
            end = start + own.size
            allowance = state.bucket.available(now) if accepting else 0
            account = state.session_account if own.size else 0
            session_rows.append((state.session_id, state.hwm, allowance, accepting, account, start, end, 0))
            start = end
        sessions = np.array(session_rows, np.uint64)
        accounts = np.concatenate(parts) if len(parts) > 1 else parts[0]
        messages = at // _MSG
        if self._inbound.size < messages:
            self._inbound = np.zeros(max(messages, 2 * self._inbound.size), schema.INBOUND)
            self._inbound_words = schema.as_words(self._inbound)
        table_array = np.array(table, np.int64)
        return (frames, table_array, self._plain, sessions, accounts, entry.blocked_sorted), states, sessions

    def _lease_table(self) -> Array:
        return self.leases.lease_table if self.leases is not None else self._no_leases

    def _destinations(self) -> None:
        """The receiving connections of every session and their lease rows, for the
        kernel's sealing (rebuilt only when a session, a connection or a row changed)."""
        leases = self.leases
        if leases is None or (self.entry.conns_version, leases.lease_version) == self._dest_key:
            return
        rows: list[int] = []
        ids: list[int] = []
        dest = []
        rids: list[bytes] = []
        rid_at = []
        at = 0
        for state in self.entry.by_id:
            start = len(rows)
            for conn in state.conns:
                rows.append(leases.lease(conn))
                ids.append(conn)
                rid = leases.routing_id(conn) or b""
                rids.append(rid)
                rid_at.append((at, len(rid)))
                at += len(rid)
            dest.append((start, len(rows)))
        self._dest_conns = np.array(dest, np.int64).reshape(-1, 2)
        self._conn_rows = np.array(rows, np.int64)
        self._conn_ids = ids
        self._rid_at = np.array(rid_at, np.int64).reshape(-1, 2)
        self._conn_rid_list = rids
        self._rids = np.frombuffer(b"".join(rids) + b"\0", np.uint8).copy()
        # a connection is handed back at most once per engine call
        self._handed = np.zeros((max(1, len(ids)), _pass.HANDED_COLUMNS), np.int64)
        self._dest_key = (self.entry.conns_version, leases.lease_version)

    def _grow_arena(self, needed: int, count: int) -> None:
        """Make the arena hold ``needed`` bytes and seal the call's ``count`` groups again."""
        self._arena = np.zeros(max(needed, 2 * self._arena.size), np.uint8)
        self._sealed = np.zeros((self._arena.size // _SMALLEST_RECORD + 1, _pass.SEALED_COLUMNS), np.int64)
        _pass.seal_groups(
            self._out_bytes, self._order, self._groups, count, self._dest_conns, self._conn_rows,
            self._lease_table(), self._arena, self._sealed, self._handed, self._nonce, self._cell, self._result,
        )  # fmt: skip

    def _take_sealed(self, result: list[int], groups: Array, messages: Array, outcome: PassOutcome, keep: bool) -> None:
        """The records the kernel sealed (as bytes, or with ``keep`` left in the arena),
        and what it handed back, into ``outcome``."""
        if keep:
            outcome.kept = result[_pass.RESULT_SEALED]
        else:
            outcome.sealed += self.kept_records(range(result[_pass.RESULT_SEALED]))
        handed = result[_pass.RESULT_HANDED]
        if handed:
            ends = groups[:, _routing.GROUP_END].tolist()
            order = self._order
            conn_ids = self._conn_ids
            for g, c, first in self._handed[:handed].tolist():
                begin = ends[g - 1] if g else 0
                outcome.handed.append((conn_ids[c], messages[order[begin + first : ends[g]]]))

    def kept_records(self, rows: list[int] | range) -> list[tuple[int, bytes, int]]:
        """Sealed records of the arena (its ``rows``, in that order) as (connection,
        record, messages in it), for the Python queue."""
        arena = self._arena
        conn_ids = self._conn_ids
        sealed = self._sealed
        out = []
        for r in rows:
            c, start, size, msgs = sealed[r].tolist()
            out.append((conn_ids[c], arena[start : start + size].tobytes(), msgs))
        return out

    def _release_kept(self, outcome: PassOutcome) -> None:
        if outcome.kept:
            outcome.sealed += self.kept_records(range(outcome.kept))
            outcome.kept = 0

    def send_kept(
        self, sock: int, count: int, blocked: AbstractSet[bytes]
    ) -> tuple[int, int, int, list[int], list[int]]:
        """Send the first ``count`` records the last :meth:`serve` kept in the arena on
        ROUTER socket ``sock`` (its libzmq handle), each as [routing id, record], in
        order, except to the routing ids of ``blocked`` (something already waits to go
        to them) and to a connection from the record the socket refuses on (a full
        pipe, a peer gone). Returns (records sent, their bytes, their messages, the
        connections they went to, the records held back in order: for the caller's
        queue, :meth:`kept_records`); a send that failed otherwise raises ZMQError."""
        mask = self._blocked_mask(blocked)
        if self._held.size < count:
            self._held = np.zeros(2 * count, np.int64)
        _serve.send_sealed(
            sock, self._sealed, count, self._arena, self._rid_at, self._rids, mask, self._held, self._sent
        )  # fmt: skip
        sent = self._sent_records(count)
        if sent.errno:
            raise zmq.ZMQError(sent.errno)
        return sent.count, sent.size, sent.messages, sent.conns, sent.held

    def _blocked_mask(self, blocked: AbstractSet[bytes]) -> Array:
        """Per receiving connection (``_conn_ids``), 1 if its routing id is in ``blocked``."""
        mask = self._blocked
        if mask.size < len(self._conn_ids):
            mask = self._blocked = np.zeros(2 * len(self._conn_ids), np.uint8)
        mask[:] = 0
        if blocked:
            for c, rid in enumerate(self._conn_rid_list):
                mask[c] = rid in blocked
        return mask

    def _sent_records(self, count: int) -> Sent:
        """What ``send_sealed`` made of the first ``count`` sealed records (``_sent``,
        ``_held``)."""
        n, code, size, msgs, n_held, _ = self._sent.tolist()
        conn_ids = self._conn_ids
        held = self._held[:n_held].tolist()
        if n_held:
            rows = np.delete(self._sealed[:count, _pass.SEALED_CONN], held)
        else:
            rows = self._sealed[:count, _pass.SEALED_CONN]
        conns = {conn_ids[c] for c in rows.tolist()}
        return Sent(n, size, msgs, list(conns), held, abs(code))

    def serve(
        self,
        sock: int,
        routes: Routes,
        now: float,
        recv_time: int,
        driver: EngineDriver,
        messages: int,
        journal: Journal | None = None,
        send_blocked: AbstractSet[bytes] | None = None,
    ) -> Served:
        """Read a pass's records off ROUTER socket ``sock`` (its libzmq handle) and run
        them (``_serve.serve_pass``): the frames of ``routes``' connections are opened and
        go through stages H and S and the engine, and the reports are sealed and kept in
        the arena (``PassOutcome.kept``, for :meth:`send_kept`). Reads until the frames
        hold ``messages`` messages, the socket is empty, or a message it must hand back
        (``Served.handed``: the endpoint's to take, after the pass). ``now`` is the
        monotonic time for the throttles, ``recv_time`` every frame's RecvTime;
        ``journal`` as in :meth:`run`. With leases only; nothing may be collected by
        :meth:`add`.

        With ``send_blocked`` (the routing ids something already waits to go to, as
        :meth:`send_kept` takes them) and no journal, a pass that one engine call ran
        whole sends its records itself, as :meth:`send_kept` would right after it
        (``PassOutcome.sent``); the caller must have nothing else queued to go first.
        A pass that needed more engine calls or a larger arena keeps them as ever."""
        leases = self.leases
        if leases is None or self._pending:
            raise ValueError("serve() needs leases and no frame collected by add()")
        leases.relend()
        routes.refresh()
        self._bind(driver.out)
        self._destinations()
        self._reserve(messages)
        entry = self.entry
        table = entry.table
        known = len(entry.by_id)
        marks, last_exec_ids = entry.journaled_marks[:known], entry.last_exec_ids[:known]
        self._limits[_serve.LIMIT_MESSAGES] = messages
        if self._pass_sessions.shape[0] < routes.slots.shape[0]:
            self._pass_sessions = np.zeros((2 * routes.slots.shape[0], _pass.SESSION_COLUMNS), np.uint64)
        # with a journal the reports wait until durable: the pass never sends them
        send_to = send_blocked if journal is None else None
        mask = self._blocked_mask(send_to) if send_to is not None else self._blocked
        if self._held.size < self._sealed.shape[0]:
            self._held = np.zeros(self._sealed.shape[0], np.int64)
        _serve.serve_pass(
            sock, self._msg, self._rid, _PEER_KEY, routes.keys, routes.key_slots, routes.slots, self._limits,
            self._known_nets, recv_time, self._frames, self._frames_table, self._hand, self._hand_table, self._read,
            table.marks,
            table.tokens, table.refilled, self._throttle, now, int(entry.accepting), routes.ranges, self._row_of,
            self._pass_sessions, routes.accounts, entry.blocked_sorted, self._plain, self._inbound,
            self._inbound_words, self.engine.kernel_state, self._out, self._out_words, marks, last_exec_ids,
            self._order, self._kept_rows, self._kept_ids, self._groups, self._out_bytes, self._dest_conns,
            self._conn_rows, leases.lease_table, self._arena, self._sealed, self._handed, self._nonce, self._cell,
            self._result, journal is None, send_to is not None, self._rid_at, self._rids, mask, self._held,
            self._sent,
        )  # fmt: skip
        read = self._read.tolist()
        count = read[_serve.READ_FRAMES]
        handed = read[_serve.READ_HANDED]
        served = Served(
            None, count, read[_serve.READ_BYTES], read[_serve.READ_MESSAGES],
            self._handed_back(handed) if handed else [], read[_serve.READ_STOP], read[_serve.READ_ERRNO],
            read[_serve.READ_SHED],
        )  # fmt: skip
        if not count:
            return served
        result = self._result.tolist()
        taken = result[_pass.RESULT_FRAMES]
        passed = result[_pass.RESULT_INBOUND]
        left = []
        if taken < count:
            frames = self._frames
            conns = routes.conns
            for at, size, _, _, _, slot in self._frames_table[taken:count].tolist():
                left.append(Left(conns[slot], frames[at : at + size].tobytes(), recv_time, True))
        outcome = served.outcome = PassOutcome(
            routed=[], md=_NO_MESSAGES, trades=0, messages=passed, consumed=0, ran=self._inbound[:passed], left=left
        )
        if passed:
            self._engine_calls(outcome, result, passed, marks, last_exec_ids, driver, journal, keep=True)
            if self._sent[_serve.SENT_BY_PASS]:
                outcome.sent = self._sent_records(outcome.kept)
                outcome.kept = 0
        return served

    def shed_hellos(self, known_nets: list[int] | None) -> None:
        """Whether the next :meth:`serve` calls drop strangers' hellos as they read them:
        None hands every handshake frame back; a list (the IPv4 nets, as integers, of
        known clients, whose hellos are always handed back) drops the CLIENT_HELLOs of
        every other IPv4 peer, as the endpoint does while handshakes are over their
        share of the loop (``Served.shed`` counts them)."""
        if known_nets is None:
            self._limits[_serve.LIMIT_SHED] = 0
            return
        self._limits[_serve.LIMIT_SHED] = 1
        if known_nets is not self._known_list:  # the endpoint hands the same list while it holds
            self._known_list = known_nets
            self._known_nets = np.array(sorted(known_nets), np.int64) if known_nets else _NO_NETS

    def handshake_reads(self, most: int, after_record: int) -> None:
        """How many handshake frames :meth:`serve` reads at most, and at most after its
        first record (the endpoint's own limits, ``qzmq.adapter``)."""
        if not 0 < most <= _HAND_ROWS - 2:
            raise ValueError(f"serve() reads 1 to {_HAND_ROWS - 2} handshake frames, not {most}")
        self._limits[_serve.LIMIT_HANDSHAKES] = most
        self._limits[_serve.LIMIT_AFTER_RECORD] = after_record

    def _reserve(self, messages: int) -> None:
        """Buffers for a served pass of up to ``messages`` messages (reading stops past
        them, so the last frame may bring a record's most)."""
        frames_bytes = messages * _SMALLEST_RECORD + _serve.MAX_FRAME
        if self._frames.size >= frames_bytes:
            return
        self._frames = np.zeros(frames_bytes, np.uint8)
        self._frames_table = np.zeros((messages + 1, _serve.FRAME_COLUMNS), np.int64)
        if self._plain.size < frames_bytes:
            self._plain = np.zeros(frames_bytes + 3 & ~3, np.uint8)
        most = messages + codes.MAX_MSGS_PER_FRAME
        if self._inbound.size < most:
            self._inbound = np.zeros(most, schema.INBOUND)
            self._inbound_words = schema.as_words(self._inbound)

    def _handed_back(self, count: int) -> list[tuple[int, bytes, bytes, int, str]]:
        hand = self._hand
        out = []
        for kind, rid_at, rid_len, at, size, fd, peer_at, peer_len in self._hand_table[:count].tolist():
            peer = hand[peer_at : peer_at + peer_len].tobytes().decode("ascii", "replace")
            out.append((kind, hand[rid_at : rid_at + rid_len].tobytes(), hand[at : at + size].tobytes(), fd, peer))
        return out

    def _bind(self, out: Array) -> None:
        """Make ``out`` the engine's output buffer (its views and routing's scratch)."""
        if out is self._out:
            return
        n = out.size
        self._out = out
        self._out_words = schema.as_words(out)
        self._out_bytes = out.view(np.uint8).reshape(n, out.dtype.itemsize)
        self._out_messages = out["message"]
        self._order = np.empty(n, np.int64)
        self._kept_rows = np.empty(n, np.int64)
        self._kept_ids = np.empty(n, np.uint64)
        self._groups = np.empty((n, _routing.GROUP_COLUMNS), np.int64)

    def _match(self, start: int, end: int, marks: Array, last_exec_ids: Array) -> None:
        _pass.match_records(
            self._inbound, self._inbound_words, start, end, self.engine.kernel_state, self._out, self._out_words,
            marks, last_exec_ids, self._order, self._kept_rows, self._kept_ids, self._groups, self._out_bytes,
            self._dest_conns, self._conn_rows, self._lease_table(), self._arena, self._sealed, self._handed,
            self._nonce, self._cell, self._result,
        )  # fmt: skip
