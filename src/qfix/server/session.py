"""The order-entry session layer (sans-I/O): stage S, session identities, reports by session.

Theory of operation. A client key is one FIX session: its SessionID (dense, from 0) is
given at its first login and kept across reconnects, together with its ClOrdID
high-water mark, so a reconnecting client continues where it stopped (WIRE.md §6.2).
:meth:`OrderEntry.receive` takes one frame of one connection and returns the inbound
records for the engine plus the unsequenced replies (BusinessMessageRejects,
Heartbeats, retransmissions) to send at once. Stages H and S run as one compiled
pass over the frame (``_stage_s``): every frame pays this cost, so none of it is a
chain of NumPy calls.

:meth:`OrderEntry.route` splits the engine's output by destination session (one
compiled pass, ``_routing``), keeps the sequenced reports (templates 10-12) for
RetransmitRequest in a bounded per-session history, and returns the messages to send
per session. Nothing here touches a socket or a clock: times are arguments.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from qfix.server import _routing, _stage_s
from qfix.wire import codec, codes, schema

__all__ = ["MD_DEST", "Arrival", "OrderEntry", "SessionState", "SessionTable"]

Array = npt.NDArray[Any]

MD_DEST: Final = _routing.MD_DEST  #: engine ``dest`` of market-data records
RETRANSMIT_MAX: Final = 100_000  #: WIRE.md §6.2 default cap per request
_MSG: Final = codes.MESSAGE_SIZE
_FRAME_MSGS: Final = codes.MAX_MSGS_PER_FRAME
_ORDER_TEMPLATES_MAX: Final = codes.TEMPLATE_ORDER_MASS_CANCEL_REQUEST
_REJECT_WINDOW_S: Final = 10.0


class SessionTable:
    """The numbers of every session that compiled code reads and writes in place, one
    entry per SessionID: stage S's ClOrdID mark and the throttle's token bucket (as
    ``_Bucket`` and ``SessionState.hwm`` see them). Fixed in size (``max_sessions``) so
    that a kernel's view of them never goes stale."""

    __slots__ = ("accounts_version", "burst", "marks", "rate", "refilled", "tokens")

    def __init__(self, max_sessions: int, rate: float, burst: float) -> None:
        self.rate = float(rate)
        self.burst = float(burst)
        self.marks = np.zeros(max_sessions, np.uint64)  #: highest ClOrdID that passed stage S
        self.tokens = np.zeros(max_sessions, np.float64)  #: the bucket's tokens (messages)
        self.refilled = np.zeros(max_sessions, np.float64)  #: monotonic time of its last refill
        #: moves whenever a session's accounts change (a cache of stage S's tables checks it)
        self.accounts_version = 0


class _Bucket:
    """A token bucket measured in messages (the per-session throttle), kept in its
    session's entry of a :class:`SessionTable` (the compiled record path refills and
    spends the same numbers, the same way)."""

    __slots__ = ("session_id", "table")

    def __init__(self, table: SessionTable, session_id: int, now: float) -> None:
        self.table = table
        self.session_id = session_id
        table.tokens[session_id] = table.burst
        table.refilled[session_id] = now

    @property
    def tokens(self) -> float:
        return float(self.table.tokens[self.session_id])

    def available(self, now: float) -> int:
        """Refill for the time since the last call; the whole tokens there are now."""
        t, sid = self.table, self.session_id
        tokens = min(t.burst, float(t.tokens[sid]) + (now - float(t.refilled[sid])) * t.rate)
        t.tokens[sid] = tokens
        t.refilled[sid] = now
        return max(0, int(tokens))

    def spend(self, tokens: int) -> None:
        self.table.tokens[self.session_id] -= tokens


class _History:
    """The sequenced reports of one session, for RetransmitRequest (bounded)."""

    __slots__ = ("chunks", "count", "dropped_upto", "keep")

    def __init__(self, keep: int) -> None:
        self.keep = keep
        self.chunks: deque[tuple[Array, Array]] = deque()  # (exec ids u8, messages (n, 60))
        self.count = 0
        self.dropped_upto = 0  #: highest ExecID no longer held (0 = nothing dropped)

    def add(self, exec_ids: Array, messages: Array) -> None:
        if self.keep == 0 or exec_ids.size == 0:
            if exec_ids.size:
                self.dropped_upto = max(self.dropped_upto, int(exec_ids[-1]))
            return
        self.chunks.append((exec_ids, messages))
        self.count += exec_ids.size
        while self.count > self.keep:
            ids, msgs = self.chunks[0]
            excess = self.count - self.keep
            if excess >= ids.size:
                self.chunks.popleft()
                self.count -= ids.size
                self.dropped_upto = max(self.dropped_upto, int(ids[-1]))
            else:
                self.chunks[0] = (ids[excess:], msgs[excess:])
                self.count -= excess
                self.dropped_upto = max(self.dropped_upto, int(ids[excess - 1]))

    def select(self, from_exec_id: int, count: int) -> tuple[Array, Array, bool]:
        """Messages with ExecID >= from_exec_id, ascending, at most ``count``; and
        whether more remain."""
        ids_parts, msg_parts = [], []
        taken = 0
        more = False
        for ids, msgs in self.chunks:
            if ids.size == 0 or int(ids[-1]) < from_exec_id:
                continue
            start = int(np.searchsorted(ids, from_exec_id))
            room = count - taken
            if room <= 0:
                more = True
                break
            part = slice(start, min(ids.size, start + room))
            ids_parts.append(ids[part])
            msg_parts.append(msgs[part])
            taken += ids_parts[-1].size
            if start + room < ids.size:
                more = True
                break
        if not ids_parts:
            return np.zeros(0, np.uint64), np.zeros((0, _MSG), np.uint8), False
        return np.concatenate(ids_parts), np.concatenate(msg_parts), more


def _no_accounts() -> npt.NDArray[np.uint32]:
    return np.zeros(0, np.uint32)


@dataclass(slots=True)
class SessionState:
    """One FIX session (one client key): identity, ClOrdID mark, throttle, history."""

    session_id: int
    kid: bytes
    bucket: _Bucket
    history: _History
    table: SessionTable  #: where its mark and bucket live
    conns: list[int] = field(default_factory=list)
    last_sent: float = 0.0  #: monotonic time of the last message sent to it
    rejects: int = 0  #: BusinessMessageRejects in the current window
    reject_window: float = 0.0
    _accounts: npt.NDArray[np.uint32] = field(default_factory=_no_accounts, init=False, repr=False)
    _sorted_accounts: npt.NDArray[np.uint32] = field(default_factory=_no_accounts, init=False, repr=False)

    @property
    def hwm(self) -> int:
        """Highest ClOrdID that passed stage S."""
        return int(self.table.marks[self.session_id])

    @hwm.setter
    def hwm(self, mark: int) -> None:
        self.table.marks[self.session_id] = mark

    @property
    def accounts(self) -> npt.NDArray[np.uint32]:
        """The accounts it may trade, in the allow-list's order: the first is its
        SessionAccount (none until its key logs in)."""
        return self._accounts

    @property
    def sorted_accounts(self) -> npt.NDArray[np.uint32]:
        """:attr:`accounts` sorted, for stage S's binary search."""
        return self._sorted_accounts

    @property
    def session_account(self) -> int:
        return int(self._accounts[0])

    def set_accounts(self, accounts: tuple[int, ...] | list[int]) -> None:
        """Set the accounts (at login and allow-list reloads); ValueError if none."""
        if not accounts:
            raise ValueError(f"key {self.kid.hex()} has no account")
        self._accounts = np.array(accounts, np.uint32)
        self._sorted_accounts = np.sort(self._accounts)
        self.table.accounts_version += 1


@dataclass(slots=True)
class Arrival:
    """What :meth:`OrderEntry.receive` made of one frame."""

    inbound: Array  #: INBOUND records for the engine (may be empty)
    replies: Array  #: (n, 60) unsequenced messages to send to the connection now
    messages: int  #: messages in the frame (0 if the frame was refused)
    rejected: int  #: BusinessMessageRejects among ``replies``
    close: bool = False  #: the session passed its reject threshold: close it


_EMPTY_INBOUND: Final = np.zeros(0, schema.INBOUND)
_EMPTY_MSGS: Final = np.zeros((0, _MSG), np.uint8)


class OrderEntry:
    """Stage S and the session table of one server.

    Args:
        throttle: (messages per second, burst) per session.
        max_rejects: BusinessMessageRejects per session per 10 s before it is closed.
        retransmit_keep: sequenced reports kept per session.
        max_sessions: SessionIDs available (the engine's ``max_sessions``).
    """

    def __init__(
        self,
        *,
        throttle: tuple[float, float] = (2e6, 4e6),
        max_rejects: int = 10_000,
        retransmit_keep: int = 200_000,
        max_sessions: int = 4096,
    ) -> None:
        self.throttle = throttle
        self.max_rejects = max_rejects
        self.retransmit_keep = retransmit_keep
        self.max_sessions = max_sessions
        #: every session's mark and bucket, by SessionID
        self.table = SessionTable(max_sessions, *throttle)
        self.by_kid: dict[bytes, SessionState] = {}
        self.by_id: list[SessionState] = []
        self.by_conn: dict[int, SessionState] = {}
        #: moves whenever a session or a connection comes or goes (a cache of the
        #: receiving connections checks it)
        self.conns_version = 0
        self.accepting = True
        self._blocked: frozenset[int] = frozenset()
        self._blocked_sorted = _no_accounts()
        #: per SessionID, the highest ClOrdID of its journaled input: what a Heartbeat
        #: reports as LastClOrdID, so a client never takes an order the journal does not
        #: hold yet for taken (stage S's own mark, ``SessionState.hwm``, runs ahead of it).
        #: An array, so that the ledger raises every mark of a batch in one operation.
        self.journaled_marks = np.zeros(max_sessions, np.uint64)
        #: per SessionID, the highest ExecID routed to it (what a Heartbeat reports as
        #: LastExecID); an array, so that routing raises every session's in one pass
        self.last_exec_ids = np.zeros(max_sessions, np.uint64)
        # receive()'s scratch: a frame holds at most _FRAME_MSGS messages (stage F)
        self._reasons = np.empty(_FRAME_MSGS, np.uint8)
        self._params = np.zeros(_stage_s.PARAMS, np.uint64)

    @property
    def blocked(self) -> frozenset[int]:
        """Accounts an operator killed: their orders are refused at stage S (108)."""
        return self._blocked

    @property
    def blocked_sorted(self) -> npt.NDArray[np.uint32]:
        """:attr:`blocked`, sorted, as stage S takes it."""
        return self._blocked_sorted

    def set_blocked(self, accounts: frozenset[int] | set[int]) -> None:
        """Replace the blocked accounts (kept sorted for stage S's binary search)."""
        self._blocked = frozenset(int(a) for a in accounts)
        self._blocked_sorted = np.array(sorted(self._blocked), np.uint32)

    # --- connections ----------------------------------------------------------------

    def login(self, conn: int, kid: bytes, accounts: tuple[int, ...], now: float) -> tuple[SessionState, bytes]:
        """A QZMQ session was established: bind it to the key's FIX session and return
        the first message to send (a Heartbeat with LastExecID and LastClOrdID).

        Raises LookupError if every SessionID is taken or the key has no account (stage S
        needs its session account)."""
        if not accounts:
            raise LookupError(f"key {kid.hex()} has no account")
        state = self.by_kid.get(kid)
        if state is None:
            if len(self.by_id) >= self.max_sessions:
                raise LookupError(f"all {self.max_sessions} SessionIDs are in use")
            sid = len(self.by_id)
            state = SessionState(
                session_id=sid,
                kid=kid,
                bucket=_Bucket(self.table, sid, now),
                history=_History(self.retransmit_keep),
                table=self.table,
            )
            self.by_kid[kid] = state
            self.by_id.append(state)
        state.set_accounts(accounts)  # the allow-list may have changed since the last login
        state.conns.append(conn)
        self.by_conn[conn] = state
        self.conns_version += 1
        state.last_sent = now
        return state, self.heartbeat(state)

    def restore_session(self, session_id: int, kid: bytes) -> SessionState:
        """Recreate a session from the journal or a checkpoint, before anyone connects.

        SessionIDs are dense and given in order, so ``session_id`` must be the next one;
        ValueError otherwise. The accounts come from the allow-list at the next login."""
        if session_id != len(self.by_id) or kid in self.by_kid or session_id >= self.max_sessions:
            raise ValueError(
                f"SessionID {session_id} for key {kid.hex()} does not follow the {len(self.by_id)} known sessions"
            )
        state = SessionState(
            session_id=session_id,
            kid=kid,
            bucket=_Bucket(self.table, session_id, 0.0),
            history=_History(self.retransmit_keep),
            table=self.table,
        )
        self.by_kid[kid] = state
        self.by_id.append(state)
        return state

    def logout(self, conn: int) -> SessionState | None:
        """A connection ended; returns its session if that was its last connection."""
        state = self.by_conn.pop(conn, None)
        if state is None:
            return None
        self.conns_version += 1
        if conn in state.conns:
            state.conns.remove(conn)
        return None if state.conns else state

    def heartbeat(self, state: SessionState, transact_time: int = 0) -> bytes:
        hb = codec.new_records(codes.TEMPLATE_HEARTBEAT)
        hb["LastExecID"] = self.last_exec_ids[state.session_id]
        hb["LastClOrdID"] = self.journaled_marks[state.session_id]
        hb["TransactTime"] = transact_time
        return hb.tobytes()

    # --- inbound --------------------------------------------------------------------

    def receive(self, conn: int, frame: bytes | memoryview, recv_time: int, now: float) -> Arrival:
        """Stages F, H and S for one frame of connection ``conn``.

        ``recv_time`` is the wall-clock RecvTime (ns) given to every accepted message;
        ``now`` the monotonic time for the throttle and the reject window.
        """
        state = self.by_conn[conn]
        flat = np.frombuffer(frame, np.uint8)
        if not codec.check_frame_length(flat.size):
            v = codec.validate(flat, recv_time)
            return self._rejected(state, Arrival(_EMPTY_INBOUND, v.rejects.view(np.uint8).reshape(-1, _MSG), 0, 1), now)
        raw = flat.reshape(-1, _MSG)
        k = raw.shape[0]
        # every frame pays what is done here: the reasons and parameters are scratch
        # arrays of this object (nothing returned refers to them), the inbound records
        # are made as words, the kernel's view, and handed out as records
        reasons = self._reasons[:k]
        words = np.empty((k, _stage_s.INBOUND_WORDS), np.uint32)
        allowance = state.bucket.available(now) if self.accepting else 0
        params = self._params
        params[_stage_s.PARAM_SESSION_ID] = state.session_id
        params[_stage_s.PARAM_RECV_TIME] = recv_time
        params[_stage_s.PARAM_MARK] = state.hwm
        params[_stage_s.PARAM_ALLOWANCE] = allowance
        params[_stage_s.PARAM_ACCEPTING] = self.accepting
        params[_stage_s.PARAM_SESSION_ACCOUNT] = state.session_account
        written, mark, orders, others = _stage_s.stage_hs(
            raw, raw.view(np.uint32), state.sorted_accounts, self._blocked_sorted, params, reasons, words
        )
        inbound = words.view(schema.INBOUND).reshape(k)
        if orders:
            state.bucket.spend(min(orders, allowance))
        state.hwm = int(mark)
        replies: list[Array] = []
        rejected = k - written - others  # every message is passed, refused or another kind
        if others:
            tids = codec.template_ids(raw)
            for i in np.flatnonzero((reasons == 0) & (tids > _ORDER_TEMPLATES_MAX)):
                tid = int(tids[i])
                if tid == codes.TEMPLATE_HEARTBEAT:
                    replies.append(np.frombuffer(self.heartbeat(state, recv_time), np.uint8)[None, :])
                elif tid == codes.TEMPLATE_RETRANSMIT_REQUEST:
                    msgs = self._retransmit(state, raw[i], recv_time)
                    if msgs is None:
                        reasons[i] = codes.BRR_INVALID_FIELD_VALUE
                        rejected += 1
                    else:
                        replies.append(msgs)
        if rejected:
            bad = np.flatnonzero(reasons)
            rejects = codec.business_message_rejects(raw[bad], bad, reasons[bad], k * _MSG, recv_time)
            replies.insert(0, rejects.view(np.uint8).reshape(-1, _MSG))
        out = np.concatenate(replies) if len(replies) > 1 else (replies[0] if replies else _EMPTY_MSGS)
        arrival = Arrival(inbound[:written], out, k, rejected)
        return self._rejected(state, arrival, now) if rejected else arrival

    def _rejected(self, state: SessionState, arrival: Arrival, now: float) -> Arrival:
        if now - state.reject_window > _REJECT_WINDOW_S:
            state.reject_window = now
            state.rejects = 0
        state.rejects += arrival.rejected
        arrival.close = state.rejects > self.max_rejects
        return arrival

    def _retransmit(self, state: SessionState, message: Array, recv_time: int) -> Array | None:
        req = message.view(schema.RETRANSMIT_REQUEST)[0]
        first, count = int(req["FromExecID"]), int(req["Count"])
        if first < 1 or count < 1:
            return None
        done = codec.new_records(codes.TEMPLATE_RETRANSMIT_COMPLETE)
        done["FromExecID"] = first
        done["Count"] = count
        done["TransactTime"] = recv_time
        history = state.history
        if first <= history.dropped_upto:
            done["RetransmitStatus"] = codes.RETRANSMIT_UNAVAILABLE
            return done.view(np.uint8).reshape(1, _MSG)
        ids, msgs, more = history.select(first, min(count, RETRANSMIT_MAX))
        done["LastExecID"] = int(ids[-1]) if ids.size else 0
        done["SentCount"] = ids.size
        done["RetransmitStatus"] = codes.RETRANSMIT_TRUNCATED if more else codes.RETRANSMIT_COMPLETED
        return np.concatenate([msgs, done.view(np.uint8).reshape(1, _MSG)])

    # --- outbound -------------------------------------------------------------------

    def route(self, out: Array) -> tuple[list[tuple[SessionState, Array]], Array, int]:
        """Split engine output records by destination.

        Returns ``[(session, messages (n, 60))]`` in ascending SessionID, each in emission
        order, the market-data messages (m, 60) and how many of them are Trades.
        Sequenced reports are added to each session's retransmission history whether or
        not it is connected.
        """
        if out.size == 0:
            return [], _EMPTY_MSGS, 0
        messages = out["message"]
        groups, order, md_count, trades = self._split(out, messages)
        routed, md_msgs = self.deliveries(messages, order, groups, md_count)
        return routed, md_msgs, trades

    def deliveries(
        self, messages: Array, order: Array, groups: list[tuple[int, int]], md_count: int
    ) -> tuple[list[tuple[SessionState, Array]], Array]:
        """The messages of each destination and the market data, from a split's
        ``order`` and its (SessionID, end) groups (see :meth:`route`)."""
        md_msgs = self.market_data(messages, order, md_count)
        by_id = self.by_id
        routed = []
        start = 0
        for sid, end in groups:
            # the engine never addresses an unknown session; be safe anyway
            if sid < len(by_id):
                routed.append((by_id[sid], messages[order[start:end]]))
            start = end
        return routed, md_msgs

    def market_data(self, messages: Array, order: Array, md_count: int) -> Array:
        """The market-data messages of a split's ``order`` (its last ``md_count``)."""
        return messages[order[order.size - md_count :]] if md_count else _EMPTY_MSGS

    def remember(self, out: Array) -> None:
        """Put the sequenced reports of engine output ``out`` (any number of batches, in
        emission order) into their sessions' histories without sending anything: what a
        recovery does with replayed output. One split for the whole stretch, so the cost
        per session is paid once per stretch, not once per batch."""
        if out.size:
            self._split(out, out["message"])

    def _split(self, out: Array, messages: Array) -> tuple[list[tuple[int, int]], Array, int, int]:
        """``_routing.split`` of OUTPUT records, the new sequenced reports of each session
        added to its history: ([(SessionID, end in order)], order, market-data records,
        Trades)."""
        n = out.size
        words = schema.as_words(out)
        order = np.empty(n, np.int64)
        kept_rows = np.empty(n, np.int64)
        kept_ids = np.empty(n, np.uint64)
        groups = np.empty((n, _routing.GROUP_COLUMNS), np.int64)
        # only sessions that exist keep reports: a slice, so the kernel raises the marks in place
        known = self.last_exec_ids[: len(self.by_id)]
        count, md_count, trades = _routing.split(words, known, order, kept_rows, kept_ids, groups)
        return self.file_reports(messages, groups[:count], kept_rows, kept_ids), order, md_count, trades

    def file_reports(self, messages: Array, groups: Array, kept_rows: Array, kept_ids: Array) -> list[tuple[int, int]]:
        """Add each destination's new sequenced reports, as ``_routing.split`` picked
        them, to its session's history; returns the groups as (SessionID, end in order)."""
        by_id = self.by_id
        ends = []
        kept_start = 0
        for sid, end, kept_end in groups.tolist():
            ends.append((sid, end))
            if kept_end > kept_start and sid < len(by_id):
                # copies: the split's arrays are scratch, and the history outlives them
                by_id[sid].history.add(kept_ids[kept_start:kept_end].copy(), messages[kept_rows[kept_start:kept_end]])
            kept_start = kept_end
        return ends
