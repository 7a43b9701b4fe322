"""The compiled read and send of the record path (``qfix.server._serve``) on real sockets:
what it takes, what it hands back and where it stops, and what a refused send reports."""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Iterator

import numpy as np
import pytest
import zmq

from qfix import native_zmq
from qfix.server import _pass, _serve

pytestmark = pytest.mark.skipif(not native_zmq.AVAILABLE, reason="libzmq is not reachable from jitted code here")

_PEER_KEY = np.frombuffer(b"Peer-Address\0", np.uint8).copy()
_LEASE = 3  #: the lease row every slot here names (the read only copies it)


def test_routing_ids_are_found_by_their_keys() -> None:
    rng = np.random.default_rng(1)
    rids = list({bytes(rng.integers(0, 256, int(rng.integers(1, 8)), dtype=np.uint8)) for _ in range(500)})
    keys, slots = _serve.hash_table([_serve.routing_key(r) for r in rids])
    for i, rid in enumerate(rids):
        buf = np.frombuffer(rid.ljust(_serve.MAX_ROUTING_ID, b"\0"), np.uint8)
        assert _serve._find(keys, slots, buf, len(rid)) == i
    for rid in (b"\x01absent", b"eightbyt", b"\x00" * 3):
        buf = np.frombuffer(rid.ljust(_serve.MAX_ROUTING_ID, b"\0"), np.uint8)
        assert rid in rids or _serve._find(keys, slots, buf, len(rid)) == -1
    assert _serve.routing_key(b"eightbyt") == 0 and _serve.routing_key(b"") == 0


class _Reader:
    """A ROUTER on loopback TCP, peers by routing id, and the read's buffers."""

    def __init__(self, ctx: zmq.Context[zmq.Socket[bytes]], known: list[bytes]) -> None:
        self.router = ctx.socket(zmq.ROUTER)
        self.router.setsockopt(zmq.ROUTER_MANDATORY, 1)
        port = self.router.bind_to_random_port("tcp://127.0.0.1")
        self.endpoint = f"tcp://127.0.0.1:{port}"
        self.keys, self.key_slots = _serve.hash_table([_serve.routing_key(r) for r in known])
        self.slots = np.array([(100 + i, i, _LEASE) for i in range(len(known))], np.int64).reshape(-1, 3)
        self.limits = np.array([1_000, 64, 8, 0], np.int64)
        self.known_nets = np.zeros(0, np.int64)
        self.frames = np.zeros(4 * _serve.MAX_FRAME, np.uint8)
        self.table = np.zeros((64, _serve.FRAME_COLUMNS), np.int64)
        self.hand = np.zeros(4 * _serve.HAND_ROOM, np.uint8)
        self.hand_table = np.zeros((16, _serve.HAND_COLUMNS), np.int64)
        self.read_ = np.zeros(_serve.READ_FIELDS, np.int64)

    def read(self) -> list[int]:
        _serve.read_frames(
            self.router.underlying, np.zeros(8, np.int64), np.zeros(_serve.MAX_ROUTING_ID, np.uint8), _PEER_KEY,
            self.keys, self.key_slots, self.slots, self.limits, self.known_nets, 99, self.frames, self.table,
            self.hand, self.hand_table, self.read_,
        )  # fmt: skip
        return self.read_.tolist()

    def taken(self) -> list[tuple[bytes, int]]:
        """(frame, slot) of each frame the last read took."""
        out = []
        for row in self.table[: self.read_[_serve.READ_FRAMES]].tolist():
            at, size = row[_pass.FRAME_START], row[_pass.FRAME_BYTES]
            assert row[_pass.FRAME_RECV_TIME] == 99 and row[_pass.FRAME_LEASE] == _LEASE
            assert row[_pass.FRAME_SESSION] == row[_serve.FRAME_SLOT]
            out.append((self.frames[at : at + size].tobytes(), row[_serve.FRAME_SLOT]))
        return out

    def handed(self) -> list[tuple[int, bytes, bytes, int, str]]:
        out = []
        h = self.hand
        for kind, rid_at, rid_len, at, size, fd, peer_at, peer_len in self.hand_table[
            : self.read_[_serve.READ_HANDED]
        ].tolist():
            peer = h[peer_at : peer_at + peer_len].tobytes().decode()
            out.append((kind, h[rid_at : rid_at + rid_len].tobytes(), h[at : at + size].tobytes(), fd, peer))
        return out


@pytest.fixture
def ctx() -> Iterator[zmq.Context[zmq.Socket[bytes]]]:
    c: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    yield c
    c.destroy(linger=0)


def _dealer(ctx: zmq.Context[zmq.Socket[bytes]], endpoint: str, rid: bytes) -> zmq.Socket[bytes]:
    d = ctx.socket(zmq.DEALER)
    d.setsockopt(zmq.ROUTING_ID, rid)
    d.setsockopt(zmq.LINGER, 0)
    d.connect(endpoint)
    return d


def _arrived(sock: zmq.Socket[bytes], expected: int) -> None:
    """Wait until ``expected`` messages are queued at the ROUTER (TCP takes a moment)."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        time.sleep(0.05)
        if expected == 0 or sock.poll(0):
            time.sleep(0.05)
            return


def _record(n: int, fill: int) -> bytes:
    """A DATA_FIXED-shaped frame of n messages (the read never opens one)."""
    return bytes([0x16]) + bytes([fill]) * (n * 60 + 25)


def test_records_of_known_connections_are_taken_a_stranger_is_handed_back_and_an_operator_stops_the_read(
    ctx: zmq.Context[zmq.Socket[bytes]],
) -> None:
    reader = _Reader(ctx, [b"alice", b"bob", b"admin"])
    reader.slots[2, _serve.SLOT_SESSION] = _serve.SESSION_OTHERS  # an operator's connection
    alice, bob, eve, admin = (_dealer(ctx, reader.endpoint, r) for r in (b"alice", b"bob", b"eve", b"admin"))
    for sock, frame in (
        (alice, _record(1, 1)),
        (eve, b"\x16not a session"),
        (bob, _record(2, 2)),
        (admin, b"\x16halt"),
        (alice, _record(1, 3)),
    ):
        sock.send(frame)
        time.sleep(0.1)
    _arrived(reader.router, 5)
    read = reader.read()
    # a stranger's frame waits on no one's order: handed back, and reading goes on; an
    # operator's command takes effect in sequence: nothing after it is taken
    assert read[_serve.READ_STOP] == _serve.STOP_HANDED
    assert reader.taken() == [(_record(1, 1), 0), (_record(2, 2), 1)]
    assert read[_serve.READ_MESSAGES] == 3 and read[_serve.READ_BYTES] == len(_record(1, 1)) + len(_record(2, 2))
    assert reader.handed() == [
        (_serve.KIND_FRAME, b"eve", b"\x16not a session", -1, ""),
        (_serve.KIND_FRAME, b"admin", b"\x16halt", -1, ""),
    ]
    # what followed the operator's frame is still on the socket, for the next read
    read = reader.read()
    assert read[_serve.READ_STOP] == _serve.STOP_DRAINED and reader.taken() == [(_record(1, 3), 0)]
    assert reader.handed() == []


def test_handshake_frames_are_handed_back_with_their_transport_and_the_read_goes_on(
    ctx: zmq.Context[zmq.Socket[bytes]],
) -> None:
    reader = _Reader(ctx, [b"alice"])
    alice, stranger = _dealer(ctx, reader.endpoint, b"alice"), _dealer(ctx, reader.endpoint, b"new01")
    hello = b"QZ" + bytes(100)
    stranger.send(hello)
    time.sleep(0.1)
    alice.send(_record(1, 1))
    _arrived(reader.router, 2)
    read = reader.read()
    assert read[_serve.READ_STOP] == _serve.STOP_DRAINED
    assert reader.taken() == [(_record(1, 1), 0)]
    [(kind, rid, frame, fd, peer)] = reader.handed()
    assert (kind, rid, frame, peer) == (_serve.KIND_HANDSHAKE, b"new01", hello, "127.0.0.1")
    assert fd >= 0


def _dealer_from(ctx: zmq.Context[zmq.Socket[bytes]], endpoint: str, rid: bytes, source: str) -> zmq.Socket[bytes]:
    port = endpoint.rsplit(":", 1)[1]
    d = ctx.socket(zmq.DEALER)
    d.setsockopt(zmq.ROUTING_ID, rid)
    d.setsockopt(zmq.LINGER, 0)
    d.connect(f"tcp://{source}:0;127.0.0.1:{port}")
    return d


def test_while_shedding_a_strangers_hello_is_dropped_and_a_known_nets_is_handed_back(
    ctx: zmq.Context[zmq.Socket[bytes]],
) -> None:
    """The endpoint's rule (``_queue_handshake``): a CLIENT_HELLO (type 01, or any other
    version) from a net without a known client is dropped while handshakes are over
    their share; a known net's hello and every other handshake frame are handed back."""
    reader = _Reader(ctx, [b"alice"])
    alice = _dealer(ctx, reader.endpoint, b"alice")
    stranger = _dealer_from(ctx, reader.endpoint, b"eve01", "127.0.0.2")
    known = _dealer_from(ctx, reader.endpoint, b"bob01", "127.0.0.3")
    hello, other_version, auth = b"QZ\x01\x01" + bytes(60), b"QZ\x02\x03" + bytes(60), b"QZ\x01\x03" + bytes(60)
    sent = [(stranger, hello), (known, hello), (stranger, other_version), (stranger, auth), (alice, _record(1, 1))]

    def send_all() -> None:
        for sock, frame in sent:
            sock.send(frame)
            time.sleep(0.05)
        _arrived(reader.router, len(sent))

    reader.limits[_serve.LIMIT_SHED] = 1
    reader.known_nets = np.array([0x7F000003], np.int64)  # 127.0.0.3
    send_all()
    read = reader.read()
    assert read[_serve.READ_SHED] == 2 and read[_serve.READ_STOP] == _serve.STOP_DRAINED
    assert reader.taken() == [(_record(1, 1), 0)]
    assert [(kind, rid, frame, peer) for kind, rid, frame, _, peer in reader.handed()] == [
        (_serve.KIND_HANDSHAKE, b"bob01", hello, "127.0.0.3"),
        (_serve.KIND_HANDSHAKE, b"eve01", auth, "127.0.0.2"),
    ]
    # not shedding: every handshake frame is handed back, whoever sent it
    reader.limits[_serve.LIMIT_SHED] = 0
    send_all()
    read = reader.read()
    assert read[_serve.READ_SHED] == 0
    assert [rid for _, rid, _, _, _ in reader.handed()] == [b"eve01", b"bob01", b"eve01", b"eve01"]


@pytest.mark.parametrize(
    ("text", "value"),
    [
        (b"127.0.0.1", 0x7F000001),
        (b"255.255.255.255", 0xFFFFFFFF),
        (b"10.0.0.0", 0x0A000000),
        (b"::1", -1),
        (b"::ffff:127.0.0.1", -1),
        (b"127.0.0", -1),
        (b"127.0.0.1.5", -1),
        (b"127.0.0.256", -1),
        (b"127.00.0.1", -1),
        (b"127..0.1", -1),
        (b"", -1),
        (b"1" * 70, -1),
    ],
)
def test_peer_addresses_are_read_as_ipaddress_reads_them(text: bytes, value: int) -> None:
    buf = np.frombuffer(text + b"\0" + bytes(_serve.MAX_PEER), np.uint8)
    assert _serve._ipv4_at(buf.ctypes.data) == value
    if value >= 0:
        assert int(ipaddress.IPv4Address(text.decode())) == value


def test_a_message_of_several_frames_is_drained_and_stops_the_read(ctx: zmq.Context[zmq.Socket[bytes]]) -> None:
    reader = _Reader(ctx, [b"alice"])
    alice = _dealer(ctx, reader.endpoint, b"alice")
    alice.send_multipart([_record(1, 1), b"extra", b"more"])
    alice.send(_record(1, 2))
    _arrived(reader.router, 2)
    reader.read()
    assert reader.taken() == [] and reader.handed() == [(_serve.KIND_MULTIPART, b"alice", b"", -1, "")]
    reader.read()
    assert reader.taken() == [(_record(1, 2), 0)]


def test_a_frame_past_the_largest_is_handed_back_as_malformed(ctx: zmq.Context[zmq.Socket[bytes]]) -> None:
    """ZMQ_MAXMSGSIZE is not enforced on every transport (inproc): the read refuses a
    frame that would not fit its room for one."""
    router = ctx.socket(zmq.ROUTER)
    router.bind("inproc://oversize")
    big = ctx.socket(zmq.DEALER)
    big.setsockopt(zmq.ROUTING_ID, b"alice")
    big.connect("inproc://oversize")
    big.send(bytes(_serve.MAX_FRAME + 1))
    big.send(_record(1, 1))
    reader = _Reader(ctx, [b"alice"])
    reader.router.close(linger=0)
    reader.router = router
    read = reader.read()
    assert read[_serve.READ_STOP] == _serve.STOP_HANDED and reader.taken() == []
    assert reader.handed() == [(_serve.KIND_MULTIPART, b"alice", b"", -1, "")]
    reader.read()
    assert reader.taken() == [(_record(1, 1), 0)]


def test_the_read_stops_at_its_limits(ctx: zmq.Context[zmq.Socket[bytes]]) -> None:
    reader = _Reader(ctx, [b"alice"])
    alice, stranger = _dealer(ctx, reader.endpoint, b"alice"), _dealer(ctx, reader.endpoint, b"new01")
    for i in range(5):
        alice.send(_record(2, i))
    reader.limits[_serve.LIMIT_MESSAGES] = 5
    _arrived(reader.router, 5)
    time.sleep(0.2)
    read = reader.read()
    # reading stops once the frames hold the limit: the third frame brings 6 messages
    assert read[_serve.READ_STOP] == _serve.STOP_LIMIT and read[_serve.READ_MESSAGES] == 6
    assert [f for f, _ in reader.taken()] == [_record(2, i) for i in range(3)]
    reader.limits[_serve.LIMIT_MESSAGES] = 1_000
    reader.read()
    assert [f for f, _ in reader.taken()] == [_record(2, i) for i in (3, 4)]
    # a few handshake frames after a record, then the records go first
    alice.send(_record(1, 9))
    time.sleep(0.1)
    for _ in range(12):
        stranger.send(b"QZ" + bytes(10))
    _arrived(reader.router, 13)
    time.sleep(0.2)
    reader.limits[_serve.LIMIT_AFTER_RECORD] = 4
    read = reader.read()
    assert read[_serve.READ_STOP] == _serve.STOP_LIMIT
    assert len(reader.taken()) == 1 and len(reader.handed()) == 4


def _send(
    sock: zmq.Socket[bytes], sealed: np.ndarray, rids: list[bytes], blocked: list[int]
) -> tuple[list[int], list[int]]:
    """``send_sealed`` of records ``b"record-<i>"``; returns (``sent``, held rows)."""
    arena = np.frombuffer(b"".join(b"record-%d" % i for i in range(sealed.shape[0])), np.uint8).copy()
    rid_at = np.array([(sum(map(len, rids[:c])), len(r)) for c, r in enumerate(rids)], np.int64)
    mask = np.array(blocked, np.uint8)
    held = np.zeros(sealed.shape[0], np.int64)
    sent = np.zeros(_serve.SENT_FIELDS, np.int64)
    ids = np.frombuffer(b"".join(rids), np.uint8).copy()
    _serve.send_sealed(sock.underlying, sealed, sealed.shape[0], arena, rid_at, ids, mask, held, sent)
    return sent.tolist(), held[: sent[_serve.SENT_HELD]].tolist()


def _rows(conns: list[int]) -> np.ndarray:
    """Sealed rows of 8-byte records, one per entry of ``conns``, each 1 message."""
    return np.array([(c, 8 * i, 8, 1) for i, c in enumerate(conns)], np.int64)


def test_a_refused_send_holds_that_connection_back_and_the_others_go_on(
    ctx: zmq.Context[zmq.Socket[bytes]],
) -> None:
    reader = _Reader(ctx, [b"alice"])
    alice = _dealer(ctx, reader.endpoint, b"alice")
    alice.send(b"hi")  # the ROUTER knows alice's routing id once a frame came
    _arrived(reader.router, 1)
    reader.router.recv_multipart()
    # connection 1 is "gone": no peer has its routing id (ROUTER_MANDATORY refuses it)
    sent, held = _send(reader.router, _rows([0, 1, 0, 1]), [b"alice", b"gone"], [0, 0])
    assert sent == [2, 0, 16, 2, 2, 0] and held == [1, 3]  # SENT_BY_PASS: serve_pass alone sets it
    # a connection with something already waiting for it gets nothing directly
    sent, held = _send(reader.router, _rows([0, 0]), [b"alice"], [1])
    assert sent == [0, 0, 0, 0, 2, 0] and held == [0, 1]
    assert alice.poll(2000) and alice.recv() == b"record-0"
    assert alice.poll(2000) and alice.recv() == b"record-2"
    assert not alice.poll(200)


def test_a_full_pipe_holds_the_rest_in_order(ctx: zmq.Context[zmq.Socket[bytes]]) -> None:
    router = ctx.socket(zmq.ROUTER)
    router.setsockopt(zmq.ROUTER_MANDATORY, 1)
    router.setsockopt(zmq.SNDHWM, 1)
    router.bind("inproc://full-pipe")
    slow = ctx.socket(zmq.DEALER)
    slow.setsockopt(zmq.ROUTING_ID, b"slow")
    slow.setsockopt(zmq.RCVHWM, 1)
    slow.connect("inproc://full-pipe")
    slow.send(b"hi")
    router.recv_multipart()
    sent, held = _send(router, _rows([0] * 8), [b"slow"], [0])
    assert 0 < sent[_serve.SENT_COUNT] < 8 and sent[_serve.SENT_ERRNO] == 0
    # once refused, every later record of the connection is held, in order
    assert held == list(range(sent[_serve.SENT_COUNT], 8))
    got = []
    while slow.poll(200):
        got.append(slow.recv())
    assert got == [b"record-%d" % i for i in range(sent[_serve.SENT_COUNT])]
