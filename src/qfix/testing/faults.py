"""A file layer that can simulate a power cut, for the journal's crash tests.

Theory of operation. :class:`PowerCutFiles` does every file operation for real (in a
test's directory) and remembers what a real disk would have made durable: per file,
the length last covered by a sync, and per directory, which names a directory sync
has made permanent. :meth:`PowerCutFiles.power_cut` then does to the real files what
losing power does: every byte written after its file's last sync is gone, except a
random prefix of them that writeback may already have carried to the disk, possibly
followed by zeros up to the old size (the file system extended the file before the
data landed), so the last record can be torn anywhere, even inside its header; a file
created or renamed into place without a directory sync afterwards disappears. The
next "boot" reads the directory with the ordinary file system.

This is why a test under it can tell the durability modes apart, which SIGKILL cannot:
a killed process leaves its writes in the page cache, where the restarted process
still finds them.
"""

from __future__ import annotations

import errno
import os
import random
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path

from qfix.journal.files import Files

__all__ = ["PowerCutFiles"]


@dataclass
class _FileState:
    durable: int = 0  #: bytes of the file a sync has covered
    entry_durable: bool = False  #: its directory entry survives a power cut


class PowerCutFiles(Files):
    """Real file operations plus a model of what survives a power cut.

    Args:
        rng: decides how much of the unsynced bytes survives (torn writes).
        fail_sync_after: the number of syncs that succeed before every later one
            raises ``OSError(EIO)`` (a failing disk); None = never.
        fail_write_after: the number of bytes that may still be written before a write
            fails with ``OSError(ENOSPC)`` after writing what fits (a full disk); None = never.
    """

    def __init__(
        self, rng: random.Random, *, fail_sync_after: int | None = None, fail_write_after: int | None = None
    ) -> None:
        self.rng = rng
        self.fail_sync_after = fail_sync_after
        self.fail_write_after = fail_write_after
        self.syncs = 0
        self._files: dict[Path, _FileState] = {}
        self._fds: dict[int, Path] = {}
        # the journal's syncer and checkpoint threads call in too
        self._lock = threading.RLock()

    def _state(self, path: Path) -> _FileState:
        path = path.resolve()
        state = self._files.get(path)
        if state is None:
            # a file that existed before the test started is durable as it stands
            existed = path.exists()
            state = _FileState(durable=path.stat().st_size if existed else 0, entry_durable=existed)
            self._files[path] = state
        return state

    def open_append(self, path: Path) -> int:
        with self._lock:
            self._state(path)
            fd = super().open_append(path)
            self._fds[fd] = path.resolve()
            return fd

    def write(self, fd: int, data: bytes) -> None:
        with self._lock:
            room = self.fail_write_after
            if room is not None and len(data) > room:
                super().write(fd, data[:room])  # what fits lands; the rest does not
                self.fail_write_after = 0
                raise OSError(errno.ENOSPC, "No space left on device (injected)")
            if room is not None:
                self.fail_write_after = room - len(data)
            super().write(fd, data)

    def sync(self, fd: int) -> None:
        with self._lock:
            self._maybe_fail()
            path = self._fds[fd]
            # only what was written before the sync started is covered by it
            size = os.fstat(fd).st_size
        super().sync(fd)
        with self._lock:
            state = self._state(path)
            state.durable = max(state.durable, size)

    def close(self, fd: int) -> None:
        with self._lock:
            super().close(fd)
            self._fds.pop(fd, None)

    def truncate(self, path: Path, size: int) -> None:
        with self._lock:
            super().truncate(path, size)
            state = self._state(path)
            state.durable = size

    def replace(self, src: Path, dst: Path) -> None:
        with self._lock:
            src_state = self._state(src)
            super().replace(src, dst)
            self._files[dst.resolve()] = _FileState(src_state.durable, entry_durable=False)
            self._files.pop(src.resolve(), None)

    def remove(self, path: Path) -> None:
        with self._lock:
            super().remove(path)
            self._files.pop(path.resolve(), None)

    def sync_dir(self, path: Path) -> None:
        with self._lock:
            self._maybe_fail()
            super().sync_dir(path)
            directory = path.resolve()
            for name, state in list(self._files.items()):
                if name.parent == directory and name.exists():
                    state.entry_durable = True

    def _maybe_fail(self) -> None:
        self.syncs += 1
        if self.fail_sync_after is not None and self.syncs > self.fail_sync_after:
            raise OSError(5, "Input/output error (injected)")

    def power_cut(self) -> None:
        """Lose what a power cut loses (see the module docstring); closes every descriptor."""
        with self._lock:
            for fd in list(self._fds):
                os.close(fd)
            self._fds.clear()
            for path, state in list(self._files.items()):
                self._cut(path, state, path)
            self._files.clear()

    def image(self, directory: Path, destination: Path) -> None:
        """Copy ``directory`` into ``destination`` as a power cut *now* would leave it (the
        running writer goes on undisturbed): a test can cut the power at any moment, e.g.
        just as a report is about to leave, and recover from the copy. Files this object
        never touched are copied whole (they were durable before it started)."""
        with self._lock:
            destination.mkdir(parents=True, exist_ok=True)
            for path in directory.iterdir():
                if path.is_file():
                    copy = destination / path.name
                    shutil.copyfile(path, copy)
                    state = self._files.get(path.resolve())
                    if state is not None:
                        self._cut(path, state, copy)

    def _cut(self, path: Path, state: _FileState, target: Path) -> None:
        if not target.exists():
            return
        if not state.entry_durable:
            target.unlink()
            return
        size = target.stat().st_size
        keep = state.durable
        if size <= keep:
            return
        # The bytes past the last sync are lost, except what writeback carried to the disk
        # before the power went: nothing, a prefix, or a prefix followed by zeros where the
        # file system had extended the file before the rest of the data landed.
        roll = self.rng.random()
        landed = keep + self.rng.randint(0, size - keep)
        if roll < 1 / 3:
            os.truncate(target, keep)
        elif roll < 2 / 3:
            os.truncate(target, landed)
        else:
            with target.open("r+b") as f:
                f.seek(landed)
                f.write(bytes(size - landed))
