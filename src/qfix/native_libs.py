"""Shared libraries that jitted code calls by symbol: the one copy this process maps.

A kernel that calls into a C library (libzmq for the feed's sends and receives, OpenSSL's
libcrypto for the record kernels' AES-GCM) must call the very copy the rest of the
process uses: the one pyzmq's socket belongs to, the one Python's own ``_hashlib`` was
built against. :func:`load_mapped` finds that copy by its path in ``/proc/self/maps``,
makes it resolvable for Numba (llvmlite), and checks that the symbols Numba will resolve
are that copy's; otherwise the caller keeps its pure-Python way.
"""

from __future__ import annotations

import ctypes
from collections.abc import Sequence
from pathlib import Path

__all__ = ["load_mapped"]


def _mapped(prefix: str) -> str | None:
    """The path of the one library whose file name starts with ``prefix`` that is mapped
    into this process, None if not exactly one."""
    try:
        maps = Path("/proc/self/maps").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    paths = {line.split()[-1] for line in maps.splitlines() if line.rsplit("/", 1)[-1].startswith(prefix)}
    return paths.pop() if len(paths) == 1 else None


def load_mapped(prefix: str, symbols: Sequence[str]) -> ctypes.CDLL | None:
    """The mapped library whose file name starts with ``prefix`` (e.g. ``"libzmq"``),
    loaded for jitted code, if ``symbols`` resolve to its own copies; else None. The
    caller imports whatever maps the library first."""
    path = _mapped(prefix)
    if path is None:
        return None
    try:
        import llvmlite.binding as llvm

        llvm.load_library_permanently(path)
        lib = ctypes.CDLL(path)
        for name in symbols:
            if llvm.address_of_symbol(name) != ctypes.cast(getattr(lib, name), ctypes.c_void_p).value:
                return None
    except (OSError, RuntimeError, AttributeError):
        return None
    return lib
