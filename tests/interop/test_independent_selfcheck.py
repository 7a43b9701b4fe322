"""Self-check of the independent QZMQ implementation: its client against its server.

Also checks QZMQ.md Appendix A exactly.  The real implementation is exercised by the
interop test, not here.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives.asymmetric import mldsa
from cryptography.hazmat.primitives.asymmetric.mlkem import MLKEM768PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .qzmq_independent import (
    ALG_ML_DSA_44,
    ALG_ML_DSA_65,
    ALG_ML_DSA_87,
    HYBRID,
    PQ_ONLY,
    R_DATA,
    R_DATA_FIXED,
    Client,
    Output,
    Server,
    schedule,
)

# --- Appendix A ---------------------------------------------------------------------
APPX = {
    "salt0_hybrid": "9d429bda3b802a6a8b93172e13da9c6fd82f55018c7c7522a4cee55adf8c39f1f0f5ab7fc52708038d9a0311d9b99c75",
    "salt0_pq": "3c353a13756b46b0dd66a6853d3e953c294b4df90e80cc0a566d9684f5b99251541241a6b217fec809c555300298f8bb",
    "HS": "94f572a6efd441ee24579727c23787d5cac48e956c88e054cb0be1d060681f42b5a96679ff16b14ac9ff0e62dec1ddc0",
    "TH": "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed8086072ba1e7cc2358baeca134c825a7",
    "c_hs": "ff7be1bae40906c4007dc23d6a668ecaed9d0521519323c81939ce1aa4d4fdd980a2b1cc8c9e2aade9c4cd202f5456e7",
    "key": "8a82df432826419feec0293a59ab6afbc8c7539827207263885101c4f487620f",
    "iv": "dfd6d1f14bac9fea1f1e16ed",
    "nonce": "dfd6d1f14aae9cee1a1811e5",
    "traffic_upd": "b275ab3b55d1da9922331d888cf0d5dca07a9185a281bbac745d41e3c43784324de3e772ad99dd1109f9538e7e1a6a1d",
    "MS": "e409f24ad6ac2b6c125cff0b2f7ead72b635e22899c4278ff64a0df62dec1fa0d250643f94db0f302eef65c17cef080a",
    "exp": "363012e8b6eb3e93d702c01c24302ea2f4a9b8eb384ffb660057a1ac54a580405b91c5e7f28b08513fa84f89bb8f6784",
    "channel_binding": "b312a61e726f9c9978ef9b27b026cd2afbc98ebad70853af828bba6d124c61ed",
    "s_hs": "88487e3329bf199c2b6a1ad357abc0316117b5b319702ca8c9cb32944338859af75ccc475688c7993eacbe9a2a9c3791",
    "finished": "3293ff7d4c9cec12d9a112f13793ebcf64179c0c02c2f1cd07b30416a997da309a3e7080af7ae92ff2622db727cb18e6",
    "TH_items": "bfb7fb3e731c755c67c7ed70c43447fa1857e0fb6f2fef8a17c44cf63008a2ae3f6adc24aa405ecefa1620795241c877",
    "exporter_test": "6be97fcb60fd1bf5c047e57324f490c28867f368e71f67091e6badab76475b24",
    "chain": "60b0f73c1917eedb3327d63f3564d9af61216f0ebd3edb37a342dce2f0073a1c192d5e698888d813ac6aa5e4b29e8a91",
    "TH_rekey": "0bb0d5ced39d5b2b5eb7a11002371c180a86c2cee3e30c6b06800e2380b103c5590e67337fe100cf4999e81f78f5a36d",
    "c_ap_rekey": "372747d03a48500e7bb72067d7a1eb4d07784d0d573d7e27e4cf348a9aa99945caf0bc32aa0e9894ed72410624db6705",
    "s_ap_rekey": "b6ee5b73b247d32778dba681a0648e0ac1333bdd66291eb23e5314c94575c6805600c12e770d1d7ced8b3f9396ff1dd0",
    "chain_rekey": "0e553485b690de7d81b1f28f9ab4d5ed2407ee833e65580a6e343b308f2b6a47eb00d156eb8371f9c3a41c9052626808",
    "cookie": "00001000d78e1d72f340069f9edf6a47efca71a680aaef27",
}


def test_appendix_a_key_schedule() -> None:
    qs = schedule
    x = {k: bytes.fromhex(v) for k, v in APPX.items()}
    assert qs.salt0(HYBRID) == x["salt0_hybrid"]
    assert qs.salt0(PQ_ONLY) == x["salt0_pq"]
    hs = qs.handshake_secret(HYBRID, bytes(range(64)))
    assert hs == x["HS"]
    th = qs.H(b"abc")
    assert th == x["TH"]
    c_hs = qs.derive_secret(hs, "c hs traffic", th)
    assert c_hs == x["c_hs"]
    assert qs.traffic_keys(c_hs) == (x["key"], x["iv"])
    assert qs.record_nonce(x["iv"], 0x0102030405060708) == x["nonce"]
    assert qs.expand_label(c_hs, "traffic upd", b"", 48) == x["traffic_upd"]
    assert qs.next_traffic_secret(c_hs) == x["traffic_upd"]
    ms = qs.master_secret(hs)
    assert ms == x["MS"]
    exp = qs.derive_secret(ms, "exp master", th)
    assert exp == x["exp"]
    assert qs.exporter(exp, "EXPORTER-Channel-Binding", b"", 32) == x["channel_binding"]
    assert qs.channel_binding(exp) == x["channel_binding"]
    s_hs = qs.derive_secret(hs, "s hs traffic", th)
    assert s_hs == x["s_hs"]
    assert qs.finished_mac(s_hs, th) == x["finished"]
    assert qs.hmac384(qs.expand_label(s_hs, "finished", b"", 48), th) == x["finished"]
    assert qs.transcript_hash([(0x01, b"abc"), (0x03, b"")]) == x["TH_items"]
    assert qs.exporter(exp, "EXPORTER-qfix-test", b"order-entry", 32) == x["exporter_test"]
    chain = qs.derive_secret(ms, "rekey chain", th)
    assert chain == x["chain"]
    rk = qs.rekey_derive(chain, th, b"\x11" * 1216, b"\x22" * 1120, bytes(range(0x40, 0x80)))
    assert rk["th_rk"] == x["TH_rekey"]
    assert rk["c_ap"] == x["c_ap_rekey"]
    assert rk["s_ap"] == x["s_ap_rekey"]
    assert rk["chain"] == x["chain_rekey"]
    cookie = qs.make_cookie(bytes(range(32)), 4096, "192.0.2.7", bytes.fromhex("0080000029"), b"abc")
    assert cookie == x["cookie"]


def test_application_secrets_match_appendix() -> None:
    x = {k: bytes.fromhex(v) for k, v in APPX.items()}
    s = schedule.application_secrets(x["HS"], x["TH"])
    assert s["exp"] == x["exp"]
    assert s["chain"] == x["chain"]
    assert s["th_rk"] == x["TH"]


# --- fixtures -----------------------------------------------------------------------
SERVER_SEED = bytes(range(32))
CLIENT_SEEDS = {ALG_ML_DSA_44: b"\x44" * 32, ALG_ML_DSA_65: b"\x65" * 32, ALG_ML_DSA_87: b"\x87" * 32}
_PRIV = {
    ALG_ML_DSA_44: mldsa.MLDSA44PrivateKey,
    ALG_ML_DSA_65: mldsa.MLDSA65PrivateKey,
    ALG_ML_DSA_87: mldsa.MLDSA87PrivateKey,
}


def _pk(alg: int, seed: bytes) -> bytes:
    return _PRIV[alg].from_seed_bytes(seed).public_key().public_bytes_raw()


SERVER_PK = _pk(ALG_ML_DSA_65, SERVER_SEED)
ALLOW = [(alg, _pk(alg, seed)) for alg, seed in CLIENT_SEEDS.items()]


def _pair(mode: int, alg: int, cookie: bool = False, **kw: int) -> tuple[Client, Server]:
    c = Client(mode=mode, server_public_key=SERVER_PK, client_alg=alg, client_key=CLIENT_SEEDS[alg], **kw)
    s = Server(
        mode=mode,
        server_key=SERVER_SEED,
        clients=ALLOW,
        cookie_policy="always" if cookie else "never",
        peer="192.0.2.7",
        routing_id=b"\x00\x80\x00\x00\x29",
        **kw,
    )
    return c, s


def _one(out: Output) -> bytes:
    assert len(out.frames) == 1, out
    return out.frames[0]


def _handshake(c: Client, s: Server, now: float = 100.0) -> list[bytes]:
    """Run the handshake; return every frame on the wire in order."""
    wire = [c.hello()]
    out = s.receive(wire[-1], now)
    if out.events == ["HELLO_RETRY"]:
        wire.append(_one(out))
        wire.append(_one(c.receive(wire[-1], now)))
        out = s.receive(wire[-1], now)
    assert out.events == ["SERVER_HELLO"]
    wire.append(_one(out))
    wire.append(_one(c.receive(wire[-1], now)))
    out = s.receive(wire[-1], now)
    assert out.events == ["ESTABLISHED"]
    wire.append(_one(out))
    out = c.receive(wire[-1], now)
    assert out.events == ["ESTABLISHED"] and out.frames == []
    assert c.established and s.established
    return wire


def _deliver(frames: list[bytes], to: Client | Server, now: float = 100.0) -> Output:
    total = Output()
    for f in frames:
        total.extend(to.receive(f, now))
    return total


# --- full runs ----------------------------------------------------------------------
@pytest.mark.parametrize("mode", [HYBRID, PQ_ONLY], ids=["hybrid", "pq_only"])
@pytest.mark.parametrize("alg", [ALG_ML_DSA_44, ALG_ML_DSA_65, ALG_ML_DSA_87], ids=["44", "65", "87"])
@pytest.mark.parametrize("cookie", [False, True], ids=["nocookie", "cookie"])
def test_full_session(mode: int, alg: int, cookie: bool) -> None:
    c, s = _pair(mode, alg, cookie)
    wire = _handshake(c, s)
    hybrid = mode == HYBRID
    sizes = [len(f) for f in wire]
    expected = [1272 if hybrid else 1240, 4532 if hybrid else 4500, 4712, 26]
    if cookie:
        expected = [expected[0], 28, expected[0] + 24, *expected[1:]]
    assert sizes == expected
    total = 10_542 if hybrid else 10_478
    if cookie:
        # QZMQ.md: "a cookie round adds 52" (HELLO_RETRY 28 + cookie 24); the first,
        # cookieless hello is sent too, so the wire carries one more hello.
        assert sum(sizes) == total + 52 + sizes[0]
    else:
        assert sum(sizes) == total
    # CLIENT_HELLO layout: header, mode, suite, kid of the pinned key.
    assert wire[0][:7] == b"QZ\x01\x01" + bytes([mode]) + b"\x00\x01"
    assert wire[0][39:55] == schedule.kid(SERVER_PK)
    if cookie:
        assert wire[2][:-25] == wire[0][:-1] and wire[2][-25] == 24
        assert wire[2][-24:] == wire[1][4:]
    # Both sides hold the same key schedule; the READY is s_ap epoch 0 seq 0.
    assert c.handshake_secrets == s.handshake_secrets
    assert wire[-1][:10] == b"\x11\x00" + bytes(8)
    cs, ss = c.session, s.session
    assert cs is not None and ss is not None
    assert ss.peer_kid == c.client_kid and ss.peer_alg == alg
    # Records both ways, DATA and DATA_FIXED.
    out = _deliver(cs.send_data([b"a", b"bc" * 300]), s)
    assert out.messages == [b"a", b"bc" * 300] and out.events == ["DATA"]
    fixed = [bytes([i]) * 60 for i in range(5)]
    out = _deliver(ss.send_fixed(fixed), c)
    assert out.messages == fixed and out.payloads == [(R_DATA_FIXED, b"".join(fixed))]
    # KEY_UPDATE each way.
    out = _deliver(cs.send_key_update(), s)
    assert out.events == ["KEY_UPDATE"] and ss.recv_epoch == cs.send_epoch == 1
    assert ss.recv_secret == cs.send_secret == schedule.next_traffic_secret(c.handshake_secrets["c_ap"])
    out = _deliver(ss.send_key_update(), c)
    assert out.events == ["KEY_UPDATE"] and cs.recv_epoch == ss.send_epoch == 1
    out = _deliver(ss.send_data([b"after ku"]), c)
    assert out.messages == [b"after ku"]
    # Exporters before the re-key.
    cb = cs.channel_binding
    assert cb == ss.channel_binding
    assert cb == schedule.channel_binding(c.handshake_secrets["exp"])
    e1 = cs.exporter("EXPORTER-qfix-test", b"order-entry", 64)
    assert e1 == ss.exporter("EXPORTER-qfix-test", b"order-entry", 64)
    assert e1 != cs.exporter("EXPORTER-qfix-test", b"other", 64)
    # Full re-key: REKEY_INIT → REKEY_RESP → REKEY_DONE.
    old_send, old_recv = cs.send_secret, cs.recv_secret
    init = cs.start_rekey()
    assert len(init) == 1 and len(init[0]) == 26 + (1216 if hybrid else 1184)
    out = _deliver(init, s)
    assert out.events == ["REKEY_INIT"] and len(out.frames[0]) == 26 + (1120 if hybrid else 1088)
    assert ss.send_epoch == 2 and ss.rekey_state == "WAIT_DONE"
    out2 = _deliver(out.frames, c)
    assert out2.events == ["REKEYED"] and cs.recv_epoch == 2 and cs.send_epoch == 2
    out3 = _deliver(out2.frames, s)
    assert out3.events == ["REKEYED"] and ss.recv_epoch == 2 and ss.rekey_state == "IDLE"
    assert cs.send_secret == ss.recv_secret != old_send
    assert cs.recv_secret == ss.send_secret != old_recv
    # Traffic after the re-key, and exporters unchanged (§5.2).
    out = _deliver(cs.send_fixed(b"\x07" * 120), s)
    assert out.messages == [b"\x07" * 60] * 2
    out = _deliver(ss.send_data([b"x"]), c)
    assert out.messages == [b"x"]
    assert cs.exporter("EXPORTER-qfix-test", b"order-entry", 64) == e1
    assert cs.channel_binding == ss.channel_binding == cb
    # Authenticated CLOSE.
    out = _deliver(cs.close(), s)
    assert out.closed == (0, True) and out.frames == []
    assert ss.closed and cs.closed


@pytest.mark.parametrize("mode", [HYBRID, PQ_ONLY], ids=["hybrid", "pq_only"])
def test_server_requested_rekey_and_usage_key_updates(mode: int) -> None:
    """Tiny thresholds: KEY_UPDATEs interleaved with re-keys, nothing lost, no nonce reuse."""
    c, s = _pair(mode, ALG_ML_DSA_44, rekey_after_records=3, rekey_after_blocks=40)
    _handshake(c, s)
    cs, ss = c.session, s.session
    assert cs is not None and ss is not None
    got_s, got_c, sent_c, sent_s = [], [], [], []
    for i in range(40):
        m = f"c{i}".encode() * (i % 7 + 1)
        sent_c.append(m)
        got_s += _deliver(cs.send_data([m]), s).messages
        m = bytes([i]) * 60
        sent_s.append(m)
        got_c += _deliver(ss.send_fixed([m]), c).messages
        if i % 13 == 5:
            out = _deliver(ss.request_rekey(), c)  # client answers with REKEY_INIT
            assert out.events == ["REKEY_REQUEST"] and len(out.frames) in (1, 2)
            resp = _deliver(out.frames, s)
            # The server interleaves data between REKEY_RESP and the client's DONE.
            mid = ss.send_data([b"mid"])
            done = _deliver(resp.frames + mid, c)
            got_c += done.messages
            sent_s.append(b"mid")
            assert "REKEYED" in done.events
            fin = _deliver(done.frames, s)
            assert "REKEYED" in fin.events and not ss.rekey_requested
    assert got_s == sent_c and got_c == sent_s
    assert cs.rekeys_completed == ss.rekeys_completed == 3
    assert cs.send_epoch == ss.recv_epoch > 10 and ss.send_epoch == cs.recv_epoch > 10
    for sess in (cs, ss):
        assert len(set(sess.sealed_nonces)) == len(sess.sealed_nonces)
    assert cs.duplicates == ss.duplicates == cs.bad_records == ss.bad_records == 0


def test_key_update_during_pending_rekey_ratchets_old_key() -> None:
    c, s = _pair(HYBRID, ALG_ML_DSA_65)
    _handshake(c, s)
    cs, ss = c.session, s.session
    assert cs is not None and ss is not None
    init = cs.start_rekey()
    ku = ss.send_key_update()  # server epoch 1, crossing the REKEY_INIT
    assert _deliver(ku, c).events == ["KEY_UPDATE"] and cs.recv_epoch == 1
    resp = _deliver(init, s)  # sealed at server epoch 1, new key epoch 2
    assert resp.frames[0][1] == 1 and ss.send_epoch == 2
    ku2 = cs.send_key_update()  # client: ratchet old c_ap while WAIT_RESP
    assert _deliver(ku2, s).events == ["KEY_UPDATE"] and ss.recv_epoch == 1
    done = _deliver(resp.frames, c)
    assert done.frames[0][1] == 1 and cs.send_epoch == 2 and cs.recv_epoch == 2
    assert _deliver(done.frames, s).events == ["REKEYED"] and ss.recv_epoch == 2
    assert _deliver(cs.send_data([b"ok"]), s).messages == [b"ok"]


# --- sequencing and failures --------------------------------------------------------
def _established(mode: int = PQ_ONLY) -> tuple[Client, Server]:
    c, s = _pair(mode, ALG_ML_DSA_44)
    _handshake(c, s)
    return c, s


def test_duplicate_dropped_gap_fatal() -> None:
    c, s = _established()
    cs, ss = c.session, s.session
    assert cs is not None and ss is not None
    r0, r1, r2 = (cs.send_data([bytes([i])])[0] for i in range(3))
    assert s.receive(r0).messages == [b"\x00"]
    out = s.receive(r0)
    assert out.events == ["DUPLICATE"] and ss.duplicates == 1 and ss.recv_next == 1
    out = s.receive(r2)  # r1 withheld: gap → CLOSE(01)
    assert out.messages == [] and out.closed == (1, False) and ss.closed
    close = c.receive(out.frames[0])
    assert close.closed == (1, True)
    assert s.receive(r1).events == ["DROPPED"]


def test_junk_and_tampered_records_counted_not_fatal() -> None:
    c, s = _established()
    cs, ss = c.session, s.session
    assert cs is not None and ss is not None
    r = cs.send_data([b"m"])[0]
    bad = [
        r[:-1] + bytes([r[-1] ^ 1]),  # tag
        r[:12] + bytes([r[12] ^ 1]) + r[13:],  # ciphertext
        bytes([0x11]) + r[1:],  # READY is not a C→S type
        r[:1] + b"\x05" + r[2:],  # wrong epoch
        r[:25],  # too short
        b"\x10" * 40,  # junk
    ]
    for junk in bad:
        assert s.receive(junk).events == ["BAD_RECORD"]
    assert ss.bad_records == len(bad) and ss.recv_next == 0
    assert s.receive(r).messages == [b"m"]


def test_bad_record_threshold_in_window() -> None:
    c, s = _pair(PQ_ONLY, ALG_ML_DSA_44, max_bad_records=3)
    _handshake(c, s)
    for t in (0.0, 1.0, 2.0):
        assert s.receive(b"\x10" * 30, t).events == ["BAD_RECORD"]
    assert s.receive(b"\x10" * 30, 70.0).events == ["BAD_RECORD"]  # new 60 s window
    for t in (71.0, 72.0):
        assert s.receive(b"\x10" * 30, t).events == ["BAD_RECORD"]
    out = s.receive(b"\x10" * 30, 73.0)
    assert out.closed == (1, False) and c.receive(out.frames[0]).closed == (1, True)


def test_rekey_records_out_of_turn_are_fatal() -> None:
    c, s = _established(HYBRID)
    cs, ss = c.session, s.session
    assert cs is not None and ss is not None
    init = cs.start_rekey()
    _deliver(init, s)
    # A second REKEY_INIT while the server waits for REKEY_DONE.
    cs.rekey_state = "IDLE"
    out = _deliver(cs.start_rekey(), s)
    assert out.closed == (1, False)


def test_close_reason_unknown_reads_as_protocol_error() -> None:
    c, s = _established()
    cs = c.session
    assert cs is not None
    out = _deliver(cs.close(9), s)
    assert out.closed == (1, True)


# --- handshake failures -------------------------------------------------------------
def test_mode_mismatch_reports_mismatch() -> None:
    c = Client(mode=HYBRID, server_public_key=SERVER_PK, client_alg=1, client_key=CLIENT_SEEDS[1])
    s = Server(mode=PQ_ONLY, server_key=SERVER_SEED, clients=ALLOW)
    err = _one(s.receive(c.hello()))
    assert err == b"QZ\x01\x05\x01"
    out = c.receive(err)
    assert out.failed == 1 and out.frames == [] and c.state == "FAILED"
    # Version 02 is answered with an ERROR that echoes version 02.
    assert _one(s.receive(b"QZ\x02\x01" + bytes(20))) == b"QZ\x02\x05\x01"


def test_tampered_server_hello_fails_with_error() -> None:
    c, s = _pair(HYBRID, ALG_ML_DSA_87)
    sh = bytearray(_one(s.receive(c.hello())))
    sh[2000] ^= 1
    out = c.receive(bytes(sh))
    assert out.failed == 2 and out.frames == [b"QZ\x01\x05\x02"] and c.session is None


def test_wrong_pinned_server_key_fails() -> None:
    c = Client(
        mode=PQ_ONLY,
        server_public_key=_pk(ALG_ML_DSA_65, b"\x01" * 32),
        client_alg=1,
        client_key=CLIENT_SEEDS[1],
    )
    s = Server(mode=PQ_ONLY, server_key=SERVER_SEED, clients=ALLOW)
    assert _one(s.receive(c.hello())) == b"QZ\x01\x05\x02"  # unknown server kid


def _reseal_client_auth(c: Client, auth: bytes, edit: Callable[[bytearray], None]) -> bytes:
    key, iv = schedule.traffic_keys(c.handshake_secrets["c_hs"])
    pt = bytearray(AESGCM(key).decrypt(iv, auth[4:], auth[:4]))
    edit(pt)
    return auth[:4] + AESGCM(key).encrypt(iv, bytes(pt), auth[:4])


@pytest.mark.parametrize("case", ["pad", "alg", "kid", "sig", "fin", "length"])
def test_bad_client_auth_rejected(case: str) -> None:
    c, s = _pair(PQ_ONLY, ALG_ML_DSA_44)
    auth = _one(c.receive(_one(s.receive(c.hello()))))

    def edit(pt: bytearray) -> None:
        if case == "pad":
            pt[-1] = 1
        elif case == "alg":
            pt[0] = 2
        elif case == "kid":
            pt[1] ^= 1
        elif case == "sig":
            pt[100] ^= 1
        elif case == "fin":
            pt[17 + 2420] ^= 1

    bad = auth + b"\x00" if case == "length" else _reseal_client_auth(c, auth, edit)
    assert _reseal_client_auth(c, auth, lambda pt: None) == auth  # the re-seal is exact
    out = s.receive(bad)
    assert out.frames == [b"QZ\x01\x05\x02"] and not s.established and s.pending is None


def test_unknown_client_rejected() -> None:
    c = Client(mode=HYBRID, server_public_key=SERVER_PK, client_alg=1, client_key=b"\x99" * 32)
    s = Server(mode=HYBRID, server_key=SERVER_SEED, clients=ALLOW)
    auth = _one(c.receive(_one(s.receive(c.hello()))))
    assert s.receive(auth).frames == [b"QZ\x01\x05\x02"]
    assert not s.established


def test_all_zero_x25519_share_rejected() -> None:
    c, s = _pair(HYBRID, ALG_ML_DSA_44)
    hello = c.hello()
    bad = hello[:1239] + bytes(32) + hello[1271:]
    assert s.receive(bad).frames == [b"QZ\x01\x05\x02"] and s.pending is None


def test_established_session_survives_new_hello_and_failed_auth() -> None:
    c, s = _established(HYBRID)
    ss = s.session
    c2, _ = _pair(HYBRID, ALG_ML_DSA_44)
    out = s.receive(c2.hello())
    assert out.events == ["SERVER_HELLO"] and s.session is ss and s.established
    assert s.receive(b"QZ\x01\x04" + bytes(4708)).events == ["ERROR"]
    cs = c.session
    assert cs is not None
    assert _deliver(cs.send_data([b"still"]), s).messages == [b"still"]


# --- cookies ------------------------------------------------------------------------
def test_cookie_rules() -> None:
    c, s = _pair(PQ_ONLY, ALG_ML_DSA_44, cookie=True)
    hello = c.hello()
    retry = _one(s.receive(hello, 1000.0))
    assert len(retry) == 28 and retry[:4] == b"QZ\x01\x02" and s.pending is None
    cookie = retry[4:]
    assert cookie == schedule.make_cookie(s.cookie_key, 1000, "192.0.2.7", b"\x00\x80\x00\x00\x29", hello[:-1])
    with_cookie = _one(c.receive(retry))
    assert with_cookie == hello[:-1] + b"\x18" + cookie
    # expired (61 s later)
    assert s.receive(with_cookie, 1061.0).events == ["ERROR"]
    # another routing id / peer
    other = Server(
        mode=PQ_ONLY,
        server_key=SERVER_SEED,
        clients=ALLOW,
        cookie_policy="always",
        cookie_key=s.cookie_key,
        peer="192.0.2.8",
        routing_id=b"\x00\x80\x00\x00\x29",
    )
    assert other.receive(with_cookie, 1000.0).events == ["ERROR"]
    # changed body
    changed = with_cookie[:7] + bytes([with_cookie[7] ^ 1]) + with_cookie[8:]
    assert s.receive(changed, 1000.0).events == ["ERROR"]
    # one rotation: still valid
    s.rotate_cookie_key()
    assert s.receive(with_cookie, 1060.0).events == ["SERVER_HELLO"]
    # used before
    assert s.receive(with_cookie, 1060.0).events == ["ERROR"]
    # two rotations old
    retry2 = _one(s.receive(hello, 2000.0))
    hello2 = hello[:-1] + b"\x18" + retry2[4:]
    s.rotate_cookie_key()
    s.rotate_cookie_key()
    assert s.receive(hello2, 2000.0).events == ["ERROR"]
    # a second HELLO_RETRY fails the client
    out = c.receive(retry2)
    assert out.failed == 2 and out.frames == [b"QZ\x01\x05\x02"]


def test_fixed_inputs_reproduce_client_hello() -> None:
    kw = {
        "mode": HYBRID,
        "server_public_key": SERVER_PK,
        "client_alg": 3,
        "client_key": CLIENT_SEEDS[3],
        "client_random": b"\x01" * 32,
        "mlkem_seed": b"\x02" * 64,
        "x25519_private": b"\x03" * 32,
    }
    h1, h2 = Client(**kw).hello(), Client(**kw).hello()  # type: ignore[arg-type]
    assert h1 == h2
    assert h1[7:39] == b"\x01" * 32
    ek = MLKEM768PrivateKey.from_seed_bytes(b"\x02" * 64).public_key().public_bytes_raw()
    assert h1[55:1239] == ek
    x = X25519PrivateKey.from_private_bytes(b"\x03" * 32).public_key().public_bytes_raw()
    assert h1[1239:1271] == x and h1[1271:] == b"\x00"


def test_records_never_delivered_before_ready() -> None:
    c, s = _pair(PQ_ONLY, ALG_ML_DSA_65)
    auth = _one(c.receive(_one(s.receive(c.hello()))))
    ready = _one(s.receive(auth))
    ss = s.session
    assert ss is not None
    data = ss.send_data([b"early"])[0]
    # DATA (seq 1) before READY (seq 0): the client fails and sends nothing.
    out = c.receive(data)
    assert out.failed == 2 and out.messages == [] and out.frames == []
    assert c.state == "FAILED"
    assert c.receive(ready).events == ["DROPPED"]
    assert data[0] == R_DATA


def test_client_state_follows_session() -> None:
    c, s = _established()
    cs = c.session
    assert cs is not None and c.state == "ESTABLISHED"
    _deliver(cs.close(), s)
    assert c.state == "CLOSED" and s.state == "CLOSED"


def test_independent_of_the_real_implementation() -> None:
    """QZMQ.md §10.3: the second implementation imports nothing from qfix."""
    import ast
    from pathlib import Path

    pkg = Path(__file__).parent / "qzmq_independent"
    files = sorted(pkg.glob("*.py"))
    assert len(files) >= 4
    for f in files:
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""] if node.level == 0 else []
            else:
                continue
            assert not any(n == "qfix" or n.startswith("qfix.") for n in names), f
