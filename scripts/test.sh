#!/usr/bin/env bash
# Creates .venv if needed, installs qfix with its test dependencies, runs the default suite.
# Extra arguments go to pytest (e.g. `bash scripts/test.sh -m slow`).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh
# Numba's cache only watches the file of each cached function, so key the cache directory by
# a digest of every engine, market-data and wire module (name and bytes, C-locale order): any edit there
# starts a fresh cache. tests/conftest.py computes the same key. An explicit
# NUMBA_CACHE_DIR from the caller is kept as is.
if [ -z "${NUMBA_CACHE_DIR:-}" ]; then
    numba_key=$(for f in $(LC_ALL=C ls src/qfix/crypto/_gcm*.py src/qfix/engine/*.py src/qfix/engine/*/*.py src/qfix/marketdata/*.py src/qfix/native_zmq.py src/qfix/qzmq/_record*.py src/qfix/server/_*.py src/qfix/wire/*.py 2>/dev/null | LC_ALL=C sort); do
        printf '%s\0' "$f"; cat "$f"
    done | sha256sum | cut -c1-16)
    export NUMBA_CACHE_DIR="$PWD/.numba_cache/$numba_key"
fi
set +e
.venv/bin/python -m pytest "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
    echo "pytest collected no test: treating an empty run as a failure" >&2
    exit 1
fi
exit "$rc"
