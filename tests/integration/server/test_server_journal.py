"""The server over loopback with its journal: a restart keeps everything; a failing disk stops it."""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from qfix.client import ClientError
from qfix.journal import list_checkpoints
from qfix.testing.faults import PowerCutFiles

pytestmark = pytest.mark.integration

BTC = 1


def test_a_restart_keeps_books_sessions_and_ids(start_server: Callable[..., Any], tmp_path: Path) -> None:
    journal = tmp_path / "journal"
    run = start_server(journal_dir=journal, cancel_on_disconnect=False)
    a = run.client(1)
    ids = [a.new_order(security_id=BTC, side="buy", qty=5, price=f"6400{i}.00", tif="gtc") for i in range(4)]
    a.flush()
    assert a.wait_until(lambda c: all(c.order(i).status == "new" for i in ids))
    last_exec = a.orders.last_exec_id
    state_hash = run.server.engine.state_hash()
    run.stop()  # clean shutdown: a final checkpoint
    assert list_checkpoints(journal)[-1][0] == run.server.ledger.last_seq

    again = start_server(journal_dir=journal, cancel_on_disconnect=False)
    assert again.server.engine.state_hash() == state_hash
    b = again.client(1)  # a fresh tracker for the same key: it asks for what it missed
    assert b.next_cl_ord_id == ids[-1] + 1
    assert b.wait_until(lambda c: c.orders.last_exec_id == last_exec)
    restored = {o.cl_ord_id: o.status for o in b.orders.by_order_id.values()}
    assert restored == dict.fromkeys(ids, "new")
    cxl = b.cancel(security_id=BTC, side="buy", order_id=b.orders.by_order_id[a.order(ids[0]).order_id].order_id)
    b.flush()
    assert b.wait_until(lambda c: any(o.status == "canceled" for o in c.orders.by_order_id.values()))
    assert cxl > ids[-1]
    assert b.orders.last_exec_id == last_exec + 1  # ExecIDs continue, never reused
    assert again.server.engine.resting_orders == 3


@pytest.mark.parametrize("seed", [1, 2, 3])  # the power cut keeps the unsynced record or not
def test_a_failing_disk_stops_acknowledging(start_server: Callable[..., Any], tmp_path: Path, seed: int) -> None:
    files = PowerCutFiles(random.Random(seed))
    run = start_server(files=files, journal_dir=tmp_path / "journal", cancel_on_disconnect=False)
    a = run.client(1)
    first = a.new_order(security_id=BTC, side="buy", qty=1, price="64000.00", tif="gtc")
    a.flush()
    assert a.wait_until(lambda c: c.order(first).status == "new")
    files.fail_sync_after = files.syncs  # the disk fails from now on
    second = a.new_order(security_id=BTC, side="buy", qty=1, price="64001.00", tif="gtc")
    a.flush()
    run.thread.join(10)
    assert not run.thread.is_alive(), "the server kept running on a failed journal"
    assert "cannot make records" in run.server.failure
    with contextlib.suppress(ClientError):  # the server closed the session as it stopped
        a.poll(0.5)
    # neither acknowledged nor rejected: whether it reached the disk is not known yet
    assert a.order(second).status == "pending-new" and not a.rejects
    a.close()
    files.power_cut()
    again = start_server(journal_dir=tmp_path / "journal", cancel_on_disconnect=False)
    b = again.client(1)
    assert b.wait_until(lambda c: c.orders.last_exec_id >= 1)
    survived = b.next_cl_ord_id > second  # LastClOrdID says whether the order was journaled
    assert again.server.engine.resting_orders == 1 + survived
    if survived:  # then its report comes by retransmission
        assert b.wait_until(lambda c: c.orders.last_exec_id >= 2)
    statuses = sorted(o.status for o in b.orders.by_order_id.values())
    assert statuses == ["new"] * (1 + survived)
