"""statsmodels: ``MixedLM.from_formula(...).fit(reml=...)`` with the problem's MixedLM spelling.

Crossed designs need one all-rows group with ``vc_formula``; those are known to be hopeless
at benchmark sizes and are skipped with the reason recorded, unless forced (``--try-hopeless``).
The runner's time limit turns a fit that runs too long into "did not finish in N s".
"""

from __future__ import annotations

import importlib.util
import time

import numpy as np
import pandas as pd

from ..problems import Problem
from . import COMPETITOR_SKIP, Measurement, recorded_warnings, summarize

LIBRARY = "statsmodels"


def skip_reason(problem: Problem, force: bool = False) -> str:
    if problem.competitor:
        return COMPETITOR_SKIP
    if problem.streamed:
        return "reads its data in memory only; this problem is streamed from Parquet"
    if problem.statsmodels is None:
        return problem.statsmodels_skip or "no MixedLM spelling"
    if problem.statsmodels_skip and not force:
        return problem.statsmodels_skip
    if importlib.util.find_spec("statsmodels") is None:
        return "statsmodels is not installed"
    return ""


def _count_calls(obj: object, method: str) -> list[int]:
    """Count calls of ``obj.method`` (the optimizer reaches it through the instance)."""
    counter = [0]
    original = getattr(obj, method)

    def counted(*args, **kwargs):
        counter[0] += 1
        return original(*args, **kwargs)

    setattr(obj, method, counted)
    return counter


def warm_up(problem: Problem, data: pd.DataFrame) -> None:
    """One untimed fit in this process (imports and first-use costs paid)."""
    run(problem, data)


def run(problem: Problem, data: pd.DataFrame) -> Measurement:
    import statsmodels
    from statsmodels.regression.mixed_linear_model import MixedLM

    spec = problem.statsmodels
    assert spec is not None
    groups = spec.groups or np.zeros(len(data), dtype=np.int8)
    with recorded_warnings() as caught:
        start = time.perf_counter()
        model = MixedLM.from_formula(
            spec.formula,
            data,
            groups=groups,
            re_formula=spec.re_formula,
            vc_formula=spec.vc_formula,
        )
        evals = _count_calls(model, "loglike")
        res = model.fit(reml=problem.reml)
        fit_s = time.perf_counter() - start
    notes = [summarize([str(w.message) for w in caught])]
    if not res.converged:
        notes.insert(0, "not converged")
    return Measurement(
        fit_s=fit_s,
        evals=evals[0],
        loglik=float(res.llf),
        version=statsmodels.__version__,
        note="; ".join(n for n in notes if n),
    )
