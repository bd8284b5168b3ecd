#!/usr/bin/env bash
# check_install.sh - builds fccl, installs it into a temporary prefix, checks the installed stock
# programs with the installed fcclc, and builds examples/ against the installed package both ways
# a user would: find_package(fccl) (fccl::fccl and fccl::fccl_static) and pkg-config (shared),
# then runs each build of the example. Exits nonzero if a step fails (build steps stop at once;
# every example runs before the verdict).
#   bash scripts/check_install.sh [build-dir]     (default: build-install/, Release, no tests)
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
src=$FCCL_ROOT
build=${1:-$src/build-install}
jobs=$FCCL_JOBS
work=$(mktemp -d "${TMPDIR:-/tmp}/fccl-install.XXXXXX")
trap 'rm -rf "$work"' EXIT
prefix=$work/prefix

step() { printf '== check_install: %s\n' "$*"; }
# Runs a command with its output kept in a log, shown (the end of it) only if it fails.
quiet() {
  if ! "$@" >"$work/log" 2>&1; then
    tail -n 40 "$work/log" >&2
    echo "check_install: failed: $*" >&2
    return 1
  fi
}

if [ ! -f "$build/CMakeCache.txt" ]; then
  step "configure $build"
  quiet fccl_configure "$build" -DFCCL_BUILD_TESTS=OFF
fi
step "build $build"
quiet cmake --build "$build" -j "$jobs"
step "install into $prefix"
quiet cmake --install "$build" --prefix "$prefix"

for f in include/fccl.h lib/libfccl.a lib/cmake/fccl/fcclConfig.cmake lib/cmake/fccl/fcclConfigVersion.cmake \
  lib/cmake/fccl/fcclTargets.cmake lib/pkgconfig/fccl.pc; do
  [ -e "$prefix/$f" ] || { echo "check_install: $f was not installed" >&2; exit 1; }
done
ls "$prefix"/lib/libfccl.so* >/dev/null 2>&1 || { echo "check_install: lib/libfccl.so* missing" >&2; exit 1; }

step "stock programs and fcclc"
for p in sgd adam adamw lamb loss_scaling clip_global_norm bias_dropout_residual mixed_precision; do
  f=$prefix/share/fccl/programs/$p.fccl
  [ -f "$f" ] || { echo "check_install: share/fccl/programs/$p.fccl was not installed" >&2; exit 1; }
  # The installed file and the copy compiled into fcclc (found by name) lower to one schedule.
  quiet "$prefix/bin/fcclc" "$f"
  cp "$work/log" "$work/from_file"
  quiet "$prefix/bin/fcclc" "$p"
  cmp -s "$work/log" "$work/from_file" || { echo "check_install: fcclc $p differs from fcclc $f" >&2; exit 1; }
done

step "examples with find_package(fccl)"
quiet fccl_cmake_configure "$src/examples" "$work/ex" -DCMAKE_PREFIX_PATH="$prefix"
quiet cmake --build "$work/ex" -j "$jobs"

step "example with pkg-config (as README.md shows it)"
export PKG_CONFIG_PATH=$prefix/lib/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}
# shellcheck disable=SC2046  # pkg-config prints several words on purpose
quiet cc -std=c99 -Wall -Wextra "$src/examples/allreduce.c" -o "$work/allreduce_pc" \
  $(pkg-config --cflags --libs fccl) -lpthread -Wl,-rpath,"$prefix/lib"

step "run the examples"
status=0
for exe in "$work/ex/allreduce" "$work/ex/allreduce_static" "$work/allreduce_pc"; do
  if timeout 120 "$exe"; then
    echo "   $(basename "$exe"): passed"
  else
    echo "   $(basename "$exe"): FAILED (exit $?)" >&2
    status=1
  fi
done
exit $status
