"""How many threads the dense and compiled work uses: the engine's thread policy.

Why a policy at all: an OpenBLAS worker does not sleep when a parallel call ends; it
busy-waits, without yielding the core, for about 2²⁸ cycles (~0.1 s) in case more work
comes. A process usually holds three OpenBLAS copies — numpy's, scipy's and the system one
behind CHOLMOD — each with its own workers, next to the compiled kernels' OpenMP team.
When a call in one copy leaves a worker spinning and the next parallel call is in another
copy, the two compete for the cores: on two cores, a two-thread ``dpotrf`` loses one of
its threads for whole scheduler slices at each of its internal barriers, and an
evaluation takes 5–15× its time. Any other process running on the machine does the same.

So, during a fit (`fit_threads`, entered once by the fit and re-entered by each
evaluation without changing anything):

* the dense work of an evaluation goes through one BLAS, scipy's (`dense_library`,
  the library behind ``scipy.linalg.lapack``), with `dense_blas_threads` threads —
  one for small orders, else the idle cores (`idle_core_limit`);
* every other BLAS library is held at one thread, so a stray call there never leaves a
  spinning worker behind;
* the count is set when the fit starts (the load looked at afresh, `look_again`) and
  changes only when the machine's load does (checked at most every few seconds), never
  between calls.

The compiled kernels' OpenMP threads sleep when idle instead of spinning
(``OMP_WAIT_POLICY=PASSIVE``), and OpenBLAS workers sleep within a millisecond of a call
(``OPENBLAS_THREAD_TIMEOUT``); both are set when the package is imported
(`sparselme.runtime`). Only then do the kernels run on two threads beside a two-thread
dense factorization: a spinning BLAS worker would hold the second core.
"""

from __future__ import annotations

import math
import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext

from threadpoolctl import ThreadpoolController

from ..runtime import blas_sleeps_promptly

__all__ = [
    "blas_threads",
    "fit_threads",
    "dense_library",
    "available_cores",
    "idle_core_limit",
    "look_again",
    "dense_blas_threads",
    "kernel_threads",
    "SINGLE_THREAD_MAX",
    "KERNEL_PARALLEL_MIN_PAIRS",
    "KERNEL_BESIDE_SPINNING_MIN_PAIRS",
]

# Dense factorizations up to this order run on one thread: a second one does not pay.
SINGLE_THREAD_MAX = 1000
# The Schur kernels use more threads above this many multiply-adds (~1 ms on one core) ...
KERNEL_PARALLEL_MIN_PAIRS = 250_000
# ... or, where the dense library's workers may still be spinning, above this many (~20 ms).
KERNEL_BESIDE_SPINNING_MIN_PAIRS = 20_000_000

_IDLE_CHECK = {"at": -1e9, "limit": None, "cores": None}
_LOCK = threading.RLock()
_STATE: dict = {"controller": None, "modules": -1, "dense": None, "active": None}


def _controller() -> ThreadpoolController:
    """The BLAS/OpenMP libraries: those loaded with scipy's LAPACK and CHOLMOD (imported
    here first, so that the latter's BLAS is among them), looked up again after any
    import (which may load another BLAS)."""
    if _STATE["controller"] is None or _STATE["modules"] != len(sys.modules):
        import scipy.linalg.lapack  # noqa: F401
        from sksparse import cholmod  # noqa: F401

        _STATE["controller"] = ThreadpoolController()
        _STATE["modules"] = len(sys.modules)
    return _STATE["controller"]


def blas_threads(limit: int | None) -> AbstractContextManager:
    """Context limiting every BLAS library to ``limit`` threads (a no-op for None)."""
    if limit is None:
        return nullcontext()
    return _controller().limit(limits=limit, user_api="blas")


# ---- which library does the dense work ---------------------------------------------------
def _needed_libraries(path: str) -> list[str]:
    """The DT_NEEDED names of a 64-bit little-endian ELF shared object ([] otherwise)."""
    with open(path, "rb") as fh:
        data = fh.read()
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        return []

    def word(at: int, size: int) -> int:
        return int.from_bytes(data[at : at + size], "little")

    phoff, phsize, phnum = word(32, 8), word(54, 2), word(56, 2)
    loads, dynamic = [], None
    for i in range(phnum):
        at = phoff + i * phsize
        kind, offset, vaddr, size = word(at, 4), word(at + 8, 8), word(at + 16, 8), word(at + 32, 8)
        if kind == 1:  # PT_LOAD: maps file offsets to addresses
            loads.append((vaddr, offset, size))
        elif kind == 2:  # PT_DYNAMIC
            dynamic = (offset, size)
    if dynamic is None:
        return []
    needed, strtab = [], None
    for at in range(dynamic[0], dynamic[0] + dynamic[1], 16):
        tag, value = word(at, 8), word(at + 8, 8)
        if tag == 1:  # DT_NEEDED: an offset into the string table
            needed.append(value)
        elif tag == 5:  # DT_STRTAB: its address
            strtab = next((value - v + o for v, o, s in loads if v <= value < v + s), None)
        elif tag == 0:
            break
    if strtab is None:
        return []
    return [data[strtab + n : data.index(b"\0", strtab + n)].decode() for n in needed]


def dense_library() -> str | None:
    """File of the BLAS library behind ``scipy.linalg.lapack`` as threadpoolctl lists it;
    None where it cannot be told apart (then every BLAS library is treated as one)."""
    if _STATE["dense"] is None:
        found = ""
        try:
            from scipy.linalg import _flapack

            needed = set(_needed_libraries(_flapack.__file__))
            paths = [lib.filepath for lib in _controller().select(user_api="blas").lib_controllers]
            matches = [p for p in paths if os.path.basename(p) in needed]
            found = matches[0] if len(matches) == 1 else ""
        except (ImportError, OSError, ValueError, IndexError):
            pass
        _STATE["dense"] = found
    return _STATE["dense"] or None


# ---- thread counts ------------------------------------------------------------------------
def _cgroup_cpus(root: str = "/sys/fs/cgroup") -> float | None:
    """CPUs this process may use by its cgroup's quota (v2 cpu.max or v1 cfs), or None."""
    try:
        with open(f"{root}/cpu.max") as fh:
            quota, period = fh.read().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        with open(f"{root}/cpu/cpu.cfs_quota_us") as fh:
            quota = int(fh.read())
        with open(f"{root}/cpu/cpu.cfs_period_us") as fh:
            period = int(fh.read())
        return None if quota <= 0 else quota / period
    except (OSError, ValueError):
        return None


def available_cores() -> int:
    """Cores this process may run on: its CPU affinity, capped by a cgroup CPU quota (read
    afresh; `idle_core_limit` keeps the count of its last look)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    quota = _cgroup_cpus()
    if quota is not None:
        cores = min(cores, max(1, math.floor(quota)))
    return max(1, cores)


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


def look_again() -> None:
    """Forget the last look at the machine's load: a fit starting now checks afresh."""
    _IDLE_CHECK["at"] = -1e9


def idle_core_limit(max_age: float = 5.0) -> int | None:
    """BLAS thread limit for dense work: None (all cores) when no other task competes,
    else the number of idle cores (at least 1). Checked at most every ``max_age`` seconds;
    without /proc, from the 1-minute load average."""
    now = time.monotonic()
    if now - _IDLE_CHECK["at"] < max_age:
        return _IDLE_CHECK["limit"]
    cores = available_cores()
    samples = []
    for _ in range(3):  # the least of three snapshots: a passing task does not count
        samples.append(_runnable_elsewhere())
        time.sleep(0.0005)
    if None in samples:
        others = round(os.getloadavg()[0])
    else:
        others = min(samples)
    free = cores - others
    limit = None if free >= cores else max(1, free)
    _IDLE_CHECK.update(at=now, limit=limit, cores=cores)
    return limit


def dense_blas_threads(order: int) -> int | None:
    """BLAS threads for a dense factorization of this order: 1 when small, else idle cores
    (None: all of them)."""
    if order <= SINGLE_THREAD_MAX:
        return 1
    return idle_core_limit()


def kernel_threads(pairs: int, blas_limit: int | None) -> int:
    """Threads for the compiled kernels: one for small work, else as many as BLAS gets
    (all cores: as counted at the last look at the load, not re-read per evaluation)."""
    if pairs <= KERNEL_PARALLEL_MIN_PAIRS:
        return 1
    if pairs <= KERNEL_BESIDE_SPINNING_MIN_PAIRS and not blas_sleeps_promptly(dense_library()):
        return 1
    return blas_limit or _IDLE_CHECK["cores"] or available_cores()


# ---- the setting during a fit --------------------------------------------------------------
def _apply(dense: int) -> None:
    """The dense library at ``dense`` threads, every other BLAS library at one."""
    target = dense_library()
    for lib in _controller().select(user_api="blas").lib_controllers:
        want = dense if target is None or lib.filepath == target else 1
        if lib.num_threads != want:
            lib.set_num_threads(want)


@contextmanager
def fit_threads(limit: int | None) -> Iterator[None]:
    """Thread setting for a fit: the dense library at ``limit`` threads (None: all
    available cores) but never more than it had (a limit the user set, by
    ``OPENBLAS_NUM_THREADS`` or threadpoolctl, holds), the others at one (see the module
    docstring).

    Entered again while active (each evaluation does), it changes the setting only when
    ``limit`` differs, and keeps it until the outermost context exits: no switching back
    and forth between calls.
    """
    with _LOCK:
        outer = _STATE["active"] is None
        if outer:
            libs = _controller().select(user_api="blas").lib_controllers
            saved = [(lib, lib.num_threads) for lib in libs]
            target = dense_library()
            cap = min((n for lib, n in saved if target in (None, lib.filepath)), default=1)
            _STATE["active"] = {"dense": None, "saved": saved, "cap": max(1, cap)}
        dense = min(limit or available_cores(), _STATE["active"]["cap"])
        if _STATE["active"]["dense"] != dense:
            _apply(dense)
            _STATE["active"]["dense"] = dense
    try:
        yield
    finally:
        if outer:
            with _LOCK:
                for lib, n in _STATE["active"]["saved"]:
                    if lib.num_threads != n:
                        lib.set_num_threads(n)
                _STATE["active"] = None
