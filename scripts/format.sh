#!/usr/bin/env bash
# format.sh - clang-format over the tracked C/C++ sources (.clang-format at the root).
#   bash scripts/format.sh           rewrite the files in place
#   bash scripts/format.sh --check   list the files that differ and how many lines; exit 1 if any
#   bash scripts/format.sh [--check] FILE...   only these files
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

check=0
if [ "${1:-}" = --check ]; then
  check=1
  shift
fi
cf=$(command -v clang-format-14 || command -v clang-format || true)
if [ -z "$cf" ]; then
  echo "format: clang-format not found (bash scripts/deps.sh installs it)" >&2
  exit 2
fi

if [ $# -gt 0 ]; then
  # Only C/C++ sources: clang-format would rewrite a script or a CMakeLists.txt as C++.
  files=()
  for f in "$@"; do
    case "$f" in
      *.c | *.h | *.cc | *.cpp | *.hpp | *.cu | *.cuh) files+=("$f") ;;
      *) echo "format: skipping $f (not a C/C++ source)" >&2 ;;
    esac
  done
else
  mapfile -t files < <(git ls-files '*.c' '*.h' '*.cc' '*.cpp' '*.hpp' '*.cu' '*.cuh')
fi
[ ${#files[@]} -gt 0 ] || exit 0

if [ $check = 0 ]; then
  "$cf" -i "${files[@]}"
  exit 0
fi
bad=0
for f in "${files[@]}"; do
  n=$("$cf" "$f" | diff "$f" - | grep -c '^[<>]' || true)
  if [ "$n" -gt 0 ]; then
    printf 'format: %-50s %4d lines differ\n' "$f" "$n"
    bad=$((bad + 1))
  fi
done
echo "format: $bad of ${#files[@]} files not clang-formatted (fix: bash scripts/format.sh FILE...)"
[ $bad = 0 ]
