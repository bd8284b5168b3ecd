"""fccl.Program: a fused program in fccl's IR, from Python.

    p = fccl.Program(text, name="my.fccl").compile(group)        # or fccl.Program.stock("adam")
    results = p.launch(tensors={"g": g, "w": w, "m": m_slice, "v": v_slice},
                       scalars={"lr": 1e-3, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "step": 1})

A program the parser or checker rejects raises ProgramError (a ValueError) whose message is
fccl's diagnostics, one ``file:line:col: message`` per line; so does a compile the layouts
cannot satisfy. Launch arguments are checked here against the program's declarations (every
tensor and scalar input bound once, dtypes as declared) before anything runs. A launch runs on
the group's executor, in order with its collectives; launch() waits unless async_op=True (then
it returns the c10d Work: wait() on it before reading the tensors).

Sliced tensors are bound with this rank's slice only (``slice_range``); their logical element
count is taken from a non-sliced tensor of the same shape, or given in ``counts``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Dict, List, Optional

import torch

from . import _C
from ._backend import backend_of

ProgramError = _C.ProgramError

DTYPES = {
    "f64": torch.float64,
    "f32": torch.float32,
    "f16": torch.float16,
    "bf16": torch.bfloat16,
    "i32": torch.int32,
    "i64": torch.int64,
    "bool": torch.bool,
}

# One declaration as fcclProgramDump("parse") prints it: "  in g : f32[N] local",
# "  inout scale : f32 replicated", "  scalar lr : f32".
_DECL = re.compile(r"^\s+(in|out|inout|scalar)\s+(\w+)\s*:\s*(\w+)(?:\[([^\]]*)\])?\s*(\w+)?\s*$")


@dataclass
class Decl:
    kind: str  # in, out, inout, scalar
    name: str
    dtype: str
    dims: Optional[List[str]]  # None: a scalar value
    layout: Optional[str]

    @property
    def is_tensor(self) -> bool:
        return self.kind != "scalar" and self.dims is not None

    @property
    def is_scalar_input(self) -> bool:
        return self.kind == "scalar" or (self.dims is None and self.kind == "inout")

    @property
    def is_scalar_result(self) -> bool:
        return self.dims is None and self.kind in ("out", "inout")


def _declarations(parsed: str) -> List[Decl]:
    decls = []
    for line in parsed.splitlines():
        m = _DECL.match(line)
        if m:
            kind, name, dtype, dims, layout = m.groups()
            decls.append(Decl(kind, name, dtype, [d.strip() for d in dims.split(",")] if dims else None, layout))
    return decls


class Program:
    """A fused program: created from IR text, compiled for a process group running fccl."""

    def __init__(self, text: str, name: str = "<string>"):
        self._p = _C.Program(text, name)
        self.name = name
        self.decls = _declarations(self._p.dump("parse"))
        self._group = None

    @classmethod
    def stock(cls, name: str) -> "Program":
        """A stock program by name ("adam", "sgd", ...: fcclProgramGetStock)."""
        return cls(_C.stock_program(name), f"{name}.fccl")

    def compile(self, group=None, schedule: Optional[str] = None) -> "Program":
        """Compiles for `group` (default: the world), which must run fccl for CPU tensors.
        schedule: None for the default pipeline, "none", or a comma list of passes."""
        self._p.compile(backend_of(group), schedule or "")
        self._group = group
        return self

    @property
    def compiled(self) -> bool:
        return self._p.compiled

    def dump(self, stage: str = "schedule") -> str:
        """The IR after `stage` ("parse", "check", a pass name, or "schedule")."""
        return self._p.dump(stage)

    def slice_range(self, count: int, rank: Optional[int] = None):
        """[begin, end) of a sliced tensor of `count` elements that `rank` (default: this rank)
        owns in the compiled group."""
        import torch.distributed as dist

        if rank is None:
            rank = dist.get_rank(self._group)
        return _C.slice_range(backend_of(self._group), rank, count)

    def launch(self, tensors: Dict[str, torch.Tensor], scalars: Optional[Dict[str, float]] = None,
               counts: Optional[Dict[str, int]] = None, async_op: bool = False):
        """Runs the program on this rank (every rank of the group calls it). Returns the scalar
        results (`out` and `inout` scalars) as {name: float}, or the Work when async_op."""
        if not self._p.compiled:
            raise RuntimeError(f"fccl.Program {self.name}: compile() it for a process group before launch()")
        scalars = dict(scalars or {})
        counts = dict(counts or {})
        known = {d.name: d for d in self.decls}
        for n in list(tensors) + list(scalars):
            if n not in known:
                raise ValueError(f"fccl.Program {self.name}: no declaration named {n!r} "
                                 f"(declared: {', '.join(known)})")
        names, ts, cs, snames, svalues = [], [], [], [], []
        symbols: Dict[str, int] = {}
        tensor_decls = [d for d in self.decls if d.is_tensor]
        for d in tensor_decls:
            if d.name not in tensors:
                raise ValueError(f"fccl.Program {self.name}: tensor {d.name!r} ({d.kind} {d.dtype}"
                                 f"[{', '.join(d.dims)}] {d.layout}) is not bound")
            t = tensors[d.name]
            if not isinstance(t, torch.Tensor):
                raise TypeError(f"fccl.Program {self.name}: {d.name!r} must be a tensor, got {type(t).__name__}")
            want = DTYPES.get(d.dtype)
            if t.dtype != want:
                raise TypeError(f"fccl.Program {self.name}: tensor {d.name!r} is declared {d.dtype}, "
                                f"got {t.dtype}")
            if d.layout != "sliced" and len(d.dims) == 1 and not d.dims[0].isdigit():
                symbols.setdefault(d.dims[0], t.numel())
        for d in tensor_decls:
            t = tensors[d.name]
            if d.name in counts:
                n = int(counts[d.name])
            elif d.layout != "sliced":
                n = t.numel()
            else:
                try:
                    n = math.prod(int(x) if x.isdigit() else symbols[x] for x in d.dims)
                except KeyError:
                    raise ValueError(f"fccl.Program {self.name}: the logical size of sliced tensor {d.name!r} "
                                     f"is unknown; pass counts={{{d.name!r}: N}}") from None
            names.append(d.name)
            ts.append(t.detach())
            cs.append(n)
        for d in self.decls:
            if d.is_scalar_input:
                if d.name not in scalars:
                    raise ValueError(f"fccl.Program {self.name}: scalar {d.name!r} ({d.dtype}) is not bound")
                snames.append(d.name)
                svalues.append(float(scalars[d.name]))
        result_names = [d.name for d in self.decls if d.is_scalar_result]
        results = torch.zeros(len(result_names), dtype=torch.float64)
        work = self._p.launch(names, ts, cs, snames, svalues, results)
        if async_op:
            return work
        work.wait()
        return {n: results[i].item() for i, n in enumerate(result_names)}
