"""Regression tests for the QZMQ security review (one test per fixed finding)."""

from __future__ import annotations

from collections import deque

import zmq
from qzmq_testlib import PEER, RID, config, establish, fresh_rid, make_client, make_server

from qfix.crypto import SignatureAlg
from qfix.qzmq import ClientState, Closed, Established, Failed, ServerProtocol
from qfix.qzmq._guard import Guard
from qfix.qzmq.adapter import ServerEndpoint


def _hello_from(server: ServerProtocol, peer: str, now: float = 0.0) -> int:
    """Send one fresh hello from ``peer``; return the reply's message type."""
    c = make_client()
    c.connect(now)
    (h,) = c.data_to_send()
    server.receive(fresh_rid(), h, now, peer)
    ((_, f),) = server.data_to_send()
    return f[3]


# --- finding 1: a failed peer must not discard other peers' sealed records ------------


def test_transport_failed_discards_only_that_peers_output() -> None:
    server = make_server()
    _, conn_a = establish(server=server, rid=b"A", peer="192.0.2.1")
    _, conn_b = establish(server=server, rid=b"B", peer="192.0.2.2", alg=SignatureAlg.ML_DSA_44)
    server.send_fixed(conn_a, b"a" * 60)
    server.send_fixed(conn_b, b"b" * 60)
    events = server.transport_failed(b"A")
    assert events == [Closed(events[0].reason, False, conn_a)]
    out = server.data_to_send()
    assert [rid for rid, _ in out] == [b"B"]
    assert server.conn_for_routing_id(b"B") == conn_b


class _FakeSocket:
    """Sends to ``dead`` fail with EHOSTUNREACH; everything else is recorded."""

    def __init__(self, dead: bytes) -> None:
        self.dead = dead
        self.sent: list[tuple[bytes, bytes]] = []

    def send_multipart(self, parts: tuple[bytes, bytes], flags: int = 0, copy: bool = True) -> None:
        rid, frame = parts
        if rid == self.dead:
            raise zmq.ZMQError(zmq.EHOSTUNREACH)
        self.sent.append((rid, bytes(frame)))


def test_endpoint_give_up_keeps_other_sessions_records() -> None:
    ctx = zmq.Context()
    server = make_server()
    _, conn_a = establish(server=server, rid=b"A", peer="192.0.2.1")
    link_b, conn_b = establish(server=server, rid=b"B", peer="192.0.2.2", alg=SignatureAlg.ML_DSA_44)
    ep = ServerEndpoint(server, "inproc://qzmq-review-give-up", context=ctx)
    real = ep.socket
    try:
        fake = _FakeSocket(dead=b"A")
        ep.socket = fake  # type: ignore[assignment]
        ep._backlog[b"A"] = deque([b"\x10stale"])  # A's queue was full; A is now gone
        server.send_fixed(conn_a, b"a" * 60)
        server.send_fixed(conn_b, b"b" * 60)
        events = ep.flush()
        assert [type(e) for e in events] == [Closed] and events[0].conn == conn_a
        assert [rid for rid, _ in fake.sent] == [b"B"]
        assert ep.send_failures == 1
        # B's record arrives and B's session goes on
        (ev,) = link_b.client.receive(fake.sent[0][1], 0.0)
        assert ev.frames == (b"b" * 60,)  # type: ignore[union-attr]
        assert server.conn_for_routing_id(b"B") == conn_b
    finally:
        ep.socket = real
        ep.close()  # the socket and its monitor
        ctx.term()


# --- finding 2: no Peer-Address (inproc) must not crash the server loop --------------


def test_endpoint_without_peer_address_does_not_crash() -> None:
    ctx = zmq.Context()
    server = make_server()
    ep = ServerEndpoint(server, "inproc://qzmq-review-peer", context=ctx)
    dealer = ctx.socket(zmq.DEALER)
    try:
        dealer.connect(ep.endpoint)
        client = make_client()
        client.connect(0.0)
        (hello,) = client.data_to_send()
        dealer.send(hello)
        for _ in range(100):
            ep.poll(20)
            if server.counters.server_hellos:
                break
        assert server.counters.server_hellos == 1
        assert dealer.poll(1000)
        assert dealer.recv()[:4] == b"QZ\x01\x03"
    finally:
        dealer.close(0)
        ep.close()
        ctx.term()


# --- finding 3: max_sessions holds for handshakes admitted below it ------------------


def test_max_sessions_enforced_when_client_auth_verifies() -> None:
    cfg = config(max_sessions=1)
    server = make_server(cfg)
    clients = []
    for i, alg in enumerate((SignatureAlg.ML_DSA_44, SignatureAlg.ML_DSA_87)):
        c = make_client(cfg, alg=alg)
        c.connect(0.0)
        (h,) = c.data_to_send()
        rid = bytes([65 + i])
        server.receive(rid, h, 0.0, f"192.0.2.{i + 1}")
        ((_, sh),) = server.data_to_send()
        assert sh[3] == 3  # both admitted: no session exists yet
        c.receive(sh, 0.0)
        clients.append((rid, c))
    (rid, c) = clients[0]
    (auth,) = c.data_to_send()
    assert [type(e) for e in server.receive(rid, auth, 0.0, "192.0.2.1")] == [Established]
    server.data_to_send()
    (rid, c) = clients[1]
    (auth,) = c.data_to_send()
    assert server.receive(rid, auth, 0.0, "192.0.2.2") == []
    ((_, err),) = server.data_to_send()
    assert err == b"QZ\x01\x05\x02"
    assert server.session_count == 1


def test_max_sessions_still_lets_a_client_replace_its_own_session() -> None:
    cfg = config(max_sessions=1)
    server = make_server(cfg)
    c = make_client(cfg)
    c.connect(0.0)
    (h,) = c.data_to_send()
    server.receive(b"N", h, 0.0, PEER)  # admitted while no session exists
    ((_, sh),) = server.data_to_send()
    c.receive(sh, 0.0)
    _, old = establish(cfg=cfg, server=server, rid=b"O")  # the same client key
    (auth,) = c.data_to_send()
    events = server.receive(b"N", auth, 0.0, PEER)
    assert [type(e) for e in events] == [Established, Closed]
    assert events[1].conn == old  # type: ignore[union-attr]
    assert server.session_count == 1


# --- finding 4: the handshake timeout holds even when the caller's timer runs late ---


def test_server_refuses_client_auth_after_handshake_timeout() -> None:
    server = make_server()
    c = make_client()
    c.connect(0.0)
    (h,) = c.data_to_send()
    server.receive(RID, h, 0.0, PEER)
    ((_, sh),) = server.data_to_send()
    c.receive(sh, 0.0)
    (auth,) = c.data_to_send()
    # no handle_timer call between: the pending handshake expired at 10 s all the same
    assert server.receive(RID, auth, 10.5, PEER) == []
    assert server.session_count == 0 and server.pending_count == 0
    assert server.counters.pending_timeouts == 1 and server.counters.handshakes == 0


def test_client_refuses_ready_after_handshake_timeout() -> None:
    server = make_server()
    c = make_client()
    c.connect(0.0)
    (h,) = c.data_to_send()
    server.receive(RID, h, 0.0, PEER)
    ((_, sh),) = server.data_to_send()
    c.receive(sh, 0.0)
    (auth,) = c.data_to_send()
    server.receive(RID, auth, 1.0, PEER)
    ((_, ready),) = server.data_to_send()
    events = c.receive(ready, 11.0)
    assert [type(e) for e in events] == [Failed]
    assert c.state is ClientState.FAILED


def test_client_refuses_server_hello_after_handshake_timeout() -> None:
    server = make_server()
    c = make_client()
    c.connect(0.0)
    (h,) = c.data_to_send()
    server.receive(RID, h, 0.0, PEER)
    ((_, sh),) = server.data_to_send()
    assert [type(e) for e in c.receive(sh, 10.0)] == [Failed]
    assert c.data_to_send() == [b"QZ\x01\x05\x02"]  # ERROR, no CLIENT_AUTH


# --- finding 5: strangers filling max_pending_total must not lock out known nets -----


def test_pending_flood_from_many_nets_does_not_lock_out_known_net() -> None:
    cfg = config(max_pending_total=3)
    server = make_server(cfg)
    establish(cfg=cfg, server=server, peer="198.51.100.9", rid=fresh_rid())
    # strangers on many nets hold every pending slot open
    assert [_hello_from(server, f"203.0.113.{i}") for i in range(3)] == [3, 3, 3]
    assert _hello_from(server, "203.0.113.99") == 5
    # the client that authenticated from 198.51.100.9 still gets in
    link, _ = establish(cfg=cfg, server=server, peer="198.51.100.9", rid=fresh_rid())
    assert link.client.state is ClientState.ESTABLISHED
    # known nets have their own cap of max_pending_total
    assert [_hello_from(server, "198.51.100.9") for _ in range(4)] == [3, 3, 3, 5]
    assert server.pending_count == 6


# --- finding 6: known-net lookup is indexed by net and forgets consistently ----------


def test_known_nets_index_follows_eviction_and_allow_list() -> None:
    g = Guard(net_rate=(5, 20), total_rate=(200, 400), known_rate=(50, 100), rng=lambda n: bytes(n), now=0.0)
    allowed = {b"k1", b"k2"}
    for i in range(5):  # at most 4 nets per kid: the oldest (net 0) is evicted
        g.remember(b"k1", f"10.0.0.{i}", float(i))
    g.remember(b"k2", "10.0.0.4", 5.0)
    assert not g.is_known("10.0.0.0", 10.0, allowed.__contains__)
    assert all(g.is_known(f"10.0.0.{i}", 10.0, allowed.__contains__) for i in range(1, 5))
    g.forget_kids(lambda k: k == b"k2")
    assert not g.is_known("10.0.0.1", 10.0, allowed.__contains__)
    assert g.is_known("10.0.0.4", 10.0, allowed.__contains__)  # k2 is still there
    assert not g.is_known("10.0.0.4", 5.0 + 24 * 3600, allowed.__contains__)  # expired


# --- finding 7: a closed session drops its traffic keys ----------------------------


def test_closed_session_drops_traffic_keys() -> None:
    link, conn = establish()
    s = link.server.session(conn)
    link.server.close(conn)
    assert s.closed and s.send.secret == b"" and s.recv.secret == b""
    link.pump()
    cs = link.client.session
    assert cs is not None and cs.closed
    assert cs.send.secret == b"" and cs.recv.secret == b""
