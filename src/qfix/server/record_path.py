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
_INITIAL_FRAMES: Final = 64
_INITIAL_BYTES: Final = 1 << 16


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
        self._frames = np.zeros(_INITIAL_BYTES, np.uint8)
        self._table = np.zeros((_INITIAL_FRAMES, _pass.FRAME_COLUMNS), np.int64)
        self._conns: list[int] = []
        self._bytes = 0
        self._messages = 0
        self._rows: dict[int, int] = {}  # SessionID -> row of the pass's session table
        self._states: list[SessionState] = []
        self._inbound = np.zeros(0, schema.INBOUND)
        self._out_size = -1
        self._result = np.zeros(_pass.RESULT_FIELDS, np.int64)

    @property
    def pending(self) -> int:
        """Frames collected since the last :meth:`run`."""
        return len(self._conns)

    def add(self, state: SessionState, conn: int, frame: bytes | memoryview, recv_time: int) -> None:
        """Collect one DATA_FIXED frame of ``conn`` (a connection of ``state``)."""
        size = len(frame)
        at = self._bytes
        end = at + size
        if end > self._frames.size:
            self._frames = _grown(self._frames, end)
        self._frames[at:end] = np.frombuffer(frame, np.uint8)
        f = len(self._conns)
        if f == self._table.shape[0]:
            self._table = _grown(self._table, f + 1)
        row = self._rows.get(state.session_id)
        if row is None:
            row = self._rows[state.session_id] = len(self._states)
            self._states.append(state)
        table = self._table[f]
        table[_pass.FRAME_START] = at
        table[_pass.FRAME_BYTES] = size
        table[_pass.FRAME_SESSION] = row
        table[_pass.FRAME_RECV_TIME] = recv_time
        self._conns.append(conn)
        self._bytes = (end + 3) & ~3  # the kernel reads each frame as 32-bit words
        self._messages += size // _MSG + 1

    def run(self, now: float, out: Array) -> PassOutcome:
        """Run the collected frames into ``out`` (the engine's output buffer); ``now`` is
        the monotonic time for the throttles. Empties the collection."""
        entry = self.entry
        states = self._states
        nframes = len(self._conns)
        if not nframes:
            raise ValueError("no frame was collected")
        sessions = np.zeros((len(states), _pass.SESSION_COLUMNS), np.uint64)
        parts = []
        start = 0
        for row, state in enumerate(states):
            own = state.sorted_accounts
            parts.append(own)
            s = sessions[row]
            s[_pass.SESSION_ID] = state.session_id
            s[_pass.SESSION_MARK] = state.hwm
            s[_pass.SESSION_ALLOWANCE] = state.bucket.available(now) if entry.accepting else 0
            s[_pass.SESSION_ACCEPTING] = entry.accepting
            s[_pass.SESSION_ACCOUNT] = state.session_account if own.size else 0
            s[_pass.SESSION_ACCOUNTS_START] = start
            start += own.size
            s[_pass.SESSION_ACCOUNTS_END] = start
        accounts = np.concatenate(parts) if len(parts) > 1 else parts[0]
        if self._inbound.size < self._messages:
            self._inbound = np.zeros(max(self._messages, 2 * self._inbound.size), schema.INBOUND)
        if self._out_size != out.size:
            n = out.size
            self._order = np.empty(n, np.int64)
            self._kept_rows = np.empty(n, np.int64)
            self._kept_ids = np.empty(n, np.uint64)
            self._groups = np.empty((n, _routing.GROUP_COLUMNS), np.int64)
            self._out_size = n
        inbound = self._inbound
        known = len(entry.by_id)
        table = self._table[:nframes]
        result = self._result
        _pass.run_pass(
            self._frames,
            table,
            sessions,
            accounts,
            entry.blocked_sorted,
            inbound,
            schema.as_words(inbound),
            self.engine.kernel_state,
            out,
            schema.as_words(out),
            entry.journaled_marks[:known],
            entry.last_exec_ids[:known],
            self._order,
            self._kept_rows,
            self._kept_ids,
            self._groups,
            result,
        )
        status = int(result[_pass.RESULT_STATUS])
        if status == kern.STATUS_BAD:  # stage S passed it: a bug, not input
            raise RuntimeError("the engine refused a record stage S had passed")
        written = int(result[_pass.RESULT_WRITTEN])
        output = out[:written]
        if result[_pass.RESULT_INBOUND]:
            self.engine.after_kernel(out, written)
        for row, state in enumerate(states):
            s = sessions[row]
            state.hwm = int(s[_pass.SESSION_MARK])
            if s[_pass.SESSION_ORDERS]:
                state.bucket.spend(int(s[_pass.SESSION_ORDERS]))
        messages = output["message"]
        count = int(result[_pass.RESULT_GROUPS])
        md_count = int(result[_pass.RESULT_MD])
        ends = entry.file_reports(messages, self._groups[:count], self._kept_rows, self._kept_ids)
        routed, md = entry.deliveries(messages, self._order[:written], ends, md_count)
        consumed = int(result[_pass.RESULT_CONSUMED])
        passed = int(result[_pass.RESULT_INBOUND])
        taken = int(result[_pass.RESULT_FRAMES])
        frames = self._frames
        left = [
            Left(self._conns[f], frames[start : start + size].copy(), recv_time)
            for f, (start, size, _, recv_time) in enumerate(table[taken:].tolist(), taken)
        ]
        outcome = PassOutcome(
            routed=routed,
            md=md,
            trades=int(result[_pass.RESULT_TRADES]),
            messages=int(sessions[:, _pass.SESSION_TAKEN].sum()),
            consumed=consumed,
            rest=inbound[consumed:passed].copy(),
            left=left,
            output=output,
        )
        self._conns = []
        self._bytes = 0
        self._messages = 0
        self._rows = {}
        self._states = []
        return outcome


def _grown(a: Array, needed: int) -> Array:
    """``a`` copied into an array of at least ``needed`` rows (doubling)."""
    size = max(needed, 2 * a.shape[0])
    b = np.zeros((size, *a.shape[1:]), a.dtype)
    b[: a.shape[0]] = a
    return b
