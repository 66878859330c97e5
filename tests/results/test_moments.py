"""MomentsResults: the exact fit's results API, and clear refusals where a likelihood is needed."""

from __future__ import annotations

import numpy as np
import pytest
from crossed_data import crossed_frame
from scipy import stats

import sparselme as sl
from sparselme.errors import EstimatorError, NoLikelihoodError
from sparselme.results.moments import ESTIMATOR_DESCRIPTION, MomentsResults


@pytest.fixture(scope="module")
def res():
    df = crossed_frame(n=5_000, levels_a=100, levels_b=30, seed=11)
    return sl.lmer("y ~ x + z + (1|a) + (1|b)", df, estimator="moments", variance_reps=6)


def test_same_results_type_with_the_estimates(res):
    assert isinstance(res, sl.MixedLMResults) and isinstance(res, MomentsResults)
    fit = res.moments
    np.testing.assert_array_equal(res.fe_params, fit.beta)
    np.testing.assert_array_equal(res.fixef, fit.beta)
    np.testing.assert_allclose(res.bse_fe, np.sqrt(np.diag(fit.beta_cov)))
    np.testing.assert_array_equal(res.vcov().to_numpy(), fit.beta_cov)
    np.testing.assert_allclose(res.varcorr["vcov"], fit.sigma2)
    np.testing.assert_allclose(res.theta**2 * res.sigma**2, fit.sigma2[:-1])
    np.testing.assert_array_equal(res.ranef()["a"].iloc[:, 0], fit.modes[0])
    assert res.ngroups == {"a": 100, "b": 30}
    assert res.method == "moments" and res.converged


def test_summary_says_which_estimator(res):
    text = str(res.summary())
    assert ESTIMATOR_DESCRIPTION in text
    assert "REML criterion" not in text and "AIC " not in text
    assert "No likelihood: no logLik" in text
    for name in ("(Intercept)", "x", "z", "Residual", "OLS s.e."):
        assert name in text
    assert "<table" in res.summary().as_html()


def test_z_tests_and_wald_intervals(res):
    table = res.coef_table()
    z = res.fe_params / res.bse_fe
    np.testing.assert_allclose(table["Pr(>|t|)"], 2 * stats.norm.sf(np.abs(z)))
    np.testing.assert_allclose(res.pvalues, table["Pr(>|t|)"])
    ci = res.confint(method="wald")
    half = stats.norm.ppf(0.975) * res.bse_fe["x"]
    expected = res.fe_params["x"] + np.array([-half, half])
    np.testing.assert_allclose(ci.loc["x"], expected, rtol=1e-10)


LIKELIHOOD = {
    "llf": lambda r: r.llf,
    "deviance": lambda r: r.deviance,
    "AIC": lambda r: r.AIC,
    "BIC": lambda r: r.BIC,
    "aic": lambda r: r.aic,
    "reml_criterion": lambda r: r.reml_criterion,
    "anova": lambda r: r.anova(),
    "anova LRT": lambda r: r.anova(r),
    "confint profile": lambda r: r.confint(),
    "confint boot": lambda r: r.confint(method="boot"),
    "profile": lambda r: r.profile(),
    "Satterthwaite": lambda r: r.coef_table("Satterthwaite"),
    "Kenward-Roger": lambda r: r.coef_table("Kenward-Roger"),
    "bootstrap": lambda r: r.bootstrap(10),
    "condvar": lambda r: r.ranef(condvar=True),
    "drop1": lambda r: r.drop1(),
    "ranova": lambda r: r.ranova(),
    "sl.anova": lambda r: sl.anova(r, r),
}


@pytest.mark.parametrize("what", list(LIKELIHOOD))
def test_what_needs_a_likelihood_raises(res, what):
    with pytest.raises(NoLikelihoodError, match="no likelihood"):
        LIKELIHOOD[what](res)


@pytest.mark.parametrize(
    "call",
    [
        lambda r: r.predict(r.engine.source.frame),
        lambda r: r.simulate(),
        lambda r: r.hatvalues(),
        lambda r: r.update(". ~ . - z"),
        lambda r: r.refit(np.zeros(5_000)),
        lambda r: sl.bootstrap(r, 5),
        lambda r: r.engine.pls,
    ],
)
def test_what_needs_the_exact_engine_raises(res, call):
    with pytest.raises(EstimatorError, match="estimator='exact'"):
        call(res)


def test_rows(res):
    assert res.block_params.empty
    np.testing.assert_allclose(res.predict(), res.fittedvalues)
    np.testing.assert_allclose(res.residuals(scaled=True), res.resid / res.sigma)
    assert "MomentsResults" in repr(res)
