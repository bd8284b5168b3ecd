"""fccl.Program from Python: a program written here and a stock one (with a sliced tensor)
compiled for the fccl group and launched, checked against the same math in torch; scalar
results; errors: the checker's file:line:col in ProgramError, bindings checked before launch."""

import torch
import torch.distributed as dist

import fccl
import rankpool  # noqa: F401  (the pool's module)

SCALED = """\
program scaled
  in    g     : f32[N] local
  inout w     : f32[N] replicated
  out   peak  : f32 replicated
  scalar alpha : f32

  gs   = allreduce(sum, g)
  w    = w + alpha * gs
  peak = max(abs(gs))
"""


def local(rank, n, seed=0):
    gen = torch.Generator().manual_seed(seed * 100 + rank)
    return torch.randn(n, generator=gen)


def run_launch(rank, world):
    n = 100_003
    p = fccl.Program(SCALED, "scaled.fccl").compile()
    g, w = local(rank, n), torch.linspace(-1, 1, n)
    res = p.launch(tensors={"g": g, "w": w}, scalars={"alpha": 0.5})
    gs = sum(local(r, n) for r in range(world))
    want = torch.linspace(-1, 1, n) + 0.5 * gs
    out = {"w": (w - want).abs().max().item(), "peak": abs(res["peak"] - gs.abs().max().item())}

    # The stock SGD with momentum: buf is sliced (this rank's range only).
    sgd = fccl.Program.stock("sgd").compile()
    begin, end = sgd.slice_range(n)
    w = torch.ones(n)
    buf = torch.zeros(end - begin)
    for step in range(3):
        work = sgd.launch(tensors={"g": local(rank, n, step), "w": w, "buf": buf},
                          scalars={"lr": 0.1, "momentum": 0.9, "dampening": 0.0, "weight_decay": 0.0,
                                   "nesterov": 0},
                          async_op=True)
        work.wait()
    ref_w, ref_buf = torch.ones(n, dtype=torch.float64), torch.zeros(n, dtype=torch.float64)
    for step in range(3):
        gs = sum(local(r, n, step).double() for r in range(world)) / world
        ref_buf = 0.9 * ref_buf + gs
        ref_w = ref_w - 0.1 * ref_buf
    out["sgd w"] = (w.double() - ref_w).abs().max().item()
    out["sgd buf"] = (buf.double() - ref_buf[begin:end]).abs().max().item()
    out["dump"] = "reduce_scatter" in sgd.dump("schedule") or "reduce_scatter" in sgd.dump("split")
    return out


def run_errors(rank, world):
    msgs = {}

    def expect(exc, fn, key):
        try:
            fn()
        except exc as e:
            msgs[key] = str(e)
            return
        raise AssertionError(f"{key}: no {exc.__name__}")

    expect(fccl.ProgramError, lambda: fccl.Program("program x\n  in g : f32[N] local\n  y = foo(g)\n", "bad.fccl"),
           "unknown function")
    expect(fccl.ProgramError, lambda: fccl.Program(
        "program y\n  in g : f32[N] local\n  inout w : f32[N] replicated\n  w = g\n", "layout.fccl"), "layout")
    p = fccl.Program(SCALED, "scaled.fccl")
    g, w = torch.ones(8), torch.ones(8)
    expect(RuntimeError, lambda: p.launch({"g": g, "w": w}, {"alpha": 1}), "not compiled")
    p.compile()
    expect(ValueError, lambda: p.launch({"g": g}, {"alpha": 1}), "unbound tensor")
    expect(ValueError, lambda: p.launch({"g": g, "w": w}, {}), "unbound scalar")
    expect(ValueError, lambda: p.launch({"g": g, "w": w, "q": w}, {"alpha": 1}), "unknown name")
    expect(TypeError, lambda: p.launch({"g": g.double(), "w": w}, {"alpha": 1}), "dtype")
    expect(TypeError, lambda: fccl.Program(SCALED).compile(rankpool.REF), "gloo group")
    dist.barrier()
    return msgs


def test_launch_matches_torch(pool):
    for out in pool.run(run_launch, timeout=60):
        assert out["w"] <= 1e-5 and out["peak"] <= 1e-5, out
        assert out["sgd w"] <= 1e-5 and out["sgd buf"] <= 1e-5, out
        assert out["dump"], out


def test_errors(pool2):
    msgs = pool2.run(run_errors)[0]
    assert msgs["unknown function"].startswith("bad.fccl:3:7: unknown function 'foo'"), msgs
    assert msgs["layout"].startswith("layout.fccl:"), msgs
    assert "compile()" in msgs["not compiled"]
    assert "'w'" in msgs["unbound tensor"] and "'alpha'" in msgs["unbound scalar"]
    assert "'q'" in msgs["unknown name"] and "f32" in msgs["dtype"]
    assert "gloo" in msgs["gloo group"], msgs["gloo group"]
