"""The SDK's catch-up after a reconnect: every missed report applied once, in ExecID order,
even when live reports overtake the retransmission it asked for."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from qfix.client import Client
from qfix.crypto.keys import generate_signing_key
from qfix.crypto.primitives import SignatureAlg
from qfix.qzmq import Messages
from qfix.wire import codec, codes

P9 = 10**9


def _er(exec_id: int, kind: int, status: int, last_qty: int, leaves: int) -> bytes:
    er = codec.new_records(codes.TEMPLATE_EXECUTION_REPORT)
    er["ExecID"], er["ClOrdID"], er["OrderID"] = exec_id, 1, 7
    er["ExecType"], er["OrdStatus"] = kind, status
    er["LastQty"], er["LastPx"], er["LeavesQty"] = last_qty, 65_000 * P9, leaves
    return er.tobytes()


def _heartbeat(last_exec_id: int, last_cl: int = 1) -> bytes:
    hb = codec.new_records(codes.TEMPLATE_HEARTBEAT)
    hb["LastExecID"], hb["LastClOrdID"] = last_exec_id, last_cl
    return hb.tobytes()


def _complete(status: int, last: int) -> bytes:
    rc = codec.new_records(codes.TEMPLATE_RETRANSMIT_COMPLETE)
    rc["RetransmitStatus"], rc["LastExecID"] = status, last
    return rc.tobytes()


NEW = _er(1, codes.EXEC_TYPE_NEW, codes.ORD_STATUS_NEW, 10, 10)
FILL_3 = _er(3, codes.EXEC_TYPE_TRADE, codes.ORD_STATUS_PARTIALLY_FILLED, 3, 7)
FILL_4 = _er(4, codes.EXEC_TYPE_TRADE, codes.ORD_STATUS_PARTIALLY_FILLED, 2, 5)
FILL_6 = _er(6, codes.EXEC_TYPE_TRADE, codes.ORD_STATUS_PARTIALLY_FILLED, 1, 4)  # live, after the mark


@pytest.fixture(scope="module")
def keys() -> tuple[Any, Any]:
    server = generate_signing_key(SignatureAlg.ML_DSA_65)
    return generate_signing_key(SignatureAlg.ML_DSA_65), server.verify_key()


def _client(keys: tuple[Any, Any]) -> tuple[Client, list[tuple[int, int]]]:
    """A client that has applied ExecID 1 and lost its connection; asks are recorded."""
    c = Client("tcp://127.0.0.1:1", keys[0], keys[1])
    c.orders.sent_new(1, 1, codes.SIDE_BUY, 10, 65_000 * P9)
    c.orders.apply(np.frombuffer(NEW, np.uint8).reshape(1, 60))
    asked: list[tuple[int, int]] = []
    c.request_retransmit = lambda first, count: asked.append((first, count))  # type: ignore[method-assign]
    return c, asked


def _feed(c: Client, *frames: bytes) -> None:
    for frame in frames:
        c._take(Messages(frames=(frame,), fixed=True, conn=0))


def test_a_live_report_that_overtakes_the_retransmission_waits(keys: tuple[Any, Any]) -> None:
    c, _ = _client(keys)
    # the Heartbeat says 4 was the last ExecID; a live fill (6) arrives in the same frame
    _feed(c, _heartbeat(4) + FILL_6, FILL_3 + FILL_4 + _complete(codes.RETRANSMIT_COMPLETED, 4))
    order = c.orders.by_order_id[7]
    assert (c.orders.fills, order.cum_qty, order.leaves_qty) == (3, 6, 4)
    assert c.orders.last_exec_id == 6
    got = c._inbox  # what poll_raw hands the caller next, in the order applied
    ids = [int(np.frombuffer(m[32:40].tobytes(), "<u8")[0]) for m in np.concatenate(got) if m[2] == 10]
    assert ids == [3, 4, 6]


def test_without_a_live_report_nothing_waits(keys: tuple[Any, Any]) -> None:
    c, _ = _client(keys)
    _feed(c, _heartbeat(4), FILL_3)
    assert c.orders.last_exec_id == 3  # retransmitted reports are applied as they come
    _feed(c, FILL_4 + _complete(codes.RETRANSMIT_COMPLETED, 4), FILL_6)
    assert c.orders.last_exec_id == 6 and c.orders.fills == 3


def test_a_truncated_answer_asks_for_the_rest(keys: tuple[Any, Any]) -> None:
    c, asked = _client(keys)
    _feed(c, _heartbeat(4), FILL_3 + _complete(codes.RETRANSMIT_TRUNCATED, 3))
    assert asked == [(4, 1)]
    _feed(c, FILL_6)
    assert c.orders.last_exec_id == 3  # still waiting for 4
    _feed(c, FILL_4 + _complete(codes.RETRANSMIT_COMPLETED, 4))
    assert c.orders.last_exec_id == 6 and c.orders.fills == 3


def test_unavailable_reports_end_the_catch_up_and_are_counted(keys: tuple[Any, Any]) -> None:
    c, _ = _client(keys)
    _feed(c, _heartbeat(4) + FILL_6, _complete(codes.RETRANSMIT_UNAVAILABLE, 0))
    assert c.retransmit_unavailable == 1 and c.orders.last_exec_id == 6


def test_nothing_missed_means_no_catch_up(keys: tuple[Any, Any]) -> None:
    c, asked = _client(keys)
    _feed(c, _heartbeat(1) + FILL_3)
    assert c.orders.last_exec_id == 3 and asked == []


def test_a_truncated_answer_that_covered_the_gap_ends_the_catch_up(keys: tuple[Any, Any]) -> None:
    """The server fills a request's room with later reports too: an answer cut short
    after the mark has delivered everything missed, and nothing may stay held."""
    c, asked = _client(keys)
    fill_7 = _er(7, codes.EXEC_TYPE_TRADE, codes.ORD_STATUS_PARTIALLY_FILLED, 1, 3)
    _feed(c, _heartbeat(4) + FILL_6, fill_7, FILL_3 + FILL_4 + FILL_6 + _complete(codes.RETRANSMIT_TRUNCATED, 6))
    assert asked == [] and c._catch_up_to == 0 and not c._held
    assert c.orders.last_exec_id == 7 and c.orders.fills == 4
