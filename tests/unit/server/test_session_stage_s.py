"""Stage S (WIRE.md §5.1) of the session layer: vectorised checks against a one-by-one oracle."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

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


def _oracle(hwm: int, msgs: list[tuple[int, int, int | None]], accounts: set[int]) -> tuple[list[int], int]:
    """(template, ClOrdID, Account) one at a time: reasons (0 = passed) and the final mark."""
    reasons = []
    for tid, cl, acct in msgs:
        if cl <= hwm:
            reasons.append(codes.BRR_CLORDID_NOT_INCREASING)
        elif tid in (1, 4) and acct is not None and acct not in accounts:
            reasons.append(codes.BRR_UNKNOWN_ACCOUNT)
        else:
            reasons.append(0)
            hwm = cl
    return reasons, hwm


def _message(tid: int, cl: int, acct: int | None) -> np.void:
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
    msgs=st.lists(
        st.tuples(st.integers(1, 4), st.integers(1, 40), st.sampled_from([None, 101, 102, 7])), min_size=1, max_size=40
    ),
)
def test_stage_s_matches_one_by_one_oracle(start: int, msgs: list[tuple[int, int, int | None]]) -> None:
    entry = _entry()
    state = entry.by_conn[1]
    state.hwm = start
    arrival = entry.receive(1, _frame([_message(*m) for m in msgs]), recv_time=5, now=0.0)
    expected, mark = _oracle(start, msgs, {101, 102})
    got = _rejects(arrival.replies)
    assert got == {i: r for i, r in enumerate(expected) if r}
    assert state.hwm == mark
    passed = [i for i, r in enumerate(expected) if r == 0]
    assert arrival.inbound.size == len(passed)
    assert list(arrival.inbound.view(schema.INBOUND_NEW_ORDER_SINGLE)["ClOrdID"]) == [msgs[i][1] for i in passed]
    assert np.all(arrival.inbound["SessionID"] == state.session_id)
    assert np.all(arrival.inbound["SessionAccount"] == 101)
    assert np.all(arrival.inbound["RecvTime"] == 5)


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
    routed, md = entry.route(out)
    assert [(s.session_id, m.shape[0]) for s, m in routed] == [(0, 3), (1, 1)]
    assert md.shape[0] == 2
    s0 = entry.by_id[0]
    assert s0.last_exec_id == 4
    arrival = entry.receive(1, _frame([message.retransmit_request(from_exec_id=3, count=10)]), recv_time=1, now=0.0)
    resent = arrival.replies
    assert resent.shape[0] == 3  # ExecIDs 3, 4 and the RetransmitComplete
    assert resent[:2].tobytes() == out["message"][[3, 4]].tobytes()
    done = resent[2].view(schema.RETRANSMIT_COMPLETE)[0]
    assert int(done["SentCount"]) == 2 and int(done["LastExecID"]) == 4
    assert int(done["RetransmitStatus"]) == codes.RETRANSMIT_COMPLETED


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
