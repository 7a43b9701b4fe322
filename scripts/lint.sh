#!/usr/bin/env bash
# Creates .venv if needed (as scripts/test.sh does), then runs every static check CI runs:
# ruff's lint rules, ruff's formatting check, and mypy --strict on the package.
# All three run even if one fails; the exit status is non-zero if any failed.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh
failed=0
run() {
    echo "+ $*" >&2
    "$@" || failed=1
}
run .venv/bin/ruff check src tests
run .venv/bin/ruff format --check src tests
run .venv/bin/mypy --strict src
exit "$failed"
