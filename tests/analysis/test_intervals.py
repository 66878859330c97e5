"""predict(se_fit=True, interval=...) and random_only: exact prediction error variances
given θ, checked against a dense brute force built from the model's definition."""

from __future__ import annotations

import warnings
from functools import cache

import numpy as np
import pandas as pd
import pytest
import scipy.linalg as la
from dense_reference import dense_lambda, dense_z
from references import lme4_parity as reference  # noqa: E402
from scipy import stats

import sparselme as sl
from sparselme.data.coding import fixed_rows, term_rows
from sparselme.errors import DataError


@cache
def fit(formula: str, name: str, reml: bool = True, factorization: str = "auto"):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sl.errors.SingularFitWarning)
        data = sl.datasets.load(name)
        model = sl.LinearMixedModel.from_formula(formula, data, factorization=factorization)
        return model.fit(REML=reml)


def sleepstudy():
    return fit("Reaction ~ Days + (Days | Subject)", "sleepstudy")


def dense_error_variance(res, X0, Z0, new_Z=(), masks=None):
    """Var(ŷ0 − η0) from the model's definition: the linear map y → ŷ0 of the BLUE/BLUP,
    with b ~ N(0, σ²ΛΛᵀ), ε ~ N(0, σ²W⁻¹); ``new_Z``: per term (rows (m, k), unseen)
    whose effects are new draws."""
    model = res.engine
    d = model.design
    X = d.X
    Z = dense_z(model)
    lam = dense_lambda(model, res.theta)
    s2 = res.scale
    G = s2 * lam @ lam.T
    w = np.ones(d.nobs) if d.weights is None else d.weights
    R = np.diag(s2 / w)
    V = Z @ G @ Z.T + R
    Vi = np.linalg.inv(V)
    P = np.linalg.solve(X.T @ Vi @ X, X.T @ Vi)
    ell = X0 @ P + Z0 @ G @ Z.T @ Vi @ (np.eye(d.nobs) - X @ P)  # (m, n)
    A = ell @ Z - Z0
    var = np.einsum("iq,qr,ir->i", A, G, A) + np.einsum("in,nm,im->i", ell, R, ell)
    T = model.pls.templates(res.theta)
    for s, rows in new_Z:
        var = var + s2 * np.sum((rows @ T[s]) ** 2, axis=1)
    return var


def test_se_fit_of_the_fitted_rows_matches_the_dense_brute_force():
    res = sleepstudy()
    out = res.predict(se_fit=True)
    assert list(out.columns) == ["fit", "se_fit"]
    np.testing.assert_allclose(out["fit"], res.fittedvalues, rtol=0, atol=1e-10)
    Z = dense_z(res.engine)
    dense = dense_error_variance(res, res.design.X, Z)
    np.testing.assert_allclose(out["se_fit"] ** 2, dense, rtol=1e-9)


@pytest.mark.parametrize("factorization", ["block", "sparse"])
def test_crossed_new_rows_of_known_and_unknown_levels(factorization):
    res = fit("diameter ~ 1 + (1 | plate) + (1 | sample)", "Penicillin", True, factorization)
    new = pd.DataFrame(
        {"plate": ["a", "a", "zz", "b", "zz"], "sample": ["A", "F", "B", "new", "new"]}
    )
    out = res.predict(new, allow_new_levels=True, se_fit=True, interval="confidence")
    d = res.design
    X0, _ = fixed_rows(d, new)
    Z0 = np.zeros((len(new), sum(t.q for t in res.terms)))
    unseen = []
    offset = 0
    for s, t in enumerate(res.terms):
        idx = pd.Index(t.levels).get_indexer(new[t.name])
        rows = term_rows(d, t, new)
        for i in np.flatnonzero(idx >= 0):
            Z0[i, offset + idx[i] * t.k : offset + (idx[i] + 1) * t.k] = rows[i]
        unseen.append((s, rows * (idx < 0)[:, None]))
        offset += t.q
    dense = dense_error_variance(res, X0, Z0, unseen)
    np.testing.assert_allclose(out["se_fit"] ** 2, dense, rtol=1e-9)
    z = stats.norm.ppf(0.975)
    np.testing.assert_allclose(out["upr"] - out["fit"], z * out["se_fit"], rtol=1e-12)
    np.testing.assert_allclose(out["fit"], res.predict(new, allow_new_levels=True), atol=1e-12)


def test_sparse_selected_inversion_path_matches(monkeypatch):
    """Above SELECTED_INVERSION_MIN_Q the cross blocks come from the selected inverse."""
    import sparselme.engine.cholesky as cholesky
    import sparselme.engine.inverse_blocks as inverse_blocks

    res = fit("strength ~ 1 + (1 | batch/cask)", "Pastes", True, "sparse")
    expected = res.predict(se_fit=True)["se_fit"].to_numpy()
    monkeypatch.setattr(inverse_blocks, "SELECTED_INVERSION_MIN_Q", 0)
    monkeypatch.setattr(cholesky, "SELECTED_INVERSION_MIN_Q", 0)
    res.cache.clear()
    got = res.predict(se_fit=True)["se_fit"].to_numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-10)
    dense = dense_error_variance(res, res.design.X, dense_z(res.engine))
    np.testing.assert_allclose(got**2, dense, rtol=1e-9)


def test_re_form_and_random_only_restrict_the_target():
    res = sleepstudy()
    d = res.design
    Z = dense_z(res.engine)
    keep_intercept = np.zeros_like(Z)
    keep_intercept[:, 0::2] = Z[:, 0::2]  # the (Intercept) column of each Subject
    out = res.predict(re_form="~(1 | Subject)", se_fit=True)
    np.testing.assert_allclose(
        out["se_fit"] ** 2, dense_error_variance(res, d.X, keep_intercept), rtol=1e-9
    )
    population = res.predict(re_form="~0", se_fit=True)
    x_var = np.einsum("ip,pq,iq->i", d.X, res.cov_fe, d.X)
    np.testing.assert_allclose(population["se_fit"] ** 2, x_var, rtol=1e-9)
    ro = res.predict(random_only=True, se_fit=True)
    np.testing.assert_allclose(ro["se_fit"] ** 2, dense_error_variance(res, 0 * d.X, Z), rtol=1e-9)


def test_prediction_interval_adds_residual_and_left_out_terms():
    res = sleepstudy()
    new = pd.DataFrame({"Days": [0.0, 4.5, 12.0], "Subject": ["308", "999", "330"]})
    conf = res.predict(new, allow_new_levels=True, se_fit=True, interval="confidence")
    pred = res.predict(new, allow_new_levels=True, se_fit=True, interval="prediction", level=0.9)
    z = stats.norm.ppf(0.95)
    np.testing.assert_allclose(pred["se_fit"], conf["se_fit"])
    half = z * np.sqrt(pred["se_fit"] ** 2 + res.scale)
    np.testing.assert_allclose(pred["upr"] - pred["fit"], half, rtol=1e-12)
    # population level: a new Subject's effect varies too (σ² ‖Tᵀz‖² = zᵀ Σ z)
    pop = res.predict(new, re_form="~0", se_fit=True, interval="prediction")
    Sigma = res.term_covariances()[0]
    z_rows = np.column_stack([np.ones(3), new["Days"]])
    extra = np.einsum("ik,kl,il->i", z_rows, Sigma, z_rows)
    expected = stats.norm.ppf(0.975) * np.sqrt(pop["se_fit"] ** 2 + res.scale + extra)
    np.testing.assert_allclose(pop["upr"] - pop["fit"], expected, rtol=1e-12)
    with pytest.raises(NotImplementedError, match="part of the term"):
        res.predict(re_form="~(1 | Subject)", interval="prediction")


def test_unseen_level_gets_its_prior_variance():
    res = sleepstudy()
    new = pd.DataFrame({"Days": [3.0], "Subject": ["999"]})
    out = res.predict(new, allow_new_levels=True, se_fit=True)
    pop = res.predict(new, re_form="~0", se_fit=True)
    Sigma = res.term_covariances()[0]
    z = np.array([1.0, 3.0])
    assert out["se_fit"].iloc[0] ** 2 == pytest.approx(pop["se_fit"].iloc[0] ** 2 + z @ Sigma @ z)
    assert out["fit"].iloc[0] == pytest.approx(pop["fit"].iloc[0])
    with pytest.raises(DataError, match="allow_new_levels"):
        res.predict(new, se_fit=True)


def test_random_only_matches_lme4():
    for key, reml in (("diagnostics_sleepstudy_reml", True), ("diagnostics_sleepstudy_ml", False)):
        ref = reference(key)
        res = fit("Reaction ~ Days + (Days | Subject)", "sleepstudy", reml)
        at = res.with_values(res.engine.fit_at(np.array(ref["theta"]), None, reml))
        ro = at.predict(random_only=True)
        assert isinstance(ro, pd.Series) and ro.index.equals(at.design.row_index)
        np.testing.assert_allclose(ro, ref["predict_random_only"], rtol=0, atol=1e-10)
        np.testing.assert_allclose(
            res.predict(random_only=True), ref["predict_random_only"], rtol=0, atol=2e-3
        )


def test_random_only_on_new_data_and_re_form():
    res = sleepstudy()
    new = pd.DataFrame({"Days": [1.0, 2.0], "Subject": ["308", "999"]})
    ro = res.predict(new, allow_new_levels=True, random_only=True)
    b = res.ranef()["Subject"].loc["308"]
    assert ro.iloc[0] == pytest.approx(b["(Intercept)"] + 1.0 * b["Days"])
    assert ro.iloc[1] == 0.0
    slope = res.predict(
        new, re_form="~(0 + Days | Subject)", allow_new_levels=True, random_only=True
    )
    assert slope.iloc[0] == pytest.approx(b["Days"])


def test_keyword_values_are_checked():
    res = sleepstudy()
    with pytest.raises(ValueError, match="interval"):
        res.predict(interval="credible")
    with pytest.raises(ValueError, match="level"):
        res.predict(interval="confidence", level=95)
    with pytest.raises(TypeError, match="se_fit"):
        res.predict(se_fit="yes")
    with pytest.raises(TypeError, match="random_only"):
        res.predict(random_only=1)


def test_weighted_fit_prediction_interval_uses_the_weights():
    sleep = sl.datasets.load("sleepstudy").assign(w=lambda d: 1 + d["Days"] % 3)
    res = sl.lmer("Reaction ~ Days + (Days | Subject)", sleep, weights="w")
    out = res.predict(se_fit=True, interval="prediction")
    dense = dense_error_variance(res, res.design.X, dense_z(res.engine))
    np.testing.assert_allclose(out["se_fit"] ** 2, dense, rtol=1e-9)
    half = stats.norm.ppf(0.975) * np.sqrt(dense + res.scale / sleep["w"].to_numpy())
    np.testing.assert_allclose(out["upr"] - out["fit"], half, rtol=1e-9)


def test_henderson_form_equals_dense_inverse_of_the_joint_system():
    """σ² aᵀM⁻¹a with M the joint system of (u, β), formed densely."""
    res = fit("diameter ~ 1 + (1 | plate) + (1 | sample)", "Penicillin")
    model = res.engine
    Z, X = dense_z(model), res.design.X
    ZL = Z @ dense_lambda(model, res.theta)
    M = np.block([[ZL.T @ ZL + np.eye(ZL.shape[1]), ZL.T @ X], [X.T @ ZL, X.T @ X]])
    A = np.hstack([ZL, X])
    direct = res.scale * np.einsum("iq,qr,ir->i", A, la.inv(M), A)
    np.testing.assert_allclose(res.predict(se_fit=True)["se_fit"] ** 2, direct, rtol=1e-9)


def test_streamed_fits_give_the_same_standard_errors_for_new_rows(tmp_path):
    sleep = sl.datasets.load("sleepstudy")
    path = tmp_path / "sleep.parquet"
    sleep.assign(Subject=sleep["Subject"].astype(str)).to_parquet(path)
    streamed = sl.lmer("Reaction ~ Days + (Days | Subject)", str(path))
    new = pd.DataFrame({"Days": [1.0, 3.0], "Subject": ["308", "999"]})
    got = streamed.predict(new, allow_new_levels=True, se_fit=True, interval="prediction")
    expected = sleepstudy().predict(new, allow_new_levels=True, se_fit=True, interval="prediction")
    pd.testing.assert_frame_equal(got, expected, rtol=1e-6)
    with pytest.raises(NotImplementedError, match="rows in memory"):
        streamed.predict(se_fit=True)  # the fitted rows are not held
