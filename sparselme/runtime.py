"""Process-wide settings made when sparselme is imported, before the libraries they concern
load: each library reads its setting once, when it loads. A value the user set wins.

* ``OMP_WAIT_POLICY=PASSIVE``: idle OpenMP threads (the compiled kernels', CHOLMOD's) sleep
  instead of spinning beside the BLAS threads.
* ``OPENBLAS_THREAD_TIMEOUT=21``: an OpenBLAS worker spins for 2²¹ cycles (under a
  millisecond) after a call before it sleeps; OpenBLAS's default is 2²⁸ (~0.1 s). That is
  long enough to stay awake through one factorization's internal steps and short enough
  that the compiled kernels of the next evaluation find the cores free.

`PRELOADED_BLAS` records which OpenBLAS libraries were already loaded then (the timeout
does not reach them); `blas_sleeps_promptly` tells whether one loaded under it.
"""

from __future__ import annotations

import functools
import os

__all__ = ["BLAS_THREAD_TIMEOUT", "PRELOADED_BLAS", "blas_sleeps_promptly"]

BLAS_THREAD_TIMEOUT = 21


def _mapped_libraries(fragment: str) -> frozenset[str] | None:
    """Files mapped into this process whose path contains ``fragment``; None without /proc."""
    try:
        with open("/proc/self/maps") as fh:
            return frozenset(
                os.path.realpath(line.split(maxsplit=5)[5].strip())
                for line in fh
                if fragment in line and line.count(" ") >= 5
            )
    except (OSError, IndexError):
        return None


@functools.lru_cache(maxsize=8)
def _real(path: str) -> str:
    return os.path.realpath(path)


os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", str(BLAS_THREAD_TIMEOUT))
PRELOADED_BLAS = _mapped_libraries("openblas")


def blas_sleeps_promptly(path: str | None) -> bool:
    """Whether the OpenBLAS library file ``path`` loaded after these settings, with a
    worker timeout of at most 2^BLAS_THREAD_TIMEOUT cycles (False where unknown)."""
    if path is None or PRELOADED_BLAS is None or _real(path) in PRELOADED_BLAS:
        return False
    try:
        return int(os.environ.get("OPENBLAS_THREAD_TIMEOUT", "")) <= BLAS_THREAD_TIMEOUT
    except ValueError:
        return False
