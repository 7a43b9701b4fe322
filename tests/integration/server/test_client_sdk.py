"""The client SDK's report callbacks, and how a client learns that the server gave up on
its session, against a real server on loopback."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Final

import numpy as np
import pytest

from qfix.client import Client, ClientError, Report
from qfix.qzmq import adapter
from qfix.wire import message

pytestmark = pytest.mark.integration

BTC: Final = 1
#: the server's Heartbeat interval in the silence test, and the client's silence limit:
#: a few intervals, so that only a session the server really dropped goes quiet that long
_HEARTBEAT_S: Final = 0.2
_SILENCE_S: Final = 1.5
#: the endpoint's backlog limit in the silence test (4,096 records by default): reached
#: within a second by a client that does not read
_SMALL_BACKLOG: Final = 16
#: orders per record the non-reading client sends: small records, so that what the
#: socket buffers hold for it when it reads again is little to drain
_ORDERS_PER_RECORD: Final = 20


def test_report_callbacks_get_every_message_in_order(start_server: Callable[..., Any]) -> None:
    """Every message a poll returns reaches every callback, decoded as ``poll`` decodes
    it and in the same order, after the tracker applied it; a removed callback gets no
    more; a callback's exception propagates out of the poll, and the tracker still has
    every report of that poll."""
    run = start_server()
    a, b = run.client(1), run.client(2)
    seen: list[Report] = []
    statuses: list[str] = []

    @a.on_report
    def record(report: Report) -> None:
        seen.append(report)
        if report["template"] == "ExecutionReport":
            # the tracker applied the report before the callback saw it
            statuses.append(a.order(report["ClOrdID"]).status)

    counted = a.on_report(lambda report: None)
    returned: list[np.ndarray] = []
    bid = a.new_order(security_id=BTC, side="buy", qty=10, price="65000.00", tif="gtc")
    a.flush()
    ask = b.new_order(security_id=BTC, side="sell", qty=4, price="64990.00")
    b.flush()
    deadline = time.monotonic() + 5
    while a.order(bid).cum_qty < 4 and time.monotonic() < deadline:
        got = a.poll_raw(0.02)
        if got.size:
            returned.append(got)
        b.poll_raw(0)
    assert a.order(bid).cum_qty == 4 and b.wait_until(lambda c: c.order(ask).status == "filled")
    assert [message.describe(m) for m in np.concatenate(returned)] == seen
    assert [r["template"] for r in seen if r["template"] != "Heartbeat"] == ["ExecutionReport"] * 2
    # the tracker applies each poll's messages before any callback sees them
    assert len(statuses) == 2 and "pending-new" not in statuses and statuses[-1] == "partially-filled"
    a.remove_callback(counted)
    a.remove_callback(record)

    def failing(report: Report) -> None:
        if report["template"] == "ExecutionReport":
            raise RuntimeError("the application's bug")

    a.on_report(failing)
    a.cancel(security_id=BTC, side="buy", orig_cl_ord_id=bid)
    a.flush()
    with pytest.raises(RuntimeError, match="the application's bug") as caught:
        a.wait_until(lambda c: False, timeout=5)
    assert any("report callback" in note for note in getattr(caught.value, "__notes__", []))
    assert a.order(bid).status == "canceled"
    a.remove_callback(failing)
    # a callback that removes itself does not make the next one miss the message
    later: list[str] = []

    def once(report: Report) -> None:
        a.remove_callback(once)

    a.on_report(once)
    a.on_report(lambda report: later.append(report["template"]))
    a.heartbeat()
    a.flush()
    assert a.wait_until(lambda c: bool(later), timeout=5)  # the server's Heartbeat comes within its interval
    assert once not in a._callbacks
    assert len(seen) == sum(m.shape[0] for m in returned)  # the removed callbacks got nothing more


def test_an_idle_session_of_a_live_server_is_never_taken_as_lost(start_server: Callable[..., Any]) -> None:
    """The server's Heartbeats keep an idle session alive: a client polling for several
    of its silence limits, sending nothing, keeps its connection."""
    run = start_server(journal=False, heartbeat_interval=_HEARTBEAT_S)
    home = run.home
    idle = Client.from_files(
        run.server.fix_endpoint, home / "client-1.key", home / "server.key.pub", silence_timeout=_SILENCE_S
    )
    idle.connect(timeout=10.0, attempts=2)
    heard = 0
    end = time.monotonic() + 3 * _SILENCE_S
    while time.monotonic() < end:
        heard += idle.poll_raw(0.05).shape[0]
    assert idle.connected and heard >= 3 * _SILENCE_S / _HEARTBEAT_S / 2, heard
    idle.close()


def test_a_session_the_server_gave_up_on_ends_at_the_client(
    start_server: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A client that stops reading its reports fills its pipe, then its backlog in the
    server's endpoint; the server then ends the session (it cannot say so: the pipe is
    full). The client, once it reads again, gets what was sent before that and then
    silence: past ``silence_timeout`` its poll ends the connection with ClientError, and
    it can connect again. Another client trades on throughout."""
    monkeypatch.setattr(adapter, "MAX_BACKLOG", _SMALL_BACKLOG)
    run = start_server(journal=False, heartbeat_interval=_HEARTBEAT_S, sndhwm=4)
    home = run.home
    slow = Client.from_files(
        run.server.fix_endpoint,
        home / "client-1.key",
        home / "server.key.pub",
        silence_timeout=_SILENCE_S,
        track_orders=False,  # what it drains is read in bulk, not tracked one by one
    )
    slow.connect(timeout=10.0, attempts=2)
    other = run.client(2)
    dropped = run.server.endpoint.send_failures
    order = message.new_order_single(cl_ord_id=1, security_id=BTC, side="buy", qty=1, price="60000.00", tif="ioc")
    deadline = time.monotonic() + 20
    while run.server.endpoint.send_failures == dropped and time.monotonic() < deadline:
        # records of IOC orders that rest nowhere: two reports each, never read
        batch = np.zeros((_ORDERS_PER_RECORD, 60), np.uint8)
        for i in range(batch.shape[0]):
            order["ClOrdID"] = slow.next_cl_ord_id
            slow.next_cl_ord_id += 1
            batch[i] = np.frombuffer(order.tobytes(), np.uint8)
        slow.send_frame(batch.tobytes())
        cl = other.new_order(security_id=BTC, side="sell", qty=1, price="70000.00", tif="ioc")
        other.flush()
        assert other.wait_until(lambda c, cl=cl: c.order(cl).status != "pending-new", timeout=5)
    assert run.server.endpoint.send_failures > dropped, "the server never gave up on the client that does not read"
    ended = time.monotonic()
    with pytest.raises(ClientError, match="silence_timeout"):
        while time.monotonic() < ended + 30:
            slow.poll_raw(0.05)
    assert not slow.connected
    # well before the client's other timers: silence_timeout after the last record came
    assert time.monotonic() - ended < 30
    cl = other.new_order(security_id=BTC, side="sell", qty=1, price="70000.00", tif="ioc")
    other.flush()
    assert other.wait_until(lambda c: c.order(cl).status != "pending-new", timeout=5)
    slow.connect(timeout=10.0, attempts=3)
    assert slow.connected
    slow.close()
