"""The server's durable state: engine and session table, changed only through the journal.

Theory of operation (ARCHITECTURE.md: the journal is the replication unit). Every
input that changes state becomes a journal entry (:mod:`qfix.journal.entries`) and goes
through :meth:`Ledger.apply`: the entry is appended and written before the engine sees
it, and no output of it (no report) is handed on before it is as durable as the mode
promises. In ``fsync`` mode the engine runs while the disk syncs (the sync thread
releases the GIL), and the first output waits for the sync: the disk's latency hides
behind the matching instead of adding to it. If that sync fails, the engine has
already applied an entry that is not durable; nothing of it leaves, the ledger
refuses everything after, and the server stops (a restart rebuilds from what is on
disk). The same apply code runs on restart: :meth:`Ledger.open` loads a
checkpoint, replays the journal after it and ends in the state the live server had at
the last durable record, with the same SessionIDs, ClOrdID high-water marks, blocked
accounts and ExecID positions, and the sequenced reports of the replayed stretch back
in each session's retransmission history.

Which checkpoint: the second newest, when there are two, with the newest as a
cross-check (its state hash must come out of the replay). Replaying a whole checkpoint
interval puts the reports a client may have missed just before a crash back into the
retransmission history: a checkpoint written after a batch whose reports were still
in flight would otherwise leave nothing to retransmit them from. Segments are pruned
only below the older of the two kept checkpoints.

A fresh journal starts with a checkpoint at sequence 0 (the empty state), so the
instrument table a journal was written for is always on record: a server configured
with different instruments refuses to start on it rather than replay orders into the
wrong books.

Checkpoints are exported on the loop (a copy of the live orders) and written by a
background thread; the journal is synced up to the checkpoint's sequence number first,
so a checkpoint never gets ahead of the journal.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from qfix.engine import Engine
from qfix.engine import snapshot as engine_snapshot
from qfix.journal import (
    REFUSED,
    CheckpointError,
    EngineDriver,
    Entry,
    EntryError,
    Files,
    JournalCorruptError,
    JournalError,
    JournalWriter,
    OsFiles,
    TornTail,
    cut_torn_tail,
    decode,
    encode,
    is_engine_entry,
    list_checkpoints,
    list_segments,
    load_checkpoint,
    read_journal,
    write_checkpoint,
)
from qfix.journal.checkpoint import remove_leftovers
from qfix.journal.entries import Batch, BlockAccounts, OpenSession
from qfix.server import _stage_s
from qfix.server.config import ServerConfig
from qfix.server.session import MD_DEST, OrderEntry, SessionState
from qfix.wire import schema

__all__ = ["Ledger", "Recovery"]

log = logging.getLogger(__name__)

Array = npt.NDArray[Any]

META_FORMAT: Final = 2  # 2: a session's hwm is its journaled ClOrdID mark
KEEP_CHECKPOINTS: Final = 2
#: replayed reports filed into the histories at once (64 bytes each: bounded memory)
_REMEMBER_EVERY: Final = 1 << 20


def instrument_fingerprint(config: ServerConfig) -> str:
    """A digest of the static instrument table (a journal replays only into the same one)."""
    text = repr(sorted(config.instruments, key=lambda i: i.security_id))
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


@dataclass(slots=True)
class Recovery:
    """What :meth:`Ledger.open` found and did (for the log and the status document)."""

    checkpoint: Path | None = None
    checkpoint_seq: int = 0
    replayed: int = 0
    last_seq: int = 0
    torn: list[TornTail] = field(default_factory=list)
    skipped_checkpoints: list[str] = field(default_factory=list)
    seconds: float = 0.0


class _AfterDurable:
    """A dispatch that holds the first output of an entry until its record is durable."""

    __slots__ = ("dispatch", "ledger", "seq", "waited")

    def __init__(self, ledger: Ledger, seq: int, dispatch: Callable[[Array], None]) -> None:
        self.ledger = ledger
        self.seq = seq
        self.dispatch = dispatch
        self.waited = False

    def wait(self) -> None:
        if not self.waited:
            self.ledger.wait_until_durable(self.seq)
            self.waited = True

    def __call__(self, out: Array) -> None:
        self.wait()
        self.dispatch(out)


class Ledger:
    """Engine + session table + journal of one server (see the module docstring).

    Args:
        config: the server configuration (instruments, engine, journal settings).
        entry: the session layer whose table the journal covers.
        files: the file system (tests pass a fault injector).
    """

    def __init__(self, config: ServerConfig, entry: OrderEntry, *, files: Files | None = None) -> None:
        self.config = config
        self.entry = entry
        self.files = files or OsFiles()
        self.directory: Path | None = config.journal_dir
        self.recovery = Recovery()
        #: built by recovery when it restores a checkpoint (an engine's tables cost tens of
        #: milliseconds to set up: build one, not two)
        self.engine: Engine = None  # type: ignore[assignment]
        self.driver: EngineDriver = None  # type: ignore[assignment]
        self.writer: JournalWriter | None = None
        self.failure: str = ""
        #: time spent waiting for syncs that the engine's work did not cover (metrics)
        self.wait_ns = 0
        self._since_checkpoint = 0
        self._last_checkpoint_at = time.monotonic()
        self._checkpoint_thread: threading.Thread | None = None
        #: sequence numbers of the checkpoints known intact (found on start or written since)
        self._good: list[int] = []
        self._replayed: list[Array] = []
        self._replayed_records = 0
        self._marks_behind = False
        self._checkpoint_error: BaseException | None = None
        if self.directory is not None:
            self._open(self.directory)
        if self.engine is None:  # no journal, or a fresh one
            self.engine = Engine(config.instruments, config.engine)
            self.driver = EngineDriver(self.engine)

    # --- recovery ---------------------------------------------------------------------

    def _open(self, directory: Path) -> None:
        started = time.monotonic()
        rec = self.recovery
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise JournalError(f"journal directory {directory}: cannot create: {exc.strerror or exc}") from None
        remove_leftovers(directory, self.files)
        checkpoints = list_checkpoints(directory)
        fresh = not checkpoints and not list_segments(directory)
        intact = []
        for _seq, path in reversed(checkpoints):
            try:
                intact.append(load_checkpoint(path))
            except CheckpointError as exc:
                rec.skipped_checkpoints.append(str(exc))
                log.warning("%s; trying an older one", exc)
            if len(intact) == KEEP_CHECKPOINTS:
                break
        if not fresh and not intact:
            raise JournalCorruptError(
                f"journal {directory}: no intact checkpoint, so the state cannot be rebuilt "
                f"(inspect it with `qfix journal verify {directory}`)"
            )
        verify_at: dict[int, str] = {}
        newest = intact[0].seq if intact else 0
        if intact:
            # the oldest intact checkpoint the journal still continues (an old checkpoint
            # whose removal a crash undid may have lost its segments)
            segments = list_segments(directory)
            usable = [ck for ck in intact if not segments or segments[0].first_seq <= ck.seq + 1] or intact[:1]
            base = usable[-1]
            for ck in usable[:-1]:
                verify_at[ck.seq] = str(ck.meta.get("state_hash", ""))
            self._restore(base)
            rec.checkpoint, rec.checkpoint_seq = base.path, base.seq
            self._good = sorted(ck.seq for ck in intact)
        last = rec.checkpoint_seq
        for seq, kind, payload in read_journal(directory, last, torn=rec.torn):
            try:
                self._replay(decode(kind, payload))
            except (EntryError, ValueError) as exc:
                raise JournalCorruptError(
                    f"journal {directory}: record {seq} is intact but cannot be replayed ({exc}); inspect it with "
                    f"`qfix journal dump {directory} --from {seq} --count 1`"
                ) from None
            last = seq
            rec.replayed += 1
            want = verify_at.get(seq)
            if want and self.engine.state_hash().hex() != want:
                raise JournalCorruptError(
                    f"journal {directory}: replay reached state hash {self.engine.state_hash().hex()} at sequence "
                    f"{seq}, but the checkpoint there says {want}; the journal and checkpoints disagree "
                    f"(inspect them with `qfix journal verify {directory}`)"
                )
        self._file_replayed()
        if self._marks_behind:
            for state in self.entry.by_id:
                state.hwm = max(state.hwm, int(self.entry.journaled_marks[state.session_id]))
        if last < newest:
            # a checkpoint proves records up to ``newest`` were durable: the journal lost some
            where = f"; its last segment's tail is damaged at offset {rec.torn[0].offset}" if rec.torn else ""
            raise JournalCorruptError(
                f"journal {directory}: the records end at sequence {last}, but checkpoint {newest} covers up to "
                f"{newest}: durable records are missing or damaged{where} (inspect it with "
                f"`qfix journal verify {directory}`)"
            )
        for tail in rec.torn:
            log.warning(
                "journal %s: a torn final write (%d bytes at offset %d: %s) was discarded; it was never acknowledged",
                tail.path,
                tail.length,
                tail.offset,
                tail.why,
            )
            cut_torn_tail(tail, self.files)
        rec.last_seq = last
        durability = self.config.durability
        self.writer = JournalWriter(
            directory,
            last + 1,
            durability=durability,
            segment_bytes=self.config.journal_segment_mib << 20,
            files=self.files,
        )
        if fresh:
            self.engine = Engine(self.config.instruments, self.config.engine)
            self.driver = EngineDriver(self.engine)
            self._write_checkpoint(self._checkpoint_state(), directory)
        rec.seconds = time.monotonic() - started

    def _restore(self, ck: Any) -> None:
        meta = ck.meta
        if meta.get("format") != META_FORMAT:
            raise JournalCorruptError(f"checkpoint {ck.path}: state document format {meta.get('format')!r}")
        if meta.get("instruments") != instrument_fingerprint(self.config):
            raise JournalError(
                f"checkpoint {ck.path} was written for a different instrument table than {self.config.source} "
                "configures; restore the old [[instrument]] tables, or give this configuration a new journal.dir"
            )
        snap = engine_snapshot.loads(ck.engine)
        self.engine = engine_snapshot.restore(self.config.instruments, snap, self.config.engine)
        self.driver = EngineDriver(self.engine, int(meta.get("out_size", 0)) or 1)
        entry = self.entry
        for doc in meta.get("sessions", []):
            try:
                state = entry.restore_session(int(doc["id"]), bytes.fromhex(doc["kid"]))
            except (ValueError, KeyError, TypeError) as exc:
                raise JournalCorruptError(f"checkpoint {ck.path}: bad session entry {doc!r}: {exc}") from None
            state.hwm = int(doc["hwm"])
            entry.journaled_marks[state.session_id] = state.hwm
            last_exec_id = int(doc["last_exec_id"])
            entry.last_exec_ids[state.session_id] = last_exec_id
            # the reports before the checkpoint are not held: asking for them says "unavailable"
            state.history.dropped_upto = last_exec_id
        entry.set_blocked({int(a) for a in meta.get("blocked", [])})

    def _replay(self, entry: Entry) -> None:
        if isinstance(entry, Batch):
            # a batch is never refused live (it passed stages F, H and S): raising here
            # means the record is not what the server wrote
            self.driver.apply(entry, self._route_replayed)
            if entry.records.size:
                self._raise_marks(entry.records, stage_s=True)
        elif is_engine_entry(entry):
            try:
                self.driver.apply(entry, self._route_replayed)
            except REFUSED:
                return  # refused live just the same, and changed nothing
        else:
            self._apply_session(entry)

    def _route_replayed(self, out: Array) -> None:
        """Keep the replayed reports (not market data) for the sessions' histories; they
        are filed in bulk (``OrderEntry.remember``), nobody being connected yet."""
        kept = out[out["dest"] != MD_DEST]  # a copy: the driver reuses its buffer
        if kept.size:
            self._replayed.append(kept)
            self._replayed_records += kept.size
            if self._replayed_records >= _REMEMBER_EVERY:
                self._file_replayed()

    def _file_replayed(self) -> None:
        if self._replayed:
            self.entry.remember(np.concatenate(self._replayed))
        self._replayed = []
        self._replayed_records = 0

    def _raise_marks(self, records: Array, *, stage_s: bool) -> None:
        """Raise each session's journaled ClOrdID mark to its largest ClOrdID in
        ``records`` (every journaled order passed stage S); on replay, stage S's own
        mark too (live, stage S raised it before the batch was journaled)."""
        bad = _stage_s.raise_marks(schema.as_words(records), len(self.entry.by_id), self.entry.journaled_marks)
        if bad >= 0:
            raise JournalCorruptError(
                f"journal {self.directory}: a batch names SessionID {bad}, which no record opened"
            )
        if stage_s:
            self._marks_behind = True  # stage S's marks follow once the replay is done

    def _apply_session(self, entry: Entry) -> None:
        if isinstance(entry, OpenSession):
            try:
                self.entry.restore_session(entry.session_id, entry.kid)
            except ValueError as exc:
                raise JournalCorruptError(f"journal {self.directory}: {exc}") from None
        elif isinstance(entry, BlockAccounts):
            if entry.blocked:
                self.entry.set_blocked(self.entry.blocked | set(entry.accounts))
            else:
                self.entry.set_blocked(self.entry.blocked - set(entry.accounts))
        else:
            raise TypeError(f"not a journal entry: {entry!r}")

    # --- live -------------------------------------------------------------------------

    def apply(self, entry: Entry, dispatch: Callable[[Array], None]) -> None:
        """Journal ``entry`` (committed as the mode promises), then apply it.

        Raises JournalError if it could not be journaled (nothing applied; the caller
        must stop acknowledging), or one of ``REFUSED`` if the engine refused a command
        (journaled, changed nothing: replay skips it the same way).
        """
        if not is_engine_entry(entry):
            self._record(entry)
            self._apply_session(entry)
            return
        seq = self._record(entry, wait=False)
        if seq:
            # the engine runs while the disk syncs; its first output waits for the sync
            dispatch = _AfterDurable(self, seq, dispatch)
        self.driver.apply(entry, dispatch)
        if isinstance(dispatch, _AfterDurable):
            dispatch.wait()  # nothing after this entry may leave before it is durable either
        if isinstance(entry, Batch) and entry.records.size:
            self._since_checkpoint += entry.records.size
            self._raise_marks(entry.records, stage_s=False)

    def journal_batch(self, records: Array) -> int:
        """For the record path, which runs the engine itself: journal a Batch of
        ``records`` (stage S passed them; the engine has not run them yet) with its sync
        running behind, and count them towards the next checkpoint. Returns its sequence
        number, for :meth:`wait_until_durable` before any of its output leaves. Raises
        JournalError as :meth:`apply` does."""
        seq = self._record(Batch(records), wait=False)
        self._since_checkpoint += records.size
        return seq

    def wait_until_durable(self, seq: int) -> None:
        """:meth:`wait_durable`, its time counted in ``wait_ns`` (a no-op for 0)."""
        if seq:
            started = time.perf_counter_ns()
            self.wait_durable(seq)
            self.wait_ns += time.perf_counter_ns() - started

    def login(self, conn: int, kid: bytes, accounts: tuple[int, ...], now: float) -> tuple[SessionState, bytes]:
        """``OrderEntry.login``, journaling the SessionID a new key is given."""
        entry = self.entry
        if not accounts:  # refused before a SessionID is journaled for it
            raise LookupError(f"key {kid.hex()} has no account")
        if kid not in entry.by_kid:
            if len(entry.by_id) >= entry.max_sessions:
                raise LookupError(f"all {entry.max_sessions} SessionIDs are in use")
            self._record(OpenSession(len(entry.by_id), kid))
        return entry.login(conn, kid, accounts, now)

    def _record(self, entry: Entry, *, wait: bool = True) -> int:
        """Append and commit ``entry``; returns its sequence number (0 without a journal).
        With ``wait=False`` the sync runs behind (see :meth:`wait_durable`)."""
        if self.writer is None:
            return 0
        if self.failure:
            raise JournalError(self.failure)
        kind, payload = encode(entry)
        try:
            seq = self.writer.append(kind, payload)
            if wait:
                self.writer.commit()
            else:
                self.writer.commit_async()
        except JournalError as exc:
            self.failure = str(exc)
            raise
        return seq

    def wait_durable(self, seq: int) -> None:
        """Block until record ``seq`` is as durable as the mode promises; JournalError
        (and the ledger refuses everything after) if its sync failed."""
        assert self.writer is not None
        try:
            self.writer.wait_durable(seq)
        except JournalError as exc:
            self.failure = str(exc)
            raise

    @property
    def last_seq(self) -> int:
        return 0 if self.writer is None else self.writer.next_seq - 1

    # --- checkpoints ------------------------------------------------------------------

    def checkpoint_due(self, now: float) -> bool:
        if self.writer is None or self.failure or self._checkpoint_thread is not None:
            return False
        every_msgs = self.config.checkpoint_every_messages
        every_s = self.config.checkpoint_every_s
        return (every_msgs > 0 and self._since_checkpoint >= every_msgs) or (
            every_s > 0 and now - self._last_checkpoint_at >= every_s and self._since_checkpoint > 0
        )

    def _checkpoint_state(self) -> tuple[int, dict[str, Any], dict[str, Array]]:
        entry = self.entry
        meta = {
            "format": META_FORMAT,
            "instruments": instrument_fingerprint(self.config),
            "sessions": [
                {
                    "id": s.session_id,
                    "kid": s.kid.hex(),
                    "hwm": int(entry.journaled_marks[s.session_id]),
                    "last_exec_id": int(entry.last_exec_ids[s.session_id]),
                }
                for s in entry.by_id
            ],
            "blocked": sorted(entry.blocked),
            "out_size": self.driver.out_size,
            "state_hash": self.engine.state_hash().hex(),
        }
        return self.last_seq, meta, engine_snapshot.export(self.engine)

    def checkpoint(self, *, wait: bool = False) -> None:
        """Start writing a checkpoint of the current state (in a thread unless ``wait``)."""
        if self.writer is None or self.failure:
            return
        self.collect()
        if self._checkpoint_thread is not None:
            self._checkpoint_thread.join()
            self.collect()
        try:
            self.writer.sync_now()  # a checkpoint must never get ahead of the journal
        except JournalError as exc:
            self.failure = str(exc)
            raise
        state = self._checkpoint_state()
        self._since_checkpoint = 0
        self._last_checkpoint_at = time.monotonic()
        assert self.directory is not None
        directory = self.directory
        if wait:
            self._write_checkpoint(state, directory)
            return

        def run() -> None:
            try:
                self._write_checkpoint(state, directory)
            except BaseException as exc:  # reported on the loop by collect()
                self._checkpoint_error = exc

        self._checkpoint_thread = threading.Thread(target=run, name="qfix-checkpoint", daemon=True)
        self._checkpoint_thread.start()

    def collect(self) -> None:
        """Reap a finished checkpoint thread; log (not raise) a failed checkpoint: the
        journal still holds everything, only restarts get longer."""
        thread = self._checkpoint_thread
        if thread is None or thread.is_alive():
            return
        self._checkpoint_thread = None
        if self._checkpoint_error is not None:
            log.error(
                "checkpoint failed (the journal is intact, recovery just replays more): %s", self._checkpoint_error
            )
            self._checkpoint_error = None

    def _write_checkpoint(self, state: tuple[int, dict[str, Any], dict[str, Array]], directory: Path) -> None:
        seq, meta, snap = state
        started = time.monotonic()
        path = write_checkpoint(directory, seq, meta, engine_snapshot.dumps(snap), self.files)
        self._good = sorted({*self._good, seq})
        try:
            self._prune(directory)
        except OSError as exc:
            raise CheckpointError(f"journal {directory}: pruning after {path.name} failed: {exc}") from None
        log.info("checkpoint %s written in %.3f s", path.name, time.monotonic() - started)

    def _prune(self, directory: Path) -> None:
        """Keep the two newest checkpoints known intact and the segments the older of
        them needs (a damaged checkpoint file never counts as one of the two)."""
        if len(self._good) < KEEP_CHECKPOINTS:
            return
        keep_from = self._good[-KEEP_CHECKPOINTS]
        self._good = self._good[-KEEP_CHECKPOINTS:]
        for seq, path in list_checkpoints(directory):
            if seq < keep_from:
                self.files.remove(path)
        segments = list_segments(directory)
        for seg, after in itertools.pairwise(segments):
            if after.first_seq - 1 <= keep_from:
                self.files.remove(seg.path)
        self.files.sync_dir(directory)

    def close(self, *, checkpoint: bool = True) -> None:
        """Clean shutdown: a final checkpoint (unless failed), then sync and close the journal."""
        if self.writer is None:
            return
        try:
            if checkpoint and not self.failure:
                self.checkpoint(wait=True)
        finally:
            if self._checkpoint_thread is not None:
                self._checkpoint_thread.join()
            self.collect()
            self.writer.close()
