"""The status line and the Prometheus endpoint are computed from the batch counters."""

from __future__ import annotations

import socket
import urllib.request

from qfix.server.metrics import Metrics, StatusLine


def test_status_line_rates_and_measured_ns_per_order() -> None:
    m = Metrics()
    line = StatusLine(now=0.0)
    t = m.totals
    t.orders, t.messages_in, t.messages_out, t.bytes_in, t.bytes_out, t.trades = 1000, 1000, 3000, 86_000, 258_000, 7
    m.batch_done(latency_ns=2_000_000)
    text = line.render(t, now=2.0)
    assert "500 orders/s" in text and "2,000 msgs/s" in text
    assert "2,000 ns/order" in text and "1 batches" in text and "7 trades" in text
    assert "0.000/ 0.001 Gbps" in text
    assert "0 orders/s" in line.render(t, now=3.0)  # rates are per interval


def test_prometheus_endpoint_serves_its_own_registry() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    m = Metrics(port=port)
    try:
        m.totals.orders = 5
        m.totals.sessions = 2
        m.totals.md_send_errors = 3
        m.batch_done(latency_ns=1000)
        m.handshake_done(0.02)
        body = urllib.request.urlopen(f"http://127.0.0.1:{m.port}/metrics", timeout=5).read().decode()
        assert "qfix_orders_total 5.0" in body
        assert "qfix_md_send_errors_total 3.0" in body and "qfix_md_requests_busy_total 0.0" in body
        assert "qfix_sessions 2.0" in body
        assert "qfix_batch_latency_seconds_count 1.0" in body
        assert "qfix_handshake_seconds_count 1.0" in body and 'qfix_handshake_seconds_bucket{le="0.025"} 1.0' in body
        assert "python_gc" not in body  # not the global registry
    finally:
        m.close()
