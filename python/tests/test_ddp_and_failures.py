"""DistributedDataParallel over fccl against DDP over gloo (20 steps, within 1e-6), and what a
user sees when a collective fails: init_process_group's timeout reaching the communicator,
mismatched calls, a rank that dies. Failures run in fresh processes (rankpool.spawn), since
they leave their communicator unusable."""

import datetime
import os
import time

import torch
import torch.distributed as dist
import torch.nn as nn

import rankpool


def _model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(32, 64), nn.Tanh(), nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, 4))


def run_ddp(rank, world, steps):
    from torch.nn.parallel import DistributedDataParallel as DDP

    results = []
    for group in (None, rankpool.REF):  # fccl (the default group), then gloo
        model = DDP(_model(), process_group=group, bucket_cap_mb=0.01)  # several buckets
        opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        gen = torch.Generator().manual_seed(100 + rank)
        for _ in range(steps):
            x = torch.randn(16, 32, generator=gen)
            y = torch.randn(16, 4, generator=gen)
            opt.zero_grad()
            nn.functional.mse_loss(model(x), y).backward()
            opt.step()
        results.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
    diff = (results[0] - results[1]).abs().max().item()
    # The replicas must also agree with each other (the first rank's weights everywhere).
    first = results[0].clone()
    dist.broadcast(first, src=0)
    return diff, torch.equal(first, results[0])


def test_ddp_matches_gloo(pool):
    for diff, same_everywhere in pool.run(run_ddp, 20, timeout=180):
        assert diff <= 1e-6, f"DDP over fccl and over gloo differ by {diff}"
        assert same_everywhere


def _init(rank, world, init_file, timeout_s=60):
    import fccl  # noqa: F401

    dist.init_process_group("fccl", init_method=f"file://{init_file}", rank=rank, world_size=world,
                            timeout=datetime.timedelta(seconds=timeout_s))


def timeout_case(rank, world, init_file):
    _init(rank, world, init_file, timeout_s=3)
    if rank == 1:
        time.sleep(8)  # never calls the collective rank 0 waits in
        return None
    t0 = time.monotonic()
    try:
        dist.all_reduce(torch.ones(4))
    except dist.DistBackendError as e:
        return time.monotonic() - t0, str(e)
    raise AssertionError("all_reduce alone did not fail")


def test_timeout_reaches_communicator():
    elapsed, msg = rankpool.spawn(timeout_case, 2, timeout=60)[0]
    assert 2.0 <= elapsed < 8.0, f"failed after {elapsed:.1f} s with a 3 s timeout: {msg}"
    assert "fccl allreduce failed on rank 0" in msg and "timed out" in msg, msg


def mismatch_case(rank, world, init_file):
    _init(rank, world, init_file, timeout_s=30)
    try:
        dist.all_reduce(torch.ones(8 if rank == 0 else 16))
    except dist.DistBackendError as e:
        return str(e)
    raise AssertionError("mismatched all_reduce did not fail")


def test_mismatched_calls_name_both():
    for msg in rankpool.spawn(mismatch_case, 2, timeout=60):
        assert "count 8" in msg and "count 16" in msg, msg


def dead_peer_case(rank, world, init_file):
    _init(rank, world, init_file, timeout_s=30)
    dist.all_reduce(torch.ones(4))  # everyone is up
    if rank == 1:
        os._exit(3)
    t0 = time.monotonic()
    try:
        dist.all_reduce(torch.ones(1 << 20))
    except dist.DistBackendError as e:
        return time.monotonic() - t0, str(e)
    raise AssertionError("all_reduce with a dead peer did not fail")


def test_dead_peer_is_named():
    elapsed, msg = rankpool.spawn(dead_peer_case, 2, timeout=60, may_exit={1})[0]
    assert elapsed < 10.0, f"took {elapsed:.1f} s to notice: {msg}"
    assert "rank 1" in msg and "exited" in msg, msg


def tcp_init_case(rank, world, init_file, port):
    import fccl  # noqa: F401

    dist.init_process_group("fccl", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world,
                            timeout=datetime.timedelta(seconds=30))
    t = torch.full((3,), float(rank + 1))
    dist.all_reduce(t)
    sub = dist.new_group(backend="fccl")
    u = torch.ones(2)
    dist.all_reduce(u, group=sub)
    dist.destroy_process_group()
    return t.tolist(), u.tolist()


def test_tcp_init_and_new_group():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    for t, u in rankpool.spawn(tcp_init_case, 2, port, timeout=90):
        assert t == [3.0, 3.0, 3.0] and u == [2.0, 2.0], (t, u)
