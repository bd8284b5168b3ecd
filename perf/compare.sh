#!/usr/bin/env bash
# compare.sh - fccl allreduce vs Open MPI allreduce vs the memory ceiling, in one run.
#
# Usage: compare.sh [-b 8] [-e 256M] [-f 2] [-n iters] [-w warmup] [-c check] [-np N]...
#                   [-o results_dir (./perf-results)] [--bin dir_with_tools] [--no-plot]
#   -np may be repeated (-np 2 -np 4 -np 8); more ranks than cores run with --oversubscribe.
#   Works from the repository root (tools from build/perf) or from the build's perf/ directory.
#
# For each rank count, on the same sizes (float32 sum, nccl-tests table format):
#   fccl:  mpirun -np N --bind-to core all_reduce_perf ...   (when the tools were built with
#          MPI and mpirun works; else all_reduce_perf -t N, ranks as threads)
#   MPI:   mpirun -np N --bind-to core mpi_perf -C allreduce ...
#   ceiling: membw right before and right after the fccl run, the way the allreduce uses memory:
#          one thread per rank (at most one per core), each bound to its own CPU, reading its
#          share of a 256 MiB buffer and writing another with streaming stores (membw -k copy),
#          best of 10 runs; the larger of the two measurements counts. Bytes read + written/s.
# It prints, per size: fccl time/busbw, MPI time/busbw, the busbw ratio (fccl/MPI), the time
# ratio (MPI time / fccl time; > 1 means fccl is faster) and fccl's busbw as a fraction of the
# bound below (> 1 where the data fits in the caches: the ceiling is a DRAM one).
#
# The bound: an allreduce of S bytes per rank over N ranks sharing one memory reads every input
# once and writes every output once (FIFO slots stay in cache): 2*N*S bytes of memory traffic,
# which is exactly membw's copy pattern. So time >= 2*N*S / ceiling, algbw = S/time <= ceiling/(2N),
#   busbw bound = ceiling/(2N) * 2(N-1)/N = ceiling * (N-1) / N^2      (N=2: ceiling/4)
#
# Raw outputs go to the results directory: fccl_np<N>.txt, mpi_np<N>.txt, membw_np<N>_{before,after}.txt,
# compare_np<N>.txt (the table) and compare_np<N>.png (plot.py, when matplotlib is there).
# Open MPI as root gets --allow-run-as-root; if the shared-memory BTL's single-copy (CMA) fails
# in a container, the run is retried with btl_vader_single_copy_mechanism none, and the
# transport actually used is printed.
# Exit status: 0 when every tool ran and every check passed (#wrong 0); 1 otherwise (all rank
# counts still run; the failures are listed at the end). The plot is optional.
set -u

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
bin=""
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
    -o|--results) results=$2; shift 2 ;;
    --bin) bin=$2; shift 2 ;;
    --no-plot) plot=0; shift ;;
    -h|--help) sed -n '2,34p' "$0"; exit 0 ;;
    *) echo "compare.sh: unknown argument '$1' (see -h)" >&2; exit 1 ;;
  esac
done
[ ${#nps[@]} -eq 0 ] && nps=(2)

# The tools: --bin, else next to this script (the build's perf/), else the build of the
# repository this script is in (perf/compare.sh run from the source tree).
if [ -z "$bin" ]; then
  for cand in "$here" "$here/../build/perf"; do
    if [ -x "$cand/all_reduce_perf" ]; then bin=$(cd "$cand" && pwd); break; fi
  done
fi
for tool in all_reduce_perf membw; do
  if [ -z "$bin" ] || [ ! -x "$bin/$tool" ]; then
    echo "compare.sh: $tool not found (looked in ${bin:-$here and $here/../build/perf}); build perf/ first or pass --bin DIR" >&2
    exit 1
  fi
done
mkdir -p "$results" || exit 1
cores=$(nproc)
common=(-b "$minb" -e "$maxb" -f "$factor" -n "$iters" -w "$warmup" -c "$check" -d float -o sum)
failures=()

# A tool's output is good when it ran to its footer and every check passed.
checked() {  # checked FILE NAME
  if ! grep -q "^# Out of bounds values : 0 OK" "$1"; then
    failures+=("$2: $(grep -h "Out of bounds values" "$1" || echo "no result footer, see $1")")
    return 1
  fi
}

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

# membw -k copy with T threads into FILE; prints its GB/s ("" when it failed).
copy_gbs() {  # copy_gbs T FILE
  if "$bin/membw" -t "$1" -b 256M -e 256M -n 10 -w 1 -k copy >"$2" 2>&1; then
    awk '/^membw: copy / {print $3}' "$2"
  fi
}

for np in "${nps[@]}"; do
  fout="$results/fccl_np$np.txt"
  mout="$results/mpi_np$np.txt"
  threads=$((np < cores ? np : cores))
  before=$(copy_gbs "$threads" "$results/membw_np${np}_before.txt")
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
  checked "$fout" "fccl all_reduce_perf, $np ranks"
  after=$(copy_gbs "$threads" "$results/membw_np${np}_after.txt")
  [ -z "$before" ] && failures+=("membw before the $np-rank run: see $results/membw_np${np}_before.txt")
  [ -z "$after" ] && failures+=("membw after the $np-rank run: see $results/membw_np${np}_after.txt")
  ceiling=$(awk -v a="${before:-0}" -v b="${after:-0}" 'BEGIN { print (a > b ? a : b) }')
  if [ $have_mpi = 1 ]; then
    mpirun_np "$np" "$bin/mpi_perf" -C allreduce "${common[@]}" >"$mout" 2>&1
    checked "$mout" "Open MPI mpi_perf, $np ranks"
  else
    : >"$mout"
  fi

  table="$results/compare_np$np.txt"
  awk -v np="$np" -v ceiling="$ceiling" -v before="${before:-?}" -v after="${after:-?}" -v thr="$threads" \
      -v flaunch="$fccl_launch" -v mt="$mpi_transport" '
    function isrow(line) { return line ~ /^ *[0-9]+ +[0-9]+ / }
    FNR == 1 { file++ }
    file == 1 && isrow($0) { ft[$1] = $6; fb[$1] = $8; order[++n] = $1 }
    file == 2 && isrow($0) { mtm[$1] = $6; mb[$1] = $8 }
    END {
      bound = ceiling * (np - 1) / (np * np)
      printf "# allreduce float sum, %d ranks; fccl: %s; MPI: %s\n", np, flaunch, mt
      printf "# memory ceiling %.2f GB/s: membw -k copy (read + streaming-store copy, %d threads bound one per CPU,\n", ceiling, thr
      printf "#   256 MiB, best of 10) right before (%s) and after (%s) the fccl run, the larger\n", before, after
      printf "# busbw bound = ceiling*(N-1)/N^2 = %.2f GB/s (reads each input once, writes each output once)\n", bound
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
      "$py" "$here/plot.py" -o "$results/compare_np$np.png" \
        --bound "$(awk -v m="$ceiling" -v n="$np" 'BEGIN{print m*(n-1)/(n*n)}')" \
        --bound-label "busbw bound: streaming copy ceiling x (N-1)/N^2" \
        --title "allreduce float sum, $np ranks" "${files[@]}" && echo "# plot: $results/compare_np$np.png"
    else
      echo "# plot skipped: no python3 with matplotlib"
    fi
  fi
done

if [ ${#failures[@]} -gt 0 ]; then
  echo "compare.sh: FAILED:" >&2
  for f in "${failures[@]}"; do echo "  $f" >&2; done
  exit 1
fi
exit 0
