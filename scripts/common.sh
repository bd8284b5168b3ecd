# common.sh - sourced by main.sh, test.sh and check_install.sh: the repository root, the job
# count and one configure step, so every script configures its build dirs the same way.

FCCL_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
FCCL_JOBS=$(nproc 2>/dev/null || echo 2)

# fccl_cmake_configure SOURCE_DIR BUILD_DIR [cmake options...]: Release (or $FCCL_BUILD_TYPE);
# Ninja for a new build dir when available (an existing build dir keeps its generator).
fccl_cmake_configure() {
  local src=$1 build=$2
  shift 2
  local gen=()
  if [ ! -f "$build/CMakeCache.txt" ] && command -v ninja >/dev/null 2>&1; then gen=(-G Ninja); fi
  cmake -S "$src" -B "$build" "${gen[@]}" "-DCMAKE_BUILD_TYPE=${FCCL_BUILD_TYPE:-Release}" "$@"
}

# fccl_configure_sanitized BUILD_DIR COMPILE_FLAGS LINK_FLAGS [cmake options...]: the test suite with sanitizers
# (sanitize.sh, tsan.sh): no perf tools, no MPI, -O1 -g1 (line tables and function names, enough
# for the reports' stacks; about 3x faster to compile than -O2 -g - reduce_kernels.cc 18.7 s ->
# 6.1 s - which dominates a cold run on 2 cores). --as-needed: GCC's -fsanitize link spec leaves
# --no-as-needed on, which would record the CUDA driver stub (libcuda.so.1, pulled in through
# CUDA::nvrtc) as NEEDED and fail to load without a driver; the regular build drops it.
fccl_configure_sanitized() {
  local build=$1 san=$2 link=$3 opt="-O1 -g1 -DNDEBUG"
  shift 3
  # RelWithDebInfo: the project adds -O3 to Release targets (CMakeLists.txt).
  FCCL_BUILD_TYPE=RelWithDebInfo fccl_cmake_configure "$FCCL_ROOT" "$build" \
    "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=$opt" "-DCMAKE_C_FLAGS_RELWITHDEBINFO=$opt" \
    -DFCCL_BUILD_TESTS=ON -DFCCL_BUILD_PERF=OFF -DFCCL_WITH_MPI=OFF -DFCCL_CUDA=OFF \
    "-DCMAKE_C_FLAGS=$san" "-DCMAKE_CXX_FLAGS=$san" \
    "-DCMAKE_EXE_LINKER_FLAGS=$link -Wl,--as-needed" "-DCMAKE_SHARED_LINKER_FLAGS=$link -Wl,--as-needed" \
    "$@" >/dev/null
}

# fccl_configure BUILD_DIR [cmake options...]: fccl itself.
fccl_configure() { fccl_cmake_configure "$FCCL_ROOT" "$@"; }

# Open MPI refuses to start as root unless told it is meant (containers, CI runners).
if [ "$(id -u)" -eq 0 ]; then
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
