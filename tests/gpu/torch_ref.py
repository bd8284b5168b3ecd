#!/usr/bin/env python3
"""Reference numbers from PyTorch and its bundled NCCL, to compare fccl's CUDA backend with.

Everything runs on cuda:0. Timing uses CUDA events: warm-up calls first, then `reps` samples,
each a batch of `inner` back-to-back calls between two events (per-call time = elapsed/inner,
like nccl-tests' -n loop). The reported numbers are the median and the best of the samples.
Inputs are random (randn), never zeros. GB/s means 1e9 bytes per second.

  1. env        torch / CUDA / NCCL versions, device name, SM count, memory, MPS daemon seen.
  2. copy       dst.copy_(src) of 1 GiB; GB/s = 2 x bytes / time (read + write).
  3. ar1        NCCL allreduce, fp32 sum, 1 rank (FileStore), IN-PLACE (torch's all_reduce
                is in-place). time and algbw = bytes / time; busbw factor 2(n-1)/n is 0 at n=1.
                NCCL moves no data for a 1-rank in-place sum, so this is call overhead.
  4. ar2        the same with 2 ranks sharing cuda:0: two worker processes (this file with
                --worker), TCPStore on a free localhost port, NCCL_MULTI_RANK_GPU_ENABLE=1
                (NCCL >= 2.30, experimental). time, algbw, busbw = algbw x 2(n-1)/n; a
                correctness check; then the 2-rank DDP step (allreduce AVG of a 256 MiB
                gradient + fused Adam on all of it) and ZeRO-1 step (reduce_scatter AVG,
                fused Adam on the 128 MiB half, all_gather). Workers are killed after 45 s.
                torch 2.11's wheel pins NCCL 2.28.9, which refuses 2 ranks on one GPU; the
                refusal is reported. For a newer NCCL, LD_PRELOAD its libnccl.so.2.
  5. adam       torch.optim.Adam(lr=1e-3, fused=True).step() on one flat fp32 parameter of
                256 MiB (DDP: every element) and 128 MiB (ZeRO-1 at 2 ranks: half), state
                already initialised; GB/s = 7 x 4 bytes/element / time (reads g,w,m,v;
                writes w,m,v).
  6. ddp1       1 rank: in-place allreduce of the 256 MiB gradient + fused Adam step.

Usage: python3 tests/gpu/torch_ref.py [--quick] [--skip-multirank]
Writes $OUT/torch_ref.json (./torch_ref.json without OUT) after every part, prints a table
last. Exit 2 when torch or a CUDA device is missing. A watchdog ends the run after 115 s.
"""
import argparse, datetime, faulthandler, json, os, socket, statistics, subprocess, sys, tempfile, time

MiB, GiB = 1 << 20, 1 << 30
T0 = time.monotonic()
TIMEOUT = datetime.timedelta(seconds=30)


def bench(fn, reps, inner=1, warmup=2):
    import torch
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    evs = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in range(reps)]
    for a, b in evs:
        a.record()
        for _ in range(inner):
            fn()
        b.record()
    torch.cuda.synchronize()
    ts = [a.elapsed_time(b) * 1e3 / inner for a, b in evs]  # microseconds per call
    return {"median_us": statistics.median(ts), "best_us": min(ts), "reps": reps, "inner": inner}


def gbps(nbytes, us):
    return nbytes / (us * 1e3)


def size_str(b):
    return f"{b // GiB} GiB" if b >= GiB else f"{b // MiB} MiB" if b >= MiB else f"{b} B"


def allreduce_sizes(dist, torch, sizes, reps, nranks):
    for size in sizes:
        x = torch.randn(max(1, size // 4), device="cuda")
        r = bench(lambda: dist.all_reduce(x), reps, inner=20 if size <= MiB else 1)
        r.update(size=size, algbw=gbps(size, r["median_us"]))
        r["busbw"] = r["algbw"] * 2 * (nranks - 1) / nranks
        del x
        yield r
    torch.cuda.empty_cache()


def adam_setup(torch, n):
    p = torch.nn.Parameter(torch.randn(n, device="cuda"))
    p.grad = torch.randn_like(p)
    opt = torch.optim.Adam([p], lr=1e-3, fused=True)
    for _ in range(3):  # initialise m, v and step
        opt.step()
    return p, opt


def worker(rank, port, cfg):
    """One of the 2 ranks sharing cuda:0; reports one JSON line per result on stdout."""
    def emit(**kw):
        print(json.dumps(kw), flush=True)
    try:
        import torch, torch.distributed as dist
        dev = torch.device("cuda", 0)
        torch.cuda.set_device(dev)
        dist.init_process_group("nccl", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                                world_size=2, device_id=dev, timeout=TIMEOUT)
        emit(stage="init")
        a, b = (torch.randn(MiB // 4, device=dev, generator=torch.Generator(device=dev).manual_seed(s)) for s in (1, 2))
        x = (a if rank == 0 else b).clone()
        dist.all_reduce(x)
        emit(check=bool(torch.allclose(x, a + b, rtol=0, atol=1e-6)))
        for r in allreduce_sizes(dist, torch, cfg["sizes"], cfg["reps"], 2):
            emit(kind="ar2", **r)
        n, reps = cfg["adam_n"], max(3, cfg["reps"] // 2)
        p, opt = adam_setup(torch, n)
        avg = dist.ReduceOp.AVG
        r = bench(lambda: (dist.all_reduce(p.grad, op=avg), opt.step()), reps)
        emit(kind="ddp2", n=n, **r)
        del p, opt
        full_g, full_w = torch.randn(n, device=dev), torch.empty(n, device=dev)
        ps, opt = adam_setup(torch, n // 2)
        def zero1():
            dist.reduce_scatter_tensor(ps.grad, full_g, op=avg)
            opt.step()
            dist.all_gather_into_tensor(full_w, ps.detach())
        r = bench(zero1, reps)
        emit(kind="zero1_2", n=n, **r)
        dist.all_reduce(torch.ones(1, device=dev))  # both ranks are past their last collective
        torch.cuda.synchronize()
        emit(done=True)
        os._exit(0)  # skip communicator teardown: nothing left to wait for
    except BaseException as e:  # report and leave; the parent prints the first line
        emit(error=(str(e).strip().splitlines() or [type(e).__name__])[0][:300])
        os._exit(1)


def proc_comm(pid):
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read()
    except OSError:
        return ""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def multirank(cfg, budget):
    env = dict(os.environ, NCCL_MULTI_RANK_GPU_ENABLE="1")
    env.setdefault("NCCL_DEBUG", "WARN")
    port, procs = free_port(), []
    res = {"env": {k: v for k, v in env.items() if k.startswith("NCCL_")}, "ar2": []}
    with tempfile.TemporaryDirectory() as td:
        outs = [(open(os.path.join(td, f"out{r}"), "w+"), open(os.path.join(td, f"err{r}"), "w+")) for r in range(2)]
        for r in range(2):
            procs.append(subprocess.Popen([sys.executable, os.path.abspath(__file__), "--worker", str(r), str(port),
                                           json.dumps(cfg)], stdout=outs[r][0], stderr=outs[r][1], env=env))
        deadline, order = time.monotonic() + budget, []  # order: ranks in the order they exited
        while time.monotonic() < deadline and len(order) < 2:
            order += [r for r, p in enumerate(procs) if p.poll() is not None and r not in order]
            if any(procs[r].returncode for r in order):  # one failed: the other would only wait
                deadline = min(deadline, time.monotonic() + 2)
            time.sleep(0.2)
        res["timed_out"] = any(p.poll() is None for p in procs)
        for p in procs:
            if p.poll() is None:
                p.kill()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        errors, warns = [], []
        for r in order + [r for r in range(2) if r not in order]:
            o, e = outs[r]
            o.seek(0)
            e.seek(0)
            for line in o:
                try:
                    d = json.loads(line)
                except ValueError:
                    continue
                if "error" in d:
                    errors.append(f"rank {r}: {d['error']}")
                elif "stage" in d:
                    res.setdefault("init_ok", []).append(r)
                elif r != 0:
                    continue  # results: rank 0's (both ranks time the same collectives)
                elif d.get("kind") == "ar2":
                    res["ar2"].append(d)
                elif "kind" in d:
                    res[d["kind"]] = d
                elif "check" in d:
                    res["check"] = d["check"]
            warns += [f"rank {r}: {l.strip()[:300]}" for l in e if "NCCL WARN" in l or "Duplicate GPU" in l][:3]
    res.update(errors=errors, nccl_warnings=warns)
    if sorted(res.get("init_ok", [])) != [0, 1]:
        first = (errors or warns or ["timed out during init" if res["timed_out"] else "workers exited"])[0]
        res["status"] = f"not supported: {first}"
    else:
        res["status"] = "ok" if not (errors or res["timed_out"]) else \
            f"partial: {(errors or ['timed out after %.0f s' % budget])[0]}"
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer sizes and iterations (smoke run)")
    ap.add_argument("--skip-multirank", action="store_true", help="skip the 2-ranks-on-one-GPU part")
    ap.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return worker(int(args.worker[0]), int(args.worker[1]), json.loads(args.worker[2]))
    try:
        import torch, torch.distributed as dist
    except ImportError as e:
        print(f"torch_ref: cannot run: torch is not importable ({e}); needs torch with CUDA and a GPU")
        return 2
    if not torch.cuda.is_available() or not dist.is_nccl_available():
        print(f"torch_ref: cannot run: torch {torch.__version__} sees no CUDA device "
              f"(cuda build {torch.version.cuda}, nccl {dist.is_nccl_available()})")
        return 2
    faulthandler.dump_traceback_later(115, exit=True)  # never hang: C-level watchdog
    q = args.quick
    sizes = [8, MiB, 64 * MiB] if q else [8, MiB, 64 * MiB, 256 * MiB, GiB]
    reps = 5 if q else 10
    path = os.path.join(os.environ.get("OUT") or os.getcwd(), "torch_ref.json")
    R = {"quick": q, "sizes": sizes}

    def save():
        R["elapsed_s"] = round(time.monotonic() - T0, 1)
        with open(path, "w") as f:
            json.dump(R, f, indent=1)

    nv = torch.cuda.nccl.version()
    nv = tuple(nv) if isinstance(nv, tuple) else (nv // 10000, nv // 100 % 100, nv % 100) if nv >= 10000 \
        else (nv // 1000, nv // 100 % 10, nv % 100)
    prop = torch.cuda.get_device_properties(0)
    mps = any(proc_comm(p).startswith("nvidia-cuda-mps") for p in os.listdir("/proc") if p.isdigit())
    R["env"] = {"torch": torch.__version__, "cuda": torch.version.cuda, "nccl": ".".join(map(str, nv)),
                "device": prop.name, "sms": prop.multi_processor_count,
                "mem_gib": round(prop.total_memory / GiB, 1), "mps_daemon": mps}
    save()

    src = torch.randn(GiB // 4, device="cuda")
    dst = torch.empty_like(src)
    r = bench(lambda: dst.copy_(src), 5 if q else 20, warmup=3)
    R["copy"] = dict(r, size=GiB, gbps_median=gbps(2 * GiB, r["median_us"]), gbps_best=gbps(2 * GiB, r["best_us"]))
    del src, dst
    torch.cuda.empty_cache()
    save()

    with tempfile.TemporaryDirectory() as td:
        dist.init_process_group("nccl", store=dist.FileStore(os.path.join(td, "store"), 1), rank=0, world_size=1,
                                device_id=torch.device("cuda", 0), timeout=TIMEOUT)
        R["ar1"] = list(allreduce_sizes(dist, torch, sizes, reps, 1))
        save()
        R["adam"] = []
        for n in (64 * MiB, 32 * MiB):  # elements: 256 MiB and 128 MiB of fp32
            p, opt = adam_setup(torch, n)
            r = bench(opt.step, reps)
            R["adam"].append(dict(r, n=n, bytes=4 * n, gbps=gbps(28 * n, r["median_us"])))
            if n == 64 * MiB:
                R["ddp1"] = dict(bench(lambda: (dist.all_reduce(p.grad), opt.step()), reps), n=n)
            del p, opt
            torch.cuda.empty_cache()
        save()
        dist.destroy_process_group()

    budget = min(45.0, 110.0 - (time.monotonic() - T0))
    if args.skip_multirank:
        R["multirank"] = {"status": "skipped (--skip-multirank)"}
    elif budget < 10:
        R["multirank"] = {"status": f"skipped: only {budget:.0f} s left of the 120 s budget"}
    else:  # tried even on NCCL < 2.30, which ignores the variable: its refusal is a reference too
        R["multirank"] = multirank({"sizes": sizes, "reps": reps, "adam_n": 64 * MiB}, budget)
        if nv < (2, 30, 0):
            R["multirank"]["note"] = f"NCCL {R['env']['nccl']} < 2.30 does not honour NCCL_MULTI_RANK_GPU_ENABLE"
    save()
    report(R, path)
    return 0


def report(R, path):
    e, c, m = R["env"], R["copy"], R["multirank"]
    print(f"\n== torch_ref ({'quick' if R['quick'] else 'full'}, {R['elapsed_s']} s) -> {path}")
    print(f"env   torch {e['torch']}  cuda {e['cuda']}  nccl {e['nccl']}  {e['device']}  {e['sms']} SMs  "
          f"{e['mem_gib']} GiB  mps_daemon={e['mps_daemon']}")
    print(f"copy  1 GiB D2D (2x bytes)   best {c['gbps_best']:8.1f} GB/s   median {c['gbps_median']:8.1f} GB/s")
    ar2 = {d["size"]: d for d in m.get("ar2", [])}
    print(f"allreduce fp32 sum in-place     {'1 rank':^22} | {'2 ranks on cuda:0':^34}")
    print(f"{'size':>10} {'time us':>10} {'algbw':>10} | {'time us':>10} {'algbw':>10} {'busbw':>10}")
    for d in R["ar1"]:
        o = ar2.get(d["size"])
        tail = f"{o['median_us']:10.1f} {o['algbw']:10.2f} {o['busbw']:10.2f}" if o else f"{'-':>10} {'-':>10} {'-':>10}"
        print(f"{size_str(d['size']):>10} {d['median_us']:10.1f} {d['algbw']:10.2f} | {tail}")
    print(f"2 ranks on cuda:0: {m['status']}" + (f"  check={m['check']}" if "check" in m else ""))
    for line in ([m["note"]] if "note" in m else []) + m.get("nccl_warnings", [])[:2]:
        print(f"  {line}")
    for a in R["adam"]:
        print(f"adam fused {size_str(a['bytes']):>8} ({a['n'] // MiB}Mi elem)  {a['median_us'] / 1e3:8.3f} ms/step"
              f"  {a['gbps']:8.1f} GB/s (7x4 B/elem)")
    print(f"ddp 1 rank: allreduce+adam 256 MiB  {R['ddp1']['median_us'] / 1e3:8.3f} ms/step")
    for k, name in (("ddp2", "ddp 2 ranks: allreduce AVG+adam 256 MiB"),
                    ("zero1_2", "zero1 2 ranks: RS+adam half+AG 256 MiB")):
        if k in m:
            print(f"{name}  {m[k]['median_us'] / 1e3:8.3f} ms/step")


if __name__ == "__main__":
    sys.exit(main())
