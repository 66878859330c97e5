"""Every public attribute and method of MixedLM and its results, on both libraries.

The same model is fitted by statsmodels and by sparselme, built from pandas (a formula,
and Series/DataFrame arrays) and from ndarrays; each attribute must have statsmodels'
type (pandas in, pandas out; ndarrays in, ndarrays out), shape, labels and values (the
fits reach the same optimum here, so values agree to the optimizers' tolerance).
"""

from __future__ import annotations

import io
import pickle
import warnings

import numpy as np
import pandas as pd
import pytest

sm = pytest.importorskip("statsmodels.api")
smf = pytest.importorskip("statsmodels.formula.api")
from statsmodels.base import _penalties as penalties  # noqa: E402

import sparselme as sl  # noqa: E402

RTOL = 2e-4  # statsmodels' optimizer stops within this of the optimum on these data


def _data() -> pd.DataFrame:
    rs = np.random.RandomState(7)
    g = np.repeat(np.arange(15), 8)
    x = rs.normal(size=len(g))
    z = rs.normal(size=len(g))
    cat = np.array(["a", "b", "c"])[rs.randint(0, 3, len(g))]
    y = 1 + 0.5 * x - 0.3 * (cat == "b") + rs.normal(size=15)[g] * (1 + 0.4 * z)
    y = y + rs.normal(size=len(g))
    return pd.DataFrame({"y": y, "x": x, "z": z, "cat": cat, "g": g})


DATA = _data()
X_ND = np.column_stack([np.ones(len(DATA)), DATA["x"]])


def _models(lib, kind: str):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if kind == "formula":
            return lib.MixedLM.from_formula(
                "y ~ x + C(cat)", DATA, groups="g", re_formula="~z"
            )
        if kind == "pandas":
            return lib.MixedLM(
                DATA["y"], pd.DataFrame(X_ND, columns=["const", "x"]), DATA["g"], DATA[["z"]]
            )
        return lib.MixedLM(DATA["y"].to_numpy(), X_ND, DATA["g"].to_numpy(), DATA[["z"]].to_numpy())


@pytest.fixture(scope="module", params=["formula", "pandas", "ndarray"])
def pair(request):
    fits = []
    for lib in (sm, sl):
        model = _models(lib, request.param)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fits.append((model, model.fit()))
    return request.param, fits


def same(ours, theirs, rtol=RTOL, atol=1e-6):
    """Same type, shape, labels; values within the tolerance."""
    assert type(ours) is type(theirs), (type(ours), type(theirs))
    if isinstance(theirs, (pd.Series, pd.DataFrame)):
        assert list(ours.index) == list(theirs.index)
        if isinstance(theirs, pd.DataFrame):
            assert list(ours.columns) == list(theirs.columns)
    a, b = np.asarray(ours, dtype=float), np.asarray(theirs, dtype=float)
    assert a.shape == b.shape
    np.testing.assert_allclose(a, b, rtol=rtol, atol=atol, equal_nan=True)


ATTRIBUTES = [
    "params", "bse", "bse_fe", "bse_re", "fe_params", "cov_re", "cov_re_unscaled", "vcomp",
    "tvalues", "pvalues", "fittedvalues", "resid", "scale", "llf", "aic", "bic",
    "k_fe", "k_re", "k_re2", "k_vc", "nobs", "df_resid", "method", "use_sqrt",
]  # fmt: skip


def test_results_attributes(pair):
    _, ((_, theirs), (_, ours)) = pair
    for name in ATTRIBUTES:
        a, b = getattr(ours, name), getattr(theirs, name)
        if isinstance(b, (str, bool)) or b is None:
            assert a == b, name
        elif np.isscalar(b):
            assert a == pytest.approx(b, rel=RTOL, nan_ok=True), name
        else:
            same(a, b, atol=1e-4)
    # our own convergence, and a likelihood at least statsmodels' (never its flag)
    assert ours.converged is True
    assert ours.llf >= theirs.llf - 1e-6
    for name in ("cov_params", "conf_int"):
        same(getattr(ours, name)(), getattr(theirs, name)(), atol=1e-4)
    same(ours.normalized_cov_params, theirs.normalized_cov_params, atol=1e-4)
    same(ours.params_object.get_packed(False, True), theirs.params_object.get_packed(False, True))


def test_random_effects_and_their_covariances(pair):
    _, ((_, theirs), (_, ours)) = pair
    assert list(ours.random_effects) == list(theirs.random_effects)
    for g, b in theirs.random_effects.items():
        same(ours.random_effects[g], b, atol=1e-4)
        same(ours.random_effects_cov[g], theirs.random_effects_cov[g], atol=1e-4)


def test_model_attributes_and_data(pair):
    kind, ((sm_model, _), (model, _)) = pair
    for name in ("xnames", "ynames", "exog_re_names", "exog_re_names_full", "param_names"):
        assert getattr(model.data, name) == getattr(sm_model.data, name), name
    assert (model.data.frame is None) == (kind != "formula")
    for name in ("exog_names", "endog_names", "k_fe", "k_re", "k_re2", "k_vc", "n_groups", "nobs"):
        assert getattr(model, name) == getattr(sm_model, name), name
    assert list(model.group_labels) == list(sm_model.group_labels)
    np.testing.assert_allclose(model.endog, sm_model.endog)
    np.testing.assert_allclose(model.exog, sm_model.exog)
    np.testing.assert_allclose(model.exog_re, sm_model.exog_re)


def test_likelihood_score_and_hessian_at_other_parameters(pair):
    _, ((sm_model, theirs), (model, _)) = pair
    po = theirs.params_object.copy()
    po.fe_params = po.fe_params + 0.1
    po.cov_re = po.cov_re * 1.3
    for profile_fe in (True, False):
        assert model.loglike(po, profile_fe) == pytest.approx(sm_model.loglike(po, profile_fe))
        np.testing.assert_allclose(
            model.score(po, profile_fe), sm_model.score(po, profile_fe), rtol=1e-6, atol=1e-8
        )
    for parts in zip(model.score_full(po, True), sm_model.score_full(po, True)):
        np.testing.assert_allclose(*parts, rtol=1e-6, atol=1e-8)
    for parts in zip(model.score_sqrt(po), sm_model.score_sqrt(po)):
        np.testing.assert_allclose(*parts, rtol=1e-6, atol=1e-8)
    # at the GLS β the Hessians agree; elsewhere statsmodels drops the terms in Xᵀ V⁻¹ r
    po.fe_params = sm_model.get_fe_params(po.cov_re, po.vcomp)[0]
    np.testing.assert_allclose(model.get_fe_params(po.cov_re, po.vcomp)[0], po.fe_params)
    np.testing.assert_allclose(model.hessian(po)[0], sm_model.hessian(po)[0], rtol=1e-6)
    scale = sm_model.get_scale(po.fe_params, po.cov_re, po.vcomp)
    assert model.get_scale(po.fe_params, po.cov_re, po.vcomp) == pytest.approx(scale)


def test_predict_and_hypothesis_tests(pair):
    kind, ((_, theirs), (_, ours)) = pair
    new = DATA.iloc[:5] if kind == "formula" else X_ND[:5]
    same(ours.predict(new), theirs.predict(new))
    same(ours.predict(), theirs.predict())
    names = ours.model.exog_names
    text = f"{names[1]} = 0.5"
    for a, b in ((ours.f_test(text), theirs.f_test(text)),):
        assert a.fvalue == pytest.approx(float(np.squeeze(b.fvalue)), rel=1e-3)
        assert (a.df_num, a.df_denom) == (b.df_num, b.df_denom)
        assert a.pvalue == pytest.approx(float(b.pvalue), rel=1e-3)
    a, b = ours.wald_test(text, scalar=True), theirs.wald_test(text, scalar=True)
    assert a.statistic == pytest.approx(b.statistic, rel=1e-3)
    R = np.eye(ours.k_fe)
    a, b = ours.t_test(R), theirs.t_test(R)
    np.testing.assert_allclose(a.effect, b.effect, rtol=RTOL)
    np.testing.assert_allclose(a.sd, b.sd, rtol=1e-3)
    with pytest.raises(ValueError, match=f"should have {ours.k_fe} columns"):
        ours.t_test(np.eye(ours.k_fe + 1))
    a, b = ours.wald_test_terms(scalar=True), theirs.wald_test_terms(scalar=True)
    assert list(a.table.index) == list(b.table.index)
    np.testing.assert_allclose(a.table["statistic"], b.table["statistic"], rtol=1e-3)
    assert list(a.table["df_constraint"]) == list(b.table["df_constraint"])
    assert str(a.summary_frame().columns) == str(b.summary_frame().columns)


def test_profile_re(pair):
    _, ((_, theirs), (_, ours)) = pair
    dist = 0.3 * float(np.asarray(theirs.cov_re)[0, 0])
    kw = dict(num_low=2, dist_low=dist, num_high=2, dist_high=dist)
    a, b = ours.profile_re(0, "re", **kw), theirs.profile_re(0, "re", **kw)
    assert a.shape == b.shape
    np.testing.assert_allclose(a, b, rtol=1e-3)


def test_summary_save_load_pickle_and_remove_data(pair, tmp_path):
    _, ((_, theirs), (_, ours)) = pair
    assert ours.summary().tables[1].index.tolist() == theirs.summary().tables[1].index.tolist()
    path = tmp_path / "fit.pickle"
    ours.save(path)
    back = type(ours).load(path)
    same(back.params, ours.params, rtol=0, atol=0)
    buf = io.BytesIO()
    ours.save(buf)
    buf.seek(0)
    same(type(ours).load(buf).bse, ours.bse, rtol=0, atol=0)
    copy = pickle.loads(pickle.dumps(ours))
    text = str(copy.summary())
    size = len(pickle.dumps(copy))
    copy.remove_data()
    assert str(copy.summary()) == text
    assert copy.model.endog is None and copy.fittedvalues is None and copy.resid is None
    assert len(pickle.dumps(copy)) < size
    with pytest.raises(sl.errors.DataError, match="remove_data"):
        copy.profile_re(0, "re")


def test_get_distribution_draws_have_the_model_variance():
    model = _models(sl, "formula")  # random intercept and slope on z per group
    params = np.r_[1.0, 0.5, -0.3, 0.2, 2.0, 0.3, 0.5]  # β, cov_re/scale (lower triangle)
    dist = model.get_distribution(params, 1.5, None)
    draws = np.array([dist.rvs(0, rng=k) for k in range(600)])
    Z = np.column_stack([np.ones(len(DATA)), DATA["z"]])
    cov = 1.5 * np.array([[2.0, 0.3], [0.3, 0.5]])
    expected = np.einsum("ij,jk,ik->i", Z, cov, Z) + 1.5
    np.testing.assert_allclose(draws.mean(0), model.exog @ params[:4], atol=0.5)
    np.testing.assert_allclose(draws.var(0).mean(), expected.mean(), rtol=0.06)
    assert np.array_equal(dist.rvs(0, rng=3), dist.rvs(0, rng=3))


def test_fit_regularized_l1_is_statsmodels():
    rs = np.random.RandomState(3453)
    exog = rs.normal(size=(400, 5))
    groups = np.kron(np.arange(100), np.ones(4))
    endog = exog[:, 0] - exog[:, 2] + np.kron(rs.normal(size=100), np.ones(4))
    endog = endog + rs.normal(size=400)
    for alpha in (1.0, 10 * np.ones(5), 40.0):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            theirs = sm.MixedLM(endog, exog, groups).fit_regularized(alpha=alpha)
        ours = sl.MixedLM(endog, exog, groups).fit_regularized(alpha=alpha)
        np.testing.assert_allclose(ours.fe_params, theirs.fe_params, rtol=1e-3, atol=1e-5)
        assert ours.scale == pytest.approx(theirs.scale, rel=1e-3)
        assert ours.llf == pytest.approx(theirs.llf, rel=1e-5)
        assert np.array_equal(np.isnan(ours.bse), np.isnan(theirs.bse))


def test_fit_regularized_penalty_objects_maximize_the_penalized_likelihood():
    rs = np.random.RandomState(3453)
    exog = rs.normal(size=(400, 5))
    groups = np.kron(np.arange(100), np.ones(4))
    endog = exog[:, 0] - exog[:, 2] + np.kron(rs.normal(size=100), np.ones(4))
    endog = endog + rs.normal(size=400)
    model = sl.MixedLM(endog, exog, groups)
    plain = model.fit()
    zero = model.fit_regularized(method=penalties.L2(), alpha=0.0)
    np.testing.assert_allclose(zero.fe_params, plain.fe_params, rtol=1e-6)
    pen = penalties.L2()
    res = model.fit_regularized(method=pen, alpha=10.0)
    assert np.sum(res.fe_params**2) < np.sum(plain.fe_params**2)  # shrunk

    def objective(r):
        return model.loglike(r.params_object, profile_fe=False) - pen.func(r.fe_params)

    assert objective(res) >= objective(plain)
    huber = model.fit_regularized(method=penalties.PseudoHuber(0.3), alpha=1.0)
    assert huber.converged and np.all(np.isfinite(huber.bse))
