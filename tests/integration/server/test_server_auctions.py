"""Auctions through the server: an opening auction run by an admin phase change and by the
daily schedule, a halted book reopened by ``resume``, a frequent-batch instrument uncrossed
by the server's clock, and a journal that replays the ticks to the same state."""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from qfix.client import Client
from qfix.engine import Engine
from qfix.engine.config import PHASE_CLOSED, PHASE_CONTINUOUS, PHASE_PRE_OPEN
from qfix.journal import REFUSED, EngineDriver, decode, is_engine_entry, read_journal
from qfix.server import load_config
from qfix.server.config import ScheduledPhase

pytestmark = pytest.mark.integration

BTC = 1


def _cross(a: Client, b: Client) -> tuple[int, int]:
    """A bid of 5 at 65010 and an offer of 3 at 64990, both acknowledged: they rest in a
    call phase; a batch auction may already have uncrossed them."""
    bid = a.new_order(security_id=BTC, side="buy", qty=5, price="65010.00", tif="gtc")
    ask = b.new_order(security_id=BTC, side="sell", qty=3, price="64990.00", tif="gtc")
    a.flush()
    b.flush()
    assert a.wait_until(lambda c: c.order(bid).status != "pending-new")
    assert b.wait_until(lambda c: c.order(ask).status != "pending-new")
    return bid, ask


def _assert_uncrossed(a: Client, b: Client, bid: int, ask: int) -> None:
    """V = 3 at every price from 64990 to 65010 with buy pressure everywhere (I = +2): the
    highest of them, 65010, is the clearing price (ENGINE.md §7.4 rule 3)."""
    assert b.wait_until(lambda c: c.order(ask).status == "filled")
    assert a.wait_until(lambda c: c.order(bid).cum_qty == 3)
    assert a.order(bid).avg_px == b.order(ask).avg_px == Decimal("65010")
    assert a.order(bid).leaves_qty == 2


def test_an_opening_auction_uncrosses_the_book_at_one_price(start_server: Callable[..., Any]) -> None:
    run = start_server()
    op, a, b = run.operator(), run.client(1), run.client(2)
    assert op.admin("phase", security_ids=[BTC], phase="closed")["ok"]
    assert op.admin("phase", security_ids=[BTC], phase="pre-open")["ok"]
    bid, ask = _cross(a, b)
    assert run.server.engine.resting_orders == 2  # nothing matches in a call phase
    assert op.admin("phase", security_ids=[BTC], phase="continuous")["ok"]
    _assert_uncrossed(a, b, bid, ask)
    assert run.server.metrics.totals.trades == 1
    assert run.server.engine.instrument_rows()["ref"][0] == 65010 * 100  # Ref follows P (tick 0.01)


def test_resume_reopens_a_halted_book_through_an_auction(start_server: Callable[..., Any]) -> None:
    run = start_server()
    op, a, b = run.operator(), run.client(1), run.client(2)
    assert op.admin("phase", security_ids=[BTC], phase="closed")["ok"]
    assert op.admin("phase", security_ids=[BTC], phase="pre-open")["ok"]
    bid, ask = _cross(a, b)
    assert op.admin("halt", security_ids=[BTC])["ok"]
    reply = op.admin("resume", security_ids=[BTC])
    assert reply["ok"], reply
    _assert_uncrossed(a, b, bid, ask)
    assert op.admin("status")["status"]["instruments"][str(BTC)] == "continuous"


@pytest.fixture
def batch_auction(setup_home: Path) -> Callable[..., Any]:
    """``start_server`` arguments making BTC a frequent batch auction every 50 ms."""

    def overrides(**kw: Any) -> dict[str, Any]:
        instruments = load_config(setup_home / "qfix.toml").instruments
        fba = tuple(
            dataclasses.replace(i, fba_interval_ns=50_000_000) if i.security_id == BTC else i for i in instruments
        )
        return {"instruments": fba, **kw}

    return overrides


def test_a_batch_auction_instrument_uncrosses_by_the_clock(
    start_server: Callable[..., Any], batch_auction: Callable[..., Any]
) -> None:
    run = start_server(**batch_auction())
    a, b = run.client(1), run.client(2)
    bid, ask = _cross(a, b)
    # no further input: the loop's housekeeping runs the tick when it is due
    _assert_uncrossed(a, b, bid, ask)
    assert run.server.engine.resting_orders == 1
    assert int(run.server.engine.instrument_rows()["next_uncross"][0]) > 0
    # an idle book is not ticked again: nothing more is journaled while no order arrives
    time.sleep(0.2)
    seq = run.server.ledger.last_seq
    time.sleep(0.3)  # six intervals
    assert run.server.ledger.last_seq == seq


def test_the_journal_replays_batch_auction_ticks_to_the_same_state(
    start_server: Callable[..., Any], batch_auction: Callable[..., Any], tmp_path: Path
) -> None:
    journal = tmp_path / "journal"
    run = start_server(**batch_auction(journal_dir=journal, cancel_on_disconnect=False))
    a, b = run.client(1), run.client(2)
    bid, ask = _cross(a, b)
    _assert_uncrossed(a, b, bid, ask)
    config = run.server.config
    run.stop()
    state_hash = run.server.engine.state_hash()
    # every journaled input from the first, into a fresh engine: the ticks and indicative
    # publications are engine inputs like the batches, so the state comes out the same
    engine = Engine(config.instruments, config.engine)
    driver = EngineDriver(engine)
    kinds = set()
    for _seq, kind, payload in read_journal(journal, 0):
        entry = decode(kind, payload)
        kinds.add(type(entry).__name__)
        if is_engine_entry(entry):
            with contextlib.suppress(*REFUSED):
                driver.apply(entry, lambda out: None)
    assert {"AuctionTick", "Batch"} <= kinds
    assert engine.state_hash() == state_hash


def test_the_schedule_runs_the_opening_auction_by_the_clock(start_server: Callable[..., Any]) -> None:
    schedule = (
        ScheduledPhase("06:00", PHASE_CLOSED, (BTC,)),
        ScheduledPhase("07:00", PHASE_PRE_OPEN, (BTC,)),
        ScheduledPhase("08:00", PHASE_CONTINUOUS, ()),  # every instrument: 2 is halted by then
    )
    run = start_server(schedule=schedule)
    op, a, b = run.operator(), run.client(1), run.client(2)
    server = run.server
    assert all(due > time.time_ns() for due in server._next_phase_ns)

    def fire(k: int, phase: str) -> None:
        server._next_phase_ns[k] = 0  # due now: the loop's housekeeping applies it
        end = time.monotonic() + 10
        while op.admin("status")["status"]["instruments"][str(BTC)] != phase and time.monotonic() < end:
            time.sleep(0.02)
        assert op.admin("status")["status"]["instruments"][str(BTC)] == phase
        assert server._next_phase_ns[k] > time.time_ns()  # the same time tomorrow

    assert op.admin("halt", security_ids=[2])["ok"]
    fire(0, "closed")
    fire(1, "pre-open")
    bid, ask = _cross(a, b)
    fire(2, "continuous")
    _assert_uncrossed(a, b, bid, ask)
    # the operator's halt of 2 stands: the schedule does not reopen it
    assert op.admin("status")["status"]["instruments"]["2"] == "halted"
