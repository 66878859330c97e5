"""GLS β, Cov(β) and conditional modes against dense algebra and against sl.lmer."""

import warnings

import numpy as np
import pandas as pd
import pytest

import sparselme as sl
from sparselme.errors import ConvergenceWarning
from sparselme.moments import fit_moments, in_memory, layout_for

from .dense import Dense, small_design


def _check_against_dense(fit, d, sigma2, rtol=1e-7):
    beta, cov, modes = d.gls(sigma2)
    np.testing.assert_allclose(fit.beta, beta, rtol=rtol, atol=1e-9)
    np.testing.assert_allclose(fit.beta_cov, cov, rtol=rtol, atol=1e-12)
    for got, want in zip(fit.modes, modes):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("solver", ["cg", "backfitting"])
@pytest.mark.parametrize("levels", [(15, 9), (9, 8, 6)])
def test_gls_equals_dense(solver, levels):
    cols = small_design(21, n=140, levels=levels, p_extra=2, sigma2=(1.0,) * (len(levels) + 1))
    factors = [f"f{k}" for k in range(len(levels))]
    lay = layout_for(cols, factors, x=["x1", "x2"])
    sigma2 = np.array([0.8, 0.3, 0.5, 1.2][: len(levels)] + [1.1])
    fit = fit_moments(
        in_memory(cols, 31),
        lay,
        components=sigma2,
        variance_reps=0,
        solver=solver,
        tol=1e-11,
        max_iter=2000,
    )
    assert fit.converged
    _check_against_dense(fit, Dense(cols, factors, list(lay.levels), ["x1", "x2"]), sigma2)


def test_zero_component_drops_the_factor():
    cols = small_design(22, n=100, levels=(10, 7), p_extra=1)
    lay = layout_for(cols, ["f0", "f1"], x=["x1"])
    sigma2 = np.array([0.9, 0.0, 1.0])
    fit = fit_moments(in_memory(cols), lay, components=sigma2, variance_reps=0, tol=1e-11)
    assert np.all(fit.modes[1] == 0)
    _check_against_dense(fit, Dense(cols, ["f0", "f1"], list(lay.levels), ["x1"]), sigma2)


def test_nonconvergence_warns():
    cols = small_design(23, n=100, levels=(10, 7), p_extra=1)
    lay = layout_for(cols, ["f0", "f1"], x=["x1"])
    with pytest.warns(ConvergenceWarning, match="max_iter"):
        fit = fit_moments(in_memory(cols), lay, variance_reps=0, tol=1e-14, max_iter=2)
    assert not fit.converged


def test_matches_lmer_given_lmer_components():
    """Given REML's components, the GLS step reproduces lmer's β, vcov and modes."""
    cols = small_design(24, n=400, levels=(40, 15), p_extra=2, sigma2=(1.0, 0.5, 1.0))
    df = pd.DataFrame(cols)
    for f in ("f0", "f1"):
        df[f] = pd.Categorical(df[f])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = sl.lmer("y ~ x1 + x2 + (1|f0) + (1|f1)", df)
    vc = res.varcorr.set_index("grp")["vcov"]
    sigma2 = np.array([vc["f0"], vc["f1"], vc["Residual"]])
    lay = layout_for(df, ["f0", "f1"], x=["x1", "x2"])
    fit = fit_moments(in_memory(df, 97), lay, components=sigma2, variance_reps=0, tol=1e-12)
    np.testing.assert_allclose(fit.beta, res.fe_params.to_numpy(), rtol=1e-6)
    np.testing.assert_allclose(fit.beta_cov, res.cov_params().to_numpy(), rtol=1e-6)
    modes = res.ranef(condvar=False)
    for k, f in enumerate(("f0", "f1")):
        np.testing.assert_allclose(fit.modes[k], modes[f].iloc[:, 0].to_numpy(), atol=1e-6)
