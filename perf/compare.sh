#!/usr/bin/env bash
# compare.sh - fccl allreduce vs Open MPI allreduce vs the memory-bandwidth bound, in one run.
#
# Usage: compare.sh [-b 8] [-e 256M] [-f 2] [-n iters] [-w warmup] [-c check] [-np N]...
#                   [-d results_dir (./perf-results)] [--bin dir_with_tools] [--no-plot]
#   -np may be repeated (-np 2 -np 4 -np 8); more ranks than cores run with --oversubscribe.
#
# For each rank count it runs, on the same sizes (float32 sum, nccl-tests table format):
#   fccl:  mpirun -np N --bind-to core all_reduce_perf ...   (when the tools were built with
#          MPI and mpirun works; else all_reduce_perf -t N, ranks as threads)
#   MPI:   mpirun -np N --bind-to core mpi_perf -C allreduce ...
#   membw: STREAM-like copy with one thread per core (bytes read + written per second)
# and prints, per size: fccl time/busbw, MPI time/busbw, busbw ratio (fccl/MPI), time ratio
# (MPI time / fccl time; > 1 means fccl is faster) and fccl busbw as a fraction of the bound.
#
# The bound (DESIGN.md): an allreduce of S bytes per rank over N ranks sharing one memory must at
# least read every input once and write every output once: 2*N*S bytes of memory traffic. So
#   time >= 2*N*S / membw,  algbw = S/time <= membw / (2N),
#   busbw bound = membw/(2N) * 2(N-1)/N = membw * (N-1) / N^2      (N=2: membw/4)
# e.g. membw 43 GB/s, 2 ranks: 10.7 GB/s. It ignores caches: small sizes may beat it.
#
# Raw outputs go to the results directory: fccl_np<N>.txt, mpi_np<N>.txt, membw.txt,
# compare_np<N>.txt (the table) and compare_np<N>.png (plot.py, when matplotlib is there).
# Open MPI as root gets --allow-run-as-root; if the shared-memory BTL's single-copy (CMA) fails
# in a container, the run is retried with btl_vader_single_copy_mechanism none, and the
# transport actually used is printed.
set -u

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
bin="$here"
minb=8 maxb=256M factor=2 iters=20 warmup=5 check=1 results=./perf-results plot=1
nps=()
while [ $# -gt 0 ]; do
  case "$1" in
    -b) minb=$2; shift 2 ;;
    -e) maxb=$2; shift 2 ;;
    -f) factor=$2; shift 2 ;;
    -n) iters=$2; shift 2 ;;
    -w) warmup=$2; shift 2 ;;
    -c) check=$2; shift 2 ;;
    -np) nps+=("$2"); shift 2 ;;
    -d|-o|--results) results=$2; shift 2 ;;
    --bin) bin=$2; shift 2 ;;
    --no-plot) plot=0; shift ;;
    -h|--help) sed -n '2,30p' "$0"; exit 0 ;;
    *) echo "compare.sh: unknown argument '$1' (see -h)" >&2; exit 1 ;;
  esac
done
[ ${#nps[@]} -eq 0 ] && nps=(2)

for tool in all_reduce_perf membw; do
  if [ ! -x "$bin/$tool" ]; then
    echo "compare.sh: $bin/$tool not found; build perf/ first or pass --bin DIR" >&2; exit 1
  fi
done
mkdir -p "$results" || exit 1
cores=$(nproc)
common=(-b "$minb" -e "$maxb" -f "$factor" -n "$iters" -w "$warmup" -c "$check" -d float -o sum)

# ---- MPI setup: root, transport ------------------------------------------------------------
have_mpi=0
mpi_base=()
mpi_transport="(no mpirun)"
if command -v mpirun >/dev/null 2>&1 && [ -x "$bin/mpi_perf" ]; then
  mpi_base=(mpirun)
  if [ "$(id -u)" = 0 ]; then
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
    mpi_base+=(--allow-run-as-root)
  fi
  # Shared memory (vader) with its default single-copy mechanism (CMA) first; containers often
  # forbid CMA (process_vm_readv), then fall back to copy-in/copy-out through the segment.
  probe() { timeout 60 "${mpi_base[@]}" -np 2 --oversubscribe "$@" "$bin/mpi_perf" -C allreduce \
              -b 1M -e 1M -n 2 -w 1 >"$results/mpi_probe.txt" 2>&1; }
  if probe --mca btl self,vader && ! grep -qi "error\|failed\|CMA" "$results/mpi_probe.txt"; then
    mpi_base+=(--mca btl self,vader)
    mpi_transport="shared memory: btl self,vader (single-copy: default, CMA)"
    have_mpi=1
  elif probe --mca btl self,vader --mca btl_vader_single_copy_mechanism none; then
    mpi_base+=(--mca btl self,vader --mca btl_vader_single_copy_mechanism none)
    mpi_transport="shared memory: btl self,vader, single-copy none (CMA failed here)"
    have_mpi=1
  elif probe; then
    mpi_transport="Open MPI default BTL selection (vader unavailable)"
    have_mpi=1
  else
    mpi_transport="mpirun failed (see $results/mpi_probe.txt); MPI columns empty"
  fi
fi
echo "# MPI transport: $mpi_transport"

mpirun_np() {  # mpirun_np N cmd...: binding when ranks fit the cores, else oversubscribe
  local n=$1; shift
  if [ "$n" -le "$cores" ]; then
    "${mpi_base[@]}" -np "$n" --bind-to core "$@"
  else
    "${mpi_base[@]}" -np "$n" --oversubscribe --bind-to none "$@"
  fi
}

# ---- Memory bandwidth ----------------------------------------------------------------------------
"$bin/membw" -t "$cores" -s 256M >"$results/membw.txt" 2>&1
membw=$(awk '/^membw:/ {print $(NF-1)}' "$results/membw.txt")
membw=${membw:-0}
echo "# membw: $cores threads copying 256 MiB: $membw GB/s (read + write)"

for np in "${nps[@]}"; do
  fout="$results/fccl_np$np.txt"
  mout="$results/mpi_np$np.txt"
  # fccl: MPI launch when this build has it (the header then says "Launch: MPI"), else threads.
  fccl_launch="threads (-t $np)"
  if [ $have_mpi = 1 ]; then
    mpirun_np "$np" "$bin/all_reduce_perf" "${common[@]}" >"$fout" 2>&1
    if grep -q "^# Launch: MPI" "$fout" && grep -q "Out of bounds" "$fout"; then
      fccl_launch="processes (mpirun -np $np)"
    else
      "$bin/all_reduce_perf" "${common[@]}" -t "$np" >"$fout" 2>&1
    fi
  else
    "$bin/all_reduce_perf" "${common[@]}" -t "$np" >"$fout" 2>&1
  fi
  if [ $have_mpi = 1 ]; then
    mpirun_np "$np" "$bin/mpi_perf" -C allreduce "${common[@]}" >"$mout" 2>&1
  else
    : >"$mout"
  fi

  table="$results/compare_np$np.txt"
  awk -v np="$np" -v membw="$membw" -v flaunch="$fccl_launch" -v mt="$mpi_transport" '
    function isrow(line) { return line ~ /^ *[0-9]+ +[0-9]+ / }
    FNR == 1 { file++ }
    file == 1 && isrow($0) { ft[$1] = $6; fb[$1] = $8; order[++n] = $1 }
    file == 2 && isrow($0) { mtm[$1] = $6; mb[$1] = $8 }
    END {
      bound = membw * (np - 1) / (np * np)
      printf "# allreduce float sum, %d ranks; fccl: %s; MPI: %s\n", np, flaunch, mt
      printf "# membw %.2f GB/s -> busbw bound membw*(N-1)/N^2 = %.2f GB/s\n", membw, bound
      printf "# %10s  %10s %8s  %10s %8s  %9s %9s  %8s\n", "size(B)", "fccl(us)", "busbw",
             "mpi(us)", "busbw", "bw f/m", "t m/f", "f/bound"
      for (i = 1; i <= n; i++) {
        s = order[i]
        # Same size and N: the busbw ratio equals the time ratio; the printed busbw has only
        # two decimals, so below 1 GB/s it is taken from the times.
        if (!(s in mtm) || ft[s] <= 0) r1 = sprintf("%9s", "-")
        else if (fb[s] >= 1 && mb[s] >= 1) r1 = sprintf("%9.2f", fb[s] / mb[s])
        else r1 = sprintf("%9.2f", mtm[s] / ft[s])
        r2 = (s in mtm && ft[s] > 0) ? sprintf("%9.2f", mtm[s] / ft[s]) : sprintf("%9s", "-")
        r3 = bound > 0 ? sprintf("%8.2f", fb[s] / bound) : sprintf("%8s", "-")
        printf "  %10s  %10s %8s  %10s %8s  %s %s  %s\n", s, ft[s], fb[s],
               (s in mtm) ? mtm[s] : "-", (s in mb) ? mb[s] : "-", r1, r2, r3
      }
    }' "$fout" "$mout" >"$table"
  cat "$table"
  grep -h "Out of bounds\|Avg bus" "$fout" | sed 's/^# /# fccl: /'
  [ -s "$mout" ] && grep -h "Out of bounds\|Avg bus" "$mout" | sed 's/^# /# mpi:  /'

  if [ $plot = 1 ]; then
    py=""
    for cand in python3 /usr/bin/python3; do
      if command -v "$cand" >/dev/null && "$cand" -c "import matplotlib" 2>/dev/null; then py=$cand; break; fi
    done
    if [ -n "$py" ]; then
      files=("$fout:fccl np$np")
      [ -s "$mout" ] && files+=("$mout:Open MPI np$np")
      "$py" "$here/plot.py" -o "$results/compare_np$np.png" --bound "$(awk -v m="$membw" -v n="$np" 'BEGIN{print m*(n-1)/(n*n)}')" \
        --title "allreduce float sum, $np ranks" "${files[@]}" && echo "# plot: $results/compare_np$np.png"
    else
      echo "# plot skipped: no python3 with matplotlib"
    fi
  fi
done
