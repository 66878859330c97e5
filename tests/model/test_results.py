"""Conditional variances of the random effects against the dense inverse."""

from __future__ import annotations

import time
import warnings

import numpy as np
import pandas as pd
import pytest
from dense_reference import dense_condvar
from lme4_cases import (
    data,
)

import sparselme as sl

# ======================================================================================
# Conditional variances
# ======================================================================================


@pytest.mark.parametrize(
    "formula,name,factorization",
    [
        ("Reaction ~ Days + (Days | Subject)", "sleepstudy", "auto"),
        ("diameter ~ 1 + (1 | plate) + (1 | sample)", "Penicillin", "block"),
        ("diameter ~ 1 + (1 | plate) + (1 | sample)", "Penicillin", "sparse"),
        ("strength ~ 1 + (1 | batch/cask)", "Pastes", "sparse"),
        ("Weight ~ Time + (Time | Pig) + (1 | Litter)", "dietox", "auto"),
    ],
)
def test_conditional_variances_match_dense_inverse(formula, name, factorization):
    model = sl.LinearMixedModel.from_formula(formula, data(name), factorization=factorization)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = model.fit()
    got = res.condvar_blocks
    for g, want in zip(got, dense_condvar(res)):
        np.testing.assert_allclose(g, want, rtol=1e-7, atol=1e-10 * np.max(np.abs(want)))


def test_conditional_variances_for_100k_levels():
    """One factor with 100,000 levels: closed form σ²θ²/(1 + θ² n_l), no q×q inverse."""
    rng = np.random.default_rng(5)
    L = 100_000
    g = rng.integers(L, size=3 * L)
    g[:L] = np.arange(L)  # every level observed
    b = rng.normal(0, 0.7, L)
    frame = pd.DataFrame({"g": g.astype(str), "x": rng.normal(size=3 * L)})
    frame["y"] = 1 + 0.5 * frame["x"] + b[g] + rng.normal(size=3 * L)
    res = sl.lmer("y ~ x + (1 | g)", frame)
    start = time.perf_counter()
    cv = res.ranef().condvar["g"][:, 0, 0]
    assert time.perf_counter() - start < 10
    theta = res.theta[0]
    counts = np.bincount(res.design.rows[0].codes, minlength=L)
    np.testing.assert_allclose(cv, res.scale * theta**2 / (1 + theta**2 * counts), rtol=1e-10)
