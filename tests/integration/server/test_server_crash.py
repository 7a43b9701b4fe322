"""Crash recovery under load: a real ``qfix server`` process is SIGKILLed at random moments
while several clients trade, and restarted each time.

Afterwards every report a client ever received must come out of an offline replay of the
journal, byte for byte and addressed to that client's session; every report the replay
addresses to a session must have reached its client (by retransmission where the crash
or an absence swallowed it); the clients' order trackers must agree with the replayed
engine order by order; and the live server's state hash must equal the replays', the
one run in this process and the one ``qfix journal replay`` runs in a fresh process.
Across each crash, the first Heartbeat of the restarted server must already cover every
ExecID and ClOrdID the client saw acknowledged before it (durability mode "fsync" sends
no report before its input is on disk).

(This test found the SDK applying a live report before the retransmission it had asked
for, which made the older reports look applied; ``Client`` now holds live reports back.)
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import tomllib
import traceback
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

import numpy as np
import pytest
import zmq

from qfix.client import Client
from qfix.client.client import ClientError
from qfix.client.tracker import OrderState, OrderTracker
from qfix.crypto.keys import load_private_key
from qfix.engine import Engine
from qfix.journal import REFUSED, EngineDriver, decode, is_engine_entry, list_segments, read_journal
from qfix.journal.entries import OpenSession
from qfix.server import ensure_default_setup, load_config
from qfix.server.session import MD_DEST
from qfix.wire import codes, schema

pytestmark = pytest.mark.integration

QFIX: Final = [sys.executable, "-m", "qfix"]
DEFAULT_KILLS: Final = 10
SLOW_KILLS: Final = 100
TRADERS: Final = 3
SECURITY_ID: Final = 1
REF_TICKS: Final = 6_500_000  #: 65000.00 in ticks of 0.01
#: a trader with more open orders than this mostly cancels, which keeps the book (and the
#: engine's small max_orders) bounded however long the slow variant runs
MAX_OPEN: Final = 60
START_TIMEOUT_S: Final = 300.0  #: a cold Numba cache compiles the kernels on the first start
WAIT_S: Final = 60.0

_SEQUENCED: Final = (
    codes.TEMPLATE_EXECUTION_REPORT,
    codes.TEMPLATE_ORDER_CANCEL_REJECT,
    codes.TEMPLATE_ORDER_MASS_CANCEL_REPORT,
)
_OPEN_STATUS: Final = (codes.ORD_STATUS_NEW, codes.ORD_STATUS_PARTIALLY_FILLED)


def _field(dtype: np.dtype[Any], name: str) -> int:
    return int(dtype.fields[name][1])  # type: ignore[index]


_ER = schema.EXECUTION_REPORT
_ER_EXEC_ID: Final = _field(_ER, "ExecID")
_MCR_EXEC_ID: Final = _field(schema.ORDER_MASS_CANCEL_REPORT, "ExecID")
_CLORDID: Final = _field(_ER, "ClOrdID")  # the same offset in templates 10, 11 and 12
_HB_EXEC_ID: Final = _field(schema.HEARTBEAT, "LastExecID")
_HB_CLORDID: Final = _field(schema.HEARTBEAT, "LastClOrdID")
_TRADE_QTY: Final = _field(schema.TRADE, "LastQty")


def _u64(msgs: np.ndarray[Any, Any], offset: int) -> np.ndarray[Any, Any]:
    return np.ascontiguousarray(msgs[:, offset : offset + 8]).view("<u8")[:, 0]


def _tids(msgs: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    return msgs[:, 2].astype(np.uint16) | (msgs[:, 3].astype(np.uint16) << 8)


def _exec_ids(msgs: np.ndarray[Any, Any], tids: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """Each row's ExecID (0 for a message that is not sequenced)."""
    ids = np.where(np.isin(tids, _SEQUENCED), _u64(msgs, _ER_EXEC_ID), np.uint64(0))
    mass = tids == codes.TEMPLATE_ORDER_MASS_CANCEL_REPORT
    if mass.any():
        ids[mass] = _u64(msgs[mass], _MCR_EXEC_ID)
    return ids


def _reports(msgs: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """ExecutionReport rows as a structured array."""
    tids = _tids(msgs)
    return np.ascontiguousarray(msgs[tids == codes.TEMPLATE_EXECUTION_REPORT]).view(_ER).reshape(-1)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ------------------------------------------------------------------------------ the server
class ServerProcess:
    """``qfix server`` in a process group of its own; each life logs to its own file."""

    def __init__(self, config: Path, logs: Path) -> None:
        self.config = config
        self.logs = logs
        self.proc: subprocess.Popen[bytes] | None = None
        self.lives = 0
        self.texts: list[str] = []

    def start(self) -> None:
        for _ in range(50):
            self.lives += 1
            log = self.logs / f"server-{self.lives:03d}.log"
            with log.open("wb") as fh:
                # start_new_session: a kill of the group takes any helper process with it
                proc = subprocess.Popen(
                    [*QFIX, "server", "--config", str(self.config)],
                    stdout=fh,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            self.proc = proc
            deadline = time.monotonic() + START_TIMEOUT_S
            while True:
                text = log.read_text(errors="replace")
                if "listening on" in text:
                    self.texts.append(text)
                    return
                if proc.poll() is not None:
                    break
                if time.monotonic() > deadline:
                    self.kill()
                    raise AssertionError(f"the server did not listen within {START_TIMEOUT_S} s:\n{text[-4000:]}")
                time.sleep(0.02)
            self.texts.append(text)
            # the port may be held for a moment by a client's outgoing connection: try again
            if "Address already in use" not in text:
                raise AssertionError(f"the server exited with {proc.returncode} before listening:\n{text[-4000:]}")
            time.sleep(0.2)
        raise AssertionError("the server's port stayed in use")

    def kill(self) -> None:
        proc = self.proc
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)
        self.proc = None

    def terminate(self) -> str:
        """SIGTERM (the clean shutdown with its final checkpoint); returns the life's log."""
        proc = self.proc
        assert proc is not None
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(60)
        self.proc = None
        text = (self.logs / f"server-{self.lives:03d}.log").read_text(errors="replace")
        assert rc == 0, f"the server exited with {rc} on SIGTERM:\n{text[-4000:]}"
        assert "server stopped" in text, text[-4000:]
        return text

    def tail(self) -> str:
        path = self.logs / f"server-{self.lives:03d}.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""


# ------------------------------------------------------------------------------ the clients
@dataclass
class Shared:
    """What the test loop tells the trader threads."""

    life: int = 0
    up: threading.Event = field(default_factory=threading.Event)  #: a server listens
    stop_load: threading.Event = field(default_factory=threading.Event)
    converge: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)


class Trader(threading.Thread):
    """One client session: sends orders, cancels and replaces while the server lives,
    reconnects (at its own pace) after every crash, and records every message it gets."""

    def __init__(self, n: int, client: Client, shared: Shared, seed: int) -> None:
        super().__init__(name=f"trader-{n}", daemon=True)
        self.n = n
        self.client = client
        self.shared = shared
        self.rng = random.Random(seed)
        #: every sequenced report received, by ExecID (retransmitted copies included)
        self.received: dict[int, bytes] = {}
        self.problems: list[str] = []
        self.error = ""
        self.max_exec_id = 0
        self.max_clordid = 0
        self.conn_life = -1
        self.sent_life = -1
        self.connects = 0
        self.attempt = 0  #: connect attempts so far, the failed ones included
        self.retransmissions = 0  #: connects whose Heartbeat named reports the client lacked
        #: (FromExecID, Count, RetransmitStatus, SentCount, LastExecID) of each RetransmitComplete
        self.completes: list[tuple[int, ...]] = []
        #: (attempt, life, the tracker's last ExecID before it, the server's LastExecID) of each connect
        self.connect_log: list[tuple[int, int, int, int]] = []
        #: what the tracker was told at sending: (ClOrdID, SecurityID, Side, OrderQty, Price) of a
        #: new order, (ClOrdID, OrigClOrdID) of a replace, so that it can be rebuilt afterwards
        self.sends: list[tuple[int, ...]] = []
        #: ExecIDs of the ExecutionReports the SDK's tracker applied (observed, not changed)
        self.applied: set[int] = set()
        tracker = client.orders
        execute = tracker._execution

        def observed(er: Any) -> None:
            self.applied.add(int(er["ExecID"]))
            execute(er)

        tracker._execution = observed  # type: ignore[method-assign]
        #: (attempt, FromExecID, Count) of each RetransmitRequest the SDK sent (observed, not changed)
        self.requests: list[tuple[int, int, int]] = []
        request = client.request_retransmit

        def requested(from_exec_id: int, count: int) -> None:
            self.requests.append((self.attempt, from_exec_id, count))
            request(from_exec_id, count)

        client.request_retransmit = requested  # type: ignore[method-assign]
        self.load_stopped = threading.Event()
        self.converged = threading.Event()
        self._last_hb = -1
        self._quiet_rounds = 0
        #: open orders this client may cancel or replace (refreshed from the reports)
        self._open: dict[int, OrderState] = {}

    def run(self) -> None:
        try:
            self._loop()
        except BaseException:
            self.error = traceback.format_exc()
        finally:
            with contextlib.suppress(ClientError):
                self.client.close()

    def _loop(self) -> None:
        shared, c = self.shared, self.client
        next_hb = 0.0
        while not shared.done.is_set():
            if not c.connected:
                if not shared.up.wait(0.1):
                    continue
                if not shared.stop_load.is_set():
                    # clients come back at different times, so some miss reports while away
                    time.sleep(self.rng.uniform(0.0, 0.15))
                # a connect to a dead port is not retried by the socket: it would sit out its timeout
                if shared.up.is_set():
                    self._connect()
                continue
            try:
                if shared.converge.is_set():
                    if time.monotonic() >= next_hb:
                        c.heartbeat()
                        c.flush()
                        next_hb = time.monotonic() + 0.2
                    self._take(c.poll_raw(0.05))
                    continue
                if shared.stop_load.is_set():
                    self._take(c.poll_raw(0.02))
                    self.load_stopped.set()
                    continue
                self._send_some()
                self.sent_life = self.conn_life
                self._take(c.poll_raw(0.004))
            except ClientError:
                pass  # the server went away; the loop reconnects once one listens again

    def _connect(self) -> None:
        c = self.client
        life = self.shared.life
        before = c.orders.last_exec_id
        c.close()  # the dead connection's socket
        self.attempt += 1
        try:
            c.connect(timeout=5.0)
        except ClientError:
            return
        self.conn_life = life
        self.connects += 1
        self.connect_log.append((self.attempt, life, before, c.server_last_exec_id))
        if c.server_last_exec_id > before:
            self.retransmissions += 1
        # the Heartbeat read by connect() is still in the inbox: the next poll checks it

    def _send_some(self) -> None:
        c, rng = self.client, self.rng
        for _ in range(rng.randint(1, 8)):
            r = rng.random()
            if self._open and (r < 0.3 or len(self._open) > MAX_OPEN):
                oid = rng.choice(list(self._open))
                order = self._open[oid]
                if not order.is_open or order.order_id != oid:
                    del self._open[oid]
                    continue
                side = "buy" if order.side == codes.SIDE_BUY else "sell"
                if r < 0.2 or len(self._open) > MAX_OPEN:
                    c.cancel(security_id=SECURITY_ID, side=side, order_id=oid)
                else:
                    cl = c.replace(
                        orig_cl_ord_id=order.cl_ord_id,
                        security_id=SECURITY_ID,
                        side=side,
                        qty=order.cum_qty + rng.randint(1, 20),
                        price=self._price(side),
                        tif="gtc",
                    )
                    self.sends.append((cl, order.cl_ord_id))
            else:
                side = rng.choice(("buy", "sell"))
                cl = c.new_order(
                    security_id=SECURITY_ID, side=side, qty=rng.randint(1, 20), price=self._price(side), tif="gtc"
                )
                new = c.orders.by_clordid[cl]
                self.sends.append((cl, new.security_id, new.side, new.order_qty, new.price_p9))
        c.flush()

    def _price(self, side: str) -> Decimal:
        # the two sides overlap by a few ticks, so some orders cross and trade
        off = self.rng.randint(-8, 3) if side == "buy" else self.rng.randint(-3, 8)
        return Decimal(REF_TICKS + off).scaleb(-2)

    def _take(self, msgs: np.ndarray[Any, Any]) -> None:
        if not msgs.size:
            return
        tids = _tids(msgs)
        ids = _exec_ids(msgs, tids)
        seq = np.isin(tids, _SEQUENCED)
        clordids = np.where(seq, _u64(msgs, _CLORDID), np.uint64(0))
        for row in msgs[tids == codes.TEMPLATE_RETRANSMIT_COMPLETE]:
            rc = row.view(schema.RETRANSMIT_COMPLETE)[0]
            self.completes.append(
                tuple(int(rc[f]) for f in ("FromExecID", "Count", "RetransmitStatus", "SentCount", "LastExecID"))
            )
        heartbeats = np.flatnonzero(tids == codes.TEMPLATE_HEARTBEAT).tolist()
        for i in heartbeats:
            # what arrived before this Heartbeat (in this or an earlier poll) must be covered by it
            seen_exec = max(self.max_exec_id, int(ids[:i].max(initial=0)))
            seen_cl = max(self.max_clordid, int(clordids[:i].max(initial=0)))
            last_exec = int(_u64(msgs[i : i + 1], _HB_EXEC_ID)[0])
            last_cl = int(_u64(msgs[i : i + 1], _HB_CLORDID)[0])
            if last_exec < seen_exec or last_cl < seen_cl:
                self.problems.append(
                    f"life {self.conn_life}: Heartbeat says LastExecID {last_exec}, LastClOrdID {last_cl}, but the "
                    f"client already holds ExecID {seen_exec} and an acknowledged ClOrdID {seen_cl}"
                )
            self._last_hb = last_exec
        for i in np.flatnonzero(seq).tolist():
            eid = int(ids[i])
            raw = msgs[i].tobytes()
            old = self.received.setdefault(eid, raw)
            if old != raw:
                self.problems.append(f"ExecID {eid} arrived twice with different bytes: {old.hex()} / {raw.hex()}")
        self.max_exec_id = max(self.max_exec_id, int(ids.max()))
        self.max_clordid = max(self.max_clordid, int(clordids.max()))
        by_oid = self.client.orders.by_order_id
        for er in _reports(msgs):
            oid = int(er["OrderID"])
            order = by_oid.get(oid)
            if order is not None and order.is_open:
                self._open[oid] = order
            else:
                self._open.pop(oid, None)
        if heartbeats and self.shared.converge.is_set():
            # two Heartbeats in a row that name nothing this client lacks: caught up
            caught_up = self._last_hb == self.max_exec_id == self.client.orders.last_exec_id
            self._quiet_rounds = self._quiet_rounds + 1 if caught_up else 0
            if self._quiet_rounds >= 2:
                self.converged.set()


# ------------------------------------------------------------------------------ replay
@dataclass
class Replayed:
    engine: Engine
    sessions: dict[bytes, int]  #: client key id -> SessionID
    reports: dict[int, np.ndarray[Any, Any]]  #: SessionID -> (n, 60) messages addressed to it, in order
    md_trade_qty: int
    batches: int
    orders: int


def _replay(journal_dir: Path, config_path: Path) -> Replayed:
    """The journal from its first record into a fresh engine, as ``qfix journal replay`` does,
    keeping what the engine addressed to each session."""
    segments = list_segments(journal_dir)
    # periodic checkpoints prune only whole segments; with one segment the journal is complete
    assert segments and segments[0].first_seq == 1, f"the journal does not start at sequence 1: {segments}"
    config = load_config(config_path)
    engine = Engine(config.instruments, config.engine)
    driver = EngineDriver(engine)
    sessions: dict[bytes, int] = {}
    parts: dict[int, list[np.ndarray[Any, Any]]] = defaultdict(list)
    md_qty = [0]

    def dispatch(out: np.ndarray[Any, Any]) -> None:
        dest = out["dest"]
        msgs = out["message"]
        md = dest == MD_DEST
        md_msgs = msgs[md]
        trades = md_msgs[_tids(md_msgs) == codes.TEMPLATE_TRADE]
        md_qty[0] += int(np.ascontiguousarray(trades[:, _TRADE_QTY : _TRADE_QTY + 4]).view("<u4").sum())
        for sid in np.unique(dest[~md]).tolist():
            parts[int(sid)].append(msgs[dest == sid].copy())

    torn: list[Any] = []
    batches = orders = 0
    for _seq, kind, payload in read_journal(journal_dir, 0, torn=torn):
        entry = decode(kind, payload)
        if isinstance(entry, OpenSession):
            sessions[entry.kid] = entry.session_id
        elif is_engine_entry(entry):
            with contextlib.suppress(*REFUSED):
                driver.apply(entry, dispatch)
            records = getattr(entry, "records", None)
            if records is not None:
                batches += 1
                orders += int(records.size)
    assert not torn, f"a torn tail after a clean shutdown: {torn}"
    reports = {sid: np.concatenate(p) for sid, p in parts.items()}
    return Replayed(engine, sessions, reports, md_qty[0], batches, orders)


# ------------------------------------------------------------------------------ the test
def _write_config(home: Path, tmp: Path) -> tuple[Path, Path]:
    default = tomllib.loads((home / "qfix.toml").read_text())
    journal = tmp / "journal"
    config = home / "crash.toml"
    config.write_text(
        f"""\
[server]
host = "127.0.0.1"
fix_port = {_free_port()}
md_port = {_free_port()}
status_interval = 0
cancel_on_disconnect = false     # resting orders outlive their session's connection (and the crash)
handshake_workers = 0            # no helper process to spawn on each of the many starts
end_of_day = ""                  # no expiry in the middle of a run

[keys]
server_key = "server.key"
allow_list = "allow.toml"
admin_kids = {json.dumps(default["keys"]["admin_kids"])}

[journal]
dir = "{journal}"
durability = "fsync"
checkpoint_every_messages = 500  # checkpoints land between crashes: recovery starts from them
checkpoint_every_s = 0

[engine]
max_orders = 65536
max_levels = 16384
max_sessions = 16

[[instrument]]
security_id = {SECURITY_ID}
symbol = "BTC-USD"
tick = "0.01"
ref = "65000.00"
band_bps = 1000
max_order_qty = 1000
"""
    )
    return config, journal


def _wait(what: str, predicate: Any, traders: list[Trader], server: ServerProcess) -> None:
    deadline = time.monotonic() + WAIT_S
    while not predicate():
        for t in traders:
            assert not t.error, f"trader {t.n} failed:\n{t.error}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}; server log:\n{server.tail()}"
        time.sleep(0.01)


@dataclass
class Run:
    """What a crash run leaves for the checks."""

    home: Path
    config: Path
    journal: Path
    server: ServerProcess
    traders: list[Trader]
    status: dict[str, Any]  #: the live server's admin status after the clients converged
    kills: int
    seconds: float


def _crash_run(tmp_path: Path, kills: int, seed: int) -> Run:
    home = tmp_path / "home"
    ensure_default_setup(home)
    config, journal = _write_config(home, tmp_path)
    logs = tmp_path / "logs"
    logs.mkdir()
    server = ServerProcess(config, logs)
    endpoint = f"tcp://127.0.0.1:{tomllib.loads(config.read_text())['server']['fix_port']}"
    rng = random.Random(seed)
    shared = Shared()
    # The clients get a zmq context of their own, destroyed at the end: after this test,
    # two clean-clone CI runs saw every later in-process server in the same pytest
    # process leave handshakes unanswered, and a run without this test did not. Whatever
    # its many killed connections leave in libzmq must not reach other tests.
    context = zmq.Context()
    traders = [
        Trader(
            n,
            Client.from_files(endpoint, home / f"client-{n}.key", home / "server.key.pub", context=context),
            shared,
            rng.randrange(2**32),
        )
        for n in range(1, TRADERS + 1)
    ]
    started = time.monotonic()
    try:
        for t in traders:
            t.start()
        for life in range(kills + 1):
            shared.life = life
            server.start()
            shared.up.set()
            if life == kills:
                break
            if rng.random() < 0.25:
                # early: during handshakes, retransmissions and the first batches
                time.sleep(rng.uniform(0.0, 0.4))
            else:
                _wait(
                    f"every trader to send in life {life}",
                    lambda: all(t.sent_life == life for t in traders),  # noqa: B023
                    traders,
                    server,
                )
                time.sleep(rng.uniform(0.02, 0.5))
            shared.up.clear()
            server.kill()
        # the last life: trade a little, then stop sending and let everyone catch up
        _wait(
            "every trader to send after the last restart",
            lambda: all(t.sent_life == kills for t in traders),
            traders,
            server,
        )
        time.sleep(0.3)
        shared.stop_load.set()
        _wait("every trader to stop sending", lambda: all(t.load_stopped.is_set() for t in traders), traders, server)
        shared.converge.set()
        _wait("the clients to converge", lambda: all(t.converged.is_set() for t in traders), traders, server)
        admin = Client.from_files(endpoint, home / "admin.key", home / "server.key.pub", context=context)
        admin.connect(timeout=10.0)
        status = admin.admin("status")["status"]
        admin.close()
        shared.done.set()
        for t in traders:
            t.join(30)
            assert not t.is_alive(), f"trader {t.n} did not stop"
            assert not t.error, f"trader {t.n} failed:\n{t.error}"
        server.terminate()
    finally:
        shared.done.set()
        shared.up.set()
        server.kill()
        for t in traders:
            t.join(10)
        context.destroy(linger=0)
    return Run(home, config, journal, server, traders, status, kills, time.monotonic() - started)


def _rebuilt(sends: list[tuple[int, ...]], reports: list[bytes]) -> OrderTracker:
    """A fresh tracker told of every order the trader sent, then given ``reports`` in ExecID order."""
    tracker = OrderTracker()
    for sent in sends:
        if len(sent) == 5:
            tracker.sent_new(*sent)
        else:
            tracker.sent_replace(*sent)
    if reports:
        tracker.apply(np.frombuffer(b"".join(reports), np.uint8).reshape(-1, 60))
    return tracker


def _snapshot(tracker: OrderTracker) -> tuple[Any, ...]:
    orders = {
        oid: (o.cl_ord_id, o.leaves_qty, o.cum_qty, o.status, o.last_exec_id) for oid, o in tracker.by_order_id.items()
    }
    return tracker.fills, tracker.filled_qty, orders


def _check(run: Run) -> None:
    home, journal, server, traders, status = run.home, run.journal, run.server, run.traders, run.status
    # the state hash the live server reached equals a replay in a fresh process...
    res = subprocess.run(
        [*QFIX, "journal", "replay", str(journal), "--config", str(run.config), "--json"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr
    offline = json.loads(res.stdout)
    assert offline["from_seq"] == 0, offline
    assert offline["last_seq"] == status["journal_seq"], (offline, status)
    assert offline["state_hash"] == status["state_hash"], (offline, status)
    # ... and one here, which also says what the engine addressed to each session
    rep = _replay(journal, run.config)
    assert rep.engine.state_hash().hex() == status["state_hash"]
    assert rep.engine.resting_orders == status["resting_orders"]

    live = rep.engine.live_orders()
    all_trade_qty = 0
    for t in traders:
        assert not t.problems, f"trader {t.n}: {len(t.problems)} problem(s), first: {t.problems[:5]}"
        sid = rep.sessions[load_private_key(home / f"client-{t.n}.key").kid]
        msgs = rep.reports.get(sid, np.zeros((0, 60), np.uint8))
        tids = _tids(msgs)
        seq = np.isin(tids, _SEQUENCED)
        ids = _exec_ids(msgs, tids)[seq]
        assert (np.diff(ids.astype(np.int64)) > 0).all(), f"session {sid}: ExecIDs not strictly increasing"
        journaled = dict(zip(ids.tolist(), (m.tobytes() for m in msgs[seq]), strict=True))
        ers = _reports(msgs)
        fills = ers[ers["ExecType"] == codes.EXEC_TYPE_TRADE]
        all_trade_qty += int(fills["LastQty"].sum())
        assert t.client.orders.last_exec_id == int(ids.max(initial=0)), f"trader {t.n} did not catch up"

        # nothing acknowledged is missing from the journal, or different there
        lost = sorted(set(t.received) - set(journaled))
        assert not lost, f"trader {t.n}: {len(lost)} report(s) received but absent from the journal: {lost[:10]}"
        differ = [e for e in t.received if journaled[e] != t.received[e]]
        assert not differ, f"trader {t.n}: reports whose bytes differ from the replay's: {differ[:10]}"

        # everything journaled reached the client, live or by retransmission
        unseen = sorted(set(journaled) - set(t.received))
        diagnosis = (
            f"(attempt, life, last ExecID held, the server's LastExecID) of its connects: {t.connect_log}; "
            f"(attempt, FromExecID, Count) of its RetransmitRequests: {t.requests}; "
            f"(FromExecID, Count, status, SentCount, LastExecID) of the answers: {t.completes}"
        )
        assert not unseen, f"trader {t.n}: {len(unseen)} journaled report(s) never received: {unseen[:10]}; {diagnosis}"

        # every acknowledged order is where the client's reports say: resting with the same
        # leaves and cum, or gone in a terminal state
        full = _rebuilt(t.sends, [t.received[e] for e in sorted(t.received)])
        assert (full.fills, full.filled_qty) == (fills.size, int(fills["LastQty"].sum())), f"trader {t.n}"
        last_er: dict[int, Any] = {}
        for er in ers[ers["OrderID"] != codes.NULL_U64]:
            last_er[int(er["OrderID"])] = er
        resting = {int(o["order_id"]): o for o in live[live["session"] == sid]}
        for oid, order in full.by_order_id.items():
            er = last_er.get(oid)
            assert er is not None, f"trader {t.n}: order {oid} acknowledged, absent from the journal"
            assert order.last_exec_id == int(er["ExecID"]), (t.n, oid, order)
            assert order.leaves_qty == int(er["LeavesQty"]), (t.n, oid, order)
            assert order.is_open == (int(er["OrdStatus"]) in _OPEN_STATUS), (t.n, oid, order)
            if order.is_open:
                row = resting.get(oid)
                assert row is not None, f"trader {t.n}: open order {oid} is not resting after recovery: {order}"
                assert (order.leaves_qty, order.cum_qty) == (int(row["leaves"]), int(row["cum"])), (t.n, order)
            else:
                assert oid not in resting, f"trader {t.n}: order {oid} is {order.status} but rests: {order}"
        missing = sorted(set(resting) - set(full.by_order_id))
        assert not missing, f"trader {t.n}: resting orders the client never saw acknowledged: {missing[:10]}"

        # the SDK's own tracker: every report it received applied once, and only once
        received_ers = _reports(np.frombuffer(b"".join(t.received.values()), np.uint8).reshape(-1, 60))
        dropped = sorted({int(e) for e in received_ers["ExecID"]} - t.applied)
        assert not dropped, f"trader {t.n}'s tracker never applied {len(dropped)} report(s) it received: {dropped[:5]}"
        assert _snapshot(t.client.orders) == _snapshot(full), f"trader {t.n}: the SDK tracker disagrees"

    # both sides of every fill, and the market data's trades, count the same quantity
    assert all_trade_qty == 2 * rep.md_trade_qty
    # a run that never traded, or in which no client ever lacked a report, would prove little
    assert rep.md_trade_qty > 0
    assert sum(t.retransmissions for t in traders) > 0, "no client ever needed a retransmission"
    torn = sum("torn final write" in text for text in server.texts)
    print(
        f"\ncrash test: {run.kills} kills, {server.lives} starts in {run.seconds:.1f} s; "
        f"journal {rep.batches} batches, {rep.orders} orders, {rep.md_trade_qty} lots traded, "
        f"{rep.engine.resting_orders} resting; {torn} torn tails cut; connects {[t.connects for t in traders]}, "
        f"with retransmission {[t.retransmissions for t in traders]}"
    )


def test_acknowledged_state_survives_sigkill(tmp_path: Path) -> None:
    _check(_crash_run(tmp_path, DEFAULT_KILLS, seed=20261203))


@pytest.mark.slow
def test_acknowledged_state_survives_a_hundred_sigkills(tmp_path: Path) -> None:
    _check(_crash_run(tmp_path, SLOW_KILLS, seed=20261204))
