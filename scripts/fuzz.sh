#!/usr/bin/env bash
# fuzz.sh - builds the libFuzzer targets with clang (ASan + UBSan) into build-fuzz/ and runs
# each for a bounded time (FCCL_FUZZ_SECONDS, default 30), starting from the stock programs as
# seed corpus. Exits nonzero if a target crashes, leaks or hangs; the reproducer is left in
# build-fuzz/. Called by .ci/run.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
cd "$FCCL_ROOT"

seconds=${FCCL_FUZZ_SECONDS:-30}
CC=clang CXX=clang++ fccl_cmake_configure "$FCCL_ROOT" build-fuzz -DFCCL_BUILD_FUZZERS=ON \
  -DFCCL_BUILD_TESTS=OFF -DFCCL_BUILD_PERF=OFF >/dev/null
cmake --build build-fuzz -j "$FCCL_JOBS" --target fuzz_parser

corpus=build-fuzz/corpus/parser
mkdir -p "$corpus"
cp tests/fusion/programs/*.fccl "$corpus"/
# -max_total_time bounds the run; -timeout turns a slow input into a reported hang.
(cd build-fuzz && ./fusion/fuzz_parser -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
  -print_final_stats=1 corpus/parser 2>&1 | grep -E "stat::number_of_executed_units|Done|ERROR|SUMMARY" || true)
# libFuzzer exits nonzero on a finding; re-run the saved crash inputs to fail loudly.
if ls build-fuzz/crash-* build-fuzz/leak-* build-fuzz/timeout-* >/dev/null 2>&1; then
  echo "fuzz: fuzz_parser found a failing input (build-fuzz/crash-*|leak-*|timeout-*)" >&2
  exit 1
fi
echo "fuzz: fuzz_parser ran ${seconds}s without findings"
