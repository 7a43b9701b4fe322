"""The compiled record path (sans-I/O): a loop pass's plain order frames through stages
H and S, the engine and routing in compiled calls (``_pass``).

Theory of operation. While a pass collects input, every DATA_FIXED frame of a trading
session is :meth:`RecordPath.add`-ed here instead of going through
:meth:`OrderEntry.receive` one by one. :meth:`RecordPath.run` packs what the kernel
needs (the frames, one row per session with its ClOrdID mark, throttle allowance and
accounts), calls it (once; twice with a journal, which takes the passed records between
stage S and the engine), and applies what it changed to the sessions (marks, throttle,
retransmission histories). The caller gets the reports per session, the market data and
the frames the kernel *left* (from the first one it could not take, all of them): those
it hands to :meth:`OrderEntry.receive` in order, exactly as without this path, and
matches their records after the kernel's. The engine so sees every record in the order
it came, whichever path took it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from qfix.engine import Engine, output_buffer
from qfix.engine import _kernels as kern
from qfix.journal.replay import EngineDriver
from qfix.server import _pass, _routing
from qfix.server.session import OrderEntry, SessionState
from qfix.wire import codes, schema

__all__ = ["Journal", "Left", "PassOutcome", "RecordPath"]

Array = npt.NDArray[Any]

_MSG: Final = codes.MESSAGE_SIZE
# run() builds the kernel's tables as Python tuples, in column order
_FRAME_ORDER: Final = (_pass.FRAME_START, _pass.FRAME_BYTES, _pass.FRAME_SESSION, _pass.FRAME_RECV_TIME)
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

#: takes the records stage S passed, before the engine runs them; returns a sequence number
Journal = Callable[[Array], int]


@dataclass(slots=True)
class Left:
    """A frame the kernel left to the Python path (:meth:`OrderEntry.receive`)."""

    conn: int
    #: the frame (bytes, as the Python path always gets them: a writable array would
    #: need stage S compiled a second time, mid-session)
    frame: bytes
    recv_time: int


@dataclass(slots=True)
class PassOutcome:
    """What one :meth:`RecordPath.run` made of the pass."""

    #: reports per session, as ``OrderEntry.route`` gives them, engine call after engine
    #: call (a session appears once per call that addressed it)
    routed: list[tuple[SessionState, Array]]
    md: Array  #: market-data messages (m, 60) in emission order
    trades: int  #: Trades among them
    messages: int  #: messages of the frames taken (every one passed stage S)
    consumed: int  #: inbound records the engine ran: all of them
    ran: Array  #: those records (a view of the path's buffer: valid until the next run)
    left: list[Left]  #: frames for the Python path, in arrival order
    calls: int = 0  #: engine calls it took (more than one when the output overflowed)
    journal_seq: int = 0  #: what the journal callback returned (0 without one)


class RecordPath:
    """Collects the plain order frames of a pass and runs them in compiled calls.

    Args:
        entry: the session table (stage S's state and the reports' histories).
        engine: the engine the pass runs on.
    """

    def __init__(self, entry: OrderEntry, engine: Engine) -> None:
        self.entry = entry
        self.engine = engine
        self._pending: list[tuple[int, SessionState, bytes | memoryview, int]] = []
        self._inbound = np.zeros(0, schema.INBOUND)
        self._inbound_words = schema.as_words(self._inbound)
        self._out: Array = np.zeros(0, schema.OUTPUT)
        self._bind(output_buffer(1))
        self._result = np.zeros(_pass.RESULT_FIELDS, np.int64)
        self.records = 0  #: inbound records run so far

    @property
    def pending(self) -> int:
        """Frames collected since the last :meth:`run`."""
        return len(self._pending)

    def add(self, state: SessionState, conn: int, frame: bytes | memoryview, recv_time: int) -> None:
        """Collect one DATA_FIXED frame of ``conn`` (a connection of ``state``); the frame
        must stay unchanged until :meth:`run`."""
        self._pending.append((conn, state, frame, recv_time))

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
        stage, states, sessions = self._pack(pending, now)
        self._bind(driver.out)
        known = len(entry.by_id)
        marks, last_exec_ids = entry.journaled_marks[:known], entry.last_exec_ids[:known]
        if journal is None:
            _pass.run_pass(
                *stage, self._inbound, self._inbound_words, self.engine.kernel_state, self._out,
                self._out_words, marks, last_exec_ids, self._order, self._kept_rows, self._kept_ids,
                self._groups, self._result,
            )  # fmt: skip
        else:
            _pass.stage_frames(*stage, self._inbound_words, self._result)
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
            left=[Left(conn, bytes(frame), t) for conn, _, frame, t in pending[taken:]],
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
            ends = entry.file_reports(
                out_messages, self._groups[: result[_pass.RESULT_GROUPS]], self._kept_rows, self._kept_ids
            )
            routed, md = entry.deliveries(out_messages, self._order[:written], ends, result[_pass.RESULT_MD])
            outcome.routed += routed
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
        self, pending: list[tuple[int, SessionState, bytes | memoryview, int]], now: float
    ) -> tuple[tuple[Array, Array, Array, Array, Array], list[SessionState], Array]:
        """The kernel's inputs for stage S: (frames, frames_table, sessions, accounts,
        blocked), the pass's sessions in row order and their table. Grows the inbound
        buffer to the pass's messages."""
        entry = self.entry
        # built in Python lists and converted once: NumPy's per-item assignments would
        # cost more than the kernel itself
        rows: dict[int, int] = {}
        states: list[SessionState] = []
        table = []
        chunks = []
        at = 0
        for _, state, frame, recv_time in pending:
            row = rows.get(state.session_id)
            if row is None:
                row = rows[state.session_id] = len(states)
                states.append(state)
            size = len(frame)
            table.append((at, size, row, recv_time))
            chunks.append(frame)
            at += size
        chunks.append(bytes(-at % 4))  # the kernel reads the frames as 32-bit words
        frames = np.frombuffer(b"".join(chunks), np.uint8)
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
        return (frames, np.array(table, np.int64), sessions, accounts, entry.blocked_sorted), states, sessions

    def _bind(self, out: Array) -> None:
        """Make ``out`` the engine's output buffer (its views and routing's scratch)."""
        if out is self._out:
            return
        n = out.size
        self._out = out
        self._out_words = schema.as_words(out)
        self._out_messages = out["message"]
        self._order = np.empty(n, np.int64)
        self._kept_rows = np.empty(n, np.int64)
        self._kept_ids = np.empty(n, np.uint64)
        self._groups = np.empty((n, _routing.GROUP_COLUMNS), np.int64)

    def _match(self, start: int, end: int, marks: Array, last_exec_ids: Array) -> None:
        _pass.match_records(
            self._inbound, self._inbound_words, start, end, self.engine.kernel_state, self._out, self._out_words,
            marks, last_exec_ids, self._order, self._kept_rows, self._kept_ids, self._groups, self._result,
        )  # fmt: skip
