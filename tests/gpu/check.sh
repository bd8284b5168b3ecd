#!/usr/bin/env bash
# tests/gpu/check.sh - the one prepared run for the GPU test machine (one H100/H200, nvcc,
# CMake, ninja, python3 with torch and its NCCL; no package registry, maybe no GoogleTest).
# Builds the CUDA parts there, runs the GPU checks and benchmarks, and writes check.log,
# summary.txt and torch_ref.json to $OUT (default /tmp/fccl-gpu). Budget: 8 minutes.
#   1. environment: GPU, driver, toolkit, torch/NCCL, MPS, compute-sanitizer
#   2. build (Release, FCCL_CUDA=ON, the machine's architecture) while torch's reference
#      numbers are taken (tests/gpu/torch_ref.py: copy ceiling, NCCL, fused Adam)
#   3. gpu_ring_check --abort, then gpu_api_check (step 6) before the rest of gpu_ring_check:
#      abort/timeout, exact sweep (dtypes x ops x counts x 2-4 ranks), the same
#      with the kernels the library compiles at run time (NVRTC), busbw
#   4. gpu_fused_adam_check: Adam fused into the ring allreduce kernel (a reduced hook) vs
#      ZeRO-1 and DDP from the same kernels: checked equal, then timed at 256 MiB
#   5. gpu_stock_kernels: every stock program's NVRTC kernels against the float64 reference
#   6. gpu_api_check: device communicators through libfccl's API (fcclCommInitAll with a
#      devlist repeating device 0): bad input, abort/timeout, exact sweep on 2-4 ranks (also with
#      FCCL_PROTO=LL and =Simple forced), processes over cuMem descriptors and over legacy IPC
#      handles (FCCL_CUMEM_ENABLE=0), busbw
#   6b. gpu_program_check: fcclProgramLaunch of stock sgd/adam/adamw on device buffers (1-2 ranks
#      sharing the GPU; the fused ring kernel NVRTC generates) against a float64 reference
#   7. compute-sanitizer memcheck on a small ring sweep and a small API sweep
# FCCL_GPU_ONLY="step step ...": only those steps (after the build), e.g. to rerun failures.
# Exit status: the number of failed steps (0 = all passed).
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
OUT=${OUT:-/tmp/fccl-gpu}
mkdir -p "$OUT"
LOG=$OUT/check.log
SUMMARY=$OUT/summary.txt
: >"$LOG"
: >"$SUMMARY"
BUILD=${FCCL_GPU_BUILD:-build-gpu}
JOBS=$(nproc 2>/dev/null || echo 4)
export CUDA_MODULE_LOADING=EAGER
failed=0

note() { echo "$*" | tee -a "$SUMMARY"; }

# step NAME TIMEOUT CMD...: runs CMD with a time limit, output to the log and the terminal.
step() {
  local name=$1 limit=$2
  shift 2
  # FCCL_GPU_ONLY="api_sweep ring_sweep": run only these steps (and the build), for a rerun.
  if [ -n "${FCCL_GPU_ONLY:-}" ] && [ "$name" != build ] && [[ " $FCCL_GPU_ONLY " != *" $name "* ]]; then
    return 0
  fi
  local t0=$SECONDS rc
  echo "=== $name: $*" | tee -a "$LOG"
  timeout --kill-after=10 "$limit" "$@" 2>&1 | tee -a "$LOG"
  rc=${PIPESTATUS[0]}
  local secs=$((SECONDS - t0))
  if [ "$rc" -eq 0 ]; then
    note "PASS  $name (${secs} s)"
  else
    [ "$rc" -eq 124 ] && note "FAIL  $name: timed out after $limit s" || note "FAIL  $name: exit $rc (${secs} s)"
    failed=$((failed + 1))
  fi
  return "$rc"
}

# ---- 1. environment ----
{
  echo "=== environment"
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.mem,compute_mode --format=csv 2>&1
  nvcc --version 2>&1 | tail -1
  echo "g++: $(g++ --version 2>/dev/null | head -1)  cmake: $(cmake --version 2>/dev/null | head -1)  ninja: $(ninja --version 2>/dev/null)"
  echo "compute-sanitizer: $(command -v compute-sanitizer || echo missing)"
  echo "gtest: $(ls -d /usr/include/gtest /usr/local/include/gtest 2>/dev/null | head -1 || true)"
  pgrep -l nvidia-cuda-mps >/dev/null 2>&1 && echo "MPS: running" || echo "MPS: not running"
  python3 -c 'import torch; print("torch", torch.__version__, "nccl", torch.cuda.nccl.version())' 2>&1 | tail -1
} 2>&1 | tee -a "$LOG" | tee -a "$SUMMARY"

# ---- 2. build, with torch's reference numbers taken meanwhile ----
PYTHONUNBUFFERED=1 timeout --kill-after=10 180 python3 tests/gpu/torch_ref.py >"$OUT/torch_ref.txt" 2>&1 &
torch_pid=$!
step build 300 bash -c "cmake -S . -B '$BUILD' -G Ninja -DCMAKE_BUILD_TYPE=Release -DFCCL_CUDA=ON \
  -DCMAKE_CUDA_ARCHITECTURES=${FCCL_CUDA_ARCH:-90} -DFCCL_BUILD_TESTS=OFF -DFCCL_BUILD_PERF=OFF \
  -DFCCL_WITH_MPI=OFF >/dev/null && cmake --build '$BUILD' -j$JOBS --target gpu_ring_check gpu_fused_adam_check gpu_stock_kernels gpu_api_check gpu_program_check"
built=$?
wait "$torch_pid"
torch_rc=$?
cat "$OUT/torch_ref.txt" >>"$LOG"
if [ "$torch_rc" -eq 0 ]; then note "PASS  torch_ref"; else note "FAIL  torch_ref: exit $torch_rc"; failed=$((failed + 1)); fi

# ---- 3-5. the checks ----
if [ "$built" -eq 0 ]; then
  B=$BUILD/tests/gpu
  step ring_abort 60 "$B/gpu_ring_check" --abort
  # The library's device communicators first (the product); the primitives' own checks after.
  # A kernel that waits for a peer gives up after FCCL_TIMEOUT: a bug fails the step, not the run.
  step api_errors 60 env FCCL_TIMEOUT=20 "$B/gpu_api_check" --errors
  step api_abort 60 env FCCL_TIMEOUT=20 "$B/gpu_api_check" --abort
  step api_processes 150 env FCCL_TIMEOUT=60 FCCL_DEBUG=INFO FCCL_DEBUG_SUBSYS=INIT "$B/gpu_api_check" --processes
  step api_processes_legacy 150 env FCCL_TIMEOUT=60 FCCL_CUMEM_ENABLE=0 "$B/gpu_api_check" --processes
  step api_sweep 240 env FCCL_TIMEOUT=20 "$B/gpu_api_check" --sweep
  # By default small messages take the LL protocol and large ones Simple: each forced on all sizes.
  # LL with 2 channels and 65539 elements: many steps per channel in one kernel, the FIFO wraps.
  step api_sweep_ll 150 env FCCL_TIMEOUT=20 FCCL_PROTO=LL FCCL_MAX_NCHANNELS=2 "$B/gpu_api_check" --sweep --quick --count 65539
  step api_sweep_simple 150 env FCCL_TIMEOUT=20 FCCL_PROTO=Simple "$B/gpu_api_check" --sweep --quick
  step api_abort_ll 60 env FCCL_TIMEOUT=20 FCCL_PROTO=LL "$B/gpu_api_check" --abort
  step api_p2p 120 env FCCL_TIMEOUT=20 "$B/gpu_api_check" --p2p
  step api_bench 120 env FCCL_TIMEOUT=20 "$B/gpu_api_check" --bench
  step api_latency_ll 60 env FCCL_TIMEOUT=20 FCCL_PROTO=LL "$B/gpu_api_check" --latency
  step api_latency_simple 60 env FCCL_TIMEOUT=20 FCCL_PROTO=Simple "$B/gpu_api_check" --latency
  step api_programs 120 env FCCL_TIMEOUT=20 "$B/gpu_program_check"
  step ring_sweep 240 "$B/gpu_ring_check" --sweep
  step ring_nvrtc 180 "$B/gpu_ring_check" --nvrtc
  step ring_bench 180 "$B/gpu_ring_check" --bench
  step fused_adam 180 "$B/gpu_fused_adam_check"
  step stock_kernels 180 "$B/gpu_stock_kernels"
  if command -v compute-sanitizer >/dev/null 2>&1; then
    step memcheck 150 compute-sanitizer --tool memcheck --error-exitcode 9 "$B/gpu_ring_check" --sweep --quick
    step api_memcheck 150 env FCCL_TIMEOUT=30 compute-sanitizer --tool memcheck --error-exitcode 9 "$B/gpu_api_check" --sweep --quick
  else
    note "SKIP  memcheck: compute-sanitizer not found"
  fi
fi

# ---- summary ----
{
  echo "--- numbers"
  grep -h -E "^copy 1 GiB|^bound for|^bench: best|^ +(8|16|32) +[0-9]+K +(8|1048576|268435456|1073741824) |^sweep|^nvrtc:|^abort|^timeout|^stock_kernels:|^copy ceiling|^ +268435456 |^fused_adam_check|^copy 1 GiB device|^ +1073741824 |^errors:|^processes:|FIFOs shared with other|^latency|^p2p:|^api_check|^program|^refusal|FAIL" "$LOG" | grep -v "^=== " || true
  echo "--- torch reference (tests/gpu/torch_ref.py)"
  tail -n 30 "$OUT/torch_ref.txt"
  echo "--- $failed failed step(s), ${SECONDS} s"
} | tee -a "$SUMMARY"
exit "$failed"
