#!/usr/bin/env bash
# run.sh - PyTorch's own distributed test suite on the fccl backend (test_torch_distributed.py),
# with the Python of build/python-venv (scripts/test_python.sh makes it and installs fccl there;
# expecttest, which torch's test utilities import, is installed when missing). Prints pytest's
# summary: passed, skipped (with reasons), failed. Takes about 20-30 minutes on 2 cores, so it
# is not part of test.sh; `--smoke` runs four of its tests (30-70 s), which test_python.sh does.
#   bash python/torch_suite/run.sh [--smoke] [pytest args, e.g. -k all_reduce]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
py=${FCCL_PYTHON:-$root/build/python-venv/bin/python}
[ -x "$py" ] || py=python3
"$py" -c "import expecttest" 2>/dev/null || "$py" -m pip install -q --disable-pip-version-check expecttest
cd "$root/python/torch_suite"
export BACKEND=fccl WORLD_SIZE=${WORLD_SIZE:-2} OMP_NUM_THREADS=1
if [ "${1:-}" = --smoke ]; then
  shift
  for t in test_gather test_all_gather test_isend test_DistributedDataParallelCPU; do
    set -- "$@" "test_torch_distributed.py::TestFcclWithSpawn::$t"
  done
fi
exec "$py" -m pytest -q -p no:cacheprovider -rfEs "${@:-test_torch_distributed.py}"
