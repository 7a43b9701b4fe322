"""The jitted packet receiver gives back exactly the frames that were sent, and stays
inside the arena and the table it is given."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import zmq

from qfix.marketdata import _recv, _send, feeds
from qfix.wire import codes

pytestmark = pytest.mark.skipif(not _recv.AVAILABLE, reason="libzmq is not reachable from jitted code in this process")

_PROBE = b"probe"
_FENCE = b"fence"
_GUARD = 0xAB  # what the bytes past an arena or table slice hold; no frame sent here has it
_WAIT_S = 20
_AT_LEN = ((_recv.TOPIC_AT, _recv.TOPIC_LEN), (_recv.HEADER_AT, _recv.HEADER_LEN), (_recv.BODY_AT, _recv.BODY_LEN))

Frames = list[bytes | None]


@pytest.fixture
def pair() -> Iterator[tuple[zmq.Socket[Any], zmq.Socket[Any]]]:
    """A PUB and a SUB (subscribed to everything) over TCP, the subscription in place and
    the SUB's queue empty."""
    ctx: zmq.Context[Any] = zmq.Context()
    pub = ctx.socket(zmq.PUB)
    sub = ctx.socket(zmq.SUB)
    for sock in (pub, sub):
        sock.setsockopt(zmq.LINGER, 0)
    try:
        pub.bind("tcp://127.0.0.1:*")
        sub.setsockopt(zmq.SUBSCRIBE, b"")
        sub.connect(pub.getsockopt_string(zmq.LAST_ENDPOINT))
        # the subscription must reach the PUB before anything is sent: probe until one
        # arrives, then drain behind a fence (one connection keeps order), so every test
        # starts from an empty queue
        deadline = time.monotonic() + _WAIT_S
        while not sub.poll(50):
            assert time.monotonic() < deadline, "the subscription never reached the PUB"
            pub.send_multipart([_PROBE, b"", b""])
        pub.send_multipart([_FENCE])
        while sub.recv_multipart() != [_FENCE]:
            pass
        yield pub, sub
    finally:
        # a context left to the garbage collector with open sockets can block a later test
        pub.close(0)
        sub.close(0)
        ctx.term()


def _rows(arena: np.ndarray, table: np.ndarray, n: int) -> list[Frames]:
    """The first three frames of each of the first n rows (None for a missing one), as
    stored: a truncated frame comes back short."""
    out = []
    for row in table[:n]:
        frames: Frames = []
        for at, size in _AT_LEN:
            lo, length = int(row[at]), int(row[size])
            frames.append(None if length == _recv.MISSING else arena[lo : lo + length].tobytes())
        out.append(frames)
    return out


def _wait(sub: zmq.Socket[Any]) -> None:
    assert sub.poll(_WAIT_S * 1000), "nothing arrived"


def _recv_all(sub: zmq.Socket[Any], expected: int, rows: int = 64) -> tuple[list[Frames], list[int]]:
    """Receive ``expected`` messages with as many calls as it takes: their frames, and each
    call's FRAMES column."""
    got: list[Frames] = []
    frame_counts: list[int] = []
    deadline = time.monotonic() + _WAIT_S
    arena = np.zeros(4 * _recv.MAX_PACKET_BYTES, np.uint8)
    table = np.zeros((rows, _recv.COLUMNS), np.int64)
    while len(got) < expected:
        assert time.monotonic() < deadline, f"{len(got)} of {expected} messages arrived"
        sub.poll(50)
        n = _recv.recv_packets(sub, arena, table)
        got += _rows(arena, table, n)
        frame_counts += table[:n, _recv.FRAMES].tolist()
    return got, frame_counts


def test_the_table_columns_are_distinct() -> None:
    columns = [c for pair in _AT_LEN for c in pair] + [_recv.FRAMES]
    assert sorted(columns) == list(range(_recv.COLUMNS))


def test_an_empty_socket_gives_nothing(pair: tuple[zmq.Socket[Any], zmq.Socket[Any]]) -> None:
    _, sub = pair
    table = np.full((4, _recv.COLUMNS), 7, np.int64)
    assert _recv.recv_packets(sub, np.zeros(_recv.MAX_PACKET_BYTES, np.uint8), table) == 0
    assert (table == 7).all()


def test_packets_come_back_byte_identical_in_order(pair: tuple[zmq.Socket[Any], zmq.Socket[Any]]) -> None:
    pub, sub = pair
    rng = np.random.default_rng(5)
    sent = []
    for i in range(40):
        body = rng.integers(0, 256, 60 * (1 + i % 7), dtype=np.uint8).tobytes()
        frames = [feeds.topic(feeds.ALL_FEEDS[i % 4], 1000 + i), feeds.pack_header(i + 1, 2**63 + i), body]
        pub.send_multipart(frames)
        sent.append(frames)
    got, frame_counts = _recv_all(sub, len(sent), rows=16)
    assert got == sent
    assert frame_counts == [3] * len(sent)


def test_the_jitted_senders_packets_come_back_byte_identical(pair: tuple[zmq.Socket[Any], zmq.Socket[Any]]) -> None:
    pub, sub = pair
    rng = np.random.default_rng(6)
    # the last packet carries the most records a packet may
    bounds = np.array([0, 1, 5, 109, 209, 209 + codes.MAX_MSGS_PER_FRAME])
    records = rng.integers(0, 256, (bounds[-1], 60), dtype=np.uint8)
    ids = np.array([42, 1, 4_294_967_294, 7, 1_000_000_000])
    first_seq, sending_time = 123_456_789, 2**63 + 5
    _send.send_packets(pub, b"TRD.", ids, first_seq, sending_time, records, bounds)
    got, _ = _recv_all(sub, ids.size)
    expected = [
        [
            feeds.topic(feeds.ALL_FEEDS[3], int(ids[i])),
            feeds.pack_header(first_seq + int(bounds[i]), sending_time),
            records[bounds[i] : bounds[i + 1]].tobytes(),
        ]
        for i in range(ids.size)
    ]
    assert got == expected
    assert feeds.unpack_header(got[2][1]) == (first_seq + 5, sending_time)


def test_short_and_long_messages_are_counted_and_consumed(pair: tuple[zmq.Socket[Any], zmq.Socket[Any]]) -> None:
    pub, sub = pair
    packet = [feeds.topic(feeds.ALL_FEEDS[0], 42), feeds.pack_header(9, 10), bytes(range(120))]
    pub.send_multipart([b"lonely"])
    pub.send_multipart([b"L3.0000000001", b"h" * 16, b"b" * 60, b"extra-one", b"extra-two" * 50])
    pub.send_multipart(packet)
    got, frame_counts = _recv_all(sub, 3)
    assert frame_counts == [1, 5, 3]
    assert got[0] == [b"lonely", None, None]
    assert got[1] == [b"L3.0000000001", b"h" * 16, b"b" * 60]
    assert got[2] == packet
    assert feeds.unpack_header(got[2][1] or b"") == (9, 10)


def test_a_missing_frame_has_length_minus_one_at_the_end(pair: tuple[zmq.Socket[Any], zmq.Socket[Any]]) -> None:
    pub, sub = pair
    pub.send_multipart([b"L2.0000000003", b"x" * 16])
    _wait(sub)
    arena = np.zeros(_recv.MAX_PACKET_BYTES, np.uint8)
    table = np.zeros((2, _recv.COLUMNS), np.int64)
    assert _recv.recv_packets(sub, arena, table) == 1
    row = table[0]
    assert row[_recv.FRAMES] == 2
    assert (row[_recv.TOPIC_AT], row[_recv.TOPIC_LEN], row[_recv.HEADER_AT], row[_recv.HEADER_LEN]) == (0, 13, 13, 16)
    assert (row[_recv.BODY_AT], row[_recv.BODY_LEN]) == (29, _recv.MISSING)


def test_a_body_past_the_arena_is_truncated_with_its_true_length(
    pair: tuple[zmq.Socket[Any], zmq.Socket[Any]],
) -> None:
    pub, sub = pair
    room, guard = 200, 64
    topic, header, body = b"L3.0000000042", feeds.pack_header(1, 2), bytes([0x11, 0x22, 0x33]) * 200
    after = [b"L3.0000000043", feeds.pack_header(2, 2), b"\x44" * 60]
    pub.send_multipart([topic, header, body])
    pub.send_multipart(after)
    _wait(sub)
    buf = np.full(room + guard, _GUARD, np.uint8)
    table = np.zeros((8, _recv.COLUMNS), np.int64)
    assert _recv.recv_packets(sub, buf[:room], table, room_per_packet=room) == 1
    row = table[0]
    assert row[_recv.BODY_LEN] == len(body) > room
    kept = room - len(topic) - len(header)
    assert (row[_recv.BODY_AT], row[_recv.FRAMES]) == (len(topic) + len(header), 3)
    assert buf[:room].tobytes() == topic + header + body[:kept]
    assert (buf[room:] == _GUARD).all(), "the receiver wrote past the arena"
    # the truncated packet was taken whole: the next one parses
    got, _ = _recv_all(sub, 1)
    assert got == [after]


def test_a_topic_past_the_arena_leaves_its_later_frames_no_room(
    pair: tuple[zmq.Socket[Any], zmq.Socket[Any]],
) -> None:
    pub, sub = pair
    room, guard = 100, 64
    topic, header, body = b"T" * 300, b"h" * 16, b"b" * 60
    pub.send_multipart([topic, header, body])
    _wait(sub)
    buf = np.full(room + guard, _GUARD, np.uint8)
    table = np.zeros((8, _recv.COLUMNS), np.int64)
    assert _recv.recv_packets(sub, buf[:room], table, room_per_packet=room) == 1
    row = table[0]
    assert (row[_recv.TOPIC_AT], row[_recv.TOPIC_LEN]) == (0, len(topic))
    # the later frames were taken with no room: placed at the arena's end, true lengths kept
    assert (row[_recv.HEADER_AT], row[_recv.HEADER_LEN], row[_recv.BODY_AT], row[_recv.BODY_LEN]) == (
        room,
        len(header),
        room,
        len(body),
    )
    assert buf[:room].tobytes() == topic[:room]
    assert (buf[room:] == _GUARD).all(), "the receiver wrote past the arena"


def test_a_full_table_stops_the_call_and_the_rest_comes_next(pair: tuple[zmq.Socket[Any], zmq.Socket[Any]]) -> None:
    pub, sub = pair
    sent = [[feeds.topic(feeds.ALL_FEEDS[1], i), feeds.pack_header(i, 0), bytes([i]) * 60] for i in range(1, 6)]
    for frames in sent:
        pub.send_multipart(frames)
    arena = np.zeros(_recv.MAX_PACKET_BYTES * 2, np.uint8)
    rows = np.full((3, _recv.COLUMNS), _GUARD, np.int64)
    got = []
    for expected in sent:
        _wait(sub)
        # a one-row table: exactly one message whatever else is waiting, and the next row
        # is left alone
        assert _recv.recv_packets(sub, arena, rows[:1]) == 1
        assert (rows[1:] == _GUARD).all(), "the receiver wrote past the table"
        got += _rows(arena, rows, 1)
        assert got[-1] == expected
    assert _recv.recv_packets(sub, arena, rows[:0]) == 0
    assert got == sent


def test_a_low_arena_stops_the_call_and_the_rest_comes_next(pair: tuple[zmq.Socket[Any], zmq.Socket[Any]]) -> None:
    pub, sub = pair
    room = 500
    sent = [[feeds.topic(feeds.ALL_FEEDS[2], i), feeds.pack_header(i, 0), bytes([i]) * 120] for i in range(1, 5)]
    size = sum(map(len, sent[0]))
    for frames in sent:
        pub.send_multipart(frames)
    table = np.zeros((8, _recv.COLUMNS), np.int64)
    got = []
    for expected in sent:
        _wait(sub)
        # less than ``room`` is left after one packet: the call stops at one
        arena = np.full(room + size - 1, _GUARD, np.uint8)
        assert _recv.recv_packets(sub, arena, table, room_per_packet=room) == 1
        assert (arena[size:] == _GUARD).all()
        got += _rows(arena, table, 1)
        assert got[-1] == expected
    # an arena smaller than the room takes nothing, so the message waits
    pub.send_multipart(sent[0])
    _wait(sub)
    assert _recv.recv_packets(sub, np.zeros(room - 1, np.uint8), table, room_per_packet=room) == 0
    assert _recv_all(sub, 1)[0] == [sent[0]]
    assert got == sent


def test_a_socket_that_cannot_receive_raises(pair: tuple[zmq.Socket[Any], zmq.Socket[Any]]) -> None:
    pub, _ = pair
    with pytest.raises(zmq.ZMQError) as err:
        _recv.recv_packets(pub, np.zeros(_recv.MAX_PACKET_BYTES, np.uint8), np.zeros((1, _recv.COLUMNS), np.int64))
    assert err.value.errno == zmq.ENOTSUP


def test_arrays_of_the_wrong_kind_are_refused(pair: tuple[zmq.Socket[Any], zmq.Socket[Any]]) -> None:
    _, sub = pair
    table = np.zeros((1, _recv.COLUMNS), np.int64)
    with pytest.raises(ValueError, match="arena"):
        _recv.recv_packets(sub, np.zeros(_recv.MAX_PACKET_BYTES * 2, np.uint8)[::2], table)
    with pytest.raises(ValueError, match="table"):
        _recv.recv_packets(sub, np.zeros(_recv.MAX_PACKET_BYTES, np.uint8), table[:, :-1])
