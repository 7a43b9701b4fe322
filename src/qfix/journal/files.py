"""The journal on disk: segment files written with group commit, and read back in order.

Theory of operation. :class:`JournalWriter` buffers encoded records in memory
(:meth:`~JournalWriter.append`) and writes them with one ``write`` per
:meth:`~JournalWriter.commit`; what happens next is the durability mode:

* ``fsync``: ``fdatasync`` before ``commit`` returns; or, with
  :meth:`~JournalWriter.commit_async`, in the syncer thread while the caller goes on,
  and :meth:`~JournalWriter.wait_durable` blocks until it is done. The server lets no
  report of a batch leave before its record is synced, so nothing acknowledged can be
  lost.
* ``batch-async``: a syncer thread runs ``fdatasync`` soon after each commit while the
  loop goes on; reports may leave before their records are durable, so a power cut
  can lose the last few milliseconds of acknowledged input (a process crash cannot:
  the page cache survives it).
* ``none``: no ``fdatasync`` at all (benchmarks only).

A write or sync error (a full disk, an I/O error) is raised as :class:`JournalError`
by the commit that meets it (or, in ``batch-async``, by the next one), and the writer
refuses everything afterwards: the caller must stop acknowledging.

Segments are named by their first sequence number (``journal-00000000000000000001.qjl``)
and rotated past ``segment_bytes``; a new segment's header and directory entry are made
durable before records go into it. All file system calls go through a :class:`Files`
object, so tests can run the writer over a fault injector that simulates a power cut
(:mod:`qfix.testing.faults`).

:func:`read_journal` scans the segments from a given sequence number on and applies
the codec's verdicts: a torn tail of the last segment is reported and cut off; any
other damage, a gap between segments or a missing segment raises
:class:`JournalCorruptError`, naming the file, the offset and ``qfix journal verify``.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from qfix.errors import QfixError
from qfix.journal import codec

__all__ = [
    "DURABILITY_MODES",
    "Files",
    "JournalCorruptError",
    "JournalError",
    "JournalWriter",
    "OsFiles",
    "Segment",
    "TornTail",
    "cut_torn_tail",
    "list_segments",
    "read_journal",
    "segment_name",
]

DURABILITY_MODES: Final = ("fsync", "batch-async", "none")
DEFAULT_SEGMENT_BYTES: Final = 256 << 20
_SEGMENT_RE: Final = re.compile(r"^journal-(\d{20})\.qjl$")


class JournalError(QfixError):
    """The journal cannot be written (or read); nothing more may be acknowledged."""


class JournalCorruptError(JournalError):
    """Bytes that were once durable are damaged; the message names the file and offset."""


def segment_name(first_seq: int) -> str:
    return f"journal-{first_seq:020d}.qjl"


class Files:
    """The file system calls the journal makes (the seam for the fault injector)."""

    def open_append(self, path: Path) -> int:
        """Open ``path`` for appending, creating it if needed; returns a descriptor."""
        return os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)

    def write(self, fd: int, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]

    def sync(self, fd: int) -> None:
        os.fdatasync(fd) if hasattr(os, "fdatasync") else os.fsync(fd)

    def close(self, fd: int) -> None:
        os.close(fd)

    def truncate(self, path: Path, size: int) -> None:
        fd = os.open(path, os.O_WRONLY)
        try:
            os.ftruncate(fd, size)
            os.fsync(fd)
        finally:
            os.close(fd)

    def replace(self, src: Path, dst: Path) -> None:
        os.replace(src, dst)

    def remove(self, path: Path) -> None:
        path.unlink(missing_ok=True)

    def sync_dir(self, path: Path) -> None:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class OsFiles(Files):
    """The real file system."""


@dataclass(frozen=True, slots=True)
class Segment:
    path: Path
    first_seq: int


def list_segments(directory: Path) -> list[Segment]:
    """The journal's segments, ascending by first sequence number."""
    found = []
    for path in directory.iterdir() if directory.is_dir() else ():
        m = _SEGMENT_RE.match(path.name)
        if m:
            found.append(Segment(path, int(m.group(1))))
    return sorted(found, key=lambda s: s.first_seq)


class JournalWriter:
    """Appends records to the journal in ``directory``, from sequence ``next_seq`` on.

    Args:
        directory: the journal directory (created if missing).
        next_seq: the sequence number of the next record (1 for a new journal; after
            recovery, one past the last intact record).
        durability: one of ``DURABILITY_MODES``.
        segment_bytes: rotate to a new segment once the current one is this big.
        files: the file system (tests pass a fault injector).
    """

    def __init__(
        self,
        directory: Path,
        next_seq: int = 1,
        *,
        durability: str = "fsync",
        segment_bytes: int = DEFAULT_SEGMENT_BYTES,
        files: Files | None = None,
    ) -> None:
        if durability not in DURABILITY_MODES:
            raise ValueError(f"durability {durability!r}; use one of {', '.join(DURABILITY_MODES)}")
        self.directory = directory
        self.durability = durability
        self.segment_bytes = segment_bytes
        self.files = files or OsFiles()
        self.next_seq = next_seq
        #: highest sequence number known durable (in mode ``none``: written)
        self.durable_seq = next_seq - 1
        self._pending: list[bytes] = []
        self._pending_last = next_seq - 1
        #: bytes written to segments by this writer (headers included)
        self.bytes_written = 0
        self._fd = -1
        self._size = 0
        self._failed: BaseException | None = None
        self._closed = False
        self._syncer: _Syncer | None = None
        try:
            directory.mkdir(parents=True, exist_ok=True)
            segments = list_segments(directory)
            if segments and segments[-1].first_seq <= next_seq:
                self._fd = self.files.open_append(segments[-1].path)
                self._size = segments[-1].path.stat().st_size
            if durability != "none":
                self._syncer = _Syncer(self)
        except OSError as exc:
            raise JournalError(f"journal {directory}: cannot open: {exc.strerror or exc}") from None

    @property
    def failed(self) -> bool:
        return self._failed is not None

    def append(self, kind: int, payload: bytes | memoryview) -> int:
        """Buffer one record; returns its sequence number (durable only after :meth:`commit`)."""
        self._check()
        seq = self.next_seq
        self._pending.append(codec.encode_record(seq, kind, payload))
        self.next_seq = seq + 1
        self._pending_last = seq
        return seq

    def commit(self) -> None:
        """Write what was appended and make it as durable as the mode promises."""
        self._write(inline_sync=True)

    def commit_async(self) -> int:
        """Write what was appended and start its sync in the syncer thread; returns the
        last sequence number written. In ``fsync`` mode nothing that depends on those
        records may leave before :meth:`wait_durable` returns for it: the caller can do
        its own work (run the engine) while the disk syncs."""
        self._write(inline_sync=False)
        return self.next_seq - 1

    def wait_durable(self, seq: int) -> None:
        """Block until record ``seq`` is as durable as the mode promises (in
        ``batch-async``: written); JournalError if its sync failed."""
        if self.durability != "fsync" or self.durable_seq >= seq:
            self._check()
            return
        assert self._syncer is not None
        self._syncer.wait_for(seq)
        if self._failed is not None:
            raise JournalError(
                f"journal {self.directory}: cannot make records up to {seq} durable: "
                f"{getattr(self._failed, 'strerror', None) or self._failed}; "
                "nothing after the last durable record is acknowledged"
            )

    def _mark_durable(self, seq: int) -> None:
        if self._syncer is None:
            self.durable_seq = max(self.durable_seq, seq)
        else:
            self._syncer.mark(seq)

    def _write(self, *, inline_sync: bool) -> None:
        self._check()
        if not self._pending:
            return
        data = b"".join(self._pending) if len(self._pending) > 1 else self._pending[0]
        last = self._pending_last
        first = last - len(self._pending) + 1
        self._pending = []
        try:
            if self._fd < 0 or self._size >= self.segment_bytes:
                if self._syncer is not None:
                    self._syncer.wait_idle()  # it may be syncing the descriptor about to close
                self._check()
                self._rotate(first)
            self.files.write(self._fd, data)
            self._size += len(data)
            self.bytes_written += len(data)
            if self.durability == "none":
                self._mark_durable(last)
            elif self.durability == "fsync" and inline_sync:
                self.files.sync(self._fd)
                self._mark_durable(last)
            else:
                assert self._syncer is not None
                self._syncer.request(self._fd, last, until_started=self.durability == "fsync")
        except OSError as exc:
            self._failed = exc
            raise JournalError(
                f"journal {self.directory}: cannot make records {first}..{last} durable: {exc.strerror or exc}; "
                "nothing after the last durable record is acknowledged"
            ) from None

    def _rotate(self, first: int) -> None:
        if self._fd >= 0:
            self.files.sync(self._fd)
            self.files.close(self._fd)
            self._fd = -1
        path = self.directory / segment_name(first)
        fd = self.files.open_append(path)
        self.files.write(fd, codec.encode_segment_header(first))
        self.bytes_written += codec.SEGMENT_HEADER.size
        self.files.sync(fd)
        self.files.sync_dir(self.directory)
        self._fd = fd
        self._size = codec.SEGMENT_HEADER.size

    def _check(self) -> None:
        if self._closed:
            raise JournalError(f"journal {self.directory}: the writer is closed")
        if self._failed is not None:
            raise JournalError(f"journal {self.directory}: an earlier write or sync failed ({self._failed}); refusing")

    def sync_now(self) -> None:
        """Make everything committed durable whatever the mode (clean shutdown, snapshots)."""
        self.commit()
        if self._syncer is not None:
            self._syncer.wait_idle()
            self._check()
        if self._fd >= 0:
            try:
                self.files.sync(self._fd)
            except OSError as exc:
                self._failed = exc
                raise JournalError(f"journal {self.directory}: sync failed: {exc.strerror or exc}") from None
        self._mark_durable(self.next_seq - 1)

    def close(self) -> None:
        """Sync (unless failed) and close."""
        try:
            if self._failed is None:
                self.sync_now()
        finally:
            self._closed = True
            if self._syncer is not None:
                self._syncer.stop()
            if self._fd >= 0:
                self.files.close(self._fd)
                self._fd = -1


class _Syncer:
    """One thread that runs fdatasync after commits (the call releases the GIL)."""

    def __init__(self, writer: JournalWriter) -> None:
        self.writer = writer
        self._cond = threading.Condition()
        self._wanted: tuple[int, int] | None = None  # (fd, last seq)
        self._busy = False
        self._stop = False
        self._requests = 0
        self._picked = 0
        self._thread = threading.Thread(target=self._run, name="qfix-journal-sync", daemon=True)
        self._thread.start()

    def request(self, fd: int, last: int, *, until_started: bool = False) -> None:
        """Ask for a sync of ``fd`` covering record ``last``. With ``until_started``, wait
        until the thread has taken the request (when it is idle): the caller is about to
        run jitted code that holds the GIL for its whole call, and a thread that has not
        yet entered the system call could not start the sync before that call returns."""
        with self._cond:
            self._wanted = (fd, last)
            self._requests += 1
            ticket = self._requests
            self._cond.notify_all()
            if until_started and not self._busy:
                while self._picked < ticket and not self._stop and self.writer._failed is None:
                    self._cond.wait()

    def wait_idle(self) -> None:
        with self._cond:
            while self._wanted is not None or self._busy:
                self._cond.wait()

    def mark(self, seq: int) -> None:
        """Record ``seq`` as durable (monotonic, from either thread) and wake waiters."""
        with self._cond:
            self.writer.durable_seq = max(self.writer.durable_seq, seq)
            self._cond.notify_all()

    def wait_for(self, seq: int) -> None:
        """Until ``seq`` is durable or a sync failed."""
        writer = self.writer
        with self._cond:
            while writer.durable_seq < seq and writer._failed is None and not self._stop:
                self._cond.wait()

    def stop(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        self._thread.join()

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._wanted is None and not self._stop:
                    self._cond.wait()
                if self._wanted is None:
                    return
                fd, last = self._wanted
                self._wanted = None
                self._busy = True
                self._picked = self._requests
                self._cond.notify_all()
            failed: BaseException | None = None
            try:
                self.writer.files.sync(fd)
            except BaseException as exc:  # any failure must wake the waiters, not hang them
                failed = exc
            with self._cond:
                if failed is None:
                    self.writer.durable_seq = max(self.writer.durable_seq, last)
                else:
                    self.writer._failed = failed
                self._busy = False
                self._cond.notify_all()


# ------------------------------------------------------------------------------- reading
@dataclass(frozen=True, slots=True)
class TornTail:
    """A torn tail found (and, by :func:`read_journal`, cut off) at the end of the journal."""

    path: Path
    offset: int
    length: int
    why: str


def _corrupt(path: Path, offset: int, why: str) -> JournalCorruptError:
    return JournalCorruptError(
        f"journal segment {path}, offset {offset}: {why}; the journal is damaged before its end, so the server "
        f"will not start on it (inspect it with `qfix journal verify {path.parent}`)"
    )


def read_journal(
    directory: Path, after: int = 0, *, torn: list[TornTail] | None = None
) -> Iterator[tuple[int, int, memoryview]]:
    """Yield ``(seq, kind, payload)`` for every record with seq > ``after``, in order.

    A torn tail of the last segment is appended to ``torn`` (when given) and the
    iteration ends before it; damage anywhere else raises JournalCorruptError. The
    caller decides whether to cut the tail off (:func:`cut_torn_tail`).
    """
    segments = list_segments(directory)
    # segments wholly at or below ``after`` are skipped; the one holding after+1 is the first read
    start = 0
    for i, seg in enumerate(segments):
        if seg.first_seq <= after + 1:
            start = i
    expect: int | None = None
    for i in range(start, len(segments)):
        seg = segments[i]
        last_segment = i == len(segments) - 1
        data = seg.path.read_bytes()
        try:
            first = codec.parse_segment_header(data)
        except ValueError as exc:
            # a last segment whose header never fully landed holds nothing acknowledged
            # unless an intact record proves otherwise (and it must still follow on)
            if expect is not None and seg.first_seq != expect:
                why = f"named for sequence {seg.first_seq}, but the journal reached {expect - 1}"
                raise _corrupt(seg.path, 0, why) from None
            if expect is None and seg.first_seq > after + 1:
                raise _corrupt(seg.path, 0, f"the journal from sequence {after + 1} is missing") from None
            if last_segment and not codec.intact_record_after(data, 0, seg.first_seq):
                if torn is not None:
                    torn.append(TornTail(seg.path, 0, len(data), f"segment header not intact: {exc}"))
                return
            raise _corrupt(seg.path, 0, str(exc)) from None
        if first != seg.first_seq:
            raise _corrupt(seg.path, 0, f"the header says first sequence {first}, the name {seg.first_seq}")
        if expect is not None and first != expect:
            raise _corrupt(seg.path, 0, f"starts at sequence {first}, but the previous segment ended before {expect}")
        if expect is None and first > after + 1:
            raise _corrupt(seg.path, 0, f"the journal from sequence {after + 1} is missing (first here is {first})")
        result = codec.scan(data, codec.SEGMENT_HEADER.size, first)
        if result.verdict is codec.Verdict.CORRUPT or (result.verdict is codec.Verdict.TORN and not last_segment):
            raise _corrupt(seg.path, result.end, result.problem)
        for rec in result.records:
            if rec.seq > after:
                yield rec.seq, rec.kind, rec.payload
        expect = first + len(result.records)
        if result.verdict is codec.Verdict.TORN and torn is not None:
            torn.append(TornTail(seg.path, result.end, len(data) - result.end, result.problem))


def cut_torn_tail(tail: TornTail, files: Files | None = None) -> None:
    """Cut a torn tail off its segment (a header-less last segment is removed)."""
    files = files or OsFiles()
    if tail.offset == 0:
        files.remove(tail.path)
        files.sync_dir(tail.path.parent)
    else:
        files.truncate(tail.path, tail.offset)
