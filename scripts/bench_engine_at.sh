#!/usr/bin/env bash
# Runs a benchmark command of this checkout against the engine of another revision, for
# before/after tables measured with the same benchmark code on the same machine:
#
#   bash scripts/bench_engine_at.sh 715eff4 qfix bench paths --quick --json before.json
#
# The revision's src/qfix/engine is checked out over a temporary copy of this tree's src/
# (everything else stays as it is here; engine modules the revision lacks, such as
# buffers.py before it existed, stay too), and the command runs with that copy first on
# PYTHONPATH and a Numba cache keyed by the copy's engine and wire sources, as
# scripts/test.sh does. The engine's public API must be the same in both revisions.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh
if [ "$#" -lt 2 ]; then
    echo "usage: bash scripts/bench_engine_at.sh REVISION COMMAND [ARGS...]" >&2
    exit 2
fi
rev=$1
shift
git rev-parse --verify --quiet "$rev^{commit}" >/dev/null || { echo "no such revision: $rev" >&2; exit 2; }
tree=$(mktemp -d)
trap 'rm -rf "$tree"' EXIT
cp -r src "$tree/src"
git archive "$rev" src/qfix/engine | tar -x -C "$tree"
numba_key=$(cd "$tree" && for f in $(LC_ALL=C ls src/qfix/crypto/_gcm*.py src/qfix/engine/*.py src/qfix/engine/*/*.py src/qfix/marketdata/*.py src/qfix/qzmq/_record*.py src/qfix/server/_*.py src/qfix/wire/*.py 2>/dev/null | LC_ALL=C sort); do
    printf '%s\0' "$f"; cat "$f"
done | sha256sum | cut -c1-16)
export NUMBA_CACHE_DIR="$PWD/.numba_cache/$numba_key"
export PYTHONPATH="$tree/src${PYTHONPATH:+:$PYTHONPATH}"
export PATH="$PWD/.venv/bin:$PATH"
echo "engine of $(git rev-parse --short "$rev") with the benchmarks of this checkout" >&2
"$@"
