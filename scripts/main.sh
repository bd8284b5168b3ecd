#!/usr/bin/env bash
# main.sh - the main job (README's first command): installs missing Debian packages, builds
# Release into build/, runs the 2-rank allreduce benchmark against Open MPI and the memory
# ceiling (perf/compare.sh), then the fused-optimizer benchmark (perf/fused_perf: every stock
# optimizer fused vs ZeRO-1 unfused vs DDP vs MPI + update). Raw outputs in build/perf-results/.
# Exits nonzero when a step fails, a tool fails, or any tool reports #wrong > 0.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
cd "$FCCL_ROOT"

bash scripts/deps.sh
fccl_configure build
cmake --build build -j "$FCCL_JOBS"
results=build/perf-results
mkdir -p "$results"

echo
echo "== allreduce, 2 ranks: fccl vs Open MPI vs the memory ceiling"
# Exits 1 when a tool failed or reported #wrong > 0 (set -e stops here then).
bash perf/compare.sh --bin build/perf -o "$results"

echo
echo "== fused optimizers, 2 ranks: fused program vs ZeRO-1 unfused vs DDP vs MPI_Allreduce + update"
# perf/fused_perf.cc says what each column measures and how the check works.
out="$results/fused_perf.txt"
fused=(build/perf/fused_perf -p all -b 1M -e 64M -f 4)
if command -v mpirun >/dev/null 2>&1; then
  mpi=(mpirun -np 2 --bind-to core --mca btl self,vader)
  if ! "${mpi[@]}" "${fused[@]}" >"$out" 2>&1 && grep -qi "CMA\|process_vm_readv\|single.copy" "$out"; then
    # Where the kernel forbids cross-process reads (CMA), Open MPI needs its copy-in/out path.
    "${mpi[@]}" --mca btl_vader_single_copy_mechanism none "${fused[@]}" >"$out" 2>&1 || true
  fi
else
  "${fused[@]}" -t 2 >"$out" 2>&1 || true
fi
cat "$out"
if ! grep -q "^# Out of bounds values : 0 OK" "$out"; then
  echo "main.sh: fused_perf failed or found wrong results (see $out)" >&2
  exit 1
fi
