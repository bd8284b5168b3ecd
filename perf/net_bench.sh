#!/usr/bin/env bash
# net_bench.sh - fccl's allreduce across two test hosts against Gloo, Open MPI and the link's own
# TCP throughput, in one run. The hosts are network namespaces joined by a veth pair (198.18.0.1
# and .2), each with its own hostname and /dev/shm, so fccl uses its socket transport between
# them; one rank per host, bound to its own core (taskset: host 0 on CPU 0, host 1 on CPU 1).
# Measured, in this order: iperf3 one way and --bidir (the ceiling: a 2-rank ring sends and
# receives at once), fccl all_reduce_perf, gloo_perf (gloo::AllreduceRing, tcp), Open MPI
# mpi_perf -C allreduce (btl tcp; mpirun in host 0 starts host 1's daemon through an rsh agent
# that enters its namespace). Float32 sum, nccl-tests' busbw (= algbw at 2 ranks: each rank sends
# and receives the whole buffer once), and fccl again over UCX's tcp transport (FCCL_NET=ucx,
# when built with UCX). Then 2 hosts x 2 ranks (both ranks of a host on its core):
# fccl's two-level AllReduce against its flat ring (FCCL_ALGO=hier / ring) in the same run.
# Needs root; raw outputs go to $OUT (build/perf-results/net).
# Usage: perf/net_bench.sh [BUILD_DIR] [-b MIN] [-e MAX] [-f FACTOR] [-n ITERS] [-w WARMUP]
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
build=${1:-$here/../build}
[ $# -gt 0 ] && shift
args=("$@")
[ ${#args[@]} -gt 0 ] || args=(-b 8 -e 256M -f 2 -n 10 -w 3)
[ "$(id -u)" = 0 ] || { echo "net_bench: needs root (network namespaces)" >&2; exit 1; }
for t in perf/all_reduce_perf perf/gloo_perf perf/mpi_perf; do
  [ -x "$build/$t" ] || echo "net_bench: $build/$t not built; its row is left out" >&2
done
OUT=${OUT:-$build/perf-results/net}
mkdir -p "$OUT"
P=fb$$
cleanup() {
  for h in ${P}h0 ${P}h1; do
    ip netns pids "$h" 2>/dev/null | xargs -r kill -9 2>/dev/null
    ip netns del "$h" 2>/dev/null
  done
  rm -rf "$tmp"
}
tmp=$(mktemp -d)
trap cleanup EXIT
for i in 0 1; do ip netns add ${P}h$i && ip -n ${P}h$i link set lo up || exit 1; done
ip link add ${P}a type veth peer name ${P}b || exit 1
for i in 0 1; do
  dev=${P}a
  [ $i = 1 ] && dev=${P}b
  ip link set $dev netns ${P}h$i && ip -n ${P}h$i link set $dev name eth0
  ip -n ${P}h$i addr add 198.18.0.$((i + 1))/24 dev eth0 && ip -n ${P}h$i link set eth0 up
done
# host I: a shell in host I's namespaces (own hostname, own /dev/shm), bound to CPU I.
host() {
  local i=$1
  shift
  ip netns exec ${P}h$i unshare --uts --mount --propagation private \
    sh -c "hostname fccl-h$i && mount -t tmpfs -o size=2g tmpfs /dev/shm && exec taskset -c $i $*"
}

echo "== iperf3 (host 0 -> host 1, 5 s each)" | tee "$OUT/summary.txt"
if command -v iperf3 >/dev/null; then
  host 1 iperf3 -s -1 -p 5201 >/dev/null 2>&1 &
  sleep 0.5
  host 0 iperf3 -c 198.18.0.2 -p 5201 -t 5 -J >"$OUT/iperf_oneway.json" 2>&1
  wait
  host 1 iperf3 -s -1 -p 5202 >/dev/null 2>&1 &
  sleep 0.5
  host 0 iperf3 -c 198.18.0.2 -p 5202 -t 5 --bidir -J >"$OUT/iperf_bidir.json" 2>&1
  wait
  python3 - "$OUT" <<'PY' | tee -a "$OUT/summary.txt"
import json, sys
out = sys.argv[1]
one = json.load(open(out + "/iperf_oneway.json"))["end"]["sum_received"]["bits_per_second"] / 8e9
bi = json.load(open(out + "/iperf_bidir.json"))["end"]
fwd = bi["sum_received"]["bits_per_second"] / 8e9
rev = bi["sum_received_bidir_reverse"]["bits_per_second"] / 8e9
print(f"iperf3 one way: {one:.3f} GB/s; --bidir: {fwd:.3f} + {rev:.3f} GB/s (min {min(fwd, rev):.3f} per direction)")
open(out + "/bidir_gbs", "w").write(f"{min(fwd, rev):.4f}\n")
PY
else
  echo "iperf3 not installed (scripts/deps.sh installs it)" | tee -a "$OUT/summary.txt"
fi

echo "== fccl all_reduce_perf ${args[*]}" | tee -a "$OUT/summary.txt"
if [ -x "$build/perf/all_reduce_perf" ]; then
  e="RANK=1 WORLD_SIZE=2 FCCL_COMM_ID=198.18.0.1:29500"
  host 1 env $e "$build/perf/all_reduce_perf" "${args[@]}" >"$OUT/fccl_rank1.txt" 2>&1 &
  host 0 env RANK=0 WORLD_SIZE=2 FCCL_COMM_ID=198.18.0.1:29500 FCCL_DEBUG=INFO FCCL_DEBUG_SUBSYS=INIT,NET \
    "$build/perf/all_reduce_perf" "${args[@]}" >"$OUT/fccl.txt" 2>&1
  wait
  grep -E "transport|socket:" "$OUT/fccl.txt" | head -3
  # The same over UCX's tcp transport (FCCL_NET=ucx), when fccl was built with UCX.
  u="FCCL_NET=ucx UCX_TLS=tcp UCX_NET_DEVICES=eth0"
  host 1 env $e $u "$build/perf/all_reduce_perf" "${args[@]}" >/dev/null 2>&1 &
  host 0 env RANK=0 WORLD_SIZE=2 FCCL_COMM_ID=198.18.0.1:29500 $u FCCL_DEBUG=INFO FCCL_DEBUG_SUBSYS=INIT \
    "$build/perf/all_reduce_perf" "${args[@]}" >"$OUT/fccl_ucx.txt" 2>&1
  wait
  grep -q "transport ucx" "$OUT/fccl_ucx.txt" || { echo "fccl over UCX: not built with UCX" | tee -a "$OUT/summary.txt"; rm -f "$OUT/fccl_ucx.txt"; }
fi

echo "== gloo_perf ${args[*]}" | tee -a "$OUT/summary.txt"
if [ -x "$build/perf/gloo_perf" ]; then
  mkdir -p "$tmp/gloo"
  host 1 env RANK=1 WORLD_SIZE=2 GLOO_STORE="$tmp/gloo" GLOO_IFACE=eth0 "$build/perf/gloo_perf" "${args[@]}" \
    >"$OUT/gloo_rank1.txt" 2>&1 &
  host 0 env RANK=0 WORLD_SIZE=2 GLOO_STORE="$tmp/gloo" GLOO_IFACE=eth0 "$build/perf/gloo_perf" "${args[@]}" \
    >"$OUT/gloo.txt" 2>&1
  wait
fi

echo "== Open MPI mpi_perf -C allreduce ${args[*]} (btl tcp)" | tee -a "$OUT/summary.txt"
if [ -x "$build/perf/mpi_perf" ] && command -v mpirun >/dev/null; then
  cat >"$tmp/rsh" <<RSH
#!/bin/sh
# mpirun's rsh agent: "198.18.0.2 CMD..." runs CMD in host 1's namespace.
h=\$1; shift
[ "\$h" = 198.18.0.2 ] && exec ip netns exec ${P}h1 sh -c "\$*"
exec sh -c "\$*"
RSH
  chmod +x "$tmp/rsh"
  printf "198.18.0.1 slots=1\n198.18.0.2 slots=1\n" >"$tmp/hosts"
  # Each rank binds itself to its host's CPU (mpirun's --bind-to would put both on core 0: each
  # "node" believes it owns every core).
  ip netns exec ${P}h0 mpirun --allow-run-as-root -np 2 --hostfile "$tmp/hosts" --mca plm_rsh_agent "$tmp/rsh" \
    --mca btl tcp,self --mca btl_tcp_if_include eth0 --mca oob_tcp_if_include eth0 --bind-to none \
    sh -c "exec taskset -c \$OMPI_COMM_WORLD_RANK $build/perf/mpi_perf -C allreduce ${args[*]}" \
    >"$OUT/mpi.txt" 2>&1
fi

echo "== fccl 2 hosts x 2 ranks: FCCL_ALGO=ring vs hier, all_reduce_perf ${args[*]}" | tee -a "$OUT/summary.txt"
if [ -x "$build/perf/all_reduce_perf" ]; then
  # pair.sh H ALGO PROG ARGS...: ranks 2H and 2H+1 of the job, in host H's namespaces.
  cat >"$tmp/pair.sh" <<PAIR
#!/bin/sh
h=\$1; algo=\$2; shift 2
for k in 0 1; do
  r=\$((2 * h + k)); o=/dev/null; [ \$r = 0 ] && o="$OUT/fccl_2x2_\$algo.txt"
  env RANK=\$r WORLD_SIZE=4 LOCAL_RANK=\$k FCCL_COMM_ID=198.18.0.1:29510 FCCL_ALGO=\$algo "\$@" >"\$o" 2>&1 &
done
wait
PAIR
  for algo in ring hier; do
    host 1 sh "$tmp/pair.sh" 1 $algo "$build/perf/all_reduce_perf" "${args[@]}" &
    host 0 sh "$tmp/pair.sh" 0 $algo "$build/perf/all_reduce_perf" "${args[@]}"
    wait
  done
fi

python3 - "$OUT" <<'PY' | tee -a "$OUT/summary.txt"
import os, sys
out = sys.argv[1]
def rows(name, size_col=0, time_col=5, busbw_col=7):
    path = os.path.join(out, name)
    r = {}
    if not os.path.exists(path):
        return r
    for line in open(path):
        f = line.split()
        if not f or line.startswith("#") or not f[0].isdigit():
            continue
        try:
            r[int(f[size_col])] = (float(f[time_col]), float(f[busbw_col]))
        except (ValueError, IndexError):
            pass
    return r
fccl = rows("fccl.txt")
mpi = rows("mpi.txt")
gloo = rows("gloo.txt", 0, 2, 4)
bidir = None
if os.path.exists(out + "/bidir_gbs"):
    bidir = float(open(out + "/bidir_gbs").read())
print(f"{'size':>10} | {'fccl':>18} | {'Gloo':>18} | {'Open MPI':>18} | fccl/Gloo fccl/MPI")
for size in sorted(fccl):
    def cell(t):
        if size not in t: return f"{'-':>18}"
        us, bw = t[size]
        return f"{us:9.1f}us {bw:5.2f}GB/s"
    ratio = lambda t: f"{fccl[size][1] / t[size][1]:8.2f}x" if size in t and t[size][1] > 0 else f"{'-':>9}"
    print(f"{size:>10} | {cell(fccl)} | {cell(gloo)} | {cell(mpi)} | {ratio(gloo)} {ratio(mpi)}")
small = min(fccl) if fccl else None
big = max(fccl) if fccl else None
if small is not None:
    s = f"{small} B latency: fccl {fccl[small][0]:.1f} us"
    if small in mpi: s += f", Open MPI {mpi[small][0]:.1f} us"
    if small in gloo: s += f", Gloo {gloo[small][0]:.1f} us"
    print(s)
if big is not None and bidir:
    print(f"{big} B: fccl busbw {fccl[big][1]:.3f} GB/s = {100 * fccl[big][1] / bidir:.0f}% of iperf3 --bidir per direction ({bidir:.3f} GB/s)")
ucx = rows("fccl_ucx.txt")
if ucx:
    print(f"fccl over UCX (tcp): " + ", ".join(
        f"{size} B {ucx[size][0]:.1f} us {ucx[size][1]:.2f} GB/s" for size in sorted(ucx)))
ring, hier = rows("fccl_2x2_ring.txt"), rows("fccl_2x2_hier.txt")
def verdict(ring_us, hier_us):  # the two-level AllReduce's speed relative to the flat ring
    return f"{ring_us / hier_us:.2f}x faster" if ring_us >= hier_us else f"{hier_us / ring_us:.2f}x slower"
if ring and hier:
    print(f"2 hosts x 2 ranks: {'size':>10} | {'flat ring':>18} | {'two-level':>18} | two-level vs ring")
    for size in sorted(ring):
        if size not in hier: continue
        (ru, rb), (hu, hb) = ring[size], hier[size]
        print(f"{'':>19}{size:>10} | {ru:9.1f}us {rb:5.2f}GB/s | {hu:9.1f}us {hb:5.2f}GB/s | {verdict(ru, hu)}")
PY
