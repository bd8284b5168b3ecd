#!/usr/bin/env bash
# sanitize.sh - the whole test suite under AddressSanitizer (+ LeakSanitizer) and
# UndefinedBehaviorSanitizer: configures RelWithDebInfo with -fsanitize=address,undefined into
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
# --as-needed: GCC's -fsanitize link spec leaves --no-as-needed on, which would record the CUDA
# driver stub (libcuda.so.1, pulled in through CUDA::nvrtc) as NEEDED and fail to load without
# a driver; the regular build drops it.
# -O1 -g1 (line tables and function names, enough for the reports' stacks): about 3x faster to
# compile than RelWithDebInfo's -O2 -g (reduce_kernels.cc: 18.7 s -> 6.1 s), which dominates a
# cold run on 2 cores; the tests run somewhat slower without -O2's vectorizer.
opt="-O1 -g1 -DNDEBUG"
gen=()
if [ ! -f "$build/CMakeCache.txt" ] && command -v ninja >/dev/null 2>&1; then gen=(-G Ninja); fi
cmake -S "$FCCL_ROOT" -B "$build" "${gen[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=$opt" \
  "-DCMAKE_C_FLAGS_RELWITHDEBINFO=$opt" -DFCCL_BUILD_TESTS=ON -DFCCL_BUILD_PERF=OFF -DFCCL_WITH_MPI=OFF \
  "-DCMAKE_C_FLAGS=$san" "-DCMAKE_CXX_FLAGS=$san" \
  "-DCMAKE_EXE_LINKER_FLAGS=-fsanitize=address,undefined -Wl,--as-needed" \
  "-DCMAKE_SHARED_LINKER_FLAGS=-fsanitize=address,undefined -Wl,--as-needed" >/dev/null
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
