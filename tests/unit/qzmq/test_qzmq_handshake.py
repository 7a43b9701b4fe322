"""Handshake state machines: modes, algs, errors, identity checks, session survival."""

from __future__ import annotations

import dataclasses

import pytest
from qzmq_testlib import (
    CLIENT_KEYS,
    PEER,
    RID,
    SERVER_KEY,
    Link,
    config,
    establish,
    fixed_key,
    fresh_rid,
    make_client,
    make_server,
)

from qfix.crypto import SignatureAlg, SigningKey
from qfix.crypto import primitives as prim
from qfix.qzmq import (
    ClientConnection,
    ClientState,
    Closed,
    CloseReason,
    ErrorCode,
    Established,
    Failed,
    Messages,
    Mode,
)
from qfix.qzmq import _client as client_mod
from qfix.qzmq import _schedule as ks

MODES = [Mode.HYBRID, Mode.PQ_ONLY]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("alg", list(SignatureAlg))
def test_establish_all_modes_and_algs(mode: Mode, alg: SignatureAlg) -> None:
    link, conn = establish(mode, alg)
    sizes = [len(f) for _, f in link.wire]
    assert sum(sizes) == (10542 if mode is Mode.HYBRID else 10478)
    (cest,) = [e for e in link.client_events if isinstance(e, Established)]
    (sest,) = [e for e in link.server_events if isinstance(e, Established)]
    assert sest.kid == CLIENT_KEYS[alg].kid and sest.accounts == (1001, 1002)
    assert cest.kid == SERVER_KEY.kid
    assert cest.channel_binding == sest.channel_binding
    assert link.client.export(b"EXPORTER-x", b"ctx", 100) == link.server.export(conn, b"EXPORTER-x", b"ctx", 100)
    assert link.client.export(b"EXPORTER-x", b"ctx", 32) != link.client.export(b"EXPORTER-y", b"ctx", 32)
    # both directions carry data
    link.client.send_fixed(b"a" * 120)
    link.client.send_messages([b"xy", b"z"])
    link.server.send_fixed(conn, b"b" * 60)
    se, ce = link.pump()
    assert se == [Messages((b"a" * 120,), True, conn), Messages((b"xy", b"z"), False, conn)]
    assert ce == [Messages((b"b" * 60,), True, 0)]


@pytest.mark.parametrize(("cmode", "smode"), [(Mode.HYBRID, Mode.PQ_ONLY), (Mode.PQ_ONLY, Mode.HYBRID)])
def test_mode_mismatch_no_fallback(cmode: Mode, smode: Mode) -> None:
    link = Link(make_server(config(mode=smode)), make_client(config(mode=cmode)))
    link.client.connect(0)
    _, ce = link.pump()
    assert ce == [Failed(ErrorCode.MISMATCH)]
    assert link.client.state is ClientState.FAILED
    assert link.server.pending_count == 0 and link.server.counters.hello_mismatch == 1
    assert link.client.data_to_send() == []  # no second hello in another mode


def test_tampered_mode_byte_fails() -> None:
    for mode in MODES:
        server = make_server(config(mode=mode))
        client = make_client(config(mode=mode))
        client.connect(0)
        (hello,) = client.data_to_send()
        bad = hello[:4] + bytes([3 - mode]) + hello[5:]
        server.receive(RID, bad, 0, PEER)
        assert server.data_to_send() == [(RID, b"QZ\x01\x05\x01")]
        assert server.pending_count == 0


def test_version_echo_and_bad_header() -> None:
    server = make_server()
    client = make_client()
    client.connect(0)
    (hello,) = client.data_to_send()
    server.receive(RID, hello[:2] + b"\x07" + hello[3:], 0, PEER)
    assert server.data_to_send() == [(RID, b"QZ\x07\x05\x01")]
    for junk in (b"QZ\x01", b"QX\x01\x01\x01\x00\x01", b"QZ\x01\x09\x00\x00\x00", b"QZ\x01\x04" + bytes(10)):
        server.receive(RID, junk, 0, PEER)
    assert server.data_to_send() == [] and server.counters.dropped_frames == 4


def test_unknown_server_kid_and_wrong_pinned_key() -> None:
    other = fixed_key(SignatureAlg.ML_DSA_65, 99)
    link = Link(make_server(), make_client(server=other))
    link.client.connect(0)
    _, ce = link.pump()
    assert ce == [Failed(ErrorCode.FAILED)]
    # the server knows the kid, but the client pins a different key with that kid
    pinned = dataclasses.replace(other.verify_key(), kid=SERVER_KEY.kid)
    client = ClientConnection(CLIENT_KEYS[SignatureAlg.ML_DSA_65], pinned, config())
    link = Link(make_server(), client)
    client.connect(0)
    se, ce = link.pump()
    assert ce == [Failed(ErrorCode.FAILED)] and not se
    assert link.server.session_count == 0


def test_server_key_rotation_two_keys() -> None:
    new = fixed_key(SignatureAlg.ML_DSA_65, 77)
    server = make_server(keys=(SERVER_KEY, new))
    for pinned in (SERVER_KEY, new):
        link = Link(server, make_client(server=pinned), rid=fresh_rid())
        link.client.connect(0)
        link.pump()
        assert link.client.state is ClientState.ESTABLISHED


def _auth_failure(client: ClientConnection, server_allow: object = None) -> Link:
    server = make_server(allow=server_allow) if server_allow else make_server()
    link = Link(server, client)
    client.connect(0)
    link.pump()
    return link


def test_unknown_client() -> None:
    stranger = fixed_key(SignatureAlg.ML_DSA_44, 55)
    link = _auth_failure(make_client(key=stranger))
    assert link.client_events == [Failed(ErrorCode.FAILED)]
    assert link.server.counters.auth_failed == 1 and link.server.session_count == 0
    assert not link.server_events


def test_alg_not_matching_allow_list() -> None:
    # the allow-list holds the kid with ML-DSA-87 but the client signs as ML-DSA-44
    k44 = CLIENT_KEYS[SignatureAlg.ML_DSA_44]
    k87 = fixed_key(SignatureAlg.ML_DSA_87, 3)
    fake_entry_key = dataclasses.replace(k87.verify_key(), kid=k44.kid)
    from qfix.crypto import AllowEntry, AllowList

    allow = AllowList([AllowEntry(fake_entry_key, (1,))])
    link = _auth_failure(make_client(key=k44), allow)
    assert link.client_events == [Failed(ErrorCode.FAILED)] and link.server.session_count == 0


def test_wrong_signing_key() -> None:
    allowed = CLIENT_KEYS[SignatureAlg.ML_DSA_65]
    other = fixed_key(SignatureAlg.ML_DSA_65, 66)
    forged = SigningKey(allowed.alg, other.seed, allowed.public, allowed.kid, other.key)
    link = _auth_failure(make_client(key=forged))
    assert link.client_events == [Failed(ErrorCode.FAILED)] and link.server.session_count == 0


def test_right_key_other_context(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(client_mod, "CTX_CLIENT_AUTH", b"qzmq1 server auth")
    link = _auth_failure(make_client())
    assert link.client_events == [Failed(ErrorCode.FAILED)] and link.server.session_count == 0


def test_server_signs_with_other_context(monkeypatch: pytest.MonkeyPatch) -> None:
    from qfix.qzmq import _work as work_mod  # the server's signing step

    monkeypatch.setattr(work_mod, "CTX_SERVER_AUTH", b"qzmq1 client auth")
    link = _auth_failure(make_client())
    assert link.client_events == [Failed(ErrorCode.FAILED)]


# --- CLIENT_AUTH resealed with a valid AEAD but bad content --------------------------------


def _open_auth(mode: Mode, alg: SignatureAlg = SignatureAlg.ML_DSA_44):  # type: ignore[no-untyped-def]
    """Run to CLIENT_AUTH with known ephemerals; return (server, CA, c_hs key/iv)."""
    dk = prim.mlkem_from_seed(bytes(64))
    xk = prim.x25519_from_bytes(bytes([9]) * 32) if mode is Mode.HYBRID else None
    cfg = config(mode=mode)
    client = ClientConnection(CLIENT_KEYS[alg], SERVER_KEY.verify_key(), cfg, ephemeral=(dk, xk))
    server = make_server(cfg)
    client.connect(0)
    (hello,) = client.data_to_send()
    server.receive(RID, hello, 0, PEER)
    ((_, sh),) = server.data_to_send()
    client.receive(sh, 0)
    (ca,) = client.data_to_send()
    c = 1159 if mode is Mode.HYBRID else 1127
    ikm = prim.mlkem_decapsulate(dk, sh[39:1127])
    if xk is not None:
        ikm += prim.x25519_exchange(xk, sh[1127:1159])
    hs = ks.handshake_secret(mode, ikm)
    tr = ks.Transcript()
    tr.add(1, hello)
    c_hs = ks.derive(hs, b"c hs traffic", tr.add(3, sh[:c]))
    key, iv = ks.traffic_keys(c_hs)
    return server, ca, prim.Aes256Gcm(key), iv


@pytest.mark.parametrize(
    "change",
    ["pad", "alg_byte", "alg_87", "kid", "unknown_alg"],
)
def test_client_auth_content_checks(change: str) -> None:
    server, ca, aead, iv = _open_auth(Mode.PQ_ONLY)
    pt = bytearray(aead.decrypt(iv, ca[4:], ca[:4]))
    if change == "pad":
        pt[-1] = 1
    elif change == "alg_byte":
        pt[0] = 2
    elif change == "alg_87":
        pt[0] = 3
    elif change == "kid":
        pt[1] ^= 1
    else:
        pt[0] = 4
    bad = ca[:4] + aead.encrypt(iv, bytes(pt), ca[:4])
    events = server.receive(RID, bad, 0, PEER)
    assert events == [] and server.session_count == 0
    assert server.data_to_send() == [(RID, b"QZ\x01\x05\x02")]
    # the untouched original verifies (the resealing itself was faithful) -- but the
    # pending state is gone after one failed CLIENT_AUTH
    assert server.receive(RID, ca, 0, PEER) == [] and server.counters.dropped_frames == 1


def test_client_auth_reseal_control() -> None:
    server, ca, aead, iv = _open_auth(Mode.HYBRID)
    pt = aead.decrypt(iv, ca[4:], ca[:4])
    same = ca[:4] + aead.encrypt(iv, pt, ca[:4])
    (ev,) = server.receive(RID, same, 0, PEER)
    assert isinstance(ev, Established)


@pytest.mark.parametrize(
    "share",
    [
        bytes(32),
        (1).to_bytes(32, "little"),
        bytes.fromhex("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"),
    ],
)
def test_low_order_x25519_share(share: bytes) -> None:
    server = make_server()
    client = make_client()
    client.connect(0)
    (hello,) = client.data_to_send()
    bad = hello[:1239] + share + hello[1271:]
    server.receive(RID, bad, 0, PEER)
    assert server.data_to_send() == [(RID, b"QZ\x01\x05\x02")]
    assert server.pending_count == 0


def test_ek_failing_fips203_check() -> None:
    server = make_server(config(mode=Mode.PQ_ONLY))
    client = make_client(config(mode=Mode.PQ_ONLY))
    client.connect(0)
    (hello,) = client.data_to_send()
    bad = hello[:55] + b"\xff" * 1184 + hello[1239:]
    server.receive(RID, bad, 0, PEER)
    assert server.data_to_send() == [(RID, b"QZ\x01\x05\x02")]
    assert server.counters.hello_rate_limited == 0  # no token taken on a cheap check


def test_wrong_lengths() -> None:
    server = make_server()
    client = make_client()
    client.connect(0)
    (hello,) = client.data_to_send()
    for bad in (hello[:-1], hello + b"\x00", hello[:-1] + b"\x05", hello[:-1] + b"\x18"):
        server.receive(RID, bad, 0, PEER)
        assert server.data_to_send() == [(RID, b"QZ\x01\x05\x02")]
    server.receive(RID, hello, 0, PEER)
    ((_, sh),) = server.data_to_send()
    for bad in (sh[:-1], sh + b"\x00", sh[:39] + sh[40:]):  # wrong ct length too
        c = make_client()
        c.connect(0)
        c.data_to_send()
        assert c.receive(bad, 0) == [Failed(ErrorCode.FAILED)]
        assert c.data_to_send() == [b"QZ\x01\x05\x02"]


def test_client_error_handling() -> None:
    cases = [
        (b"QZ\x01\x05\x01", ErrorCode.MISMATCH, []),
        (b"QZ\x01\x05\x02", ErrorCode.FAILED, []),
        (b"QZ\x02\x05\x01", ErrorCode.FAILED, []),  # ERROR of another version
        (b"\x10" + bytes(30), ErrorCode.FAILED, [b"QZ\x01\x05\x02"]),
        (b"QZ\x01\x04" + bytes(10), ErrorCode.FAILED, [b"QZ\x01\x05\x02"]),
    ]
    for frame, code, sent in cases:
        c = make_client()
        c.connect(0)
        c.data_to_send()
        assert c.receive(frame, 0) == [Failed(code)]
        assert c.data_to_send() == sent
        assert c.receive(frame, 0) == []  # terminal


def test_hello_retry_once() -> None:
    c = make_client()
    c.connect(0)
    (hello,) = c.data_to_send()
    retry = b"QZ\x01\x02" + bytes(range(24))
    assert c.receive(retry, 0) == []
    assert c.data_to_send() == [hello[:-1] + b"\x18" + bytes(range(24))]
    assert c.receive(retry, 0) == [Failed(ErrorCode.FAILED)]
    assert c.data_to_send() == [b"QZ\x01\x05\x02"]


def test_timeouts() -> None:
    c = make_client()
    c.connect(0)
    c.data_to_send()
    assert c.next_deadline() == 10.0
    assert c.handle_timer(9.9) == []
    assert c.handle_timer(10.0) == [Failed(ErrorCode.FAILED)]
    # server: pending handshake dropped after 10 s, and a late CLIENT_AUTH does nothing
    server = make_server()
    c = make_client()
    c.connect(0)
    (hello,) = c.data_to_send()
    server.receive(RID, hello, 0, PEER)
    ((_, sh),) = server.data_to_send()
    c.receive(sh, 1)
    (ca,) = c.data_to_send()
    assert server.next_deadline() == 10.0
    server.handle_timer(10.0)
    assert server.pending_count == 0 and server.counters.pending_timeouts == 1
    assert server.receive(RID, ca, 10.5, PEER) == [] and server.session_count == 0
    # client in WAIT_READY times out silently
    assert c.handle_timer(10.0) == [Failed(ErrorCode.FAILED)] and c.data_to_send() == []


def test_session_survives_hellos_and_failed_auth() -> None:
    link, conn = establish()
    server = link.server
    # a new hello and a failed CLIENT_AUTH on the same routing id and on another one
    for rid in (RID, fresh_rid()):
        intruder = make_client(key=fixed_key(SignatureAlg.ML_DSA_44, 200))
        other = Link(server, intruder, rid=rid)
        intruder.connect(1)
        other.pump()
        assert intruder.state is ClientState.FAILED
        assert server.session_count == 1 and server.conn_for_routing_id(RID) == conn
    link.client.send_fixed(b"q" * 60)
    se, _ = link.pump()
    assert se == [Messages((b"q" * 60,), True, conn)]


def test_replacement_only_after_verification_and_per_client_limit() -> None:
    link, conn = establish()
    server = link.server
    # same client reconnects on a new routing id: the old session is closed (CLOSE 03)
    again = Link(server, make_client(), rid=fresh_rid())
    again.client.connect(1)
    se, _ = again.pump()
    new_conn = next(e.conn for e in se if isinstance(e, Established))
    assert Closed(CloseReason.SUPERSEDED, False, conn) in se
    assert server.session_count == 1 and server.session_info(new_conn).routing_id == again.rid
    # the old client receives CLOSE(03), authenticated
    ((rid, close),) = again.stray
    assert rid == RID
    assert link.client.receive(close, 1) == [Closed(CloseReason.SUPERSEDED, True, 0)]
    # a new handshake on the same routing id replaces silently
    third = Link(server, make_client(), rid=again.rid)
    third.client.connect(2)
    se, _ = third.pump()
    assert Closed(CloseReason.SUPERSEDED, False, new_conn) in se
    assert server.session_count == 1


def test_max_sessions_per_client_two() -> None:
    server = make_server(config(max_sessions_per_client=2))
    conns = []
    for _ in range(3):
        _, conn = establish(server=server, rid=fresh_rid())
        conns.append(conn)
    assert server.session_count == 2
    assert {s.conn for s in server.sessions()} == set(conns[1:])


def test_nothing_before_authentication() -> None:
    server = make_server()
    client = make_client()
    client.connect(0)
    (hello,) = client.data_to_send()
    server.receive(RID, hello, 0, PEER)
    ((_, sh),) = server.data_to_send()
    client.receive(sh, 0)
    client.data_to_send()
    # a record on a routing id with only a pending handshake is dropped
    assert server.receive(RID, b"\x16\x00" + bytes(8) + bytes(76), 0, PEER) == []
    assert server.counters.records_without_session == 1
    # the client rejects data before READY
    assert client.receive(b"\x16\x00" + bytes(8) + bytes(76), 0) == [Failed(ErrorCode.FAILED)]
    assert client.data_to_send() == []


def test_reflected_and_swapped_directions() -> None:
    link, conn = establish()
    # client's own record reflected back to it: wrong key -> failed record, not fatal
    link.client.send_fixed(b"r" * 60)
    link.client.send_fixed(b"t" * 60)
    rec, rec2 = link.client.data_to_send()
    assert link.client.receive(rec, 0) == []  # seq 0 < next: a duplicate
    assert link.client.receive(rec2, 0) == []  # seq 1 == next: fails the AEAD
    sess = link.client.session
    assert sess is not None and sess.counters.failed_records == 1 and sess.counters.duplicates == 1
    # a server record fed to the server
    link.server.send_fixed(conn, b"s" * 60)
    ((_, srec),) = link.server.data_to_send()
    assert link.server.receive(RID, srec, 0, PEER) == []
    assert link.server.session(conn).counters.failed_records == 1
    # a handshake message reflected to the server is dropped
    hello_back = next(f for d, f in link.wire if d == "s2c" and f[:4] == b"QZ\x01\x03")
    assert link.server.receive(RID, hello_back, 0, PEER) == []
    assert link.client.receive(srec, 0)[0] == Messages((b"s" * 60,), True, 0)
    assert link.server.receive(RID, rec, 0, PEER)[0] == Messages((b"r" * 60,), True, conn)


def test_client_api_misuse() -> None:
    from qfix.qzmq import ConfigError, ConnectionClosed, LocalProtocolError

    c = make_client()
    with pytest.raises(ConnectionClosed):
        c.send_fixed(b"x" * 60)
    c.connect(0)
    with pytest.raises(LocalProtocolError):
        c.connect(0)
    with pytest.raises(ConfigError):
        ClientConnection(CLIENT_KEYS[SignatureAlg.ML_DSA_44], CLIENT_KEYS[SignatureAlg.ML_DSA_44].verify_key())
    link, _ = establish()
    for bad in (b"", b"x" * 59, b"x" * 60 * 1092):
        with pytest.raises(LocalProtocolError):
            link.client.send_fixed(bad)
    with pytest.raises(LocalProtocolError):
        link.client.send_messages([b""])
    link.client.send_fixed(b"x" * 60 * 1091)
    (rec,) = link.client.data_to_send()
    assert len(rec) == 65486
    with pytest.raises(ConfigError):
        config(rekey_interval=9)
    with pytest.raises(ConfigError):
        config(cookie_policy="sometimes")
    with pytest.raises(ConfigError):
        config(rekey_after_records=(1 << 30) + 1)
