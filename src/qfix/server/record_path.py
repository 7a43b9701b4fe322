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
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

import numpy as np
import numpy.typing as npt

from qfix.crypto import _gcm_kernel
from qfix.engine import Engine, output_buffer
from qfix.engine import _kernels as kern
from qfix.journal.replay import EngineDriver
from qfix.qzmq import _record_kernel as rk
from qfix.server import _pass, _routing
from qfix.server.session import OrderEntry, SessionState
from qfix.wire import codes, schema

__all__ = ["Journal", "Leases", "Left", "PassOutcome", "RecordPath"]

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
        if not passed:
            return outcome
        if journal is not None:
            outcome.journal_seq = journal(self._inbound[:passed])
            self._match(0, passed, marks, last_exec_ids)
            result = self._result.tolist()
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
            if leases is None:
                routed, md = entry.deliveries(out_messages, self._order[:written], ends, result[_pass.RESULT_MD])
                outcome.routed += routed
            else:
                md = entry.market_data(out_messages, self._order[:written], result[_pass.RESULT_MD])
                if result[_pass.RESULT_ARENA_NEEDED]:
                    self._grow_arena(result[_pass.RESULT_ARENA_NEEDED], groups.shape[0])
                    result = self._result.tolist()
                self._take_sealed(result, groups, out_messages, outcome)
            if md.size:
                md_parts.append(md)
            outcome.trades += result[_pass.RESULT_TRADES]
            outcome.consumed += result[_pass.RESULT_CONSUMED]
            outcome.calls += 1
            if outcome.consumed == passed:
                break
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
        return outcome

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
        for state in self.entry.by_id:
            start = len(rows)
            for conn in state.conns:
                rows.append(leases.lease(conn))
                ids.append(conn)
            dest.append((start, len(rows)))
        self._dest_conns = np.array(dest, np.int64).reshape(-1, 2)
        self._conn_rows = np.array(rows, np.int64)
        self._conn_ids = ids
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

    def _take_sealed(self, result: list[int], groups: Array, messages: Array, outcome: PassOutcome) -> None:
        """The records the kernel sealed, and what it handed back, into ``outcome``."""
        arena = self._arena
        conn_ids = self._conn_ids
        for c, start, size, msgs in self._sealed[: result[_pass.RESULT_SEALED]].tolist():
            outcome.sealed.append((conn_ids[c], arena[start : start + size].tobytes(), msgs))
        handed = result[_pass.RESULT_HANDED]
        if handed:
            ends = groups[:, _routing.GROUP_END].tolist()
            order = self._order
            for g, c, first in self._handed[:handed].tolist():
                begin = ends[g - 1] if g else 0
                outcome.handed.append((conn_ids[c], messages[order[begin + first : ends[g]]]))

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
