"""QZMQ over real DEALER/ROUTER sockets on 127.0.0.1: many clients, reconnects, floods."""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from pathlib import Path

import pytest
import zmq

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "unit" / "qzmq"))
from qzmq_testlib import CLIENT_KEYS, allow_list, config, fixed_key, make_client, make_server

from qfix.crypto import SignatureAlg, SigningKey
from qfix.qzmq import ClientState, Closed, CloseReason, Established, Messages, adapter
from qfix.qzmq.adapter import ClientEndpoint, ServerEndpoint

pytestmark = pytest.mark.integration


def _run(server: ServerEndpoint, clients: list[ClientEndpoint], until, limit: float = 10.0) -> list:  # type: ignore[no-untyped-def]
    """Poll everything until ``until()`` holds (bounded by ``limit`` seconds)."""
    events = []
    end = time.monotonic() + limit
    while time.monotonic() < end:
        events += server.poll(1)
        for c in clients:
            events += c.poll(0)
        if until():
            return events
    raise AssertionError("condition not reached in time")


@pytest.fixture
def ctx():  # type: ignore[no-untyped-def]
    c = zmq.Context()
    yield c
    c.destroy(linger=0)


def test_many_clients_trade(ctx: zmq.Context) -> None:  # type: ignore[type-arg]
    keys = [fixed_key(SignatureAlg.ML_DSA_44, 100 + i) for i in range(8)]
    server = ServerEndpoint(
        make_server(config(cookie_policy="always"), allow=allow_list(*keys)), "tcp://127.0.0.1:*", context=ctx
    )
    clients = [ClientEndpoint(make_client(key=k), server.endpoint, context=ctx) for k in keys]
    for c in clients:
        c.start()
    _run(server, clients, lambda: all(c.state is ClientState.ESTABLISHED for c in clients))
    assert server.protocol.session_count == 8
    by_kid = {s.kid: s.conn for s in server.protocol.sessions()}
    got: dict[int, list[bytes]] = {}
    for i, c in enumerate(clients):
        for j in range(50):
            c.send_fixed(bytes([i, j]) * 30 * (1 + j % 3))
    end = time.monotonic() + 10
    while sum(len(v) for v in got.values()) < 400 and time.monotonic() < end:
        for e in server.poll(1):
            if isinstance(e, Messages):
                got.setdefault(e.conn, []).append(e.frames[0])
        for c in clients:
            c.poll(0)
    for i, k in enumerate(keys):
        assert got[by_kid[k.kid]] == [bytes([i, j]) * 30 * (1 + j % 3) for j in range(50)]
    # the server answers each client on its own session
    for k in keys:
        server.send_fixed(by_kid[k.kid], k.kid * 15)
    replies: dict[int, bytes] = {}

    def collect() -> bool:
        for i, c in enumerate(clients):
            for e in c.poll(0):
                if isinstance(e, Messages):
                    replies[i] = e.frames[0]
        return len(replies) == 8

    _run(server, [], collect)
    assert all(replies[i] == keys[i].kid * 15 for i in range(8))
    for c in clients:
        c.close()
    server.close()


@pytest.mark.parametrize("select_fds", [True, False], ids=["select", "descriptors-over-1024"])
def test_fractional_waits_wait_see_frames_and_time_out(
    ctx: zmq.Context,  # type: ignore[type-arg]
    monkeypatch: pytest.MonkeyPatch,
    select_fds: bool,
) -> None:
    """A timeout that is not a whole number of milliseconds (the select path over
    libzmq's edge-triggered descriptors, or zmq_poll rounded up where descriptors are too
    high for select) waits at least that long when nothing comes, and delivers a frame
    that arrives from another thread in the middle of one wait."""
    if not select_fds:
        monkeypatch.setattr(adapter, "_SELECT_FD_LIMIT", 0)
    key = fixed_key(SignatureAlg.ML_DSA_44, 130)
    server = ServerEndpoint(make_server(config(), allow=allow_list(key)), "tcp://127.0.0.1:*", context=ctx)
    client = ClientEndpoint(make_client(key=key), server.endpoint, context=ctx)
    client.start()
    _run(server, [client], lambda: client.state is ClientState.ESTABLISHED)
    conn = next(s.conn for s in server.protocol.sessions())
    for _ in range(5):
        client.poll(0)  # the session's first records, if any, are read now
    started = time.perf_counter()
    assert [e for e in client.poll(0.25) if isinstance(e, Messages)] == []
    assert time.perf_counter() - started >= 0.25e-3  # a truncating wait would return at once
    for n in range(5):
        sender = threading.Timer(0.005, lambda n=n: server.send_fixed(conn, bytes([n]) * 60))
        sender.start()
        got = [e.frames[0] for e in client.poll(2000.5) if isinstance(e, Messages)]
        sender.join()
        assert got == [bytes([n]) * 60]  # within the one wait, however long it had left
    client.close()
    server.close()


def test_reconnect_supersedes_and_disconnect_ends(ctx: zmq.Context) -> None:  # type: ignore[type-arg]
    server = ServerEndpoint(make_server(), "tcp://127.0.0.1:*", context=ctx)
    first = ClientEndpoint(make_client(), server.endpoint, context=ctx)
    first.start()
    evs = _run(server, [first], lambda: first.state is ClientState.ESTABLISHED)
    conn1 = next(e.conn for e in evs if isinstance(e, Established) and e.conn)
    # same key, new DEALER: the new session replaces the old one (CLOSE 03 to the old)
    second = ClientEndpoint(make_client(), server.endpoint, context=ctx)
    second.start()
    evs = _run(
        server, [first, second], lambda: second.state is ClientState.ESTABLISHED and first.state is ClientState.CLOSED
    )
    assert Closed(CloseReason.SUPERSEDED, False, conn1) in evs
    assert Closed(CloseReason.SUPERSEDED, True, 0) in evs
    conn2 = server.protocol.sessions()[0].conn
    # abrupt disconnect: the client sees Closed at once, the server at its next send
    second.socket.disable_monitor()  # else the closing socket's events block libzmq's I/O thread
    second._monitor.close(linger=0)
    second.socket.close(linger=0)
    deadline = time.monotonic() + 5
    ended = []
    while time.monotonic() < deadline and not ended:
        server.poll(5)
        try:
            ended = [e for e in server.send_fixed(conn2, b"p" * 60) if isinstance(e, Closed)]
        except Exception:  # the session may already be gone
            ended = [True]  # type: ignore[list-item]
    assert ended and server.protocol.session_count == 0
    first.close()
    server.close()


def test_junk_and_replayed_hello_flood_while_trading(ctx: zmq.Context) -> None:  # type: ignore[type-arg]
    cfg = config(cookie_policy="under-load", cookie_load_threshold=4, max_bad_records=64)
    server = ServerEndpoint(make_server(cfg), "tcp://127.0.0.1:*", context=ctx)
    trader = ClientEndpoint(make_client(cfg), server.endpoint, context=ctx)
    trader.start()
    _run(server, [trader], lambda: trader.state is ClientState.ESTABLISHED)
    conn = server.protocol.sessions()[0].conn
    # capture one genuine hello to replay, from a client that never finishes
    probe = make_client(cfg, key=CLIENT_KEYS[SignatureAlg.ML_DSA_87])
    probe.connect(0)
    (hello,) = probe.data_to_send()
    flooders = []
    for _ in range(4):
        s = ctx.socket(zmq.DEALER)
        s.setsockopt(zmq.LINGER, 0)
        s.setsockopt(zmq.SNDHWM, 100000)
        s.connect(server.endpoint)
        flooders.append(s)
    junk = [
        b"QZ\x01\x01" + bytes(100),
        b"QZ\x01\x04" + bytes(4708),
        b"\x16" + bytes(80),
        hello,
        hello[:-1] + b"\x18" + bytes(24),
        b"QZ\x09\x01" + bytes(30),
    ]
    sent = received = 0
    start = time.monotonic()
    while time.monotonic() - start < 3.0 and sent < 300:
        for s in flooders:
            for j in junk:
                s.send(j, zmq.NOBLOCK)
        trader.send_fixed(sent.to_bytes(4, "big") * 15)
        sent += 1
        for e in server.poll(0, max_frames=256):
            if isinstance(e, Messages):
                assert e.conn == conn and e.frames[0] == received.to_bytes(4, "big") * 15
                received += 1
        trader.poll(0)
    end = time.monotonic() + 5
    while received < sent and time.monotonic() < end:
        for e in server.poll(1, max_frames=4096):
            if isinstance(e, Messages):
                assert e.frames[0] == received.to_bytes(4, "big") * 15
                received += 1
    assert received == sent >= 50
    c = server.protocol.counters
    assert server.protocol.session_count == 1 and trader.state is ClientState.ESTABLISHED
    assert c.dropped_frames + c.hello_failed + c.hello_retry + c.records_without_session > 100
    # asymmetric work stayed inside the hello buckets (net: burst 20, 5/s)
    elapsed = time.monotonic() - start
    assert c.server_hellos <= 20 + 5 * elapsed + 1
    assert c.hello_rate_limited > 0
    for s in flooders:
        s.close(linger=0)
    trader.close()
    server.close()


def test_dropped_transport_ends_session_promptly(ctx: zmq.Context) -> None:  # type: ignore[type-arg]
    """A frame over MAXMSGSIZE makes libzmq drop the transport; the socket monitor ends
    the session at the server's next poll, without a send or a timeout."""
    server = ServerEndpoint(make_server(), "tcp://127.0.0.1:*", context=ctx)
    other = ClientEndpoint(make_client(alg=SignatureAlg.ML_DSA_44), server.endpoint, context=ctx)
    bad = ClientEndpoint(make_client(), server.endpoint, context=ctx)
    other.start()
    bad.start()
    _run(server, [other, bad], lambda: other.state is bad.state is ClientState.ESTABLISHED)
    assert server.protocol.session_count == 2
    conn = server.protocol.conn_for_routing_id(
        next(s.routing_id for s in server.protocol.sessions() if s.kid == CLIENT_KEYS[SignatureAlg.ML_DSA_65].kid)
    )
    bad.socket.setsockopt(zmq.MAXMSGSIZE, -1)
    bad.socket.send(b"\x16" + bytes(70000))
    start = time.monotonic()
    evs = _run(server, [other], lambda: server.protocol.session_count == 1, limit=5.0)
    elapsed = time.monotonic() - start
    assert Closed(CloseReason.PROTOCOL_ERROR, False, conn) in evs
    assert elapsed < 1.0 and server.disconnects == 1
    # the other session is untouched
    assert other.state is ClientState.ESTABLISHED
    other.send_fixed(b"z" * 60)
    got: list = []  # type: ignore[type-arg]
    end = time.monotonic() + 5
    while not any(isinstance(e, Messages) for e in got) and time.monotonic() < end:
        got += server.poll(1)
    assert [e.frames[0] for e in got if isinstance(e, Messages)] == [b"z" * 60]
    bad.close()
    other.close()
    server.close()


def test_handshake_workers_serve_and_survive_a_worker_death(ctx: zmq.Context) -> None:  # type: ignore[type-arg]
    """handshake_workers=2: handshakes run in worker processes, records flow as before;
    a killed worker is replaced and its handshakes end (the client retries)."""
    keys = [fixed_key(SignatureAlg.ML_DSA_44, 120 + i) for i in range(4)]
    server = ServerEndpoint(
        make_server(config(cookie_policy="always"), allow=allow_list(*keys)),
        "tcp://127.0.0.1:*",
        context=ctx,
        handshake_workers=2,
    )
    try:
        assert server.protocol.offload and server.workers is not None
        clients = [ClientEndpoint(make_client(key=k), server.endpoint, context=ctx) for k in keys[:3]]
        for c in clients:
            c.start()

        seen: list = []  # type: ignore[type-arg]

        def run_until(cond, limit: float = 20.0) -> None:  # type: ignore[no-untyped-def]
            end = time.monotonic() + limit
            while time.monotonic() < end:
                server.wait(5)
                seen.extend(server.poll(0))
                for c in clients:
                    c.poll(0)
                if cond():
                    return
            raise AssertionError("condition not reached in time")

        run_until(lambda: all(c.state is ClientState.ESTABLISHED for c in clients))
        assert server.protocol.session_count == 3 and server.protocol.counters.handshakes == 3
        for i, c in enumerate(clients):
            c.send_fixed(bytes([i]) * 60)

        def got() -> list[bytes]:
            return [e.frames[0] for e in seen if isinstance(e, Messages)]

        run_until(lambda: len(got()) == 3)
        assert sorted(got()) == [bytes([i]) * 60 for i in range(3)]
        # kill both workers: the next handshake still completes on their replacements
        for w in server.workers.workers:
            w.proc.kill()
            w.proc.join(5)
        late = ClientEndpoint(make_client(key=keys[3]), server.endpoint, context=ctx)
        clients.append(late)
        late.start()
        run_until(lambda: late.state in (ClientState.ESTABLISHED, ClientState.FAILED, ClientState.CLOSED))
        if late.state is not ClientState.ESTABLISHED:  # its work was lost with a dead worker: retry
            late.close()
            late = ClientEndpoint(make_client(key=keys[3]), server.endpoint, context=ctx)
            clients[-1] = late
            late.start()
            run_until(lambda: late.state is ClientState.ESTABLISHED)
        assert server.workers.restarts == 2 and server.protocol.session_count == 4
        for c in clients:
            c.close()
    finally:
        server.close()
    assert server.workers.workers == []


def test_a_reused_descriptor_never_ends_the_new_connection(ctx: zmq.Context) -> None:  # type: ignore[type-arg]
    """The kernel can hand a closed connection's descriptor to a new one. When the new
    connection's first handshake frame names a descriptor still mapped to another
    routing id, the pending monitor events are read at once and the old connection is
    ended even if its DISCONNECTED never comes (lost, or read before its frame was); the
    descriptor then belongs to the new connection, whose own event alone can end it (a
    returning client's handshake used to vanish that way and time out after 10 s)."""
    server = ServerEndpoint(make_server(config()), "tcp://127.0.0.1:*", context=ctx)
    old, new = b"\x00old01", b"\x00new02"
    server._note_fd(7, old)
    server._note_fd(7, old)  # more frames of the same connection
    assert server._dead == []
    server._note_fd(7, new)  # fd 7 reused, no DISCONNECTED seen
    assert server._dead == [old]
    assert server._fd_disconnected(7) == new  # the new connection's own event ends it
    assert server._fd_disconnected(7) is None
    server.close()


@pytest.mark.parametrize("share", [0.01, 1.0])
def test_hellos_past_the_handshake_share_are_dropped_but_known_nets_are_not(
    ctx: zmq.Context,  # type: ignore[type-arg]
    share: float,
) -> None:
    """A hello flood from strangers' addresses takes at most ``handshake_share`` of the
    loop: past it their hellos are dropped unanswered (counted), while an established
    session's records all arrive and a client from a known net still gets in. A share
    of 1.0 drops nothing."""
    cfg = config(cookie_policy="always")
    server = ServerEndpoint(make_server(cfg), "tcp://127.0.0.1:*", context=ctx, handshake_share=share)
    port = server.endpoint.rsplit(":", 1)[1]
    trader = ClientEndpoint(make_client(cfg), server.endpoint, context=ctx)
    trader.start()
    _run(server, [trader], lambda: trader.state is ClientState.ESTABLISHED)
    probe = make_client(cfg, key=CLIENT_KEYS[SignatureAlg.ML_DSA_87])
    probe.connect(0)
    (hello,) = probe.data_to_send()
    flooders = []
    for i in range(8):  # strangers: other loopback addresses, never authenticated
        s = ctx.socket(zmq.DEALER)
        s.setsockopt(zmq.LINGER, 0)
        s.setsockopt(zmq.SNDHWM, 100_000)
        s.connect(f"tcp://127.0.0.{20 + i}:0;127.0.0.1:{port}")
        flooders.append(s)
    sent = received = 0
    start = time.monotonic()
    while time.monotonic() - start < 2.0:
        for s in flooders:
            for _ in range(50):
                # while records flow the server reads a few flood frames per record, so a
                # flooder's queue fills: what a full socket refuses is the attacker's loss
                with contextlib.suppress(zmq.Again):
                    s.send(hello, zmq.NOBLOCK)
        trader.send_fixed(sent.to_bytes(4, "big") * 15)
        sent += 1
        for e in server.poll(0):
            if isinstance(e, Messages):
                assert e.frames[0] == received.to_bytes(4, "big") * 15
                received += 1
        trader.poll(0)
    # a second client from the trader's (now known) net handshakes during the flood
    late = ClientEndpoint(make_client(cfg, key=CLIENT_KEYS[SignatureAlg.ML_DSA_44]), server.endpoint, context=ctx)
    late.start()
    for s in flooders:
        for _ in range(200):
            with contextlib.suppress(zmq.Again):
                s.send(hello, zmq.NOBLOCK)
    end = time.monotonic() + 10
    while not (late.state is ClientState.ESTABLISHED and received == sent) and time.monotonic() < end:
        for e in server.poll(1):
            if isinstance(e, Messages):
                assert e.frames[0] == received.to_bytes(4, "big") * 15
                received += 1
        trader.poll(0)
        late.poll(0)
    assert late.state is ClientState.ESTABLISHED
    shed, retries = server.handshake_frames_shed, server.protocol.counters.hello_retry
    for s in flooders:
        s.close(linger=0)
    for client in (trader, late):
        client.close()
    server.close()
    assert received == sent >= 20
    if share == 1.0:
        assert shed == 0
    else:
        # what was answered stayed near the share: a HELLO_RETRY costs tens of microseconds
        assert shed > 0 and retries < shed


@pytest.mark.parametrize("spin_us", [0, 500])
def test_the_server_wait_never_sleeps_through_a_frame(ctx: zmq.Context, spin_us: int) -> None:  # type: ignore[type-arg]
    """The server waits on libzmq's notification descriptors, which signal commands, not
    frames: a send on the socket may take in the command that announced a frame, and the
    descriptor then stays quiet. Each round here makes that happen (a frame arrives after
    the server's last receive and before its send, a few milliseconds apart so that the
    send does process commands), then waits up to 2 s: the frame must be seen at once,
    with and without polling before the sleep. An idle wait, spinning or not, lasts its
    timeout and reports nothing."""
    key = fixed_key(SignatureAlg.ML_DSA_44, 131)
    server = ServerEndpoint(
        make_server(config(), allow=allow_list(key)), "tcp://127.0.0.1:*", context=ctx, idle_spin_us=spin_us
    )
    client = ClientEndpoint(make_client(key=key), server.endpoint, context=ctx)
    client.start()
    _run(server, [client], lambda: client.state is ClientState.ESTABLISHED)
    conn = next(s.conn for s in server.protocol.sessions())
    for _ in range(5):
        client.poll(0)

    def receive(want: bytes) -> float:
        started = time.monotonic()
        got: list[bytes] = []
        while not got and time.monotonic() - started < 5.0:
            server.wait(2000)
            got += [e.frames[0] for e in server.poll(0) if isinstance(e, Messages)]
        assert got == [want]
        return time.monotonic() - started

    client.send_fixed(b"\xff" * 60)
    receive(b"\xff" * 60)
    slowest = 0.0
    for n in range(30):
        client.send_fixed(bytes([n]) * 60)
        time.sleep(0.003)  # it reaches the server's pipe; libzmq's command throttle has passed
        server.send_fixed(conn, bytes([n]) * 120)  # this send takes in the frame's command
        slowest = max(slowest, receive(bytes([n]) * 60))
    assert slowest < 1.0, f"a wait slept {slowest:.3f} s with a frame waiting"
    started = time.monotonic()
    assert not server.wait(50)
    assert time.monotonic() - started >= 0.045
    client.close()
    server.close()


def test_a_negative_spin_is_refused(ctx: zmq.Context) -> None:  # type: ignore[type-arg]
    with pytest.raises(ValueError, match="idle_spin_us"):
        ServerEndpoint(make_server(), "tcp://127.0.0.1:*", context=ctx, idle_spin_us=-1)


def _established_pair(ctx: zmq.Context, key: SigningKey) -> tuple[ServerEndpoint, ClientEndpoint]:  # type: ignore[type-arg]
    """A server that knows ``key`` and a client of it, established."""
    server = ServerEndpoint(make_server(config(), allow=allow_list(key)), "tcp://127.0.0.1:*", context=ctx)
    client = ClientEndpoint(make_client(key=key), server.endpoint, context=ctx)
    client.start()
    _run(server, [client], lambda: client.state is ClientState.ESTABLISHED)
    return server, client


def test_a_caller_that_reads_the_socket_gets_the_known_nets_and_a_poll_that_reads_nothing(
    ctx: zmq.Context,  # type: ignore[type-arg]
) -> None:
    """The server's compiled read: ``hellos_to_shed`` is None until handshakes are over
    their share while a session trades, then the known clients' IPv4 nets (here the
    loopback address a client authenticated from); ``poll(read_by_caller=True)`` leaves
    the socket to the caller and still answers the handshake frames it was given."""
    key = fixed_key(SignatureAlg.ML_DSA_44, 150)
    server, client = _established_pair(ctx, key)
    assert server.protocol.known_ipv4_nets(time.monotonic()) == [0x7F000001]
    assert server.hellos_to_shed() is None
    server.records_read()  # a session trades
    server._hs_budget = -1.0  # and handshakes used up their share
    assert server.hellos_to_shed() == [0x7F000001]
    server._hs_budget = 1.0
    # a record waits on the socket: a poll for a caller that reads it takes nothing
    client.send_fixed(b"\x01" * 60)
    deadline = time.monotonic() + 5
    while not int(server.socket.getsockopt(zmq.EVENTS)) & zmq.POLLIN:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    server.caller_reads()
    assert not [e for e in server.poll(0, read_by_caller=True) if isinstance(e, Messages)]
    assert int(server.socket.getsockopt(zmq.EVENTS)) & zmq.POLLIN
    # a second client's hello, read by "the caller" and handed over, is answered by
    # that poll alone
    other = ClientEndpoint(make_client(key=key), server.endpoint, context=ctx)
    other.start()
    rid, frame = b"", b""
    while not frame.startswith(b"Q"):
        assert time.monotonic() < deadline
        other.poll(0)  # its hello waits for the connection (ZMQ_IMMEDIATE)
        if server.socket.poll(10):
            rid, frame = server.socket.recv_multipart()
    server.caller_reads()
    server.take_handshake(rid, frame, -1, "127.0.0.1")
    server.poll(0, read_by_caller=True)
    while other.state is ClientState.WAIT_SH:
        assert time.monotonic() < deadline, other.state
        other.poll(1)
    client.close()
    other.close()
    server.close()


def test_a_caller_that_reads_gets_dropped_transports_ended_only_after_its_next_read(
    ctx: zmq.Context,  # type: ignore[type-arg]
) -> None:
    """A transport noted dropped after the caller's read began may still have frames on
    the socket (an order, its CLOSE): it is ended by the poll after the caller's next
    read, not by the one after the read that came before it was noted."""
    server, client = _established_pair(ctx, fixed_key(SignatureAlg.ML_DSA_44, 151))
    conn = next(s.conn for s in server.protocol.sessions())
    rid = server.protocol.routing_id(conn)
    assert rid is not None
    server.caller_reads()
    server._dead.append(rid)  # noted after that read began (the monitor, or a reused fd)
    server.poll(0, read_by_caller=True)
    assert server.protocol.session_count == 1
    assert server.busy()
    server.caller_reads()  # the next read: now it has been read after
    events = server.poll(0, read_by_caller=True)
    assert server.protocol.session_count == 0
    assert [e for e in events if isinstance(e, Closed)]
    client.close()
    server.close()
