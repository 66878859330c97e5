"""sparselme: ``sparselme.lmer(formula, data, REML=...)``, timed around the whole call.

Beside the fit time it records each evaluation's time (from the optimizer's callback: the
time between consecutive calls) and, where the fit factors a dense Schur complement, the
median time of one LAPACK Cholesky (``dpotrf``) of the order factored at each evaluation
(the Schur complement with the [X y] columns appended) measured right after the
fit in the same process, on one BLAS thread and on the default number, the better of the
two: the floor an evaluation is compared with.
"""

from __future__ import annotations

import statistics
import time

import numpy as np
import pandas as pd

from ..problems import Problem
from . import Measurement, recorded_warnings, summarize

LIBRARY = "sparselme"


def skip_reason(problem: Problem, force: bool = False) -> str:
    return ""


def warm_up(problem: Problem, data: pd.DataFrame) -> None:
    """One untimed fit: imports, thread pools and first-use buffers are then in place."""
    import sparselme

    with recorded_warnings():
        sparselme.lmer(problem.formula, data, REML=problem.reml)


def cholesky_seconds(order: int, reps: int = 15, budget_s: float = 3.0) -> float:
    """Median seconds of one LAPACK Cholesky of a dense SPD matrix of this order, the
    better of one BLAS thread and the library's default (``reps`` times each, fewer — at
    least 3 — where they would take more than ``budget_s``): the floor no thread setting
    beats on this machine at this moment."""
    from scipy.linalg import lapack
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(0)
    M = rng.standard_normal((order, order)) / np.sqrt(order)
    A = np.asfortranarray(M @ M.T + np.eye(order))
    B = np.empty_like(A, order="F")
    medians = []
    for limit in (1, None):
        times: list[float] = []
        with threadpool_limits(limits=limit, user_api="blas"):
            while len(times) < reps and (len(times) < 3 or sum(times) < budget_s):
                B[...] = A
                start = time.perf_counter()
                lapack.dpotrf(B, lower=0, overwrite_a=1, clean=0)
                times.append(time.perf_counter() - start)
        medians.append(statistics.median(times))
    return min(medians)


def run(problem: Problem, data: pd.DataFrame) -> Measurement:
    import sparselme

    stamps: list[float] = []

    def tick(evaluation: int, x: np.ndarray, value: float) -> None:
        stamps.append(time.perf_counter())

    with recorded_warnings() as caught:
        start = time.perf_counter()
        res = sparselme.lmer(problem.formula, data, REML=problem.reml, callback=tick)
        fit_s = time.perf_counter() - start
    notes = [summarize([str(w.message) for w in caught])]
    if not res.converged:
        notes.insert(0, "not converged")
    evals = np.diff(stamps) if len(stamps) > 1 else np.zeros(0)  # from the second on
    chol = getattr(getattr(res.model, "pls", None), "chol", None)
    # the order LAPACK factors: the Schur complement with [X y] appended (older trees: q₂)
    q2 = int(getattr(chol, "q2", 0) or 0)  # 0: no dense Schur complement, no floor
    order = int(getattr(chol, "order", q2)) if q2 else 0
    return Measurement(
        fit_s=fit_s,
        evals=int(res.optsum.feval),
        s_per_eval=float(res.optsum.time_per_evaluation),
        loglik=float(res.llf),
        version=sparselme.__version__,
        note="; ".join(n for n in notes if n),
        eval_median_s=float(np.median(evals)) if evals.size else None,
        eval_max_s=float(np.max(evals)) if evals.size else None,
        schur_order=order or None,
        cholesky_s=cholesky_seconds(order) if order else None,
    )
