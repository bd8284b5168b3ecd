# common.sh - sourced by main.sh, test.sh and check_install.sh: the repository root, the job
# count and one configure step, so every script configures its build dirs the same way.

FCCL_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
FCCL_JOBS=$(nproc 2>/dev/null || echo 2)

# fccl_cmake_configure SOURCE_DIR BUILD_DIR [cmake options...]: Release; Ninja for a new build
# dir when available (an existing build dir keeps the generator it was made with).
fccl_cmake_configure() {
  local src=$1 build=$2
  shift 2
  local gen=()
  if [ ! -f "$build/CMakeCache.txt" ] && command -v ninja >/dev/null 2>&1; then gen=(-G Ninja); fi
  cmake -S "$src" -B "$build" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release "$@"
}

# fccl_configure BUILD_DIR [cmake options...]: fccl itself.
fccl_configure() { fccl_cmake_configure "$FCCL_ROOT" "$@"; }

# Open MPI refuses to start as root unless told it is meant (containers, CI runners).
if [ "$(id -u)" -eq 0 ]; then
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
