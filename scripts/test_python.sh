#!/usr/bin/env bash
# test_python.sh - the Python package's tests (python/tests, pytest), run by test.sh after ctest:
# a virtual environment in BUILD/python-venv (with the system's site-packages, so a torch
# already installed is used), torch from PyPI when none is importable, pytest, then `pip install ./python` against BUILD's libfccl (the path a user
# takes) and the tests, run from outside python/ so the installed package is what they import;
# then four tests of PyTorch's own distributed suite on fccl (python/torch_suite/run.sh --smoke;
# the whole suite takes 15+ minutes and is run by hand). About 4 minutes on 2 cores once torch
# is there (the extension build is 2 of them).
#   bash scripts/test_python.sh [build-dir]   (default: build/)     FCCL_SKIP_PYTHON=1 skips it
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
cd "$FCCL_ROOT"

if [ "${FCCL_SKIP_PYTHON:-0}" = 1 ]; then
  echo "test_python: FCCL_SKIP_PYTHON=1, skipped"
  exit 0
fi
build=$(cd "${1:-build}" && pwd)
venv=$build/python-venv
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv --system-site-packages "$venv"
fi
py=$venv/bin/python
pip=("$py" -m pip install -q --disable-pip-version-check)
if ! "$py" -c "import torch" 2>/dev/null; then
  # From PyPI (the registry CI machines reach; download.pytorch.org may be out of reach).
  echo "test_python: installing torch from PyPI"
  "${pip[@]}" torch
fi
"$py" -c "import pytest" 2>/dev/null || "${pip[@]}" pytest
"$py" -c "import setuptools, wheel" 2>/dev/null || "${pip[@]}" setuptools wheel

echo "test_python: pip install ./python (torch $("$py" -c 'import torch; print(torch.__version__)'))"
log=$build/python-install.log
if ! MAX_JOBS=$FCCL_JOBS FCCL_BUILD_DIR=$build "${pip[@]}" --no-build-isolation ./python >"$log" 2>&1; then
  tail -n 40 "$log" >&2
  echo "test_python: pip install ./python failed (log: $log)" >&2
  exit 1
fi
cd "$build"
status=0
OMP_NUM_THREADS=1 "$py" -m pytest -q -p no:cacheprovider "$FCCL_ROOT/python/tests" || status=1
echo "test_python: PyTorch's own distributed suite on fccl, smoke subset (python/torch_suite/run.sh --smoke)"
FCCL_PYTHON=$py bash "$FCCL_ROOT/python/torch_suite/run.sh" --smoke || status=1
exit $status
