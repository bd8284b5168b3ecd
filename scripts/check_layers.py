#!/usr/bin/env python3
"""check_layers.py - fails on an include that points up the library's layers.

Layer order (DESIGN.md "Layers"): src/base < transports < collectives < fusion < src (core).
A library file may include headers of its own layer and the layers below, and the public
include/fccl.h; never a header of a layer above. Tests, perf tools, tools and examples sit on
top and may include anything. Prints `file:line: ...` for every upward include and exits 1 if
there is one.

Usage: python3 scripts/check_layers.py [ROOT]
"""
import os
import re
import sys

LAYERS = [  # (path prefix, layer name), most specific first
    ("src/base/", "src/base"),
    ("transports/", "transports"),
    ("collectives/", "collectives"),
    ("fusion/", "fusion"),
    ("src/", "core (src)"),
]
ORDER = ["src/base", "transports", "collectives", "fusion", "core (src)"]
SOURCE_EXT = (".h", ".cc", ".cuh", ".cu", ".c", ".inc")
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')


def layer_of(rel):
    for prefix, name in LAYERS:
        if rel.startswith(prefix):
            return name
    return None


def resolve(root, including, target):
    """The repository path an #include "target" in `including` refers to, or None."""
    for candidate in (os.path.join(os.path.dirname(including), target), target, os.path.join("include", target)):
        norm = os.path.normpath(candidate)
        if os.path.exists(os.path.join(root, norm)):
            return norm
    # Generated at build time (fusion/codegen/dropout_source.inc): judge by its path.
    return os.path.normpath(target) if layer_of(target) else None


def main():
    root = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), ".."))
    bad = 0
    checked = 0
    for prefix, _ in LAYERS:
        for dirpath, _, files in os.walk(os.path.join(root, prefix)):
            for f in sorted(files):
                if not f.endswith(SOURCE_EXT):
                    continue
                rel = os.path.relpath(os.path.join(dirpath, f), root)
                own = layer_of(rel)
                if own is None or (prefix == "src/" and rel.startswith("src/base/")):
                    continue
                checked += 1
                with open(os.path.join(root, rel), encoding="utf-8", errors="replace") as fh:
                    for lineno, line in enumerate(fh, 1):
                        m = INCLUDE.match(line)
                        if not m:
                            continue
                        target = resolve(root, rel, m.group(1))
                        their = layer_of(target) if target else None
                        if their is not None and ORDER.index(their) > ORDER.index(own):
                            print(f"{rel}:{lineno}: includes {m.group(1)} ({their}) from layer {own}; "
                                  f"layers go {' < '.join(ORDER)}")
                            bad += 1
    if bad:
        print(f"check_layers: {bad} upward include(s) in {checked} files")
        return 1
    print(f"check_layers: {checked} library files, no upward include")
    return 0


if __name__ == "__main__":
    sys.exit(main())
