"""fccl for PyTorch.

``import fccl`` registers the torch.distributed backend "fccl" (CPU tensors), so that
``torch.distributed.init_process_group("fccl")`` runs its collectives through fccl. Also:
``fccl.optim`` (SGD, Adam, AdamW, LAMB fused into the gradient allreduce) and ``fccl.Program``
(fused programs written in fccl's IR).
"""

import torch  # noqa: F401  (loads libtorch before the extension)
import torch.distributed  # noqa: F401

from . import _C
from ._backend import register as _register

_register()

from . import optim  # noqa: E402
from .program import Program, ProgramError  # noqa: E402

__version__ = "0.1.0"


def fccl_version() -> str:
    """The version of the libfccl this package runs, as "major.minor.patch"."""
    v = _C.fccl_version()
    return f"{v // 10000}.{v // 100 % 100}.{v % 100}"
