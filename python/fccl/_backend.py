"""The torch.distributed backend "fccl": registration and access to a group's FcclBackend.

register() is what ``import fccl`` and torch's entry point (group "torch.distributed.backends")
call. The backend runs CPU tensors; a CUDA build of fccl adds "cuda" to DEVICES.
"""

from __future__ import annotations

import datetime

import torch
import torch.distributed as dist

from . import _C

NAME = "fccl"
DEVICES = ["cpu"]


def _create(dist_opts, backend_options):
    """c10d's extended-API constructor: one FcclBackend per process group."""
    timeout = dist_opts.timeout
    if not isinstance(timeout, datetime.timedelta):
        timeout = datetime.timedelta(seconds=float(timeout))
    return _C.create_backend(
        dist_opts.store, dist_opts.group_rank, dist_opts.group_size, timeout, str(dist_opts.group_id)
    )


def register() -> None:
    """Registers "fccl" with torch.distributed (idempotent)."""
    if NAME.upper() in dist.Backend._plugins:
        return
    dist.Backend.register_backend(NAME, _create, extended_api=True, devices=DEVICES)


def backend_of(group=None):
    """The fccl c10d Backend object of a process group (default: the world), for fccl.Program
    and fccl.optim. Raises TypeError when the group does not run fccl for CPU tensors."""
    if group is None:
        group = dist.distributed_c10d._get_default_group()
    try:
        backend = group._get_backend(torch.device("cpu"))
    except RuntimeError as e:
        raise TypeError(f"fccl: the process group has no backend for CPU tensors ({e})") from None
    if not _C.is_fccl_backend(backend):
        raise TypeError(
            f"fccl: the process group runs {group.name()!r} for CPU tensors, not fccl "
            '(init_process_group("fccl") or new_group(backend="fccl"))'
        )
    return backend
