#!/usr/bin/env bash
# sanitize.sh - the whole test suite under AddressSanitizer (+ LeakSanitizer) and
# UndefinedBehaviorSanitizer: configures -O1 -g1 (scripts/common.sh) with -fsanitize=address,undefined into
# build-asan/ (no perf tools, no MPI), builds, runs ctest. Any sanitizer report aborts the test
# process (abort_on_error / halt_on_error, -fno-sanitize-recover), so ctest fails; exits nonzero
# on any failure. Suppressions: scripts/lsan.supp, scripts/ubsan.supp (each entry says why).
# Runs every ctest entry except the soak runs (tests/reliability: op counts sized by their own
# deadlines for uninstrumented speed) and the disabled benchmarks. -O1 -g1, see below.
#
# FCCL_JIT=0 for the tests that do not set it themselves: the JIT spawns the system compiler and
# dlopens code built without sanitizers, which adds nothing to check here and costs compile
# time. The fused tests that pin FCCL_JIT=1 in their ctest ENVIRONMENT still run the JIT (the
# loaded kernels are simply not instrumented; the library code around them is).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
cd "$FCCL_ROOT"

build=${FCCL_ASAN_BUILD:-build-asan}
# -fno-sanitize=enum: the API is C (NCCL's); the bad-input tests pass out-of-range fcclDataType_t
# / fcclRedOp_t values (42, 99) on purpose and the library rejects them, but a C++ load of such a
# value is UB that UBSan's enum check aborts on (and -fno-sanitize-recover ignores suppressions).
san="-fsanitize=address,undefined -fno-sanitize=enum -fno-omit-frame-pointer -fno-sanitize-recover=undefined"
fccl_configure_sanitized "$build" "$san" "-fsanitize=address,undefined"
cmake --build "$build" -j "$FCCL_JOBS"

export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export LSAN_OPTIONS="suppressions=$FCCL_ROOT/scripts/lsan.supp:print_suppressions=0${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:suppressions=$FCCL_ROOT/scripts/ubsan.supp${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
export FCCL_JIT=${FCCL_JIT:-0}

# Not run here: the disabled benchmarks (as everywhere) and the soak runs, whose op counts are
# sized by their own deadlines for uninstrumented speed (tests/reliability/CMakeLists.txt).
if ctest --test-dir "$build" --output-on-failure -j2 -E '^reliability\.soak\.'; then
  echo "sanitize.sh: all passed under ASan+UBSan"
else
  echo "sanitize.sh: FAILED (see the sanitizer reports above)" >&2
  exit 1
fi
