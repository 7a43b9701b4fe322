"""Cookies, hello rate limits, pending caps, nets and known nets."""

from __future__ import annotations

import pytest
from qzmq_testlib import PEER, RID, Link, config, establish, fresh_rid, make_client, make_server

from qfix.crypto import primitives as prim
from qfix.qzmq import ClientState, ServerProtocol, net_of
from qfix.qzmq import _schedule as ks


class _Calls:
    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.n = 0
        for name in (
            "mlkem_encapsulate",
            "mlkem_load_ek",
            "mlkem_decapsulate",
            "x25519_generate",
            "x25519_exchange",
            "mldsa_sign",
            "mldsa_verify",
        ):
            orig = getattr(prim, name)

            def wrapped(*a, _orig=orig, **k):  # type: ignore[no-untyped-def]
                self.n += 1
                return _orig(*a, **k)

            monkeypatch.setattr(prim, name, wrapped)


def _hello(rid: bytes = RID, **cfg: object) -> tuple[ServerProtocol, bytes, object]:
    server = make_server(config(cookie_policy="always", **cfg))
    client = make_client(config(**cfg))
    client.connect(0)
    (hello,) = client.data_to_send()
    return server, hello, client


def _retry(server: ServerProtocol, hello: bytes, rid: bytes = RID, peer: str = PEER, now: float = 0) -> bytes:
    server.receive(rid, hello, now, peer)
    ((r, frame),) = server.data_to_send()
    assert r == rid and frame[:4] == b"QZ\x01\x02" and len(frame) == 28
    return hello[:-1] + b"\x18" + frame[4:]


def test_always_no_state_no_asymmetric_work(monkeypatch: pytest.MonkeyPatch) -> None:
    server, hello, _ = _hello()
    calls = _Calls(monkeypatch)
    for _ in range(50):
        _retry(server, hello, rid=fresh_rid())
    assert calls.n == 0 and server.pending_count == 0 and server.counters.hello_retry == 50
    assert server.counters.hello_rate_limited == 0


def test_full_cookie_round_establishes() -> None:
    server = make_server(config(cookie_policy="always"))
    link = Link(server, make_client())
    link.client.connect(0)
    link.pump()
    assert link.client.state is ClientState.ESTABLISHED
    assert [len(f) for d, f in link.wire][:3] == [1272, 28, 1296]


@pytest.mark.parametrize("case", ["peer", "rid", "body", "expired", "old_key", "reused", "mac"])
def test_cookie_rejections(case: str) -> None:
    server, hello, _ = _hello()
    with_cookie = _retry(server, hello, now=0)
    rid, peer, now = RID, PEER, 1.0
    frame = with_cookie
    if case == "peer":
        peer = "192.0.2.8"
    elif case == "rid":
        rid = b"other"
    elif case == "body":
        frame = with_cookie[:40] + bytes([with_cookie[40] ^ 1]) + with_cookie[41:]
    elif case == "expired":
        now = 61.0
    elif case == "old_key":
        # a correctly made, fresh cookie under the key of two rotations ago
        k0 = server._guard._k_cur
        server._guard._rotate(120.0)
        server._guard._rotate(240.0)
        now = 240.0
        body = hello[:-1]
        cur = ks.cookie_mac(server._guard._k_cur, 240, PEER.encode(), RID, body)
        server.receive(RID, body + b"\x18" + cur, now, PEER)  # control: current key works
        ((_, sh),) = server.data_to_send()
        assert sh[3] == 3
        frame = body + b"\x18" + ks.cookie_mac(k0, 240, PEER.encode(), RID, body)
    elif case == "reused":
        server.receive(rid, frame, now, peer)
        ((_, sh),) = server.data_to_send()
        assert sh[3] == 3
    elif case == "mac":
        frame = with_cookie[:-1] + bytes([with_cookie[-1] ^ 1])
    server.receive(rid, frame, now, peer)
    assert server.data_to_send() == [(rid, b"QZ\x01\x05\x02")]


def test_cookie_valid_under_previous_key_and_at_60s() -> None:
    server, hello, _ = _hello()
    frame = _retry(server, hello, now=100.0)
    server._guard._rotate(125.0)  # one rotation: previous key still accepted
    server.receive(RID, frame, 160.0, PEER)
    ((_, sh),) = server.data_to_send()
    assert sh[3] == 3


def test_under_load_switches_at_threshold() -> None:
    server = make_server(config(cookie_policy="under-load", cookie_load_threshold=3, max_pending_per_address=100))
    replies = []
    for i in range(5):
        c = make_client()
        c.connect(0)
        (h,) = c.data_to_send()
        server.receive(fresh_rid(), h, 0, f"10.0.0.{i}")
        ((_, f),) = server.data_to_send()
        replies.append(f[3])
    assert replies == [3, 3, 3, 2, 2] and server.pending_count == 3


def test_net_of() -> None:
    assert net_of("192.0.2.7") == "192.0.2.7"
    assert net_of("::ffff:192.0.2.7") == "192.0.2.7"
    assert net_of("2001:db8:1:2:3:4:5:6") == net_of("2001:db8:1:2:ffff::1") == "2001:db8:1:2::/64"
    assert net_of("2001:db8:1:3::1") != net_of("2001:db8:1:2::1")
    assert net_of("") == ""


def _flood(server: ServerProtocol, n: int, peer_of, now: float = 0.0) -> list[int]:  # type: ignore[no-untyped-def]
    out = []
    for i in range(n):
        c = make_client()
        c.connect(now)
        (h,) = c.data_to_send()
        server.receive(fresh_rid(), h, now, peer_of(i))
        ((_, f),) = server.data_to_send()
        out.append(f[3])
    return out


def test_pending_cap_per_net_ipv6_64() -> None:
    server = make_server(config(max_pending_per_address=2))
    res = _flood(server, 4, lambda i: f"2001:db8:0:7::{i + 1}")
    assert res == [3, 3, 5, 5] and server.counters.hello_rate_limited == 2
    assert _flood(server, 1, lambda i: "2001:db8:0:8::1") == [3]


def test_net_bucket_and_global_bucket() -> None:
    server = make_server(
        config(hello_rate_per_address=(1.0, 3.0), hello_rate_total=(1.0, 5.0), max_pending_per_address=100)
    )
    assert _flood(server, 4, lambda i: "10.1.1.1") == [3, 3, 3, 5]  # net burst 3
    assert _flood(server, 3, lambda i: f"10.2.0.{i}") == [3, 3, 5]  # global burst 5
    assert _flood(server, 1, lambda i: "10.3.0.1", now=1.0) == [3]  # refilled one token


def test_no_token_on_failed_cheap_check() -> None:
    server = make_server(config(hello_rate_per_address=(0.001, 1.0)))
    c = make_client()
    c.connect(0)
    (h,) = c.data_to_send()
    bad = h[:39] + bytes(16) + h[55:]  # unknown server kid
    for _ in range(5):
        server.receive(RID, bad, 0, PEER)
    assert server.counters.hello_failed == 5 and server.counters.hello_rate_limited == 0
    server.data_to_send()
    server.receive(RID, h, 0, PEER)
    ((_, sh),) = server.data_to_send()
    assert sh[3] == 3


def test_known_net_served_while_global_bucket_empty() -> None:
    cfg = config(hello_rate_total=(0.001, 2.0), hello_rate_known=(0.001, 2.0), max_pending_per_address=100)
    server = make_server(cfg)
    establish(cfg=cfg, server=server, peer="198.51.100.9", rid=fresh_rid())  # 1 global token
    assert _flood(server, 2, lambda i: f"203.0.113.{i}") == [3, 5]  # global bucket now empty
    # the client's net is known: served from the reserved bucket
    link2, _ = establish(cfg=cfg, server=server, peer="198.51.100.9", rid=fresh_rid())
    assert link2.client.state is ClientState.ESTABLISHED
    # a stranger is still refused
    assert _flood(server, 1, lambda i: "203.0.113.50") == [5]
    # once the kid leaves the allow-list its nets are forgotten
    from qfix.crypto import AllowList

    server.set_allow_list(AllowList([]))
    assert _flood(server, 1, lambda i: "198.51.100.9") == [5]
