"""The compiled record path (sans-I/O): a loop pass's plain order frames through stages
H and S, the engine and routing in one call (``_pass.run_pass``).

Theory of operation. While a pass collects input, every DATA_FIXED frame of a trading
session is :meth:`RecordPath.add`-ed here instead of going through
:meth:`OrderEntry.receive` one by one. :meth:`RecordPath.run` packs what the kernel
needs (the frames, one row per session with its ClOrdID mark, throttle allowance and
accounts), calls it once, and applies what it changed to the sessions (marks, throttle,
retransmission histories). The caller gets the reports per session, the market data and
the frames the kernel *left* (from the first one it could not take, all of them): those
it hands to :meth:`OrderEntry.receive` in order, exactly as without this path, and
matches their records after the kernel's. The engine so sees every record in the order
it came, whichever path took it.

It serves only a server without a journal: a journaled batch must be written before the
engine runs it, which the kernel does not do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from qfix.engine import Engine
from qfix.engine import _kernels as kern
from qfix.server import _pass, _routing
from qfix.server.session import OrderEntry, SessionState
from qfix.wire import codes, schema

__all__ = ["Left", "PassOutcome", "RecordPath"]

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
if _FRAME_ORDER != tuple(range(_pass.FRAME_COLUMNS)) or _SESSION_ORDER != tuple(range(_pass.SESSION_COLUMNS)):
    raise ImportError("the record path's tables are built in column order; _pass renumbered them")
_NO_INBOUND: Final = np.zeros(0, schema.INBOUND)


@dataclass(slots=True)
class Left:
    """A frame the kernel left to the Python path (:meth:`OrderEntry.receive`)."""

    conn: int
    frame: Array  #: the frame's bytes (a copy: the pass's buffer is reused)
    recv_time: int


@dataclass(slots=True)
class PassOutcome:
    """What one :meth:`RecordPath.run` made of the pass."""

    routed: list[tuple[SessionState, Array]]  #: reports per session, as ``OrderEntry.route``
    md: Array  #: market-data messages (m, 60) in emission order
    trades: int  #: Trades among them
    messages: int  #: messages of the frames taken
    consumed: int  #: inbound records the engine ran
    ran: Array  #: those records (a view of the path's buffer: valid until the next run)
    rest: Array  #: inbound records passed but not run (the output buffer filled): run them next
    left: list[Left]  #: frames for the Python path, in arrival order
    output: Array  #: the engine's output of the call (what ``routed`` and ``md`` came from)


class RecordPath:
    """Collects the plain order frames of a pass and runs them in one compiled call.

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
        self._out: Array | None = None
        self._result = np.zeros(_pass.RESULT_FIELDS, np.int64)

    @property
    def pending(self) -> int:
        """Frames collected since the last :meth:`run`."""
        return len(self._pending)

    def add(self, state: SessionState, conn: int, frame: bytes | memoryview, recv_time: int) -> None:
        """Collect one DATA_FIXED frame of ``conn`` (a connection of ``state``); the frame
        must stay unchanged until :meth:`run`."""
        self._pending.append((conn, state, frame, recv_time))

    def run(self, now: float, out: Array) -> PassOutcome:
        """Run the collected frames into ``out`` (the engine's output buffer); ``now`` is
        the monotonic time for the throttles. Empties the collection."""
        pending, self._pending = self._pending, []
        if not pending:
            raise ValueError("no frame was collected")
        entry = self.entry
        # what the kernel reads, built in Python lists and converted once: NumPy's
        # per-item assignments would cost more than the kernel itself
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
        if out is not self._out:
            n = out.size
            self._out = out
            self._out_words = schema.as_words(out)
            self._out_messages = out["message"]
            self._order = np.empty(n, np.int64)
            self._kept_rows = np.empty(n, np.int64)
            self._kept_ids = np.empty(n, np.uint64)
            self._groups = np.empty((n, _routing.GROUP_COLUMNS), np.int64)
        known = len(entry.by_id)
        _pass.run_pass(
            frames,
            np.array(table, np.int64),
            sessions,
            accounts,
            entry.blocked_sorted,
            self._inbound,
            self._inbound_words,
            self.engine.kernel_state,
            out,
            self._out_words,
            entry.journaled_marks[:known],
            entry.last_exec_ids[:known],
            self._order,
            self._kept_rows,
            self._kept_ids,
            self._groups,
            self._result,
        )
        result = self._result.tolist()
        taken = result[_pass.RESULT_FRAMES]
        passed = result[_pass.RESULT_INBOUND]
        status = result[_pass.RESULT_STATUS]
        consumed = result[_pass.RESULT_CONSUMED]
        written = result[_pass.RESULT_WRITTEN]
        count = result[_pass.RESULT_GROUPS]
        md_count = result[_pass.RESULT_MD]
        if status == kern.STATUS_BAD:  # stage S passed it: a bug, not input
            raise RuntimeError("the engine refused a record stage S had passed")
        if passed:
            self.engine.after_kernel(out, written)
        for state, row_after in zip(states, sessions.tolist(), strict=True):
            state.hwm = row_after[_pass.SESSION_MARK]
            if row_after[_pass.SESSION_ORDERS]:
                state.bucket.spend(row_after[_pass.SESSION_ORDERS])
        out_messages = self._out_messages
        ends = entry.file_reports(out_messages, self._groups[:count], self._kept_rows, self._kept_ids)
        routed, md = entry.deliveries(out_messages, self._order[:written], ends, md_count)
        left = [
            Left(conn, np.frombuffer(frame, np.uint8).copy(), recv_time)
            for conn, _, frame, recv_time in pending[taken:]
        ]
        return PassOutcome(
            routed=routed,
            md=md,
            trades=result[_pass.RESULT_TRADES],
            messages=passed,
            consumed=consumed,
            ran=self._inbound[:consumed],
            rest=self._inbound[consumed:passed].copy() if passed > consumed else _NO_INBOUND,
            left=left,
            output=out[:written],
        )
