"""fccl.optim: SGD, Adam, AdamW and LAMB fused into the gradient allreduce.

    opt = fccl.optim.Adam(model.parameters(), lr=1e-3)     # no DDP wrapper, no gradient hook
    loss.backward(); opt.step(); opt.zero_grad()

step() takes each rank's local gradients and runs fccl's stock program for the optimizer
(fcclProgramGetStock: allreduce + update in one pass: a reduce-scatter whose reduced hook
updates this rank's slice, then an all-gather of the weights) over flat buckets of the
parameters. At construction the parameters of each param group are moved into one flat float32
buffer (each Parameter becomes a view of it, so the model sees the update in place) and their
.grad into another; rank 0's values are broadcast, so every replica starts equal.
zero_grad() zeroes the gradient buffer (set_to_none is ignored: the .grad views must stay).

Options (all optimizers):
  process_group  the group to reduce over (default: the world); it must run fccl for CPU.
  sliced_state   True (default): each rank keeps only its 1/n slice of the optimizer state
                 (ZeRO-1 memory); state_dict() is then this rank's shard, loadable on the same
                 rank of a group of the same size. False: the state is replicated (the program's
                 state tensors become `replicated`, so it is all-gathered every step) and
                 state_dict() has torch.optim's format. consolidated_state_dict() (every rank
                 calls it) gives torch.optim's format in either mode, and load_state_dict()
                 takes either format.
  loss_scale     None (default), a number (static), or "dynamic" (GradScaler's policy:
                 2**16 at first, halved on overflow, doubled after 2000 clean steps). Call
                 backward on opt.scale(loss); step() unscales the gradients, and when any rank
                 saw an inf or NaN, every rank skips the step (opt.last_step_skipped).

Differences from torch.optim: a parameter without a gradient counts as a zero gradient (every
rank must contribute to the allreduce); float32 CPU parameters only; Adam has no weight_decay
(L2) or amsgrad (use AdamW); LAMB's trust ratio is per parameter tensor (one bucket each).
"""

from __future__ import annotations

import re
from typing import Dict, List, Optional

import torch
import torch.distributed as dist

from . import _C
from ._backend import backend_of
from .program import Program


class _Bucket:
    """A flat run of one param group's parameters: weights, gradients, program state."""

    def __init__(self, params: List[torch.nn.Parameter]):
        self.params = params
        self.sizes = [p.numel() for p in params]
        self.offsets = [sum(self.sizes[:i]) for i in range(len(params))]
        self.count = sum(self.sizes)
        self.w = torch.empty(self.count, dtype=torch.float32)
        self.g = torch.zeros(self.count, dtype=torch.float32)
        with torch.no_grad():
            for p, o, n in zip(params, self.offsets, self.sizes):
                self.w[o:o + n].copy_(p.detach().reshape(-1))
        self.attach()
        self.step = 0
        self.state: Dict[str, torch.Tensor] = {}
        self.begin = self.end = 0

    def view(self, flat, i):
        p = self.params[i]
        return flat[self.offsets[i]:self.offsets[i] + self.sizes[i]].view_as(p)

    def attach(self):
        for i, p in enumerate(self.params):
            p.data = self.view(self.w, i)
            p.grad = self.view(self.g, i)

    def collect_grads(self):
        """Makes sure every gradient is in g: a .grad that autograd or the user replaced is
        copied in (and the view put back); a missing one is zero."""
        for i, p in enumerate(self.params):
            v = self.view(self.g, i)
            if p.grad is None:
                v.zero_()
                p.grad = v
            elif p.grad.data_ptr() != v.data_ptr() or p.grad.shape != v.shape:
                v.copy_(p.grad)
                p.grad = v
            if p.data.data_ptr() != self.view(self.w, i).data_ptr():
                raise RuntimeError("fccl.optim: a parameter's .data was replaced after the optimizer was made; "
                                   "its weights must stay views of the optimizer's flat buffer")


class _FusedOptimizer(torch.optim.Optimizer):
    _stock = ""  # the stock program
    _state_keys: Dict[str, str] = {}  # program state tensor -> torch.optim state key
    _per_param = False  # one bucket per parameter tensor

    def __init__(self, params, defaults, process_group=None, sliced_state=True, loss_scale=None):
        self._pg = process_group
        self._backend = backend_of(process_group)
        self._rank = dist.get_rank(process_group)
        self._world = dist.get_world_size(process_group)
        self._sliced = bool(sliced_state)
        self._buckets: List[List[_Bucket]] = []
        self._init_scaler(loss_scale)
        text = _C.stock_program(self._stock)
        if not self._sliced:
            names = "|".join(self._state_keys)
            text = re.sub(rf"(\binout\s+(?:{names})\s*:\s*f32\[N\]\s*)sliced", r"\1replicated", text)
        self._program = Program(text, f"{self._stock}.fccl").compile(process_group)
        super().__init__(params, defaults)

    # ---- buckets -------------------------------------------------------------------------------

    def add_param_group(self, param_group):
        super().add_param_group(param_group)
        params = self.param_groups[-1]["params"]
        for p in params:
            if p.dtype != torch.float32 or p.device.type != "cpu" or p.layout != torch.strided:
                raise TypeError(f"fccl.optim: parameters must be dense float32 CPU tensors, got {p.dtype} on "
                                f"{p.device}")
        runs = [[p] for p in params] if self._per_param else [list(params)]
        buckets = [_Bucket(r) for r in runs if r]
        src = dist.get_global_rank(self._pg, 0) if self._pg is not None else 0
        works = [dist.broadcast(b.w, src=src, group=self._pg, async_op=True) for b in buckets]
        for w in works:
            w.wait()
        for b in buckets:
            if self._sliced:
                b.begin, b.end = _C.slice_range(self._backend, self._rank, b.count)
            else:
                b.begin, b.end = 0, b.count
            for name in self._state_keys:
                b.state[name] = torch.zeros(b.end - b.begin, dtype=torch.float32)
        self._buckets.append(buckets)

    @torch.no_grad()
    def zero_grad(self, set_to_none: bool = True):
        for buckets in self._buckets:
            for b in buckets:
                b.g.zero_()
                b.attach()

    # ---- the step ------------------------------------------------------------------------------

    def _scalars(self, group, bucket) -> Dict[str, float]:
        raise NotImplementedError

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for buckets in self._buckets:
            for b in buckets:
                b.collect_grads()
        if self._scale is not None and self._unscale_and_check():
            return loss
        works = []
        for group, buckets in zip(self.param_groups, self._buckets):
            for b in buckets:
                b.step += 1
                tensors = {"g": b.g, "w": b.w, **b.state}
                counts = {name: b.count for name in b.state}
                works.append(self._program.launch(tensors, self._scalars(group, b), counts, async_op=True))
        for w in works:
            w.wait()
        return loss

    # ---- loss scaling --------------------------------------------------------------------------

    def _init_scaler(self, loss_scale):
        self._dynamic = loss_scale == "dynamic"
        if loss_scale is None:
            self._scale = None
        elif self._dynamic:
            self._scale = 2.0 ** 16
        else:
            self._scale = float(loss_scale)
            if not self._scale > 0:
                raise ValueError(f"fccl.optim: loss_scale must be positive, \"dynamic\" or None, got {loss_scale}")
        self._growth_tracker = 0
        self.last_step_skipped = False
        self.skipped_steps = 0

    @property
    def loss_scale(self) -> Optional[float]:
        return self._scale

    def scale(self, loss: torch.Tensor) -> torch.Tensor:
        """loss times the current loss scale (loss itself without loss scaling)."""
        return loss if self._scale is None else loss * self._scale

    def _unscale_and_check(self) -> bool:
        """Unscales every gradient in place; True (and the scale backed off) when any rank saw
        an inf or NaN, so every rank skips this step."""
        found = torch.zeros(1)
        inv = torch.full((1,), 1.0 / self._scale)
        grads = [b.g for buckets in self._buckets for b in buckets]
        torch._amp_foreach_non_finite_check_and_unscale_(grads, found, inv)
        dist.all_reduce(found, op=dist.ReduceOp.MAX, group=self._pg)
        self.last_step_skipped = bool(found.item() > 0)
        if self.last_step_skipped:
            self.skipped_steps += 1
            if self._dynamic:
                self._scale *= 0.5
                self._growth_tracker = 0
        elif self._dynamic:
            self._growth_tracker += 1
            if self._growth_tracker == 2000:
                self._scale *= 2.0
                self._growth_tracker = 0
        return self.last_step_skipped

    # ---- state ---------------------------------------------------------------------------------

    def _param_index(self):
        index, i = {}, 0
        for group in self.param_groups:
            for p in group["params"]:
                index[id(p)] = i
                i += 1
        return index

    def _torch_format(self, full_states):
        """torch.optim's state_dict from each bucket's full (all N) state tensors."""
        index = self._param_index()
        state = {}
        for buckets, fulls in zip(self._buckets, full_states):
            for b, full in zip(buckets, fulls):
                for i, p in enumerate(b.params):
                    s = {"step": torch.tensor(float(b.step))}
                    for name, key in self._state_keys.items():
                        s[key] = b.view(full[name], i).clone()
                    state[index[id(p)]] = s
        sd = super().state_dict()
        sd["state"] = state
        sd["fccl"] = self._scaler_state()
        return sd

    def _scaler_state(self):
        return {"loss_scale": self._scale, "growth_tracker": self._growth_tracker,
                "skipped_steps": self.skipped_steps}

    def state_dict(self):
        """Replicated state: torch.optim's format. Sliced state: this rank's shard (the state
        slices and step of each bucket; see consolidated_state_dict for a whole one)."""
        if not self._sliced:
            return self._torch_format([[b.state for b in buckets] for buckets in self._buckets])
        sd = super().state_dict()
        sd["state"] = {}
        sd["fccl"] = {
            **self._scaler_state(), "sliced": True, "rank": self._rank, "world": self._world,
            "buckets": [[{"count": b.count, "begin": b.begin, "end": b.end, "step": b.step,
                          **{n: t.clone() for n, t in b.state.items()}} for b in buckets] for buckets in self._buckets],
        }
        return sd

    def consolidated_state_dict(self):
        """torch.optim's format with the whole state; a collective in sliced mode (every rank of
        the group calls it)."""
        if not self._sliced:
            return self.state_dict()
        fulls = []
        for buckets in self._buckets:
            fulls.append([])
            for b in buckets:
                per = -(-b.count // self._world)  # every rank's slice padded to ceil(N/n)
                full = {}
                for name, t in b.state.items():
                    padded = torch.zeros(per)
                    padded[:t.numel()] = t
                    out = torch.empty(per * self._world)
                    dist.all_gather_into_tensor(out, padded, group=self._pg)
                    full[name] = out[:b.count]
                fulls[-1].append(full)
        return self._torch_format(fulls)

    def load_state_dict(self, state_dict):
        """Takes this optimizer's state_dict() (a shard in sliced mode: same rank, same group
        size, same parameters) or torch.optim's format (e.g. consolidated_state_dict())."""
        fc = state_dict.get("fccl", {})
        sd = dict(state_dict)
        sd.pop("fccl", None)
        torch_state = sd.get("state", {})
        sd["state"] = {}
        super().load_state_dict(sd)
        self.state.clear()
        if fc.get("sliced"):
            if fc["rank"] != self._rank or fc["world"] != self._world or not self._sliced:
                raise ValueError(f"fccl.optim: a shard of rank {fc['rank']} of {fc['world']} cannot be loaded on rank "
                                 f"{self._rank} of {self._world}{'' if self._sliced else ' (replicated state)'}: "
                                 "use consolidated_state_dict() to move state between layouts")
            for buckets, saved in zip(self._buckets, fc["buckets"], strict=True):
                for b, s in zip(buckets, saved, strict=True):
                    if (s["count"], s["begin"], s["end"]) != (b.count, b.begin, b.end):
                        raise ValueError("fccl.optim: the shard was saved for different parameters")
                    b.step = int(s["step"])
                    for name in b.state:
                        b.state[name].copy_(s[name])
        else:
            index = self._param_index()
            for buckets in self._buckets:
                for b in buckets:
                    steps = []
                    for i, p in enumerate(b.params):
                        s = torch_state.get(index[id(p)], torch_state.get(str(index[id(p)])))
                        if not s:
                            continue
                        steps.append(int(float(s.get("step", 0))))
                        for name, key in self._state_keys.items():
                            if s.get(key) is None:
                                continue
                            o, n = b.offsets[i], b.sizes[i]
                            lo, hi = max(o, b.begin), min(o + n, b.end)
                            if lo < hi:
                                b.state[name][lo - b.begin:hi - b.begin].copy_(
                                    s[key].detach().reshape(-1)[lo - o:hi - o])
                    b.step = max(steps, default=0)
        if "loss_scale" in fc:
            self._scale = fc["loss_scale"]
            self._growth_tracker = fc.get("growth_tracker", 0)
            self.skipped_steps = fc.get("skipped_steps", 0)


class SGD(_FusedOptimizer):
    """torch.optim.SGD (momentum, dampening, weight_decay, nesterov) fused into the allreduce
    (stock program "sgd")."""

    _stock = "sgd"
    _state_keys = {"buf": "momentum_buffer"}

    def __init__(self, params, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False, *,
                 process_group=None, sliced_state=True, loss_scale=None):
        if lr < 0 or momentum < 0 or weight_decay < 0:
            raise ValueError(f"fccl.optim.SGD: invalid lr {lr}, momentum {momentum} or weight_decay {weight_decay}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("fccl.optim.SGD: Nesterov momentum requires a momentum and zero dampening")
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                                      nesterov=nesterov), process_group, sliced_state, loss_scale)

    def _scalars(self, group, b):
        # torch.optim.SGD: the first step's buffer is the gradient itself (no dampening), and
        # without momentum there is no buffer (buf = g, d = g: dampening must be 0).
        momentum = group["momentum"]
        dampening = 0.0 if b.step == 1 or momentum == 0 else group["dampening"]
        return dict(lr=group["lr"], momentum=momentum, dampening=dampening, weight_decay=group["weight_decay"],
                    nesterov=1.0 if group["nesterov"] else 0.0)


class Adam(_FusedOptimizer):
    """torch.optim.Adam (no weight decay, no amsgrad) fused into the allreduce (stock "adam")."""

    _stock = "adam"
    _state_keys = {"m": "exp_avg", "v": "exp_avg_sq"}

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False, *,
                 process_group=None, sliced_state=True, loss_scale=None):
        if weight_decay != 0 or amsgrad:
            raise ValueError("fccl.optim.Adam: weight_decay (L2) and amsgrad are not supported; "
                             "fccl.optim.AdamW has decoupled weight decay")
        _check_adam_args("Adam", lr, betas, eps)
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=0.0, amsgrad=False),
                         process_group, sliced_state, loss_scale)

    def _scalars(self, group, b):
        beta1, beta2 = group["betas"]
        return dict(lr=group["lr"], beta1=beta1, beta2=beta2, eps=group["eps"], step=b.step)


class AdamW(_FusedOptimizer):
    """torch.optim.AdamW fused into the allreduce (stock "adamw")."""

    _stock = "adamw"
    _state_keys = {"m": "exp_avg", "v": "exp_avg_sq"}

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, *, process_group=None,
                 sliced_state=True, loss_scale=None):
        _check_adam_args("AdamW", lr, betas, eps)
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay),
                         process_group, sliced_state, loss_scale)

    def _scalars(self, group, b):
        beta1, beta2 = group["betas"]
        return dict(lr=group["lr"], beta1=beta1, beta2=beta2, eps=group["eps"], weight_decay=group["weight_decay"],
                    step=b.step)


class LAMB(AdamW):
    """LAMB (You et al., 2020): AdamW's update scaled by the trust ratio ||w|| / ||update|| of
    each parameter tensor (stock "lamb"; one bucket, so one launch, per parameter)."""

    _stock = "lamb"
    _per_param = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-6, weight_decay=0.0, *, process_group=None,
                 sliced_state=True, loss_scale=None):
        super().__init__(params, lr, betas, eps, weight_decay, process_group=process_group,
                         sliced_state=sliced_state, loss_scale=loss_scale)


def _check_adam_args(name, lr, betas, eps):
    if not lr >= 0 or not eps >= 0 or not (0 <= betas[0] < 1 and 0 <= betas[1] < 1):
        raise ValueError(f"fccl.optim.{name}: invalid lr {lr}, betas {betas} or eps {eps}")
