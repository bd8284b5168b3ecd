#!/usr/bin/env bash
# tsan.sh - the threaded tests under ThreadSanitizer: configures -O1 -g1 (scripts/common.sh) with
# -fsanitize=thread into build-tsan/ (no perf tools, no MPI), builds, runs with ctest -j2:
#   - the unit tests (tests/unit: FIFOs between threads, bootstrap, sockets, sliced ring, ...);
#   - every multirank / reliability / fused test whose ranks are threads (and those that run no
#     ranks): the sweep's small counts for 1-8 ranks, semantics, groups and split, init-all,
#     pipeline, harness, abort and async errors, the fused programs and properties on 2 and 4
#     ranks; then, directly, the sweep with a 1 KiB chunk per algorithm (many FIFO handoffs on
#     the mid count) and the fused programs with the overlap helper thread forced on.
# Left out: ranks as forked processes (each is single-threaded in its data path and its peers
# are other processes, which TSan cannot see; ASan covers them in scripts/sanitize.sh), the
# mid/large sweeps and 1/3/8-rank fused cases (the same code with more data: minutes each under
# TSan), the single-threaded kernel tests and the fusion compiler's tests, the soak runs (sized
# for uninstrumented speed) and the disabled benchmarks.
# Thread-ranks of one process share one mapping of each shm segment (transports/shm/
# shm_segment.h), so TSan sees the FIFOs' and direct slots' release/acquire pairs, and a user
# buffer ordered only by a transfer is checked too (ThreadRanks.TransfersOrderEarlierWrites...).
# Any report fails the test (halt_on_error; exit code 66), so the script fails.
#
# FCCL_JIT=0 for the tests that do not set it themselves: JIT kernels are built by the system
# compiler without -fsanitize=thread, so TSan would not see their memory accesses anyway, and
# compiling them costs minutes here. The fused tests that pin FCCL_JIT=1 in their ctest
# ENVIRONMENT still run the JIT (the library code around the loaded kernels is instrumented).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
cd "$FCCL_ROOT"

build=${FCCL_TSAN_BUILD:-build-tsan}
san="-fsanitize=thread -fno-omit-frame-pointer"
# No UCX: its memory hooks (libucm) crash a TSan process at exit.
fccl_configure_sanitized "$build" "$san" "-fsanitize=thread" -DFCCL_WITH_UCX=OFF
# Every target but the fusion compiler's test executable: its tests are single-threaded, and
# tests/fusion/pointwise_bench_test.cc's target_clones function crashes it at load under TSan
# (GCC instruments the ifunc resolver, which the dynamic loader runs before the TSan runtime is
# up; the library's own clones are turned off under __SANITIZE_THREAD__ for that reason).
targets=$(cmake --build "$build" --target help |
  sed -n 's/^\.\.\. \([A-Za-z0-9_+-]*\)$/\1/p; s/^\([A-Za-z0-9_+-]*\): phony$/\1/p' |
  grep -vxE 'all|clean|depend|help|test|edit_cache|rebuild_cache|list_install_components|install|fccl_fusion_tests' ||
  true)
[ -n "$targets" ] || { echo "tsan.sh: no targets found in $build" >&2; exit 1; }
# shellcheck disable=SC2086  # one target per word
cmake --build "$build" -j "$FCCL_JOBS" --target $targets

export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$FCCL_ROOT/scripts/tsan.supp${TSAN_OPTIONS:+:$TSAN_OPTIONS}"
export FCCL_JIT=${FCCL_JIT:-0}

status=0
# Left out of the ctest run (see the header): forked-process ranks, benchmarks, the fusion
# compiler's tests (not built), the entries that rerun a whole executable (run below, threads
# only), the mid and large sweeps (the same code with more chunks per call; the forced-chunk
# runs below make many more FIFO handoffs on the mid count), the 1-, 3- and 8-rank fused
# programs and properties (the 2- and 4-rank ones run the same schedules; 8 ranks are
# minutes under TSan), the single-threaded kernel tests, and the soak runs (sized by their
# own deadlines for uninstrumented speed).
skip='processes|[Bb]ench|_NOT_BUILT$|^fused\.overlap\.|^multirank\.SweepForced\.|_mid|_large'
skip+='|^fused\..*(_n[138]_threads|/n[138]( |$))|^ReduceKernelsTest\.|^HalfTest\.|^reliability\.soak\.'
# The network-namespace scenarios and the launcher runs (processes; their helper threads are
# covered by the SocketTransport unit tests and the socket sweep below) and the socket sweep's
# entry (it forks).
skip+='|^net\.|^launch\.|^multirank\.SweepSocket$'
# The stand-in CUDA driver's process cases (they fork; its thread case runs).
skip+='|^CudaFake\..*Processes'
ctest --test-dir "$build" --output-on-failure -j2 -E "$skip" || status=1

# Thread-mode cases of the ctest entries that rerun a whole executable with an environment
# (tests/multirank, tests/fused CMakeLists): the sweep with a 1 KiB pipeline chunk and each
# algorithm forced, and the fused programs with the overlap helper thread forced on. Two at a
# time (2 cores), each into its own log, printed when it ends.
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
pids=() names=()
run() {  # run NAME ENV... -- EXE ARGS...: starts one run in the background
  local name=$1 envs=()
  shift
  while [ "$1" != "--" ]; do envs+=("$1"); shift; done
  shift
  if [ ${#pids[@]} -ge 2 ]; then finish; fi
  echo "tsan.sh: start $name: ${envs[*]} $(basename "$1") ${*:2}"
  env "${envs[@]}" "$@" --gtest_brief=1 >"$logs/$name" 2>&1 &
  pids+=($!) names+=("$name")
}
finish() {  # waits for the oldest run, prints its log, records a failure
  local rc=0
  wait "${pids[0]}" || rc=$?
  echo "tsan.sh: end ${names[0]}: exit $rc"
  cat "$logs/${names[0]}"
  [ $rc -eq 0 ] || status=1
  pids=("${pids[@]:1}") names=("${names[@]:1}")
}
mr="$build/tests/multirank" fu="$build/tests/fused"
for algo in ring direct; do
  run "sweep_$algo" FCCL_ALGO=$algo FCCL_CHUNKSIZE=1024 -- "$mr/fccl_mr_sweep_test" \
    '--gtest_filter=*threads_small*:*N3_threads_mid*'
done
# The socket transport's helper threads against the ranks' threads (transports/socket).
run sweep_socket FCCL_SHM_DISABLE=1 FCCL_SOCKET_IFNAME=lo -- "$mr/fccl_mr_sweep_test" '--gtest_filter=*N2_threads_small*:*N3_threads_mid*'
run overlap_programs FCCL_OVERLAP=1 -- "$fu/fccl_fused_fused_programs_test" '--gtest_filter=*_n2_threads:*_n4_threads'
run overlap_property FCCL_OVERLAP=1 -- "$fu/fccl_fused_property_test" '--gtest_filter=*/n2:*/n4'
while [ ${#pids[@]} -gt 0 ]; do finish; done

if [ $status -eq 0 ]; then
  echo "tsan.sh: all passed under TSan"
else
  echo "tsan.sh: FAILED (see the ThreadSanitizer reports above)" >&2
  exit 1
fi
