"""Record layer: sequencing, failed records, KEY_UPDATE, full re-key, timers, CLOSE."""

from __future__ import annotations

import itertools

import pytest
from qzmq_testlib import RID, Link, config, establish

from qfix.crypto import primitives as prim
from qfix.qzmq import Closed, CloseReason, Messages, Mode
from qfix.qzmq._constants import MAX_SEQ, RECV_BLOCK_LIMIT


def _records(link: Link, n: int, size: int = 60) -> list[bytes]:
    for i in range(n):
        link.client.send_fixed(bytes([i % 256]) * size)
    return link.client.data_to_send()


def test_duplicates_dropped_and_counted() -> None:
    link, conn = establish()
    r0, r1 = _records(link, 2)
    srv = link.server
    assert len(srv.receive(RID, r0, 0)) == 1
    assert srv.receive(RID, r0, 0) == []
    assert len(srv.receive(RID, r1, 0)) == 1
    assert srv.receive(RID, r0, 0) == [] and srv.receive(RID, r1, 0) == []
    s = srv.session(conn)
    assert s.counters.duplicates == 3 and s.recv_next == 2


def test_gap_is_fatal_and_nothing_after_is_delivered() -> None:
    link, conn = establish()
    r0, r1, r2 = _records(link, 3)
    srv = link.server
    assert len(srv.receive(RID, r0, 0)) == 1
    assert srv.receive(RID, r2, 0) == [Closed(CloseReason.PROTOCOL_ERROR, False, conn)]
    ((_, close),) = srv.data_to_send()
    assert srv.receive(RID, r1, 0) == [] and srv.session_count == 0
    assert link.client.receive(close, 0) == [Closed(CloseReason.PROTOCOL_ERROR, True, 0)]


def test_swapped_records_fatal() -> None:
    link, conn = establish()
    _r0, r1 = _records(link, 2)
    assert link.server.receive(RID, r1, 0) == [Closed(CloseReason.PROTOCOL_ERROR, False, conn)]


def test_junk_truncated_old_epoch_dropped_then_threshold() -> None:
    link, conn = establish(cfg=config(max_bad_records=5))
    srv = link.server
    (r0,) = _records(link, 1)
    s = srv.session(conn)
    junk = [b"\x16", r0[:25], r0[:-1], b"\x99" + r0[1:], r0[:1] + b"\x07" + r0[2:]]
    for j in junk:
        assert srv.receive(RID, j, 1.0) == []
    assert s.recv_next == 0 and s.counters.failed_records == 5
    assert len(srv.receive(RID, r0, 1.0)) == 1  # still alive, record accepted
    (r1,) = _records(link, 1)
    assert srv.receive(RID, r1[:-1], 2.0) == [Closed(CloseReason.PROTOCOL_ERROR, False, conn)]


def test_failed_record_window_resets_after_60s() -> None:
    link, _conn = establish(cfg=config(max_bad_records=2))
    srv = link.server
    for t in (0.0, 1.0, 61.0, 62.0, 122.0):
        assert srv.receive(RID, b"\x16junk" + bytes(30), t) == []
    assert srv.session_count == 1
    assert srv.receive(RID, b"\x16junk" + bytes(30), 123.0) == []
    assert srv.receive(RID, b"\x16junk" + bytes(30), 124.0)[0].reason is CloseReason.PROTOCOL_ERROR  # type: ignore[union-attr]


def test_bad_frame_count_is_a_failed_record() -> None:
    link, conn = establish(cfg=config(max_bad_records=1))
    assert link.server.receive_bad_frame_count(RID, 0) == []
    assert link.server.receive_bad_frame_count(b"other", 0) == []
    assert link.server.counters.dropped_frames == 1
    assert link.server.receive_bad_frame_count(RID, 0)[0] == Closed(CloseReason.PROTOCOL_ERROR, False, conn)


def test_authenticated_only_after_received_close() -> None:
    link, conn = establish()
    assert link.client.close() == [Closed(CloseReason.NORMAL, False, 0)]
    se, _ = link.pump()
    assert se == [Closed(CloseReason.NORMAL, True, conn)]
    assert link.server.data_to_send() == []  # no reply to CLOSE
    link2, _ = establish()
    assert link2.client.abort() == [Closed(CloseReason.PROTOCOL_ERROR, False, 0)]
    assert link2.client.data_to_send() == []


def test_unknown_close_reason_reads_as_protocol_error() -> None:
    link, conn = establish()
    sess = link.server.session(conn)
    sess._seal(0x17, b"\x09")  # a CLOSE with an unknown reason byte
    sess.closed = True
    link.server.data_to_send()
    for f in sess.outbox:
        assert link.client.receive(f, 0) == [Closed(CloseReason.PROTOCOL_ERROR, True, 0)]


@pytest.mark.parametrize(
    ("rtype", "pt"),
    [
        (0x11, b""),
        (0x12, b"x"),
        (0x15, b""),
        (0x14, b"\x00" * 1120),
        (0x17, b""),
        (0x17, b"\x00\x00"),
        (0x16, b"x" * 59),
        (0x10, b"\x00\x00"),
        (0x10, b"\x00\x05ab"),
        (0x10, b""),
        (0x13, b"x"),
    ],
)
def test_misplaced_type_or_bad_length_fatal(rtype: int, pt: bytes) -> None:
    """An authentic record with a type not allowed now or a bad plaintext length."""
    link, conn = establish()
    sess = link.client.session
    assert sess is not None
    sess._seal(rtype, pt)
    (rec,) = link.client.data_to_send()
    events = link.server.receive(RID, rec, 0)
    if rtype in (0x11, 0x14):  # READY, REKEY_RESP: not client->server types: failed record
        assert events == [] and link.server.session(conn).counters.failed_records == 1
    else:
        assert events == [Closed(CloseReason.PROTOCOL_ERROR, False, conn)]


def test_send_seq_exhaustion_closes() -> None:
    link, _conn = establish()
    sess = link.client.session
    assert sess is not None
    sess.send_seq = MAX_SEQ - 1
    assert link.client.send_fixed(b"x" * 60) == [Closed(CloseReason.USAGE_LIMIT, False, 0)]


def test_receiver_usage_limit() -> None:
    link, conn = establish()
    link.server.session(conn).recv.blocks = RECV_BLOCK_LIMIT
    (r,) = _records(link, 1)
    assert link.server.receive(RID, r, 0) == [Closed(CloseReason.USAGE_LIMIT, False, conn)]


# --- key rotation -------------------------------------------------------------------------


class _NonceLog:
    """Wrap AES-GCM to record every (key, nonce) pair sealed in a test."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.seen: set[tuple[bytes, bytes]] = set()
        self.dupes = 0
        log = self
        base = prim.Aes256Gcm

        class Logged(base):  # type: ignore[valid-type, misc]
            __slots__ = ("_k",)

            def __init__(self, key: bytes) -> None:
                super().__init__(key)
                self._k = key

            def encrypt_into(self, nonce, data, aad, out):  # type: ignore[no-untyped-def]
                pair = (self._k, bytes(nonce))
                log.dupes += pair in log.seen
                log.seen.add(pair)
                return super().encrypt_into(nonce, data, aad, out)

        monkeypatch.setattr(prim, "Aes256Gcm", Logged)


@pytest.mark.parametrize("mode", [Mode.HYBRID, Mode.PQ_ONLY])
def test_rekey_under_load_both_kinds(mode: Mode, monkeypatch: pytest.MonkeyPatch) -> None:
    nonces = _NonceLog(monkeypatch)
    cfg = config(mode=mode, rekey_after_records=3, rekey_after_blocks=40)
    link, conn = establish(cfg=cfg)
    sent_c, sent_s, got_c, got_s = [], [], [], []
    counter = itertools.count()
    t = 0.0
    for step in range(60):
        t += 1.0
        link.now = t
        for _ in range(step % 4 + 1):
            m = next(counter).to_bytes(4, "big") * 15
            link.client.send_fixed(m)
            sent_c.append(m)
            m2 = next(counter).to_bytes(4, "big") * 30
            link.server.send_fixed(conn, m2)
            sent_s.append(m2)
        if step % 12 == 11:
            link.client.request_rekey(t)  # full re-key interleaved with KEY_UPDATEs
        # deliver only part of the traffic each step so re-keys cross data in flight
        se, ce = link.pump(rounds=1)
        got_s += [f for e in se if isinstance(e, Messages) for f in e.frames]
        got_c += [f for e in ce if isinstance(e, Messages) for f in e.frames]
    se, ce = link.pump()
    got_s += [f for e in se if isinstance(e, Messages) for f in e.frames]
    got_c += [f for e in ce if isinstance(e, Messages) for f in e.frames]
    assert got_s == sent_c and got_c == sent_s
    cs, ss = link.client.session, link.server.session(conn)
    assert cs is not None
    assert cs.counters.key_updates_sent > 10 and ss.counters.key_updates_sent > 10
    assert cs.counters.rekeys >= 4 and ss.counters.rekeys >= 4
    assert cs.send.epoch == ss.recv.epoch and cs.recv.epoch == ss.send.epoch
    assert nonces.dupes == 0 and len(nonces.seen) > 200
    assert link.client.export(b"EXPORTER-a", b"", 16) == link.server.export(conn, b"EXPORTER-a", b"", 16)


def test_key_update_at_rekey_resp_and_done() -> None:
    """A send limit reached exactly when REKEY_RESP / REKEY_DONE is sealed."""
    cfg = config(rekey_after_records=2)
    link, conn = establish(cfg=cfg)  # the server sealed READY: 1 record in epoch 0
    link.server.send_fixed(conn, b"x" * 60)  # 2 records: limit reached
    link.client.send_fixed(b"y" * 60)
    link.client.send_fixed(b"z" * 60)  # client: 2 records
    link.now = 20.0
    link.client.request_rekey(20.0)  # REKEY_INIT preceded by KEY_UPDATE
    se, ce = link.pump()
    cs, ss = link.client.session, link.server.session(conn)
    assert cs is not None and not cs.rekey_pending and not ss.rekey_pending
    assert cs.counters.rekeys == ss.counters.rekeys == 1
    assert cs.send.epoch == ss.recv.epoch and cs.recv.epoch == ss.send.epoch
    link.client.send_fixed(b"after" * 12)
    link.server.send_fixed(conn, b"AFTER" * 12)
    se, ce = link.pump()
    assert se == [Messages((b"after" * 12,), True, conn)] and ce == [Messages((b"AFTER" * 12,), True, 0)]


def test_server_request_path_and_overdue_close() -> None:
    link, conn = establish(cfg=config(rekey_interval=100))
    ss = link.server.session(conn)
    assert link.server.next_deadline() == 100.0
    link.now = 100.0
    link.server.handle_timer(100.0)  # REKEY_INIT (request) sent
    assert link.server.next_deadline() == 160.0
    link.pump()
    assert ss.counters.rekeys == 1 and link.client.session.counters.rekeys == 1  # type: ignore[union-attr]
    assert ss.t_key == 100.0
    # now withhold the client's answer to the next request: overdue at t_key + 160
    link.server.handle_timer(200.0)
    ((_, req),) = link.server.data_to_send()
    assert link.client.receive(req, 200.0) == []
    link.client.data_to_send()  # the client's REKEY_INIT is lost with its connection
    assert link.server.handle_timer(259.0) == []
    assert link.server.handle_timer(260.0) == [Closed(CloseReason.REKEY_OVERDUE, False, conn)]
    ((_, close),) = link.server.data_to_send()
    assert link.client.receive(close, 260.0) == [Closed(CloseReason.REKEY_OVERDUE, True, 0)]


def test_client_timer_rekey_and_resp_timeout() -> None:
    link, _conn = establish(cfg=config(rekey_interval=50))
    assert link.client.next_deadline() == 50.0
    link.client.handle_timer(50.0)
    link.client.data_to_send()
    assert link.client.next_deadline() == 60.0
    assert link.client.handle_timer(60.0) == [Closed(CloseReason.PROTOCOL_ERROR, False, 0)]


def test_client_rekey_spacing_and_request_ignored_while_waiting() -> None:
    link, conn = establish()
    link.client.request_rekey(3.0)  # within 10 s of t_key: deferred
    assert link.client.data_to_send() == [] and link.client.next_deadline() == 10.0
    link.client.handle_timer(10.0)
    link.client.data_to_send()  # REKEY_INIT
    # a server request while WAIT_RESP is ignored
    sess = link.server.session(conn)
    sess._seal(0x13, b"")
    ((_, req),) = link.server.data_to_send() or [(RID, sess.outbox.pop())]
    assert link.client.receive(req, 11.0) == [] and link.client.data_to_send() == []
    # a second request less than 10 s after the previous one is fatal
    sess._seal(0x13, b"")
    req2 = sess.outbox.pop()
    assert link.client.receive(req2, 12.0) == [Closed(CloseReason.PROTOCOL_ERROR, False, 0)]


def test_server_rekey_rate_limit_and_second_init() -> None:
    link, conn = establish()
    cs = link.client.session
    assert cs is not None
    cs._start_rekey(1.0)  # bypass the client's own 10 s rule: REKEY_INIT 1 s after t_key
    (init,) = link.client.data_to_send()
    assert link.server.receive(RID, init, 1.0) == [Closed(CloseReason.PROTOCOL_ERROR, False, conn)]
    link, conn = establish()
    cs = link.client.session
    assert cs is not None
    cs._start_rekey(6.0)
    cs._start_rekey(6.0)  # a second REKEY_INIT while one is running
    i1, i2 = link.client.data_to_send()
    assert link.server.receive(RID, i1, 6.0) == []
    assert link.server.receive(RID, i2, 6.0) == [Closed(CloseReason.PROTOCOL_ERROR, False, conn)]


def test_rekey_bad_ek_fatal() -> None:
    link, conn = establish(cfg=config(mode=Mode.PQ_ONLY))
    cs = link.client.session
    assert cs is not None
    cs._seal(0x13, b"\xff" * 1184)
    (rec,) = link.client.data_to_send()
    assert link.server.receive(RID, rec, 30.0) == [Closed(CloseReason.PROTOCOL_ERROR, False, conn)]
