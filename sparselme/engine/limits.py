"""What an exact fit will cost, known before the first factorization.

* Block path (`.cholesky.BlockCholesky`): the dense Schur complement of order
  m = q₂ + p + 1 takes 8m² bytes and ~m³/3 flops per evaluation (LAPACK dpotrf).
* Sparse path (`.cholesky.SparseCholesky`): CHOLMOD's symbolic analysis fixes the
  elimination order; the factor's column counts c_j in that order (computed from A's
  pattern in O(nnz(A)), `sparselme.engine._gram.cholesky_column_counts`) give its
  entries Σ c_j and ~Σ c_j² flops per evaluation. CHOLMOD's supernodal factor stores each
  supernode's whole diagonal block (up to twice the entries where the factor fills in)
  and factors with an update workspace beside it: the numeric factorization's peak was
  2.8–3.7 × 8 bytes per entry on crossed designs of 4–40 MB factors
  (`SUPERNODAL_BYTES_PER_ENTRY`).

CHOLMOD's analysis of a very large crossed pattern can itself take minutes. So where the
Schur complement is too large for LAPACK but a sample of its rows shows that it fills in
anyway (`.cholesky.sampled_schur_fill`), `.cholesky.choose_factorization` checks its dense
cost first and refuses an infeasible fit before CHOLMOD runs. Streamed data are checked
earlier still, between the level pass and the cross-products pass, on the rows of a
sample of the leading term's levels, whose fill is a lower bound
(`sparselme.streaming.passes.refuse_from_subset`): the 30M-row, 200,000 × 80,000-level
crossed benchmark (``python -m benchmarks.moments_scale refuse``) is refused after 9.6 s
(4.0 s level pass, 5.4 s the check on 4.05M rows: 6.12% filled); with the check after
both passes it took 36 s, and CHOLMOD's analysis overflowed (`symbolic_overflow`) only
after 471 s.

Seconds follow from this machine's measured rate of a small dense Cholesky (one thread);
memory is compared with what the system (and a cgroup limit) has available.
`check_feasible` raises `sparselme.errors.ProblemTooLargeError` where the
exact fit would not fit in memory or would take over an hour per evaluation, instead of
swapping or being killed.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.linalg import lapack

from ..errors import ProblemTooLargeError
from . import _gram
from .threads import blas_threads

__all__ = [
    "FitEstimate",
    "dense_estimate",
    "sparse_estimate",
    "check_feasible",
    "is_feasible",
    "symbolic_overflow",
    "available_memory",
    "MAX_SECONDS_PER_EVALUATION",
    "SUPERNODAL_BYTES_PER_ENTRY",
]

# An exact fit whose evaluation would take longer than this is refused.
MAX_SECONDS_PER_EVALUATION = 3600.0
# Peak bytes of CHOLMOD's numeric factorization per entry of the factor (measured; the
# tests check the estimate against measured peaks).
SUPERNODAL_BYTES_PER_ENTRY = 8 * 3.5
_RATE: dict[str, float] = {}


@dataclass(frozen=True)
class FitEstimate:
    """The cost of one exact evaluation, predicted before factoring."""

    path: str  # "dense Schur complement" or "sparse Cholesky (CHOLMOD)"
    order: int  # order of the matrix factored at each evaluation
    entries: float  # entries of its factor
    memory_bytes: float  # bytes the factorization holds
    flops: float  # per evaluation

    @property
    def seconds(self) -> float:
        """Predicted seconds per evaluation at this machine's dense Cholesky rate."""
        return self.flops / flop_rate()

    def describe(self) -> str:
        return (
            f"{self.path} of order {self.order:,}: {self.entries:.3g} factor entries, "
            f"~{_gigabytes(self.memory_bytes)} and ~{self.flops:.2g} flops "
            f"(~{_duration(self.seconds)}) per evaluation"
        )


def flop_rate() -> float:
    """Flops per second of one-thread LAPACK Cholesky here (a 384-order factorization,
    best of three; measured once per process)."""
    if "dense" not in _RATE:
        n = 384
        rng = np.random.default_rng(0)
        M = rng.standard_normal((n, n))
        A = np.asfortranarray(M @ M.T + n * np.eye(n))
        best = math.inf
        with blas_threads(1):
            for _ in range(3):
                B = A.copy(order="F")
                start = time.perf_counter()
                lapack.dpotrf(B, lower=0, overwrite_a=1, clean=0)
                best = min(best, time.perf_counter() - start)
        _RATE["dense"] = n**3 / 3 / max(best, 1e-6)
    return _RATE["dense"]


def dense_estimate(
    q2: int, r: int, other_entries: int = 0, path: str = "dense Schur complement"
) -> FitEstimate:
    """The block path: a dense Schur complement of order q₂ + r (r = p + 1 columns [X y]),
    plus ``other_entries`` doubles beside it (L₂₁, dense where it is held dense)."""
    m = q2 + r
    return FitEstimate(
        path=path,
        order=m,
        entries=m * (m + 1) / 2,
        memory_bytes=8.0 * (m * m + other_entries),
        flops=m**3 / 3.0,
    )


def sparse_estimate(A: sp.csc_matrix, perm: np.ndarray) -> FitEstimate:
    """The sparse path: A's pattern (q, q; lower or both triangles) in CHOLMOD's order."""
    pattern = sp.csc_matrix((np.ones(A.nnz, dtype=np.int8), A.indices, A.indptr), shape=A.shape)
    sym = (pattern + pattern.T).tocsc()
    sym = sym[perm][:, perm].tocsc()
    sym.sort_indices()
    counts = _gram.cholesky_column_counts(sym.indptr.astype(np.int64), sym.indices.astype(np.int32))
    c = counts.astype(float)
    entries = float(c.sum())
    return FitEstimate(
        path="sparse Cholesky (CHOLMOD)",
        order=A.shape[0],
        entries=entries,
        memory_bytes=SUPERNODAL_BYTES_PER_ENTRY * entries,
        flops=float(np.sum(c * c)),
    )


def available_memory() -> float | None:
    """Bytes this process can still allocate: MemAvailable, capped by a cgroup limit."""
    found = []
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    found.append(float(line.split()[1]) * 1024)
    except (OSError, ValueError, IndexError):
        pass
    try:
        with open("/sys/fs/cgroup/memory.max") as fh:
            limit = fh.read().strip()
        if limit != "max":
            with open("/sys/fs/cgroup/memory.current") as fh:
                found.append(float(limit) - float(fh.read()))
    except (OSError, ValueError):
        pass
    return min(found) if found else None


def is_feasible(estimate: FitEstimate, memory: float | None = None) -> bool:
    """Whether `check_feasible` would pass ``estimate``."""
    return not _infeasible(estimate, available_memory() if memory is None else memory)


def _infeasible(estimate: FitEstimate, memory: float | None) -> tuple[bool, ...]:
    """(too big for ``memory`` bytes, too slow), or () where the estimate is feasible."""
    too_big = memory is not None and estimate.memory_bytes > memory
    if not too_big and estimate.flops < 1e12:
        return ()  # well under a minute anywhere: no need to measure the machine
    too_slow = estimate.seconds > MAX_SECONDS_PER_EVALUATION
    return (too_big, too_slow) if too_big or too_slow else ()


def check_feasible(estimate: FitEstimate, memory: float | None = None, note: str = "") -> None:
    """Raise ProblemTooLargeError where the exact fit would not fit in memory or would
    take over MAX_SECONDS_PER_EVALUATION per evaluation. ``memory``: bytes available
    (default `available_memory`); ``note`` ends the message."""
    memory = available_memory() if memory is None else memory
    found = _infeasible(estimate, memory)
    if not found:
        return
    too_big, too_slow = found
    reasons = []
    if too_big:
        need, have = _gigabytes(estimate.memory_bytes), _gigabytes(memory)
        reasons.append(f"needs ~{need} with {have} available")
    if too_slow:
        reasons.append(
            f"would take ~{_duration(estimate.seconds)} per evaluation "
            f"(more than {_duration(MAX_SECONDS_PER_EVALUATION)})"
        )
    raise ProblemTooLargeError(
        f"the exact fit {' and '.join(reasons)}: {estimate.describe()}. Use "
        'estimator="moments" (method-of-moments estimates without factoring), or fewer '
        f"levels in the grouping factors.{' ' + note if note else ''}",
        estimate=estimate,
    )


def symbolic_overflow(order: int, nnz: int, detail: str) -> ProblemTooLargeError:
    """The refusal when CHOLMOD's symbolic analysis itself reports the factor too large
    to index (its entries or flops overflow CHOLMOD's integers: over 2³¹ entries, i.e.
    more than ~17 GB of factor), before any estimate could be formed."""
    return ProblemTooLargeError(
        f"the exact fit's sparse Cholesky factor of order {order:,} ({nnz:,} entries in the "
        f"lower triangle of ZᵀZ) is too large for CHOLMOD to analyse ({detail.strip()}): "
        "more than 2³¹ factor entries, over 17 GB. Use estimator=\"moments\" "
        "(method-of-moments estimates without factoring), or fewer levels in the grouping "
        "factors.",
        estimate=None,
    )


def _gigabytes(n: float) -> str:
    return f"{n / 1e9:.3g} GB"


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.2g} s"
    if seconds < 7200:
        return f"{seconds / 60:.3g} min"
    return f"{seconds / 3600:.3g} h"
