"""Test-wide setup: Numba's cache location before numba is imported, Hypothesis profile."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from hypothesis import HealthCheck, settings


def _numba_cache_dir(root: Path) -> Path:
    """``.numba_cache/<key>``: the key digests every engine and wire module (name, then
    bytes, in byte order of the name), exactly as scripts/test.sh does, so an edit to any of
    them starts a fresh cache instead of loading stale machine code."""
    names = sorted(
        str(p.relative_to(root))
        for pattern in ("src/qfix/engine/*.py", "src/qfix/engine/*/*.py", "src/qfix/wire/*.py")
        for p in root.glob(pattern)
    )
    h = hashlib.sha256()
    for name in sorted(names, key=lambda n: n.encode()):
        h.update(name.encode() + b"\0")
        h.update((root / name).read_bytes())
    return root / ".numba_cache" / h.hexdigest()[:16]


os.environ.setdefault("NUMBA_CACHE_DIR", str(_numba_cache_dir(Path(__file__).resolve().parent.parent)))

# JIT compilation makes first examples slow: no deadline anywhere.
settings.register_profile("qfix", deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True)
settings.register_profile("ci", parent=settings.get_profile("qfix"), derandomize=True)
settings.load_profile("ci" if os.environ.get("CI") else "qfix")
