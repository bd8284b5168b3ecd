"""PyTorch's own distributed test suite (torch.testing._internal.distributed.distributed_test)
run on the fccl backend, the way out-of-tree backends reuse it: fccl is marked a plugin backend
(and one with DDP and subgroup support, so those tests run too), DistributedTest._DistTestBase
is mixed into TestDistBackend with real processes (spawn), and each test fccl skips is listed
in SKIPS with the reason. CPU tensors; tests that need GPUs skip themselves.

    bash python/torch_suite/run.sh [pytest args]     (WORLD_SIZE=2 by default)
"""

import os
import sys
import tempfile
import unittest

os.environ.setdefault("BACKEND", "fccl")
os.environ.setdefault("WORLD_SIZE", "2")
os.environ.setdefault("TEMP_DIR", tempfile.mkdtemp(prefix="fccl-torch-suite-"))

import torch  # noqa: E402

import fccl  # noqa: E402,F401  (registers the backend)
from torch.testing._internal.common_distributed import DistTestCases  # noqa: E402

for feature in ("plugin", "ddp", "subgroup"):
    DistTestCases.backend_feature[feature].add("fccl")

from torch.testing._internal.distributed.distributed_test import DistributedTest, TestDistBackend  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from skips import SKIPS  # noqa: E402


class TestFcclWithSpawn(TestDistBackend, DistributedTest._DistTestBase):
    def setUp(self):
        super().setUp()
        self._spawn_processes()


for _name, _reason in SKIPS.items():
    if hasattr(TestFcclWithSpawn, _name):
        setattr(TestFcclWithSpawn, _name, unittest.skip(f"fccl: {_reason}")(getattr(TestFcclWithSpawn, _name)))

if __name__ == "__main__":
    from torch.testing._internal.common_utils import run_tests

    run_tests()
