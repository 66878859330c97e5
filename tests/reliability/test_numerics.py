"""Numerical safety: rank deficiency, singular fits, bad scaling, bounded optimizers."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest
from reliability_data import make_frame, no_warnings
from seed_data import income_data

import sparselme as sl
import sparselme.formula.api as slf
from sparselme.errors import (
    ConvergenceWarning,
    DataError,
    RankDeficiencyWarning,
    ScaleWarning,
    SingularFitWarning,
)
from sparselme.lme4 import LinearMixedModel

SLEEP = "Reaction ~ Days + (Days|Subject)"


@pytest.fixture(scope="module")
def sleepstudy():
    return sl.datasets.load("sleepstudy")


# ---- rank deficiency and exact fits -----------------------------------------------------------
def test_rank_deficient_x_drops_and_names_the_columns(frame):
    data = frame.assign(x2=2 * frame.x, x3=frame.x - 1.0)
    with pytest.warns(RankDeficiencyWarning, match="dropping 2 columns: x2, x3"):
        res = sl.lmer("y ~ x + x2 + x3 + (1|g)", data)
    assert list(res.fe_params.index) == ["(Intercept)", "x"]
    np.testing.assert_allclose(res.fe_params, sl.lmer("y ~ x + (1|g)", frame).fe_params)


def test_constant_response(frame):
    with pytest.raises(DataError, match="the response 'y' is constant"):
        sl.lmer("y ~ x + (1|g)", frame.assign(y=3.0))


def test_response_fitted_exactly_by_the_fixed_effects(frame):
    with pytest.raises(DataError, match="is fitted exactly by the fixed effects"):
        sl.lmer("y ~ x + (1|g)", frame.assign(y=2.0 * frame.x + 1.0))


# ---- singular fits ---------------------------------------------------------------------------
def test_singular_fit_warns_once_and_sits_on_the_boundary():
    dyestuff2 = sl.datasets.load("Dyestuff2")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = sl.lmer("Yield ~ 1 + (1|Batch)", dyestuff2)
    singular = [w for w in caught if issubclass(w.category, SingularFitWarning)]
    assert len(singular) == 1 and len(caught) == 1
    assert res.is_singular and res.theta[0] == 0.0


def test_singular_random_slope_is_flagged_not_failed(frame):
    data = frame.assign(y=frame.y - frame.groupby("g").y.transform("mean"))  # no group effect
    with pytest.warns(SingularFitWarning):
        res = sl.lmer("y ~ x + (x|g)", data)
    assert res.is_singular and np.isfinite(res.llf)


# ---- the objective where rounding breaks positive definiteness ----------------------------------
@pytest.mark.parametrize("factorization", ["block", "sparse"])
def test_objective_is_infinite_not_an_error_far_out(factorization):
    data = make_frame(200, seed=3, groups=20)
    model = LinearMixedModel.from_formula(
        "y ~ x + (x|g) + (1|h)", data, factorization=factorization
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        values = [model.objective(np.full(4, t)) for t in (1e8, 1e10, 1e15)]
    assert all(v == np.inf or np.isfinite(v) for v in values)
    assert np.isfinite(model.objective(np.ones(4)))


# ---- badly scaled data ------------------------------------------------------------------------
def test_income_example_converges_without_warnings():
    income = income_data()  # σ² ≈ 1e7
    with no_warnings():
        a = sl.lmer("income ~ years_education * major + (1|person)", income)
        b = slf.mixedlm("income ~ years_education * major", income, groups="person").fit()
        c = sl.lmer("income ~ years_education * major + (years_education|person)", income)
    assert a.converged and c.converged and b.converged
    assert 1e6 < a.scale < 1e8


@pytest.mark.parametrize("factor", [1e-8, 1e-3, 1e4, 1e9])
def test_rescaling_the_response_rescales_the_estimates(sleepstudy, factor):
    base = sl.lmer(SLEEP, sleepstudy)
    with no_warnings():
        res = sl.lmer(SLEEP, sleepstudy.assign(Reaction=sleepstudy.Reaction * factor))
    np.testing.assert_allclose(res.theta, base.theta, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(res.fe_params / factor, base.fe_params, rtol=1e-6)
    np.testing.assert_allclose(res.sigma / factor, base.sigma, rtol=1e-6)


@pytest.mark.parametrize("factor", [1e-6, 1e6])
def test_random_slope_on_an_extreme_scale_warns_and_does_not_crash(sleepstudy, factor):
    data = sleepstudy.assign(Days=sleepstudy.Days * factor)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = sl.lmer(SLEEP, data)
    scale = [str(w.message) for w in caught if issubclass(w.category, ScaleWarning)]
    assert len(scale) == 1 and "column 'Days' of term (Days | Subject)" in scale[0]
    assert "consider rescaling" in scale[0] and np.isfinite(res.llf)


def test_ordinary_scales_do_not_warn(sleepstudy):
    with no_warnings():
        sl.lmer(SLEEP, sleepstudy.assign(Days=sleepstudy.Days * 50))


@pytest.mark.parametrize("value", [1e200, 1e-200])
def test_magnitudes_beyond_double_precision(frame, value):
    with pytest.raises(DataError, match="too (large|small) for double precision.*rescale it"):
        sl.lmer("y ~ x + (1|g)", frame.assign(y=frame.y * value))
    with pytest.raises(DataError, match="fixed-effects column 'x' has values of magnitude"):
        sl.lmer("y ~ x + (1|g)", frame.assign(x=frame.x * value))


# ---- a bounded optimizer -----------------------------------------------------------------------
def _gradient_in(message: str) -> np.ndarray:
    found = re.search(r"gradient \[([^\]]*)\]", message)
    assert found, message
    return np.array([float(v) for v in found.group(1).split()])


@pytest.mark.parametrize("check_derivatives", [True, False])
def test_maxeval_warns_with_the_reached_gradient(sleepstudy, check_derivatives):
    with pytest.warns(ConvergenceWarning) as caught:
        res = sl.lmer(SLEEP, sleepstudy, maxeval=5, check_derivatives=check_derivatives)
    first = str(caught[0].message)
    assert "optimizer stopped after" in first and "(maxeval)" in first
    grad = _gradient_in(first)
    assert grad.shape == (3,) and np.all(np.isfinite(grad)) and np.any(grad != 0)
    assert not res.converged


def test_unbounded_fit_of_the_same_model_converges(sleepstudy):
    with no_warnings():
        assert sl.lmer(SLEEP, sleepstudy).converged
