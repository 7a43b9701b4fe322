"""The compiled record path (``qfix.server.record_path``) against the Python path it
replaces: the same frames, cut into the same passes, must give every session the same
reports and refusals, the feed the same market data, and leave the engines, the marks,
the throttles and the retransmission histories in the same state."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pytest
import zmq

from qfix.crypto import AllowEntry, AllowList, SignatureAlg, SigningKey
from qfix.engine import Engine, output_buffer
from qfix.journal.replay import EngineDriver
from qfix.qzmq import ClientConnection, ClientState, Config, Established, Messages, ServerProtocol
from qfix.server import _serve, _stage_s
from qfix.server.record_path import RecordPath, Served
from qfix.server.routes import Routes
from qfix.server.session import OrderEntry
from qfix.testing.generators import (
    default_random_config,
    default_random_instruments,
    default_random_sessions,
    random_stream,
)
from qfix.wire import codes, message, schema

_MSG = codes.MESSAGE_SIZE
_OUT = 1 << 16


def _conn(session_id: int) -> int:
    return 100 + session_id


@dataclass
class _Side:
    """One way of running the passes, and everything it sent."""

    entry: OrderEntry
    engine: Engine
    out: np.ndarray = field(default_factory=lambda: output_buffer(_OUT))
    sent: dict[int, list[bytes]] = field(default_factory=dict)  #: SessionID -> messages in order
    md: list[bytes] = field(default_factory=list)
    trades: int = 0

    def send(self, session_id: int, msgs: np.ndarray) -> None:
        self.sent.setdefault(session_id, []).extend(bytes(m) for m in msgs)

    def match(self, inbound: list[np.ndarray]) -> None:
        """What the server's ledger does with a batch when there is no journal."""
        if not inbound:
            return
        batch = np.concatenate(inbound)
        _stage_s.raise_marks(schema.as_words(batch), len(self.entry.by_id), self.entry.journaled_marks)
        while batch.size:
            res = self.engine.process(batch, self.out)
            self.deliver(*self.entry.route(self.out[: res.written]))
            batch = batch[res.consumed :]
            if res.needed > self.out.size:
                self.out = output_buffer(res.needed)
        inbound.clear()

    def deliver(self, routed: list, md: np.ndarray, trades: int) -> None:
        for state, msgs in routed:
            self.send(state.session_id, msgs)
        self.md.extend(bytes(m) for m in md)
        self.trades += trades

    def receive(self, conn: int, frame: bytes, recv_time: int, now: float, inbound: list[np.ndarray]) -> None:
        state = self.entry.by_conn[conn]
        arrival = self.entry.receive(conn, frame, recv_time, now)
        if arrival.inbound.size:
            inbound.append(arrival.inbound)
        if arrival.replies.size:
            self.send(state.session_id, arrival.replies)


def _side(throttle: tuple[float, float], accounts: dict[int, tuple[int, ...]]) -> _Side:
    entry = OrderEntry(throttle=throttle, max_sessions=16)
    for sid, _ in default_random_sessions():
        entry.login(_conn(sid), f"key{sid}".encode(), accounts[sid], now=0.0)
    entry.set_blocked({777})
    return _Side(entry, Engine(default_random_instruments(), default_random_config()))


def _passes(seed: int, n: int) -> list[list[tuple[int, bytes, int]]]:
    """A random stream cut into frames of one session (1-6 messages, with heartbeats,
    refused headers and malformed frames now and then) and the frames into passes."""
    rng = np.random.default_rng(seed)
    stream = random_stream(seed, n)
    msgs = stream.view(np.uint8).reshape(-1, schema.INBOUND.itemsize)[:, :_MSG]
    sids = stream["SessionID"].astype(int)
    times = stream["RecvTime"].astype(int)
    frames: list[tuple[int, bytes, int]] = []
    i = 0
    while i < len(stream):
        sid = sids[i]
        j = i + 1
        limit = i + int(rng.integers(1, 7))
        while j < min(limit, len(stream)) and sids[j] == sid:
            j += 1
        body = [msgs[k].tobytes() for k in range(i, j)]
        roll = rng.random()
        if roll < 0.03:
            body.insert(int(rng.integers(0, len(body) + 1)), message.heartbeat().tobytes())
        elif roll < 0.04:
            bad = bytearray(body[0])
            bad[2] ^= 0x7F  # schemaId: refused by stage H
            body[0] = bytes(bad)
        payload = b"".join(body)
        if rng.random() < 0.01:
            payload = payload[:-7]  # not a whole number of messages: refused by stage F
        frames.append((_conn(sid), payload, int(times[i])))
        i = j
    passes = []
    i = 0
    while i < len(frames):
        k = int(rng.integers(1, 9))
        passes.append(frames[i : i + k])
        i += k
    return passes


def _journal() -> tuple[list[np.ndarray], Callable[[np.ndarray], int]]:
    """What a journal keeps of the records handed to it, and the callback that hands them."""
    journal: list[np.ndarray] = []

    def write(records: np.ndarray) -> int:
        journal.append(records.copy())
        return len(journal)

    return journal, write


@pytest.mark.parametrize(
    ("seed", "out_size", "journaled"), [(1, _OUT, False), (2, _OUT, True), (3, _OUT, False), (4, 24, True)]
)
def test_the_record_path_matches_the_python_path(seed: int, out_size: int, journaled: bool) -> None:
    """``out_size`` 24 (a fresh buffer for every pass) makes the engine stop for output
    space in most passes, so the path runs them in several engine calls. ``journaled``
    runs the two-call form, which hands the records stage S passed to a journal before
    the engine runs them."""
    # a throttle that bites: bursts of 40 refilled at 2,000 a (simulated) second
    throttle = (2_000.0, 40.0)
    accounts = {sid: (acct, 4_000 + sid) for sid, acct in default_random_sessions()}
    accounts[2] = (accounts[2][0],)
    python, compiled = _side(throttle, accounts), _side(throttle, accounts)
    path = RecordPath(compiled.entry, compiled.engine)
    driver = EngineDriver(compiled.engine, out_size)
    journal, write = _journal()

    now = 0.0
    left = taken = split = 0
    for frames in _passes(seed, 4_000):
        now += 0.002
        inbound: list[np.ndarray] = []
        for conn, frame, recv_time in frames:
            python.receive(conn, frame, recv_time, now, inbound)
        python.match(inbound)

        for conn, frame, recv_time in frames:
            path.add(compiled.entry.by_conn[conn], conn, frame, recv_time)
        if out_size < _OUT:
            driver = EngineDriver(compiled.engine, out_size)
        outcome = path.run(now, driver, write if journaled else None)
        assert path.pending == 0
        assert outcome.consumed == outcome.messages == outcome.ran.size
        if journaled and outcome.consumed:
            assert outcome.journal_seq == len(journal)
            assert journal[-1].tobytes() == outcome.ran.tobytes()
        compiled.deliver(outcome.routed, outcome.md, outcome.trades)
        taken += len(frames) - len(outcome.left)
        left += len(outcome.left)
        split += outcome.calls > 1
        rest: list[np.ndarray] = []
        for item in outcome.left:
            compiled.receive(item.conn, item.frame, item.recv_time, now, rest)
        compiled.match(rest)

    # both kinds of frame came up often enough to mean something
    assert taken > 200 and left > 200
    assert split > 200 if out_size < _OUT else split == 0
    assert not journaled or sum(j.size for j in journal) > 1_000
    _assert_same_end(python, compiled, compiled.sent, now)
    assert np.array_equal(compiled.entry.journaled_marks, python.entry.journaled_marks)
    assert np.array_equal(compiled.entry.last_exec_ids, python.entry.last_exec_ids)


def _template(msg: bytes) -> int:
    return int(np.frombuffer(msg, np.uint16, count=2)[1])


def _reports(sent: list[bytes]) -> list[bytes]:
    """The engine's messages to a session, in order."""
    return [m for m in sent if _template(m) not in (codes.TEMPLATE_BUSINESS_MESSAGE_REJECT, codes.TEMPLATE_HEARTBEAT)]


def _refusals(sent: list[bytes]) -> list[bytes]:
    """Stage F, H and S refusals and heartbeat answers, in order (a Heartbeat's
    LastExecID depends on when it is answered, so only its presence is compared)."""
    return [
        m if _template(m) == codes.TEMPLATE_BUSINESS_MESSAGE_REJECT else b"heartbeat"
        for m in sent
        if _template(m) in (codes.TEMPLATE_BUSINESS_MESSAGE_REJECT, codes.TEMPLATE_HEARTBEAT)
    ]


def test_the_first_left_frame_leaves_every_later_one() -> None:
    """A heartbeat in the pass's second frame sends it and every later frame, of any
    session, to the Python path in order, and commits nothing of them."""
    accounts = {sid: (acct,) for sid, acct in default_random_sessions()}
    side = _side((1e9, 1e9), accounts)
    path = RecordPath(side.entry, side.engine)
    new_orders = [
        message.new_order_single(cl_ord_id=cl, security_id=1, side="buy", qty=1, price=1_000).tobytes()
        for cl in (1, 2, 3)
    ]
    heartbeat = message.heartbeat().tobytes()
    a, b = side.entry.by_id[0], side.entry.by_id[2]
    path.add(a, _conn(0), new_orders[0], 1)
    path.add(b, _conn(2), heartbeat, 2)
    path.add(a, _conn(0), new_orders[1], 3)
    path.add(b, _conn(2), new_orders[2], 4)
    outcome = path.run(1.0, EngineDriver(side.engine, 64))
    assert outcome.consumed == 1 and outcome.messages == 1
    assert [(item.conn, item.frame, item.recv_time) for item in outcome.left] == [
        (_conn(2), heartbeat, 2),
        (_conn(0), new_orders[1], 3),
        (_conn(2), new_orders[2], 4),
    ]
    assert (a.hwm, b.hwm) == (1, 0)  # nothing of the left frames was committed
    assert [state.session_id for state, _ in outcome.routed] == [0]


def test_the_driver_reserves_output_up_to_its_worst_case() -> None:
    """After a pass whose output did not fit, the server asks the engine driver for a
    larger buffer; it grows, never past the configured worst case, and never shrinks."""
    side = _side((1e9, 1e9), {sid: (acct,) for sid, acct in default_random_sessions()})
    driver = EngineDriver(side.engine, 16)
    driver.reserve(64)
    assert driver.out_size == 64
    driver.reserve(32)
    assert driver.out_size == 64
    driver.worst_case = 100  # a server's configuration bounds it (this engine's is huge)
    driver.reserve(1_000)
    assert driver.out_size == 100


def _assert_same_end(python: _Side, compiled: _Side, received: dict[int, list[bytes]], now: float) -> None:
    """Both sides ended in the same state, and every session got the same reports and
    refusals (``received``: what each session's client got on the compiled side)."""
    assert compiled.engine.state_hash() == python.engine.state_hash()
    assert compiled.md == python.md and compiled.trades == python.trades
    for sid, _ in default_random_sessions():
        a, b = python.entry.by_id[sid], compiled.entry.by_id[sid]
        assert a.hwm == b.hwm
        # a bucket refills lazily, when asked: compare what both allow now
        assert a.bucket.available(now) == b.bucket.available(now)
        assert a.history.count == b.history.count and a.history.dropped_upto == b.history.dropped_upto
        assert _reports(received.get(sid, [])) == _reports(python.sent.get(sid, []))
        assert _refusals(received.get(sid, [])) == _refusals(python.sent.get(sid, []))


# --- sealed records: the path opens them and seals the reports on leased rows ----------------

_RID = b"\x00\x00\x00\x00%c"


class _Sealed:
    """The compiled side's sessions as real QZMQ sessions: one client per SessionID,
    joined to one ServerProtocol by an in-memory pump; usage limits low, so that
    KEY_UPDATEs come up both ways (the kernels hand those records back)."""

    def __init__(self, side: _Side, accounts: dict[int, tuple[int, ...]], rid_format: bytes = _RID) -> None:
        cfg = Config(cookie_policy="never", rekey_after_records=40)
        keys = {sid: SigningKey.from_seed(SignatureAlg.ML_DSA_44, bytes([sid + 10]) * 32) for sid in accounts}
        server_key = SigningKey.from_seed(SignatureAlg.ML_DSA_65, bytes([1]) * 32)
        allow = AllowList([AllowEntry(k.verify_key(), accounts[sid]) for sid, k in keys.items()])
        self.protocol = ServerProtocol([server_key], allow, cfg)
        self.side = side
        self.clients: dict[int, ClientConnection] = {}  #: QZMQ conn -> client
        self.conn_of: dict[int, int] = {}  #: the plain test's conn -> QZMQ conn
        self.sid_of: dict[bytes, int] = {}
        self.received: dict[int, list[bytes]] = {}  #: SessionID -> messages its client opened
        for sid in sorted(accounts):
            client = ClientConnection(keys[sid], server_key.verify_key(), cfg)
            rid = rid_format % sid
            client.connect(0.0)
            conn = None
            for _ in range(10):
                for f in client.data_to_send():
                    for ev in self.protocol.receive(rid, f, 0.0, "192.0.2.1"):
                        if isinstance(ev, Established):
                            conn = ev.conn
                for _, f in self.protocol.data_to_send():
                    client.receive(f, 0.0)
            assert conn is not None and client.state is ClientState.ESTABLISHED
            self.clients[conn] = client
            self.conn_of[_conn(sid)] = conn
            self.sid_of[rid] = sid
            side.entry.login(conn, keys[sid].kid, accounts[sid], now=0.0)

    def send(self, session_id: int, msgs: np.ndarray) -> None:
        """The compiled side's Python path sends through the session layer too, so that
        the order of everything a client gets is the order it was queued in."""
        conn = self.side.entry.by_id[session_id].conns[0]
        data = np.ascontiguousarray(msgs).tobytes()
        for start in range(0, len(data), 1091 * _MSG):
            self.protocol.send_fixed(conn, data[start : start + 1091 * _MSG])

    def seal(self, conn: int, frame: bytes) -> list[bytes]:
        """What the client sends for ``frame``: its record, a KEY_UPDATE first at times."""
        client = self.clients[conn]
        client.send_fixed(frame)
        return client.data_to_send()

    def deliver(self, now: float) -> None:
        """Every record the server queued, opened by its client: the plaintext is what
        the session was sent."""
        for rid, f in self.protocol.data_to_send():
            self.open(self.sid_of[rid], f, now)

    def open(self, sid: int, record: bytes, now: float) -> None:
        """Session ``sid``'s client opens ``record``; the messages it carried are kept."""
        client = self.clients[self.side.entry.by_id[sid].conns[0]]
        for ev in client.receive(record, now):
            if isinstance(ev, Messages):
                for frame in ev.frames:
                    self.received.setdefault(sid, []).extend(frame[k : k + _MSG] for k in range(0, len(frame), _MSG))


@pytest.mark.parametrize(("seed", "out_size", "journaled"), [(5, _OUT, False), (6, 24, True), (7, 24, False)])
def test_sealed_records_give_what_plain_frames_give(seed: int, out_size: int, journaled: bool) -> None:
    """The record path on sealed records (real QZMQ sessions lease their rows) against
    the Python path on the plain frames: the same reports reach every client, through the
    kernel's seal or the session's, and the state ends the same. Frames of a length the
    client cannot seal are left out of both (a QZMQ peer closes a session over one)."""
    throttle = (2_000.0, 40.0)
    accounts = {sid: (acct, 4_000 + sid) for sid, acct in default_random_sessions()}
    python = _side(throttle, accounts)
    compiled = _Side(
        OrderEntry(throttle=throttle, max_sessions=16), Engine(default_random_instruments(), default_random_config())
    )
    qz = _Sealed(compiled, accounts)
    compiled.entry.set_blocked({777})
    compiled.send = qz.send  # type: ignore[method-assign]
    path = RecordPath(compiled.entry, compiled.engine, qz.protocol)
    driver = EngineDriver(compiled.engine, out_size)
    _, write = _journal()

    now = 0.0
    sealed = handed = left = 0
    for frames in _passes(seed, 3_000):
        frames = [(c, f, t) for c, f, t in frames if f and len(f) % _MSG == 0]
        if not frames:
            continue
        now += 0.002
        inbound: list[np.ndarray] = []
        for conn, frame, recv_time in frames:
            python.receive(conn, frame, recv_time, now, inbound)
        python.match(inbound)

        for conn, frame, recv_time in frames:
            qconn = qz.conn_of[conn]
            for record in qz.seal(qconn, frame):
                path.add(compiled.entry.by_conn[qconn], qconn, record, recv_time, sealed=True)
        if out_size < _OUT:
            driver = EngineDriver(compiled.engine, out_size)
        outcome = path.run(now, driver, write if journaled else None)
        assert not outcome.routed
        compiled.deliver([], outcome.md, outcome.trades)
        for qconn, record, _ in outcome.sealed:
            qz.protocol.queue_sealed(qconn, (record,))
        for qconn, msgs in outcome.handed:
            qz.send(compiled.entry.by_conn[qconn].session_id, msgs)
        sealed += len(outcome.sealed)
        handed += len(outcome.handed)
        left += len(outcome.left)
        rest: list[np.ndarray] = []
        for item in outcome.left:
            assert item.sealed
            for ev in qz.protocol.receive_sealed(item.conn, item.frame, now):
                if isinstance(ev, Messages):
                    for frame in ev.frames:
                        compiled.receive(item.conn, frame, item.recv_time, now, rest)
        compiled.match(rest)
        qz.deliver(now)

    assert sealed > 500 and handed > 20 and left > 100, (sealed, handed, left)
    assert qz.protocol.session_count == len(accounts)  # nothing was fatal
    _assert_same_end(python, compiled, qz.received, now)
    for sid, _ in default_random_sessions():
        session = qz.protocol.session(compiled.entry.by_id[sid].conns[0])
        assert session.counters.key_updates_recv > 0 and session.counters.key_updates_sent > 0


# --- served passes: the path reads the records off a ROUTER socket and sends the reports -------

_SERVED_RID = b"conn%c"


def _read_order(path: RecordPath, routes: Routes, served: Served) -> list[int]:
    """The connection of each frame a served pass took, in the order it read them."""
    slots = path._frames_table[: served.frames, _serve.FRAME_SLOT].tolist()
    return [routes.conns[s] for s in slots]


@pytest.mark.parametrize(
    ("seed", "out_size", "journaled", "in_pass"),
    [
        (8, _OUT, False, False),
        (9, 24, True, False),
        (10, 24, False, False),
        (11, _OUT, False, True),
        (12, 24, False, True),
    ],
)
def test_served_passes_give_what_plain_frames_give(seed: int, out_size: int, journaled: bool, in_pass: bool) -> None:
    """The record path reading real QZMQ records off a ROUTER socket and sending the
    reports on it (``RecordPath.serve``, ``send_kept``) against the Python path on the
    plain frames, taken in the order the socket gave them (a ROUTER queues its peers
    fairly, not in the order they sent): the same reports reach every client, the state
    ends the same. With ``in_pass`` the passes send their own reports (``send_blocked``),
    each with a random set of connections whose records it must hold back for the
    session layer's queue instead, as if their pipes were full."""
    throttle = (2_000.0, 40.0)
    accounts = {sid: (acct, 4_000 + sid) for sid, acct in default_random_sessions()}
    python = _side(throttle, accounts)
    compiled = _Side(
        OrderEntry(throttle=throttle, max_sessions=16), Engine(default_random_instruments(), default_random_config())
    )
    qz = _Sealed(compiled, accounts, _SERVED_RID)
    compiled.entry.set_blocked({777})
    compiled.send = qz.send  # type: ignore[method-assign]
    path = RecordPath(compiled.entry, compiled.engine, qz.protocol)
    routes = Routes(compiled.entry, qz.protocol, frozenset())
    driver = EngineDriver(compiled.engine, out_size)
    _, write = _journal()
    ctx = zmq.Context()
    router = ctx.socket(zmq.ROUTER)
    router.setsockopt(zmq.ROUTER_MANDATORY, 1)
    router.bind("inproc://served")
    dealers: dict[int, zmq.Socket[bytes]] = {}  #: QZMQ conn -> its client's socket
    for sid in accounts:
        d = ctx.socket(zmq.DEALER)
        d.setsockopt(zmq.ROUTING_ID, _SERVED_RID % sid)
        d.connect("inproc://served")
        dealers[compiled.entry.by_id[sid].conns[0]] = d

    def to_clients(now: float) -> None:
        """The records the path sent, then what the session layer queued (in seal order)."""
        for qconn, d in dealers.items():
            while d.poll(0):
                qz.open(compiled.entry.by_conn[qconn].session_id, d.recv(), now)
        qz.deliver(now)

    rids = [_SERVED_RID % sid for sid in accounts]
    choose = random.Random(seed)
    try:
        now = 0.0
        kept = left = held_back = sent_by_pass = 0
        for frames in _passes(seed, 3_000):
            frames = [(c, f, t) for c, f, t in frames if f and len(f) % _MSG == 0]
            if not frames:
                continue
            now += 0.002
            # per connection, its records in order: the plain frame a record carries, or
            # None for a KEY_UPDATE the client sent before it
            waiting: dict[int, list[tuple[int, bytes] | None]] = {}
            expected = 0
            for conn, frame, _ in frames:
                qconn = qz.conn_of[conn]
                records = qz.seal(qconn, frame)
                for record in records:
                    dealers[qconn].send(record)
                expected += len(records)
                waiting.setdefault(qconn, []).extend([None] * (len(records) - 1) + [(conn, frame)])
            taken = 0
            order: list[int] = []
            while taken < expected:
                blocked = {r for r in rids if choose.random() < 0.3} if in_pass else None
                served = path.serve(
                    router.underlying, routes, now, 7, driver, 10_000, write if journaled else None, blocked
                )  # fmt: skip
                assert not served.handed and served.stop in (_serve.STOP_DRAINED, _serve.STOP_LIMIT)
                taken += served.frames
                order += _read_order(path, routes, served)
                outcome = served.outcome
                if outcome is None:
                    continue
                compiled.deliver([], outcome.md, outcome.trades)
                # one engine call: its records stay in the arena, or with in_pass leave at
                # once; several: all leave as bytes
                assert not (outcome.sealed and outcome.kept)
                if outcome.sent is not None:
                    assert in_pass and not outcome.kept and not outcome.sealed and not outcome.sent.errno
                    sent_by_pass += outcome.sent.count
                    held_back += len(outcome.sent.held)
                    # the held records wait for the session layer's queue, in order
                    for qconn, record, _ in path.kept_records(outcome.sent.held):
                        qz.protocol.queue_sealed(qconn, (record,))
                count = outcome.kept
                sent, _, _, _, held = path.send_kept(router.underlying, count, set())
                assert (sent, held) == (count, [])
                for qconn, record, _ in outcome.sealed:
                    qz.protocol.queue_sealed(qconn, (record,))
                for qconn, msgs in outcome.handed:
                    qz.send(compiled.entry.by_conn[qconn].session_id, msgs)
                kept += count
                left += len(outcome.left)
                rest: list[np.ndarray] = []
                for item in outcome.left:
                    for ev in qz.protocol.receive_sealed(item.conn, item.frame, now):
                        if isinstance(ev, Messages):
                            for frame in ev.frames:
                                compiled.receive(item.conn, frame, item.recv_time, now, rest)
                compiled.match(rest)
                to_clients(now)
            # the Python path takes the plain frames in the order the socket gave their records
            inbound: list[np.ndarray] = []
            for qconn in order:
                carried = waiting[qconn].pop(0)
                if carried is not None:
                    python.receive(*carried, 7, now, inbound)
            python.match(inbound)
    finally:
        for d in dealers.values():
            d.close(linger=0)
        router.close(linger=0)
        ctx.term()

    assert kept + sent_by_pass > 300 and left > 100, (kept, sent_by_pass, left)
    if in_pass:
        assert sent_by_pass > 100 and held_back > 30, (sent_by_pass, held_back)
    assert qz.protocol.session_count == len(accounts)
    _assert_same_end(python, compiled, qz.received, now)
