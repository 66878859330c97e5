"""hatvalues, cooks_distance, rstudent, residuals, df_resid, coef and fixef(add_dropped)
against frozen lme4 1.1-31 numbers, and the leverages against a dense hat matrix.

Where lme4's θ differs from sparselme's in the last digits, the fit is evaluated at
lme4's θ (``fit_at``) and compared to rounding; the fit itself is compared loosely.
"""

from __future__ import annotations

import warnings
from functools import cache

import numpy as np
import pandas as pd
import pytest
from dense_reference import dense_lambda, dense_z
from references import lme4_parity as reference  # noqa: E402

import sparselme as sl
from sparselme.errors import RankDeficiencyWarning

DATA = {
    "diagnostics_sleepstudy_reml": "sleepstudy",
    "diagnostics_sleepstudy_ml": "sleepstudy",
    "diagnostics_penicillin_crossed": "Penicillin",
    "diagnostics_pastes_nested": "Pastes",
    "diagnostics_sleepstudy_weighted": "sleepstudy",
}


@cache
def fitted(key: str, factorization: str = "auto"):
    ref = reference(key)
    data = sl.datasets.load(DATA[key])
    weights = None
    if "weighted" in key:
        data = data.assign(w=1 + data["Days"] % 3)
        weights = "w"
    model = sl.LinearMixedModel.from_formula(
        ref["formula"], data, weights=weights, factorization=factorization
    )
    return model.fit(REML=ref["REML"])


def at_lme4_theta(key: str, factorization: str = "auto"):
    res = fitted(key, factorization)
    ref = reference(key)
    return res.with_values(res.engine.fit_at(np.array(ref["theta"]), None, ref["REML"]))


CASES = [
    ("diagnostics_sleepstudy_reml", "auto"),
    ("diagnostics_sleepstudy_ml", "auto"),
    ("diagnostics_penicillin_crossed", "block"),
    ("diagnostics_penicillin_crossed", "sparse"),
    ("diagnostics_pastes_nested", "block"),
    ("diagnostics_pastes_nested", "sparse"),
    ("diagnostics_sleepstudy_weighted", "auto"),
]


@pytest.mark.parametrize(("key", "factorization"), CASES)
def test_leverages_and_one_step_diagnostics_match_lme4(key, factorization):
    ref = reference(key)
    res = at_lme4_theta(key, factorization)
    for name, method in (
        ("hatvalues", res.hatvalues),
        ("cooks_distance", res.cooks_distance),
        ("rstudent", res.rstudent),
    ):
        got = method()
        assert isinstance(got, pd.Series) and got.index.equals(res.design.row_index)
        np.testing.assert_allclose(got, ref[name], rtol=1e-9, atol=1e-12, err_msg=name)
    np.testing.assert_allclose(res.fittedvalues, ref["fitted"], rtol=1e-11)
    assert res.df_resid == ref["df_residual"]
    # the fit itself: θ agrees with lme4's to the optimizer's tolerance
    fit = fitted(key, factorization)
    np.testing.assert_allclose(fit.hatvalues(), ref["hatvalues"], atol=2e-5)


@pytest.mark.parametrize("key", list(DATA))
def test_residual_types_match_lme4(key):
    ref = reference(key)["residuals"]
    res = at_lme4_theta(key)
    for kind in ("response", "working", "pearson", "deviance"):
        if kind in ref:
            np.testing.assert_allclose(res.residuals(kind), ref[kind], rtol=1e-10, atol=1e-9)
    np.testing.assert_allclose(res.residuals(scaled=True), ref["scaled"], rtol=1e-10, atol=1e-11)
    pearson = res.residuals("pearson").to_numpy()
    w = res.design.weights
    np.testing.assert_allclose(pearson, res.resid * (1 if w is None else np.sqrt(w)))


def test_leverages_equal_the_diagonal_of_the_dense_hat_matrix():
    """H = W½[ZΛ X] M⁻¹ [ZΛ X]ᵀW½ with M the joint system of (u, β); trace = its effective df."""
    res = fitted("diagnostics_sleepstudy_weighted")
    model = res.engine
    w = res.design.weights
    A = np.hstack([dense_z(model) @ dense_lambda(model, res.theta), res.design.X])
    A = A * np.sqrt(w)[:, None]
    q = A.shape[1] - res.design.X.shape[1]
    M = A.T @ A + np.diag(np.r_[np.ones(q), np.zeros(A.shape[1] - q)])
    H = A @ np.linalg.solve(M, A.T)
    np.testing.assert_allclose(res.hatvalues(), np.diag(H), rtol=1e-10)
    # W½ŷ = H W½y: the hat matrix reproduces the fitted values
    sw = np.sqrt(w)
    np.testing.assert_allclose(H @ (sw * res.design.y), sw * res.fittedvalues, rtol=1e-9)


def test_coef_adds_fixed_and_random_effects_by_level():
    for key in ("diagnostics_sleepstudy_reml", "diagnostics_sleepstudy_ml"):
        ref = reference(key)
        res = at_lme4_theta(key)
        cf = res.coef()
        assert list(cf) == ["Subject"]
        frame = cf["Subject"]
        assert list(frame.index) == ref["coef_Subject"]["levels"]
        assert list(frame.columns) == ["(Intercept)", "Days"]
        for col in frame.columns:
            np.testing.assert_allclose(frame[col], ref["coef_Subject"][col], rtol=1e-11)
        ranef = res.ranef(condvar=False)["Subject"]
        np.testing.assert_allclose(frame - res.fe_params, ranef)


def test_coef_puts_random_effects_without_a_fixed_effect_first():
    ref = reference("coef_random_slope_without_fixed_slope")
    res = sl.lmer(ref["formula"], sl.datasets.load("sleepstudy"))
    res = res.with_values(res.engine.fit_at(np.array(ref["theta"]), None, True))
    frame = res.coef()["Subject"]
    expected = ref["coef"]["Subject"]
    assert list(frame.columns) == expected["columns"] == ["Days", "(Intercept)"]
    for col in frame.columns:
        np.testing.assert_allclose(frame[col], expected[col], rtol=1e-11)


def test_coef_of_crossed_factors():
    ref = reference("diagnostics_penicillin_crossed")
    res = at_lme4_theta("diagnostics_penicillin_crossed")
    cf = res.coef()
    assert set(cf) == set(ref["coef"])
    for name, frame in cf.items():
        assert list(frame.index) == ref["coef"][name]["levels"]
        np.testing.assert_allclose(frame["(Intercept)"], ref["coef"][name]["(Intercept)"])


def test_fixef_with_dropped_columns_in_lme4s_order():
    ref = reference("rank_deficient")
    sleep = sl.datasets.load("sleepstudy").assign(Days2=lambda d: 2 * d["Days"])
    with pytest.warns(RankDeficiencyWarning):
        res = sl.lmer(ref["formula"], sleep)
    full = res.fixef(add_dropped=True)
    assert list(full.index) == ref["fixef_add_dropped_names"] == ["(Intercept)", "Days", "Days2"]
    assert np.isnan(full["Days2"])
    np.testing.assert_allclose(full[["(Intercept)", "Days"]], [251.405104848484, 10.467285959596])
    assert list(res.fixef.index) == ["(Intercept)", "Days"]
    assert list(res.fixef().index) == ["(Intercept)", "Days"]
    assert type(res.fixef * 2) is pd.Series  # arithmetic gives plain Series
    with pytest.raises(TypeError, match="add_dropped"):
        res.fixef(add_dropped="TRUE")
    with pytest.raises(TypeError):
        res.fixef(no_such_argument=1)


def test_diagnostics_assuming_iid_residuals_refuse_residual_structures():
    sleep = sl.datasets.load("sleepstudy")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = sl.lmer("Reaction ~ Days + (1 | Subject)", sleep, residual=sl.VarIdent("Subject"))
    for call in (res.hatvalues, res.cooks_distance, res.rstudent, res.influence, res.ranova):
        with pytest.raises(NotImplementedError, match="residual structure"):
            call()
    with pytest.raises(NotImplementedError, match="residual structure"):
        res.residuals("pearson")
    np.testing.assert_allclose(res.residuals(), res.resid)
    with pytest.raises(NotImplementedError, match="residual structure"):
        res.predict(se_fit=True)


def test_residuals_checks_its_arguments():
    res = fitted("diagnostics_sleepstudy_reml")
    with pytest.raises(ValueError, match="type must be one of"):
        res.residuals("partial")
    with pytest.raises(TypeError, match="scaled"):
        res.residuals(scaled="yes")
