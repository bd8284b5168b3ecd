"""A small MLP trained on synthetic data with the fccl backend and fccl.optim.Adam.

    pip install ./python                                  # once, from the repository root
    torchrun --nproc-per-node 2 examples/train_mlp.py [--steps 200] [--check]

Each rank draws its own batches of a fixed regression task (y = tanh(x A) B plus noise). No
DistributedDataParallel: fccl.optim.Adam.step() averages the local gradients over the ranks and
updates the weights in one fused pass (each rank updates its 1/n slice, then the slices are
gathered), so the replicas stay equal. --check verifies that, and that the loss fell.
"""

import argparse
import os

import torch
import torch.distributed as dist
import torch.nn as nn

import fccl  # registers the "fccl" backend


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--check", action="store_true", help="exit 1 unless the loss fell and replicas agree")
    args = ap.parse_args()

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    dist.init_process_group("fccl")  # env:// from torchrun: RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT
    rank, world = dist.get_rank(), dist.get_world_size()

    task = torch.Generator().manual_seed(1234)  # the same task on every rank
    a, b = torch.randn(32, 64, generator=task) / 32**0.5, torch.randn(64, 8, generator=task) / 8
    torch.manual_seed(0)  # the optimizer also broadcasts rank 0's initial weights
    model = nn.Sequential(nn.Linear(32, 128), nn.GELU(), nn.Linear(128, 128), nn.GELU(), nn.Linear(128, 8))
    opt = fccl.optim.Adam(model.parameters(), lr=args.lr)

    data = torch.Generator().manual_seed(rank)  # different batches on every rank
    first = last = None
    for step in range(args.steps):
        x = torch.randn(args.batch, 32, generator=data)
        y = torch.tanh(x @ a) @ b + 0.01 * torch.randn(args.batch, 8, generator=data)
        opt.zero_grad()
        loss = nn.functional.mse_loss(model(x), y)
        loss.backward()
        opt.step()
        mean = loss.detach().clone()
        dist.all_reduce(mean, op=dist.ReduceOp.AVG)
        first = mean.item() if first is None else first
        last = mean.item()
        if rank == 0 and (step % 50 == 0 or step == args.steps - 1):
            print(f"step {step:4d}  loss {last:.5f}", flush=True)

    weights = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
    spread = weights.clone()
    dist.all_reduce(spread, op=dist.ReduceOp.MAX)
    low = weights.clone()
    dist.all_reduce(low, op=dist.ReduceOp.MIN)
    differ = (spread - low).abs().max().item()
    if rank == 0:
        print(f"{world} ranks, {weights.numel():,} parameters: loss {first:.5f} -> {last:.5f}; "
              f"replicas differ by {differ:g}")
    ok = last < 0.5 * first and differ == 0.0
    dist.destroy_process_group()
    if args.check and not ok:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
