"""qfix: a post-quantum-secure order-matching server.

Importing the package points Numba's cache at a directory keyed by the sources of its
jitted modules (:mod:`qfix.numba_cache`), before any of them can import numba: Numba's own
cache watches only the file of each cached function, and machine code compiled against an
older version of a module it calls would otherwise be loaded (a kernel reading tables of
an older layout writes out of bounds). A ``NUMBA_CACHE_DIR`` set by the caller is kept.
"""

from qfix import numba_cache

numba_cache.configure()
