"""Operating a running server: the allow-list reloaded under live sessions, and the
trading day closed by the server's own clock.

Both are things an operator relies on without watching: a key taken off the allow-list
must lose its session at once (and only that key), and the trading day must end at
``server.end_of_day`` even when nobody sends ``qfix admin end-of-day``. The admin
command paths are covered in test_server_loopback.py; these tests drive the same
server steps the other way in, through a real server on loopback.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

import pytest

from qfix.client import Client, ClientError
from qfix.crypto.keys import load_private_key, render_allow_entry
from qfix.server.config import end_of_day_offset_ns
from qfix.server.defaults import ADMIN_ACCOUNT, DEMO_CLIENTS

pytestmark = pytest.mark.integration

BTC: Final = 1
#: how long a report, a close or a server-side change may take to show (a loaded 2-core machine)
WAIT_S: Final = 5.0
#: seconds a client waits for a handshake the server is expected to refuse (it answers
#: ERROR at once; this only bounds a server that stays silent)
REFUSED_HANDSHAKE_S: Final = 5.0
DAY_NS: Final = 86_400 * 10**9
HOUR_NS: Final = 3_600 * 10**9
#: the configured end of day is put this far from now, so the real wall clock cannot close
#: a trading day while the test runs: only the test's own trigger can
EOD_DISTANCE_H: Final = 12
#: the accounts of the default setup's keys (``qfix.server.defaults``)
ACCOUNTS: Final = dict(DEMO_CLIENTS)
TRADER, REVOKED = 1, 2  #: client-1 keeps its key; client-2 is taken off the allow-list


def _write_allow_list(path: Path, home: Path, clients: tuple[int, ...]) -> None:
    """An allow-list of the admin key and the given client-n keys of the setup ``home``,
    as an operator would edit it (the server refuses a group- or other-writable one)."""
    entries = [render_allow_entry(load_private_key(home / "admin.key"), [ADMIN_ACCOUNT])]
    entries += [
        render_allow_entry(load_private_key(home / f"client-{n}.key"), [ACCOUNTS[f"client-{n}"]]) for n in clients
    ]
    path.write_text("\n".join(entries))
    path.chmod(0o644)


def _wait_for_close(c: Client, limit: float = WAIT_S) -> str:
    """Poll ``c`` until its SDK reports the server closed the connection; the message."""
    end = time.monotonic() + limit
    while time.monotonic() < end:
        try:
            c.poll_raw(0.02)
        except ClientError as exc:
            return str(exc)
    return ""


def _wait(predicate: Callable[[], bool], limit: float = WAIT_S) -> bool:
    """Poll a condition on the server (run by its own thread) until it holds or ``limit`` s pass."""
    end = time.monotonic() + limit
    while not predicate():
        if time.monotonic() > end:
            return False
        time.sleep(0.01)
    return True


def test_reloading_the_allow_list_revokes_a_key_and_restoring_it_lets_it_back(
    start_server: Callable[..., Any], setup_home: Path, tmp_path: Path
) -> None:
    """``qfix admin reload`` re-reads the allow-list file: the session of a key removed from
    it is closed by the server (its client sees the close, its resting orders are
    cancelled on disconnect), the key can no longer complete a handshake, and the other
    sessions trade on untouched; the reply counts the sessions it closed. Putting the key
    back and reloading again lets it connect to the same session (its ClOrdID mark kept).

    The server reads a copy of the allow-list in ``tmp_path``: the shared setup folder
    other tests use is never changed."""
    allow = tmp_path / "allow.toml"
    _write_allow_list(allow, setup_home, (TRADER, REVOKED))
    run = start_server(journal=False, allow_list_file=allow)
    op, a, b = run.operator(), run.client(TRADER), run.client(REVOKED)

    # both keys trade before the reload: a's bid is partly filled by b's offer, and b
    # leaves an offer resting that its session's end must cancel
    bid = a.new_order(security_id=BTC, side="buy", qty=5, price="65000.00", tif="gtc")
    a.flush()
    assert a.wait_until(lambda c: c.order(bid).status == "new")
    hit = b.new_order(security_id=BTC, side="sell", qty=2, price="65000.00")
    rest = b.new_order(security_id=BTC, side="sell", qty=1, price="66000.00", tif="gtc")
    b.flush()
    assert b.wait_until(lambda c: c.order(hit).status == "filled" and c.order(rest).status == "new")
    assert a.wait_until(lambda c: c.order(bid).cum_qty == 2)
    assert _wait(lambda: run.server.engine.resting_orders == 2)

    _write_allow_list(allow, setup_home, (TRADER,))
    assert op.admin("reload") == {"ok": True, "op": "reload", "clients": 2, "closed_sessions": 1}
    assert "closed by the server" in _wait_for_close(b)
    assert not b.connected
    # the revoked session ended, not only its connection: cancel-on-disconnect took its offer
    assert _wait(lambda: run.server.engine.resting_orders == 1)
    assert run.server.engine.live_orders()["order_id"].tolist() == [a.order(bid).order_id]

    refused_before = run.server.protocol.counters.auth_failed
    stranger = run.client(REVOKED, connect=False)
    with pytest.raises(ClientError, match="handshake failed"):
        stranger.connect(timeout=REFUSED_HANDSHAKE_S, attempts=1)
    assert run.server.protocol.counters.auth_failed == refused_before + 1

    # the key that stayed trades on, on the connection it had
    more = a.new_order(security_id=BTC, side="buy", qty=1, price="64000.00", tif="gtc")
    a.flush()
    assert a.wait_until(lambda c: c.order(more).status == "new")
    assert a.connected and a.order(bid).status == "partially-filled"

    _write_allow_list(allow, setup_home, (TRADER, REVOKED))
    assert op.admin("reload") == {"ok": True, "op": "reload", "clients": 3, "closed_sessions": 0}
    back = run.client(REVOKED)
    assert back.next_cl_ord_id == b.next_cl_ord_id  # the same session: its ClOrdID mark was kept
    again = back.new_order(security_id=BTC, side="sell", qty=1, price="66000.00", tif="gtc")
    back.flush()
    assert back.wait_until(lambda c: c.order(again).status == "new")
    assert a.connected


def test_the_server_clock_closes_the_trading_day(start_server: Callable[..., Any]) -> None:
    """At ``server.end_of_day`` the loop's housekeeping closes the trading day by itself,
    with no admin command: Day orders and GTD orders expiring today get ExecutionReport
    Expired while GTC orders and GTD orders expiring tomorrow stay live; the per-session
    reject counters start again; the market-data feeds restart their numbering; and the
    next end of day is scheduled for the configured time within the next 24 hours (not
    left due, which would close a day on every pass).

    Waiting for a real wall-clock minute is not an option, and the server has no
    injectable clock: the test makes the end of day due by setting
    ``Server._next_eod_ns`` (the instant ``_housekeeping`` compares ``time.time_ns()``
    with) to 0, as test_server_auctions.py does for the daily schedule. The configured
    time is put 12 hours away, so the real clock cannot close a day during the test."""
    now = time.time_ns()
    hhmm = time.strftime("%H:%M", time.gmtime((now + EOD_DISTANCE_H * HOUR_NS) // 10**9))
    run = start_server(journal=False, end_of_day=hhmm)
    server = run.server
    md = server.md
    assert md is not None
    feeds_at_start = md.publisher.channel_seq.copy()  # the start's Reset and reference data
    a = run.client(TRADER)
    assert server._next_eod_ns > time.time_ns() + (EOD_DISTANCE_H - 1) * HOUR_NS  # not due by itself

    today = time.time_ns() // DAY_NS  # ExpireDate: days since 1970-01-01, UTC like the engine's day
    order = {"security_id": BTC, "side": "buy", "qty": 1, "price": "64000.00"}
    day = a.new_order(**order, tif="day")
    gtc = a.new_order(**order, tif="gtc")
    gtd_today = a.new_order(**order, tif="gtd", expire_date=today)
    gtd_tomorrow = a.new_order(**order, tif="gtd", expire_date=today + 1)
    a.new_order(**order, account=ACCOUNTS["client-2"])  # not client-1's account: refused, counted
    a.flush()
    assert a.wait_until(lambda c: all(c.order(cl).status == "new" for cl in (day, gtc, gtd_today, gtd_tomorrow)))
    assert a.wait_until(lambda c: len(c.rejects) == 1)
    session = server.entry.by_kid[a.key.kid]
    assert session.rejects == 1
    assert _wait(lambda: server.engine.resting_orders == 4)
    # the orders moved the feeds on (their market data goes out just after their reports)
    assert _wait(lambda: bool((md.publisher.channel_seq != feeds_at_start).any()))
    assert server.trading_days_closed == 0

    server._next_eod_ns = 0  # due now: the loop's housekeeping closes the day on its next pass
    assert a.wait_until(lambda c: c.order(day).status == "expired" and c.order(gtd_today).status == "expired")
    assert _wait(lambda: server.trading_days_closed == 1)
    assert a.order(gtc).status == a.order(gtd_tomorrow).status == "new"
    live = sorted(server.engine.live_orders()["order_id"].tolist())
    assert live == sorted([a.order(gtc).order_id, a.order(gtd_tomorrow).order_id])
    assert session.rejects == 0
    assert (md.publisher.channel_seq == feeds_at_start).all()  # a Reset, then the reference data again
    after = time.time_ns()
    assert after < server._next_eod_ns <= after + DAY_NS
    assert server._next_eod_ns % DAY_NS == end_of_day_offset_ns(hhmm)
    assert server.trading_days_closed == 1
    # the session goes on into the new day
    late = a.new_order(**order, tif="day")
    a.flush()
    assert a.wait_until(lambda c: c.order(late).status == "new")
