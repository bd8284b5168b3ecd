"""RankPool: N processes that joined one torch.distributed world, running test functions on
request. Starting processes (importing torch, joining the group) costs seconds, so a pool is
started once per world size and every test sends it work; each request is bounded in time, and
a pool that missed a deadline is killed and restarted, so a hang fails one test, not the suite.

In each rank the default group runs fccl and ``REF`` (a module global) is a gloo group over
the same ranks, the reference the tests compare with. Test functions are module-level
functions ``fn(rank, world, *args)`` of modules importable from this directory; what a
function returns comes back per rank; an exception on any rank fails the request with every
failing rank's traceback.
"""

from __future__ import annotations

import datetime
import importlib
import multiprocessing as mp
import os
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))

REF = None  # in a rank: the gloo group over the world


class RankFailure(AssertionError):
    pass


def _serve(rank, world, init_file, conn):
    global REF
    sys.path.insert(0, HERE)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch
    import torch.distributed as dist

    torch.set_num_threads(1)
    try:
        import fccl  # noqa: F401  (registers the backend)

        dist.init_process_group(
            "fccl", init_method=f"file://{init_file}", rank=rank, world_size=world,
            timeout=datetime.timedelta(seconds=60),
        )
        REF = dist.new_group(backend="gloo")
        conn.send(("ready", None))
    except BaseException:
        conn.send(("error", traceback.format_exc()))
        return
    while True:
        msg = conn.recv()
        if msg is None:
            break
        module, name, args = msg
        try:
            fn = getattr(importlib.import_module(module), name)
            conn.send(("ok", fn(rank, world, *args)))
        except BaseException:
            conn.send(("error", traceback.format_exc()))
    dist.destroy_process_group()


class RankPool:
    def __init__(self, world: int, start_timeout: float = 120.0):
        self.world = world
        self._dir = tempfile.mkdtemp(prefix="fccl-pytest-")
        init_file = os.path.join(self._dir, "store")
        ctx = mp.get_context("spawn")
        self._conns, self._procs = [], []
        for r in range(world):
            parent, child = ctx.Pipe()
            p = ctx.Process(target=_serve, args=(r, world, init_file, child), daemon=True)
            p.start()
            child.close()  # the rank's end: closed here, so a rank that dies reads as EOF
            self._conns.append(parent)
            self._procs.append(p)
        self._collect("start", start_timeout)

    def _collect(self, what, timeout):
        deadline = time.monotonic() + timeout
        results, errors = [], []
        for r, c in enumerate(self._conns):
            if not c.poll(max(0.0, deadline - time.monotonic())):
                self.kill()
                raise RankFailure(f"{what}: rank {r} did not answer within {timeout:.0f} s (pool killed)")
            try:
                status, value = c.recv()
            except EOFError:
                self.kill()
                raise RankFailure(f"{what}: rank {r} exited (code {self._procs[r].exitcode})") from None
            if status == "error":
                errors.append(f"--- rank {r}:\n{value}")
            results.append(value)
        if errors:
            raise RankFailure(f"{what} failed:\n" + "\n".join(errors))
        return results

    def run(self, fn, *args, timeout: float = 60.0):
        """Runs fn(rank, world, *args) on every rank; returns the per-rank results."""
        msg = (fn.__module__, fn.__name__, args)
        for c in self._conns:
            c.send(msg)
        return self._collect(fn.__name__, timeout)

    def alive(self) -> bool:
        return all(p.is_alive() for p in self._procs)

    def kill(self):
        for p in self._procs:
            if p.is_alive():
                p.kill()
        for p in self._procs:
            p.join(5)

    def close(self):
        for c, p in zip(self._conns, self._procs):
            if p.is_alive():
                try:
                    c.send(None)
                except OSError:
                    pass
        for p in self._procs:
            p.join(20)
        self.kill()


def spawn(fn, world: int, *args, timeout: float = 90.0, may_exit=()):
    """Runs fn(rank, world, init_file, *args) in `world` fresh processes (for tests that break
    their communicator or need their own init); returns the per-rank results (None for a rank
    in may_exit that exited without answering)."""
    d = tempfile.mkdtemp(prefix="fccl-pytest-")
    ctx = mp.get_context("spawn")
    conns, procs = [], []
    for r in range(world):
        parent, child = ctx.Pipe()
        p = ctx.Process(target=_spawned, args=(fn.__module__, fn.__name__, r, world, d, args, child), daemon=True)
        p.start()
        child.close()
        conns.append(parent)
        procs.append(p)
    deadline = time.monotonic() + timeout
    results, errors = [], []
    try:
        for r, c in enumerate(conns):
            if not c.poll(max(0.0, deadline - time.monotonic())):
                raise RankFailure(f"{fn.__name__}: rank {r} did not finish within {timeout:.0f} s")
            try:
                status, value = c.recv()
            except EOFError:
                procs[r].join(5)
                if r in may_exit:
                    results.append(None)
                    continue
                raise RankFailure(f"{fn.__name__}: rank {r} exited (code {procs[r].exitcode})") from None
            if status == "error":
                errors.append(f"--- rank {r}:\n{value}")
            results.append(value)
    finally:
        for p in procs:
            p.join(max(0.0, min(10.0, deadline - time.monotonic())))
            if p.is_alive():
                p.kill()
                p.join(5)
    if errors:
        raise RankFailure(f"{fn.__name__} failed:\n" + "\n".join(errors))
    return results


def _spawned(module, name, rank, world, d, args, conn):
    sys.path.insert(0, HERE)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    try:
        import torch

        torch.set_num_threads(1)
        fn = getattr(importlib.import_module(module), name)
        conn.send(("ok", fn(rank, world, os.path.join(d, "store"), *args)))
    except BaseException:
        conn.send(("error", traceback.format_exc()))
