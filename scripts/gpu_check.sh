#!/usr/bin/env bash
# The GPU checks of the auction backends, for a CUDA machine that has cupy, numba and the
# test tools installed (no virtual environment is made: qfix runs from src/).
# Usage: bash scripts/gpu_check.sh OUTDIR   (writes tests.log, auction-gpu.json/.png, probe.json)
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: scripts/gpu_check.sh OUTDIR}
mkdir -p "$out"
export PYTHONPATH="$PWD/src" PYTHONUNBUFFERED=1 NUMBA_CACHE_DIR="${NUMBA_CACHE_DIR:-/tmp/qfix-numba-cache}"
py=${PYTHON:-python3}
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$out/gpu.txt"
$py -c "import cupy, numba, numpy; print('cupy', cupy.__version__, 'numba', numba.__version__, 'numpy', numpy.__version__)" | tee -a "$out/gpu.txt"
rc=0
$py -m pytest -q -p no:cacheprovider -m "gpu or not gpu" -rs tests/unit/auction 2>&1 | tee "$out/tests.log" || rc=1
$py -m qfix bench auction --json "$out/auction-gpu.json" --plot "$out/auction-gpu.png" -q 2>&1 | tee "$out/bench.log" || rc=1
$py scripts/probe_auction_device.py --json "$out/probe.json" 2>&1 | tee -a "$out/bench.log" || rc=1
exit $rc
