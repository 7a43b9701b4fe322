"""The asyncio face of the client: the same session, awaited instead of blocked on.

Theory of operation: :class:`AsyncClient` owns a :class:`~qfix.client.Client` and adds
nothing to what it does; only the waiting changes. Sending never blocks (libzmq queues
and the endpoint keeps a bounded backlog), so the builders and ``flush`` stay plain
methods. Receiving waits for the socket's file descriptor with ``loop.add_reader``
and then drains without blocking; libzmq's descriptor is edge-triggered, so every
wake-up is followed by a non-blocking read until nothing is left, and a wait never
lasts longer than the endpoint's timer tick, so heartbeats, rekeying and timeouts run
as they do for the synchronous client. The handshake's ML-DSA and ML-KEM work runs in
a worker thread (``asyncio.to_thread``) so that it does not hold up the event loop;
the socket is used by one thread at a time, which libzmq allows.

Receiving is serialised: concurrent ``poll``/``reports``/``wait_until`` calls take
turns, and a message goes to whichever call read it (every one is applied to
:attr:`orders` first, so predicates over the order state see them all). Timers run
only while a call is receiving; a program that sends and then does other work for
longer than a heartbeat interval should keep a task in ``reports()`` or ``poll()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

import numpy.typing as npt
import zmq

from qfix.client.client import Client, ClientError, Report, ReportCallback
from qfix.client.tracker import OrderState, OrderTracker
from qfix.wire import message

__all__ = ["AsyncClient"]

Array = npt.NDArray[Any]

#: longest single wait on the socket, so that the endpoint's timers keep running
_TICK_S: Final = 0.05
#: longest wait while sent records are still queued in the endpoint (as the sync client)
_BACKLOG_TICK_S: Final = 0.001


class AsyncClient:
    """One order-entry session for asyncio programs.

    Example::

        async def main() -> None:
            client = AsyncClient.from_files("tcp://127.0.0.1:5555", ".qfix/client-1.key", ".qfix/server.key.pub")
            await client.connect()
            cl = client.new_order(security_id=1, side="buy", qty=10, price="65000.00")
            client.flush()
            await client.wait_until(lambda c: c.order(cl).status != "pending-new")
            async for report in client.reports(timeout=0.5):
                print(report["template"])
            await client.close()

    Args are those of :class:`~qfix.client.Client`; :attr:`sync` is the client itself,
    for anything not mirrored here.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._adopt(Client(*args, **kwargs))

    def _adopt(self, client: Client) -> None:
        self.sync = client
        #: one receiver at a time: the socket has one descriptor and one read position
        self._receiving = asyncio.Lock()

    @classmethod
    def from_files(cls, endpoint: str, key_file: str | Path, server_key_file: str | Path, **kwargs: Any) -> AsyncClient:
        """A client from a private key file and the server's public key file."""
        client = cls.__new__(cls)
        client._adopt(Client.from_files(endpoint, key_file, server_key_file, **kwargs))
        return client

    # --- connection -------------------------------------------------------------------

    async def connect(self, timeout: float = 10.0, attempts: int = 1, backoff: float = 0.5) -> None:
        """Handshake and wait for the server's first Heartbeat (see :meth:`Client.connect`).

        Cancelling it waits for the handshake thread to stop using the socket, then
        closes the connection, so that the socket is never used by two threads at once."""
        handshake = asyncio.ensure_future(asyncio.to_thread(self.sync.connect, timeout, attempts, backoff))
        try:
            await asyncio.shield(handshake)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await handshake
            self.sync.close()
            raise

    async def close(self) -> None:
        """Flush what is queued, send CLOSE, and close the socket."""
        self.sync.close()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def connected(self) -> bool:
        return self.sync.connected

    # --- sending (never blocks) ---------------------------------------------------------

    def new_order(
        self,
        *,
        security_id: int,
        side: str,
        qty: int,
        price: Decimal | str | int | None = None,
        tif: str = "day",
        **fields: Any,
    ) -> int:
        """Queue a NewOrderSingle; returns its ClOrdID (see :meth:`Client.new_order`)."""
        return self.sync.new_order(security_id=security_id, side=side, qty=qty, price=price, tif=tif, **fields)

    def cancel(
        self, *, security_id: int, side: str, orig_cl_ord_id: int | None = None, order_id: int | None = None
    ) -> int:
        """Queue an OrderCancelRequest; returns its ClOrdID."""
        return self.sync.cancel(security_id=security_id, side=side, orig_cl_ord_id=orig_cl_ord_id, order_id=order_id)

    def replace(
        self,
        *,
        orig_cl_ord_id: int,
        security_id: int,
        side: str,
        qty: int,
        price: Decimal | str | int,
        tif: str = "day",
        **fields: Any,
    ) -> int:
        """Queue an OrderCancelReplaceRequest; returns the new ClOrdID."""
        return self.sync.replace(
            orig_cl_ord_id=orig_cl_ord_id, security_id=security_id, side=side, qty=qty, price=price, tif=tif, **fields
        )

    def mass_cancel(self, *, security_id: int | None = None, side: str = "both", account: int | None = None) -> int:
        """Queue an OrderMassCancelRequest; returns its ClOrdID."""
        return self.sync.mass_cancel(security_id=security_id, side=side, account=account)

    def flush(self) -> None:
        """Send every queued message (records of at most 1,091 messages)."""
        self.sync.flush()

    def send_frame(self, frame: bytes) -> None:
        """Send one pre-encoded frame of k x 60-byte messages."""
        self.sync.send_frame(frame)

    # --- state ----------------------------------------------------------------------------

    @property
    def orders(self) -> OrderTracker:
        return self.sync.orders

    def order(self, cl_ord_id: int) -> OrderState:
        return self.sync.order(cl_ord_id)

    @property
    def rejects(self) -> list[Report]:
        return self.sync.rejects

    # --- receiving --------------------------------------------------------------------

    def on_report(self, callback: ReportCallback) -> ReportCallback:
        """Call ``callback(report)`` with every message received from now on, from
        within the awaited call that received it (:meth:`Client.on_report`). A plain
        function: an ``async def`` one would never be awaited, so it is refused; start a
        task from a plain one instead."""
        if inspect.iscoroutinefunction(callback):
            raise TypeError("on_report takes a plain function; from an async one nothing would be awaited")
        return self.sync.on_report(callback)

    def remove_callback(self, callback: ReportCallback) -> None:
        self.sync.remove_callback(callback)

    async def poll_raw(self, timeout: float = 0.0) -> Array:
        """Wait up to ``timeout`` s for messages; return the (n, 60) messages received
        (after applying them to :attr:`orders`), possibly none."""
        async with self._receiving:
            got = self.sync.poll_raw(0)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout
            while got.shape[0] == 0:
                left = deadline - loop.time()
                if left <= 0:
                    break
                await self._readable(min(left, self._longest_wait()))
                got = self.sync.poll_raw(0)
            return got

    async def poll(self, timeout: float = 0.0) -> list[Report]:
        """Wait up to ``timeout`` s for messages; return them decoded."""
        return [message.describe(m) for m in await self.poll_raw(timeout)]

    async def reports(self, timeout: float = 1.0) -> AsyncIterator[Report]:
        """Yield received messages until ``timeout`` s pass without one other than a
        Heartbeat (see :meth:`Client.reports`)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while (left := deadline - loop.time()) > 0:
            for report in await self.poll(min(left, 0.1)):
                if report["template"] != "Heartbeat":
                    deadline = loop.time() + timeout
                yield report

    async def wait_until(self, predicate: Callable[[AsyncClient], bool], timeout: float = 5.0) -> bool:
        """Receive until ``predicate(self)`` holds or ``timeout`` s pass; return whether it held."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not predicate(self):
            left = deadline - loop.time()
            if left <= 0:
                return False
            await self.poll_raw(min(left, _TICK_S))
        return True

    def _longest_wait(self) -> float:
        """The endpoint's timers run on every poll; a backlog of records that libzmq
        could not take yet is retried on every poll too, so wait briefly while one exists."""
        ep = self.sync._ep
        return _BACKLOG_TICK_S if ep is not None and ep._backlog else _TICK_S

    async def _readable(self, timeout: float) -> None:
        """Return when the socket's descriptor signals (or after ``timeout`` s)."""
        ep = self.sync._ep
        if ep is None:
            raise ClientError("not connected; call connect() first")
        loop = asyncio.get_running_loop()
        woke: asyncio.Future[None] = loop.create_future()

        def wake() -> None:
            if not woke.done():
                woke.set_result(None)

        sock = ep.socket
        # a send may have consumed the descriptor's edge for input already queued
        if int(sock.getsockopt(zmq.EVENTS)) & zmq.POLLIN:
            return
        fd = sock.FD
        loop.add_reader(fd, wake)
        try:
            await asyncio.wait_for(asyncio.shield(woke), timeout)
        except TimeoutError:
            pass
        finally:
            loop.remove_reader(fd)
