"""fccl.optim against torch.optim on all-reduced gradients (20 steps, float32, within 1e-6), on 2
and 3 ranks, with sliced and replicated state; LAMB against a float64 reference of its formula;
state_dict round trips (shard, torch format, consolidated); loss scaling's group-wide overflow
skip; a model trained with fccl.optim.Adam against DDP over gloo with torch.optim.Adam.
Differences are absolute, relative for weights above 1 in magnitude (max_diff)."""

import copy

import torch
import torch.distributed as dist
import torch.nn as nn

import fccl
import rankpool

SHAPES = [(1000,), (30, 7), (1,), (5, 3, 2)]  # 1,241 elements: slices split parameters


def params_like(seed=0):
    gen = torch.Generator().manual_seed(seed)
    return [nn.Parameter(torch.randn(s, generator=gen)) for s in SHAPES]


def grads(rank, step, scale=1.0):
    gen = torch.Generator().manual_seed(1000 * step + rank)
    return [torch.randn(s, generator=gen) * scale for s in SHAPES]


def averaged(world, step):
    """The all-reduced (averaged) gradients of step `step`, computed here from every rank's."""
    per_rank = [grads(r, step) for r in range(world)]
    return [sum(g[i] for g in per_rank) / world for i in range(len(SHAPES))]


def max_diff(a, b):
    """The largest difference, relative where |b| > 1 (float32 weights of size 3 are 2.4e-7 apart)."""
    return max(((x.detach() - y.detach()).abs() / y.detach().abs().clamp(min=1)).max().item() for x, y in zip(a, b))


def set_grads(params, gs):
    for p, g in zip(params, gs):
        p.grad.copy_(g)


CASES = {
    "adam": (lambda ps, **k: fccl.optim.Adam(ps, lr=1e-2, betas=(0.8, 0.99), eps=1e-6, **k),
             lambda ps: torch.optim.Adam(ps, lr=1e-2, betas=(0.8, 0.99), eps=1e-6)),
    "adamw": (lambda ps, **k: fccl.optim.AdamW(ps, lr=1e-2, weight_decay=0.1, **k),
              lambda ps: torch.optim.AdamW(ps, lr=1e-2, weight_decay=0.1)),
    "sgd": (lambda ps, **k: fccl.optim.SGD(ps, lr=0.05, momentum=0.9, dampening=0.1, weight_decay=0.01, **k),
            lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9, dampening=0.1, weight_decay=0.01)),
    "sgd_nesterov": (lambda ps, **k: fccl.optim.SGD(ps, lr=0.05, momentum=0.9, nesterov=True, **k),
                     lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9, nesterov=True)),
    "sgd_plain": (lambda ps, **k: fccl.optim.SGD(ps, lr=0.1, **k), lambda ps: torch.optim.SGD(ps, lr=0.1)),
}


def run_against_torch(rank, world, name, sliced, steps=20):
    ours_f, theirs_f = CASES[name]
    ours, theirs = params_like(), [p.detach().clone().requires_grad_() for p in params_like()]
    opt = ours_f(ours, sliced_state=sliced)
    ref = theirs_f(theirs)
    for step in range(steps):
        set_grads(ours, grads(rank, step))
        for p, g in zip(theirs, averaged(world, step)):
            p.grad = g
        opt.step()
        ref.step()
    return max_diff(ours, theirs)


def lamb_reference(params, world, steps, lr, betas, eps, wd):
    """LAMB in float64, per parameter tensor: the formula of fusion/stock/lamb.fccl."""
    w = [p.detach().double().clone() for p in params]
    m = [torch.zeros_like(x) for x in w]
    v = [torch.zeros_like(x) for x in w]
    b1, b2 = betas
    for step in range(steps):
        for i, g in enumerate(averaged(world, step)):
            g = g.double()
            t = step + 1
            m[i] = b1 * m[i] + (1 - b1) * g
            v[i] = b2 * v[i] + (1 - b2) * g * g
            u = (m[i] / (1 - b1 ** t)) / ((v[i] / (1 - b2 ** t)).sqrt() + eps) + wd * w[i]
            wn, un = w[i].norm(), u.norm()
            trust = wn / un if wn > 0 and un > 0 else 1.0
            w[i] = w[i] - lr * trust * u
    return w


def run_lamb(rank, world, sliced, steps=20):
    ours = params_like()
    opt = fccl.optim.LAMB(ours, lr=1e-2, weight_decay=0.01, sliced_state=sliced)
    for step in range(steps):
        set_grads(ours, grads(rank, step))
        opt.step()
    want = lamb_reference(params_like(), world, steps, 1e-2, (0.9, 0.999), 1e-6, 0.01)
    return max((p.detach().double() - w).abs().max().item() for p, w in zip(ours, want))


def run_state_dict(rank, world):
    """10 steps, save, a fresh optimizer loads, 10 more: the same weights as 20 in a row (shard,
    replicated torch format, consolidated into torch.optim.Adam)."""
    def steps(params, opt, lo, hi, is_torch=False):
        for step in range(lo, hi):
            if is_torch:
                for p, g in zip(params, averaged(world, step)):
                    p.grad = g
            else:
                set_grads(params, grads(rank, step))
            opt.step()

    out = {}
    straight = params_like()
    steps(straight, fccl.optim.Adam(straight, lr=1e-2), 0, 20)
    for sliced in (True, False):
        a = params_like()
        opt = fccl.optim.Adam(a, lr=1e-2, sliced_state=sliced)
        steps(a, opt, 0, 10)
        sd = opt.state_dict()
        full = opt.consolidated_state_dict()
        assert ("fccl" in sd and sd["fccl"].get("sliced", False)) == sliced
        b = [nn.Parameter(x.detach().clone()) for x in a]
        opt2 = fccl.optim.Adam(b, lr=1.0, sliced_state=sliced)  # lr comes back from the state dict
        opt2.load_state_dict(sd)
        assert opt2.param_groups[0]["lr"] == 1e-2
        steps(b, opt2, 10, 20)
        out[f"round trip sliced={sliced}"] = max_diff(b, straight)
        # The consolidated state continues in torch.optim.Adam, and back in fccl with the other layout.
        c = [x.detach().clone().requires_grad_() for x in a]
        t = torch.optim.Adam(c, lr=1e-2)
        t.load_state_dict(copy.deepcopy(full))  # torch.optim keeps (and updates) the tensors it loads
        steps(c, t, 10, 20, is_torch=True)
        out[f"torch.optim.Adam from consolidated sliced={sliced}"] = max_diff(c, straight)
        d = [nn.Parameter(x.detach().clone()) for x in a]
        opt3 = fccl.optim.Adam(d, lr=1e-2, sliced_state=not sliced)
        opt3.load_state_dict(full)
        steps(d, opt3, 10, 20)
        out[f"other layout from consolidated sliced={sliced}"] = max_diff(d, straight)
    # A shard does not load on another rank.
    e = params_like()
    opt = fccl.optim.Adam(e, lr=1e-2)
    sd = opt.state_dict()
    sd["fccl"]["rank"] = (rank + 1) % world
    try:
        opt.load_state_dict(sd)
        out["wrong rank refused"] = 1.0
    except ValueError as err:
        assert "consolidated_state_dict" in str(err), err
        out["wrong rank refused"] = 0.0
    return out


def run_loss_scaling(rank, world):
    """Dynamic loss scaling: an inf on one rank's gradient makes every rank skip that step and
    halve the scale; otherwise the result is unscaled Adam's."""
    ours = params_like()
    ref = params_like()
    opt = fccl.optim.Adam(ours, lr=1e-2, loss_scale="dynamic")
    plain = fccl.optim.Adam(ref, lr=1e-2)
    scale0 = opt.loss_scale
    skipped = []
    for step in range(6):
        gs = [g * opt.loss_scale for g in grads(rank, step)]
        if step == 3 and rank == world - 1:
            gs[1][2, 3] = float("inf")
        set_grads(ours, gs)
        opt.step()
        skipped.append(opt.last_step_skipped)
        if step != 3:
            set_grads(ref, grads(rank, step))
            plain.step()
    return skipped, opt.loss_scale / scale0, max_diff(ours, ref), opt.skipped_steps


def _mlp():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(16, 32), nn.Tanh(), nn.Linear(32, 32), nn.Tanh(), nn.Linear(32, 4))


def run_model_vs_ddp(rank, world, steps=20):
    """The same model and data: fccl.optim.Adam on local gradients vs DDP over gloo + torch Adam."""
    from torch.nn.parallel import DistributedDataParallel as DDP

    a = _mlp()
    opt = fccl.optim.Adam(a.parameters(), lr=1e-3)
    b = DDP(_mlp(), process_group=rankpool.REF)
    ref = torch.optim.Adam(b.parameters(), lr=1e-3)
    for model, o in ((a, opt), (b, ref)):
        gen = torch.Generator().manual_seed(7 + rank)
        for _ in range(steps):
            x, y = torch.randn(8, 16, generator=gen), torch.randn(8, 4, generator=gen)
            o.zero_grad()
            nn.functional.mse_loss(model(x), y).backward()
            o.step()
    return max_diff(list(a.parameters()), list(b.parameters()))


def run_bad_arguments(rank, world):
    msgs = []
    for fn, exc in ((lambda: fccl.optim.Adam([nn.Parameter(torch.ones(3, dtype=torch.float64))]), TypeError),
                    (lambda: fccl.optim.Adam(params_like(), weight_decay=0.1), ValueError),
                    (lambda: fccl.optim.SGD(params_like(), nesterov=True), ValueError),
                    (lambda: fccl.optim.Adam(params_like(), process_group=rankpool.REF), TypeError)):
        try:
            fn()
        except exc as e:
            msgs.append(str(e))
            continue
        raise AssertionError(f"no {exc.__name__}")
    return msgs


# ---- tests -------------------------------------------------------------------------------------


def test_against_torch_optim(pool):
    for name in CASES:
        for sliced in (True, False):
            diffs = pool.run(run_against_torch, name, sliced, timeout=60)
            assert max(diffs) <= 1e-6, f"{name} sliced={sliced}: differs from torch.optim by {max(diffs)}"


def test_lamb_against_reference(pool):
    for sliced in (True, False):
        diffs = pool.run(run_lamb, sliced, timeout=60)
        assert max(diffs) <= 1e-5, f"LAMB sliced={sliced}: differs from the float64 reference by {max(diffs)}"


def test_state_dict_round_trips(pool):
    for out in pool.run(run_state_dict, timeout=120):
        for what, diff in out.items():
            assert diff <= 1e-6, f"{what}: {diff}"


def test_loss_scaling_skips_overflow_everywhere(pool):
    for skipped, ratio, diff, count in pool.run(run_loss_scaling, timeout=60):
        assert skipped == [False, False, False, True, False, False], skipped
        assert ratio == 0.5 and count == 1
        assert diff <= 1e-6, diff


def test_model_matches_ddp_gloo(pool):
    for diff in pool.run(run_model_vs_ddp, timeout=120):
        assert diff <= 1e-6, f"fccl.optim.Adam and DDP(gloo) + torch.optim.Adam differ by {diff}"


def test_bad_arguments(pool2):
    msgs = pool2.run(run_bad_arguments)[0]
    assert all(m.startswith("fccl") for m in msgs), msgs
