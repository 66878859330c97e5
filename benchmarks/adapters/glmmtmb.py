"""glmmTMB through ``Rscript``: the data travel as for lme4 (``lme4.write_for_r``) and
``glmmtmb_fit.R`` times ``glmmTMB()``. Only problems marked ``glmmtmb`` (covariance
structures lme4 1.1 cannot write) are attempted; skipped with the reason recorded where
Rscript or the glmmTMB package is absent.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..problems import Problem
from . import Measurement, summarize
from .lme4 import STREAMED_SKIP, r_package_problem, run_rscript

LIBRARY = "glmmTMB"
SCRIPT = Path(__file__).with_name("glmmtmb_fit.R")


def skip_reason(problem: Problem, force: bool = False) -> str:
    if problem.streamed:
        return STREAMED_SKIP
    if not problem.glmmtmb:
        return "compared with lme4 (glmmTMB runs only the covariance-structure workloads)"
    return r_package_problem("glmmTMB")


def run(problem: Problem, data: pd.DataFrame) -> Measurement:
    out = run_rscript(SCRIPT, problem, data)
    return Measurement(
        fit_s=out["fit_s"],
        evals=out["evals"],
        loglik=out["loglik"],
        version=f"{out['glmmTMB']} (TMB {out['TMB']}) on R {out['R']}, BLAS {out['blas']}",
        note=summarize([w for w in out["warnings"] if w]),
        rss_of_child=True,
    )
