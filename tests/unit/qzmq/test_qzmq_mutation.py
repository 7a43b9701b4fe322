"""Mutation tests: every handshake message and record type, flipped, truncated, extended.

The receiver's sans-I/O state is deep-copied just before the message, so each
mutation costs one processing step. The default suite mutates the first and last
byte of every field and truncates at every field boundary; ``-m slow`` runs every
byte and every length. Every case must fail closed: no Established, no Messages,
and either a documented error / drop (handshake) or a dropped-and-counted record
that leaves ``next`` unchanged (records), after which the genuine message is still
accepted by the same state.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Iterator

import pytest
from qzmq_testlib import PEER, RID, config, make_client, make_server

from qfix.qzmq import (
    ClientConnection,
    ClientState,
    Closed,
    ErrorCode,
    Failed,
    Messages,
    Mode,
    ServerProtocol,
)

# field boundaries (offsets) of each message, per mode
HYBRID_FIELDS = {
    "hello": [0, 4, 5, 7, 39, 55, 1239, 1271, 1272],
    "server_hello": [0, 4, 5, 7, 39, 1127, 1159, 1159 + 3309, 4516, 4532],
    "client_auth": [0, 4, 5, 21, 4696, 4712],
    "record": [0, 1, 2, 10, -16, None],
}
PQ_FIELDS = {
    "hello": [0, 4, 5, 7, 39, 55, 1239, 1240],
    "server_hello": [0, 4, 5, 7, 39, 1127, 1127 + 3309, 4484, 4500],
    "client_auth": HYBRID_FIELDS["client_auth"],
    "record": HYBRID_FIELDS["record"],
}


def _positions(msg: bytes, bounds: list[int | None], exhaustive: bool) -> Iterator[int]:
    if exhaustive:
        yield from range(len(msg))
        return
    pts = sorted({(b if b is not None else len(msg)) % (len(msg) + 1) for b in bounds})
    seen: set[int] = set()
    for a, b in itertools.pairwise(pts):
        for i in (a, b - 1, (a + b) // 2):
            if 0 <= i < len(msg) and i not in seen:
                seen.add(i)
                yield i


def _mutants(msg: bytes, bounds: list[int | None], exhaustive: bool) -> Iterator[bytes]:
    for i in _positions(msg, bounds, exhaustive):
        for x in (0x01, 0x80):
            yield msg[:i] + bytes([msg[i] ^ x]) + msg[i + 1 :]
    lengths = (
        range(len(msg))
        if exhaustive
        else sorted(
            {(b if b is not None else len(msg)) % (len(msg) + 1) for b in bounds} - {len(msg)} | {1, len(msg) - 1}
        )
    )
    for n in lengths:
        yield msg[:n]
    yield msg + b"\x00"
    yield msg + msg[-1:]


class Script:
    """A recorded handshake plus snapshots of the receiver before each message."""

    def __init__(self, mode: Mode) -> None:
        cfg = config(mode=mode)
        self.mode = mode
        server = make_server(cfg)
        client = make_client(cfg)
        client.connect(0)
        (self.hello,) = client.data_to_send()
        self.srv_before_hello = copy.deepcopy(server)
        server.receive(RID, self.hello, 0, PEER)
        ((_, self.sh),) = server.data_to_send()
        self.cli_before_sh = copy.deepcopy(client)
        client.receive(self.sh, 0)
        (self.ca,) = client.data_to_send()
        self.srv_before_ca = copy.deepcopy(server)
        events = server.receive(RID, self.ca, 0, PEER)
        self.conn = events[-1].conn  # type: ignore[union-attr]
        ((_, self.ready),) = server.data_to_send()
        self.cli_before_ready = copy.deepcopy(client)
        client.receive(self.ready, 0)
        assert client.state is ClientState.ESTABLISHED
        self.server, self.client = server, client


@pytest.fixture(scope="module", params=[Mode.HYBRID, Mode.PQ_ONLY], ids=["hybrid", "pq"])
def script(request: pytest.FixtureRequest) -> Script:
    return Script(request.param)


def _fields(script: Script) -> dict[str, list[int | None]]:
    return HYBRID_FIELDS if script.mode is Mode.HYBRID else PQ_FIELDS  # type: ignore[return-value]


def _check_hello(script: Script, exhaustive: bool) -> None:
    for bad in _mutants(script.hello, _fields(script)["hello"], exhaustive):
        srv = copy.deepcopy(script.srv_before_hello)
        assert srv.receive(RID, bad, 0, PEER) == []
        out = srv.data_to_send()
        assert srv.session_count == 0
        for _, frame in out:
            if frame[:4] == b"QZ\x01\x03":
                # the server answered a mutated hello: the client must refuse the answer
                cli = copy.deepcopy(script.cli_before_sh)
                assert cli.receive(frame, 0) == [Failed(ErrorCode.FAILED)], bad.hex()[:80]
            else:
                # an ERROR (echoing the hello's version byte); never anything else
                assert len(frame) == 5 and frame[:2] == b"QZ" and frame[3] == 5, frame


def _check_sh(script: Script, exhaustive: bool) -> None:
    for bad in _mutants(script.sh, _fields(script)["server_hello"], exhaustive):
        cli = copy.deepcopy(script.cli_before_sh)
        events = cli.receive(bad, 0)
        assert events == [Failed(ErrorCode.FAILED)], bad[:8].hex()
        assert cli.state is ClientState.FAILED and cli.session is None


def _check_ca(script: Script, exhaustive: bool) -> None:
    for bad in _mutants(script.ca, _fields(script)["client_auth"], exhaustive):
        srv = copy.deepcopy(script.srv_before_ca)
        assert srv.receive(RID, bad, 0, PEER) == []
        assert srv.session_count == 0
        for _, frame in srv.data_to_send():
            assert frame[3] == 5  # ERROR only


def _check_ready(script: Script, exhaustive: bool) -> None:
    for bad in _mutants(script.ready, _fields(script)["record"], exhaustive):
        cli = copy.deepcopy(script.cli_before_ready)
        assert cli.receive(bad, 0) == [Failed(ErrorCode.FAILED)]
        assert cli.data_to_send() == []


def _record_cases(script: Script) -> list[tuple[str, ServerProtocol | ClientConnection, bytes]]:
    """(direction, receiver snapshot, record) for each record type."""
    server, client = copy.deepcopy(script.server), copy.deepcopy(script.client)
    cases: list[tuple[str, ServerProtocol | ClientConnection, bytes]] = []

    def c2s(fn) -> None:  # type: ignore[no-untyped-def]
        fn()
        for rec in client.data_to_send():
            cases.append(("c2s", copy.deepcopy(server), rec))
            server.receive(RID, rec, 30.0, PEER)

    def s2c(fn) -> None:  # type: ignore[no-untyped-def]
        fn()
        for _, rec in server.data_to_send():
            cases.append(("s2c", copy.deepcopy(client), rec))
            client.receive(rec, 30.0)

    c2s(lambda: client.send_fixed(b"F" * 120))
    c2s(lambda: client.send_messages([b"ab", b"c"]))
    s2c(lambda: server.send_fixed(script.conn, b"G" * 60))
    s2c(lambda: server.send_messages(script.conn, [b"xyz"]))
    sess_c, sess_s = client.session, server.session(script.conn)
    assert sess_c is not None
    c2s(lambda: (sess_c._seal(0x12, b""), sess_c.send.ratchet()))  # KEY_UPDATE
    entry = server._sessions[script.conn]
    s2c(lambda: (sess_s._seal(0x12, b""), sess_s.send.ratchet(), server._flush(entry)))
    # a server request (REKEY_INIT) makes the client send its own REKEY_INIT
    s2c(lambda: (sess_s._seal(0x13, b""), server._flush(entry)))
    for rec in client.data_to_send():  # REKEY_INIT
        cases.append(("c2s", copy.deepcopy(server), rec))
        server.receive(RID, rec, 30.0, PEER)
    for _, rec in server.data_to_send():  # REKEY_RESP
        cases.append(("s2c", copy.deepcopy(client), rec))
        client.receive(rec, 30.0)
    for rec in client.data_to_send():  # REKEY_DONE
        cases.append(("c2s", copy.deepcopy(server), rec))
        server.receive(RID, rec, 30.0, PEER)
    c2s(lambda: client.close())
    types = {rec[0] for _, _, rec in cases}
    assert types == {0x10, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17}
    return cases


def _check_records(script: Script, exhaustive: bool) -> None:
    for direction, snap, rec in _record_cases(script):
        for bad in _mutants(rec, _fields(script)["record"], exhaustive):
            st = copy.deepcopy(snap)
            if direction == "c2s":
                assert isinstance(st, ServerProtocol)
                sess = st.session(script.conn)
                before = (sess.recv_next, sess.counters.failed_records, sess.counters.duplicates)
                events = st.receive(RID, bad, 30.0, PEER)
            else:
                assert isinstance(st, ClientConnection) and st.session is not None
                sess = st.session
                before = (sess.recv_next, sess.counters.failed_records, sess.counters.duplicates)
                events = st.receive(bad, 30.0)
            assert events == [], (rec[0], bad[:12].hex(), events)
            after = (sess.recv_next, sess.counters.failed_records, sess.counters.duplicates)
            assert after[0] == before[0] and after[1] + after[2] == before[1] + before[2] + 1
            # the genuine record still goes through the same state
            good = st.receive(RID, rec, 30.0, PEER) if direction == "c2s" else st.receive(rec, 30.0)  # type: ignore[union-attr, call-arg, arg-type]
            assert sess.recv_next == before[0] + 1
            assert all(isinstance(e, (Messages, Closed)) for e in good)
            assert not any(isinstance(e, Closed) and not e.authenticated for e in good)


CHECKS = {
    "hello": _check_hello,
    "server_hello": _check_sh,
    "client_auth": _check_ca,
    "ready": _check_ready,
    "records": _check_records,
}


@pytest.mark.parametrize("what", list(CHECKS))
def test_mutate_every_field(script: Script, what: str) -> None:
    CHECKS[what](script, False)


@pytest.mark.slow
@pytest.mark.parametrize("what", list(CHECKS))
def test_mutate_every_byte(script: Script, what: str) -> None:
    CHECKS[what](script, True)


def test_cross_session_records_rejected() -> None:
    """A record of one session spliced into another is dropped, not delivered."""
    from qzmq_testlib import establish, fresh_rid

    server = make_server(config(max_sessions_per_client=4))
    a, conn_a = establish(server=server, rid=fresh_rid())
    b, conn_b = establish(server=server, rid=fresh_rid())
    a.client.send_fixed(b"A" * 60)
    (rec,) = a.client.data_to_send()
    assert server.receive(b.rid, rec, 0, PEER) == []
    assert server.session(conn_b).counters.failed_records == 1
    assert server.receive(a.rid, rec, 0, PEER) == [Messages((b"A" * 60,), True, conn_a)]
