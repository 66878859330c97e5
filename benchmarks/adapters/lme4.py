"""lme4 through ``Rscript``: the data go to a temporary CSV, ``lme4_fit.R`` times ``lmer()``.

Factor columns travel as 1-based level codes plus a ``COLUMN.levels`` file, so R rebuilds
them with exactly the pandas category order. Skipped with the reason recorded where Rscript
or the lme4 package is absent.
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
from . import COMPETITOR_SKIP, Measurement, summarize

LIBRARY = "lme4"
SCRIPT = Path(__file__).with_name("lme4_fit.R")


STREAMED_SKIP = "reads its data in memory only; this problem is streamed from Parquet"


@cache
def _r_problem() -> str:
    if shutil.which("Rscript") is None:
        return "Rscript not found (install R and r-cran-lme4)"
    probe = subprocess.run(
        ["Rscript", "-e", "quit(status = !requireNamespace('lme4', quietly = TRUE))"],
        capture_output=True,
    )
    return "" if probe.returncode == 0 else "R package lme4 is not installed"


def skip_reason(problem: Problem, force: bool = False) -> str:
    if problem.competitor:
        return COMPETITOR_SKIP
    if problem.streamed:
        return STREAMED_SKIP
    return _r_problem()


def write_for_r(data: pd.DataFrame, directory: Path) -> None:
    """data.csv with factors as level codes, and one COLUMN.levels file per factor."""
    out = {}
    for col in data.columns:
        values = data[col]
        if isinstance(values.dtype, pd.CategoricalDtype):
            if values.isna().any():
                raise ValueError(f"factor column {col!r} has missing values")
            levels = [str(c) for c in values.cat.categories]
            (directory / f"{col}.levels").write_text("\n".join(levels) + "\n", encoding="utf-8")
            out[col] = values.cat.codes.to_numpy() + 1
        else:
            out[col] = values.to_numpy()
    pd.DataFrame(out).to_csv(directory / "data.csv", index=False)


def run(problem: Problem, data: pd.DataFrame) -> Measurement:
    with tempfile.TemporaryDirectory(prefix="bench-lme4-") as tmp:
        write_for_r(data, Path(tmp))
        proc = subprocess.run(
            [
                "Rscript",
                str(SCRIPT),
                tmp,
                problem.formula,
                "TRUE" if problem.reml else "FALSE",
                "TRUE" if problem.warm else "FALSE",
            ],
            capture_output=True,
            text=True,
        )
    if proc.returncode != 0:
        raise RuntimeError(f"Rscript failed: {proc.stderr.strip()[-500:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    return Measurement(
        fit_s=out["fit_s"],
        evals=out["evals"],
        s_per_eval=out["s_per_eval"],
        loglik=out["loglik"],
        version=f"{out['lme4']} on R {out['R']}, BLAS {out['blas']}",
        note=summarize([w for w in out["warnings"] if w]),
        rss_of_child=True,
    )
