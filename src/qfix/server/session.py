"""The order-entry session layer (sans-I/O): stage S, session identities, reports by session.

Theory of operation. A client key is one FIX session: its SessionID (dense, from 0) is
given at its first login and kept across reconnects, together with its ClOrdID
high-water mark, so a reconnecting client continues where it stopped (WIRE.md §6.2).
:meth:`OrderEntry.receive` takes one frame of one connection and returns the inbound
records for the engine plus the unsequenced replies (BusinessMessageRejects,
Heartbeats, retransmissions) to send at once. Everything per message is vectorised
over the frame: the ClOrdID rule is a running maximum (a message that fails it cannot
raise the high-water mark, so the maximum over every eligible message before it is
the mark it is judged against).

:meth:`OrderEntry.route` splits the engine's output by destination session, keeps the
sequenced reports (templates 10-12) for RetransmitRequest in a bounded per-session
history, and returns the messages to send per session. Nothing here touches a socket
or a clock: times are arguments.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from qfix.wire import codec, codes, schema

__all__ = ["MD_DEST", "Arrival", "OrderEntry", "SessionState"]

Array = npt.NDArray[Any]

MD_DEST: Final = 0xFFFF_FFFF  #: engine ``dest`` of market-data records
RETRANSMIT_MAX: Final = 100_000  #: WIRE.md §6.2 default cap per request
_MSG: Final = codes.MESSAGE_SIZE
_ORDER_TEMPLATES_MAX: Final = codes.TEMPLATE_ORDER_MASS_CANCEL_REQUEST
_SEQUENCED: Final = (
    codes.TEMPLATE_EXECUTION_REPORT,
    codes.TEMPLATE_ORDER_CANCEL_REJECT,
    codes.TEMPLATE_ORDER_MASS_CANCEL_REPORT,
)
#: byte offset of ExecID in the sequenced templates (WIRE.md §3.2)
_EXEC_ID_OFFSET: Final = {
    codes.TEMPLATE_EXECUTION_REPORT: 24,
    codes.TEMPLATE_ORDER_CANCEL_REJECT: 24,
    codes.TEMPLATE_ORDER_MASS_CANCEL_REPORT: 16,
}
_HEADER: Final = 8  #: message header bytes before the block
#: byte offset of Account in the messages stage S checks it on (header + block offset)
_ACCOUNT_OFFSET: Final = {
    codes.TEMPLATE_NEW_ORDER_SINGLE: _HEADER + 32,
    codes.TEMPLATE_ORDER_MASS_CANCEL_REQUEST: _HEADER + 20,
}
#: the little-endian templateId: header bytes 2 and 3
_TEMPLATE_LO: Final = 2
_TEMPLATE_HI: Final = 3
#: where each sequenced template's ExecID starts in the message (templates 10 and 11 share it)
_ER_EXEC_ID: Final = _HEADER + _EXEC_ID_OFFSET[codes.TEMPLATE_EXECUTION_REPORT]
_MCR_EXEC_ID: Final = _HEADER + _EXEC_ID_OFFSET[codes.TEMPLATE_ORDER_MASS_CANCEL_REPORT]
_U64_BYTES: Final = np.arange(8)
_REJECT_WINDOW_S: Final = 10.0


#: the sequenced templates are consecutive ids: one range test finds them
_SEQUENCED_FIRST: Final = min(_SEQUENCED)
_SEQUENCED_LAST: Final = max(_SEQUENCED)
assert len(_SEQUENCED) == _SEQUENCED_LAST - _SEQUENCED_FIRST + 1


def _member(values: Array, members: Array) -> Array:
    """``np.isin`` for the small sets met here (a session's accounts, the blocked
    accounts): one broadcast comparison instead of isin's sort, which costs tens of
    microseconds per call on every frame however few the members."""
    if members.size > 16:
        return np.isin(values, members)
    found: Array = (values[:, None] == members[None, :]).any(axis=1)
    return found


def _by_destination(dest: Array, rows: Array) -> Iterator[tuple[int, Array]]:
    """``rows`` (indices into ``dest``) grouped by destination: (destination, its rows in
    their original order), destinations ascending. One stable sort for all of them."""
    if rows.size == 0:
        return
    order = rows[np.argsort(dest[rows], kind="stable")]
    sorted_dest = dest[order]
    cuts = np.flatnonzero(np.diff(sorted_dest)) + 1
    starts = np.concatenate(([0], cuts)).tolist()
    ends = np.concatenate((cuts, [order.size])).tolist()
    for s, e in zip(starts, ends, strict=True):
        yield int(sorted_dest[s]), order[s:e]


class _Bucket:
    """A token bucket measured in messages (the per-session throttle)."""

    __slots__ = ("burst", "last", "rate", "tokens")

    def __init__(self, rate: float, burst: float, now: float) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.last = now

    def take(self, wanted: int, now: float) -> int:
        """Take up to ``wanted`` tokens; return how many were granted."""
        self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
        self.last = now
        granted = min(wanted, int(self.tokens))
        self.tokens -= granted
        return granted


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


@dataclass(slots=True)
class SessionState:
    """One FIX session (one client key): identity, ClOrdID mark, throttle, history."""

    session_id: int
    kid: bytes
    accounts: npt.NDArray[np.uint32]
    bucket: _Bucket
    history: _History
    hwm: int = 0  #: highest ClOrdID that passed stage S
    last_exec_id: int = 0  #: highest ExecID routed to this session
    conns: list[int] = field(default_factory=list)
    last_sent: float = 0.0  #: monotonic time of the last message sent to it
    rejects: int = 0  #: BusinessMessageRejects in the current window
    reject_window: float = 0.0

    @property
    def session_account(self) -> int:
        return int(self.accounts[0])


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
        self.by_kid: dict[bytes, SessionState] = {}
        self.by_id: list[SessionState] = []
        self.by_conn: dict[int, SessionState] = {}
        self.accepting = True
        #: accounts an operator killed: their orders are refused at stage S (108)
        self.blocked: set[int] = set()
        #: per SessionID, the highest ClOrdID of its journaled input: what a Heartbeat
        #: reports as LastClOrdID, so a client never takes an order the journal does not
        #: hold yet for taken (stage S's own mark, ``SessionState.hwm``, runs ahead of it).
        #: An array, so that the ledger raises every mark of a batch in one operation.
        self.journaled_marks = np.zeros(max_sessions, np.uint64)

    # --- connections ----------------------------------------------------------------

    def login(self, conn: int, kid: bytes, accounts: tuple[int, ...], now: float) -> tuple[SessionState, bytes]:
        """A QZMQ session was established: bind it to the key's FIX session and return
        the first message to send (a Heartbeat with LastExecID and LastClOrdID).

        Raises LookupError if every SessionID is taken."""
        state = self.by_kid.get(kid)
        if state is None:
            if len(self.by_id) >= self.max_sessions:
                raise LookupError(f"all {self.max_sessions} SessionIDs are in use")
            state = SessionState(
                session_id=len(self.by_id),
                kid=kid,
                accounts=np.array(accounts, np.uint32),
                bucket=_Bucket(*self.throttle, now),
                history=_History(self.retransmit_keep),
            )
            self.by_kid[kid] = state
            self.by_id.append(state)
        else:
            state.accounts = np.array(accounts, np.uint32)  # the allow-list may have changed
        state.conns.append(conn)
        self.by_conn[conn] = state
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
            accounts=np.zeros(0, np.uint32),
            bucket=_Bucket(*self.throttle, 0.0),
            history=_History(self.retransmit_keep),
        )
        self.by_kid[kid] = state
        self.by_id.append(state)
        return state

    def logout(self, conn: int) -> SessionState | None:
        """A connection ended; returns its session if that was its last connection."""
        state = self.by_conn.pop(conn, None)
        if state is None:
            return None
        if conn in state.conns:
            state.conns.remove(conn)
        return None if state.conns else state

    def heartbeat(self, state: SessionState, transact_time: int = 0) -> bytes:
        hb = codec.new_records(codes.TEMPLATE_HEARTBEAT)
        hb["LastExecID"] = state.last_exec_id
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
        v = codec.validate(frame, recv_time)
        if v.frame is None:
            return self._rejected(state, Arrival(_EMPTY_INBOUND, v.rejects.view(np.uint8).reshape(-1, _MSG), 0, 1), now)
        raw = v.frame.raw
        k = raw.shape[0]
        tids = v.frame.template_ids
        accepted = v.accepted
        orders = accepted & (tids <= _ORDER_TEMPLATES_MAX)
        replies: list[Array] = []
        reasons = v.reasons.copy() if not v.all_accepted else np.zeros(k, np.uint8)
        n_orders = int(np.count_nonzero(orders))
        inbound = _EMPTY_INBOUND
        if n_orders:
            inbound = self._stage_s(state, raw, tids, orders, reasons, n_orders, recv_time, now)
        others = accepted & (tids > _ORDER_TEMPLATES_MAX)
        if others.any():
            for i in np.flatnonzero(others):
                tid = int(tids[i])
                if tid == codes.TEMPLATE_HEARTBEAT:
                    replies.append(np.frombuffer(self.heartbeat(state, recv_time), np.uint8)[None, :])
                elif tid == codes.TEMPLATE_RETRANSMIT_REQUEST:
                    msgs = self._retransmit(state, raw[i], recv_time)
                    if msgs is None:
                        reasons[i] = codes.BRR_INVALID_FIELD_VALUE
                    else:
                        replies.append(msgs)
        bad = np.flatnonzero(reasons)
        rejected = int(bad.size)
        if rejected:
            rejects = codec.business_message_rejects(raw[bad], bad, reasons[bad], k * _MSG, recv_time)
            replies.insert(0, rejects.view(np.uint8).reshape(-1, _MSG))
        out = np.concatenate(replies) if len(replies) > 1 else (replies[0] if replies else _EMPTY_MSGS)
        arrival = Arrival(inbound, out, k, rejected)
        return self._rejected(state, arrival, now) if rejected else arrival

    def _rejected(self, state: SessionState, arrival: Arrival, now: float) -> Arrival:
        if now - state.reject_window > _REJECT_WINDOW_S:
            state.reject_window = now
            state.rejects = 0
        state.rejects += arrival.rejected
        arrival.close = state.rejects > self.max_rejects
        return arrival

    def _stage_s(
        self,
        state: SessionState,
        raw: Array,
        tids: Array,
        orders: Array,
        reasons: Array,
        n_orders: int,
        recv_time: int,
        now: float,
    ) -> Array:
        if not self.accepting:
            reasons[orders] = codes.BRR_APPLICATION_NOT_AVAILABLE
            return _EMPTY_INBOUND
        granted = state.bucket.take(n_orders, now)
        if granted < n_orders:
            # throttled messages keep the high-water mark unchanged: they may be resent
            late = np.flatnonzero(orders)[granted:]
            reasons[late] = codes.BRR_APPLICATION_NOT_AVAILABLE
            orders = orders.copy()
            orders[late] = False
        flat = raw.reshape(-1)
        clordid = flat.view(schema.NEW_ORDER_SINGLE)["ClOrdID"]  # offset 0 in templates 1-4
        account_ok = np.ones(raw.shape[0], np.bool_)
        for tid, offset in _ACCOUNT_OFFSET.items():
            mask = orders & (tids == tid)
            if mask.any():
                acct = np.ascontiguousarray(raw[mask, offset : offset + 4]).view("<u4")[:, 0]
                resolved = np.where(acct == codes.NULL_U32, np.uint32(state.session_account), acct)
                ok = _member(resolved, state.accounts)
                if self.blocked:
                    ok &= ~_member(resolved, np.fromiter(self.blocked, np.uint32))
                account_ok[mask] = ok
        eligible = orders & account_ok
        marks = np.maximum.accumulate(np.where(eligible, clordid, np.uint64(0)))
        before = np.empty_like(marks)
        before[0] = state.hwm
        np.maximum(marks[:-1], np.uint64(state.hwm), out=before[1:])
        stale = orders & (clordid <= before)
        reasons[stale] = codes.BRR_CLORDID_NOT_INCREASING
        reasons[orders & ~stale & ~account_ok] = codes.BRR_UNKNOWN_ACCOUNT
        passed = eligible & ~stale
        if not passed.any():
            return _EMPTY_INBOUND
        state.hwm = max(state.hwm, int(clordid[passed].max()))
        return codec.to_inbound(raw[passed], state.session_id, state.session_account, recv_time)

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

    def route(self, out: Array) -> tuple[list[tuple[SessionState, Array]], Array]:
        """Split engine output records by destination.

        Returns ``[(session, messages (n, 60))]`` in ascending SessionID, each in emission
        order, and the market-data messages (m, 60). Sequenced reports are added to each
        session's retransmission history whether or not it is connected.
        """
        if out.size == 0:
            return [], _EMPTY_MSGS
        dest = out["dest"]
        messages = out["message"]
        md = dest == MD_DEST
        md_msgs = messages[md]
        private = np.flatnonzero(~md)
        if private.size == 0:
            return [], md_msgs
        private_dest = dest[private]
        first = int(private_dest[0])
        if private.size == 1 or bool((private_dest == first).all()):
            # one destination, the common case of a batch from one session: no split
            if first >= len(self.by_id):
                return [], md_msgs
            state = self.by_id[first]
            msgs = messages[private]
            self._remember(state, msgs)
            return [(state, msgs)], md_msgs
        routed = []
        for sid, rows in _by_destination(dest, private):
            if sid >= len(self.by_id):
                continue  # the engine never addresses an unknown session; be safe anyway
            state = self.by_id[sid]
            msgs = messages[rows]
            self._remember(state, msgs)
            routed.append((state, msgs))
        return routed, md_msgs

    def remember(self, out: Array) -> None:
        """Put the sequenced reports of engine output ``out`` (any number of batches, in
        emission order) into their sessions' histories without sending anything: what a
        recovery does with replayed output. One stable sort by destination for the whole
        stretch, so the cost per session is paid once per stretch, not once per batch."""
        dest = out["dest"]
        messages = out["message"]
        tids = messages[:, _TEMPLATE_LO] | (messages[:, _TEMPLATE_HI].astype(np.uint16) << 8)
        wanted = np.flatnonzero((dest < len(self.by_id)) & (tids >= _SEQUENCED_FIRST) & (tids <= _SEQUENCED_LAST))
        for sid, rows in _by_destination(dest, wanted):
            self._remember(self.by_id[sid], messages[rows])

    def _remember(self, state: SessionState, msgs: Array) -> None:
        tids = msgs[:, _TEMPLATE_LO] | (msgs[:, _TEMPLATE_HI].astype(np.uint16) << 8)
        seq = (tids >= _SEQUENCED_FIRST) & (tids <= _SEQUENCED_LAST)
        if not seq.any():
            return
        sel = msgs[seq]
        mass = tids[seq] == codes.TEMPLATE_ORDER_MASS_CANCEL_REPORT
        if not mass.any():  # ExecutionReports and cancel rejects: one column slice
            ids = np.ascontiguousarray(sel[:, _ER_EXEC_ID : _ER_EXEC_ID + 8]).view("<u8")[:, 0]
        else:  # each row's ExecID at its template's offset, gathered in one indexing
            starts = np.where(mass, _MCR_EXEC_ID, _ER_EXEC_ID)
            ids = np.take_along_axis(sel, starts[:, None] + _U64_BYTES, axis=1).view("<u8")[:, 0]
        # copies (ENGINE.md §2.4) repeat an ExecID the session may already hold: keep ascending
        keep = ids > state.last_exec_id
        if not keep.all():
            ids, sel = ids[keep], sel[keep]
        if ids.size:
            state.history.add(ids, np.ascontiguousarray(sel))
            state.last_exec_id = int(ids[-1])
