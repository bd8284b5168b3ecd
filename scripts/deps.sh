#!/usr/bin/env bash
# deps.sh - installs the Debian packages fccl's build, tests and benchmarks need, only those
# missing (checked with dpkg), quietly; apt-get update runs only when something is missing.
# Runs as root directly, otherwise through sudo. FCCL_SKIP_DEPS=1 skips it entirely.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git  # toolchain
  libgtest-dev libgmock-dev libbenchmark-dev        # tests, micro-benchmarks
  libhwloc-dev hwloc                                # topology (src/topo.cc), lstopo
  libopenmpi-dev openmpi-bin                        # mpi_perf and the Open MPI reference run
  libopenblas-dev                                   # overlap_test, overlap_perf (cblas_sgemm)
  python3 python3-matplotlib                        # perf plots
  clang-format                                      # the format check in .ci/run
  clang libclang-rt-dev                             # libFuzzer targets (scripts/fuzz.sh)
  iproute2 util-linux                               # tests/net: namespaces, veth (ip), unshare, nsenter
  nftables                                          # tests/net netem: random loss where sch_netem is missing
  iperf3 libgloo-dev                                # perf/net_bench.sh: the link's ceiling, Gloo's ring
  libucx-dev                                        # transports/ucx (FCCL_NET=ucx), tests/net ucx*
)

if [ "${FCCL_SKIP_DEPS:-0}" = 1 ]; then
  echo "deps: FCCL_SKIP_DEPS=1, not checking packages"
  exit 0
fi
if ! command -v dpkg >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
  echo "deps: not a Debian system; make sure these (or their equivalents) are installed: ${packages[*]}" >&2
  exit 0
fi

missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" 2>/dev/null | grep -q '^Status: install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
  as_root=()
elif command -v sudo >/dev/null 2>&1; then
  as_root=(sudo)
else
  echo "deps: missing ${missing[*]}, and neither root nor sudo is available to install them" >&2
  exit 1
fi

echo "deps: installing ${missing[*]}"
log=$(mktemp "${TMPDIR:-/tmp}/fccl-deps.XXXXXX")
trap 'rm -f "$log"' EXIT
apt=(env DEBIAN_FRONTEND=noninteractive apt-get -qq -y -o Dpkg::Use-Pty=0)
if ! { "${as_root[@]}" "${apt[@]}" update && "${as_root[@]}" "${apt[@]}" install --no-install-recommends \
  "${missing[@]}"; } >"$log" 2>&1; then
  cat "$log" >&2
  echo "deps: apt-get failed (output above)" >&2
  exit 1
fi
echo "deps: done"
