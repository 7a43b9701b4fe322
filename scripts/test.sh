#!/usr/bin/env bash
# Creates .venv if needed, installs qfix with its test dependencies, runs the default suite.
# Extra arguments go to pytest (e.g. `bash scripts/test.sh -m slow`).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh
export NUMBA_CACHE_DIR="${NUMBA_CACHE_DIR:-$PWD/.numba_cache}"
set +e
.venv/bin/python -m pytest "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
    echo "pytest collected no test: treating an empty run as a failure" >&2
    exit 1
fi
exit "$rc"
