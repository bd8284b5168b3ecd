#!/usr/bin/env bash
# test.sh - the whole test suite (README's second command): installs missing Debian packages,
# builds Release with tests into build/, runs ctest, checks the installed package
# (scripts/check_install.sh), then the Python package's tests (scripts/test_python.sh: torch
# backend, fused optimizers). Every part always runs; exits nonzero if any failed.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
cd "$FCCL_ROOT"

bash scripts/deps.sh
fccl_configure build -DFCCL_BUILD_TESTS=ON
cmake --build build -j "$FCCL_JOBS"

status=0
ctest --test-dir build --output-on-failure -j2 --timeout 600 || status=1
bash scripts/check_install.sh build || status=1
bash scripts/test_python.sh build || status=1
if [ $status -ne 0 ]; then
  echo "test.sh: FAILED (see above)" >&2
else
  echo "test.sh: all passed"
fi
exit $status
