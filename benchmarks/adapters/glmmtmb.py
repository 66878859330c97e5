"""glmmTMB through ``Rscript``: the data travel as for lme4 (``lme4.write_for_r``) and
``glmmtmb_fit.R`` times ``glmmTMB()``. Only problems marked ``glmmtmb`` (covariance
structures lme4 1.1 cannot write) are attempted; skipped with the reason recorded where
Rscript or the glmmTMB package is absent.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from functools import cache
from pathlib import Path

import pandas as pd

from ..problems import Problem
from . import Measurement, summarize
from .lme4 import STREAMED_SKIP, write_for_r

LIBRARY = "glmmTMB"
SCRIPT = Path(__file__).with_name("glmmtmb_fit.R")


@cache
def _r_problem() -> str:
    if shutil.which("Rscript") is None:
        return "Rscript not found (install R and r-cran-glmmtmb)"
    probe = subprocess.run(
        ["Rscript", "-e", "quit(status = !requireNamespace('glmmTMB', quietly = TRUE))"],
        capture_output=True,
    )
    return "" if probe.returncode == 0 else "R package glmmTMB is not installed"


def skip_reason(problem: Problem, force: bool = False) -> str:
    if problem.streamed:
        return STREAMED_SKIP
    if not problem.glmmtmb:
        return "compared with lme4 (glmmTMB runs only the covariance-structure workloads)"
    return _r_problem()


def run(problem: Problem, data: pd.DataFrame) -> Measurement:
    with tempfile.TemporaryDirectory(prefix="bench-glmmtmb-") as tmp:
        write_for_r(data, Path(tmp))
        proc = subprocess.run(
            ["Rscript", str(SCRIPT), tmp, problem.formula, "TRUE" if problem.reml else "FALSE"],
            capture_output=True,
            text=True,
        )
    if proc.returncode != 0:
        raise RuntimeError(f"Rscript failed: {proc.stderr.strip()[-500:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    return Measurement(
        fit_s=out["fit_s"],
        evals=out["evals"],
        loglik=out["loglik"],
        version=f"{out['glmmTMB']} (TMB {out['TMB']}) on R {out['R']}, BLAS {out['blas']}",
        note=summarize([w for w in out["warnings"] if w]),
        rss_of_child=True,
    )
