"""``qfix bench net``: a server and N client processes on loopback (issue 9).

Theory of operation. The parent process orchestrates and measures little itself:

1. **Workload.** ENGINE.md §10's ``multi`` workload (10,000 instruments): with
   ``--quick`` the saved quick stream that ``qfix bench engine`` replays; the full run
   draws the same generator (seed 1) to :data:`FULL_MESSAGES` messages, because
   5,000,000 do not last through the throughput windows and the latency phase. The
   stream is generated once and saved; the document names the file and its BLAKE2b.
   It is split over the clients by workload session (client 0, which also runs the
   latency and flood sessions, takes the first sessions, as many as it needs; the
   others share the rest round-robin), so every order a message refers to was sent
   earlier by the same client. ClOrdIDs are renumbered per client (strictly
   increasing, as stage S requires); replaces keep their OrigClOrdID reference,
   renumbered; cancels, which the generator addressed by the engine's OrderID
   (different once N clients interleave), are rewritten to address the order by its
   current ClOrdID, found once by an untimed engine run over the stream (cached beside
   it). Account stays null (the session's own).
2. **Server.** One process runs :class:`qfix.server.Server` with the workload's
   instruments, no journal (durability ``none``; but see 6), cancel-on-disconnect off,
   no end of the trading day, market data on (but see 7), every port ephemeral.
   Its loop is the server's own ``run_once``; between batches it answers the parent on
   a pipe. ``Engine.process`` is wrapped to keep every batch it is given (and what it
   consumed), so that the engine alone can later replay *the same orders in the same
   batches*; the batches are written to a file between phases, never during one. A
   plain ZeroMQ ROUTER in the same process echoes frames back for the plaintext ceiling
   and the ping-pong, while the QZMQ loop is paused. Every process comes from a
   ``forkserver`` that imported the heavy modules once.
3. **Clients.** N processes, each a :class:`qfix.client.Client` on the fast path
   (pre-encoded frames, ``send_frame`` / ``poll_raw``; its order tracker is replaced by
   a no-op: the SDK applies every report in a per-message Python loop). An order is
   *acknowledged* when its client receives the first report that carries its ClOrdID
   (ExecutionReport, OrderCancelReject, or a BusinessMessageReject, counted apart as
   refused); at the end every order sent must have exactly one first outcome; the
   shortfall is reported as ``reconcile.missing_orders``.
4. **Phases.** Prefill (the workload's 500,000 resting orders, untimed); throughput (a
   1 s warm-up, then timed windows, every client keeping ``window`` records of
   ``batch`` orders in flight); the plaintext ceiling (the same frames from the same
   processes through plain DEALER->ROUTER sockets, echoed back); a plaintext ping-pong
   (one 60-byte message); round trips at fixed offered rates from one session (the
   schedule is fixed in advance, what is due leaves once per tick (``--tick-us``, 100 us), and latency runs
   from each order's *scheduled* send time, so a stall is charged to every order it
   delays: no coordinated omission); a CLIENT_HELLO flood (below); then the engine alone
   replays the recorded batches in the parent, after every other process has ended,
   timed over the batches of the throughput windows only (in thread CPU time, so that
   other jobs on a shared machine do not slow the baseline; wall time beside); its
   final state hash must equal the server's.
5. **Flood.** Client 0's session measures RTT at a low fixed rate, first quiet, then
   while another process sends CLIENT_HELLOs (from a key the server does not know)
   over many loopback connections (source addresses 127.0.0.2-201; bounded in count and
   time). Meanwhile the parent times handshakes of allow-listed clients and samples
   the server's VmRSS from /proc.
6. **Durability.** Without ``--durability`` the server has no journal (as before the
   journal existed, so documents stay comparable; ``"durability": "none"``). With
   ``--durability fsync,none`` each mode gets its own server (with a journal in that mode
   in a temporary directory under ``--journal-dir``, on the disk, never the system's
   temporary folder, and market data off: that comparison is about the journal alone,
   as in the documents before market data) and its own N clients, all started up front
   (the servers initialise together; each server's clients start once it is up). Every server is
   prefilled; then the warm-up windows, and the timed windows take turns (fsync 1, none 1,
   fsync 2, ...), so that a drift of the shared machine falls on every mode alike. The
   servers after the first then stop, and the other phases (plaintext, ping-pong,
   latency, flood, engine alone) run on the first mode's server only, so the mode whose
   round trips matter goes first. Each server's clients send the same stream. Every result
   name is prefixed by the mode of the server that produced it (``fsync.orders_per_s``,
   ``fsync.rtt.p50_us@10000``, ``none.orders_per_s``, ...), and ``<mode>_over_none`` is
   the ratio of orders/s medians when ``none`` is among the modes. The servers keep the
   configuration's checkpoint settings (``journal`` in the document).
7. **Market data** (``--md``, the default, without ``--durability``). The same machinery
   with two servers: ``md`` publishes market data (the product's default configuration)
   and ``nomd`` has ``md_enabled`` off; each has its own N clients sending the same
   stream, and their windows take turns (md 1, nomd 1, md 2, ...). One more process, the
   subscriber (:class:`_Follower`), runs the SDK's ``SubscriberCore`` on all four feeds
   of every instrument of the ``md`` server, joining with a snapshot of each feed while
   the clients connect and following the prefill live. The names of the ``md`` server stay
   unprefixed (every later phase runs on it); the ``nomd`` server's window figures are
   added as ``md.off.*``, and ``md.on_over_off`` is the ratio of acknowledged orders/s
   medians. ``md.records_per_s``, ``md.packets_per_s`` and ``md.gbps`` are what the
   ``md`` server's PUB sent in its windows (counters in the server process, rated like the
   other server figures). The subscriber notes, for every live packet it applies at once,
   ``time.time_ns()`` after ``feed_message`` minus the packet's SendingTime (the server's
   wall clock when it publishes an engine call's market data: publish to applied);
   ``md.lag_p{50,99,999}_us`` are the medians of per-window percentiles
   (HdrHistogram) over packets sent in the ``md`` windows; a packet held back behind a gap is
   counted, not timed. After every ``md`` window (untimed) the parent waits, up to
   :data:`_MD_SYNC_S`, until the subscriber has received every ChannelSeqNum the server
   published and has no gap open (``md.catchup_s``; 0 means it kept up), so that no
   ``nomd`` window runs beside a subscriber catching up; the subscriber's CPU is read from
   /proc around every window (``md.subscriber_cores``; the ``nomd`` windows' are in the
   document). After the windows the subscriber gets one last such wait; then the server
   digests the engine's books and the subscriber its own (``qfix.testing.marketdata``:
   one BLAKE2b per instrument of L3 orders in queue order, L2 levels, BBO and status), the
   parent compares them (``md.books_equal``; ``md.unrecovered_gaps`` is what is still open)
   and the subscriber ends before the other phases. ``--no-md``: one server, market data
   off. On a machine with fewer cores than processes the subscriber's CPU comes out of
   the same cores as the ``md`` server's and its clients', so ``md.on_over_off`` charges
   the subscriber too; ``md.off.cpu.server_cores`` beside ``cpu.server_cores`` shows the
   publisher's own cost.

The stream is consumed once, in order: the latency and flood phases reserve their
messages first; the throughput windows share the rest. A client that runs out of its
share before a window's end shortens that window to the moment it had every order
answered (acknowledgements are binned every 10 ms). Server-side figures (messages,
bytes, trades, CPU) are taken per matched order over the whole window and multiplied
by the acknowledged rate, so they stay exact for a shortened window.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import multiprocessing as mp
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Final

import click
import numpy as np
import numpy.typing as npt
import zmq

from qfix.bench import _common
from qfix.crypto.keys import SigningKey, render_allow_entry, write_private_key
from qfix.crypto.primitives import SignatureAlg
from qfix.errors import BenchmarkError
from qfix.wire import codes, schema

__all__ = ["STEPS", "Sizes", "command", "parse_durability", "run", "sizes_for"]

log = logging.getLogger(__name__)

Array = npt.NDArray[Any]

_MSG: Final = codes.MESSAGE_SIZE
_FRAME_MAX: Final = codes.MAX_MSGS_PER_FRAME
_BIN_S: Final = 0.01  #: acknowledgement bins of the throughput windows
_T_ER: Final = codes.TEMPLATE_EXECUTION_REPORT
_T_OCR: Final = codes.TEMPLATE_ORDER_CANCEL_REJECT
_T_BMR: Final = codes.TEMPLATE_BUSINESS_MESSAGE_REJECT
_ER_NEW: Final = codes.EXEC_TYPE_NEW
_ER_REPLACED: Final = codes.EXEC_TYPE_REPLACED
_ACCOUNT_BASE: Final = 7000  #: client i trades as account 7000 + i (allow-list)
_DRAIN_S: Final = 20.0  #: longest wait for the outcomes of what was sent
#: a paced client sends what is due once per tick (``--tick-us``); finer ticks cost the
#: client a loop pass each, coarser ones are charged to every order (half a tick on average)
DEFAULT_TICK_US: Final = 100

# message byte offsets (header 8 + block offset; WIRE.md §3)
_CLORDID: Final = slice(8, 16)
_ORIG_CLORDID: Final = slice(24, 32)  #: templates 2 and 3
_CANCEL_ORDER_ID: Final = slice(32, 40)  #: template 2
_ER_ORDER_ID: Final = slice(24, 32)
_ER_EXEC_TYPE: Final = 56
_MD_SLOTS: Final = 5  #: md_last holds one ChannelSeqNum per MDFeed code (1-4; 0 unused)
_MD_HEADER: Final = 16  #: a feed packet's header frame (ChannelSeqNum, SendingTime)
_LAG_CAP: Final = 50_000_000  #: live packets whose lag the subscriber keeps (16 bytes each)
_MD_SYNC_S: Final = 30.0  #: longest wait for the subscriber to apply what was published
_MD_JOIN_S: Final = 120.0  #: longest wait for its first snapshots (while the clients connect)


@dataclass(frozen=True)
class Sizes:
    """What one run does; ``--quick`` and the test knobs only change these."""

    clients: int
    seconds: float  #: total length of the timed throughput windows
    batch: int  #: orders per record in the throughput and plaintext phases
    window: int  #: records in flight per client
    repeats: int
    rates: tuple[int, ...]  #: offered orders/s (all clients together) for the latency phase
    rate_seconds: float  #: one timed latency window
    plain_seconds: float
    pings: int
    flood_quiet_seconds: float
    flood_seconds: float
    flood_rate: int  #: CLIENT_HELLOs per second offered, evenly, for the whole flood round
    flood_connections: int
    known_handshakes: int  #: allow-listed handshakes timed per flood round (at most)
    flood_rtt_rate: int = 2_000  #: orders/s of the session whose RTT is measured around the flood
    tick_s: float = DEFAULT_TICK_US / 1e6  #: a paced session sends what is due once per tick
    pq_only: bool = False
    #: test knobs: a smaller multi stream (instruments, messages), generated on the fly
    instruments: int | None = None
    messages: int | None = None


#: messages of the full run's multi stream: ENGINE.md's 5,000,000 last about 15 s at the
#: rates measured here, less than the 30 s of throughput windows plus the latency phase
FULL_MESSAGES: Final = 15_000_000


def sizes_for(clients: int, seconds: float, quick: bool, pq_only: bool = False) -> Sizes:
    """The sizes of a full or ``--quick`` run."""
    if quick:
        return Sizes(
            clients=clients, seconds=min(seconds, 6.0), batch=1000, window=4, repeats=3,
            rates=(10_000, 100_000), rate_seconds=0.3, plain_seconds=0.5, pings=1000,
            flood_quiet_seconds=0.5, flood_seconds=2.0, flood_rate=10_000, flood_connections=100,
            known_handshakes=3, flood_rtt_rate=500, pq_only=pq_only,
        )  # fmt: skip
    return Sizes(
        clients=clients, seconds=seconds, batch=1000, window=4, repeats=5,
        rates=(10_000, 50_000, 100_000, 200_000), rate_seconds=0.5, plain_seconds=2.0, pings=3000,
        flood_quiet_seconds=1.5, flood_seconds=4.0, flood_rate=20_000, flood_connections=200,
        known_handshakes=5, pq_only=pq_only, messages=FULL_MESSAGES,
    )  # fmt: skip


#: the smoke test's durations (every phase runs, briefly)
_SMOKE: Final[dict[str, Any]] = {
    "seconds": 1.5, "rate_seconds": 0.05, "flood_rtt_rate": 500, "plain_seconds": 0.3, "pings": 100,
    "flood_quiet_seconds": 0.3, "flood_seconds": 1.2, "flood_rate": 500, "flood_connections": 10,
    "known_handshakes": 1,
}  # fmt: skip


def parse_durability(text: str | None) -> tuple[str, ...]:
    """The modes of ``--durability`` ("fsync,none"), in order; () without the option."""
    if text is None:
        return ()
    from qfix.journal import DURABILITY_MODES

    modes = tuple(m.strip() for m in text.split(","))
    for m in modes:
        if m not in DURABILITY_MODES:
            known = ", ".join(DURABILITY_MODES)
            raise click.BadParameter(f"{m!r}; use one or more of {known}", param_hint="--durability")
    if len(set(modes)) != len(modes):
        raise click.BadParameter(f"{text!r} names a mode twice", param_hint="--durability")
    return modes


# --- keys ---------------------------------------------------------------------------------


def _server_key() -> SigningKey:
    return SigningKey.from_seed(SignatureAlg.ML_DSA_65, b"\x51" * 32)


def _client_key(i: int) -> SigningKey:
    """Client ``i`` (the known flood clients follow the N order-entry clients)."""
    return SigningKey.from_seed(SignatureAlg.ML_DSA_65, (i + 1).to_bytes(4, "big") * 8)


def _stranger_key() -> SigningKey:
    """Not on the allow-list: the flood's CLIENT_HELLOs."""
    return SigningKey.from_seed(SignatureAlg.ML_DSA_65, b"\xee" * 32)


# --- workload -------------------------------------------------------------------------------


def _tids(msgs: Array) -> Array:
    return np.ascontiguousarray(msgs[:, 2:4]).view("<u2").ravel()


def _u64(msgs: Array, where: slice) -> Array:
    return np.ascontiguousarray(msgs[:, where]).view("<u8").ravel()


def _set_u64(msgs: Array, rows: Array, where: slice, values: Array) -> None:
    msgs[rows, where] = np.ascontiguousarray(values, dtype="<u8").view(np.uint8).reshape(-1, 8)


def _instruments(count: int) -> tuple[Any, ...]:
    from qfix.testing import generators as gen

    # the workload's quantities are at most 100: a low max_order_qty keeps the server's
    # worst-case output bound (ENGINE.md §2.4) small
    return tuple(dataclasses.replace(gen._wl_instrument(s), max_order_qty=10_000) for s in range(1, count + 1))


def _load_stream(sizes: Sizes, quick: bool, streams: Path) -> tuple[Array, int, Path, str]:
    """(records, prefill, file, digest): the saved multi stream (generated once)."""
    from qfix.bench import engine as engine_bench
    from qfix.testing import generators as gen

    if sizes.instruments is None and sizes.messages is None:
        return engine_bench._stream("multi", quick, streams)
    count = sizes.instruments or 10_000
    path = streams / f"multi-i{count}-n{sizes.messages}-seed1.qfs"
    prefill_file = path.with_suffix(".prefill")
    if not path.exists() or not prefill_file.exists():
        from qfix.engine import Engine, EngineConfig

        streams.mkdir(parents=True, exist_ok=True)
        insts = tuple(gen._wl_instrument(s) for s in range(1, count + 1))
        wl = gen.multi(quick=True, n=sizes.messages, instruments=count, engine=Engine(insts, EngineConfig()))
        gen.save_stream(path, wl.records)
        prefill_file.write_text(f"{wl.prefill}\n", encoding="ascii")
    prefill = int(prefill_file.read_text(encoding="ascii"))
    return gen.load_stream(path), prefill, path, gen.stream_digest(path)


def _cancel_origins(records: Array, instruments: int, cache: Path) -> Array:
    """For each OrderCancelRequest of the stream (in order), the workload ClOrdID that
    the order it cancels carried at that moment (from an untimed engine run)."""
    if cache.exists():
        cached: Array = np.load(cache)
        return cached
    from qfix.engine import OUTPUT_FULL, Engine, EngineConfig, output_buffer

    eng = Engine(_instruments(instruments), EngineConfig(max_instruments=max(1, instruments)))
    out = output_buffer(1 << 16)
    ids: list[Array] = []
    cls: list[Array] = []
    i = 0
    while i < len(records):
        res = eng.process(records[i : i + 4096], out)
        i += res.consumed
        part = out[: res.written]
        msgs = part["message"]
        ers = msgs[_tids(msgs) == _T_ER]
        kind = ers[:, _ER_EXEC_TYPE]
        keep = ers[(kind == _ER_NEW) | (kind == _ER_REPLACED)]
        ids.append(_u64(keep, _ER_ORDER_ID))
        cls.append(_u64(keep, _CLORDID))
        if res.status == OUTPUT_FULL and res.consumed == 0 and res.written == 0:
            out = output_buffer(max(2 * len(out), res.needed))
    order_ids = np.concatenate(ids)
    clordids = np.concatenate(cls)
    # the last New/Replaced report of an OrderID carries its ClOrdID until it ends
    rev_ids = order_ids[::-1]
    uniq, first = np.unique(rev_ids, return_index=True)
    last_cl = clordids[::-1][first]
    msgs = records["message"]
    cancels = msgs[_tids(msgs) == codes.TEMPLATE_ORDER_CANCEL_REQUEST]
    wanted = _u64(cancels, _CANCEL_ORDER_ID)
    at = np.searchsorted(uniq, wanted)
    if np.any(at >= uniq.size) or np.any(uniq[np.minimum(at, uniq.size - 1)] != wanted):
        raise BenchmarkError("multi stream: a cancel addresses an OrderID the engine never reported")
    origins = last_cl[at]
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.save(cache, origins)
    return origins


def _split(records: Array, prefill: int, clients: int, origins: Array, first_sessions: int) -> list[tuple[Array, int]]:
    """Per client: its (n, 60) messages in stream order, renumbered from ClOrdID 1, and
    how many of them belong to the prefill. Client 0 (which also runs the latency and
    flood sessions) takes workload sessions below ``first_sessions``; the others share
    the rest round-robin."""
    msgs = np.ascontiguousarray(records["message"])
    n = msgs.shape[0]
    session = records["SessionID"].astype(np.int64)
    if clients == 1:
        client = np.zeros(n, np.int64)
    else:
        client = np.where(session < first_sessions, 0, 1 + session % (clients - 1))
    order = np.argsort(client, kind="stable")
    counts = np.bincount(client, minlength=clients)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    rank = np.empty(n, np.int64)
    rank[order] = np.arange(n) - np.repeat(starts, counts)
    new_id = (rank + 1).astype(np.uint64)
    old_id = _u64(msgs, _CLORDID).astype(np.int64)
    keys = (session << 32) | old_id
    sorter = np.argsort(keys)
    sorted_keys = keys[sorter]

    def renumber(rows: Array, old: Array) -> Array:
        wanted = (session[rows] << 32) | old.astype(np.int64)
        at = np.searchsorted(sorted_keys, wanted)
        at = np.minimum(at, n - 1)
        if np.any(sorted_keys[at] != wanted):
            raise BenchmarkError("multi stream: a message refers to a ClOrdID its session never sent")
        found: Array = new_id[sorter[at]]
        return found

    tids = _tids(msgs)
    rep = np.flatnonzero(tids == codes.TEMPLATE_ORDER_CANCEL_REPLACE_REQUEST)
    can = np.flatnonzero(tids == codes.TEMPLATE_ORDER_CANCEL_REQUEST)
    if can.size != origins.size:
        raise BenchmarkError("multi stream: the cached cancel origins do not fit the stream; delete the cache")
    rep_orig = renumber(rep, _u64(msgs[rep], _ORIG_CLORDID))
    can_orig = renumber(can, origins)
    _set_u64(msgs, rep, _ORIG_CLORDID, rep_orig)
    _set_u64(msgs, can, _ORIG_CLORDID, can_orig)
    _set_u64(msgs, can, _CANCEL_ORDER_ID, np.full(can.size, codes.NULL_U64, np.uint64))
    _set_u64(msgs, np.arange(n), _CLORDID, new_id)
    pre = np.bincount(client[:prefill], minlength=clients)
    return [(msgs[order[starts[c] : starts[c] + counts[c]]], int(pre[c])) for c in range(clients)]


# --- the server process -------------------------------------------------------------------


def _rss_mib(pid: int) -> float:
    """VmRSS of ``pid`` in MiB (0 if it cannot be read)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _server_main(config: Any, ctl: Connection, record_path: str) -> None:
    """The server process: the real server loop, the batch recorder (off when
    ``record_path`` is empty), the echo socket."""
    logging.basicConfig(level=logging.WARNING)
    from qfix.server import Server

    server = Server(config)
    engine = server.engine
    original = engine.process
    pending: list[Array] = []
    marks: list[tuple[int, int]] = []  #: (records consumed, phase) per engine call
    phase = 0
    engine_ns = 0
    engine_cpu_ns = 0  #: the same in the loop thread's CPU time: what preemption does not inflate
    engine_orders = 0  #: records the engine ran through process() (the Python path)
    #: the same three for the compiled record path's calls (stages H and S, the engine, routing)
    path_ns = path_cpu_ns = path_orders = 0
    record = open(record_path, "wb") if record_path else None  # noqa: SIM115 - closed when the process ends

    def process(batch: Array, out: Array) -> Any:
        nonlocal engine_ns, engine_cpu_ns, engine_orders
        start, cpu_start = time.perf_counter_ns(), time.thread_time_ns()
        res = original(batch, out)
        engine_ns += time.perf_counter_ns() - start
        engine_cpu_ns += time.thread_time_ns() - cpu_start
        engine_orders += res.consumed
        if res.consumed and record is not None:
            pending.append(batch[: res.consumed])
            marks.append((res.consumed, phase))
        return res

    engine.process = process  # type: ignore[method-assign]

    path = server.record_path
    if path is not None:
        original_run, original_serve = path.run, path.serve

        def timed(call: Callable[..., Any], outcome_of: Callable[[Any], Any]) -> Callable[..., Any]:
            """``call`` with its time and its records counted (and recorded for the replay);
            a served pass's time includes its read of the socket."""

            def counted(*args: Any) -> Any:
                nonlocal path_ns, path_cpu_ns, path_orders
                start, cpu_start = time.perf_counter_ns(), time.thread_time_ns()
                result = call(*args)
                path_ns += time.perf_counter_ns() - start
                path_cpu_ns += time.thread_time_ns() - cpu_start
                outcome = outcome_of(result)
                if outcome is not None and outcome.consumed:
                    path_orders += outcome.consumed
                    if record is not None:
                        pending.append(outcome.ran.copy())
                        marks.append((outcome.consumed, phase))
                return result

            return counted

        path.run = timed(original_run, lambda outcome: outcome)  # type: ignore[method-assign]
        path.serve = timed(original_serve, lambda served: served.outcome)  # type: ignore[method-assign]

    def flush_records() -> None:
        if record is None:
            return
        if pending:
            np.concatenate(pending).tofile(record)
            pending.clear()
        record.flush()

    def snapshot() -> dict[str, Any]:
        t = dataclasses.asdict(server.metrics.totals)
        t.update(cpu=time.process_time(), engine_s=engine_ns / 1e9, engine_cpu_s=engine_cpu_ns / 1e9)
        t.update(engine_orders=engine_orders, path_orders=path_orders)
        t.update(path_s=path_ns / 1e9, path_cpu_s=path_cpu_ns / 1e9)
        t.update(t=time.monotonic())
        t.update(_md_counters(server))
        return t

    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context.instance()
    echo = ctx.socket(zmq.ROUTER)
    echo.setsockopt(zmq.LINGER, 0)
    echo.setsockopt(zmq.SNDHWM, 0)
    echo.setsockopt(zmq.RCVHWM, 0)
    echo.bind("tcp://127.0.0.1:*")
    md_pub, md_snap = server.md_endpoints if server.md is not None else ("", "")
    ctl.send((server.fix_endpoint, echo.getsockopt_string(zmq.LAST_ENDPOINT), os.getpid(), md_pub, md_snap))
    try:
        while True:
            server.run_once(2)
            if not ctl.poll():
                continue
            cmd = ctl.recv()
            if cmd[0] == "phase":
                flush_records()
                phase = cmd[1]
                ctl.send(snapshot())
            elif cmd[0] == "totals":
                ctl.send(snapshot())
            elif cmd[0] == "md":
                ctl.send(_md_state(server))
            elif cmd[0] == "echo":
                ctl.send(snapshot())
                _echo(echo, ctl)
                ctl.send(snapshot())
            elif cmd[0] == "stop":
                flush_records()
                ctl.send((engine.state_hash(), snapshot(), marks))
                break
    finally:
        if record is not None:
            record.close()
        server.stop()
        server.shutdown()
        echo.close(0)


def _md_counters(server: Any) -> dict[str, Any]:
    """What the server has published on its feed (all 0 with market data off)."""
    md = server.md
    if md is None:
        return {"md_published": 0, "md_packets": 0, "md_bytes": 0, "md_last": [0] * _MD_SLOTS}
    return {
        "md_published": md.publisher.records_published,  # sequenced records, summed over the feeds
        "md_packets": md.endpoint.packets_sent,  # PUB packets, heartbeats included
        "md_bytes": md.endpoint.bytes_sent,  # their records' bytes
        "md_last": [int(x) for x in md.publisher.channel_seq],  # last ChannelSeqNum, by MDFeed code
    }


def _md_state(server: Any) -> dict[str, Any]:
    """The engine's books as digests (``qfix.testing.marketdata``) and the feeds' last
    ChannelSeqNums: taken between engine calls, so the two agree."""
    from qfix.testing.marketdata import combined_digest, engine_digests

    start = time.perf_counter()
    digests = engine_digests(server.engine)
    return {
        "digests": digests,
        "combined": combined_digest(digests),
        "last": _md_counters(server)["md_last"],
        "resting_orders": server.engine.resting_orders,
        "digest_s": time.perf_counter() - start,
    }


def _echo(sock: zmq.Socket[bytes], ctl: Connection) -> None:
    """Send every frame back to its sender until the parent says ``done``."""
    poller = zmq.Poller()
    poller.register(sock, zmq.POLLIN)
    while True:
        if poller.poll(2):
            for _ in range(256):
                try:
                    parts = sock.recv_multipart(zmq.NOBLOCK, copy=False)
                except zmq.Again:
                    break
                sock.send_multipart(parts, copy=False)
        if ctl.poll():
            ctl.recv()
            return


# --- the client processes -------------------------------------------------------------------


def _wait_until(t: float) -> None:
    left = t - time.monotonic()
    if left > 0:
        time.sleep(left)


class _Worker:
    """One order-entry client process: a connected session and its share of the stream."""

    def __init__(self, index: int, endpoint: str, mode: str, msgs_path: str) -> None:
        from qfix.client import Client
        from qfix.client.tracker import OrderTracker

        class _Untracked(OrderTracker):
            """The SDK applies every report to its tracker in a per-message Python loop;
            this benchmark reconciles by ClOrdID itself, vectorised."""

            def apply(self, msgs: Array) -> int:
                return 0

        self.client = Client(endpoint, _client_key(index), _server_key().verify_key(), mode=mode)
        self.client.orders = _Untracked()
        self.client.connect(timeout=60.0, attempts=8, backoff=0.5)
        self.msgs = np.load(msgs_path)
        self.base = self.client.next_cl_ord_id - 1
        if self.base:
            self._rebase(self.base)
        self.acked = np.zeros(self.msgs.shape[0], np.bool_)
        self.pos = 0
        self.refused = 0
        self.trades = 0

    def _rebase(self, base: int) -> None:
        tids = _tids(self.msgs)
        rows = np.arange(self.msgs.shape[0])
        _set_u64(self.msgs, rows, _CLORDID, _u64(self.msgs, _CLORDID) + np.uint64(base))
        refs = np.flatnonzero(
            (tids == codes.TEMPLATE_ORDER_CANCEL_REQUEST) | (tids == codes.TEMPLATE_ORDER_CANCEL_REPLACE_REQUEST)
        )
        _set_u64(self.msgs, refs, _ORIG_CLORDID, _u64(self.msgs[refs], _ORIG_CLORDID) + np.uint64(base))

    def _outcomes(self, got: Array) -> Array:
        """Indices (into ``msgs``) of orders whose first outcome is in ``got``."""
        if got.shape[0] == 0:
            return np.zeros(0, np.int64)
        tids = _tids(got)
        is_er = tids == _T_ER
        self.trades += int(np.count_nonzero(got[is_er, _ER_EXEC_TYPE] == codes.EXEC_TYPE_TRADE))
        sel = is_er | (tids == _T_OCR) | (tids == _T_BMR)
        if not sel.any():
            return np.zeros(0, np.int64)
        ids = _u64(got[sel], _CLORDID).astype(np.int64) - (self.base + 1)
        ids = ids[(ids >= 0) & (ids < self.acked.size)]
        fresh = np.unique(ids[~self.acked[ids]])
        self.acked[fresh] = True
        bmr = got[tids == _T_BMR]
        if bmr.shape[0]:
            self.refused += int(
                np.count_nonzero(np.isin(_u64(bmr, _CLORDID).astype(np.int64) - (self.base + 1), fresh))
            )
        return fresh

    def flood(self, t0: float, t1: float, limit: int, batch: int, window: int) -> dict[str, Any]:
        """Closed loop: keep ``window`` records of ``batch`` orders in flight from t0 to t1."""
        client = self.client
        msgs = self.msgs
        start = self.pos
        end = min(msgs.shape[0], start + limit)
        bins = np.zeros(int((t1 - t0) / _BIN_S) + 2, np.int64)
        cap = window * batch
        sent = start
        acked = 0
        ran_out = math.inf
        done = math.inf  #: when every order was answered, after running out
        cpu0 = time.process_time()
        _wait_until(t0)
        while True:
            now = time.monotonic()
            sending = now < t1 and sent < end
            if not sending and (acked >= sent - start or now > min(t1, ran_out) + _DRAIN_S):
                break
            while sending and (sent - start) - acked < cap:
                k = min(batch, end - sent)
                client.send_frame(msgs[sent : sent + k].tobytes())
                sent += k
                if sent >= end:
                    ran_out = time.monotonic()
                    sending = False
            got = client.poll_raw(0.002 if sending else 0.01)
            fresh = self._outcomes(got)
            if fresh.size:
                fresh = fresh[(fresh >= start) & (fresh < sent)]
                acked += fresh.size
                now = time.monotonic()
                at = int((now - t0) / _BIN_S)
                if 0 <= at < bins.size:
                    bins[at] += fresh.size
                if sent >= end and acked >= sent - start:
                    done = now
        self.pos = sent
        return {
            "sent": sent - start,
            "acked": acked,
            "bins": bins,
            "ran_out": done,
            "cpu": time.process_time() - cpu0,
        }

    def paced(self, t0: float, t1: float, rate: float, limit: int, tick: float) -> dict[str, Any]:
        """Open loop: order k is due at t0 + k / rate; latency runs from that time.

        What is due goes out as one record per ``tick`` seconds: a client that batches,
        as the server expects; a stall delays the sends and is charged to every order."""
        client = self.client
        msgs = self.msgs
        start = self.pos
        total = max(0, min(int((t1 - t0) * rate), limit, msgs.shape[0] - start))
        lat = np.full(total, np.nan)
        sent = 0
        acked = 0
        next_tick = t0
        cpu0 = time.process_time()
        _wait_until(t0)
        while True:
            now = time.monotonic()
            if now >= next_tick and sent < total:
                due = min(total, int((now - t0) * rate) + 1)
                while sent < due:
                    k = min(due - sent, _FRAME_MAX)
                    client.send_frame(msgs[start + sent : start + sent + k].tobytes())
                    sent += k
                next_tick = now + tick
            if sent >= total and (acked >= total or now > t1 + _DRAIN_S):
                break
            # wake for the next tick on time (a whole-millisecond wait would make every
            # send late by up to a tick, and that lateness is charged to the orders)
            wait = next_tick - time.monotonic() if sent < total else tick
            got = client.poll_raw(max(0.0, min(wait, tick)))
            received = time.monotonic()
            fresh = self._outcomes(got) - start
            fresh = fresh[(fresh >= 0) & (fresh < total)]
            if fresh.size:
                lat[fresh] = received - (t0 + fresh / rate)
                acked += fresh.size
        self.pos = start + sent
        return {"lat_us": lat * 1e6, "sent": sent, "acked": acked, "cpu": time.process_time() - cpu0}

    def plain(self, endpoint: str, t0: float, t1: float, batch: int, window: int) -> dict[str, Any]:
        """The same frames, plaintext, through a DEALER to the server's echo ROUTER."""
        frames = [
            self.msgs[(self.pos + i * batch) % max(1, self.msgs.shape[0] - batch) :][:batch].tobytes()
            for i in range(max(window, 8))
        ]
        ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context.instance()
        sock = ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.SNDHWM, 0)
        sock.setsockopt(zmq.RCVHWM, 0)
        sock.connect(endpoint)
        inflight = 0
        moved = 0
        i = 0
        cpu0 = time.process_time()
        _wait_until(t0)
        while True:
            now = time.monotonic()
            if now >= t1 and (inflight == 0 or now > t1 + _DRAIN_S):
                break
            while now < t1 and inflight < window:
                sock.send(frames[i % len(frames)], copy=False)
                i += 1
                inflight += 1
            if sock.poll(2):
                while True:
                    try:
                        frame = sock.recv(zmq.NOBLOCK, copy=False)
                    except zmq.Again:
                        break
                    inflight -= 1
                    if time.monotonic() <= t1:
                        moved += len(frame.buffer) // _MSG
        sock.close(0)
        return {"moved": moved, "cpu": time.process_time() - cpu0}

    def ping(self, endpoint: str, count: int) -> Array:
        """Round trips of one 60-byte message through the echo ROUTER, in microseconds."""
        ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context.instance()
        sock = ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.connect(endpoint)
        payload = self.msgs[0].tobytes()
        rtts = np.zeros(count)
        for i in range(count + 50):
            t = time.perf_counter_ns()
            sock.send(payload)
            if not sock.poll(5000):
                raise BenchmarkError("ping-pong: no echo within 5 s")
            sock.recv()
            if i >= 50:
                rtts[i - 50] = (time.perf_counter_ns() - t) / 1e3
        sock.close(0)
        return rtts


def _client_main(index: int, endpoint: str, mode: str, msgs_path: str, ctl: Connection) -> None:
    logging.basicConfig(level=logging.WARNING)
    try:
        worker = _Worker(index, endpoint, mode, msgs_path)
    except Exception as exc:  # reported to the parent, which fails the run
        ctl.send(("error", f"client {index}: {exc}"))
        return
    ctl.send(("ready", worker.msgs.shape[0]))
    while True:
        cmd = ctl.recv()
        try:
            if cmd[0] == "flood":
                ctl.send(worker.flood(*cmd[1:]))
            elif cmd[0] == "paced":
                ctl.send(worker.paced(*cmd[1:]))
            elif cmd[0] == "plain":
                ctl.send(worker.plain(*cmd[1:]))
            elif cmd[0] == "ping":
                ctl.send(worker.ping(*cmd[1:]))
            elif cmd[0] == "stop":
                sent = worker.pos
                ctl.send(
                    {
                        "sent": sent,
                        "acked": int(np.count_nonzero(worker.acked[:sent])),
                        "extra": int(np.count_nonzero(worker.acked[sent:])),
                        "refused": worker.refused,
                        "trades": worker.trades,
                        "cpu": time.process_time(),
                    }
                )
                worker.client.close()
                return
        except Exception as exc:  # reported to the parent, which fails the run
            ctl.send(("error", f"client {index}: {type(exc).__name__}: {exc}"))
            return


# --- the flood process -------------------------------------------------------------------

#: niceness added to the flood process (tests/integration/qzmq/qzmq_flood.py's too)
_FLOODER_NICE = 10


def _drain(socks: Sequence[zmq.Socket[bytes]]) -> int:
    """Read every frame waiting on ``socks`` without blocking; return how many."""
    got = 0
    for r in socks:
        while True:
            try:
                r.recv(zmq.NOBLOCK)
            except zmq.Again:
                break
            got += 1
    return got


def _flooder_main(endpoint: str, mode: str, ctl: Connection, server_key_file: str | None = None) -> None:
    """CLIENT_HELLOs from a key the server does not know, over many loopback connections
    (source addresses 127.0.0.2 upwards), at an even rate from t0 to t1: the measured
    session's round trips are taken while the flood is on, not after a burst. The hellos
    name this benchmark's server key, or the public key in ``server_key_file``
    (``scripts/probe_flood.py``'s server)."""
    from qfix.crypto.keys import load_public_key
    from qfix.qzmq import ClientConnection
    from qfix.qzmq import Config as QzmqConfig

    # an attacker's CPU is its own, not the server's machine's: here it shares the two
    # cores, so it runs below the server and the clients (as in the slow flood test) and
    # takes what they leave; flood.hellos_offered_per_s shows whether it kept its rate
    os.nice(_FLOODER_NICE)
    cfg = QzmqConfig(mode=QzmqConfig.parse_mode(mode))
    key = _stranger_key()
    server = (
        load_public_key(server_key_file, alg=SignatureAlg.ML_DSA_65) if server_key_file else _server_key().verify_key()
    )
    hellos = []
    for _ in range(32):
        conn = ClientConnection(key, server, cfg)
        conn.connect(time.monotonic())
        hellos.extend(conn.data_to_send())
    port = endpoint.rsplit(":", 1)[1]
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context.instance()
    ctl.send("ready")
    while True:
        cmd = ctl.recv()
        if cmd[0] == "stop":
            return
        _, t0, t1, rate, connections = cmd
        socks = []
        for i in range(connections):
            s = ctx.socket(zmq.DEALER)
            s.setsockopt(zmq.LINGER, 0)
            s.setsockopt(zmq.SNDHWM, 64)
            s.connect(f"tcp://127.0.0.{2 + i % 200}:0;127.0.0.1:{port}")
            socks.append(s)
        sent = replies = 0
        _wait_until(t0)
        cpu0 = time.process_time()
        i = 0
        while (now := time.monotonic()) < t1:
            due = int((now - t0) * rate)
            while i < due:  # what is due now; a hello a full socket refuses is not retried
                try:
                    socks[i % connections].send(hellos[i % len(hellos)], zmq.NOBLOCK)
                    sent += 1
                except zmq.Again:
                    pass
                i += 1
            replies += _drain(socks)
            time.sleep(0.001)
        seconds = max(1e-9, time.monotonic() - t0)
        cores = (time.process_time() - cpu0) / seconds
        late = time.monotonic() + 1.0  # answers still on their way count, for a second
        while time.monotonic() < late:
            got = _drain(socks)
            replies += got
            if not got:
                time.sleep(0.05)
        for s in socks:
            s.close(0)
        ctl.send({"sent": sent, "replies": replies, "seconds": seconds, "cores": cores})


# --- the market-data subscriber process ----------------------------------------------------


def _proc_cpu_s(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` (all threads) from /proc; 0 if unreadable."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class _Follower:
    """The market-data subscriber: the SDK's :class:`~qfix.marketdata.subscriber.SubscriberCore`
    on all four feeds of every instrument, in a socket loop like ``Subscriber.poll``'s that
    also notes, for each live packet applied, when it was sent (its header's SendingTime)
    and how long after that it was applied (``time.time_ns()`` once the call that applied
    it returned: ``feed_packets`` for a table of packets received by jitted code, or
    ``feed_message`` for one received through pyzmq where that cannot reach libzmq).
    A packet held back because its instrument was recovering is counted, not timed."""

    def __init__(self, pub_endpoint: str, snapshot_endpoint: str) -> None:
        from array import array

        from qfix.marketdata import feeds
        from qfix.marketdata.subscriber import SubscriberCore

        self.core = SubscriberCore(feeds.ALL_FEEDS)
        self.context: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        self.sub = self.context.socket(zmq.SUB)
        self.sub.setsockopt(zmq.RCVHWM, 1_000_000)  # the SDK Subscriber's default
        self.sub.setsockopt(zmq.LINGER, 0)
        for prefix in self.core.topics():
            self.sub.setsockopt(zmq.SUBSCRIBE, prefix)
        self.sub.connect(pub_endpoint)
        self.snapshot_endpoint = snapshot_endpoint
        self.poller = zmq.Poller()
        self.poller.register(self.sub, zmq.POLLIN)
        self.dealer = self._dealer()
        self.topics: dict[bytes, tuple[int, int] | None] = {}
        self.sent_ns = array("q")
        self.lag_ns = array("q")
        self.live = 0  #: sequenced live packets received
        self.held = 0  #: of those, not applied on arrival (their instrument was recovering)
        from qfix.marketdata import _recv
        from qfix.marketdata.subscriber import ARENA_BYTES, TABLE_ROWS

        # as the SDK's Subscriber: packets received by jitted code where it reaches libzmq
        self.arena = np.zeros(ARENA_BYTES, np.uint8) if _recv.AVAILABLE else None
        self.table = np.zeros((TABLE_ROWS, _recv.COLUMNS), np.int64) if _recv.AVAILABLE else None

    def _dealer(self) -> zmq.Socket[bytes]:
        sock = self.context.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.connect(self.snapshot_endpoint)
        self.poller.register(sock, zmq.POLLIN)
        return sock

    def _send_next(self) -> None:
        request, timed_out = self.core.next_request(time.monotonic(), time.time_ns())
        if timed_out:  # a late reply must not be taken for the next request's
            self.poller.unregister(self.dealer)
            self.dealer.close(0)
            self.dealer = self._dealer()
        if request is not None:
            self.dealer.send(request)

    def pump(self, timeout_ms: int) -> None:
        """Wait up to ``timeout_ms`` for packets, apply what is ready, send the next request."""
        self._send_next()
        ready = dict(self.poller.poll(timeout_ms))
        core = self.core
        if self.dealer in ready:
            for _ in range(10_000):
                try:
                    core.reply_message(self.dealer.recv_multipart(zmq.NOBLOCK))
                except zmq.Again:
                    break
        if self.sub in ready:
            if self.arena is not None and self.table is not None:
                self._read_packets(self.arena, self.table)
            else:
                self._read_messages()
        self._send_next()

    def _read_messages(self) -> None:
        """Through pyzmq, a message at a time (where jitted code cannot reach libzmq)."""
        from qfix.marketdata import feeds

        core = self.core
        header, topics, states = feeds.HEADER, self.topics, core.feeds
        keep = len(self.sent_ns) < _LAG_CAP
        for _ in range(10_000):
            try:
                frames = self.sub.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                break
            core.feed_message(frames)
            now = time.time_ns()
            if len(frames) != 3 or len(frames[1]) != _MD_HEADER:
                continue
            seq, sent = header.unpack(frames[1])
            if not seq:
                continue  # heartbeats and resets
            self.live += 1
            where = topics.get(frames[0], (0, 0))
            if where == (0, 0):
                where = topics[frames[0]] = feeds.parse_topic(frames[0])
            if where is not None and where[0] in states and states[where[0]].synced(where[1]):
                if keep:
                    self.sent_ns.append(sent)
                    self.lag_ns.append(now - sent)
            else:
                self.held += 1

    def _read_packets(self, arena: np.ndarray[Any, Any], table: np.ndarray[Any, Any]) -> None:
        """As the SDK's Subscriber reads: a table of packets per jitted receive, applied in
        one call; every packet of the table is timed at the call's end. A live packet
        counts as applied on arrival when the jitted path applied it, or when Python did
        and its instrument is synced after."""
        from qfix.marketdata import _recv, feeds

        core = self.core
        for _ in range(10_000 // table.shape[0] + 1):
            got = _recv.recv_packets(self.sub, arena, table)
            if not got:
                return
            core.feed_packets(arena, table, got)
            now = time.time_ns()
            rows = table[:got]
            whole = (rows[:, _recv.FRAMES] == 3) & (rows[:, _recv.HEADER_LEN] == _MD_HEADER)
            at = rows[whole, _recv.HEADER_AT]
            header = arena[at[:, None] + np.arange(_MD_HEADER)].view("<u8")  # ChannelSeqNum, SendingTime
            live = header[:, 0] != 0
            self.live += int(np.count_nonzero(live))
            applied = core.applied[:got][whole].astype(bool)
            timed = live & applied
            whole_rows = np.flatnonzero(whole)
            for k in np.flatnonzero(live & ~applied).tolist():
                row = int(whole_rows[k])
                topic = arena[rows[row, _recv.TOPIC_AT] : rows[row, _recv.TOPIC_AT] + rows[row, _recv.TOPIC_LEN]]
                where = feeds.parse_topic(topic.tobytes())
                if where is not None and where[0] in core.feeds and core.feeds[where[0]].synced(where[1]):
                    timed[k] = True
            self.held += int(np.count_nonzero(live & ~timed))
            room = _LAG_CAP - len(self.sent_ns)
            if room > 0:
                sent = header[timed, 1].astype(np.int64)[:room]
                self.sent_ns.extend(sent.tolist())
                self.lag_ns.extend((now - sent).tolist())

    def caught_up(self, last: Sequence[int]) -> bool:
        """Every feed received up to ``last`` (ChannelSeqNum by MDFeed code) and no gap open."""
        for feed, state in self.core.feeds.items():
            if last[feed] and state.next_channel_seq <= last[feed]:
                return False
        return self.core.idle()

    def sync(self, last: Sequence[int] | None, timeout: float) -> dict[str, Any]:
        """Pump until caught up with ``last`` (None: until idle) or ``timeout`` seconds pass."""
        start = time.monotonic()
        cpu0 = time.process_time()
        while True:
            done = self.core.idle() if last is None else self.caught_up(last)
            if done or time.monotonic() - start > timeout:
                return {
                    "synced": done,
                    "seconds": time.monotonic() - start,
                    "cpu": time.process_time() - cpu0,
                    "open_gaps": self.core.open_gaps(),
                }
            self.pump(5)

    def lag(self, intervals: Sequence[tuple[int, int]]) -> dict[str, Any]:
        """Lag percentiles (us) of the live packets sent within each interval (wall ns)."""
        sent = np.frombuffer(self.sent_ns, np.int64) if len(self.sent_ns) else np.zeros(0, np.int64)
        lag = np.frombuffer(self.lag_ns, np.int64) if len(self.lag_ns) else np.zeros(0, np.int64)
        per: list[tuple[float, float, float, int] | None] = []
        for a, b in intervals:
            m = (sent >= a) & (sent <= b)
            count = int(np.count_nonzero(m))
            per.append((*_percentiles(lag[m] / 1e3), count) if count else None)
        overall = (*_percentiles(lag / 1e3), int(lag.size)) if lag.size else None
        return {"windows": per, "all": overall, "capped": len(self.sent_ns) >= _LAG_CAP}

    def stats(self) -> dict[str, Any]:
        from qfix.marketdata import feeds

        per_feed = {feeds.FEED_NAMES[f]: dataclasses.asdict(state.stats) for f, state in self.core.feeds.items()}
        totals = {k: sum(v[k] for v in per_feed.values()) for k in next(iter(per_feed.values()))}
        return {
            "totals": totals,
            "feeds": per_feed,
            "request_timeouts": self.core.timeouts,
            "live_packets": self.live,
            "live_packets_held_back": self.held,
            "instruments": len(self.core.books),
        }

    def close(self) -> None:
        self.sub.close(0)
        self.dealer.close(0)
        self.context.term()


def _follower_main(pub_endpoint: str, snapshot_endpoint: str, ctl: Connection, ready_timeout: float) -> None:
    """The subscriber process: join (a snapshot of every feed), then follow the feeds and
    answer the parent between polls."""
    logging.basicConfig(level=logging.WARNING)
    try:
        follower = _Follower(pub_endpoint, snapshot_endpoint)
        ctl.send(("ready", follower.sync(None, ready_timeout)))
        while True:
            if not ctl.poll():
                follower.pump(5)
                continue
            cmd = ctl.recv()
            if cmd[0] == "sync":
                ctl.send(follower.sync(cmd[1], cmd[2]))
            elif cmd[0] == "finish":
                from qfix.testing.marketdata import combined_digest, subscriber_digests

                _, last, timeout, intervals = cmd
                synced = follower.sync(last, timeout)
                start = time.perf_counter()
                digests = subscriber_digests(follower.core.books)
                combined = combined_digest(digests)
                digest_s = time.perf_counter() - start
                ctl.send(
                    {
                        **synced,
                        "digests": digests,
                        "combined": combined,
                        "digest_s": digest_s,
                        "lag": follower.lag(intervals),
                        "stats": follower.stats(),
                        "cpu_total": time.process_time(),
                    }
                )
                follower.close()
                return
            elif cmd[0] == "stop":
                follower.close()
                return
    except Exception as exc:  # reported to the parent, which fails the run
        ctl.send(("error", f"market-data subscriber: {type(exc).__name__}: {exc}"))


# --- orchestration -------------------------------------------------------------------------


def _recv(conn: Connection, what: str, timeout: float = 600.0) -> Any:
    if not conn.poll(timeout):
        raise BenchmarkError(f"{what}: no answer within {timeout:.0f} s")
    try:
        msg = conn.recv()
    except EOFError:
        raise BenchmarkError(f"{what}: the process ended") from None
    if isinstance(msg, tuple) and msg and msg[0] == "error":
        raise BenchmarkError(str(msg[1]))
    return msg


def _gather(conns: Sequence[Connection], what: str, timeout: float = 600.0) -> list[Any]:
    return [_recv(c, what, timeout) for c in conns]


def _percentiles(samples: Array) -> tuple[float, float, float]:
    """p50, p99, p99.9 in microseconds through an HdrHistogram (1 us .. 100 s, 3 digits)."""
    from hdrh.histogram import HdrHistogram

    hist = HdrHistogram(1, 100_000_000, 3)
    values, counts = np.unique(np.clip(np.rint(samples), 1, 100_000_000).astype(np.int64), return_counts=True)
    for v, c in zip(values.tolist(), counts.tolist(), strict=True):
        hist.record_value(v, c)
    return (
        float(hist.get_value_at_percentile(50)),
        float(hist.get_value_at_percentile(99)),
        float(hist.get_value_at_percentile(99.9)),
    )


@dataclass
class _Run:
    """The processes of one run and what the parent learnt from them."""

    sizes: Sizes
    server: mp.process.BaseProcess
    server_ctl: Connection
    server_pid: int
    fix_endpoint: str
    echo_endpoint: str
    clients: Sequence[mp.process.BaseProcess]
    ctls: list[Connection]
    remaining: list[int]  #: messages each client has not sent yet
    mode: str
    #: the server's journal durability with ``--durability`` (its result names' prefix);
    #: ``md`` or ``nomd`` in the market-data comparison; else ""
    label: str = ""
    #: the feed's PUB and snapshot endpoints; ("", "") with market data off
    md_endpoints: tuple[str, str] = ("", "")

    def send_all(self, cmd: tuple[Any, ...]) -> None:
        for c in self.ctls:
            c.send(cmd)

    def server_call(self, *cmd: Any) -> Any:
        self.server_ctl.send(cmd)
        return _recv(self.server_ctl, f"server {cmd[0]}")


def _write_setup(folder: Path, sizes: Sizes) -> Any:
    """Key files, allow-list and the configuration of the benchmark's server."""
    from qfix.engine import EngineConfig
    from qfix.qzmq import Mode
    from qfix.server.config import ServerConfig

    write_private_key(folder / "server.key", _server_key())
    entries = [
        render_allow_entry(_client_key(i), [_ACCOUNT_BASE + i])
        for i in range(sizes.clients + sizes.repeats * sizes.known_handshakes)
    ]
    allow = folder / "allow.toml"
    allow.write_text("\n".join(entries), encoding="utf-8")
    count = sizes.instruments or 10_000
    config = ServerConfig(
        instruments=_instruments(count),
        key_file=folder / "server.key",
        allow_list_file=allow,
        fix_port=0,
        md_port=0,  # several servers run at once (--durability): every port is ephemeral
        md_snapshot_port=0,
        status_interval=0,
        end_of_day="",  # a run that crosses 21:00 UTC must not close the trading day midway
        cancel_on_disconnect=False,  # the engine-alone replay must reach the same state
        batch=10_000,
        engine=EngineConfig(max_orders=1 << 21, max_levels=1 << 20, max_instruments=count, max_sessions=256),
    )
    if sizes.pq_only:
        config = dataclasses.replace(config, qzmq=dataclasses.replace(config.qzmq, mode=Mode.PQ_ONLY))
    return config


def _throughput_window(run: _Run, seconds: float, limits: list[int], phase: int) -> dict[str, Any]:
    """One closed-loop window of all clients; the server's totals before and after it
    (after every order of the window was answered)."""
    sizes = run.sizes
    before = run.server_call("phase", phase)  # writes the recorded batches: before t0
    t0 = time.monotonic() + 0.2
    t1 = t0 + seconds
    for c, lim in zip(run.ctls, limits, strict=True):
        c.send(("flood", t0, t1, lim, sizes.batch, sizes.window))
    results = _gather(run.ctls, "throughput window")
    after = run.server_call("phase", 0)
    for i, r in enumerate(results):
        run.remaining[i] -= r["sent"]
    end = min([t1, *[r["ran_out"] for r in results]])
    span = max(end - t0, _BIN_S)
    upto = max(1, round(span / _BIN_S))
    acked = sum(int(r["bins"][:upto].sum()) for r in results)
    wall = time.time_ns() - time.monotonic_ns()  # monotonic -> wall clock (what SendingTime uses)
    return {
        "orders_per_s": acked / span,
        "span": span,
        "wall_ns": (round(t0 * 1e9) + wall, round((t0 + span) * 1e9) + wall),
        "truncated": end < t1,
        "sent": sum(r["sent"] for r in results),
        "client_cpu": sum(r["cpu"] for r in results),
        "before": before,
        "after": after,
    }


def _delta(a: dict[str, Any], b: dict[str, Any], key: str) -> float:
    return float(b[key]) - float(a[key])


def _engine_alone(
    record_path: Path, marks: list[tuple[int, int]], config: Any
) -> tuple[dict[int, float], dict[int, float], bytes]:
    """Replay the server's batches on a fresh engine: per timed phase the thread CPU
    seconds and the wall seconds spent in ``process``, and the final state hash.

    CPU time is the baseline: the machine is shared, and a replay that other jobs
    preempt would make the engine look slower than it is (wall time is kept beside)."""
    from qfix.engine import OUTPUT_FULL, Engine, output_buffer

    records = np.fromfile(record_path, dtype=schema.INBOUND)
    total = sum(n for n, _ in marks)
    if records.size != total:
        raise BenchmarkError(f"engine replay: {records.size} records on file, {total} recorded")
    eng = Engine(config.instruments, config.engine)
    out = output_buffer(1 << 16)
    seconds: dict[int, float] = {}
    walls: dict[int, float] = {}
    clock = time.thread_time_ns
    wall = time.perf_counter_ns
    i = 0
    for n, phase in marks:
        batch = records[i : i + n]
        i += n
        start = clock()
        start_wall = wall()
        while True:
            res = eng.process(batch, out)
            if res.status != OUTPUT_FULL:
                break
            batch = batch[res.consumed :]
            if res.needed > out.size:
                out = output_buffer(max(res.needed, 2 * out.size))
        took = clock() - start
        took_wall = wall() - start_wall
        if phase > 0:
            seconds[phase] = seconds.get(phase, 0.0) + took / 1e9
            walls[phase] = walls.get(phase, 0.0) + took_wall / 1e9
    return seconds, walls, eng.state_hash()


class _Timed:
    """Advances a Progress and remembers how long each step took (for the document)."""

    def __init__(self, inner: _common.Progress) -> None:
        self.inner = inner
        self.seconds: dict[str, float] = {}
        self._current: tuple[str, float] | None = None

    def step(self, description: str) -> None:
        self._close()
        self._current = (description, time.monotonic())
        self.inner.step(description)

    def _close(self) -> None:
        if self._current is not None:
            name, start = self._current
            self.seconds[name] = round(time.monotonic() - start, 2)
            self._current = None

    def done(self) -> dict[str, float]:
        self._close()
        return self.seconds


def _latency_need(sizes: Sizes) -> int:
    """Messages client 0 sends in the latency and flood phases."""
    rates = sum(sizes.rates) * (_warm_rate_s(sizes) + sizes.repeats * sizes.rate_seconds)
    flood = sizes.flood_rtt_rate * sizes.repeats * (sizes.flood_quiet_seconds + sizes.flood_seconds)
    return math.ceil(rates + flood) + 2 * (len(sizes.rates) + 2) * (sizes.repeats + 1)


def _warm_rate_s(sizes: Sizes) -> float:
    return min(0.25, sizes.rate_seconds)


def _first_sessions(sizes: Sizes, records: Array, prefill: int) -> int:
    """Workload sessions given to client 0: its share of the throughput phase plus what
    its latency and flood sessions need (with a margin)."""
    sessions = int(records["SessionID"].max()) + 1
    if sizes.clients == 1:
        return sessions
    body = max(1, len(records) - prefill)
    extra = math.ceil(sessions * 1.2 * _latency_need(sizes) / body)
    return min(sessions - (sizes.clients - 1), sessions // sizes.clients + extra)


#: progress steps: stream, split, start, prefill, throughput, market data (with the
#: comparison of market data on and off only), plaintext, ping, rates, flood, engine
STEPS = 11


def run(
    sizes: Sizes,
    quick: bool,
    streams: Path,
    progress: _common.Progress | None = None,
    durability: Sequence[str] = (),
    journal_parent: Path = Path("bench-out"),
    md: bool = True,
) -> _common.Report:
    """Measure; ``progress`` is advanced between phases (``STEPS`` steps, one fewer
    without the market-data comparison).

    ``durability``: none (the server runs without a journal and the result names are
    unprefixed), or one server per mode, each with a journal in a temporary directory
    under ``journal_parent``, market data off: every server is prefilled and their
    throughput windows take turns; the other phases run on the first mode's server
    alone. Every name is prefixed by the mode that produced it.

    ``md`` (without ``durability``): two servers, ``md`` (market data on, followed by
    one subscriber process) and ``nomd`` (off), windows taking turns; the names stay
    unprefixed for the ``md`` server, which runs every phase, and ``md.*`` names are
    added. ``md`` false: one server with market data off."""
    timed = _Timed(progress if progress is not None else _common.Progress(STEPS, quiet=True))
    report = _common.Report("net", quick)
    # children fork from a server process that imported the heavy modules once: 20
    # interpreters importing numpy, zmq and cryptography each would take most of --quick
    mpc = mp.get_context("forkserver")
    mpc.set_forkserver_preload(["qfix.bench.net", "qfix.client", "qfix.server", "qfix.qzmq", "hdrh.histogram"])
    # the forkserver (started with the first process, inheriting this environment) also
    # loads what each client would otherwise load from Numba's cache itself (_warm_children)
    os.environ[_WARM_ENV] = "1"
    timed.step("multi stream (generated once, then loaded)")
    records, prefill, stream_path, digest = _load_stream(sizes, quick, streams)
    instruments = sizes.instruments or 10_000
    timed.step(f"splitting the stream over {sizes.clients} clients")
    origins = _cancel_origins(records, instruments, stream_path.with_suffix(".cancel-origins.npy"))
    parts = _split(records, prefill, sizes.clients, origins, _first_sessions(sizes, records, prefill))
    n_messages = len(records)
    del records
    mode = "pq-only" if sizes.pq_only else "hybrid"
    compare = "durability" if durability else "md" if md else ""
    labels = list(durability) if durability else ["md", "nomd"] if md else [""]
    with contextlib.ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="qfix-bench-net-")))
        config = _write_setup(folder, sizes)
        journals: Path | None = None
        if durability:
            journal_parent.mkdir(parents=True, exist_ok=True)
            journals = Path(
                stack.enter_context(tempfile.TemporaryDirectory(prefix="qfix-bench-net-journal-", dir=journal_parent))
            )
            report.extra["journal"] = _journal_extra(journals, config)
        paths = []
        for i, (msgs, _) in enumerate(parts):
            path = folder / f"client-{i}.npy"
            np.save(path, msgs)
            paths.append(str(path))
        prefills = [pre for _, pre in parts]
        sizes_of = [m.shape[0] for m, _ in parts]
        del parts
        record_path = folder / "batches.bin"
        servers = "the server"
        if compare == "md":
            servers = "2 servers (market data on, with a subscriber; off)"
        elif len(labels) > 1:
            servers = f"{len(labels)} servers ({', '.join(labels)})"
        elif durability:
            servers = f"the server (journal: {durability[0]})"
        timed.step(f"starting {servers} and {sizes.clients} clients" + (" each" if len(labels) > 1 else ""))
        started = _Started()
        flood_ctl, flood_child = mpc.Pipe()
        try:
            configs = []
            for label in labels:
                server_config = dataclasses.replace(config, md_enabled=label == "md")
                if journals is not None:
                    server_config = dataclasses.replace(server_config, journal_dir=journals / label, durability=label)
                configs.append(server_config)
            # only the first server's batches are recorded: the engine-alone replay is its own
            runs, follower = _start(mpc, configs, labels, sizes, paths, sizes_of, str(record_path), started)
            flooder = mpc.Process(target=_flooder_main, args=(runs[0].fix_endpoint, mode, flood_child), daemon=True)
            flooder.start()
            started.clients.append(flooder)
            _recv(flood_ctl, "flood process start", 300)
            _measure(runs, report, timed, prefills, flood_ctl, flooder, config, record_path, compare, follower)
        finally:
            for c in started.ctls:
                with contextlib.suppress(OSError, ValueError):
                    c.send(("stop",))
            with contextlib.suppress(OSError, ValueError):
                flood_ctl.send(("stop",))
            for proc in [*started.clients, *started.servers]:
                proc.join(10)
                if proc.is_alive():
                    proc.terminate()
    report.extra["workload"] = {"file": str(stream_path), "blake2b": digest, "messages": n_messages}
    report.extra["phase_seconds"] = timed.done()
    return report


@dataclass
class _Started:
    """Every process started so far (and the client pipes), for the cleanup."""

    servers: list[mp.process.BaseProcess] = dataclasses.field(default_factory=list)
    #: the clients and the flooder
    clients: list[mp.process.BaseProcess] = dataclasses.field(default_factory=list)
    ctls: list[Connection] = dataclasses.field(default_factory=list)


@dataclass
class _Subscriber:
    """The market-data subscriber process and its pipe."""

    proc: mp.process.BaseProcess
    ctl: Connection
    joined: dict[str, Any]  #: its first sync (the snapshots of every feed)

    def call(self, *cmd: Any) -> Any:
        self.ctl.send(cmd)
        return _recv(self.ctl, f"market-data subscriber {cmd[0]}")

    def cpu(self) -> float:
        return _proc_cpu_s(self.proc.pid or 0)


def _start(
    mpc: Any,
    configs: list[Any],
    labels: list[str],
    sizes: Sizes,
    paths: list[str],
    sizes_of: list[int],
    record_path: str,
    started: _Started,
) -> tuple[list[_Run], _Subscriber | None]:
    """A server on each of ``configs`` and its clients, each connected and holding its
    share; and a subscriber of the first server's feed if it publishes one.

    The servers start together (each initialises while the others do); each server's
    clients start as soon as it is up, and the subscriber joins while they connect."""
    mode = "pq-only" if sizes.pq_only else "hybrid"
    pending = []
    for i, config in enumerate(configs):
        parent_ctl, child_ctl = mpc.Pipe()
        # not daemonic: the server starts its own handshake worker processes; the caller's
        # finally always joins or terminates it
        record = record_path if i == 0 else ""
        server = mpc.Process(target=_server_main, args=(config, child_ctl, record), daemon=False)
        server.start()
        started.servers.append(server)
        pending.append((server, parent_ctl))
    runs: list[_Run] = []
    follower_ctl: Connection | None = None
    follower_proc: mp.process.BaseProcess | None = None
    for (server, parent_ctl), label in zip(pending, labels, strict=True):
        fix_endpoint, echo_endpoint, server_pid, md_pub, md_snap = _recv(parent_ctl, "server start", 300)
        ctls, procs = [], []
        for i in range(sizes.clients):
            a, b = mpc.Pipe()
            proc = mpc.Process(target=_client_main, args=(i, fix_endpoint, mode, paths[i], b), daemon=True)
            proc.start()
            started.clients.append(proc)
            started.ctls.append(a)
            ctls.append(a)
            procs.append(proc)
        if md_pub and follower_ctl is None and not runs:
            follower_ctl, child = mpc.Pipe()
            args = (md_pub, md_snap, child, _MD_JOIN_S)
            follower_proc = mpc.Process(target=_follower_main, args=args, daemon=True)
            follower_proc.start()
            started.clients.append(follower_proc)
            started.ctls.append(follower_ctl)
        runs.append(
            _Run(
                sizes, server, parent_ctl, server_pid, fix_endpoint, echo_endpoint, procs, ctls, list(sizes_of),
                mode, label, (md_pub, md_snap),
            )
        )  # fmt: skip
    for run in runs:
        _gather(run.ctls, "client start", 300)
    if follower_ctl is None or follower_proc is None:
        return runs, None
    # a join that did not finish in time is not fatal: the waits after the prefill and the
    # windows give it more time, and md.unrecovered_gaps and md.books_equal tell the end
    _, joined = _recv(follower_ctl, "market-data subscriber start", _MD_JOIN_S + 300)
    return runs, _Subscriber(follower_proc, follower_ctl, joined)


def _journal_extra(journals: Path, config: Any) -> dict[str, Any]:
    from qfix.bench.journal import filesystem

    fs = filesystem(journals)
    return {
        "dir": str(journals),
        "filesystem": fs,
        "checkpoint_every_messages": config.checkpoint_every_messages,
        "checkpoint_every_s": config.checkpoint_every_s,
        "segment_mib": config.journal_segment_mib,
        "note": "one journal directory per mode, removed at the end"
        + (f"; WARNING: {fs['type']} is memory, fsync costs nothing there" if fs["type"] in ("tmpfs", "ramfs") else ""),
    }


def _prefill(run: _Run, prefills: list[int]) -> None:
    t0 = time.monotonic() + 0.2
    run.server_call("phase", 0)
    for c, pre in zip(run.ctls, prefills, strict=True):
        c.send(("flood", t0, t0 + 3600.0, pre, _FRAME_MAX, run.sizes.window))
    for i, r in enumerate(_gather(run.ctls, "prefill")):
        run.remaining[i] -= r["sent"]
        if r["acked"] != r["sent"]:
            raise BenchmarkError(f"prefill: client {i} got {r['acked']} of {r['sent']} outcomes")


def _stop_throughput_only(run: _Run) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """End a server that only ran the throughput windows, and its clients; the server's
    final totals and each client's account."""
    run.server_ctl.send(("stop",))
    _, final, _ = _recv(run.server_ctl, "server stop")
    ends = []
    for c in run.ctls:
        c.send(("stop",))
        ends.append(_recv(c, "client stop"))
    for proc in [*run.clients, run.server]:
        proc.join(30)  # the next phases have the machine to themselves
    return final, ends


def _per_order(key: str, factor: float = 1.0) -> Callable[[dict[str, Any]], float]:
    """A server counter's rate in a window: its growth over the whole window (drain
    included) per order the server matched, times the acknowledged rate; exact also when
    a window was shortened."""

    def rate(w: dict[str, Any]) -> float:
        matched = max(1.0, _delta(w["before"], w["after"], "orders"))
        return _delta(w["before"], w["after"], key) / matched * factor * float(w["orders_per_s"])

    return rate


#: the rates of the matching inside the server, by path (each only when that path ran)
_IN_SERVER: Final = (
    "engine_in_server.orders_per_s",
    "engine_in_server.cpu_orders_per_s",
    "record_path_in_server.orders_per_s",
    "record_path_in_server.cpu_orders_per_s",
)


def _window_results(windows: list[dict[str, Any]], note: str) -> dict[str, _common.Result]:
    """The figures of the throughput windows, by their (unprefixed) names."""

    def per_window(fn: Callable[[dict[str, Any]], float]) -> list[float]:
        return [fn(w) for w in windows]

    per_order = _per_order

    def msgs_rate(w: dict[str, Any]) -> float:
        return per_order("messages_in")(w) + per_order("messages_out")(w)

    def in_server(clock: str, orders: str) -> Callable[[dict[str, Any]], float]:
        def rate(w: dict[str, Any]) -> float:
            return _delta(w["before"], w["after"], orders) / max(1e-9, _delta(w["before"], w["after"], clock))

        return rate

    def ran(orders: str) -> bool:
        return any(_delta(w["before"], w["after"], orders) > 0 for w in windows)

    found = [
        _common.from_samples("orders_per_s", per_window(lambda w: w["orders_per_s"]), "orders/s", note),
        _common.from_samples("msgs_per_s", per_window(msgs_rate), "msgs/s", "server: received + sent"),
        _common.from_samples("gbps_in", per_window(per_order("bytes_in", 8e-9)), "Gbit/s", "QZMQ records"),
        _common.from_samples("gbps_out", per_window(per_order("bytes_out", 8e-9)), "Gbit/s", "QZMQ records"),
        _common.from_samples("trades_per_s", per_window(per_order("trades")), "trades/s"),
    ]

    def inside(name: str, clocks: tuple[str, str], orders: str, what: str) -> list[_common.Result]:
        """A path's records over the wall and the loop thread's CPU time inside its calls."""
        wall, cpu = clocks
        return [
            _common.from_samples(f"{name}.orders_per_s", per_window(in_server(wall, orders)), "orders/s", what),
            _common.from_samples(
                f"{name}.cpu_orders_per_s",
                per_window(in_server(cpu, orders)),
                "orders/s",
                "the same in the loop thread's CPU time: the engine alone's clock",
            ),
        ]

    if ran("engine_orders"):  # the Python path's engine calls
        found += inside(
            "engine_in_server", ("engine_s", "engine_cpu_s"), "engine_orders", "records process() ran, over its time"
        )
    if ran("path_orders"):  # the compiled record path's calls
        what = "records the compiled record path ran over its time (stages H and S, the engine, routing)"
        found += inside("record_path_in_server", ("path_s", "path_cpu_s"), "path_orders", what)
        found.append(
            _common.from_samples(
                "record_path_share_of_server_time", per_window(per_order("path_s")), "ratio", "the record path / wall"
            )
        )
    found += [
        _common.from_samples(
            "cpu.clients_cores",
            per_window(lambda w: w["client_cpu"] / w["sent"] * w["orders_per_s"]),
            "cores",
            "all clients, throughput (CPU per order x orders/s)",
        ),
        _common.from_samples("cpu.server_cores", per_window(per_order("cpu")), "cores", "throughput"),
        _common.from_samples(
            "engine_share_of_server_time", per_window(per_order("engine_s")), "ratio", "process() / wall"
        ),
    ]
    return {r.name: r for r in found}


def _reconcile(ends: list[dict[str, Any]]) -> dict[str, Any]:
    sent = sum(c["sent"] for c in ends)
    acked = sum(c["acked"] for c in ends)
    return {
        "orders_sent": sent,
        "orders_with_one_outcome": acked,
        "missing": sent - acked,
        "refused": sum(c["refused"] for c in ends),
    }


def _measure(
    runs: list[_Run],
    report: _common.Report,
    progress: _Timed,
    prefills: list[int],
    flood_ctl: Connection,
    flooder: mp.process.BaseProcess,
    config: Any,
    record_path: Path,
    compare: str = "",
    follower: _Subscriber | None = None,
) -> None:
    """Every phase on ``runs[0]``; prefill and throughput windows (taking turns) on the
    others. ``compare``: "durability", "md" (``follower`` follows ``runs[0]``'s feed) or ""."""
    run = runs[0]
    sizes = run.sizes
    n = sizes.clients
    reps = sizes.repeats
    each = f", on each of {len(runs)} servers" if len(runs) > 1 else ""
    progress.step(f"prefill: {sum(prefills):,} resting orders through the server{each}")
    for one in runs:
        _prefill(one, prefills)
    md_extra: dict[str, Any] = {}
    if follower is not None:
        # the windows start with a subscriber that has applied the prefill's market data
        md_extra["joined"] = follower.joined
        md_extra["after_prefill"] = follower.call("sync", run.server_call("totals")["md_last"], _MD_SYNC_S)

    def window(one: _Run, seconds: float, limits: list[int], phase: int) -> dict[str, Any]:
        if follower is None:
            return _throughput_window(one, seconds, limits, phase)
        cpu0, wall0 = follower.cpu(), time.monotonic()
        w = _throughput_window(one, seconds, limits, phase)
        w["follower_cores"] = (follower.cpu() - cpu0) / max(1e-9, time.monotonic() - wall0)
        if one is run:
            # untimed: the subscriber applies what it has not yet, so that no window of the
            # server without market data runs beside a subscriber catching up
            w["catchup"] = follower.call("sync", w["after"]["md_last"], _MD_SYNC_S)
        return w

    # reserve the messages of the latency and flood phases; throughput gets the rest
    # (the same reserve on every server, so that their windows get the same limits)
    warm_rate_s = _warm_rate_s(sizes)
    reserve = [_latency_need(sizes) if i == 0 else 0 for i in range(n)]
    spare = [max(0, run.remaining[i] - reserve[i]) for i in range(n)]
    if min(spare) < sizes.batch * (reps + 1):
        raise BenchmarkError("the multi stream is too short for these sizes (see docs/benchmarks.md)")
    turns = f", the {len(runs)} servers taking turns" if len(runs) > 1 else ""
    progress.step(f"throughput: warm-up and {reps} windows of {sizes.seconds / reps:.1f} s{turns}")
    warm_s = 1.0
    windows_of: list[list[dict[str, Any]]] = [[] for _ in runs]
    share = [s // (reps + 1) for s in spare]
    # the warm-up takes what it needs, up to an equal share; the rest is split evenly
    warm_ups = [window(one, warm_s, share, -1) for one in runs]
    for k in range(reps):
        for one, windows in zip(runs, windows_of, strict=True):
            left = [max(0, one.remaining[i] - reserve[i]) for i in range(n)]
            limits = [max(sizes.batch, left[i] // (reps - k)) for i in range(n)]
            windows.append(window(one, sizes.seconds / reps, limits, k + 1))
    windows = windows_of[0]
    others = [_stop_throughput_only(one) for one in runs[1:]]
    if follower is not None:
        progress.step("market data: the subscriber catches up; its books against the engine's")
        md_extra["warm_up_catchup"] = warm_ups[0].get("catchup")
        md_extra.update(_md_finish(run, follower, windows))

    progress.step(f"plaintext ceiling: {reps} windows of {sizes.plain_seconds:.1f} s")
    plain_rates = []
    run.server_ctl.send(("echo",))
    _recv(run.server_ctl, "server echo")
    plain_cpu = []
    for k in range(reps + 1):
        t0 = time.monotonic() + 0.2
        run.send_all(("plain", run.echo_endpoint, t0, t0 + sizes.plain_seconds, sizes.batch, sizes.window))
        res = _gather(run.ctls, "plaintext window")
        if k:
            plain_rates.append(sum(r["moved"] for r in res) / sizes.plain_seconds)
            plain_cpu.append(sum(r["cpu"] for r in res) / sizes.plain_seconds)
    progress.step(f"ping-pong: {reps} x {sizes.pings} round trips of one 60-byte message")
    ping_p50 = []
    for _ in range(reps):
        run.ctls[0].send(("ping", run.echo_endpoint, sizes.pings))
        rtts = _recv(run.ctls[0], "ping-pong")
        ping_p50.append(float(np.percentile(rtts, 50)))
    run.server_ctl.send(("done",))
    _recv(run.server_ctl, "server echo end")

    progress.step(f"latency at offered rates {', '.join(f'{r:,}' for r in sizes.rates)} orders/s")
    lat: dict[int, list[tuple[float, float, float]]] = {}
    lat_missing: dict[int, int] = {}
    lat_cpu: dict[int, list[float]] = {}
    for rate in sizes.rates:
        lat[rate] = []
        lat_missing[rate] = 0
        lat_cpu[rate] = []
        for k in range(reps + 1):
            length = warm_rate_s if k == 0 else sizes.rate_seconds
            t0 = time.monotonic() + 0.2
            run.ctls[0].send(("paced", t0, t0 + length, rate, 1 << 40, sizes.tick_s))
            res = [_recv(run.ctls[0], f"latency at {rate}/s")]
            run.remaining[0] -= res[0]["sent"]
            if k == 0:
                continue
            samples = np.concatenate([r["lat_us"] for r in res])
            lat_missing[rate] += int(np.count_nonzero(np.isnan(samples)))
            lat[rate].append(_percentiles(samples[~np.isnan(samples)]))
            lat_cpu[rate].append(res[0]["cpu"] / length)

    progress.step(f"CLIENT_HELLO flood: {reps} rounds")
    flood = _flood(run, flood_ctl)

    progress.step("the engine alone on the server's batches")
    run.server_ctl.send(("stop",))
    server_hash, final, marks = _recv(run.server_ctl, "server stop")
    client_end = []
    for c in run.ctls:
        c.send(("stop",))
        client_end.append(_recv(c, "client stop"))
    flood_ctl.send(("stop",))
    t_join = time.monotonic()
    for proc in [*run.clients, run.server, flooder]:
        proc.join(30)  # the replay below has the machine to itself
    t_replay = time.monotonic()
    alone_s, alone_wall_s, alone_hash = _engine_alone(record_path, marks, config)
    report.extra["engine_alone_seconds"] = {
        "waiting_for_processes_to_end": round(t_replay - t_join, 2),
        "replay_with_setup": round(time.monotonic() - t_replay, 2),
    }
    if alone_hash != server_hash:
        raise BenchmarkError("engine replay: the state hash differs from the server's")
    phase_orders: dict[int, int] = {}
    for count, phase in marks:
        if phase > 0:
            phase_orders[phase] = phase_orders.get(phase, 0) + count

    # --- results -----------------------------------------------------------------------
    note = f"{n} clients, {sizes.batch} orders per record, {sizes.window} records in flight each"
    by_window = _window_results(windows, note)
    orders = report.add(by_window["orders_per_s"])
    for name in ("msgs_per_s", "gbps_in", "gbps_out", "trades_per_s"):
        report.add(by_window[name])
    alone_rates = [phase_orders[k + 1] / alone_s[k + 1] for k in range(reps) if alone_s.get(k + 1)]
    alone = report.add(
        _common.from_samples(
            "engine_alone_orders_per_s", alone_rates, "orders/s", "the server's batches replayed; thread CPU time"
        )
    )
    alone_wall = [phase_orders[k + 1] / alone_wall_s[k + 1] for k in range(reps) if alone_wall_s.get(k + 1)]
    report.add(_common.from_samples("engine_alone_wall_orders_per_s", alone_wall, "orders/s", "the same, wall time"))
    report.add(_common.ratio("over_engine_alone", orders, alone, "target >= 0.50"))
    for name in _IN_SERVER:
        if name in by_window:  # only the paths that ran in the windows
            report.add(by_window[name])
    plain = report.add(
        _common.from_samples(
            "plaintext_ceiling.orders_per_s", plain_rates, "msgs/s", "same frames, plain DEALER->ROUTER echo"
        )
    )
    report.add(_common.ratio("over_plaintext_ceiling", orders, plain))
    for name in ("cpu.clients_cores", "cpu.server_cores", "engine_share_of_server_time"):
        report.add(by_window[name])
    if "record_path_share_of_server_time" in by_window:
        report.add(by_window["record_path_share_of_server_time"])
    for rate in sizes.rates:
        report.add(_common.from_samples(f"rtt.p50_us@{rate}", [p[0] for p in lat[rate]], "us"))
        report.add(_common.from_samples(f"rtt.p99_us@{rate}", [p[1] for p in lat[rate]], "us"))
        report.add(_common.from_samples(f"rtt.p999_us@{rate}", [p[2] for p in lat[rate]], "us"))
    ping = report.add(_common.from_samples("pingpong.p50_us", ping_p50, "us", "plaintext, one 60-byte message"))
    if 100_000 in lat:
        p50 = next(r for r in report.results if r.name == "rtt.p50_us@100000")
        report.add(_common.ratio("rtt_p50_over_pingpong@100000", p50, ping, "target <= 2"))
    for r in flood:
        report.add(r)

    reconcile = _reconcile(client_end)
    report.extra["reconcile"] = {**reconcile, "latency_orders_unanswered_in_time": lat_missing}
    report.add(_missing(reconcile))
    server_cpu = final["cpu"]
    report.extra["cpu_seconds"] = {
        "clients": sum(c["cpu"] for c in client_end),
        "server": server_cpu,
        "note": "process CPU (user + system, all threads) over the whole run, setup included",
        "throughput_windows": {
            "clients": sum(w["client_cpu"] for w in windows),
            "server": sum(_delta(w["before"], w["after"], "cpu") for w in windows),
            "seconds": sum(w["span"] for w in windows),
        },
        "plaintext_clients_cores": statistics.median(plain_cpu),
        "latency_client_cores": {str(r): statistics.median(v) for r, v in lat_cpu.items()},
    }
    report.extra["sizes"] = dataclasses.asdict(sizes)
    report.extra["durability"] = ",".join(one.label for one in runs) if compare == "durability" else "none"
    report.extra["mode"] = run.mode
    report.extra["windows_truncated"] = sum(1 for w in windows if w["truncated"])
    report.extra["engine_state_hash"] = server_hash.hex()
    bars = {"encrypted,\nmatched, acked": orders.value}
    if compare == "durability":
        _prefix_and_add_others(report, runs, windows_of, others, note)
        bars = {f"{one.label},\nencrypted,\nmatched, acked": _find(report, f"{one.label}.orders_per_s") for one in runs}
    elif compare == "md":
        _add_md_results(report, windows, windows_of[1], others[0], note, md_extra)
        bars = {
            "feed on,\nencrypted,\nmatched, acked": orders.value,
            "feed off,\nencrypted,\nmatched, acked": _find(report, "md.off.orders_per_s"),
        }
    report.extra["market_data"] = _md_document(compare, md_extra)
    report.plot_data = {
        "rates": list(sizes.rates),
        "p50": [statistics.median(p[0] for p in lat[r]) for r in sizes.rates],
        "p99": [statistics.median(p[1] for p in lat[r]) for r in sizes.rates],
        "ping": ping.value,
        "tick_us": round(sizes.tick_s * 1e6),
        "bars": {**bars, "engine alone": alone.value, "plaintext ZeroMQ": plain.value},
        "label": run.label if compare == "durability" else "",
    }


def _missing(reconcile: dict[str, Any], prefix: str = "") -> _common.Result:
    sent = reconcile["orders_sent"]
    note = f"of {sent:,} sent, none without an outcome: 0"
    return _common.single(f"{prefix}reconcile.missing_orders", float(reconcile["missing"]), "orders", note)


def _find(report: _common.Report, name: str) -> float:
    return next(r.value for r in report.results if r.name == name)


def _prefix_and_add_others(
    report: _common.Report,
    runs: list[_Run],
    windows_of: list[list[dict[str, Any]]],
    others: list[tuple[dict[str, Any], list[dict[str, Any]]]],
    note: str,
) -> None:
    """With ``--durability``: prefix the first server's names by its mode, add the
    throughput figures of the other servers under theirs, and ``<mode>_over_none``."""
    first = runs[0]
    report.results = [dataclasses.replace(r, name=f"{first.label}.{r.name}") for r in report.results]
    orders = {first.label: next(r for r in report.results if r.name == f"{first.label}.orders_per_s")}
    detail: dict[str, Any] = {
        first.label: {
            "phases": "all",
            "reconcile": report.extra["reconcile"],
            "windows_truncated": report.extra["windows_truncated"],
        }
    }
    for run, windows, (final, ends) in zip(runs[1:], windows_of[1:], others, strict=True):
        for r in _window_results(windows, note).values():
            added = report.add(dataclasses.replace(r, name=f"{run.label}.{r.name}"))
            if r.name == "orders_per_s":
                orders[run.label] = added
        reconcile = _reconcile(ends)
        report.add(_missing(reconcile, f"{run.label}."))
        detail[run.label] = {
            "phases": "prefill and throughput windows",
            "reconcile": reconcile,
            "windows_truncated": sum(1 for w in windows if w["truncated"]),
            "server_cpu_s": final["cpu"],
        }
    base = orders.get("none")
    for label, r in orders.items():
        if base is None or label == "none":
            continue
        if base.value > 0:
            report.add(_common.ratio(f"{label}_over_none", r, base, "orders/s medians, windows taking turns"))
        else:  # windows cut to a few 10 ms bins (tiny test streams) can count nothing
            detail[label]["over_none"] = "not computed: none.orders_per_s has a median of 0"
    report.extra["durability_runs"] = detail


def _md_finish(run: _Run, follower: _Subscriber, windows: list[dict[str, Any]]) -> dict[str, Any]:
    """The clients have stopped: the subscriber gets up to ``_MD_SYNC_S`` to apply every
    packet published, then its books and the engine's are compared by digest; its lag
    over the timed windows and its counters come back with it, and it ends."""
    state = run.server_call("md")
    intervals = [w["wall_ns"] for w in windows]
    end = follower.call("finish", state["last"], _MD_SYNC_S, intervals)
    follower.proc.join(10)
    theirs, mine = state["digests"], end.pop("digests")
    differing = sorted(k for k in set(theirs) | set(mine) if theirs.get(k) != mine.get(k))
    return {
        "final": {k: end[k] for k in ("synced", "seconds", "cpu", "open_gaps")},
        "books_equal": state["combined"] == end["combined"],
        "books": {
            "engine_digest": state["combined"],
            "subscriber_digest": end["combined"],
            "instruments": len(theirs),
            "instruments_differing": len(differing),
            "first_differing": differing[:10],
            "engine_resting_orders": state["resting_orders"],
            "digest_seconds": {"engine": round(state["digest_s"], 3), "subscriber": round(end["digest_s"], 3)},
        },
        "lag": end["lag"],
        "subscriber": end["stats"],
        "subscriber_cpu_s": end["cpu_total"],
        "subscriber_cpu_us_per_record": round(
            end["cpu_total"] / max(1, end["stats"]["totals"]["records"]) * 1e6, 2
        ),  # snapshots, the digest and idle polls included
    }


def _md_window_results(windows: list[dict[str, Any]]) -> list[_common.Result]:
    """What the ``md`` server published in its windows, as rates (``_per_order``)."""
    wire = "records and 16-byte packet headers; topics (13-14 bytes a packet) and ZeroMQ framing not counted"

    def gbps(w: dict[str, Any]) -> float:
        return (_per_order("md_bytes")(w) + _MD_HEADER * _per_order("md_packets")(w)) * 8e-9

    return [
        _common.from_samples(
            "md.records_per_s",
            [_per_order("md_published")(w) for w in windows],
            "records/s",
            "sequenced records published, summed over the 4 feeds",
        ),
        _common.from_samples(
            "md.packets_per_s", [_per_order("md_packets")(w) for w in windows], "packets/s", "PUB messages"
        ),
        _common.from_samples("md.gbps", [gbps(w) for w in windows], "Gbit/s", wire),
    ]


def _add_md_results(
    report: _common.Report,
    windows: list[dict[str, Any]],
    off_windows: list[dict[str, Any]],
    off_end: tuple[dict[str, Any], list[dict[str, Any]]],
    note: str,
    md: dict[str, Any],
) -> None:
    """The market-data comparison's names: the ``nomd`` server's window figures under
    ``md.off.``, ``md.on_over_off``, what was published, and the subscriber's figures."""
    for r in _window_results(off_windows, note).values():
        report.add(dataclasses.replace(r, name=f"md.off.{r.name}"))
    report.add(_missing(_reconcile(off_end[1]), "md.off."))
    on, off = _find_result(report, "orders_per_s"), _find_result(report, "md.off.orders_per_s")
    if off.value > 0:
        report.add(
            _common.ratio("md.on_over_off", on, off, "acknowledged orders/s, feed on over off, windows taking turns")
        )
    else:  # windows cut to a few 10 ms bins (tiny test streams) can count nothing
        md["on_over_off"] = "not computed: md.off.orders_per_s has a median of 0"
    for r in _md_window_results(windows):
        report.add(r)
    lag = md["lag"]
    per = [p for p in lag["windows"] if p is not None]
    lag_note = "a live packet's SendingTime (published) to the subscriber having applied it, per window"
    if not per and lag["all"] is not None:
        per, lag_note = [lag["all"]], "no window's packet was applied live: all packets of the run"
    for i, name in enumerate(("md.lag_p50_us", "md.lag_p99_us", "md.lag_p999_us")):
        if per:
            report.add(_common.from_samples(name, [p[i] for p in per], "us", lag_note))
        else:
            report.add(_common.single(name, 0.0, "us", "no live packet was applied: nothing to time"))
    catchups = [w["catchup"] for w in windows]
    report.add(
        _common.from_samples(
            "md.catchup_s",
            [c["seconds"] for c in catchups],
            "s",
            "after each window, until the subscriber had applied everything published (0: it kept up)",
        )
    )
    report.add(
        _common.from_samples(
            "md.subscriber_cores", [w["follower_cores"] for w in windows], "cores", "during the md windows"
        )
    )
    final = md["final"]
    report.add(
        _common.single(
            "md.unrecovered_gaps",
            float(final["open_gaps"]),
            "instruments",
            f"open after the subscriber's last {_MD_SYNC_S:.0f} s to catch up; target 0",
        )
    )
    books = md["books"]
    report.add(
        _common.single(
            "md.books_equal",
            1.0 if md["books_equal"] else 0.0,
            "bool",
            f"all {books['instruments']:,} instruments' L3, L2, BBO and status by digest; target 1",
        )
    )
    md["off_window_subscriber_cores"] = [round(w["follower_cores"], 3) for w in off_windows]
    md["catchup_per_window"] = catchups


def _md_document(compare: str, md: dict[str, Any]) -> dict[str, Any]:
    """The document's ``market_data``: what ran, and the subscriber's account."""
    if compare == "durability":
        return {"servers": "off: the durability comparison is about the journal alone"}
    if compare != "md":
        return {"servers": "off (--no-md)"}
    return {
        "servers": "md (published, one subscriber of all four feeds of every instrument) and nomd (off), "
        "windows taking turns; every other phase on md",
        **md,
    }


def _find_result(report: _common.Report, name: str) -> _common.Result:
    return next(r for r in report.results if r.name == name)


def _flood(run: _Run, flood_ctl: Connection) -> list[_common.Result]:
    """Quiet RTT, then RTT, known-client handshakes and server RSS under a hello flood."""
    from qfix.client import Client

    sizes = run.sizes
    ratio, quiet_p99, flood_p99, handshakes, rss_peak, rss_quiet = [], [], [], [], [], []
    offered: list[float] = []
    answered: list[float] = []
    failed = 0
    ctl0 = run.ctls[0]
    for k in range(sizes.repeats):
        t0 = time.monotonic() + 0.2
        ctl0.send(("paced", t0, t0 + sizes.flood_quiet_seconds, sizes.flood_rtt_rate, 1 << 40, sizes.tick_s))
        rss_quiet.append(_rss_mib(run.server_pid))
        quiet = _recv(ctl0, "quiet RTT")
        run.remaining[0] -= quiet["sent"]
        t0 = time.monotonic() + 0.3
        t1 = t0 + sizes.flood_seconds
        flood_ctl.send(("flood", t0, t1, sizes.flood_rate, sizes.flood_connections))
        ctl0.send(("paced", t0 + 0.3, t1, sizes.flood_rtt_rate, 1 << 40, sizes.tick_s))
        peak = 0.0
        _wait_until(t0 + 0.3)
        for j in range(sizes.known_handshakes):
            if time.monotonic() > t1 - 0.2:
                break
            peak = max(peak, _rss_mib(run.server_pid))
            key = _client_key(sizes.clients + k * sizes.known_handshakes + j)
            client = Client(run.fix_endpoint, key, _server_key().verify_key(), mode=run.mode)
            start = time.perf_counter()
            try:
                client.connect(timeout=max(1.0, sizes.flood_seconds * 4))
                handshakes.append(time.perf_counter() - start)
            except Exception:  # a refused or timed-out handshake is a result
                failed += 1
                handshakes.append(time.perf_counter() - start)
            finally:
                client.close()
            peak = max(peak, _rss_mib(run.server_pid))
        while time.monotonic() < t1:
            peak = max(peak, _rss_mib(run.server_pid))
            time.sleep(0.1)
        sent = _recv(flood_ctl, "flood")
        loaded = _recv(ctl0, "RTT under flood")
        run.remaining[0] -= loaded["sent"]
        peak = max(peak, _rss_mib(run.server_pid))
        q = quiet["lat_us"][~np.isnan(quiet["lat_us"])]
        f = loaded["lat_us"][~np.isnan(loaded["lat_us"])]
        if q.size == 0 or f.size == 0:
            raise BenchmarkError("flood: no round trip was measured")
        qp, fp = _percentiles(q)[1], _percentiles(f)[1]
        quiet_p99.append(qp)
        flood_p99.append(fp)
        ratio.append(fp / qp)
        rss_peak.append(peak)
        offered.append(sent["sent"] / sent["seconds"])
        answered.append(sent["replies"] / sent["seconds"])
    note = f"{sizes.flood_connections} connections, {sizes.flood_rate:,}/s asked for the whole round"
    hs_note = f"allow-listed clients during the flood; {failed} of {len(handshakes)} failed" if failed else ""
    return [
        _common.from_samples("flood.rtt_p99_over_quiet", ratio, "ratio", f"session at {sizes.flood_rtt_rate} orders/s"),
        _common.from_samples("flood.quiet_rtt_p99_us", quiet_p99, "us"),
        _common.from_samples("flood.rtt_p99_us", flood_p99, "us"),
        _common.from_samples("flood.known_client_handshake_s", handshakes, "s", hs_note),
        _common.from_samples("flood.server_rss_mib", rss_peak, "MiB", "peak VmRSS during the flood"),
        _common.from_samples("flood.server_rss_quiet_mib", rss_quiet, "MiB"),
        _common.from_samples("flood.hellos_offered_per_s", offered, "hello/s", note),
        _common.from_samples(
            "flood.hello_replies_per_s",
            answered,
            "frames/s",
            "frames back (ERROR, HELLO_RETRY, SERVER_HELLO), until 1 s after the round",
        ),
    ]


def plot(report: _common.Report, path: str) -> None:
    """Throughput beside its two baselines; round-trip percentiles against offered rate."""
    plt = _common.pyplot()
    data = report.plot_data
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.5))
    names = list(data["bars"])
    heights = [data["bars"][k] / 1e3 for k in names]
    ax1.bar(names, heights, color=["tab:blue"] * (len(names) - 2) + ["tab:green", "tab:gray"])
    for x, h in enumerate(heights):
        ax1.annotate(f"{h:,.0f}k", (x, h), ha="center", va="bottom")
    ax1.set_yscale("log")
    ax1.set_ylabel("k orders/s (median, log scale)")
    ax1.set_title("throughput, same run")
    ax2.plot(data["rates"], data["p50"], marker="o", label="p50")
    ax2.plot(data["rates"], data["p99"], marker="o", label="p99")
    ax2.axhline(data["ping"], color="tab:gray", linestyle="--", label="plaintext ping-pong p50")
    ax2.set_xscale("log")
    ax2.set_yscale("log")
    ax2.set_xlabel(f"offered orders/s (one session, {data['tick_us']} us ticks)")
    ax2.set_ylabel("round trip, us (from scheduled send)")
    ax2.set_title("latency" + (f", durability {data['label']}" if data.get("label") else ""))
    ax2.grid(True, which="both", alpha=0.3)
    ax2.legend()
    fig.suptitle("qfix bench net" + (" (quick)" if report.quick else ""))
    _common.save_figure(fig, path)


@click.command("net")
@click.option("--clients", default=20, show_default=True, help="Client processes.")
@click.option("--seconds", default=30.0, show_default=True, help="Total length of the timed throughput windows.")
@click.option("--pq-only", is_flag=True, help="QZMQ in pq-only mode (ML-KEM-768 alone).")
@click.option("--quick", is_flag=True, help="Shorter windows, the quick stream and 3 repeats.")
@click.option(
    "--streams",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("bench-out/streams"),
    show_default=True,
    help="Where workload stream files are saved and replayed from (shared with bench engine).",
)
@click.option("--instruments", type=int, default=None, hidden=True)
@click.option("--messages", type=int, default=None, hidden=True)
@click.option("--rates", default=None, hidden=True, help="Comma-separated offered rates.")
@click.option(
    "--tick-us",
    type=click.IntRange(10, 100_000),
    default=DEFAULT_TICK_US,
    show_default=True,
    help="The latency phase's session sends what is due once per this many microseconds (round trips run "
    "from each order's scheduled time, so an order also waits half a tick on average).",
)
@click.option("--smoke", is_flag=True, hidden=True, help="Tiny durations (the smoke test).")
@click.option(
    "--durability",
    "durability_text",
    default=None,
    metavar="MODE[,MODE...]",
    help="Give the server a journal in each of these modes (fsync, batch-async, none): one server per mode, "
    "throughput windows taking turns, names prefixed by the mode; the other phases on the first mode's server. "
    "Without it the server has no journal.",
)
@click.option(
    "--journal-dir",
    "journal_parent",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("bench-out"),
    show_default=True,
    help="With --durability: where the temporary journals go (on the disk to measure, not tmpfs).",
)
@click.option(
    "--md/--no-md",
    default=True,
    show_default=True,
    help="Compare a server publishing market data (followed by a subscriber process) with one that does not, "
    "throughput windows taking turns: md.* names. --no-md: one server, market data off. With --durability "
    "every server runs with market data off.",
)
@_common.output_options
def command(
    clients: int,
    seconds: float,
    pq_only: bool,
    quick: bool,
    streams: Path,
    instruments: int | None,
    messages: int | None,
    rates: str | None,
    tick_us: int,
    smoke: bool,
    durability_text: str | None,
    journal_parent: Path,
    md: bool,
    json_path: str | None,
    plot_path: str | None,
    quiet: bool,
) -> None:
    """Server and N clients on loopback: orders/s, Gbps, trades/s, latency, hello flood, market data."""
    _common.check_outputs(json_path, plot_path)
    if clients < 1:
        raise click.BadParameter("at least 1", param_hint="--clients")
    durability = parse_durability(durability_text)
    if durability:
        _common.check_output_path(journal_parent / ".qfix-bench-net.probe", "--journal-dir")
    sizes = sizes_for(clients, seconds, quick, pq_only)
    if instruments is not None or messages is not None or rates is not None:
        sizes = dataclasses.replace(
            sizes,
            instruments=instruments if instruments is not None else sizes.instruments,
            messages=messages if messages is not None else sizes.messages,
            rates=tuple(int(r) for r in rates.split(",")) if rates else sizes.rates,
        )
    sizes = dataclasses.replace(sizes, tick_s=tick_us / 1e6)
    if smoke:
        sizes = dataclasses.replace(sizes, **_SMOKE)
    steps = STEPS if md and not durability else STEPS - 1
    with _common.Progress(steps, quiet=quiet) as progress:
        report = run(sizes, quick, streams, progress, durability, journal_parent, md=md and not durability)
    _common.finish(report, json_path, plot_path, plot)


#: set in the environment the forkserver of ``run`` starts with
_WARM_ENV: Final = "QFIX_BENCH_NET_FORKSERVER"


def _warm_children() -> None:
    """Load the jitted validation every client calls on its first report: 0.4 s of CPU per
    process from Numba's cache (measured), 20 or 40 times over at the start of a run,
    unless the forkserver its processes fork from has loaded it once."""
    from qfix.wire import codec

    codec.validate(bytes(codes.MESSAGE_SIZE), 0, codec.SERVER_TO_CLIENT)


if os.environ.get(_WARM_ENV) == "1":  # this module's import in the forkserver (run)
    with contextlib.suppress(Exception):  # an optimisation: never a reason for the forkserver to fail
        _warm_children()
