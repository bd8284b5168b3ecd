#!/usr/bin/env python3
"""plot.py - plot out-of-place busbw against size from nccl-tests-format outputs.

Usage: plot.py [-o out.png] [--title T] [--bound GBps [--bound-label TEXT]] [--inplace] FILE[:LABEL] ...
Reads fccl perf tool, mpi_perf or NVIDIA nccl-tests outputs (rows: size count type redop root
| time algbw busbw #wrong | ...), one line per file (legend: LABEL, else the file name), log-2 x
axis. With several dtypes/ops in one file, each (type, redop, root) gets its own line.
Needs matplotlib (Agg backend; no display). Example:
  plot.py -o allreduce.png perf-results/fccl_np2.txt:fccl perf-results/mpi_np2.txt:MPI
"""
import argparse
import os
import sys


def parse(path):
    """Returns {(type, redop, root): [(size, busbw_out, busbw_in), ...]} in file order."""
    series = {}
    with open(path) as f:
        for line in f:
            if line.startswith("#"):
                continue
            p = line.split()
            if len(p) < 9 or not p[0].isdigit() or not p[1].isdigit():
                continue
            try:
                size = int(p[0])
                bw_out = float(p[7])
            except ValueError:
                continue
            try:
                bw_in = float(p[11]) if len(p) >= 12 else None
            except ValueError:  # N/A in place
                bw_in = None
            series.setdefault((p[2], p[3], p[4]), []).append((size, bw_out, bw_in))
    return series


def human(n):
    for unit, div in (("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)):
        if n >= div and n % div == 0:
            return "%d%s" % (n // div, unit)
    return str(n)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("files", nargs="+", help="output file, optionally FILE:LABEL")
    ap.add_argument("-o", "--output", default="busbw.png", help="PNG to write (busbw.png)")
    ap.add_argument("--title", default="bus bandwidth (out-of-place)")
    ap.add_argument("--bound", type=float, default=None, help="draw a horizontal bound, GB/s")
    ap.add_argument("--bound-label", default="memory-bandwidth bound",
                    help="what the bound is (legend), e.g. how it was measured")
    ap.add_argument("--inplace", action="store_true", help="also plot in-place busbw (dashed)")
    args = ap.parse_args()
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        sys.exit("plot.py: matplotlib is missing for %s (try /usr/bin/python3, or "
                 "apt-get install python3-matplotlib)" % sys.executable)

    fig, ax = plt.subplots(figsize=(9, 5.5))
    sizes_seen = set()
    plotted = 0
    for spec in args.files:
        path, label = spec, None
        if ":" in spec and not os.path.exists(spec):
            path, label = spec.rsplit(":", 1)
        if not os.path.exists(path):
            sys.exit("plot.py: no such file: %s" % path)
        label = label or os.path.basename(path)
        series = parse(path)
        if not series:
            print("plot.py: %s has no result rows; skipped" % path, file=sys.stderr)
            continue
        for key, rows in series.items():
            rows = [r for r in rows if r[0] > 0]
            if not rows:
                continue
            name = label if len(series) == 1 else "%s %s %s" % (label, key[0], key[1])
            xs = [r[0] for r in rows]
            sizes_seen.update(xs)
            line, = ax.plot(xs, [r[1] for r in rows], marker="o", markersize=3, label=name)
            if args.inplace and all(r[2] is not None for r in rows):
                ax.plot(xs, [r[2] for r in rows], linestyle="--", color=line.get_color(),
                        label=name + " (in-place)")
            plotted += 1
    if not plotted:
        sys.exit("plot.py: nothing to plot")
    if args.bound:
        ax.axhline(args.bound, color="gray", linestyle=":",
                   label="%s %.2f GB/s" % (args.bound_label, args.bound))
    ax.set_xscale("log", base=2)
    ticks = sorted(sizes_seen)
    if len(ticks) > 16:
        ticks = ticks[::(len(ticks) + 15) // 16]
    ax.set_xticks(ticks)
    ax.set_xticklabels([human(t) for t in ticks], rotation=45)
    ax.set_xlabel("size (bytes)")
    ax.set_ylabel("busbw (GB/s)")
    ax.set_title(args.title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(args.output, dpi=110)
    print("plot.py: wrote %s" % args.output)


if __name__ == "__main__":
    main()
