"""Optimizer step including gradient synchronization, N float32 parameters, 2 ranks as processes
(one torch thread each), three ways in one run:

  fused     fccl.optim.Adam.step(): the stock "adam" program, allreduce and update in one pass
  fccl+torch  the fccl backend's all_reduce of the flat gradient, then torch.optim.Adam(foreach=True)
  gloo+torch  gloo's all_reduce of the flat gradient, then torch.optim.Adam(foreach=True)

Each rank's gradients are fixed random values (the same every step); the ways run round-robin,
W warm-up rounds then S timed ones (so load from other processes on the machine weighs on each
alike); a step's time is the slowest rank's (a barrier on each side), and the median is reported. The parameters are P tensors of N/P elements, their gradients views of one
flat buffer, so both all_reduce baselines make one call over all N (gloo's best case).

    python3 python/benchmarks/optim_step.py [--params 25000000] [--steps 10] [--warmup 3] [--world 2]
"""

import argparse
import datetime
import os
import statistics
import sys
import tempfile
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp


def timed(ways, steps, warmup):
    """Runs the ways round-robin (the machine's load, shared with whatever else runs, then
    weighs on each alike); a step's time is the slowest rank's (barriers on both sides, over the
    way's own group). Returns each way's median in seconds."""
    times = {name: [] for name in ways}
    for i in range(warmup + steps):
        for name, (fn, group) in ways.items():
            dist.barrier(group=group)
            t0 = time.perf_counter()
            fn()
            dist.barrier(group=group)
            if i >= warmup:
                times[name].append(time.perf_counter() - t0)
    out = {}
    for name, ts in times.items():
        t = torch.tensor([statistics.median(ts)], dtype=torch.float64)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        out[name] = t.item()
    return out


def make(n, pieces, rank):
    sizes = [n // pieces + (1 if i < n % pieces else 0) for i in range(pieces)]
    gen = torch.Generator().manual_seed(0)
    params = [torch.nn.Parameter(torch.randn(s, generator=gen) * 0.1) for s in sizes]
    gen = torch.Generator().manual_seed(100 + rank)
    grads = [torch.randn(s, generator=gen) for s in sizes]
    return params, grads


FUSED = "fccl.optim.Adam (fused)"


def run(rank, world, args, store):
    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)
    import fccl

    dist.init_process_group("fccl", init_method=f"file://{store}", rank=rank, world_size=world,
                            timeout=datetime.timedelta(seconds=300))
    gloo = dist.new_group(backend="gloo")
    ways, weights = {}, {}

    # fused: fccl.optim.Adam
    fused_params, grads = make(args.params, args.pieces, rank)
    opt = fccl.optim.Adam(fused_params, lr=1e-3)
    for p, g in zip(fused_params, grads):
        p.grad.copy_(g)
    ways[FUSED] = (opt.step, None)
    weights[FUSED] = fused_params

    # all_reduce + torch.optim.Adam(foreach=True), over fccl and over gloo
    for name, group in (("fccl all_reduce + torch Adam(foreach)", None),
                        ("gloo all_reduce + torch Adam(foreach)", gloo)):
        params, grads = make(args.params, args.pieces, rank)
        flat = torch.empty(args.params)
        off = 0
        for p, g in zip(params, grads):
            p.grad = flat[off:off + g.numel()]
            off += g.numel()
        gflat = torch.cat(grads)
        topt = torch.optim.Adam(params, lr=1e-3, foreach=True)

        def step(flat=flat, gflat=gflat, group=group, topt=topt):
            flat.copy_(gflat)  # this rank's gradients (as backward would have left them)
            dist.all_reduce(flat, group=group)
            flat.div_(world)
            topt.step()

        ways[name] = (step, group)
        ways[name.split(" +")[0] + " alone"] = (lambda flat=flat, group=group: dist.all_reduce(flat, group=group),
                                               group)
        weights[name] = params
    results = timed(ways, args.steps, args.warmup)
    # Every way ran the same number of Adam steps on the same gradients (the all_reduce-alone
    # ways only touch the gradient buffers): the weights must agree.
    fused_w = torch.cat([p.detach().reshape(-1) for p in weights[FUSED]])
    for name, params in weights.items():
        if name != FUSED:
            w = torch.cat([p.detach().reshape(-1) for p in params])
            results[name + " max|w - fused w|"] = (w - fused_w).abs().max().item()
    dist.destroy_process_group()
    return results


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", type=int, default=25_000_000)
    ap.add_argument("--pieces", type=int, default=50, help="parameter tensors")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--world", type=int, default=2)
    args = ap.parse_args()
    d = tempfile.mkdtemp(prefix="fccl-bench-")
    ctx = mp.get_context("spawn")
    q = ctx.SimpleQueue()
    procs = [ctx.Process(target=_entry, args=(r, args, os.path.join(d, "store"), q)) for r in range(args.world)]
    for p in procs:
        p.start()
    out = [q.get() for _ in procs]
    for p in procs:
        p.join()
    res = next(r for r in out if r[0] == 0)[1]
    if isinstance(res, str):
        sys.exit(res)
    fused = res[FUSED]
    print(f"optimizer step incl. gradient sync, {args.params:,} float32 params in {args.pieces} tensors, "
          f"{args.world} ranks, 1 torch thread each, median of {args.steps} steps after {args.warmup} warm-up")
    print(f"{'way':40s} {'ms/step':>9s} {'fused speedup':>14s}")
    for k, v in res.items():
        if "max|" in k or "alone" in k:
            continue
        print(f"{k:40s} {v * 1e3:9.1f} {v / fused:13.2f}x")
    for k, v in res.items():
        if "alone" in k:
            print(f"{k:40s} {v * 1e3:9.1f}   (for reference: the all_reduce without the update)")
    for k, v in res.items():
        if "max|" in k:
            print(f"{k}: {v:.3g}")


def _entry(rank, args, store, q):
    try:
        q.put((rank, run(rank, args.world, args, store)))
    except BaseException:
        import traceback
        q.put((rank, traceback.format_exc()))


if __name__ == "__main__":
    main()
