"""Test-wide setup: Numba's cache location before numba is imported, Hypothesis profile."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

from qfix import numba_cache

# the same keyed directory as scripts/test.sh and the qfix command (qfix.numba_cache)
numba_cache.configure()

# JIT compilation makes first examples slow: no deadline anywhere.
settings.register_profile("qfix", deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True)
settings.register_profile("ci", parent=settings.get_profile("qfix"), derandomize=True)
settings.load_profile("ci" if os.environ.get("CI") else "qfix")
