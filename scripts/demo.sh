#!/usr/bin/env bash
# Creates .venv if needed, installs qfix, runs the local demo.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh
exec .venv/bin/qfix demo "$@"
