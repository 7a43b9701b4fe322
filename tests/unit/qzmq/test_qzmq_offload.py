"""Offloaded handshake work (ServerProtocol(offload=True)): the protocol queues work
items, the caller runs them and feeds results back; the same bytes as inline."""

from __future__ import annotations

import hashlib
import pickle

import pytest
from qzmq_testlib import CLIENT_KEYS, PEER, RID, SERVER_KEY, config, make_client, make_server

from qfix.crypto import SignatureAlg
from qfix.crypto import primitives as prim
from qfix.qzmq import ClientState, Established, Mode, ServerProtocol
from qfix.qzmq._work import AuthWork, Done, HelloWork, run

KEYS = {SERVER_KEY.kid: SERVER_KEY}


def _remote(item: object) -> Done:
    """Run an item as a worker process would: pickled both ways."""
    done = run(pickle.loads(pickle.dumps(item)), KEYS)
    return pickle.loads(pickle.dumps(done))  # type: ignore[no-any-return]


def _handshake(server: ServerProtocol, mode: Mode = Mode.HYBRID, rid: bytes = RID, now: float = 0.0):  # type: ignore[no-untyped-def]
    """Drive one client to ESTABLISHED; return (client, frames server->client, server
    events, client events)."""
    client = make_client(config(mode=mode))
    client.connect(now)
    s2c: list[bytes] = []
    sev: list[object] = []
    cev: list[object] = []
    for _ in range(10):
        for f in client.data_to_send():
            sev += server.receive(rid, f, now, PEER)
        for item in server.work_to_do():
            sev += server.complete(_remote(item), now)
        out = [f for r, f in server.data_to_send() if r == rid]
        if not out:
            break
        s2c += out
        for f in out:
            cev += client.receive(f, now)
    return client, s2c, sev, cev


@pytest.mark.parametrize("mode", [Mode.HYBRID, Mode.PQ_ONLY], ids=["hybrid", "pq"])
def test_offloaded_handshake_establishes(mode: Mode) -> None:
    server = make_server(config(mode=mode))
    server.offload = True
    client = make_client(config(mode=mode))
    client.connect(0.0)
    (hello,) = client.data_to_send()
    assert server.receive(RID, hello, 0.0, PEER) == []
    # nothing is computed inline: no SERVER_HELLO yet, one item queued, handshake pending
    assert server.data_to_send() == [] and server.pending_count == 1
    (item,) = server.work_to_do()
    assert isinstance(item, HelloWork) and item.hello == hello and server.work_in_flight == 1
    assert server.work_to_do() == []
    assert server.complete(_remote(item), 0.0) == []
    ((rid, sh),) = server.data_to_send()
    assert rid == RID and server.counters.server_hellos == 1
    assert client.receive(sh, 0.0) == []
    (auth,) = client.data_to_send()
    assert server.receive(RID, auth, 0.0, PEER) == []
    (item2,) = server.work_to_do()
    assert isinstance(item2, AuthWork) and server.session_count == 0
    (est,) = server.complete(_remote(item2), 0.0)
    assert isinstance(est, Established) and est.kid == CLIENT_KEYS[SignatureAlg.ML_DSA_65].kid
    ((_, ready),) = server.data_to_send()
    (cest,) = client.receive(ready, 0.0)
    assert client.state is ClientState.ESTABLISHED
    assert isinstance(cest, Established) and est.channel_binding == cest.channel_binding
    assert server.work_in_flight == 0 and server.pending_count == 0


@pytest.mark.parametrize("mode", [Mode.HYBRID, Mode.PQ_ONLY], ids=["hybrid", "pq"])
def test_inline_and_offloaded_frames_are_identical(mode: Mode, monkeypatch: pytest.MonkeyPatch) -> None:
    """Given the same randomness, both paths send the same bytes: the primitives that
    draw their own randomness are made deterministic here, server_random comes from rng."""
    real_sign = prim.mldsa_sign

    def fake_kem(ek: prim.MLKEMPublicKey) -> tuple[bytes, bytes]:
        return hashlib.sha256(ek.public_bytes_raw()).digest(), hashlib.shake_256(b"ct").digest(1088)

    def fake_sign(key: prim.MLDSAPrivateKey, data: bytes, context: bytes) -> bytes:
        return hashlib.shake_256(data + context).digest(len(real_sign(key, b"", b"")))

    monkeypatch.setattr(prim, "mlkem_encapsulate", fake_kem)
    monkeypatch.setattr(prim, "mldsa_sign", fake_sign)
    monkeypatch.setattr(prim, "x25519_generate", lambda: prim.x25519_from_bytes(b"\x09" * 32))

    client = make_client(config(mode=mode))
    client.connect(0.0)
    (hello,) = client.data_to_send()

    def serve(offload: bool) -> list[bytes]:
        server = ServerProtocol(
            [SERVER_KEY], make_server().allow_list, config(mode=mode), rng=lambda n: b"\x5a" * n, offload=offload
        )
        frames: list[bytes] = []
        for _ in range(2):  # the same hello twice: the second replaces the first
            server.receive(RID, hello, 0.0, PEER)
            for item in server.work_to_do():
                server.complete(_remote(item) if offload else run(item, KEYS), 0.0)
            frames += [f for _, f in server.data_to_send()]
        return frames

    inline, offloaded = serve(False), serve(True)
    assert len(inline) == 2 and inline == offloaded


def test_full_handshake_same_result_inline_and_offloaded() -> None:
    """Real randomness: both paths establish; the frame sizes and the exporter agree
    with the client's view."""
    for offload in (False, True):
        server = make_server()
        server.offload = offload
        client, s2c, sev, cev = _handshake(server)
        assert client.state is ClientState.ESTABLISHED
        assert [len(f) for f in s2c] == [4532, 26]
        (est,) = [e for e in sev if isinstance(e, Established)]
        (cest,) = [e for e in cev if isinstance(e, Established)]
        assert est.channel_binding == cest.channel_binding


def test_stale_result_is_discarded() -> None:
    server = make_server()
    server.offload = True
    client = make_client()
    client.connect(0.0)
    (hello,) = client.data_to_send()
    server.receive(RID, hello, 0.0, PEER)
    (first,) = server.work_to_do()
    # the client sends its hello again before the first SERVER_HELLO: it replaces it
    server.receive(RID, hello, 0.0, PEER)
    (second,) = server.work_to_do()
    assert server.work_in_flight == 1 and server.pending_count == 1
    assert server.complete(_remote(first), 0.0) == []
    assert server.data_to_send() == [] and server.counters.work_discarded == 1
    server.complete(_remote(second), 0.0)
    assert len(server.data_to_send()) == 1 and server.counters.server_hellos == 1


def test_deadline_holds_while_work_is_in_flight() -> None:
    server = make_server(config(handshake_timeout=1.0))
    server.offload = True
    client = make_client()
    client.connect(0.0)
    server.receive(RID, client.data_to_send()[0], 0.0, PEER)
    (item,) = server.work_to_do()
    assert server.next_deadline() == 1.0
    server.handle_timer(1.5)
    assert server.pending_count == 0 and server.work_in_flight == 0
    assert server.complete(_remote(item), 1.6) == [] and server.data_to_send() == []
    assert server.counters.pending_timeouts == 1 and server.counters.work_discarded == 1


def test_auth_while_hello_in_flight_is_dropped_and_lost_work_ends_handshake() -> None:
    server = make_server()
    server.offload = True
    client = make_client()
    client.connect(0.0)
    server.receive(RID, client.data_to_send()[0], 0.0, PEER)
    (item,) = server.work_to_do()
    server.receive(RID, b"QZ\x01\x04" + bytes(4708), 0.0, PEER)
    assert server.counters.dropped_frames == 1 and server.work_to_do() == []
    server.work_lost(item.job)
    assert server.pending_count == 0 and server.counters.work_lost == 1
    assert server.data_to_send() == [(RID, b"QZ\x01\x05\x02")]


def test_in_flight_limit_refuses_and_known_nets_count_apart() -> None:
    server = make_server()
    server.offload = True
    server.max_work_in_flight = 2
    # a known net: a client authenticated from it
    known = "198.51.100.9"
    server.offload = False
    _handshake_from(server, known, b"\x00K0001")
    server.offload = True
    for i in range(3):
        client = make_client()
        client.connect(0.0)
        server.receive(bytes([1, i]), client.data_to_send()[0], 0.0, f"203.0.113.{i}")
    assert server.work_in_flight == 2 and server.counters.hello_busy == 1
    assert [f for _, f in server.data_to_send()] == [b"QZ\x01\x05\x02"]
    # a client from the known net still gets in
    client = make_client(key=CLIENT_KEYS[SignatureAlg.ML_DSA_44])
    client.connect(0.0)
    server.receive(b"\x00K0002", client.data_to_send()[0], 0.0, known)
    assert server.work_in_flight == 3 and server.counters.hello_busy == 1


def _handshake_from(server: ServerProtocol, peer: str, rid: bytes) -> None:
    client = make_client()
    client.connect(0.0)
    for _ in range(4):
        for f in client.data_to_send():
            server.receive(rid, f, 0.0, peer)
        for _, f in server.data_to_send():
            client.receive(f, 0.0)
    assert client.state is ClientState.ESTABLISHED


def test_buckets_asked_before_the_mlkem_check_taken_after() -> None:
    """Deviation 19: a hello is refused for an empty bucket before its ML-KEM key is
    parsed; a bad key still takes no token."""
    server = make_server(config(hello_rate_per_address=(0.001, 1.0)))

    def hello(bad: bool) -> bytes:
        client = make_client()
        client.connect(0.0)
        (h,) = client.data_to_send()
        return h[:55] + b"\xff" * 1184 + h[1239:] if bad else h

    server.receive(b"r1", hello(False), 0.0, "203.0.113.1")  # takes the net's only token
    server.receive(b"r2", hello(True), 0.0, "203.0.113.1")
    c = server.counters
    assert (c.server_hellos, c.hello_rate_limited, c.hello_failed) == (1, 1, 0)
    server.receive(b"r3", hello(True), 0.0, "203.0.113.2")  # bad key: FAILED, no token taken
    assert (c.hello_rate_limited, c.hello_failed) == (1, 1)
    server.receive(b"r4", hello(False), 0.0, "203.0.113.2")
    assert c.server_hellos == 2
    assert [f for _, f in server.data_to_send()].count(b"QZ\x01\x05\x02") == 2


def test_a_worker_whose_parent_went_away_mid_item_exits_quietly(monkeypatch: pytest.MonkeyPatch) -> None:
    """A server shutting down closes the workers' pipes; a worker still running an item
    then finds the pipe broken when it answers, and must end as it does on EOF, not die
    with a traceback (seen once, at a server's shutdown under a hello flood)."""
    import multiprocessing

    from qfix.qzmq import adapter

    monkeypatch.setattr(adapter.os, "nice", lambda _n: 0)  # the test process keeps its priority
    monkeypatch.setattr(adapter.signal, "signal", lambda *_a: None)
    parent, child = multiprocessing.Pipe()
    item = AuthWork(job=1, known=False, alg=int(SignatureAlg.ML_DSA_44), public=b"\x00", signature=b"", message=b"")
    parent.send_bytes(pickle.dumps(item))
    parent.close()  # gone before the answer
    adapter._worker_main(child, [])  # returns; before the fix it raised BrokenPipeError
    child.close()
