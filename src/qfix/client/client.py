"""The synchronous order-entry client: QZMQ handshake, orders out, reports in.

Theory of operation: :class:`Client` owns one :class:`~qfix.qzmq.adapter.ClientEndpoint`
at a time. ``connect`` runs the handshake with the pinned server key and waits for the
server's first Heartbeat, which says the session's ClOrdID high-water mark and last
ExecID (WIRE.md §6.2): the client continues numbering above the mark and, when it has
missed reports, asks for them with a RetransmitRequest. Until the RetransmitComplete
arrives, live sequenced reports (ExecID above the Heartbeat's LastExecID) are held
back, so the tracker applies every report once and in ExecID order: a live fill of a
resting order can reach the client before the retransmission it asked for, and
applying it first would make the older reports look already applied. Builders
(``new_order``, ``cancel``, ...) queue messages; ``flush`` packs the queue into
DATA_FIXED records of at most 1,091 messages; ``poll`` receives, applies
reports to the :class:`~qfix.client.tracker.OrderTracker`, hands them to the callbacks
registered with ``on_report`` and returns them.

The server sends every session a Heartbeat when it has sent it nothing else for its
``heartbeat_interval`` (1 s by default). A poll that finds nothing when the server has
been silent for ``silence_timeout`` ends the connection: the server gives up on a
session that stops reading its reports (docs/server.md, "Backpressure") and cannot tell
it so through a full pipe, and a server or network that vanished without a disconnect
looks the same. ``connect`` then starts a new session, which catches up by
retransmission.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import zmq

from qfix.client.tracker import OrderState, OrderTracker
from qfix.crypto.keys import SigningKey, VerifyKey, load_private_key, load_public_key
from qfix.crypto.primitives import SignatureAlg
from qfix.qzmq import ClientConnection, ClientState, Closed, Established, Failed, Messages, Mode
from qfix.qzmq import Config as QzmqConfig
from qfix.qzmq.adapter import ClientEndpoint
from qfix.qzmq.errors import QzmqError
from qfix.wire import codec, codes, message, schema

__all__ = ["Client", "ClientError", "Report", "ReportCallback"]

Array = npt.NDArray[Any]

_MSG: Final = codes.MESSAGE_SIZE
_FRAME_MSGS: Final = codes.MAX_MSGS_PER_FRAME


_U32_MAX: Final = 2**32 - 1
_ER_EXEC_ID: Final = 8 + 24  #: ExecID in ExecutionReport and OrderCancelReject (header + block offset)
_MCR_EXEC_ID: Final = 8 + 16  #: ExecID in OrderMassCancelReport


def _exec_ids(msgs: Array, tids: Array) -> Array:
    """Each message's ExecID if it is a sequenced report (templates 10-12), else 0."""
    ids = np.zeros(msgs.shape[0], np.uint64)
    er = (tids == codes.TEMPLATE_EXECUTION_REPORT) | (tids == codes.TEMPLATE_ORDER_CANCEL_REJECT)
    mcr = tids == codes.TEMPLATE_ORDER_MASS_CANCEL_REPORT
    if er.any():
        ids[er] = np.ascontiguousarray(msgs[er, _ER_EXEC_ID : _ER_EXEC_ID + 8]).view("<u8")[:, 0]
    if mcr.any():
        ids[mcr] = np.ascontiguousarray(msgs[mcr, _MCR_EXEC_ID : _MCR_EXEC_ID + 8]).view("<u8")[:, 0]
    return ids


class ClientError(QzmqError):
    """The client could not connect, or the connection ended."""


Report = dict[str, Any]
"""A received message decoded by :func:`qfix.wire.describe` (field name -> value)."""

ReportCallback = Callable[[Report], object]
"""A callable :meth:`Client.on_report` registers: called with each received message."""

#: default ``silence_timeout``: ten of the server's default 1 s heartbeat intervals
DEFAULT_SILENCE_TIMEOUT_S: Final = 10.0


class Client:
    """One order-entry session.

    Example::

        client = Client.from_files("tcp://127.0.0.1:5555", ".qfix/client-1.key", ".qfix/server.key.pub")
        client.connect()
        cl = client.new_order(security_id=1, side="buy", qty=10, price="65000.00")
        client.flush()
        for report in client.reports(timeout=1.0):
            print(report["template"], report.get("ExecType"))
        print(client.orders.by_clordid[cl].status)
        client.close()

    Args:
        endpoint: the server's order-entry endpoint, e.g. ``tcp://127.0.0.1:5555``.
        key: this client's ML-DSA key (on the server's allow-list).
        server_key: the pinned server key.
        mode: ``"hybrid"`` or ``"pq-only"``; must match the server.
        context: a zmq context (default: the process-wide one).
        track_orders: apply every report to :attr:`orders` (load generators that count
            reports themselves turn this off: it costs Python work per report).
        silence_timeout: seconds without any message from the server (its Heartbeats
            included) after which a poll that finds nothing ends the connection with
            :class:`ClientError`; it must exceed the server's ``heartbeat_interval``.
            None never ends it.

    Reports can also be taken by callbacks (:meth:`on_report`)::

        client.on_report(lambda report: print(report["template"], report.get("OrdStatus")))
        while True:
            client.poll(1.0)  # each message received reaches the callbacks, in order
    """

    def __init__(
        self,
        endpoint: str,
        key: SigningKey,
        server_key: VerifyKey,
        *,
        mode: str = "hybrid",
        context: zmq.Context[zmq.Socket[bytes]] | None = None,
        track_orders: bool = True,
        silence_timeout: float | None = DEFAULT_SILENCE_TIMEOUT_S,
    ) -> None:
        if silence_timeout is not None and not silence_timeout > 0:
            raise ValueError(f"silence_timeout must be a positive number of seconds or None, not {silence_timeout}")
        self.endpoint = endpoint
        self.track_orders = track_orders
        self.silence_timeout = silence_timeout
        self._heard_at = 0.0  #: monotonic time of the last message from the server
        self._callbacks: list[ReportCallback] = []
        self.key = key
        self.server_key = server_key
        self.config = QzmqConfig(mode=QzmqConfig.parse_mode(mode))
        self._context = context
        self._ep: ClientEndpoint | None = None
        self.orders = OrderTracker()
        self._queue: list[bytes] = []
        self._inbox: list[Array] = []
        self.next_cl_ord_id = 1
        self.server_last_exec_id = 0
        #: catching up: ExecIDs up to this one come by retransmission; later live ones wait
        self._catch_up_to = 0
        self._held: list[Array] = []
        self._truncated = False
        #: RetransmitCompletes that said the reports asked for are no longer held
        self.retransmit_unavailable = 0
        self.connected = False
        self.messages_received = 0
        self.rejects: list[Report] = []
        self._admin_replies: list[dict[str, Any]] = []
        #: admin commands sent and replies taken on this session: the server answers
        #: them in order, so a reply that comes after its command timed out is skipped
        self._admin_sent = 0
        self._admin_taken = 0

    @classmethod
    def from_files(cls, endpoint: str, key_file: str | Path, server_key_file: str | Path, **kwargs: Any) -> Client:
        """A client from a private key file and the server's public key file."""
        return cls(
            endpoint,
            load_private_key(key_file),
            load_public_key(server_key_file, alg=SignatureAlg.ML_DSA_65),
            **kwargs,
        )

    # --- connection -------------------------------------------------------------------

    def connect(self, timeout: float = 10.0, attempts: int = 1, backoff: float = 0.5) -> None:
        """Handshake and wait for the server's first Heartbeat.

        Retries up to ``attempts`` times with exponential backoff starting at ``backoff``
        seconds. Raises :class:`ClientError` if no attempt succeeds.
        """
        delay = backoff
        last_error = "no attempt made"
        for attempt in range(attempts):
            if attempt:
                time.sleep(delay)
                delay = min(delay * 2, 60.0)
            try:
                self._connect_once(timeout)
                return
            except ClientError as exc:
                last_error = str(exc)
                self._drop()
        raise ClientError(f"cannot connect to {self.endpoint}: {last_error}")

    def _connect_once(self, timeout: float) -> None:
        ep = ClientEndpoint(
            ClientConnection(self.key, self.server_key, self.config), self.endpoint, context=self._context
        )
        self._ep = ep
        # a new session: replies to an earlier one's commands never come
        self._admin_replies.clear()
        self._admin_sent = self._admin_taken = 0
        deadline = time.monotonic() + timeout
        self._heard_at = time.monotonic()
        self._check(ep.start())
        while ep.state is not ClientState.ESTABLISHED:
            if time.monotonic() > deadline:
                raise ClientError(f"handshake timed out after {timeout} s")
            self._check(ep.poll(50))
        # the first schema-60 message is a Heartbeat with the session's marks; the
        # retransmission it calls for is requested as it is read (``_take``)
        while not self.connected:
            if time.monotonic() > deadline:
                raise ClientError("no Heartbeat from the server after the handshake")
            self._receive(ep.poll(50))
        if self._catch_up_to:
            self._ask_for_missed()

    def _ask_for_missed(self) -> None:
        done = self.orders.last_exec_id
        if self._catch_up_to > done:
            # Count is a number of messages; the ExecID span bounds it (ExecIDs are global)
            self.request_retransmit(done + 1, min(self._catch_up_to - done, _U32_MAX))

    def _deliver_unsequenced_held(self) -> None:
        held, self._held = self._held, []
        for msgs in held:
            keep = _exec_ids(msgs, np.ascontiguousarray(msgs[:, 2:4]).view("<u2")[:, 0]) == 0
            if keep.any():
                self._inbox.append(msgs[keep])

    def _catch_up(self, msgs: Array, tids: Array) -> Array:
        """While catching up, split ``msgs``: retransmitted reports (ExecID up to the
        mark) are applied now; everything else waits in arrival order until the
        RetransmitComplete that ends the catch-up. Returns what to apply now, in order."""
        ids = _exec_ids(msgs, tids)
        rc = np.flatnonzero(tids == codes.TEMPLATE_RETRANSMIT_COMPLETE).tolist()
        answers = {i: msgs[i].view(schema.RETRANSMIT_COMPLETE)[0] for i in rc}
        status = {i: int(a["RetransmitStatus"]) for i, a in answers.items()}
        # an answer ends the catch-up unless it was cut short before reaching the mark (the
        # server fills a request's room with later reports too, so a truncated answer
        # may already have covered everything that was missed)
        final = [
            i
            for i in rc
            if status[i] != codes.RETRANSMIT_TRUNCATED or int(answers[i]["LastExecID"]) >= self._catch_up_to
        ]
        end = final[0] if final else msgs.shape[0]
        head = np.arange(end)
        retransmitted = (ids[:end] > 0) & (ids[:end] <= self._catch_up_to)
        now = [msgs[head[retransmitted]]]
        self._held.append(msgs[head[~retransmitted]])
        if not final:
            if rc:  # truncated: the server sent what it could; ask for the rest
                self._truncated = True
            return now[0]
        if status[end] == codes.RETRANSMIT_UNAVAILABLE:
            self.retransmit_unavailable += 1
        self._catch_up_to = 0
        held, self._held = self._held, []
        return np.concatenate([*now, msgs[end : end + 1], *held, msgs[end + 1 :]])

    def _check(self, events: list[Any]) -> None:
        for ev in events:
            if isinstance(ev, Failed):
                raise ClientError(f"handshake failed ({ev.code.name})")
            if isinstance(ev, Closed):
                raise ClientError(f"connection closed ({ev.reason.name})")
            if isinstance(ev, Messages):
                self._take(ev)

    def _drop(self) -> None:
        if self._ep is not None:
            with contextlib.suppress(zmq.ZMQError):
                self._ep.close()
        self._ep = None
        self.connected = False

    def close(self) -> None:
        """Flush what is queued, send CLOSE, and close the socket."""
        if self._ep is not None and self.connected:
            self.flush()
        self._drop()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- sending ----------------------------------------------------------------------

    def _next(self) -> int:
        cl = self.next_cl_ord_id
        self.next_cl_ord_id += 1
        return cl

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
        """Queue a NewOrderSingle; returns its ClOrdID. ``fields`` are those of
        :func:`qfix.wire.message.new_order_single` (account, min_qty, max_floor, ...)."""
        cl = self._next()
        rec = message.new_order_single(
            cl_ord_id=cl, security_id=security_id, side=side, qty=qty, price=price, tif=tif, **fields
        )
        self.orders.sent_new(cl, security_id, int(rec["Side"]), qty, int(rec["Price"]))
        self._queue.append(rec.tobytes())
        return cl

    def cancel(
        self, *, security_id: int, side: str, orig_cl_ord_id: int | None = None, order_id: int | None = None
    ) -> int:
        """Queue an OrderCancelRequest (by OrderID when given, else by OrigClOrdID)."""
        cl = self._next()
        rec = message.order_cancel_request(
            cl_ord_id=cl, security_id=security_id, side=side, orig_cl_ord_id=orig_cl_ord_id, order_id=order_id
        )
        self._queue.append(rec.tobytes())
        return cl

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
        """Queue an OrderCancelReplaceRequest; the order takes the new ClOrdID."""
        cl = self._next()
        rec = message.order_cancel_replace_request(
            cl_ord_id=cl,
            orig_cl_ord_id=orig_cl_ord_id,
            security_id=security_id,
            side=side,
            qty=qty,
            price=price,
            tif=tif,
            **fields,
        )
        self.orders.sent_replace(cl, orig_cl_ord_id)
        self._queue.append(rec.tobytes())
        return cl

    def mass_cancel(self, *, security_id: int | None = None, side: str = "both", account: int | None = None) -> int:
        """Queue an OrderMassCancelRequest (one instrument, or all when ``security_id`` is None)."""
        cl = self._next()
        rec = message.order_mass_cancel_request(cl_ord_id=cl, security_id=security_id, side=side, account=account)
        self._queue.append(rec.tobytes())
        return cl

    def heartbeat(self) -> None:
        self._queue.append(message.heartbeat(last_exec_id=self.orders.last_exec_id).tobytes())

    def request_retransmit(self, from_exec_id: int, count: int) -> None:
        self._queue.append(message.retransmit_request(from_exec_id=from_exec_id, count=count).tobytes())
        self.flush()

    def flush(self) -> None:
        """Send every queued message, packed into records of at most 1,091 messages."""
        queue, self._queue = self._queue, []
        for start in range(0, len(queue), _FRAME_MSGS):
            self.send_frame(b"".join(queue[start : start + _FRAME_MSGS]))

    def send_frame(self, frame: bytes) -> None:
        """Send one pre-encoded frame of k x 60-byte messages (the fast path: the caller
        numbers ClOrdIDs itself and the tracker does not see these orders)."""
        ep = self._require()
        self._check_closed(ep.send_fixed(frame))

    def _require(self) -> ClientEndpoint:
        if self._ep is None or not self.connected:
            raise ClientError("not connected; call connect() first")
        return self._ep

    def _check_closed(self, events: list[Any]) -> None:
        for ev in events:
            if isinstance(ev, Closed):
                self.connected = False
                raise ClientError(f"connection closed ({ev.reason.name})")

    def admin(self, op: str, timeout: float = 10.0, **args: Any) -> dict[str, Any]:
        """Send one admin command (the key must be one of the server's ``admin_kids``)
        and return the server's JSON reply, e.g. ``admin("halt", security_ids=[1])``.

        Raises ClientError when no reply arrives within ``timeout`` s (a key that is not
        an admin key gets none: its DATA records are read as order-entry frames); that
        command's reply, should it come later, is skipped by the next call."""
        ep = self._require()
        self._check_closed(ep.send_messages([json.dumps({"op": op, **args}).encode("utf-8")]))
        mine = self._admin_sent
        self._admin_sent += 1
        deadline = time.monotonic() + timeout
        while True:
            while self._admin_replies and self._admin_taken < mine:  # late replies to timed-out commands
                self._admin_replies.pop(0)
                self._admin_taken += 1
            if self._admin_replies:
                self._admin_taken += 1
                return self._admin_replies.pop(0)
            if time.monotonic() > deadline:
                raise ClientError(f"no admin reply within {timeout} s (is this key in keys.admin_kids?)")
            self.poll_raw(0.05)

    # --- receiving --------------------------------------------------------------------

    def on_report(self, callback: ReportCallback) -> ReportCallback:
        """Call ``callback(report)`` with every message received from now on (each
        decoded as :meth:`poll` decodes them, Heartbeats included), in order, after the
        tracker has applied it, from within the call that received it (``poll``,
        ``poll_raw``, ``reports``, ``wait_until``). Returns ``callback``, so it also
        serves as a decorator. An exception a callback raises propagates out of that
        call; the messages up to the one it failed on do not reach the caller, and those
        after it (applied to the tracker all the same) come with the next call."""
        self._callbacks.append(callback)
        return callback

    def remove_callback(self, callback: ReportCallback) -> None:
        """Stop calling ``callback`` (registered by :meth:`on_report`)."""
        self._callbacks.remove(callback)

    def poll_raw(self, timeout: float = 0.0) -> Array:
        """Receive what is ready (waiting up to ``timeout`` s); return the (n, 60) messages
        after applying them to the tracker and passing them to the callbacks.

        Raises :class:`ClientError` when the connection ended, also when nothing came
        from the server for ``silence_timeout`` s."""
        return self._poll(timeout)[0]

    def _poll(self, timeout: float) -> tuple[Array, list[Report] | None]:
        """:meth:`poll_raw`, with the messages decoded when callbacks needed them."""
        ep = self._require()
        self._receive(ep.poll(timeout * 1000))
        if not self._inbox:
            self._check_silence()
            return np.zeros((0, _MSG), np.uint8), None
        msgs = self._inbox[0] if len(self._inbox) == 1 else np.concatenate(self._inbox)
        self._inbox = []
        if not self._callbacks:
            return msgs, None
        callbacks = tuple(self._callbacks)  # a callback may remove itself or another
        reports = []
        for i, m in enumerate(msgs):
            reports.append(message.describe(m))
            try:
                for callback in callbacks:
                    callback(reports[-1])
            except Exception as exc:
                # the rest (applied to the tracker already) comes with the next call
                if i + 1 < msgs.shape[0]:
                    self._inbox.insert(0, msgs[i + 1 :])
                exc.add_note(f"raised by a report callback on message {i + 1} of {msgs.shape[0]}")
                raise
        return msgs, reports

    def _check_silence(self) -> None:
        """End the connection if the server has been silent past ``silence_timeout``
        (called after a poll found the socket empty)."""
        limit = self.silence_timeout
        if limit is None or not self.connected:
            return
        silent = time.monotonic() - self._heard_at
        if silent > limit:
            self._drop()
            raise ClientError(
                f"nothing from the server for {silent:.1f} s (silence_timeout {limit} s): the session is taken "
                "as lost (a server ends a session that stops reading its reports); connect() again to resume"
            )

    def poll(self, timeout: float = 0.0) -> list[Report]:
        """Receive and decode what is ready (waiting up to ``timeout`` s)."""
        msgs, reports = self._poll(timeout)
        return reports if reports is not None else [message.describe(m) for m in msgs]

    def reports(self, timeout: float = 1.0) -> Iterator[Report]:
        """Yield received messages until ``timeout`` s pass without one other than a
        Heartbeat (the server sends those every second, so they do not extend the wait)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            for report in self.poll(min(left, 0.1)):
                if report["template"] != "Heartbeat":
                    deadline = time.monotonic() + timeout
                yield report

    def wait_until(self, predicate: Any, timeout: float = 5.0) -> bool:
        """Poll until ``predicate(self)`` is true or ``timeout`` s pass."""
        deadline = time.monotonic() + timeout
        while not predicate(self):
            if time.monotonic() > deadline:
                return False
            self.poll_raw(0.01)
        return True

    def order(self, cl_ord_id: int) -> OrderState:
        return self.orders.by_clordid[cl_ord_id]

    def _receive(self, events: list[Any]) -> None:
        for ev in events:
            if isinstance(ev, Messages):
                self._heard_at = time.monotonic()
                self._take(ev)
            elif isinstance(ev, Closed):
                self.connected = False
                raise ClientError(f"connection closed by the server ({ev.reason.name})")
            elif isinstance(ev, Failed):
                raise ClientError(f"handshake failed ({ev.code.name})")
            elif isinstance(ev, Established):
                continue

    def _take(self, ev: Messages) -> None:
        if not ev.fixed:  # DATA records carry admin replies (JSON), never order entry
            for raw in ev.frames:
                try:
                    self._admin_replies.append(json.loads(bytes(raw)))
                except (UnicodeDecodeError, json.JSONDecodeError):
                    raise ClientError("the server sent a DATA record that is not a JSON reply") from None
            return
        for frame in ev.frames:
            msgs = codec.accept_frame(frame, codec.SERVER_TO_CLIENT)
            if msgs is None:
                raise ClientError("the server sent a malformed frame (WIRE.md §5.4: reconnect)")
            self.messages_received += msgs.shape[0]
            tids = codec.template_ids(msgs)
            if not self.connected:
                hb = np.flatnonzero(tids == codes.TEMPLATE_HEARTBEAT)
                if hb.size:
                    first = msgs[hb[0]].view(schema.HEARTBEAT)[0]
                    self.next_cl_ord_id = max(self.next_cl_ord_id, int(first["LastClOrdID"]) + 1)
                    self.server_last_exec_id = int(first["LastExecID"])
                    self.connected = True
                    # decided before any report after the Heartbeat is applied; what a lost
                    # connection left held comes again by retransmission, except the
                    # unsequenced messages, which are delivered now
                    self._deliver_unsequenced_held()
                    missed = self.track_orders and self.server_last_exec_id > self.orders.last_exec_id
                    self._catch_up_to = self.server_last_exec_id if missed else 0
            if self._catch_up_to:
                msgs = self._catch_up(msgs, tids)
                if msgs.shape[0] == 0:
                    continue
                tids = codec.template_ids(msgs)
            if (tids == codes.TEMPLATE_BUSINESS_MESSAGE_REJECT).any():
                for i in np.flatnonzero(tids == codes.TEMPLATE_BUSINESS_MESSAGE_REJECT)[:100]:
                    self.rejects.append(message.describe(msgs[i]))
            if self.track_orders:
                self.orders.apply(msgs)
            self._inbox.append(msgs)
            if self._truncated:
                self._truncated = False
                self._ask_for_missed()

    @property
    def mode(self) -> Mode:
        return self.config.mode
