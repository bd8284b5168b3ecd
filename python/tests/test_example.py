"""examples/train_mlp.py as a user runs it: torchrun, 2 processes, env:// init (--check: the loss
fell and the replicas agree bit for bit)."""

import os
import subprocess
import sys

EXAMPLE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "examples", "train_mlp.py")


def test_train_mlp_under_torchrun():
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", EXAMPLE,
           "--steps", "100", "--check"]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "replicas differ by 0" in r.stdout, r.stdout


def test_backend_found_without_import():
    """init_process_group("fccl") in a process that never imports fccl: torch finds the backend
    through the package's entry point (an installed package only)."""
    from importlib.metadata import entry_points

    import pytest

    if not any(e.name == "fccl" for e in entry_points(group="torch.distributed.backends")):
        pytest.skip("fccl is not installed (no torch.distributed.backends entry point)")
    code = ("import sys, tempfile, torch, torch.distributed as dist\n"
            "dist.init_process_group('fccl', init_method='file://' + tempfile.mktemp(), rank=0, world_size=1)\n"
            "t = torch.ones(3); dist.all_reduce(t)\n"
            "print(dist.get_backend(), t.tolist())\n"
            "dist.destroy_process_group()\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd="/")
    assert r.returncode == 0 and r.stdout.strip() == "fccl [1.0, 1.0, 1.0]", r.stdout + r.stderr
