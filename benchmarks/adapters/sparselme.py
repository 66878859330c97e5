"""sparselme: ``sparselme.lmer(formula, data, REML=...)``, timed around the whole call."""

from __future__ import annotations

import time

import pandas as pd

from ..problems import Problem
from . import Measurement, recorded_warnings, summarize

LIBRARY = "sparselme"


def skip_reason(problem: Problem, force: bool = False) -> str:
    return ""


def run(problem: Problem, data: pd.DataFrame) -> Measurement:
    import sparselme

    with recorded_warnings() as caught:
        start = time.perf_counter()
        res = sparselme.lmer(problem.formula, data, REML=problem.reml)
        fit_s = time.perf_counter() - start
    notes = [summarize([str(w.message) for w in caught])]
    if not res.converged:
        notes.insert(0, "not converged")
    return Measurement(
        fit_s=fit_s,
        evals=int(res.optsum.feval),
        s_per_eval=float(res.optsum.time_per_evaluation),
        loglik=float(res.llf),
        version=sparselme.__version__,
        note="; ".join(n for n in notes if n),
    )
