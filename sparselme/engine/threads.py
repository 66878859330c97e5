"""How many threads the dense and compiled work uses: the engine's thread policy.

The factorizations ask this module, and nothing else reads the machine's state:

* `blas_threads`: a context limiting the BLAS threads (threadpoolctl);
* `dense_blas_threads`: the BLAS thread limit for a dense factorization of a given
  order — one thread for small ones, else the idle cores (`idle_core_limit`);
* `kernel_threads`: threads for the compiled Schur-complement kernels.

The compiled kernels' OpenMP threads sleep when idle instead of spinning, so they do not
take a core from the BLAS threads of the factorization that follows: ``OMP_WAIT_POLICY``
is set to ``PASSIVE`` before the OpenMP runtime loads (a value the user set wins).
"""

from __future__ import annotations

import os
import sys
import time
from contextlib import AbstractContextManager, nullcontext

from threadpoolctl import ThreadpoolController

__all__ = [
    "blas_threads",
    "idle_core_limit",
    "dense_blas_threads",
    "kernel_threads",
    "SINGLE_THREAD_MAX",
    "KERNEL_PARALLEL_MIN_PAIRS",
]

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# Below this order a second BLAS thread does not pay, and on a busy machine it can cost
# an order of magnitude (threads spinning at barriers), so dense work stays on one.
SINGLE_THREAD_MAX = 1000
# The Schur kernels use every core above this many multiply-adds (~20 ms on one core).
KERNEL_PARALLEL_MIN_PAIRS = 20_000_000

_BLAS: dict = {"modules": -1, "controller": None}
_IDLE_CHECK = {"at": -1e9, "limit": None}


def blas_threads(limit: int | None) -> AbstractContextManager:
    """Context limiting BLAS threads (a no-op for None); cheap enough to enter per call."""
    return (
        nullcontext() if limit is None else _blas_controller().limit(limits=limit, user_api="blas")
    )


def _blas_controller() -> ThreadpoolController:
    """The loaded thread pools, looked up again after any import (which may load a BLAS)."""
    if _BLAS["modules"] != len(sys.modules):
        _BLAS["controller"] = ThreadpoolController()
        _BLAS["modules"] = len(sys.modules)
    return _BLAS["controller"]


def _runnable_elsewhere(proc: str = "/proc") -> int | None:
    """Tasks running or waiting for a CPU on this machine, not counting our own threads.

    The total comes from ``<proc>/loadavg`` (an instantaneous count, unlike the load
    averages, which also remember this process's own recent work); our threads in state R
    are read from ``<proc>/self/task``. None where /proc is not available.
    """
    try:
        with open(f"{proc}/loadavg") as fh:
            running = int(fh.read().split()[3].split("/")[0])
        own = 0
        for task in os.listdir(f"{proc}/self/task"):
            with open(f"{proc}/self/task/{task}/stat") as fh:
                stat = fh.read()
            own += stat[stat.rindex(")") + 2] == "R"
        return max(0, running - own)
    except (OSError, ValueError, IndexError):
        return None


def idle_core_limit(max_age: float = 5.0) -> int | None:
    """BLAS thread limit for dense work: None (all cores) when no other task competes,
    else the number of idle cores (at least 1). Checked at most every ``max_age`` seconds;
    without /proc, from the 1-minute load average."""
    now = time.monotonic()
    if now - _IDLE_CHECK["at"] < max_age:
        return _IDLE_CHECK["limit"]
    cores = os.cpu_count() or 1
    samples = []
    for _ in range(3):  # the least of three snapshots: a passing task does not count
        samples.append(_runnable_elsewhere())
        time.sleep(0.001)
    if None in samples:
        others = round(os.getloadavg()[0])
    else:
        others = min(samples)
    free = cores - others
    limit = None if free >= cores else max(1, free)
    _IDLE_CHECK.update(at=now, limit=limit)
    return limit


def dense_blas_threads(order: int) -> int | None:
    """BLAS threads for a dense factorization of this order: 1 when small, else idle cores.

    Multi-threaded LAPACK on a loaded machine spins at barriers and can run many times
    slower than on one thread (see `idle_core_limit`).
    """
    if order <= SINGLE_THREAD_MAX:
        return 1
    return idle_core_limit()


def kernel_threads(pairs: int, blas_limit: int | None) -> int:
    """Threads for the compiled kernels: one for small work, else as many as BLAS gets."""
    if pairs <= KERNEL_PARALLEL_MIN_PAIRS:
        return 1
    return blas_limit or (os.cpu_count() or 1)
