"""The server's market-data side: engine records to the feeds, and the snapshot service.

The loop hands every market-data record of an engine call to :meth:`MarketData.collect`
(possibly in several pieces, after ``OUTPUT_FULL`` resumes) and calls :meth:`flush` once
the call is done, so the publisher packs per engine call as WIRE.md §6.4 says. Snapshot
requests are served only between engine calls (:meth:`serve`), where the engine's books
are exactly what the feeds have published, so a snapshot is consistent with its
ChannelSeqNum without any locking. Reference data (SecurityDefinition, SecurityLimits)
is built here from the configuration and the engine's instrument rows, published when
the feed starts and after any change, and put in every snapshot.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import zmq

from qfix.engine import Engine
from qfix.engine.config import PHASE_CLOSED, PHASE_CONTINUOUS, PHASE_PRE_CLOSE, PHASE_PRE_OPEN
from qfix.marketdata import feeds
from qfix.marketdata.adapter import FeedEndpoint
from qfix.marketdata.publisher import Chunk, Packet, Publisher
from qfix.marketdata.service import SnapshotService
from qfix.marketdata.snapshot import VIEW_LEVEL, VIEW_ORDER, BookView
from qfix.server.config import ServerConfig
from qfix.wire import codes
from qfix.wire.codec import new_records

__all__ = ["MarketData", "book_view", "level_view", "reference_records", "trading_status"]

Array = npt.NDArray[Any]

log = logging.getLogger(__name__)

_MSG: Final = codes.MESSAGE_SIZE
_BID: Final = 0
#: reply packets moved into the snapshot ROUTER per loop pass: a pyzmq send costs a few
#: microseconds, so this bounds what streaming replies take from the loop (about 1 ms)
_REPLY_PACKETS_PER_PASS: Final = 256
#: while no reply streams, the snapshot ROUTER is asked for requests at most this often:
#: the ask is a system call or two that every pass of a busy loop paid, and a request
#: waits up to a 20 ms idle wait of the loop anyway
_REQUEST_CHECK_S: Final = 0.001
_STATUS_OF_PHASE: Final = {
    PHASE_CLOSED: codes.TRADING_STATUS_CLOSED,
    PHASE_PRE_OPEN: codes.TRADING_STATUS_PRE_OPEN,
    PHASE_CONTINUOUS: codes.TRADING_STATUS_CONTINUOUS,
    PHASE_PRE_CLOSE: codes.TRADING_STATUS_PRE_CLOSE,
}


def trading_status(rows: Array) -> Array:
    """TradingStatus of each engine instrument row (as the engine's SecurityStatus says it)."""
    status = np.full(rows.size, codes.TRADING_STATUS_HALT, np.uint8)
    for phase, code in _STATUS_OF_PHASE.items():
        status[rows["phase"] == phase] = code
    status[(rows["phase"] == PHASE_CONTINUOUS) & (rows["fba"] >= 0)] = codes.TRADING_STATUS_BATCH_AUCTION
    return status


def reference_records(engine: Engine, now: int, only: Array | None = None) -> Array:
    """(n, 2, 60): each instrument's SecurityDefinition and SecurityLimits records with
    TransactTime ``now`` and EndOfEvent on the second (RptSeq is the publisher's)."""
    rows = engine.instrument_rows()
    configs = engine.instruments
    pick = np.arange(rows.size) if only is None else only
    rows = rows[pick]
    tick = rows["tick"]
    d = new_records(codes.TEMPLATE_SECURITY_DEFINITION, rows.size)
    d["TransactTime"] = now
    d["SecurityID"] = rows["sec_id"]
    d["MinPriceIncrement"] = tick
    d["MaxTradeVol"] = rows["max_qty"]
    d["RoundLot"] = [configs[k].lot_size for k in pick.tolist()]
    d["Symbol"] = [np.frombuffer(configs[k].symbol.encode("ascii").ljust(16, b"\0"), np.uint8) for k in pick.tolist()]
    d["TradingStatus"] = trading_status(rows)
    lim = new_records(codes.TEMPLATE_SECURITY_LIMITS, rows.size)
    lim["TransactTime"] = now
    lim["SecurityID"] = rows["sec_id"]
    lim["LowLimitPrice"] = rows["lo"] * tick
    lim["HighLimitPrice"] = rows["hi"] * tick
    lim["MaxNotional"] = rows["max_notional"]
    lim["Collar"] = rows["collar"]
    lim["MatchEventIndicator"] = codes.MEI_END_OF_EVENT
    out = np.zeros((rows.size, 2, _MSG), np.uint8)
    out[:, 0] = d.view(np.uint8).reshape(-1, _MSG)
    out[:, 1] = lim.view(np.uint8).reshape(-1, _MSG)
    return out


def book_view(engine: Engine, now: int, inst: int | None = None) -> BookView:
    """The engine's books now, as the snapshot service needs them: every instrument's
    orders, or only those of instrument index ``inst``."""
    rows = engine.instrument_rows()
    orders = _view_rows(engine.book_orders(inst), VIEW_ORDER, rows["tick"])
    return BookView(orders, trading_status(rows), reference_records(engine, now))


def level_view(engine: Engine, now: int, inst: int | None = None) -> BookView:
    """The books now as the level feeds (L2, BBO, TRD) need them: levels only, read off the
    engine's ladders without visiting an order, so it costs the loop next to nothing."""
    rows = engine.instrument_rows()
    levels = _view_rows(engine.book_levels(inst), VIEW_LEVEL, rows["tick"])
    return BookView(None, trading_status(rows), reference_records(engine, now), levels=levels)


def _view_rows(book: Array, dtype: np.dtype[np.void], tick: Array) -> Array:
    """The engine's ``book`` rows (``BOOK_ORDER`` or ``BOOK_LEVEL``) as a view's rows of
    ``dtype``: the price from ticks to PRICE9, the side 0 for bids and 1 for offers, the
    other fields of the same names as they are."""
    view = np.zeros(book.size, dtype)
    for name in dtype.names or ():
        view[name] = book[name]
    view["side"] = book["side"] != _BID
    view["price"] = book["price"] * tick[book["inst"]]
    return view


class MarketData:
    """Publisher, snapshot service and sockets, wired to one engine.

    Args:
        config: the server configuration (``md_*`` keys).
        engine: the engine whose output is published.
        context: the zmq context.
    """

    def __init__(
        self,
        config: ServerConfig,
        engine: Engine,
        context: zmq.Context[Any],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.engine = engine
        ids = [i.security_id for i in engine.instruments]
        self.publisher = Publisher(ids, retention=config.md_retention)
        self.service = SnapshotService(
            self.publisher,
            self._view,
            config.md_replay_max_records,
            level_view=self._level_view,
            whole_share=config.md_snapshot_share,
            clock=clock,
        )
        self.endpoint = FeedEndpoint(
            config.md_endpoint,
            config.md_snapshot_endpoint,
            context,
            sndhwm=config.md_sndhwm,
            reply_sndhwm=config.md_reply_sndhwm,
            max_replies_in_flight=config.md_max_replies_in_flight,
            reply_timeout=config.md_reply_timeout,
        )
        self._pending: list[Array] = []
        self._last_sent = dict.fromkeys(feeds.ALL_FEEDS, 0.0)
        #: the books as of the last engine call (by builder: orders, levels), built for the
        #: first snapshot after it that needs them
        self._views: dict[Callable[..., BookView], BookView] = {}
        #: requests answered, and answered Busy
        self.requests = 0
        self.busy = 0
        self._next_request_check = 0.0  #: monotonic time of the next ask for requests
        #: sends the PUB socket refused (the feed has a gap there; subscribers recover)
        self.send_errors = 0

    @property
    def pub_endpoint(self) -> str:
        return self.endpoint.pub_endpoint

    @property
    def snapshot_endpoint(self) -> str:
        return self.endpoint.snapshot_endpoint

    def start(self, now_ns: int) -> None:
        """Start every feed: a Reset, then every instrument's reference data."""
        self._send([p for feed in feeds.ALL_FEEDS for p in self.publisher.reset(feed, now_ns)])
        self._send(self.publisher.publish(reference_records(self.engine, now_ns).reshape(-1, _MSG), now_ns))

    def reference_changed(self, security_ids: tuple[int, ...], now_ns: int) -> None:
        """Republish the reference data of instruments whose status or band changed."""
        self.flush(now_ns)
        idx = self.publisher.index_of(np.array(sorted(set(security_ids)), np.int64))
        self._send(self.publisher.publish(reference_records(self.engine, now_ns, idx).reshape(-1, _MSG), now_ns))

    def collect(self, md: Array) -> None:
        """Market-data records (n, 60) of the engine call in progress."""
        self._pending.append(md)

    def flush(self, now_ns: int) -> None:
        """The engine call is done: sequence and send what it produced."""
        # the books may have changed even where nothing was published (a journal failure)
        self._views.clear()
        if not self._pending:
            return
        md = self._pending[0] if len(self._pending) == 1 else np.concatenate(self._pending)
        self._pending = []
        self._send(self.publisher.publish(md, now_ns))

    def _view(self, security_id: int) -> BookView:
        return self._cached_view(book_view, security_id)

    def _level_view(self, security_id: int) -> BookView:
        return self._cached_view(level_view, security_id)

    def _cached_view(self, build: Callable[[Engine, int, int | None], BookView], security_id: int) -> BookView:
        # a whole view serves every request of a pass until the next publish (building one
        # walks every book); a one-instrument request before it walks only that instrument
        cached = self._views.get(build)
        if cached is not None:
            return cached
        if security_id:
            inst = int(self.publisher.index_of(np.array([security_id], np.int64))[0])
            return build(self.engine, time.time_ns(), inst)
        self._views[build] = whole = build(self.engine, time.time_ns(), None)
        return whole

    def _send(self, items: list[Packet | Chunk]) -> None:
        if not items:
            return
        self._views.clear()
        try:
            self.endpoint.publish(items)
        except zmq.ZMQError as exc:
            # the feed never stops trading: what was not sent is a gap that subscribers
            # recover from the retention ring or a snapshot
            self.send_errors += 1
            if self.send_errors == 1 or self.send_errors % 10_000 == 0:
                log.error("market-data send failed (%d so far): %s", self.send_errors, exc)
        now = time.monotonic()
        for item in items:
            self._last_sent[item.feed] = now

    @property
    def streaming(self) -> bool:
        """Whether snapshot or replay replies are waiting to be streamed."""
        return self.endpoint.replies_in_flight > 0

    def serve(self, budget: int) -> None:
        """Answer up to ``budget`` waiting requests and stream queued replies on.

        More requests waiting than the budget, a second request from a requester whose
        reply is still streaming, and any request while ``md_max_replies_in_flight``
        replies stream, are answered Busy (the requester asks again later). While no
        reply streams, the socket is asked at most every ``_REQUEST_CHECK_S``.
        """
        if not self.endpoint.replies_in_flight:
            clock = time.monotonic()
            if clock < self._next_request_check:
                return
            self._next_request_check = clock + _REQUEST_CHECK_S
        waiting = self.endpoint.requests(budget + self.config.md_max_queued_requests)
        now = time.time_ns()
        for i, (identity, data) in enumerate(waiting):
            if i < budget and self.endpoint.can_take(identity):
                reply = self.service.handle(data, now)
            else:
                reply = self.service.busy(data, now)
            self.requests += 1
            self.busy += reply.status == codes.REQUEST_BUSY
            if len(reply.packets) == 1:
                self.endpoint.reply_now(identity, reply.packets[0])
            else:
                self.endpoint.reply(identity, reply.packets)
        if self.endpoint.replies_in_flight:
            self.endpoint.pump(_REPLY_PACKETS_PER_PASS)

    def heartbeat(self, now_ns: int) -> None:
        """A ChannelHeartbeat on every feed idle for ``md_heartbeat_interval``."""
        now = time.monotonic()
        for feed, last in self._last_sent.items():
            if now - last >= self.config.md_heartbeat_interval:
                self._send([self.publisher.heartbeat(feed, now_ns)])

    def close(self) -> None:
        self.endpoint.close()
