"""A file layer that can simulate a power cut, for the journal's crash tests.

Theory of operation. :class:`PowerCutFiles` does every file operation for real (in a
test's directory) and remembers what a real disk would have made durable: per file,
the length last covered by a sync, and per directory, which names a directory sync
has made permanent. :meth:`PowerCutFiles.power_cut` then does to the real files what
losing power does: every byte written after its file's last sync is gone, except a
random prefix of them that writeback may already have carried to the disk (so the
last record can be torn anywhere, even inside its header); a file
created or renamed into place without a directory sync afterwards disappears. The
next "boot" reads the directory with the ordinary file system.

This is why a test under it can tell the durability modes apart, which SIGKILL cannot:
a killed process leaves its writes in the page cache, where the restarted process
still finds them.
"""

from __future__ import annotations

import os
import random
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
    """

    def __init__(self, rng: random.Random, *, fail_sync_after: int | None = None) -> None:
        self.rng = rng
        self.fail_sync_after = fail_sync_after
        self.syncs = 0
        self._files: dict[Path, _FileState] = {}
        self._fds: dict[int, Path] = {}

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
        self._state(path)
        fd = super().open_append(path)
        self._fds[fd] = path.resolve()
        return fd

    def write(self, fd: int, data: bytes) -> None:
        super().write(fd, data)

    def sync(self, fd: int) -> None:
        self._maybe_fail()
        super().sync(fd)
        path = self._fds[fd]
        state = self._state(path)
        state.durable = os.fstat(fd).st_size

    def close(self, fd: int) -> None:
        super().close(fd)
        self._fds.pop(fd, None)

    def truncate(self, path: Path, size: int) -> None:
        super().truncate(path, size)
        state = self._state(path)
        state.durable = size

    def replace(self, src: Path, dst: Path) -> None:
        src_state = self._state(src)
        super().replace(src, dst)
        self._files[dst.resolve()] = _FileState(src_state.durable, entry_durable=False)
        self._files.pop(src.resolve(), None)

    def remove(self, path: Path) -> None:
        super().remove(path)
        self._files.pop(path.resolve(), None)

    def sync_dir(self, path: Path) -> None:
        self._maybe_fail()
        super().sync_dir(path)
        directory = path.resolve()
        for name, state in self._files.items():
            if name.parent == directory and name.exists():
                state.entry_durable = True

    def _maybe_fail(self) -> None:
        self.syncs += 1
        if self.fail_sync_after is not None and self.syncs > self.fail_sync_after:
            raise OSError(5, "Input/output error (injected)")

    def power_cut(self) -> None:
        """Lose what a power cut loses (see the module docstring); closes every descriptor."""
        for fd in list(self._fds):
            os.close(fd)
        self._fds.clear()
        for path, state in self._files.items():
            if not path.exists():
                continue
            if not state.entry_durable:
                path.unlink()
                continue
            size = path.stat().st_size
            keep = state.durable
            if size > keep:
                # the bytes past the last sync are lost, except that writeback may have
                # carried any prefix of them to the disk before the power went
                if self.rng.random() < 0.5:
                    keep += self.rng.randint(0, size - keep)
                os.truncate(path, keep)
        self._files.clear()
