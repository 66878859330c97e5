"""lmer() against frozen lme4 1.1-31 fits of public datasets (tests/reference/lme4)."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from dense_reference import dense_deviance
from references import REFERENCE  # noqa: E402

import sparselme as sl

REF = REFERENCE / "lme4"
CASES = sorted(p.stem for p in REF.glob("*.json") if p.stem != "inference_public")

# Cases where our optimum differs from lme4's frozen estimates: there lme4's estimates are
# not a target; ours must reach at least its likelihood and be the dense criterion's optimum.
ESTIMATES_DIFFER = {"sitka_rs"}


def load_case(name: str) -> dict:
    return json.loads((REF / f"{name}.json").read_text())


_FITS: dict[str, tuple[dict, sl.LinearMixedModel, sl.MixedLMResults]] = {}


def fitted(name: str):
    if name not in _FITS:
        ref = load_case(name)
        model = sl.LinearMixedModel.from_formula(ref["formula"], sl.datasets.load(ref["data"]))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", sl.errors.SingularFitWarning)
            res = model.fit(REML=ref["REML"])
        _FITS[name] = (ref, model, res)
    return _FITS[name]


def lme4_criterion(ref: dict) -> float:
    return ref["REMLcrit"] if ref["REML"] else ref["deviance"]


@pytest.mark.parametrize("case", CASES)
def test_loglik_at_least_lme4s(case):
    ref, _, res = fitted(case)
    assert res.llf > ref["logLik"] - 1e-4


@pytest.mark.parametrize("case", CASES)
def test_objective_at_lme4_theta_equals_lme4_criterion(case):
    ref, model, _ = fitted(case)
    theta = np.atleast_1d(np.asarray(ref["theta"], dtype=float))
    crit = model.objective(theta, reml=ref["REML"])
    assert crit == pytest.approx(lme4_criterion(ref), rel=1e-6)


@pytest.mark.parametrize("case", sorted(set(CASES) - ESTIMATES_DIFFER))
def test_estimates_match_lme4(case):
    ref, _, res = fitted(case)
    assert res.llf == pytest.approx(ref["logLik"], abs=1e-4)
    assert list(res.fe_params.index) == list(ref["fixef"])
    np.testing.assert_allclose(res.fe_params.to_numpy(), list(ref["fixef"].values()), rtol=1e-4)
    np.testing.assert_allclose(res.bse_fe.to_numpy(), list(ref["se"].values()), rtol=1e-4)
    # covariances relative to the standard errors (off-diagonals can be near zero)
    se = np.asarray(list(ref["se"].values()))
    np.testing.assert_allclose(
        res.cov_params().to_numpy() / np.outer(se, se),
        np.array(ref["vcov"]) / np.outer(se, se),
        atol=2e-4,
    )
    assert res.sigma == pytest.approx(ref["sigma"], rel=1e-3)
    assert res.AIC == pytest.approx(ref["AIC"], abs=2e-4)
    assert res.BIC == pytest.approx(ref["BIC"], abs=2e-4)
    assert res.ngroups == ref["ngrps"]
    assert res.is_singular == ref["singular"]


@pytest.mark.parametrize("case", sorted(set(CASES) - ESTIMATES_DIFFER))
def test_variance_components_match_lme4(case):
    ref, _, res = fitted(case)
    vc = res.varcorr
    want = ref["varcorr"]
    assert list(vc["grp"]) == want["grp"]
    assert [None if v is None or v != v else v for v in vc["var1"]] == want["var1"]
    assert [None if v is None or v != v else v for v in vc["var2"]] == want["var2"]
    if ref["singular"]:
        np.testing.assert_allclose(vc["vcov"], want["vcov"], atol=1e-4)
    else:
        np.testing.assert_allclose(vc["vcov"], want["vcov"], rtol=1e-3)
        np.testing.assert_allclose(vc["sdcor"], want["sdcor"], rtol=1e-3)


@pytest.mark.parametrize("case", sorted(set(CASES) - ESTIMATES_DIFFER))
def test_conditional_modes_and_variances_match_lme4(case):
    ref, _, res = fitted(case)
    ranef = res.ranef()
    scale = max(1.0, float(np.max(np.abs(np.sqrt(res.varcorr["vcov"])))))
    for blup in ref["blups"]:
        frame = ranef[blup["group"]]
        assert list(frame.index[:5]) == blup["levels"]
        for col, values in blup["values"].items():
            np.testing.assert_allclose(
                frame[col].to_numpy()[:5], values, rtol=1e-3, atol=1e-4 * scale
            )
        if blup["postvar_first"] not in ({}, None, []):
            want = np.atleast_1d(np.asarray(blup["postvar_first"], dtype=float))
            got = ranef.condvar[blup["group"]][0].ravel()
            np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-6 * scale**2)


@pytest.mark.parametrize("case", sorted(set(CASES) - ESTIMATES_DIFFER))
def test_fitted_and_residuals_match_lme4(case):
    ref, _, res = fitted(case)
    tol = 1e-4 * res.sigma
    np.testing.assert_allclose(res.fittedvalues[:5], ref["fitted_head"], rtol=1e-5, atol=tol)
    np.testing.assert_allclose(res.resid[:5], ref["resid_head"], atol=tol)


@pytest.mark.parametrize("case", sorted(ESTIMATES_DIFFER))
def test_where_estimates_differ_ours_is_the_dense_criterions_optimum(case):
    """Likelihoods only: ours at least lme4's, and no θ near ours (nor lme4's θ) lower in a
    dense brute-force evaluation of the criterion."""
    ref, model, res = fitted(case)
    assert res.converged
    assert res.llf >= ref["logLik"] - 1e-6
    ours = dense_deviance(model, res.theta, ref["REML"])
    assert ours == pytest.approx(-2 * res.llf, rel=1e-8)  # the engine's criterion, densely
    theirs = np.atleast_1d(np.asarray(ref["theta"], dtype=float))
    assert dense_deviance(model, theirs, ref["REML"]) >= ours - 1e-8
    lower = model.pls.lower_bounds
    for j in range(len(res.theta)):
        for step in (-1e-3, 1e-3):
            theta = res.theta.copy()
            theta[j] = max(theta[j] + step * max(abs(theta[j]), 1e-2), lower[j])
            assert dense_deviance(model, theta, ref["REML"]) >= ours - 1e-8


def test_dyestuff2_is_flagged_singular_with_a_warning():
    ref = load_case("dyestuff2_singular")
    with pytest.warns(sl.errors.SingularFitWarning):
        res = sl.lmer(ref["formula"], sl.datasets.load("Dyestuff2"))
    assert res.is_singular
    assert res.theta[0] == 0.0
    assert "singular" in res.summary()


def test_insteval_eliminates_students_and_factors_the_departments_densely():
    """The crossed design's engine: s (2,972 levels) in closed form, a dense Schur
    complement of d (1,128); the evaluation count is deterministic for the same data."""
    ref, model, res = fitted("insteval")
    assert res.ngroups == {"s": 2972, "d": 1128}
    chol = model.pls.chol
    assert type(chol).__name__ == "BlockCholesky" and chol.q2 == 1128
    assert res.optsum.feval < 60
    assert -2 * res.llf <= lme4_criterion(ref) + 1e-6


def test_optsum_records_the_optimization():
    _, _, res = fitted("sleepstudy_rs")
    o = res.optsum
    # the start is the moment estimate, not the identity
    assert not np.allclose(o.initial, [1.0, 0.0, 1.0])
    assert np.allclose(o.initial, o.final, rtol=0.5, atol=0.1)
    np.testing.assert_array_equal(o.final, res.theta)
    assert o.fmin == pytest.approx(-2 * res.llf)
    assert o.feval > 10
    assert o.returnvalue.startswith("NLOPT_")
    assert 0 < o.time_per_evaluation < 1.0
    assert "evaluations" in str(o)


def test_summary_reports_the_lme4_layout():
    _, _, res = fitted("sleepstudy_rs")
    text = str(res.summary())
    for piece in (
        "REML criterion at convergence: 1743.6",
        "Subject",
        "(Intercept)",
        "Days",
        "Residual",
        "Number of obs: 180, groups:  Subject, 18",
    ):
        assert piece in text


def test_deviance_and_reml_criterion_are_consistent():
    ref, model, res = fitted("sleepstudy_rs")
    assert res.reml_criterion == pytest.approx(ref["REMLcrit"], abs=1e-6)
    # the ML deviance at the REML estimates comes from the ML objective
    assert res.deviance == pytest.approx(model.objective(res.theta, reml=False))
    assert np.isnan(res.aic) and np.isnan(res.bic)  # statsmodels' convention under REML


def test_weights_and_offset():
    data = sl.datasets.load("sleepstudy")
    rng = np.random.default_rng(1)
    w = rng.uniform(0.5, 2.0, len(data))
    off = rng.normal(size=len(data))
    model = sl.LinearMixedModel.from_formula(
        "Reaction ~ Days + (Days|Subject)", data, weights=w, offset=off
    )
    res = model.fit()
    assert dense_deviance(model, res.theta, True) == pytest.approx(-2 * res.llf, rel=1e-9)
    # an offset equal to a fixed-effect column shifts that coefficient by one
    base = sl.lmer("Reaction ~ Days + (Days|Subject)", data, weights=w)
    shifted = sl.lmer(
        "Reaction ~ Days + (Days|Subject)", data, weights=w, offset=data["Days"].to_numpy(float)
    )
    assert shifted.fe_params["Days"] == pytest.approx(base.fe_params["Days"] - 1, rel=1e-6)
    np.testing.assert_allclose(shifted.fittedvalues, base.fittedvalues, rtol=1e-6)


def test_rank_deficient_columns_are_dropped_with_a_named_warning():
    data = sl.datasets.load("sleepstudy").assign(Days2=lambda d: 2.0 * d["Days"])
    with pytest.warns(sl.errors.RankDeficiencyWarning, match="Days2"):
        res = sl.lmer("Reaction ~ Days + Days2 + (1|Subject)", data)
    assert list(res.fe_params.index) == ["(Intercept)", "Days"]
    ref = sl.lmer("Reaction ~ Days + (1|Subject)", data)
    assert res.llf == pytest.approx(ref.llf, abs=1e-8)
