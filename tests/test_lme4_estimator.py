"""lmer(..., estimator=...): the moments estimator against exact REML, and the choice."""

from __future__ import annotations

import time
import warnings

import numpy as np
import pytest
from crossed_data import crossed_frame

import sparselme as sl
from sparselme.engine import limits
from sparselme.errors import (
    EstimatorChoiceWarning,
    EstimatorError,
    NoLikelihoodError,
    ProblemTooLargeError,
)

FORMULA = "y ~ x + z + (1|a) + (1|b)"


@pytest.fixture(scope="module")
def frame():
    return crossed_frame()


@pytest.fixture(scope="module")
def fits(frame):
    return sl.lmer(FORMULA, frame), sl.lmer(FORMULA, frame, estimator="moments")


def test_moments_land_close_to_reml(fits):
    exact, mom = fits
    assert isinstance(mom, sl.MixedLMResults) and mom.estimator == "moments"
    assert exact.estimator == "exact"
    np.testing.assert_allclose(mom.varcorr["vcov"], exact.varcorr["vcov"], rtol=0.05)
    assert list(mom.varcorr["grp"]) == list(exact.varcorr["grp"])
    # β within 0.2 REML standard errors, standard errors within 15%
    dist = np.abs(mom.fe_params - exact.fe_params) / exact.bse_fe
    assert (dist < 0.2).all(), dist
    np.testing.assert_allclose(mom.bse_fe, exact.bse_fe, rtol=0.15)
    assert list(mom.fe_params.index) == list(exact.fe_params.index)
    # the naive OLS errors are far off for the covariate of b's levels (why GLS is used)
    assert mom.bse_ols["z"] < 0.5 * exact.bse_fe["z"]


def test_conditional_modes_and_fitted_values_follow_reml(fits, frame):
    exact, mom = fits
    for name in ("a", "b"):
        e, m = exact.ranef(condvar=False)[name], mom.ranef()[name]
        assert list(e.index) == list(m.index)
        assert np.corrcoef(e.iloc[:, 0], m.iloc[:, 0])[0, 1] > 0.999
    fitted = mom.fittedvalues
    assert fitted.index.equals(frame.index)
    assert np.corrcoef(fitted, exact.fittedvalues)[0, 1] > 0.999
    np.testing.assert_allclose(mom.resid + fitted, frame["y"], rtol=1e-12, atol=1e-12)


def test_interaction_term_against_reml():
    df = crossed_frame(n=12_000, levels_a=60, levels_b=40, seed=3, interaction=True)
    f = "y ~ x + (1|a) + (1|b) + (1|a:b)"
    exact, mom = sl.lmer(f, df), sl.lmer(f, df, estimator="moments")
    np.testing.assert_allclose(mom.varcorr["vcov"], exact.varcorr["vcov"], rtol=0.10)
    assert list(mom.varcorr["grp"]) == list(exact.varcorr["grp"])
    assert (np.abs(mom.fe_params - exact.fe_params) / exact.bse_fe < 0.2).all()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"formula": "y ~ x + (x|a) + (1|b)"}, r"\(1 \| a\)"),
        ({"weights": np.ones(20_000)}, "weights"),
        ({"REML": False}, "REML=False"),
        ({"maxeval": 10}, "maxeval"),
        ({"residual": sl.VarIdent("b")}, "residual"),
    ],
)
def test_what_moments_cannot_fit_names_what_to_change(frame, kwargs, match):
    args = {"formula": FORMULA, **kwargs}
    with pytest.raises(EstimatorError, match=match):
        sl.lmer(args.pop("formula"), frame, estimator="moments", **args)


def test_unknown_estimator(frame):
    with pytest.raises(ValueError, match="estimator must be"):
        sl.lmer(FORMULA, frame, estimator="mom")


def test_auto_picks_exact_where_it_is_feasible(frame):
    res = sl.lmer(FORMULA, frame, estimator="auto")
    assert res.estimator == "exact" and "exact" in res.estimator_reason
    assert np.isfinite(res.llf)


def test_exact_refuses_quickly_and_auto_falls_back(frame, monkeypatch):
    monkeypatch.setattr(limits, "available_memory", lambda: 1e5)  # 100 kB left
    start = time.perf_counter()
    with pytest.raises(ProblemTooLargeError, match='estimator="moments"'):
        sl.lmer(FORMULA, frame)
    assert time.perf_counter() - start < 10
    with pytest.warns(EstimatorChoiceWarning, match='chose "moments"'):
        res = sl.lmer(FORMULA, frame, estimator="auto")
    assert res.estimator == "moments" and "needs" in res.estimator_reason
    with pytest.raises(NoLikelihoodError):
        res.llf  # noqa: B018
    # a model the moments cannot fit is not switched: the exact refusal stands
    with pytest.raises(ProblemTooLargeError):
        with warnings.catch_warnings():
            warnings.simplefilter("error", EstimatorChoiceWarning)
            sl.lmer("y ~ x + (x|a) + (1|b)", frame, estimator="auto")
