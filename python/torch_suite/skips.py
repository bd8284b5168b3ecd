"""Tests of PyTorch's distributed suite that fccl skips, each with the reason. (Tests the suite
skips by itself - GPU-only, another backend's feature, world size - are not listed: pytest's
-rs summary gives their reasons.)"""

_ANY_SOURCE = ("fccl matches a receive with the send of a named peer, as NCCL does (Backend.recvAnysource "
               "is not implemented; the suite skips these for nccl, ucc and xccl)")

SKIPS = {
    "test_send_recv_any_source": _ANY_SOURCE,
    "test_send_recv_any_source_autograd_profiler": _ANY_SOURCE,
    "test_send_recv_any_source_torch_profiler": _ANY_SOURCE,
    "test_ddp_logging_data_cpu": "DDP's logger names every plugin backend 'custom' (c10d's ProcessGroup type), "
                                 "and the test expects the backend's own name 'fccl'",
}
