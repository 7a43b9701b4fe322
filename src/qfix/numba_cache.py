"""Where Numba caches the engine's machine code: a directory keyed by the engine's sources.

Numba's own cache notices a change only to the file that defines a cached function, so a
kernel in ``_kernels.py`` that calls code from ``_orders.py`` would keep loading machine
code compiled from the old ``_orders.py`` after an edit there (docs/engine.md, "Named
constants and the Numba cache"); so would the market-data kernel of ``_live.py`` after an
edit to the book tables of ``_store.py``. Every entry point (the ``qfix`` command, the
tests, ``scripts/test.sh``) therefore points ``NUMBA_CACHE_DIR`` at ``<base>/<key>``,
where the key digests every module of ``qfix.engine`` (its subpackages included),
``qfix.marketdata``, ``qfix.wire``, the server's kernels (``qfix.server._*``), the
QZMQ record kernels they call (``qfix.crypto._gcm*``, ``qfix.qzmq._record*``) and the
libzmq declarations of every socket kernel (``qfix.native_zmq``),
named as ``src/qfix/...`` and sorted by bytes, exactly as ``scripts/test.sh`` computes it,
so a checkout's tests, benchmarks and server share one warm cache and an edit anywhere in
those packages starts a fresh one. Importing this module does not import numba.
"""

from __future__ import annotations

import hashlib
import os
import sys
import warnings
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent
_PATTERNS = (
    "crypto/_gcm*.py",
    "engine/*.py",
    "engine/*/*.py",
    "marketdata/*.py",
    "native_zmq.py",
    "qzmq/_record*.py",
    "server/_*.py",
    "wire/*.py",
)


def source_key(package: Path = _PACKAGE) -> str:
    """First 16 hex digits of SHA-256 over the name and bytes of every engine and wire module
    of the ``qfix`` package folder ``package`` (this one by default)."""
    files = {f"src/qfix/{p.relative_to(package).as_posix()}": p for pat in _PATTERNS for p in package.glob(pat)}
    h = hashlib.sha256()
    for name in sorted(files, key=str.encode):
        h.update(name.encode() + b"\0")
        h.update(files[name].read_bytes())
    return h.hexdigest()[:16]


def default_base() -> Path:
    """``<checkout>/.numba_cache`` when running from a source checkout, else the user's cache
    folder (``$XDG_CACHE_HOME`` or ``~/.cache``) under ``qfix/numba``."""
    root = _PACKAGE.parent.parent
    if _PACKAGE.parent.name == "src" and (root / "pyproject.toml").is_file():
        return root / ".numba_cache"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "qfix" / "numba"


def configure(base: Path | None = None) -> Path:
    """Set ``NUMBA_CACHE_DIR`` to the keyed directory unless the caller already set one (call
    before numba is imported); returns the directory in use."""
    if os.environ.get("NUMBA_CACHE_DIR"):
        return Path(os.environ["NUMBA_CACHE_DIR"])  # the caller's choice
    os.environ["NUMBA_CACHE_DIR"] = str((base or default_base()) / source_key())
    numba = sys.modules.get("numba")
    if numba is not None and str(getattr(numba.config, "CACHE_DIR", "")) != os.environ["NUMBA_CACHE_DIR"]:
        # numba read its cache directory when it was imported: too late to key it here
        warnings.warn(
            "numba was imported before qfix: its machine-code cache is not keyed by qfix's sources "
            "and may serve kernels compiled from older modules; import qfix first, or set NUMBA_CACHE_DIR",
            RuntimeWarning,
            stacklevel=2,
        )
    return Path(os.environ["NUMBA_CACHE_DIR"])
