"""Inference with structured covariances: profiles, intervals, bootstrap, LRTs, prediction."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import sparselme as sl
from sparselme.errors import NonlinearStructureError


@pytest.fixture(scope="module")
def panel() -> pd.DataFrame:
    """30 subjects × 5 occasions × 2 rows, an AR(1) subject effect (ρ = 0.6)."""
    rng = np.random.default_rng(5)
    n_subj, n_occ = 30, 5
    lag = np.abs(np.subtract.outer(np.arange(n_occ), np.arange(n_occ)))
    u = rng.normal(size=(n_subj, n_occ)) @ np.linalg.cholesky(0.6**lag).T
    g = np.repeat(np.arange(n_subj), 2 * n_occ)
    t = np.tile(np.repeat(np.arange(n_occ), 2), n_subj)
    x = rng.normal(size=len(g))
    y = 2 + 0.5 * x + 1.5 * u[g, t] + rng.normal(0, 0.8, len(g))
    return pd.DataFrame(
        {"y": y, "x": x, "g": pd.Categorical(g), "t": pd.Categorical(t), "time": t.astype(float)}
    )


@pytest.fixture(scope="module")
def ar1_fit(panel):
    return sl.lmer("y ~ x + ar1(0 + t | g)", panel, REML=False)


def test_natural_parameters_are_reported(ar1_fit):
    names = list(ar1_fit.sdcor.index)
    assert names == ["sd_t0..t4|g", "rho_t0..t4|g", "sigma"]
    rho = ar1_fit.sdcor["rho_t0..t4|g"]
    cov = ar1_fit.term_covariances()[0]
    assert rho == pytest.approx(cov[1, 0] / cov[0, 0])
    assert f"rho {rho:.4g}" in ar1_fit.summary()


def test_profile_interval_of_rho_is_where_the_deviance_rises_by_the_quantile(ar1_fit):
    """The interval limits of ρ are where the ML deviance, minimized over the other
    parameters with ρ held there (the fit driver, not the profiler), rises by χ²₁(0.95)."""
    ci = ar1_fit.confint(parm="rho_t0..t4|g")
    lo, hi = ci.iloc[0]
    rho = ar1_fit.sdcor["rho_t0..t4|g"]
    assert -1 < lo < rho < hi < 1
    model = ar1_fit.engine
    for limit in (lo, hi):
        held = model.optimize(False, fixed=np.array([np.nan, limit]))
        assert held.deviance - ar1_fit.deviance == pytest.approx(stats.chi2.ppf(0.95, 1), abs=2e-3)


def test_profile_traces_every_parameter(ar1_fit):
    prof = ar1_fit.profile(which="theta_")
    assert set(prof.parameters) == {"sd_t0..t4|g", "rho_t0..t4|g", "sigma"}
    trace = prof.trace[prof.trace.parameter == "rho_t0..t4|g"]
    assert trace.value.between(-1, 1).all()
    assert (np.diff(trace.sort_values("value").zeta) >= -1e-6).all()  # ζ increases with ρ


def test_bootstrap_intervals_of_the_structure(ar1_fit):
    ci = ar1_fit.confint(method="boot", nsim=25, seed=2)
    assert list(ci.index[:3]) == ["sd_t0..t4|g", "rho_t0..t4|g", "sigma"]
    lo, hi = ci.loc["rho_t0..t4|g"]
    assert -1 <= lo <= hi <= 1


def test_lrt_between_nested_structures(panel):
    order = ("homdiag", "ar1", "toep", "us")  # each nests the one before
    fits = {f: sl.lmer(f"y ~ x + {f}(0 + t | g)", panel, REML=False) for f in order}
    table = fits["ar1"].anova(fits["toep"], fits["us"], fits["homdiag"])
    np.testing.assert_array_equal(table.npar, [4, 5, 12, 18])
    np.testing.assert_array_equal(table.Df.iloc[1:], [1, 7, 6])
    dev = np.array([fits[f].deviance for f in order])
    np.testing.assert_allclose(table.Chisq.iloc[1:], -np.diff(dev), rtol=1e-8)
    assert np.all(np.diff(dev) <= 1e-6)
    assert table["Pr(>Chisq)"].iloc[1] < 1e-3  # the simulated AR(1) correlation is found


def test_prediction_and_simulation(ar1_fit, panel):
    np.testing.assert_allclose(ar1_fit.predict(panel), ar1_fit.fittedvalues, rtol=1e-10)
    fixed = ar1_fit.predict(panel, re_form="~0")
    X = np.column_stack([np.ones(len(panel)), panel.x])
    np.testing.assert_allclose(fixed, X @ ar1_fit.fe_params.to_numpy(), rtol=1e-10)
    sims = ar1_fit.simulate(nsim=200, seed=1)
    resid = sims.to_numpy() - X @ ar1_fit.fe_params.to_numpy()[:, None]
    cells = resid.reshape(30, 5, 2, 200)[:, :, 0]  # one row per subject and occasion
    lag1 = np.mean(cells[:, 1:] * cells[:, :-1]) / np.mean(cells**2)
    s = ar1_fit.sdcor
    expected = s.iloc[1] * s.iloc[0] ** 2 / (s.iloc[0] ** 2 + s.iloc[2] ** 2)
    assert lag1 == pytest.approx(expected, abs=0.05)


def test_kenward_roger_refuses_a_nonlinear_structure(panel):
    res = sl.lmer("y ~ x + cs(0 + t | g)", panel)
    with pytest.raises(NonlinearStructureError, match="Kenward-Roger"):
        res.anova(ddf="Kenward-Roger")
    table = res.coef_table()  # Satterthwaite needs no linear covariance model
    assert np.all(np.isfinite(table["df"]))
