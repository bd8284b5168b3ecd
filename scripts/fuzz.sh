#!/usr/bin/env bash
# fuzz.sh - builds the libFuzzer targets with clang (ASan + UBSan) into build-fuzz/ and runs each
# for a bounded time (FCCL_FUZZ_SECONDS, default 30), all at once (libFuzzer's time is wall time):
#   fuzz_parser     the IR parser + checker round trip (fusion/parse/fuzz_parser.cc); seeds: the
#                   stock programs in fusion/stock/ and the test programs in tests/fusion/programs/
#   fuzz_bootstrap  every bootstrap message the root or a peer parses (tests/fuzz/); seeds: valid
#                   messages written by the target itself (--write-seeds, each checked accepted)
#                   plus the regression inputs in tests/fuzz/corpus/bootstrap/
#   fuzz_transport  FIFO slot metadata, direct-slot headers, p2p slots and the pipeline header
#                   from a hostile peer (tests/fuzz/); seeds the same way, tests/fuzz/corpus/transport/
#   fuzz_socket_wire  the socket transport's frame headers and hellos (transports/socket/socket_wire.h),
#                   and whole byte streams through a receive lane (socket_lanes.h); seeds the same
#                   way, tests/fuzz/corpus/socket_wire/
# The wire targets run with -malloc_limit_mb=64: no input may make one allocation above 64 MiB
# (nothing is sized by a length read off the wire). UBSan reports count as findings. Prints
# "fuzz: <target>: N execs in S s, no findings" per target; exits nonzero on any crash, leak,
# timeout, out-of-memory or sanitizer report, leaving the reproducer as build-fuzz/<target>-*
# and the log as build-fuzz/<target>.log (reproduce: build-fuzz/.../<target> FILE). Earlier
# reproducers are removed at the start. Called by .ci/run; about 2 minutes on 2 cores.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
cd "$FCCL_ROOT"

seconds=${FCCL_FUZZ_SECONDS:-30}
targets=(fuzz_parser fuzz_bootstrap fuzz_transport fuzz_socket_wire)
CC=clang CXX=clang++ fccl_cmake_configure "$FCCL_ROOT" build-fuzz -DFCCL_BUILD_FUZZERS=ON \
  -DFCCL_BUILD_TESTS=OFF -DFCCL_BUILD_PERF=OFF >/dev/null
cmake --build build-fuzz -j "$FCCL_JOBS" --target "${targets[@]}"

binary() { case $1 in fuzz_parser) echo build-fuzz/fusion/fuzz_parser ;; *) echo "build-fuzz/tests/fuzz/$1" ;; esac; }

# Rejections log WARN lines (thousands a second): keep the logs to what a finding prints.
export FCCL_DEBUG=NONE
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
rm -f build-fuzz/fuzz_*-crash-* build-fuzz/fuzz_*-leak-* build-fuzz/fuzz_*-timeout-* build-fuzz/fuzz_*-oom-* \
  build-fuzz/fuzz_*-slow-unit-*

pids=()
for t in "${targets[@]}"; do
  corpus=build-fuzz/corpus/${t#fuzz_}
  mkdir -p "$corpus"
  limits=(-rss_limit_mb=2048)
  if [ "$t" = fuzz_parser ]; then
    cp fusion/stock/*.fccl tests/fusion/programs/*.fccl "$corpus"/
  else
    "$(binary "$t")" --write-seeds="$corpus"
    cp "tests/fuzz/corpus/${t#fuzz_}"/* "$corpus"/
    limits=(-rss_limit_mb=2048 -malloc_limit_mb=64 -max_len=4096)
  fi
  # -max_total_time bounds the run; -timeout turns a slow input into a reported hang.
  "$(binary "$t")" -max_total_time="$seconds" -timeout=10 "${limits[@]}" -print_final_stats=1 \
    -artifact_prefix="build-fuzz/$t-" "$corpus" >"build-fuzz/$t.log" 2>&1 &
  pids+=($!)
done

failed=0
for i in "${!targets[@]}"; do
  t=${targets[$i]}
  rc=0
  wait "${pids[$i]}" || rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "build-fuzz/$t.log" | tail -1)
  time=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "build-fuzz/$t.log" | tail -1)
  repro=$(ls build-fuzz/"$t"-* 2>/dev/null | grep -v '\.log$' || true)
  if [ "$rc" -ne 0 ] || [ -n "$repro" ] || [ -z "$execs" ]; then
    echo "fuzz: $t: FAILED (exit $rc) after ${execs:-?} execs; reproducer: ${repro:-none}; log: build-fuzz/$t.log" >&2
    grep -E "ERROR|SUMMARY|runtime error|invariant failed" "build-fuzz/$t.log" | head -5 >&2 || true
    failed=1
  else
    echo "fuzz: $t: $execs execs in ${time:-$seconds} s, no findings"
  fi
done
exit "$failed"
