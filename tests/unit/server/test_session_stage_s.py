"""Stage S (WIRE.md §5.1) of the session layer: vectorised checks against a one-by-one oracle."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from qfix.server import _stage_s
from qfix.server.session import MD_DEST, OrderEntry
from qfix.wire import codec, codes, message, schema

KID = b"k" * 16


def _entry(**kwargs: object) -> OrderEntry:
    entry = OrderEntry(**kwargs)  # type: ignore[arg-type]
    entry.login(1, KID, (101, 102), now=0.0)
    return entry


def _frame(records: list[np.void]) -> bytes:
    return codec.encode(np.stack([np.frombuffer(r.tobytes(), np.uint8) for r in records]))


def _rejects(replies: np.ndarray) -> dict[int, int]:
    """RefMsgIndex -> BusinessRejectReason of the BusinessMessageRejects in ``replies``."""
    out = {}
    for row in replies:
        rec = row.view(schema.BUSINESS_MESSAGE_REJECT)[0]
        if int(rec["templateId"]) == codes.TEMPLATE_BUSINESS_MESSAGE_REJECT:
            out[int(rec["RefMsgIndex"])] = int(rec["BusinessRejectReason"])
    return out


#: a message of the generated frames: (template or one of the kinds below, ClOrdID, Account)
_HEARTBEAT = 0  #: an accepted message that is not an order
_BAD_HEADER = -1  #: refused by stage H (WrongSchema)


def _oracle(
    hwm: int,
    msgs: list[tuple[int, int, int | None]],
    accounts: set[int],
    blocked: set[int],
    allowance: int,
    accepting: bool,
) -> tuple[list[int], int]:
    """Stages H and S one message at a time (WIRE.md §5.1): reasons (0 = passed or not
    an order) and the final ClOrdID mark. A missing Account is the session account,
    the first of ``accounts``; the throttle allows the first ``allowance`` orders."""
    reasons = []
    orders = 0
    session_account = 101  # the first account of every allow-list entry here
    for tid, cl, acct in msgs:
        if tid == _BAD_HEADER:
            reasons.append(codes.BRR_WRONG_SCHEMA)
            continue
        if tid == _HEARTBEAT:
            reasons.append(0)
            continue
        if not accepting:
            reasons.append(codes.BRR_APPLICATION_NOT_AVAILABLE)
            continue
        orders += 1
        if orders > allowance:
            reasons.append(codes.BRR_APPLICATION_NOT_AVAILABLE)
        elif cl <= hwm:
            reasons.append(codes.BRR_CLORDID_NOT_INCREASING)
        elif tid in (1, 4) and ((acct or session_account) not in accounts or (acct or session_account) in blocked):
            reasons.append(codes.BRR_UNKNOWN_ACCOUNT)
        else:
            reasons.append(0)
            hwm = cl
    return reasons, hwm


def _message(tid: int, cl: int, acct: int | None) -> np.void:
    if tid == _HEARTBEAT:
        return message.heartbeat()
    if tid == _BAD_HEADER:
        bad = message.new_order_single(cl_ord_id=cl, security_id=1, side="buy", qty=1, price="1")
        bad["schemaId"] = 61
        return bad
    if tid == 1:
        return message.new_order_single(cl_ord_id=cl, security_id=1, side="buy", qty=1, price="1", account=acct)
    if tid == 2:
        return message.order_cancel_request(cl_ord_id=cl, security_id=1, side="buy", orig_cl_ord_id=1)
    if tid == 3:
        return message.order_cancel_replace_request(
            cl_ord_id=cl, orig_cl_ord_id=1, security_id=1, side="buy", qty=1, price="1"
        )
    return message.order_mass_cancel_request(cl_ord_id=cl, security_id=1, account=acct)


@given(
    start=st.integers(0, 20),
    steps=st.lists(
        st.tuples(st.integers(-1, 4), st.integers(-3, 6), st.sampled_from([None, 101, 102, 7])), min_size=1, max_size=40
    ),
    blocked=st.sets(st.sampled_from([101, 102, 7])),
    allowance=st.integers(0, 12),
    accepting=st.booleans(),
    many=st.booleans(),
)
def test_stage_s_matches_one_by_one_oracle(
    start: int,
    steps: list[tuple[int, int, int | None]],
    blocked: set[int],
    allowance: int,
    accepting: bool,
    many: bool,
) -> None:
    # ClOrdIDs mostly rising, as a client sends them, with repeats and steps back
    clordids = np.maximum(1, start + np.cumsum([step for _, step, _ in steps]))
    msgs = [(tid, int(cl), acct) for (tid, _, acct), cl in zip(steps, clordids, strict=True)]
    entry = OrderEntry(throttle=(1.0, float(allowance)))
    # ``many``: long account lists (not in order) and thousands of blocked accounts
    accounts = (101, 9000, 102, 500, *range(20_000, 20_100)) if many else (101, 102)
    entry.login(1, KID, accounts, now=0.0)
    entry.set_blocked(blocked | set(range(1_000, 4_000)) if many else blocked)
    entry.accepting = accepting
    state = entry.by_conn[1]
    state.hwm = start
    arrival = entry.receive(1, _frame([_message(*m) for m in msgs]), recv_time=2**64 - 5, now=0.0)
    expected, mark = _oracle(start, msgs, set(accounts), blocked, allowance, accepting)
    got = _rejects(arrival.replies)
    assert got == {i: r for i, r in enumerate(expected) if r}
    assert arrival.rejected == len(got) and arrival.messages == len(msgs)
    assert state.hwm == mark
    charged = min(allowance, sum(1 for m in msgs if m[0] > 0)) if accepting else 0
    assert state.bucket.tokens == allowance - charged
    heartbeats = sum(1 for m in msgs if m[0] == _HEARTBEAT)
    assert arrival.replies.shape[0] == len(got) + heartbeats
    passed = [i for i, r in enumerate(expected) if r == 0 and msgs[i][0] > 0]
    assert arrival.inbound.size == len(passed)
    expected_bytes = [np.frombuffer(_message(*msgs[i]).tobytes(), np.uint8) for i in passed]
    assert [bytes(m) for m in arrival.inbound["message"]] == [m.tobytes() for m in expected_bytes]
    assert np.all(arrival.inbound["SessionID"] == state.session_id)
    assert np.all(arrival.inbound["SessionAccount"] == 101)
    assert np.all(arrival.inbound["InboundReserved"] == 0)
    assert np.all(arrival.inbound["RecvTime"] == 2**64 - 5)


def test_frame_and_header_refusals_leave_the_mark_alone() -> None:
    entry = _entry()
    bad = message.new_order_single(cl_ord_id=9, security_id=1, side="buy", qty=1, price="1")
    bad["schemaId"] = 61
    good = message.new_order_single(cl_ord_id=3, security_id=1, side="buy", qty=1, price="1")
    arrival = entry.receive(1, _frame([bad, good]), recv_time=1, now=0.0)
    assert _rejects(arrival.replies) == {0: codes.BRR_WRONG_SCHEMA}
    assert entry.by_conn[1].hwm == 3
    whole = entry.receive(1, b"\x01" * 59, recv_time=1, now=0.0)
    assert _rejects(whole.replies) == {codes.REF_MSG_INDEX_WHOLE_FRAME: codes.BRR_BAD_FRAME_LENGTH}
    assert whole.inbound.size == 0 and entry.by_conn[1].hwm == 3


def test_throttle_refuses_with_application_not_available_and_keeps_the_mark() -> None:
    entry = _entry(throttle=(1.0, 2.0))
    msgs = [_message(1, cl, None) for cl in (1, 2, 3)]
    arrival = entry.receive(1, _frame(msgs), recv_time=1, now=0.0)
    assert _rejects(arrival.replies) == {2: codes.BRR_APPLICATION_NOT_AVAILABLE}
    assert entry.by_conn[1].hwm == 2
    again = entry.receive(1, _frame([_message(1, 3, None)]), recv_time=1, now=1.0)  # refilled: resend works
    assert again.inbound.size == 1 and not _rejects(again.replies)


def test_not_accepting_refuses_orders_with_reason_4() -> None:
    entry = _entry()
    entry.accepting = False
    arrival = entry.receive(1, _frame([_message(1, 5, None)]), recv_time=1, now=0.0)
    assert _rejects(arrival.replies) == {0: codes.BRR_APPLICATION_NOT_AVAILABLE}
    assert entry.by_conn[1].hwm == 0


def test_heartbeat_is_answered_with_the_journaled_marks() -> None:
    entry = _entry()
    entry.receive(1, _frame([_message(1, 7, None)]), recv_time=1, now=0.0)
    # the order passed stage S but is not journaled yet: the Heartbeat must not claim it
    arrival = entry.receive(1, _frame([message.heartbeat()]), recv_time=9, now=0.0)
    hb = arrival.replies[0].view(schema.HEARTBEAT)[0]
    assert int(hb["templateId"]) == codes.TEMPLATE_HEARTBEAT
    assert int(hb["LastClOrdID"]) == 0 and int(hb["TransactTime"]) == 9
    entry.journaled_marks[0] = 7  # what the ledger does once the batch is durable
    hb = entry.receive(1, _frame([message.heartbeat()]), recv_time=10, now=0.0).replies[0].view(schema.HEARTBEAT)
    assert int(hb[0]["LastClOrdID"]) == 7


def test_too_many_rejects_asks_to_close() -> None:
    entry = _entry(max_rejects=3)
    for i in range(3):
        assert not entry.receive(1, b"x" * 7, recv_time=1, now=float(i)).close
    assert entry.receive(1, b"x" * 7, recv_time=1, now=4.0).close


def _reports(dests_and_ids: list[tuple[int, int, int]]) -> np.ndarray:
    """OUTPUT records: (dest, template, ExecID) with the ExecID at its template's offset."""
    out = np.zeros(len(dests_and_ids), schema.OUTPUT)
    for i, (dest, tid, exec_id) in enumerate(dests_and_ids):
        rec = codec.new_records(tid)
        if tid in (10, 11, 12):
            rec["ExecID"] = exec_id
        out[i]["message"] = np.frombuffer(rec.tobytes(), np.uint8)
        out[i]["dest"] = dest
    return out


def test_route_splits_by_session_in_emission_order_and_keeps_history() -> None:
    entry = _entry()
    entry.login(2, b"j" * 16, (5,), now=0.0)
    out = _reports([(0, 10, 1), (MD_DEST, 31, 0), (1, 10, 2), (0, 11, 3), (0, 12, 4), (MD_DEST, 36, 0)])
    routed, md, trades = entry.route(out)
    assert [(s.session_id, m.shape[0]) for s, m in routed] == [(0, 3), (1, 1)]
    assert md.shape[0] == 2 and trades == 1
    s0 = entry.by_id[0]
    assert entry.last_exec_ids[s0.session_id] == 4
    arrival = entry.receive(1, _frame([message.retransmit_request(from_exec_id=3, count=10)]), recv_time=1, now=0.0)
    resent = arrival.replies
    assert resent.shape[0] == 3  # ExecIDs 3, 4 and the RetransmitComplete
    assert resent[:2].tobytes() == out["message"][[3, 4]].tobytes()
    done = resent[2].view(schema.RETRANSMIT_COMPLETE)[0]
    assert int(done["SentCount"]) == 2 and int(done["LastExecID"]) == 4
    assert int(done["RetransmitStatus"]) == codes.RETRANSMIT_COMPLETED


#: templates an engine output may carry: sequenced reports, a Heartbeat, market data
_OUT_TEMPLATES = (10, 11, 12, codes.TEMPLATE_HEARTBEAT, 31, codes.TEMPLATE_TRADE)


@given(
    records=st.lists(st.tuples(st.sampled_from([0, 1, 2, MD_DEST]), st.sampled_from(_OUT_TEMPLATES)), max_size=60),
    held=st.integers(0, 8),
)
def test_route_matches_a_one_by_one_split(records: list[tuple[int, int]], held: int) -> None:
    entry = _entry()
    entry.login(2, b"j" * 16, (5,), now=0.0)
    entry.login(3, b"i" * 16, (6,), now=0.0)
    entry.last_exec_ids[:] = held  # ExecIDs up to ``held`` were routed before
    rows = []
    for k, (dest, tid) in enumerate(records):
        md = tid in (31, codes.TEMPLATE_TRADE)
        rows.append((MD_DEST if md else (dest if dest != MD_DEST else 0), tid, k + 1 if tid in (10, 11, 12) else 0))
    out = _reports(rows)
    routed, md_msgs, trades = entry.route(out)
    expected = {}
    for k, (dest, _, _) in enumerate(rows):
        if dest != MD_DEST:
            expected.setdefault(dest, []).append(k)
    assert [s.session_id for s, _ in routed] == sorted(expected)
    for state, msgs in routed:
        assert msgs.tobytes() == out["message"][expected[state.session_id]].tobytes()
        ids = [rows[k][2] for k in expected[state.session_id] if rows[k][2] > held]
        kept = [int(i) for chunk, _ in state.history.chunks for i in chunk]
        assert kept == ids and entry.last_exec_ids[state.session_id] == (ids[-1] if ids else held)
    md_rows = [k for k, r in enumerate(rows) if r[0] == MD_DEST]
    assert md_msgs.tobytes() == out["message"][md_rows].tobytes()
    assert trades == sum(1 for r in rows if r[1] == codes.TEMPLATE_TRADE)
    # a recovery's remember() keeps the same histories as live routing
    again = _entry()
    again.login(2, b"j" * 16, (5,), now=0.0)
    again.login(3, b"i" * 16, (6,), now=0.0)
    again.last_exec_ids[:] = held
    again.remember(out)
    assert np.array_equal(entry.last_exec_ids, again.last_exec_ids)
    for live, replayed in zip(entry.by_id, again.by_id, strict=True):
        assert [c.tobytes() for c, _ in live.history.chunks] == [c.tobytes() for c, _ in replayed.history.chunks]


def test_retransmit_truncates_and_reports_lost_history() -> None:
    entry = _entry(retransmit_keep=3)
    entry.route(_reports([(0, 10, i) for i in range(1, 7)]))  # keeps 4, 5, 6
    lost = entry.receive(1, _frame([message.retransmit_request(from_exec_id=2, count=5)]), recv_time=1, now=0.0)
    assert int(lost.replies[0].view(schema.RETRANSMIT_COMPLETE)[0]["RetransmitStatus"]) == codes.RETRANSMIT_UNAVAILABLE
    part = entry.receive(1, _frame([message.retransmit_request(from_exec_id=4, count=2)]), recv_time=1, now=0.0)
    done = part.replies[-1].view(schema.RETRANSMIT_COMPLETE)[0]
    assert part.replies.shape[0] == 3
    assert int(done["RetransmitStatus"]) == codes.RETRANSMIT_TRUNCATED and int(done["LastExecID"]) == 5
    bad = message.retransmit_request(from_exec_id=1, count=1)
    bad["Count"] = 0
    refused = entry.receive(1, _frame([bad]), recv_time=1, now=0.0)
    assert _rejects(refused.replies) == {0: codes.BRR_INVALID_FIELD_VALUE}


def test_session_id_is_kept_across_reconnects() -> None:
    entry = _entry()
    entry.receive(1, _frame([_message(1, 4, None)]), recv_time=1, now=0.0)
    entry.journaled_marks[0] = 4  # the ledger journaled it
    assert entry.logout(1) is not None
    state, hello = entry.login(7, KID, (101,), now=1.0)
    assert state.session_id == 0 and state.hwm == 4
    assert int(np.frombuffer(hello, np.uint8).view(schema.HEARTBEAT)[0]["LastClOrdID"]) == 4


@given(records=st.lists(st.tuples(st.integers(0, 3), st.integers(0, 2**64 - 1)), max_size=30))
def test_raise_marks_keeps_each_sessions_largest_clordid(records: list[tuple[int, int]]) -> None:
    inbound = np.zeros(len(records), schema.INBOUND_NEW_ORDER_SINGLE)
    for i, (sid, cl) in enumerate(records):
        inbound[i]["SessionID"] = sid
        inbound[i]["ClOrdID"] = cl
    words = inbound.view(np.uint32).reshape(len(records), _stage_s.INBOUND_WORDS)
    marks = np.full(5, 7, np.uint64)
    bad = _stage_s.raise_marks(words, 3, marks.copy())
    if any(sid >= 3 for sid, _ in records):
        assert bad == next(sid for sid, _ in records if sid >= 3)
        before = marks.copy()
        _stage_s.raise_marks(words, 3, marks)  # returns early: nothing raised
        assert np.array_equal(marks, before)
        return
    assert bad == -1
    _stage_s.raise_marks(words, 3, marks)
    expected = [max([7] + [cl for s, cl in records if s == sid]) for sid in range(5)]
    assert marks.tolist() == expected


def test_route_keeps_nothing_for_a_session_that_does_not_exist_yet() -> None:
    entry = _entry()  # one session (SessionID 0) of the 4,096 the table has room for
    routed, _, _ = entry.route(_reports([(0, 10, 3), (5, 10, 9)]))
    assert [s.session_id for s, _ in routed] == [0]
    assert entry.last_exec_ids[0] == 3 and entry.last_exec_ids[5] == 0
