"""Fixtures: a RankPool (rankpool.py) per world size, started on first use and restarted when a
test left it dead (a missed deadline kills it)."""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from rankpool import RankPool  # noqa: E402

_pools = {}


def _pool(world):
    p = _pools.get(world)
    if p is None or not p.alive():
        if p is not None:
            p.kill()
        p = _pools[world] = RankPool(world)
    return p


@pytest.fixture
def pool2():
    return _pool(2)


@pytest.fixture
def pool3():
    return _pool(3)


@pytest.fixture(params=[2, 3], ids=["2ranks", "3ranks"])
def pool(request):
    return _pool(request.param)


def pytest_sessionfinish(session, exitstatus):
    for p in _pools.values():
        p.close()
