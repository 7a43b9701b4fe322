"""``qfix bench journal``: journal append, replay beside the engine, and restart time (BENCHMARKS.md).

Theory of operation. The messages are ENGINE.md §10's ``mix`` workload, the saved stream
that ``qfix bench engine`` replays (quick or full, generated once under ``--streams``),
prefill included, cut into batches of ``--batch`` (1,000) INBOUND records; one batch is
one journal record, as the server journals one engine batch. Everything below runs in
one process, in one run, side by side:

* **append** (``append.msgs_per_s`` in mode ``fsync``, ``append_batch_async.msgs_per_s``,
  ``append_none.msgs_per_s``): per batch ``entries.encode`` + ``JournalWriter.append`` +
  ``JournalWriter.commit``, the journal alone with the sync inline (the server's Ledger
  overlaps the fsync with the engine instead: see **live**), into a fresh journal
  directory per run; the final ``close`` (its sync) is not timed. The three modes take
  turns within each repeat. ``append.commit_p99_us``: the 99th percentile of one
  batch's encode + append + commit in mode ``fsync``.
* **replay** (``replay.msgs_per_s``): the wall time of constructing
  :class:`qfix.server.ledger.Ledger` on a journal of the same batches (a checkpoint of
  the empty state at sequence 0, one OpenSession record per workload session, then the
  batches), which is what a restart does: load the checkpoint, ``read_journal``,
  ``decode``, ``EngineDriver.apply`` into a fresh engine, and the session table's work
  (each replayed report goes back into its session's retransmission history). The
  workload's SessionIDs are kept: ``mix`` draws one of 1,000 sessions per message, so
  the reports of one batch go to some 600 sessions. The ServerConfig is the server's
  default one except for the instruments (the workload's, ``max_order_qty`` 10,000, as
  ``qfix bench net``) and the journal settings.
* **engine** (``engine.msgs_per_s``): the same batches into a fresh Engine of the same
  configuration through ``EngineDriver.apply``, no journal; the engine is built before
  the clock starts. ``replay_over_engine`` is the ratio of the two medians (the issue's
  target: at least 0.8). Beside them, to show where the time goes:
  ``replay_driver.msgs_per_s`` (``read_journal`` + ``decode`` + ``EngineDriver.apply``,
  no Ledger, no session table), ``read.msgs_per_s`` (``read_journal`` + ``decode``
  only) and ``replay.fixed_s`` (a Ledger constructed on the same checkpoint and
  sessions without any batch: what a restart costs before its first message). Each
  repeat runs them all in turn, with **live** (``live_fsync.msgs_per_s``,
  ``live_none.msgs_per_s``, ``live_fsync_over_engine``): ``Ledger.apply`` of every
  batch on a fresh journal in that mode, as the server's loop calls it (append, write,
  the engine while the disk syncs, the batch's output held until its record is durable),
  the sessions opened before the clock starts. Every run must reach the state hash of an
  untimed engine run over the same batches.
* **restart** (``restart_s@N``, N = 10,000,000; 500,000 with ``--quick``; ``--tail``
  sets it): the wall time of constructing a Ledger on a journal whose tail after the
  newest checkpoint holds N messages. The journal is built once through a Ledger in
  mode ``none`` (``restart.build_s@N``, reported apart): the checkpoint at sequence 0, the
  OpenSession records, a checkpoint after them, then the tail. The Ledger recovers from
  the second newest checkpoint when there are two (server/ledger.py), so a restart here
  replays the OpenSession records and the N messages and checks the state hash at the
  newest checkpoint on the way. N messages of ``mix`` would leave ``mix``'s book bounded,
  but the generator is a Python loop (minutes for 10M), so the tail is the saved stream
  tiled over instruments: copy k (from 0) is the whole stream, prefill included, on
  instrument k + 1, with ClOrdIDs, OrigClOrdIDs, OrderIDs and RecvTimes shifted past copy
  k - 1's; each instrument's book then behaves exactly as ``mix``'s (every whole copy must
  produce as many output records as the untimed run of the stream, with as many
  rejects), and the whole book stays at about 1,000 resting orders per copy. The last
  copy is cut at N messages. The journal was just written, so it is read from the page
  cache: this is the restart after a process crash, not after a power cut.

Figures are medians of 5 repeats (3 with ``--quick``) with min and max, after an untimed
engine run that compiles or loads the kernels and an untimed Ledger recovery (on the
journal without batches). The journals go into a temporary directory under
``--journal-dir`` (default ``bench-out``, beside the streams), never the system's
temporary folder, which may be tmpfs; the document names the file system
(``journal_filesystem``) and the one ``tempfile`` would have used
(``tempfile_filesystem``).
"""

from __future__ import annotations

import dataclasses
import gc
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, Final

import click
import numpy as np
import numpy.typing as npt

from qfix.bench import _common
from qfix.errors import BenchmarkError
from qfix.wire import codes, schema

__all__ = ["MODES", "command", "filesystem", "run", "steps"]

Array = npt.NDArray[Any]

#: append modes in the order they take turns; ``append`` alone is fsync, as BENCHMARKS.md names it
MODES: Final = ("fsync", "batch-async", "none")
_APPEND_NAMES: Final = {"fsync": "append", "batch-async": "append_batch_async", "none": "append_none"}
TAIL: Final = 10_000_000
QUICK_TAIL: Final = 500_000
_MAX_ORDER_QTY: Final = 10_000  #: the workload's quantities are at most 100; keeps the output bound small
_T_ER: Final = codes.TEMPLATE_EXECUTION_REPORT
_T_OCR: Final = codes.TEMPLATE_ORDER_CANCEL_REJECT
_ER_ORDER_ID: Final = slice(24, 32)
_ER_EXEC_TYPE: Final = 56
_BY_TEMPLATE: Final = schema.INBOUND_BY_TEMPLATE


def _repeats(quick: bool) -> int:
    return 3 if quick else 5


def steps(quick: bool) -> int:
    """Progress steps of :func:`run`: stream, engine warm-up, append (a warm-up and one
    step per mode and repeat), building the replay journals, the Ledger warm-up, the
    replay repeats, building the restart journal, the restart repeats."""
    r = _repeats(quick)
    return 2 + (1 + len(MODES) * r) + 1 + (1 + r) + 1 + r


# --- where the journal lives ----------------------------------------------------------------


def filesystem(path: Path) -> dict[str, Any]:
    """The mount point, file system type and device holding ``path`` (from
    /proc/self/mountinfo; "unknown" where that cannot be read)."""
    target = path.resolve()
    found = {"path": str(target), "mount": "unknown", "type": "unknown", "device": "unknown"}
    try:
        lines = Path("/proc/self/mountinfo").read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return found
    best = -1
    for line in lines:
        left, _, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if len(fields) < 5 or len(tail) < 2:
            continue
        mount = fields[4].replace("\\040", " ").replace("\\011", "\t").replace("\\134", "\\")
        point = Path(mount)
        # later lines mount over earlier ones at the same point: >= lets them win
        if (point == target or point in target.parents) and len(mount) >= best:
            best = len(mount)
            found.update(mount=mount, type=tail[0], device=tail[1])
    return found


def _memory_backed(fs: dict[str, Any]) -> bool:
    return fs["type"] in ("tmpfs", "ramfs")


# --- workload ---------------------------------------------------------------------------------


def _load_stream(quick: bool, streams: Path, messages: int | None) -> tuple[Array, int, Path, str]:
    """(records, prefill, file, digest): the saved mix stream (``messages``: a smaller
    one for tests, generated on the fly and saved beside it)."""
    from qfix.bench import engine as engine_bench
    from qfix.testing import generators as gen

    if messages is None:
        return engine_bench._stream("mix", quick, streams)
    path = streams / f"mix-n{messages}-seed1.qfs"
    prefill_file = path.with_suffix(".prefill")
    if not path.exists() or not prefill_file.exists():
        from qfix.engine import Engine, EngineConfig

        streams.mkdir(parents=True, exist_ok=True)
        wl = gen.mix(quick=True, n=messages, engine=Engine((gen._wl_instrument(1),), EngineConfig()))
        gen.save_stream(path, wl.records)
        prefill_file.write_text(f"{wl.prefill}\n", encoding="ascii")
    prefill = int(prefill_file.read_text(encoding="ascii"))
    return gen.load_stream(path), prefill, path, gen.stream_digest(path)


def _instruments(count: int) -> tuple[Any, ...]:
    from qfix.testing import generators as gen

    return tuple(dataclasses.replace(gen._wl_instrument(s), max_order_qty=_MAX_ORDER_QTY) for s in range(1, count + 1))


def _config(instruments: int, journal: Path, durability: str = "none") -> Any:
    """The server's default configuration with the workload's instruments and ``journal``."""
    from qfix.server.config import ServerConfig

    return ServerConfig(
        instruments=_instruments(instruments),
        key_file=journal / "unused.key",  # the Ledger reads no key
        allow_list_file=journal / "unused.toml",
        journal_dir=journal,
        durability=durability,
        checkpoint_every_messages=0,
        checkpoint_every_s=0.0,
        source="qfix bench journal",
    )


def _entry(config: Any) -> Any:
    """The session layer exactly as the server builds it."""
    from qfix.server.session import OrderEntry

    return OrderEntry(
        throttle=config.throttle,
        max_rejects=config.max_rejects,
        retransmit_keep=config.retransmit_keep,
        max_sessions=config.engine.max_sessions,
    )


def _batches(records: Array, batch: int) -> list[Array]:
    return [records[i : i + batch] for i in range(0, len(records), batch)]


@dataclasses.dataclass
class _Tally:
    """What the engine wrote over a stretch of batches (a dispatch target)."""

    records: int = 0
    rejects: int = 0  #: ExecutionReports with ExecType rejected, and OrderCancelRejects
    max_order_id: int = 0

    def __call__(self, out: Array) -> None:
        self.records += int(out.size)
        msgs = out["message"]
        tids = np.ascontiguousarray(msgs[:, 2:4]).view("<u2").ravel()
        ers = msgs[tids == _T_ER]
        if ers.shape[0]:
            ids = np.ascontiguousarray(ers[:, _ER_ORDER_ID]).view("<u8")
            self.max_order_id = max(self.max_order_id, int(ids.max()))
            self.rejects += int(np.count_nonzero(ers[:, _ER_EXEC_TYPE] == codes.EXEC_TYPE_REJECTED))
        self.rejects += int(np.count_nonzero(tids == _T_OCR))


def _tile(records: Array, copy: int, order_ids: int) -> Array:
    """The stream moved to instrument ``copy + 1``, every identifier past copy ``copy - 1``'s.

    ``order_ids``: the OrderIDs one copy makes the engine assign (the engine assigns them
    from one counter, so copy k's are copy 0's plus k times that)."""
    out = records.copy()
    if copy == 0:
        return out
    nos = out.view(_BY_TEMPLATE[codes.TEMPLATE_NEW_ORDER_SINGLE])
    tids = nos["templateId"].copy()
    k = np.uint64(copy)
    cl_shift = k * np.uint64(int(nos["ClOrdID"].max()))  # ClOrdIDs count per session from 1
    # ClOrdID sits at the same offset in every inbound template
    nos["ClOrdID"] += cl_shift
    out["RecvTime"] += np.uint64(copy * (int(out["RecvTime"].max()) - int(out["RecvTime"].min()) + 1_000))
    for tid in sorted(_BY_TEMPLATE):
        rows = tids == tid
        if not rows.any():
            continue
        view = out.view(_BY_TEMPLATE[tid])
        view["SecurityID"][rows] = copy + 1
        if tid in (codes.TEMPLATE_ORDER_CANCEL_REQUEST, codes.TEMPLATE_ORDER_CANCEL_REPLACE_REQUEST):
            orig = view["OrigClOrdID"]
            given = rows & (orig != codes.NULL_U64)
            orig[given] += cl_shift
        if tid == codes.TEMPLATE_ORDER_CANCEL_REQUEST:
            oid = view["OrderID"]
            given = rows & (oid != codes.NULL_U64)
            oid[given] += k * np.uint64(order_ids)
    return out


def _tail(records: Array, count: int, order_ids: int, batch: int) -> Iterator[tuple[int, Array]]:
    """(copy, batch) over ``count`` messages of the tiled stream; batches never span copies."""
    left = count
    copy = 0
    while left > 0:
        part = _tile(records, copy, order_ids)[:left]
        for b in _batches(part, batch):
            yield copy, b
        left -= len(part)
        copy += 1


# --- the measured operations -------------------------------------------------------------------


def _append(directory: Path, mode: str, batches: list[Array]) -> tuple[float, list[float]]:
    """Seconds of encode + append + commit of every batch, and each batch's seconds."""
    from qfix.journal import JournalWriter, encode
    from qfix.journal.entries import Batch

    writer = JournalWriter(directory, durability=mode)
    each = []
    clock = time.perf_counter_ns
    try:
        start = clock()
        for b in batches:
            t = clock()
            kind, payload = encode(Batch(b))
            writer.append(kind, payload)
            writer.commit()
            each.append((clock() - t) / 1e9)
        took = (clock() - start) / 1e9
    finally:
        writer.close()
    return took, each


def _noop(out: Array) -> None:
    pass


def _build(
    config: Any, sessions: int, batches: Iterable[tuple[Callable[[Array], None], Array]], mid_checkpoint: bool
) -> tuple[bytes, int]:
    """Write a journal through a Ledger (mode ``none``): the OpenSession records, a
    checkpoint if ``mid_checkpoint``, then each batch, its output handed to the callable
    paired with it. Returns the final state hash and the messages journaled."""
    from qfix.journal.entries import Batch
    from qfix.server.ledger import Ledger

    ledger = Ledger(config, _entry(config))
    try:
        for s in range(sessions):
            # SessionIDs are given in login order from 0: the workload's own ids
            ledger.login(s, s.to_bytes(16, "big"), (s + 1,), 0.0)
        if mid_checkpoint:
            ledger.checkpoint(wait=True)
        messages = 0
        for dispatch, b in batches:
            ledger.apply(Batch(b), dispatch)
            messages += len(b)
        return ledger.engine.state_hash(), messages
    finally:
        ledger.close(checkpoint=False)


def _recover(config: Any) -> tuple[float, bytes, Any]:
    """Seconds to construct a Ledger on ``config``'s journal, the state hash it reached and
    its Recovery; the Ledger is closed without a checkpoint so the journal stays as it was."""
    from qfix.server.ledger import Ledger

    gc.collect()  # the previous run's histories are garbage: not this run's cost
    start = time.perf_counter()
    ledger = Ledger(config, _entry(config))
    took = time.perf_counter() - start
    state = ledger.engine.state_hash()
    recovery = ledger.recovery
    ledger.close(checkpoint=False)
    return took, state, recovery


def _live(config: Any, sessions: int, batches: list[Array]) -> tuple[float, bytes]:
    """Seconds of ``Ledger.apply`` of every batch on a fresh journal (the sessions opened
    before the clock starts), and the state hash reached; the journal is removed after."""
    from qfix.journal.entries import Batch
    from qfix.server.ledger import Ledger

    ledger = Ledger(config, _entry(config))
    try:
        for s in range(sessions):
            ledger.login(s, s.to_bytes(16, "big"), (s + 1,), 0.0)
        start = time.perf_counter()
        for b in batches:
            ledger.apply(Batch(b), _noop)
        took = time.perf_counter() - start
        state = ledger.engine.state_hash()
    finally:
        ledger.close(checkpoint=False)
    shutil.rmtree(config.journal_dir)
    return took, state


def _engine_run(config: Any, batches: list[Array], dispatch: Callable[[Array], None]) -> tuple[float, bytes]:
    from qfix.engine import Engine
    from qfix.journal import EngineDriver
    from qfix.journal.entries import Batch

    driver = EngineDriver(Engine(config.instruments, config.engine))
    start = time.perf_counter()
    for b in batches:
        driver.apply(Batch(b), dispatch)
    took = time.perf_counter() - start
    return took, driver.engine.state_hash()


def _driver_run(config: Any) -> tuple[float, bytes]:
    """read_journal + decode + EngineDriver.apply of the engine's entries (no Ledger)."""
    from qfix.engine import Engine
    from qfix.journal import EngineDriver, decode, is_engine_entry, read_journal

    driver = EngineDriver(Engine(config.instruments, config.engine))
    start = time.perf_counter()
    for _, kind, payload in read_journal(config.journal_dir):
        entry = decode(kind, payload)
        if is_engine_entry(entry):
            driver.apply(entry, _noop)
    took = time.perf_counter() - start
    return took, driver.engine.state_hash()


def _read_run(directory: Path) -> tuple[float, int]:
    from qfix.journal import decode, read_journal

    start = time.perf_counter()
    n = 0
    for _, kind, payload in read_journal(directory):
        decode(kind, payload)
        n += 1
    return time.perf_counter() - start, n


def _journal_bytes(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.iterdir() if p.suffix == ".qjl")


# --- the run ----------------------------------------------------------------------------


def run(
    quick: bool,
    streams: Path,
    journal_parent: Path,
    *,
    batch: int = 1000,
    tail: int | None = None,
    messages: int | None = None,
    progress: _common.Progress | None = None,
) -> _common.Report:
    """Measure; ``progress`` is advanced between timed runs (``steps(quick)`` steps)."""
    progress = progress if progress is not None else _common.Progress(steps(quick), quiet=True)
    report = _common.Report("journal", quick)
    repeats = _repeats(quick)
    tail = tail if tail is not None else (QUICK_TAIL if quick else TAIL)
    progress.step("mix stream (generated once, then loaded)")
    records, prefill, stream_path, digest = _load_stream(quick, streams, messages)
    batches = _batches(records, batch)
    n = len(records)
    sessions = int(records["SessionID"].max()) + 1
    report.extra["workload"] = {
        "name": "mix",
        "file": str(stream_path),
        "blake2b": digest,
        "messages": n,
        "prefill": prefill,
        "sessions": sessions,
    }
    report.extra["batch"] = batch
    journal_parent.mkdir(parents=True, exist_ok=True)
    fs = filesystem(journal_parent)
    default_tmp = Path(tempfile.gettempdir())
    report.extra["journal_filesystem"] = fs
    report.extra["tempfile_filesystem"] = {
        **filesystem(default_tmp),
        "same_device_as_journal": default_tmp.stat().st_dev == journal_parent.stat().st_dev,
    }
    if _memory_backed(fs):
        report.extra["warning"] = f"{journal_parent} is on {fs['type']}: fsync costs nothing there"
    with tempfile.TemporaryDirectory(prefix="qfix-bench-journal-", dir=journal_parent) as tmp:
        base = Path(tmp)
        progress.step("untimed engine run (compiles or loads the kernels; the reference state hash)")
        proof = _Tally()
        config = _config(1, base / "replay")
        _, expected = _engine_run(config, batches, proof)
        _measure_append(report, base, batches, repeats, n, progress)
        _measure_replay(report, base, batches, sessions, repeats, n, expected, progress)
        _measure_restart(report, base, records, sessions, batch, tail, proof, repeats, progress)
    return report


def _measure_append(
    report: _common.Report, base: Path, batches: list[Array], repeats: int, n: int, progress: _common.Progress
) -> None:
    progress.step("append: untimed warm-up run (mode none)")
    _append(base / "append-warm-up", "none", batches)
    shutil.rmtree(base / "append-warm-up")
    rates: dict[str, list[float]] = {m: [] for m in MODES}
    p50: list[float] = []
    p99: list[float] = []
    for r in range(repeats):
        for mode in MODES:
            progress.step(f"append, mode {mode}: run {r + 1}/{repeats}")
            folder = base / f"append-{mode}-{r}"
            took, each = _append(folder, mode, batches)
            shutil.rmtree(folder)
            rates[mode].append(n / took)
            if mode == "fsync":
                p50.append(float(np.percentile(each, 50)) * 1e6)
                p99.append(float(np.percentile(each, 99)) * 1e6)
    size = len(batches[0])
    for mode in MODES:
        note = f"encode + append + commit per {size}-record batch, mode {mode}"
        report.add(_common.from_samples(f"{_APPEND_NAMES[mode]}.msgs_per_s", rates[mode], "msgs/s", note))
    report.add(_common.from_samples("append.commit_p50_us", p50, "us", "one batch, mode fsync"))
    report.add(_common.from_samples("append.commit_p99_us", p99, "us", "one batch, mode fsync"))


def _measure_replay(
    report: _common.Report,
    base: Path,
    batches: list[Array],
    sessions: int,
    repeats: int,
    n: int,
    expected: bytes,
    progress: _common.Progress,
) -> None:
    progress.step("building the replay journals through a Ledger (mode none)")
    config = _config(1, base / "replay")
    built, _ = _build(config, sessions, ((_noop, b) for b in batches), mid_checkpoint=False)
    if built != expected:
        raise BenchmarkError("replay journal: the Ledger's state hash differs from the engine's")
    empty = _config(1, base / "replay-empty")
    _build(empty, sessions, iter(()), mid_checkpoint=False)
    report.extra["replay_journal"] = {
        "bytes": _journal_bytes(base / "replay"),
        "records": len(batches) + sessions,
        "note": "checkpoint at sequence 0 (empty state), one OpenSession record per session, then the batches",
    }
    progress.step("untimed Ledger recovery (warm-up)")
    _recover(empty)  # the engine run before loaded the kernels; this loads the snapshot code
    ledger_s: list[float] = []
    engine_s: list[float] = []
    driver_s: list[float] = []
    read_s: list[float] = []
    fixed_s: list[float] = []
    live_s: dict[str, list[float]] = {"fsync": [], "none": []}
    for r in range(repeats):
        progress.step(f"replay: Ledger, engine, driver, read, empty Ledger, live fsync and none {r + 1}/{repeats}")
        took, state, recovery = _recover(config)
        if state != expected or recovery.replayed != len(batches) + sessions:
            raise BenchmarkError(f"replay: recovery reached {state.hex()} after {recovery.replayed} records")
        ledger_s.append(took)
        took, state = _engine_run(config, batches, _noop)
        if state != expected:
            raise BenchmarkError("engine: the state hash differs from the untimed run")
        engine_s.append(took)
        took, state = _driver_run(config)
        if state != expected:
            raise BenchmarkError("replay driver: the state hash differs from the engine's")
        driver_s.append(took)
        took, count = _read_run(base / "replay")
        if count != len(batches) + sessions:
            raise BenchmarkError(f"read: {count} records read back, {len(batches) + sessions} written")
        read_s.append(took)
        fixed_s.append(_recover(empty)[0])
        for mode, samples in live_s.items():
            took, state = _live(_config(1, base / f"live-{mode}", mode), sessions, batches)
            if state != expected:
                raise BenchmarkError(f"live, mode {mode}: the state hash differs from the engine's")
            samples.append(took)
    replay = report.add(
        _common.from_samples(
            "replay.msgs_per_s",
            [n / s for s in ledger_s],
            "msgs/s",
            "Ledger construction: checkpoint load + read + decode + apply + session table",
        )
    )
    engine = report.add(
        _common.from_samples(
            "engine.msgs_per_s", [n / s for s in engine_s], "msgs/s", "same batches, EngineDriver, no journal"
        )
    )
    report.add(_common.ratio("replay_over_engine", replay, engine, "target >= 0.8"))
    driver = report.add(
        _common.from_samples(
            "replay_driver.msgs_per_s", [n / s for s in driver_s], "msgs/s", "read + decode + EngineDriver, no Ledger"
        )
    )
    report.add(_common.ratio("replay_driver_over_engine", driver, engine))
    report.add(_common.from_samples("read.msgs_per_s", [n / s for s in read_s], "msgs/s", "read_journal + decode"))
    live = {
        mode: report.add(
            _common.from_samples(
                f"live_{mode}.msgs_per_s",
                [n / s for s in samples],
                "msgs/s",
                f"Ledger.apply per batch, mode {mode}: journal + engine, output held until durable",
            )
        )
        for mode, samples in live_s.items()
    }
    report.add(_common.ratio("live_fsync_over_engine", live["fsync"], engine))
    report.add(
        _common.from_samples(
            "replay.fixed_s", fixed_s, "s", f"Ledger on the checkpoint and {sessions} sessions, no batch"
        )
    )


def _measure_restart(
    report: _common.Report,
    base: Path,
    records: Array,
    sessions: int,
    batch: int,
    tail: int,
    proof: _Tally,
    repeats: int,
    progress: _common.Progress,
) -> None:
    per_copy = len(records)
    copies = -(-tail // per_copy)
    progress.step(f"restart: building a journal with a {tail:,}-message tail ({copies} instruments)")
    config = _config(copies, base / "restart")
    tallies = [_Tally() for _ in range(copies)]
    pairs = ((tallies[copy], b) for copy, b in _tail(records, tail, proof.max_order_id, batch))
    start = time.perf_counter()
    built, count = _build(config, sessions, pairs, mid_checkpoint=True)
    build_s = time.perf_counter() - start
    for k, t in enumerate(tallies[: tail // per_copy]):
        if (t.records, t.rejects) != (proof.records, proof.rejects):
            raise BenchmarkError(
                f"restart tail: copy {k} wrote {t.records} records with {t.rejects} rejects where the stream "
                f"writes {proof.records} with {proof.rejects}; the tiling does not reproduce the workload"
            )
    if count != tail:
        raise BenchmarkError(f"restart tail: {count} messages journaled, {tail} wanted")
    report.add(_common.single(f"restart.build_s@{tail}", build_s, "s", "through a Ledger, mode none; untimed part"))
    from qfix.journal import list_checkpoints, list_segments

    seconds = []
    replayed = 0
    for r in range(repeats):
        progress.step(f"restart: Ledger on the {tail:,}-message tail {r + 1}/{repeats}")
        took, state, recovery = _recover(config)
        if state != built:
            raise BenchmarkError("restart: the recovered state hash differs from the one the journal was built to")
        replayed = recovery.replayed
        seconds.append(took)
    note = "checkpoint load + replay; target < 5" + ("; --quick tail" if tail != TAIL else "")
    report.add(_common.from_samples(f"restart_s@{tail}", seconds, "s", note))
    report.add(_common.from_samples(f"restart.msgs_per_s@{tail}", [tail / s for s in seconds], "msgs/s"))
    directory = base / "restart"
    report.extra["restart"] = {
        "tail_messages": tail,
        "copies_of_the_stream": copies,
        "instruments": copies,
        "journal_bytes": _journal_bytes(directory),
        "segments": len(list_segments(directory)),
        "checkpoints": [seq for seq, _ in list_checkpoints(directory)],
        "replayed_records": replayed,
        "records_per_copy": proof.records,
        "rejects_per_copy": proof.rejects,
        "note": "the Ledger starts from the second newest checkpoint (0) and checks the state hash at the newest",
    }
    report.plot_data["restart"] = (tail, float(np.median(seconds)))


_PLOTTED: Final = (
    ("append fsync", "append.msgs_per_s"),
    ("append batch-async", "append_batch_async.msgs_per_s"),
    ("append none", "append_none.msgs_per_s"),
    ("read + decode", "read.msgs_per_s"),
    ("read + decode + driver", "replay_driver.msgs_per_s"),
    ("replay (Ledger)", "replay.msgs_per_s"),
    ("live fsync (Ledger.apply)", "live_fsync.msgs_per_s"),
    ("live none (Ledger.apply)", "live_none.msgs_per_s"),
    ("engine", "engine.msgs_per_s"),
)


def _plot(report: _common.Report, path: str) -> None:
    plt = _common.pyplot()
    by_name = {r.name: r.value for r in report.results}
    bars = {label: by_name[name] for label, name in _PLOTTED if name in by_name}
    fig, ax = plt.subplots(figsize=(9, 4.5))
    names = list(bars)
    heights = [bars[k] / 1e6 for k in names]
    ax.barh(names, heights, color="tab:blue")
    for y, h in enumerate(heights):
        ax.annotate(f"{h:.2f}M", (h, y), va="center")
    ax.set_xscale("log")
    ax.set_xlabel("M messages/s (median, log scale)")
    tail, seconds = report.plot_data.get("restart", (0, 0.0))
    ax.set_title(f"journal and replay, same run; restart with a {tail:,}-message tail: {seconds:.2f} s")
    fig.suptitle("qfix bench journal" + (" (quick)" if report.quick else ""))
    _common.save_figure(fig, path)


@click.command("journal")
@click.option("--quick", is_flag=True, help="The quick mix stream, a 500,000-message restart tail, 3 repeats.")
@click.option("--batch", default=1000, show_default=True, help="INBOUND records per journal record.")
@click.option("--tail", type=click.IntRange(min=1), default=None, help="Messages after the newest checkpoint.")
@click.option(
    "--streams",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("bench-out/streams"),
    show_default=True,
    help="Where workload stream files are saved and replayed from (shared with bench engine).",
)
@click.option(
    "--journal-dir",
    "journal_parent",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("bench-out"),
    show_default=True,
    help="Where the temporary journals go: on the disk to measure, not tmpfs.",
)
@click.option("--messages", type=click.IntRange(min=1), default=None, hidden=True)
@_common.output_options
def command(
    quick: bool,
    batch: int,
    tail: int | None,
    streams: Path,
    journal_parent: Path,
    messages: int | None,
    json_path: str | None,
    plot_path: str | None,
    quiet: bool,
) -> None:
    """Journal append per durability mode, recovery beside the engine, restart time."""
    _common.check_outputs(json_path, plot_path)
    if batch < 1:
        raise click.BadParameter("at least 1", param_hint="--batch")
    _common.check_output_path(journal_parent / ".qfix-bench-journal.probe", "--journal-dir")
    if messages is None:
        from qfix.bench import engine as engine_bench

        engine_bench._check_streams(["mix"], quick, streams)
    with _common.Progress(steps(quick), quiet=quiet) as progress:
        report = run(quick, streams, journal_parent, batch=batch, tail=tail, messages=messages, progress=progress)
    _common.finish(report, json_path, plot_path, _plot)
    if "warning" in report.extra:
        click.echo(f"warning: {report.extra['warning']}", err=True)
