"""Server metrics: counters updated once per batch, the status line, Prometheus.

Theory of operation: the batch loop adds to :class:`Totals` once per batch (never per
order). :class:`StatusLine` turns the difference between two snapshots of the totals
into rates. ``ns/order`` is measured, not derived: for every batch the loop records the
time from the receipt of the batch's first frame to the moment its last report was
handed to the socket, and the line divides the sum of those spans by the orders they
carried (with many orders in flight this is the server's cost per order; with a trickle
it is the per-order latency). Prometheus gets its own registry (nothing global) and an
HTTP endpoint on 127.0.0.1 only when a port is configured.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

__all__ = ["Metrics", "StatusLine", "Totals"]


@dataclass(slots=True)
class Totals:
    """Monotonic counters since start."""

    orders: int = 0  #: messages of templates 1-4 handed to the engine
    messages_in: int = 0  #: messages received (every template, refused ones too)
    messages_out: int = 0  #: messages sent to sessions
    bytes_in: int = 0  #: QZMQ record bytes received
    bytes_out: int = 0  #: QZMQ record bytes sent
    trades: int = 0
    md_records: int = 0  #: market-data records the engine produced
    md_packets: int = 0  #: packets sent on the feeds' PUB socket
    md_send_errors: int = 0  #: feed sends the PUB socket refused (a gap subscribers recover)
    md_requests: int = 0  #: snapshot and replay requests answered (Busy included)
    md_requests_busy: int = 0  #: requests answered Busy
    md_replies_dropped: int = 0  #: reply packets a requester did not take (gone or not reading)
    md_whole_snapshots: int = 0  #: snapshots of every instrument served (each holds the loop while it is built)
    md_whole_snapshot_ns: int = 0  #: time spent building them
    rejects: int = 0  #: BusinessMessageRejects sent
    batches: int = 0
    busy_ns: int = 0  #: sum over batches of first receipt -> last report handed to the socket
    #: handshake frames dropped unanswered because handshakes had used up their share
    #: of the loop's time (``ServerEndpoint.handshake_frames_shed``)
    handshakes_shed: int = 0
    journal_records: int = 0  #: records appended to the journal
    journal_bytes: int = 0  #: bytes written to the journal
    #: time the loop waited for journal syncs beyond the matching that overlapped them
    journal_wait_ns: int = 0
    #: inbound records the compiled record path ran (the rest of ``orders`` went through
    #: the Python path)
    compiled_records: int = 0
    #: order frames the compiled record path left to the Python path (a refusal, a
    #: Heartbeat or a RetransmitRequest in them or before them in the pass)
    frames_left: int = 0
    sessions: int = 0  #: established sessions now (a gauge)

    def copy(self) -> Totals:
        return dataclasses.replace(self)


class StatusLine:
    """The once-a-second line: ``orders/s | msgs/s | Gbps in/out | trades | batches |
    ns/order | sessions``."""

    def __init__(self, now: float) -> None:
        self._last = Totals()
        self._t = now

    def render(self, totals: Totals, now: float) -> str:
        dt = max(now - self._t, 1e-9)
        d = {f.name: getattr(totals, f.name) - getattr(self._last, f.name) for f in dataclasses.fields(Totals)}
        self._last = totals.copy()
        self._t = now
        ns_per_order = d["busy_ns"] / d["orders"] if d["orders"] else 0.0
        return (
            f"{d['orders'] / dt:>12,.0f} orders/s | {(d['messages_in'] + d['messages_out']) / dt:>12,.0f} msgs/s | "
            f"{d['bytes_in'] * 8 / dt / 1e9:6.3f}/{d['bytes_out'] * 8 / dt / 1e9:6.3f} Gbps in/out | "
            f"{totals.trades:>10,} trades | {totals.batches:>8,} batches | {ns_per_order:>8,.0f} ns/order | "
            f"{totals.sessions} sessions"
        )


class Metrics:
    """Totals plus an optional Prometheus exporter of them."""

    def __init__(self, port: int = 0) -> None:
        self.totals = Totals()
        self._prom: dict[str, Any] = {}
        self._exported = Totals()
        self.port = 0
        if port:
            self._start_prometheus(port)

    def _start_prometheus(self, port: int) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

        reg = CollectorRegistry()
        for f in dataclasses.fields(Totals):
            if f.name == "sessions":
                self._prom[f.name] = Gauge("qfix_sessions", "established order-entry sessions", registry=reg)
            else:
                self._prom[f.name] = Counter(f"qfix_{f.name}", f"qfix server {f.name.replace('_', ' ')}", registry=reg)
        self._prom["batch_latency"] = Histogram(
            "qfix_batch_latency_seconds",
            "first receipt of a batch to its last report handed to the socket",
            buckets=(5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 5e-2, 0.1, 1.0),
            registry=reg,
        )
        self._prom["handshake"] = Histogram(
            "qfix_handshake_seconds",
            "a client's hello accepted to its session established (ML-KEM, ML-DSA and its round trip)",
            buckets=(1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 5e-2, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
            registry=reg,
        )
        server, _thread = start_http_server(port, addr="127.0.0.1", registry=reg)
        self.port = int(server.server_port)
        self._server = server

    def batch_done(self, latency_ns: int) -> None:
        """Called once per batch; pushes the deltas to Prometheus when it is on."""
        self.totals.batches += 1
        self.totals.busy_ns += latency_ns
        if not self._prom:
            return
        self._prom["batch_latency"].observe(latency_ns / 1e9)
        t, last = self.totals, self._exported
        for f in dataclasses.fields(Totals):
            if f.name == "sessions":
                self._prom["sessions"].set(t.sessions)
                continue
            delta = getattr(t, f.name) - getattr(last, f.name)
            if delta:
                self._prom[f.name].inc(delta)
        self._exported = t.copy()

    def handshake_done(self, seconds: float) -> None:
        """Called once per session established, with how long its handshake took."""
        if self._prom:
            self._prom["handshake"].observe(seconds)

    def close(self) -> None:
        server = getattr(self, "_server", None)
        if server is not None:
            server.shutdown()
            server.server_close()
