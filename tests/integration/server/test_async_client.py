"""The asyncio client against a real server: the same session, awaited."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from qfix.client import AsyncClient, ClientError

pytestmark = pytest.mark.integration

BTC = 1


def test_two_async_clients_cross_while_the_loop_runs_other_tasks(start_server: Callable[..., Any]) -> None:
    run = start_server()

    def make(n: int) -> AsyncClient:
        home = run.home
        return AsyncClient.from_files(run.server.fix_endpoint, home / f"client-{n}.key", home / "server.key.pub")

    async def scenario() -> None:
        ticks = 0
        stop = asyncio.Event()

        async def ticker() -> None:  # the event loop must stay free while clients wait
            nonlocal ticks
            while not stop.is_set():
                ticks += 1
                await asyncio.sleep(0.005)

        tick_task = asyncio.create_task(ticker())
        a, b = make(1), make(2)
        await asyncio.gather(a.connect(), b.connect())
        bid = a.new_order(security_id=BTC, side="buy", qty=10, price="65000.00", tif="gtc")
        a.flush()
        assert await a.wait_until(lambda c: c.order(bid).status == "new")
        ask = b.new_order(security_id=BTC, side="sell", qty=4, price="64990.00")
        b.flush()
        filled = await asyncio.gather(
            b.wait_until(lambda c: c.order(ask).status == "filled"),
            a.wait_until(lambda c: c.order(bid).cum_qty == 4),
        )
        assert filled == [True, True]
        assert (a.order(bid).leaves_qty, b.order(ask).avg_px) == (6, a.order(bid).avg_px)
        cxl = a.cancel(security_id=BTC, side="buy", orig_cl_ord_id=bid)
        a.flush()
        seen = [r async for r in a.reports(timeout=0.3)]
        assert any(r.get("ClOrdID") == cxl and r["template"] == "ExecutionReport" for r in seen)
        assert a.order(bid).status == "canceled"
        assert not await b.wait_until(lambda c: False, timeout=0.05)  # a wait that times out says so
        await asyncio.gather(a.close(), b.close())
        stop.set()
        await tick_task
        assert ticks >= 10

    asyncio.run(scenario())
    assert run.server.engine.resting_orders == 0


def test_concurrent_receivers_take_turns_and_the_tracker_sees_everything(start_server: Callable[..., Any]) -> None:
    run = start_server()
    client = AsyncClient.from_files(run.server.fix_endpoint, run.home / "client-1.key", run.home / "server.key.pub")

    async def scenario() -> tuple[bool, list[dict[str, Any]]]:
        await client.connect()
        ids = [client.new_order(security_id=BTC, side="buy", qty=1, price="60000.00", tif="gtc") for _ in range(50)]
        client.flush()
        listener = asyncio.create_task(_collect(client.reports(timeout=0.5)))
        done = await client.wait_until(lambda c: all(c.order(i).status == "new" for i in ids), timeout=10)
        seen = await listener
        await client.close()
        return done, seen

    done, seen = asyncio.run(scenario())
    assert done  # every acknowledgement reached the tracker, whichever receiver read it
    assert all(r["template"] in ("ExecutionReport", "Heartbeat") for r in seen)


async def _collect(reports: Any) -> list[dict[str, Any]]:
    return [r async for r in reports]


def test_waiting_before_connecting_is_a_clear_error(start_server: Callable[..., Any]) -> None:
    run = start_server()
    client = AsyncClient.from_files(run.server.fix_endpoint, run.home / "client-1.key", run.home / "server.key.pub")
    with pytest.raises(ClientError, match="not connected"):
        asyncio.run(client.poll_raw(0.01))


def test_an_async_report_callback_is_refused(start_server: Callable[..., Any]) -> None:
    """A coroutine function as a callback would never be awaited: refused at once."""
    run = start_server()
    client = AsyncClient.from_files(run.server.fix_endpoint, run.home / "client-1.key", run.home / "server.key.pub")

    async def handler(report: dict[str, Any]) -> None:
        return None

    with pytest.raises(TypeError, match="plain function"):
        client.on_report(handler)
    assert client.on_report(print) is print
