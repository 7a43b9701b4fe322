"""qfix.qzmq against the independent implementation in tests/interop/qzmq_independent.

Both directions, both modes, all client algs, a cookie round, KEY_UPDATEs from tiny
thresholds, a full re-key and equal exporters. Skipped when the independent module is
absent.
"""

from __future__ import annotations

import pickle
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "unit" / "qzmq"))
from qzmq_testlib import PEER, RID, SERVER_KEY, allow_list, fixed_key

from qfix.crypto import SignatureAlg
from qfix.qzmq import (
    ClientConnection,
    ClientState,
    Config,
    Established,
    Messages,
    Mode,
    ServerProtocol,
)
from qfix.qzmq._work import run

ind = pytest.importorskip("interop.qzmq_independent")

MODES = [Mode.HYBRID, Mode.PQ_ONLY]
ALGS = list(SignatureAlg)


def _msgs(events: list[object]) -> list[bytes]:
    return [f for e in events if isinstance(e, Messages) for f in e.frames]


@pytest.mark.parametrize("mode", MODES, ids=["hybrid", "pq"])
@pytest.mark.parametrize("alg", ALGS, ids=lambda a: a.label)
def test_qfix_client_independent_server(mode: Mode, alg: SignatureAlg) -> None:
    key = fixed_key(alg, 40 + alg)
    cfg = Config(mode=mode, rekey_after_records=3)
    client = ClientConnection(key, SERVER_KEY.verify_key(), cfg)
    server = ind.Server(
        mode=int(mode),
        server_key=SERVER_KEY.seed,
        clients=[(int(alg), key.public)],
        cookie_policy="always",
        peer=PEER,
        routing_id=RID,
        rekey_after_records=3,
    )
    client.connect(0.0)
    events: list[object] = []
    to_client: list[bytes] = []
    delivered: list[bytes] = []
    for _ in range(10):
        for f in client.data_to_send():
            out = server.receive(bytes(f), 1.0)
            to_client += out.frames
            delivered += out.messages
        for f in to_client:
            events += client.receive(f, 1.0)
        to_client = []
        if client.state is ClientState.ESTABLISHED:
            break
    assert client.state is ClientState.ESTABLISHED and server.established
    assert server.session.channel_binding == next(e for e in events if isinstance(e, Established)).channel_binding
    assert client.export(b"EXPORTER-i", b"c", 40) == server.session.exporter(b"EXPORTER-i", b"c", 40)
    sent_c, sent_s, got_c = [], [], []
    for i in range(12):
        m = bytes([i]) * 60 * (1 + i % 3)
        client.send_fixed(m)
        sent_c.append(m)
        for f in server.session.send_fixed(bytes([100 + i]) * 60):
            to_client.append(f)
        sent_s.append(bytes([100 + i]) * 60)
        if i == 5:
            client.request_rekey(20.0)
        for f in client.data_to_send():
            out = server.receive(bytes(f), 20.0)
            to_client += out.frames
            delivered += [p for t, p in out.payloads if t == 0x16]
        for f in to_client:
            got_c += _msgs(client.receive(f, 20.0))
        to_client = []
    for f in client.data_to_send():
        out = server.receive(bytes(f), 20.0)
        delivered += [p for t, p in out.payloads if t == 0x16]
    assert delivered == sent_c and got_c == sent_s
    assert server.session.rekeys_completed == 1 and client.session.counters.rekeys == 1  # type: ignore[union-attr]
    assert client.session.counters.key_updates_sent > 2  # type: ignore[union-attr]
    assert client.session.counters.key_updates_recv > 2  # type: ignore[union-attr]
    assert client.export(b"EXPORTER-i", b"c", 40) == server.session.exporter(b"EXPORTER-i", b"c", 40)


@pytest.mark.parametrize("offload", [False, True], ids=["inline", "offload"])
@pytest.mark.parametrize("mode", MODES, ids=["hybrid", "pq"])
@pytest.mark.parametrize("alg", ALGS, ids=lambda a: a.label)
def test_independent_client_qfix_server(mode: Mode, alg: SignatureAlg, offload: bool) -> None:
    key = fixed_key(alg, 40 + alg)
    cfg = Config(mode=mode, cookie_policy="always", rekey_after_records=3)
    server = ServerProtocol([SERVER_KEY], allow_list(key), cfg, now=0.0, offload=offload)
    client = ind.Client(
        mode=int(mode),
        server_public_key=SERVER_KEY.public,
        client_alg=int(alg),
        client_key=key.seed,
        rekey_after_records=3,
    )
    to_server = [client.hello()]
    events: list[object] = []
    for _ in range(10):
        for f in to_server:
            events += server.receive(RID, f, 1.0, PEER)
        for item in server.work_to_do():  # offloaded: as a worker process runs it
            done = run(pickle.loads(pickle.dumps(item)), {SERVER_KEY.kid: SERVER_KEY})
            events += server.complete(pickle.loads(pickle.dumps(done)), 1.0)
        to_server = []
        for _, f in server.data_to_send():
            to_server += client.receive(bytes(f), 1.0).frames
        if client.established:
            break
    assert client.established and client.hello_retries == 1
    (est,) = [e for e in events if isinstance(e, Established)]
    conn = est.conn
    assert est.channel_binding == client.session.channel_binding and est.accounts == (1001, 1002)
    sent_c, got_s, sent_s, got_c = [], [], [], []
    for i in range(12):
        m = bytes([i]) * 60
        to_server += client.session.send_fixed(m)
        sent_c.append(m)
        s = bytes([200 - i]) * 120
        server.send_fixed(conn, s)
        sent_s.append(s)
        if i == 6:
            to_server += client.session.start_rekey()
        for f in to_server:
            got_s += _msgs(server.receive(RID, f, 30.0, PEER))
        to_server = []
        for _, f in server.data_to_send():
            out = client.receive(bytes(f), 30.0)
            to_server += out.frames
            got_c += [p for t, p in out.payloads if t == 0x16]
    for f in to_server:
        got_s += _msgs(server.receive(RID, f, 30.0, PEER))
    assert got_s == sent_c and got_c == sent_s
    assert server.session(conn).counters.rekeys == 1 and client.session.rekeys_completed == 1
    assert server.session(conn).counters.key_updates_recv > 2
    assert server.export(conn, b"EXPORTER-j", b"", 16) == client.session.exporter(b"EXPORTER-j", b"", 16)


def test_mode_mismatch_with_independent() -> None:
    key = fixed_key(SignatureAlg.ML_DSA_44, 41)
    client = ClientConnection(key, SERVER_KEY.verify_key(), Config(mode=Mode.PQ_ONLY))
    server = ind.Server(mode=1, server_key=SERVER_KEY.seed, clients=[(1, key.public)])
    client.connect(0.0)
    (hello,) = client.data_to_send()
    out = server.receive(bytes(hello))
    (ev,) = client.receive(out.frames[0], 0.0)
    assert ev.code == 1  # type: ignore[union-attr]
