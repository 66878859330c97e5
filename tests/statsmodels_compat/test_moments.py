"""mixedlm(...).fit(estimator="moments"|"auto"): statsmodels' crossed spellings by moments."""

from __future__ import annotations

import numpy as np
import pytest
from crossed_data import crossed_frame

import sparselme as sl
from sparselme.engine import limits
from sparselme.errors import EstimatorChoiceWarning, EstimatorError, NoLikelihoodError
from sparselme.statsmodels_compat.moments import MomentsCompatResults

VC = {"a": "0 + C(a)", "b": "0 + C(b)"}


@pytest.fixture(scope="module")
def frame():
    return crossed_frame(n=8_000, levels_a=200, levels_b=40, seed=4)


@pytest.fixture(scope="module")
def model(frame):
    return sl.mixedlm("y ~ x + z", frame, groups=np.ones(len(frame)), vc_formula=VC)


def test_vc_formula_spelling_against_the_exact_fit(model):
    exact, mom = model.fit(), model.fit(estimator="moments", variance_reps=10)
    assert isinstance(mom, MomentsCompatResults) and isinstance(mom, sl.MixedLMResults)
    assert list(mom.params.index) == list(exact.params.index)
    # 40 levels of b: the two estimators differ by sampling noise, a fraction of its SE
    se = mom.varcorr_se.to_numpy()[:2]
    assert (np.abs(mom.vcomp - exact.vcomp) < 0.5 * se).all(), (mom.vcomp, exact.vcomp, se)
    np.testing.assert_allclose(mom.scale, exact.scale, rtol=0.01)
    fe = exact.fe_params.index
    assert (np.abs(mom.params[fe] - exact.params[fe]) / exact.bse[fe] < 0.2).all()
    # fixed effects' SEs are GLS's (close to REML's); the variance ratios' are the delta
    # method on the estimated covariance of the moment estimates (not REML's Hessian)
    np.testing.assert_allclose(mom.bse[fe], exact.bse[fe], rtol=0.05)
    s2, cov = mom.moments.sigma2, mom.moments.sigma2_cov
    ratio = lambda v: v[:2] / v[2]  # noqa: E731
    jac = np.column_stack([(ratio(s2 + h) - ratio(s2 - h)) / 2e-6 for h in 1e-6 * np.eye(3)])
    np.testing.assert_allclose(mom.bse.iloc[3:], np.sqrt(np.diag(jac @ cov @ jac.T)), rtol=1e-6)
    np.testing.assert_allclose(mom.tvalues, mom.params / mom.bse)
    assert mom.cov_re.shape == (0, 0)
    with pytest.raises(NoLikelihoodError):
        mom.llf  # noqa: B018
    with pytest.raises(EstimatorError, match="ranef"):
        mom.random_effects  # noqa: B018


def test_bar_spelling_is_the_same_fit(frame, model):
    a = model.fit(estimator="moments", variance_reps=4)
    b = sl.mixedlm("y ~ x + z + (1|a) + (1|b)", frame).fit(estimator="moments", variance_reps=4)
    np.testing.assert_allclose(a.params, b.params, rtol=1e-10)


def test_what_moments_cannot_fit(frame, model):
    with pytest.raises(EstimatorError, match="random intercepts only"):
        sl.mixedlm("y ~ x", frame, groups="a", re_formula="~x").fit(estimator="moments")
    with pytest.raises(EstimatorError, match="maximum likelihood"):
        model.fit(reml=False, estimator="moments")


def test_auto(model, monkeypatch):
    assert model.fit(estimator="auto").estimator == "exact"
    monkeypatch.setattr(limits, "available_memory", lambda: 1e5)
    fresh = sl.mixedlm("y ~ x + z", model.data_frame, groups=np.ones(8_000), vc_formula=VC)
    with pytest.warns(EstimatorChoiceWarning):
        res = fresh.fit(estimator="auto")
    assert res.estimator == "moments" and "moments" in res.estimator_reason
