#!/usr/bin/env bash
# main.sh - the main job (README's first command): installs missing Debian packages, builds
# Release into build/, runs the 2-rank allreduce benchmark against Open MPI, then the fused
# optimizer demo (perf/fused_perf). Exits nonzero on the first failure.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
cd "$FCCL_ROOT"

bash scripts/deps.sh
fccl_configure build
cmake --build build -j "$FCCL_JOBS"

echo
echo "== allreduce, 2 ranks: fccl vs Open MPI"
if [ -f perf/compare.sh ]; then
  # Tools from build/; raw outputs, tables and plots into build/perf-results/.
  bash perf/compare.sh --bin build/perf -d build/perf-results
elif [ -x build/perf/all_reduce_perf ]; then
  echo "(perf/compare.sh not there yet: fccl alone, no Open MPI reference)"
  build/perf/all_reduce_perf -b 8 -e 256M -f 4 -t 2
else
  echo "main.sh: neither perf/compare.sh nor build/perf/all_reduce_perf exists" >&2
  exit 1
fi

echo
echo "== fused optimizer demo: Adam after the gradient allreduce, 2 ranks"
# The DESIGN.md Adam program fused into the allreduce, vs fcclAllReduce + a separate update,
# vs MPI_Allreduce + the same update (perf/fused_perf.cc says what each column measures).
if command -v mpirun >/dev/null 2>&1; then
  # Where the kernel forbids cross-process reads (CMA), Open MPI needs its copy-in/out path.
  mpirun -np 2 --bind-to core --mca btl self,vader build/perf/fused_perf -b 1M -e 64M -f 4 ||
    mpirun -np 2 --bind-to core --mca btl self,vader --mca btl_vader_single_copy_mechanism none \
      build/perf/fused_perf -b 1M -e 64M -f 4
else
  build/perf/fused_perf -t 2 -b 1M -e 64M -f 4
fi
