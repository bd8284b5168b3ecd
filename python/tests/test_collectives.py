"""Every collective of the fccl backend against gloo's result on the same inputs (2 and 3 ranks),
and against a closed form where gloo lacks the dtype or op (AVG, PREMUL_SUM, uint32/64,
complex). Inputs are small integers, so every sum, product, min and max is exact in any order
and fccl and gloo must agree bit for bit; only AVG and PREMUL_SUM of floats carry rounding.
"""

import torch
import torch.distributed as dist
from torch.distributed import ReduceOp

import rankpool

F = [torch.float16, torch.bfloat16, torch.float32, torch.float64]
I = [torch.int8, torch.uint8, torch.int16, torch.int32, torch.int64, torch.uint32, torch.uint64]
DTYPES = F + I + [torch.bool, torch.complex64]
SIZES = [1, 13, 70_001]  # 70,001 float32 spans several 128 KiB pipeline chunks


def data(rank, n, dtype, seed=0, small=False):
    """Rank `rank`'s input: small non-negative integers (1..2 for products)."""
    i = torch.arange(n, dtype=torch.int64)
    v = (i * (rank + 2) + seed * 7 + rank) % (2 if small else 5)
    if dtype == torch.bool:
        return v % 2 == 1
    v = v + (1 if small else 0)
    if dtype.is_complex:
        return torch.complex(v.double(), (v + rank).double()).to(dtype)
    return v.to(dtype)


def ops_for(dtype):
    if dtype == torch.bool:
        return ["SUM", "PRODUCT", "MIN", "MAX", "BAND", "BOR", "BXOR"]
    if dtype.is_complex:
        return ["SUM", "AVG", "PREMUL_SUM"]  # c10d refuses the rest on complex tensors
    if dtype.is_floating_point:
        return ["SUM", "PRODUCT", "MIN", "MAX", "AVG", "PREMUL_SUM"]
    return ["SUM", "PRODUCT", "MIN", "MAX", "AVG", "BAND", "BOR", "BXOR"]


PREMUL = 0.5


def reduce_op(name):
    if name == "PREMUL_SUM":
        return dist._make_nccl_premul_sum(PREMUL)
    return getattr(ReduceOp, name)


def expected(inputs, op, dtype):
    """The reduction of the ranks' inputs computed here, in a wide type."""
    n = len(inputs)
    if dtype == torch.bool:
        x = torch.stack([t.to(torch.int64) for t in inputs])
        r = {"SUM": x.amax(0), "MAX": x.amax(0), "BOR": x.amax(0), "PRODUCT": x.amin(0), "MIN": x.amin(0),
             "BAND": x.amin(0), "BXOR": x.sum(0) % 2}[op]
        return r.bool()
    if dtype.is_complex:
        x = torch.stack([t.to(torch.complex128) for t in inputs])
        r = {"SUM": x.sum(0), "AVG": x.sum(0) / n, "PRODUCT": x.prod(0), "PREMUL_SUM": (x * PREMUL).sum(0)}[op]
        return r.to(dtype)
    if dtype.is_floating_point:
        x = torch.stack([t.double() for t in inputs])
        r = {"SUM": x.sum(0), "PRODUCT": x.prod(0), "MIN": x.amin(0), "MAX": x.amax(0), "AVG": x.sum(0) / n,
             "PREMUL_SUM": (x * PREMUL).sum(0)}[op]
        return r.to(dtype)
    x = torch.stack([t.to(torch.int64) for t in inputs])
    if op in ("BAND", "BOR", "BXOR"):
        r = x[0].clone()
        for y in x[1:]:
            r = {"BAND": r & y, "BOR": r | y, "BXOR": r ^ y}[op]
    else:
        r = {"SUM": x.sum(0), "PRODUCT": x.prod(0), "MIN": x.amin(0), "MAX": x.amax(0),
             "AVG": torch.div(x.sum(0), n, rounding_mode="trunc")}[op]
    return r.to(dtype)


def same(a, b, exact=True):
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    if a.dtype in (torch.uint32, torch.uint64):
        a, b = a.to(torch.int64), b.to(torch.int64)
    if exact or not (a.is_floating_point() or a.is_complex()):
        return torch.equal(a, b)
    tol = {torch.float16: 1e-3, torch.bfloat16: 1e-2}.get(a.dtype, 1e-6)
    return torch.allclose(a, b, rtol=tol, atol=tol)


def gloo_or_none(fn):
    """Runs fn() with the gloo reference: True, or None where gloo does not support the dtype / op."""
    try:
        fn()
        return True
    except (RuntimeError, ValueError, TypeError):
        return None


def check(cond, what):
    if not cond:
        raise AssertionError(what)


# ---- functions run on every rank (rankpool) ----------------------------------------------------


def run_allreduce(rank, world):
    compared = 0
    for dtype in DTYPES:
        for op in ops_for(dtype):
            for n in SIZES:
                small = op == "PRODUCT"
                inputs = [data(r, n, dtype, small=small) for r in range(world)]
                t = inputs[rank].clone()
                work = dist.all_reduce(t, op=reduce_op(op), async_op=True)
                work.wait()
                fut = work.get_future().value()[0]
                exact = op not in ("AVG", "PREMUL_SUM")
                want = expected(inputs, op, dtype)
                check(same(t, want, exact), f"allreduce {op} {dtype} n={n}: {t[:8]} != {want[:8]}")
                # (c10d hands complex tensors over as their real view)
                fut_t = torch.view_as_complex(fut) if dtype.is_complex and not fut.is_complex() else fut
                check(same(fut_t, t), f"allreduce {op} {dtype}: the future's value differs")
                if op in ("AVG", "PREMUL_SUM"):
                    continue  # gloo has neither
                ref = inputs[rank].clone()
                if gloo_or_none(lambda: dist.all_reduce(ref, op=reduce_op(op), group=rankpool.REF)) is not None:
                    check(same(t, ref), f"allreduce {op} {dtype} n={n}: fccl {t[:8]} != gloo {ref[:8]}")
                    compared += 1
    # An empty tensor and a PREMUL_SUM whose factor is a tensor.
    e = torch.empty(0)
    dist.all_reduce(e)
    t = data(rank, 9, torch.float32)
    dist.all_reduce(t, op=dist._make_nccl_premul_sum(torch.tensor([0.25], dtype=torch.float64)))
    want = sum(data(r, 9, torch.float32).double() * 0.25 for r in range(world)).float()
    check(torch.equal(t, want), f"premul with a tensor factor: {t} != {want}")
    return compared


def run_broadcast_reduce(rank, world):
    for dtype in DTYPES:
        for root in range(world):
            for n in (1, 70_001):
                t = data(rank, n, dtype, seed=root)
                ref = t.clone()
                dist.broadcast(t, src=root)
                check(same(t, data(root, n, dtype, seed=root)), f"broadcast {dtype} root {root}")
                if gloo_or_none(lambda: dist.broadcast(ref, src=root, group=rankpool.REF)) is not None:
                    check(same(t, ref), f"broadcast {dtype} root {root}: fccl != gloo")
        for op in ops_for(dtype):
            root = world - 1
            small = op == "PRODUCT"
            inputs = [data(r, 1000, dtype, small=small) for r in range(world)]
            t = inputs[rank].clone()
            dist.reduce(t, dst=root, op=reduce_op(op))
            if rank == root:
                check(same(t, expected(inputs, op, dtype), op not in ("AVG", "PREMUL_SUM")),
                      f"reduce {op} {dtype} at root {root}")
            else:
                check(same(t, inputs[rank]), f"reduce {op} {dtype}: a non-root input changed")
            ref = inputs[rank].clone()
            if op not in ("AVG", "PREMUL_SUM") and gloo_or_none(
                    lambda: dist.reduce(ref, dst=root, op=reduce_op(op), group=rankpool.REF)) and rank == root:
                check(same(t, ref), f"reduce {op} {dtype}: fccl != gloo")


def run_gathers(rank, world):
    for dtype in DTYPES:
        for n in (0, 5, 70_001):
            x = data(rank, n, dtype, seed=3)
            want = [data(r, n, dtype, seed=3) for r in range(world)]
            outs = [torch.full((n,), 9).to(dtype) for _ in range(world)]
            dist.all_gather(outs, x)
            check(all(same(o, w) for o, w in zip(outs, want)), f"all_gather {dtype} n={n}")
            ref = [torch.empty_like(x) for _ in range(world)]
            if gloo_or_none(lambda: dist.all_gather(ref, x, group=rankpool.REF)) is not None:
                check(all(same(o, w) for o, w in zip(outs, ref)), f"all_gather {dtype}: fccl != gloo")
            flat = torch.empty(world * n, dtype=dtype)
            dist.all_gather_into_tensor(flat, x)
            check(same(flat, torch.cat(want)), f"all_gather_into_tensor {dtype} n={n}")
            # In place: the input is this rank's block of the output.
            flat2 = torch.zeros(world * n).to(dtype)
            flat2[rank * n:(rank + 1) * n] = x
            dist.all_gather_into_tensor(flat2, flat2[rank * n:(rank + 1) * n])
            check(same(flat2, torch.cat(want)), f"all_gather_into_tensor in place {dtype} n={n}")
            root = world - 1
            g = [torch.empty_like(x) for _ in range(world)] if rank == root else None
            dist.gather(x, gather_list=g, dst=root)
            if rank == root:
                check(all(same(o, w) for o, w in zip(g, want)), f"gather {dtype} n={n}")
            s = torch.empty_like(x)
            dist.scatter(s, scatter_list=[w.clone() for w in want] if rank == 0 else None, src=0)
            check(same(s, want[rank]), f"scatter {dtype} n={n}")
    # all_gather_coalesced: two tensors of different sizes.
    a, b = data(rank, 3, torch.float32), data(rank, 5, torch.float32, seed=1)
    out = [[torch.empty(3), torch.empty(5)] for _ in range(world)]
    dist.all_gather_coalesced(out, [a, b])
    for r in range(world):
        check(same(out[r][0], data(r, 3, torch.float32)) and same(out[r][1], data(r, 5, torch.float32, seed=1)),
              "all_gather_coalesced")


def run_reduce_scatter(rank, world):
    for dtype in DTYPES:
        for op in ops_for(dtype):
            for n in (1, 7, 30_000):
                small = op == "PRODUCT"
                full = [data(r, n * world, dtype, seed=1, small=small) for r in range(world)]
                want = expected(full, op, dtype)[rank * n:(rank + 1) * n]
                exact = op not in ("AVG", "PREMUL_SUM")
                out = torch.empty(n, dtype=dtype)
                dist.reduce_scatter_tensor(out, full[rank].clone(), op=reduce_op(op))
                check(same(out, want, exact), f"reduce_scatter_tensor {op} {dtype} n={n}: {out[:5]} != {want[:5]}")
                out2 = torch.empty(n, dtype=dtype)
                dist.reduce_scatter(out2, list(full[rank].clone().chunk(world)), op=reduce_op(op))
                check(same(out2, want, exact), f"reduce_scatter {op} {dtype} n={n}")
                if exact:
                    ref = torch.empty(n, dtype=dtype)
                    if gloo_or_none(lambda: dist.reduce_scatter_tensor(ref, full[rank].clone(), op=reduce_op(op),
                                                                       group=rankpool.REF)) is not None:
                        check(same(out, ref), f"reduce_scatter_tensor {op} {dtype}: fccl != gloo")
            # In place: the output is this rank's block of the input.
            buf = data(rank, 4 * world, dtype, seed=2)
            want = expected([data(r, 4 * world, dtype, seed=2) for r in range(world)], "SUM", dtype)
            dist.reduce_scatter_tensor(buf[rank * 4:(rank + 1) * 4], buf)
            check(same(buf[rank * 4:(rank + 1) * 4], want[rank * 4:(rank + 1) * 4]), f"in place {dtype}")


def run_all_to_all(rank, world):
    for dtype in DTYPES:
        # Even: block p of rank r's input is r*100 + p.
        x = torch.tensor([rank * 100 + p for p in range(world) for _ in range(3)]).to(dtype)
        out = torch.empty_like(x)
        dist.all_to_all_single(out, x)
        want = torch.tensor([r * 100 + rank for r in range(world) for _ in range(3)]).to(dtype)
        check(same(out, want), f"all_to_all_single even {dtype}: {out} != {want}")
        ref = torch.empty_like(x)
        if gloo_or_none(lambda: dist.all_to_all_single(ref, x, group=rankpool.REF)) is not None:
            check(same(out, ref), f"all_to_all_single {dtype}: fccl != gloo")
        # Uneven: rank r sends p+1 rows of 2 columns (value r*100+p) to rank p; zero-size splits too.
        sizes = lambda r, p: (r + p) % 3  # noqa: E731
        ins = [sizes(rank, p) for p in range(world)]
        outs = [sizes(p, rank) for p in range(world)]
        x = torch.cat([torch.full((ins[p], 2), rank * 100 + p) for p in range(world)]).to(dtype)
        out = torch.empty(sum(outs), 2).to(dtype)
        dist.all_to_all_single(out, x, output_split_sizes=outs, input_split_sizes=ins)
        want = torch.cat([torch.full((outs[p], 2), p * 100 + rank) for p in range(world)]).to(dtype)
        check(same(out, want), f"all_to_all_single uneven {dtype}: {out} != {want}")
        # List form.
        xs = [torch.full((p + 1,), rank * 10 + p).to(dtype) for p in range(world)]
        os_ = [torch.empty(rank + 1).to(dtype) for _ in range(world)]
        dist.all_to_all(os_, xs)
        for p in range(world):
            check(same(os_[p], torch.full((rank + 1,), p * 10 + rank).to(dtype)), f"all_to_all {dtype} from {p}")


def run_p2p(rank, world):
    nxt, prv = (rank + 1) % world, (rank - 1) % world
    for dtype in (torch.float32, torch.int16, torch.bool, torch.complex64):
        for n in (1, 1000, 300_000):
            x = data(rank, n, dtype, seed=4)
            y = torch.empty_like(x)
            # A ring of blocking sends would deadlock past the FIFO's capacity: batch it.
            works = dist.batch_isend_irecv([dist.P2POp(dist.isend, x, nxt), dist.P2POp(dist.irecv, y, prv)])
            for w in works:
                w.wait()
            check(same(y, data(prv, n, dtype, seed=4)), f"batch_isend_irecv {dtype} n={n}")
    # Plain send / recv: rank 0 sends to every other rank, which answer.
    if rank == 0:
        for p in range(1, world):
            dist.send(torch.full((5,), float(p)), dst=p)
        for p in range(1, world):
            t = torch.empty(5)
            dist.recv(t, src=p)
            check(torch.equal(t, torch.full((5,), float(p * 2))), f"recv from {p}: {t}")
    else:
        t = torch.empty(5)
        w = dist.irecv(t, src=0)
        w.wait()
        check(torch.equal(t, torch.full((5,), float(rank))), f"irecv: {t}")
        dist.isend(t * 2, dst=0).wait()
    dist.barrier()


def run_coalesced_and_groups(rank, world):
    # allreduce_coalesced through the coalescing manager.
    ts = [data(rank, n, torch.float32) for n in (3, 70_001)]
    from torch.distributed.distributed_c10d import _coalescing_manager

    with _coalescing_manager(async_ops=True) as cm:
        for t in ts:
            dist.all_reduce(t)
    cm.wait()
    for t, n in zip(ts, (3, 70_001)):
        check(torch.equal(t, expected([data(r, n, torch.float32) for r in range(world)], "SUM", torch.float32)),
              "coalesced all_reduce")
    # A subgroup of ranks 0 and world-1, and one of every rank: new_group with fccl.
    sub = dist.new_group([0, world - 1], backend="fccl")
    if rank in (0, world - 1):
        t = torch.tensor([float(rank)])
        dist.all_reduce(t, group=sub)
        check(t.item() == world - 1, f"subgroup allreduce: {t}")
    everyone = dist.new_group(backend="fccl")
    t = torch.ones(4)
    dist.all_reduce(t, group=everyone)
    check(torch.equal(t, torch.full((4,), float(world))), "second group allreduce")
    dist.destroy_process_group(everyone)
    if rank in (0, world - 1):
        dist.destroy_process_group(sub)
    return dist.get_backend() == "fccl"


def run_argument_errors(rank, world):
    """Bad calls raise on the caller's thread, name the call and change nothing."""
    msgs = []

    def expect(exc, fn, words):
        try:
            fn()
        except exc as e:
            for w in words:
                check(w in str(e), f"error {str(e)!r} does not say {w!r}")
            msgs.append(str(e).splitlines()[0])
            return
        raise AssertionError(f"no {exc.__name__} for {words}")

    t = torch.ones(4, 4)
    expect(RuntimeError, lambda: dist.all_reduce(t.t()[:, :2]), ["contiguous"])
    expect(ValueError, lambda: dist.broadcast(t, src=world + 3), ["root"])
    expect(TypeError, lambda: dist.all_reduce(t, op=ReduceOp.BAND), ["BAND", "integer"])
    expect(ValueError, lambda: dist.all_to_all_single(torch.empty(3), torch.empty(3), [1] * world, [1] * world),
           ["splits"])
    dist.barrier()
    return msgs


# ---- tests -------------------------------------------------------------------------------------


def test_allreduce_every_dtype_and_op(pool):
    compared = pool.run(run_allreduce, timeout=240)
    assert compared[0] > 100, f"only {compared[0]} cases compared with gloo"


def test_broadcast_and_reduce(pool):
    pool.run(run_broadcast_reduce, timeout=180)


def test_gathers_and_scatter(pool):
    pool.run(run_gathers, timeout=180)


def test_reduce_scatter(pool):
    pool.run(run_reduce_scatter, timeout=240)


def test_all_to_all(pool):
    pool.run(run_all_to_all, timeout=120)


def test_send_recv(pool):
    pool.run(run_p2p, timeout=120)


def test_coalescing_and_new_group(pool):
    assert all(pool.run(run_coalesced_and_groups, timeout=120))


def test_argument_errors(pool2):
    msgs = pool2.run(run_argument_errors)
    assert all(m.startswith("fccl ") for m in msgs[0]), msgs[0]
