"""The lme4/lmerTest reference cases the inference tests share (frozen, no R needed).

tests/reference/lme4/inference_public.json (the public numbers) and
tests/reference/lmertest/inference.json (written by make_reference.R next to it).
"""

from __future__ import annotations

import json
import warnings
from functools import cache

import numpy as np
import pandas as pd
from references import REFERENCE

import sparselme as sl

REF = REFERENCE
PUBLIC = json.loads((REF / "lme4" / "inference_public.json").read_text())
LMERTEST = json.loads((REF / "lmertest" / "inference.json").read_text())
INFERENCE_CASES = [
    "sleepstudy",
    "sleepstudy_ml",
    "sleepstudy_unbalanced",
    "dietox_factors",
    "cake",
    "penicillin",
]
SIG3 = 1e-3  # "3 significant digits"


def vec(values) -> list:
    """A JSON vector (jsonlite writes length-one vectors as scalars)."""
    return list(values) if isinstance(values, list) else [values]


def num(values) -> np.ndarray:
    """JSON numbers with R's "NA" as NaN."""
    return np.array([np.nan if v == "NA" else v for v in vec(values)], dtype=float)


@cache
def data(name: str, rows: tuple[int, ...] | None = None) -> pd.DataFrame:
    d = sl.datasets.load(name)
    return d.iloc[list(rows)] if rows else d


@cache
def fit(formula: str, name: str, reml: bool = True, rows: tuple[int, ...] | None = None):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sl.errors.SingularFitWarning)
        return sl.lmer(formula, data(name, rows), REML=reml)


def case_fit(case: str):
    ref = LMERTEST[case]
    rows = tuple(ref["rows"]) if ref["rows"] else None
    return ref, fit(ref["formula"], ref["data"], ref["REML"], rows)


def sleepstudy():
    return fit("Reaction ~ Days + (Days | Subject)", "sleepstudy")
