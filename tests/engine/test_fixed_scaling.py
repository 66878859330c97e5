"""Badly scaled predictors: fitted in centred, scaled columns, reported in the user's units.

``Days * 1e9`` and ``Days + 1e9`` are the same model as ``Days``: the same ML deviance,
the REML criterion shifted by the known log|det A|² of the reparametrization, estimates
and covariances transformed exactly.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest

import sparselme as sl
from sparselme.engine.fixed_scaling import FixedScaling

TIGHT = {"ftol_abs": 1e-12, "xtol_abs": 1e-10}
SCALE = 1e9


@pytest.fixture(scope="module")
def sleep() -> pd.DataFrame:
    data = sl.datasets.load("sleepstudy")
    return data.assign(D9=data["Days"] * SCALE, Dp=data["Days"] + SCALE)


def fit(formula: str, data: pd.DataFrame, **kw) -> sl.MixedLMResults:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sl.errors.ScaleWarning)
        return sl.lmer(formula, data, **TIGHT, **kw)


# ---- the reparametrization itself ------------------------------------------------------------


def test_scaling_is_an_upper_triangular_reparametrization():
    rng = np.random.default_rng(1)
    n = 50
    X = np.column_stack([rng.normal(size=n) * 1e6, np.ones(n), rng.normal(size=n) + 1e9,
                         rng.integers(0, 2, n).astype(float)])  # fmt: skip
    y = rng.normal(size=n) + 5e8
    fixed = FixedScaling.of(X, y)
    A = fixed.A
    assert fixed.intercept == 1
    np.testing.assert_array_equal(np.tril(A, -1), 0)
    np.testing.assert_allclose(fixed.apply(X), X @ A, atol=1e-6)  # X @ A itself cancels
    size = np.abs(A).max() * np.abs(fixed.A_inv).max()  # A A⁻¹ cancels as much
    np.testing.assert_allclose(A @ fixed.A_inv, np.eye(4), atol=1e-15 * size)
    Xs = fixed.apply(X)
    np.testing.assert_allclose(np.sqrt(np.mean(Xs[:, 2:] ** 2, axis=0)), 1.0)
    # centred up to the rounding of the mean of values near 1e9 (the intercept absorbs it)
    np.testing.assert_allclose(Xs[:, 2:].mean(axis=0), 0.0, atol=1e-6)
    # least squares in X̃ and the centred y, mapped back, is least squares in X
    bs = np.linalg.lstsq(Xs, fixed.apply_y(y), rcond=None)[0]
    beta = fixed.beta(bs)
    resid = y - X @ beta
    assert abs(X[:, [0, 2, 3]].T @ resid).max() < 1e-6 * np.abs(X).max() * np.abs(resid).max()


def test_columns_constant_up_to_rounding_are_zeroed_for_the_rank_check():
    n = 20
    X = np.column_stack([np.ones(n), 0.1 * 3 + np.zeros(n), np.arange(n) + 1e9])
    X[::2, 1] = 0.3  # 0.1 * 3 and 0.3 differ by one ulp: no information
    fixed = FixedScaling.of(X, zero_rounding=True)
    assert fixed.scale[1] == 0 and fixed.scale[2] > 0
    assert not np.any(fixed.apply(X)[:, 1])


# ---- fits on Days * 1e9 and Days + 1e9 equal the fit on Days ---------------------------------


@pytest.mark.parametrize("re", ["(1 | Subject)", "(Days | Subject)"])
@pytest.mark.parametrize("reml", [True, False])
def test_days_times_1e9(sleep, re, reml):
    ref = fit(f"Reaction ~ Days + {re}", sleep, REML=reml)
    res = fit(f"Reaction ~ D9 + {re}", sleep, REML=reml)
    shift = math.log(SCALE) if reml else 0.0  # log|XᵀV⁻¹X| grows by 2 log 1e9
    assert res.llf == pytest.approx(ref.llf - shift, abs=1e-7)
    D = np.array([1.0, 1 / SCALE])
    np.testing.assert_allclose(res.fe_params, ref.fe_params * D, rtol=1e-7)
    np.testing.assert_allclose(res.bse_fe, ref.bse_fe * D, rtol=1e-6)
    np.testing.assert_allclose(res.vcov(), ref.vcov() * np.outer(D, D), rtol=1e-6)
    # θ at the optimum agrees to the optimizer's tolerance (the criterion is flat there)
    np.testing.assert_allclose(res.theta, ref.theta, rtol=1e-5, atol=1e-9)
    np.testing.assert_allclose(res.predict(), ref.predict(), rtol=1e-7)


@pytest.mark.parametrize("re", ["(1 | Subject)", "(Days | Subject)"])
@pytest.mark.parametrize("reml", [True, False])
def test_days_plus_1e9(sleep, re, reml):
    ref = fit(f"Reaction ~ Days + {re}", sleep, REML=reml)
    with warnings.catch_warnings():
        warnings.simplefilter("error", sl.errors.RankDeficiencyWarning)  # no column dropped
        res = fit(f"Reaction ~ Dp + {re}", sleep, REML=reml)
    assert res.llf == pytest.approx(ref.llf, abs=1e-7)  # det A = 1: the same criterion
    A = np.array([[1.0, -SCALE], [0.0, 1.0]])  # (b0, b1) of Days → of Days + 1e9
    np.testing.assert_allclose(res.fe_params, A @ ref.fe_params, rtol=1e-9)
    np.testing.assert_allclose(res.vcov(), A @ ref.vcov() @ A.T, rtol=1e-6)
    np.testing.assert_allclose(res.bse_fe.iloc[1], ref.bse_fe.iloc[1], rtol=1e-6)
    np.testing.assert_allclose(res.theta, ref.theta, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(res.predict(), ref.predict(), rtol=1e-8)


def test_random_slope_on_a_badly_scaled_column(sleep):
    """(D9 | Subject): θ for D9 is 1e-9 of θ for Days; the optimizer searches it rescaled."""
    ref = fit("Reaction ~ Days + (Days | Subject)", sleep)
    res = fit("Reaction ~ D9 + (D9 | Subject)", sleep)
    assert res.llf == pytest.approx(ref.llf - math.log(SCALE), abs=1e-6)
    np.testing.assert_allclose(res.theta, ref.theta * [1, 1 / SCALE, 1 / SCALE], rtol=1e-5)
    assert not res.is_singular and not ref.is_singular
    b, b_ref = res.ranef(condvar=False)["Subject"], ref.ranef(condvar=False)["Subject"]
    np.testing.assert_allclose(b["D9"], b_ref["Days"] / SCALE, rtol=1e-5)
    np.testing.assert_allclose(res.varcorr["sdcor"].iloc[[0, 2, 3]],
                               ref.varcorr["sdcor"].iloc[[0, 2, 3]], rtol=1e-5)  # fmt: skip


def test_inference_in_the_users_units(sleep):
    ref = fit("Reaction ~ Days + (1 | Subject)", sleep)
    res = fit("Reaction ~ Dp + (1 | Subject)", sleep)
    for ddf in ("Satterthwaite", "Kenward-Roger"):
        mine, theirs = res.coef_table(ddf), ref.coef_table(ddf)
        assert mine["df"].iloc[1] == pytest.approx(theirs["df"].iloc[1], rel=1e-5)
        assert mine["t value"].iloc[1] == pytest.approx(theirs["t value"].iloc[1], rel=1e-6)
    for kind in (1, 3):
        a, b = res.anova(type=kind), ref.anova(type=kind)
        np.testing.assert_allclose(a["F value"], b["F value"], rtol=1e-6)
        np.testing.assert_allclose(a["DenDF"], b["DenDF"], rtol=1e-5)
    wald, wald_ref = res.confint(method="Wald"), ref.confint(method="Wald")
    np.testing.assert_allclose(wald.loc["Dp"], wald_ref.loc["Days"], rtol=1e-6)
    prof, prof_ref = res.confint(parm=["Dp"]), ref.confint(parm=["Days"])
    np.testing.assert_allclose(prof.to_numpy(), prof_ref.to_numpy(), rtol=1e-4)


def test_bootstrap_and_simulate_in_the_users_units(sleep):
    ref = fit("Reaction ~ Days + (1 | Subject)", sleep)
    res = fit("Reaction ~ D9 + (1 | Subject)", sleep)
    boot = res.bootstrap(nsim=4, seed=3)
    boot_ref = ref.bootstrap(nsim=4, seed=3)
    np.testing.assert_allclose(boot.t["D9"], boot_ref.t["Days"] / SCALE, rtol=1e-5)
    np.testing.assert_allclose(boot.t["sigma"], boot_ref.t["sigma"], rtol=1e-5)
    np.testing.assert_allclose(res.simulate(2, seed=1), ref.simulate(2, seed=1), rtol=1e-7)


def test_statsmodels_api_in_the_users_units(sleep):
    ref = sl.mixedlm("Reaction ~ Days", sleep, groups="Subject", re_formula="~Days").fit()
    res = sl.mixedlm("Reaction ~ Dp", sleep, groups="Subject", re_formula="~Days").fit()
    assert res.llf == pytest.approx(ref.llf, abs=1e-6)
    A = np.array([[1.0, -SCALE], [0.0, 1.0]])
    np.testing.assert_allclose(res.fe_params, A @ ref.fe_params.to_numpy(), rtol=1e-8)
    np.testing.assert_allclose(res.bse.iloc[1:], ref.bse.iloc[1:], rtol=1e-5)
    cov, cov_ref = res.cov_params().to_numpy(), ref.cov_params().to_numpy()
    np.testing.assert_allclose(cov[:2, :2], A @ cov_ref[:2, :2] @ A.T, rtol=1e-5)
    np.testing.assert_allclose(res.cov_re, ref.cov_re, rtol=1e-6)


def test_badly_scaled_response_is_centred_too(sleep):
    ref = fit("Reaction ~ Days + (Days | Subject)", sleep)
    res = fit("Y ~ Days + (Days | Subject)", sleep.assign(Y=sleep["Reaction"] + SCALE))
    assert res.llf == pytest.approx(ref.llf, abs=1e-7)
    np.testing.assert_allclose(res.fe_params - [SCALE, 0], ref.fe_params, rtol=1e-8)
    np.testing.assert_allclose(res.theta, ref.theta, rtol=1e-6)


def test_random_slope_on_a_huge_offset_says_to_centre_it(sleep):
    with pytest.raises(sl.errors.IdentifiabilityError, match="centre it"):
        sl.lmer("Reaction ~ Days + (Dp | Subject)", sleep)


def test_no_raw_linear_algebra_error_when_the_fixed_part_fails(sleep, monkeypatch):
    """A Schur complement XᵀV⁻¹X that is not positive definite is a NumericalError."""
    model = sl.LinearMixedModel.from_formula("Reaction ~ Days + (1 | Subject)", sleep)
    from sparselme.engine import cholesky

    real = cholesky.lapack.dpotrf

    def broken(a, **kwargs):  # [X y] is the factor's last block: its pivot 2 (Days) fails
        U, _ = real(a, **kwargs)
        return U, model.pls.chol.q2 + 2

    monkeypatch.setattr(cholesky.lapack, "dpotrf", broken)
    with pytest.raises(sl.errors.NumericalError, match="fixed-effect columns"):
        model.pls.solve(np.array([1.0]))
    assert model.objective(np.array([1.0])) == np.inf  # the optimizer backs off


def test_statsmodels_api_with_a_residual_structure(sleep):
    """Its covariance is a finite-difference Hessian: taken in β̃, mapped back with A."""
    frame = sleep.assign(half=np.where(sleep["Days"] < 5, "a", "b"))
    kw = {"groups": "Subject", "residual": sl.VarIdent("half")}
    ref = sl.mixedlm("Reaction ~ Days", frame, **kw).fit()
    res = sl.mixedlm("Reaction ~ Dp", frame, **kw).fit()
    assert res.llf == pytest.approx(ref.llf, abs=1e-6)
    np.testing.assert_allclose(res.bse.iloc[1:], ref.bse.iloc[1:], rtol=1e-5)
    assert res.bse.iloc[0] == pytest.approx(SCALE * ref.bse.iloc[1], rel=1e-3)  # intercept at 0


def test_profiles_of_a_badly_scaled_random_slope(sleep):
    """Profile searches and root finding work on the parameters' own scales."""
    ref = fit("Reaction ~ Days + (Days | Subject)", sleep)
    res = fit("Reaction ~ D9 + (D9 | Subject)", sleep)
    mine = res.confint(parm=["sd_D9|Subject", "D9"]).to_numpy()
    theirs = ref.confint(parm=["sd_Days|Subject", "Days"]).to_numpy()
    np.testing.assert_allclose(mine, theirs / SCALE, rtol=1e-5)
