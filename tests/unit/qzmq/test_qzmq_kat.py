"""Key-schedule known answers: Appendix A and two recorded full handshakes.

Every value is checked three ways: against the JSON vector, against qfix.qzmq's
key schedule, and against an independent implementation written here with hashlib
and hmac only (HKDF-Expand included), so a shared mistake in qfix.crypto cannot hide.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import struct
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import mldsa, mlkem, x25519
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from qfix.crypto import SignatureAlg, SigningKey, VerifyKey
from qfix.crypto import primitives as prim
from qfix.qzmq import ClientConnection, Config, Mode
from qfix.qzmq import _schedule as ks

VECTORS = Path(__file__).resolve().parents[2] / "vectors" / "qzmq"

# --- independent implementation (hashlib / hmac only) ------------------------------------


def H(b: bytes) -> bytes:
    return hashlib.sha384(b).digest()


def HM(k: bytes, m: bytes) -> bytes:
    return hmac.new(k, m, hashlib.sha384).digest()


def expand(prk: bytes, info: bytes, n: int) -> bytes:
    out, t, i = b"", b"", 1
    while len(out) < n:
        t = HM(prk, t + info + bytes([i]))
        out += t
        i += 1
    return out[:n]


def EL(s: bytes, label: bytes, ctx: bytes, n: int) -> bytes:
    lab = b"qzmq1 " + label
    return expand(s, struct.pack(">H", n) + bytes([len(lab)]) + lab + bytes([len(ctx)]) + ctx, n)


def D(s: bytes, label: bytes, th: bytes) -> bytes:
    return EL(s, label, th, 48)


def item(tag: int, data: bytes) -> bytes:
    return bytes([tag]) + struct.pack(">I", len(data)) + data


def TH(*items: tuple[int, bytes]) -> bytes:
    return H(b"qzmq1 transcript" + b"".join(item(t, d) for t, d in items))


def exporter(exp: bytes, label: bytes, ctx: bytes, n: int) -> bytes:
    return EL(D(exp, label, H(b"")), b"exporter", H(ctx), n)


# --- Appendix A -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def appendix() -> dict[str, dict[str, object]]:
    return json.loads((VECTORS / "keyschedule_appendix_a.json").read_text())  # type: ignore[no-any-return]


def test_appendix_a(appendix: dict[str, dict[str, object]]) -> None:
    inp, exp_ = appendix["inputs"], appendix["expected"]
    e = {k: bytes.fromhex(str(v)) for k, v in exp_.items()}
    ikm = bytes.fromhex(str(inp["ikm"]))
    th = H(b"abc")
    salt_h = H(b"qzmq1 salt" + b"\x01" + b"\x00\x01")
    salt_p = H(b"qzmq1 salt" + b"\x02" + b"\x00\x01")
    hs = HM(salt_h, ikm)
    c_hs, s_hs = D(hs, b"c hs traffic", th), D(hs, b"s hs traffic", th)
    ms = HM(D(hs, b"derived", H(b"")), bytes(48))
    exp = D(ms, b"exp master", th)
    chain = D(ms, b"rekey chain", th)
    iv = EL(c_hs, b"iv", b"", 12)
    nonce = (int.from_bytes(iv, "big") ^ 0x0102030405060708).to_bytes(12, "big")
    init_pt, resp_pt = bytes.fromhex(str(inp["rekey_init_pt"])), bytes.fromhex(str(inp["rekey_resp_pt"]))
    th_r = H(b"qzmq1 rekey" + th + item(0x30, init_pt) + item(0x31, resp_pt))
    ms_r = HM(chain, bytes.fromhex(str(inp["rekey_ikm"])))
    peer, rid = b"192.0.2.7", bytes.fromhex("0080000029")
    cmsg = (
        b"qzmq1 cookie"
        + struct.pack(">I", 4096)
        + struct.pack(">H", len(peer))
        + peer
        + struct.pack(">H", len(rid))
        + rid
        + H(b"abc")
    )
    independent = {
        "salt0_hybrid": salt_h,
        "salt0_pq_only": salt_p,
        "hs": hs,
        "th": th,
        "c_hs": c_hs,
        "c_hs_key": EL(c_hs, b"key", b"", 32),
        "c_hs_iv": iv,
        "nonce_seq": nonce,
        "c_hs_traffic_upd": EL(c_hs, b"traffic upd", b"", 48),
        "ms": ms,
        "exp": exp,
        "channel_binding": exporter(exp, b"EXPORTER-Channel-Binding", b"", 32),
        "s_hs": s_hs,
        "s_finished": HM(EL(s_hs, b"finished", b"", 48), th),
        "th_abc_empty": TH((1, b"abc"), (3, b"")),
        "exporter_test": exporter(exp, b"EXPORTER-qfix-test", b"order-entry", 32),
        "chain": chain,
        "rekey_th": th_r,
        "rekey_c_ap": D(ms_r, b"c ap traffic", th_r),
        "rekey_s_ap": D(ms_r, b"s ap traffic", th_r),
        "rekey_chain": D(ms_r, b"rekey chain", th_r),
        "cookie": struct.pack(">I", 4096) + HM(bytes(range(32)), cmsg)[:20],
    }
    assert independent == e
    # and qfix's own schedule
    r = ks.rekey(chain, th, init_pt, resp_pt, bytes.fromhex(str(inp["rekey_ikm"])))
    tr = ks.Transcript()
    tr.add(1, b"abc")
    ours = {
        "salt0_hybrid": ks.salt0(Mode.HYBRID),
        "salt0_pq_only": ks.salt0(Mode.PQ_ONLY),
        "hs": ks.handshake_secret(Mode.HYBRID, ikm),
        "th": prim.sha384(b"abc"),
        "c_hs": ks.derive(e["hs"], b"c hs traffic", th),
        "c_hs_key": ks.traffic_keys(e["c_hs"])[0],
        "c_hs_iv": ks.traffic_keys(e["c_hs"])[1],
        "nonce_seq": (int.from_bytes(e["c_hs_iv"], "big") ^ 0x0102030405060708).to_bytes(12, "big"),
        "c_hs_traffic_upd": ks.traffic_update(e["c_hs"]),
        "ms": ks.master_secret(e["hs"]),
        "exp": ks.derive(e["ms"], b"exp master", th),
        "channel_binding": ks.exporter(e["exp"], b"EXPORTER-Channel-Binding", b"", 32),
        "s_hs": ks.derive(e["hs"], b"s hs traffic", th),
        "s_finished": ks.finished(e["s_hs"], th),
        "th_abc_empty": tr.add(3, b""),
        "exporter_test": ks.exporter(e["exp"], b"EXPORTER-qfix-test", b"order-entry", 32),
        "chain": ks.derive(e["ms"], b"rekey chain", th),
        "rekey_th": r[3],
        "rekey_c_ap": r[0],
        "rekey_s_ap": r[1],
        "rekey_chain": r[2],
        "cookie": ks.cookie_mac(bytes(range(32)), 4096, peer, rid, b"abc"),
    }
    assert ours == e


def test_exporter_bounds() -> None:
    exp = bytes(48)
    assert len(ks.exporter(exp, b"x" * 249, b"", 12240)) == 12240
    for label, n in ((b"", 32), (b"x" * 250, 32), (b"x", 0), (b"x", 12241)):
        with pytest.raises(ValueError):
            ks.exporter(exp, label, b"", n)


# --- recorded full handshakes -------------------------------------------------------------


def _handshakes() -> list[dict[str, object]]:
    doc = json.loads((VECTORS / "keyschedule_handshake.json").read_text())
    return doc["handshakes"]  # type: ignore[no-any-return]


@pytest.mark.parametrize("vec", _handshakes(), ids=lambda v: f"mode{v['mode']}")
def test_recorded_handshake(vec: dict[str, object]) -> None:
    hx = {k: bytes.fromhex(v) for k, v in vec.items() if isinstance(v, str)}
    mode = Mode(int(vec["mode"]))  # type: ignore[call-overload]
    hybrid = mode is Mode.HYBRID
    hello, sh, ca, ready = hx["client_hello"], hx["server_hello"], hx["client_auth"], hx["ready"]
    assert len(hello) == (1272 if hybrid else 1240)
    assert len(sh) == (4532 if hybrid else 4500)
    assert len(ca) == 4712 and len(ready) == 26
    assert len(hello) + len(sh) + len(ca) + len(ready) == (10542 if hybrid else 10478)
    # key material from the fixed seeds, with cryptography used directly
    dk = mlkem.MLKEM768PrivateKey.from_seed_bytes(hx["mlkem_seed"])
    assert hello[55:1239] == dk.public_key().public_bytes_raw()
    spk = mldsa.MLDSA65PrivateKey.from_seed_bytes(hx["server_seed"]).public_key()
    cpk = mldsa.MLDSA44PrivateKey.from_seed_bytes(hx["client_seed"]).public_key()
    c = 1159 if hybrid else 1127
    ikm = dk.decapsulate(sh[39:1127])
    if hybrid:
        xk = x25519.X25519PrivateKey.from_private_bytes(hx["x25519_private"])
        assert hello[1239:1271] == xk.public_key().public_bytes_raw()
        ikm += xk.exchange(x25519.X25519PublicKey.from_public_bytes(sh[1127:1159]))
    hs = HM(H(b"qzmq1 salt" + bytes([mode]) + b"\x00\x01"), ikm)
    sh_clear = sh[:c]
    items: list[tuple[int, bytes]] = [(1, hello), (3, sh_clear)]
    th_hs = TH(*items)
    c_hs, s_hs = D(hs, b"c hs traffic", th_hs), D(hs, b"s hs traffic", th_hs)
    inner = AESGCM(EL(s_hs, b"key", b"", 32)).decrypt(EL(s_hs, b"iv", b"", 12), sh[c:], sh_clear)
    sig_s, fin_s = inner[:3309], inner[3309:]
    items.append((0x10, b"\x02" + H(spk.public_bytes_raw())))
    spk.verify(sig_s, TH(*items), b"qzmq1 server auth")
    items.append((0x11, sig_s))
    assert hmac.compare_digest(HM(EL(s_hs, b"finished", b"", 48), TH(*items)), fin_s)
    items.append((0x12, fin_s))
    ca_pt = AESGCM(EL(c_hs, b"key", b"", 32)).decrypt(EL(c_hs, b"iv", b"", 12), ca[4:], ca[:4])
    assert ca_pt[0] == 1 and ca_pt[1:17] == H(cpk.public_bytes_raw())[:16]
    sig_c, fin_c, pad = ca_pt[17:2437], ca_pt[2437:2485], ca_pt[2485:]
    assert pad == bytes(2207)
    items.append((0x20, b"\x01" + H(cpk.public_bytes_raw())))
    cpk.verify(sig_c, TH(*items), b"qzmq1 client auth")
    items.append((0x21, sig_c))
    assert HM(EL(c_hs, b"finished", b"", 48), TH(*items)) == fin_c
    items.append((0x22, fin_c))
    th_f = TH(*items)
    ms = HM(D(hs, b"derived", H(b"")), bytes(48))
    c_ap, s_ap = D(ms, b"c ap traffic", th_f), D(ms, b"s ap traffic", th_f)
    exp = D(ms, b"exp master", th_f)
    expected = {k: bytes.fromhex(v) for k, v in vec["expected"].items()}  # type: ignore[attr-defined]
    assert expected == {
        "c_ap": c_ap,
        "s_ap": s_ap,
        "channel_binding": exporter(exp, b"EXPORTER-Channel-Binding", b"", 32),
    }
    # READY: s_ap epoch 0 seq 0, empty
    assert ready[:10] == b"\x11\x00" + bytes(8)
    assert AESGCM(EL(s_ap, b"key", b"", 32)).decrypt(EL(s_ap, b"iv", b"", 12), ready[10:], ready[:10]) == b""
    data = hx["first_data_fixed"]
    assert data[:10] == b"\x16\x00" + bytes(8)
    assert (
        AESGCM(EL(c_ap, b"key", b"", 32)).decrypt(EL(c_ap, b"iv", b"", 12), data[10:], data[:10])
        == hx["first_data_plaintext"]
    )

    # qfix's client, from the same fixed inputs, sends the same hello and accepts the
    # recorded SERVER_HELLO (its own CLIENT_AUTH differs: ML-DSA signing is hedged)
    eph = (prim.mlkem_from_seed(hx["mlkem_seed"]), prim.x25519_from_bytes(hx["x25519_private"]) if hybrid else None)
    client = ClientConnection(
        SigningKey.from_seed(SignatureAlg.ML_DSA_44, hx["client_seed"]),
        VerifyKey.from_public_bytes(SignatureAlg.ML_DSA_65, spk.public_bytes_raw()),
        Config(mode=mode),
        rng=lambda n: b"\xc1" * n,
        ephemeral=eph,
    )
    client.connect(0.0)
    assert client.data_to_send() == [hello]
    assert client.receive(sh, 0.0) == []
    (ca2,) = client.data_to_send()
    pt2 = AESGCM(EL(c_hs, b"key", b"", 32)).decrypt(EL(c_hs, b"iv", b"", 12), ca2[4:], ca2[:4])
    assert pt2[:17] == ca_pt[:17] and pt2[17:2437] != sig_c  # hedged: a fresh signature
