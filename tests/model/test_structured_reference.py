"""Structured covariances against frozen glmmTMB 1.1.5 fits (tests/reference/glmmtmb).

Where glmmTMB's optimizer and another solver of the same model (nlme's gls/lme, or the
dense brute-force likelihood maximized in R from three starts) agree, the estimates are
compared with glmmTMB's. Where they do not (see the reference README), the optimum is the
other solver's: the fit must reach it, which is at least glmmTMB's value.
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from dense_reference import dense_deviance
from references import REFERENCE, load

import sparselme as sl

REF = load("glmmtmb", "reference")["cases"]


def _crossed() -> pd.DataFrame:
    d = pd.read_csv(Path(REFERENCE) / "glmmtmb" / "crossed_ar1.csv")
    return d.assign(occ=pd.Categorical(d.occ), subj=pd.Categorical(d.subj))


DATA = {
    "sleepstudy": lambda: sl.datasets.load("sleepstudy"),
    "Machines": lambda: sl.datasets.load("Machines"),
    "crossed_ar1.csv": _crossed,
}
# glmmTMB's formula in our spelling (R's factor(Days) is formulaic's C(Days))
FORMULAS = {
    "sleepstudy_diag": "Reaction ~ Days + diag(Days | Subject)",
    "sleepstudy_us": "Reaction ~ Days + us(Days | Subject)",
    "sleepstudy_ar1": "Reaction ~ Days + ar1(0 + C(Days) | Subject)",
    "sleepstudy_ar1_plus_intercept": "Reaction ~ Days + ar1(0 + C(Days) | Subject) + (1 | Subject)",
    "sleepstudy_cs": "Reaction ~ Days + cs(0 + C(Days) | Subject)",
    "sleepstudy_rr1": "Reaction ~ Days + rr(Days | Subject, d = 1)",
    "machines_cs": "score ~ Machine + cs(0 + Machine | Worker)",
    "machines_diag": "score ~ Machine + diag(0 + Machine | Worker)",
    "machines_toep": "score ~ Machine + toep(0 + Machine | Worker)",
    "machines_us": "score ~ Machine + us(0 + Machine | Worker)",
    "machines_nested": "score ~ Machine + (1 | Worker) + (1 | Worker:Machine)",
    "machines_rr1": "score ~ Machine + rr(0 + Machine | Worker, d = 1)",
    "machines_rr2": "score ~ Machine + rr(0 + Machine | Worker, d = 2)",
    "crossed_ar1": "y ~ x + ar1(0 + occ | subj) + (1 | item)",
    "crossed_plain": "y ~ x + (1 | subj) + (1 | item)",
}
# the optimum is another solver's (README, "Where glmmTMB stops short")
ELSEWHERE = {
    "sleepstudy_ar1_reml",
    "sleepstudy_ar1_ml",
    "sleepstudy_ar1_plus_intercept_reml",
    "sleepstudy_ar1_plus_intercept_ml",
    "sleepstudy_cs_reml",
}
CASES = [f"{name}_{kind}" for name in FORMULAS for kind in ("reml", "ml")]


def _fit(case: str):
    ref = REF[case]
    name = case.rsplit("_", 1)[0]
    return sl.lmer(FORMULAS[name], DATA[ref["data"]](), REML=ref["REML"]), ref


@pytest.mark.parametrize("case", [c for c in CASES if c not in ELSEWHERE])
def test_agrees_with_glmmtmb(case):
    res, ref = _fit(case)
    assert res.llf == pytest.approx(ref["logLik"], abs=2e-6)
    assert res.nobs == ref["nobs"]
    fixef = pd.Series(ref["fixef"])
    np.testing.assert_allclose(res.fe_params[fixef.index], fixef, rtol=1e-4)
    assert res.sigma == pytest.approx(ref["sigma"], rel=1e-4)
    # parameter counts: glmmTMB optimizes β only under ML; ours adds β and σ as lme4 does
    npar = ref["n_parameters"] + (res.k_fe if ref["REML"] else 0)
    assert res.npar == npar
    covs = res.term_covariances()
    assert len({t.name for t in res.terms}) == len(res.terms) == len(ref["varcorr"])
    for i, t in enumerate(res.terms):
        vc = ref["varcorr"][t.name]
        atol = 5e-4 * np.max(vc["variances"])
        np.testing.assert_allclose(covs[i], np.array(vc["cov"]), rtol=5e-4, atol=atol)
        natural = res.terms[i].covariance.to_natural(res.term_thetas()[i], res.sigma)
        if "ar1_rho" in vc:
            assert natural[1] == pytest.approx(vc["ar1_rho"], abs=5e-4)
        if "cs_rho" in vc:
            assert natural[-1] == pytest.approx(vc["cs_rho"], abs=5e-4)
        if "toep_rho_by_lag" in vc:
            np.testing.assert_allclose(natural[-2:], vc["toep_rho_by_lag"], atol=5e-4)


def test_reduced_rank_loadings_match_glmmtmb():
    """Λ Λᵀ is glmmTMB's; each loading column is glmmTMB's up to its sign."""
    res, ref = _fit("machines_rr2_ml")
    theirs = np.array(ref["rr_factor_loadings"][0])
    ours = res.terms[0].covariance.template(res.theta)[:, :2] * res.sigma
    signs = np.sign(np.sum(ours * theirs, axis=0))
    np.testing.assert_allclose(ours * signs, theirs, rtol=5e-3, atol=5e-3)


@pytest.mark.parametrize("case", sorted(ELSEWHERE))
def test_reaches_the_optimum_of_the_other_solver(case):
    res, ref = _fit(case)
    other = ref.get("nlme_equivalent") or ref["dense_check"]
    best = other.get("logLik", other.get("best_logLik"))
    assert res.llf == pytest.approx(best, abs=2e-6)
    assert res.llf >= ref["logLik_at_estimate"] - 1e-6
    # the sparse criterion is the dense brute force's at the estimate
    assert -2 * res.llf == pytest.approx(dense_deviance(res.engine, res.theta, res.reml), abs=1e-7)
    nat = res.sdcor
    if "ar1_rho" in other:
        assert nat.iloc[1] == pytest.approx(other["ar1_rho"], abs=1e-3)
        assert nat.iloc[0] ** 2 == pytest.approx(other["ar1_variance"], rel=5e-3)
        assert res.scale == pytest.approx(other["residual_variance"], rel=5e-3)
        if "intercept_variance" in other:
            assert nat.iloc[2] ** 2 == pytest.approx(other["intercept_variance"], rel=1e-2)
        fixef = pd.Series(other["fixef"])
        np.testing.assert_allclose(res.fe_params[fixef.index], fixef, rtol=1e-4)
    else:
        assert nat.iloc[10] == pytest.approx(other["cs_rho"], abs=1e-3)
        np.testing.assert_allclose(nat.iloc[:10], other["sd"], rtol=5e-3)
        assert res.scale == pytest.approx(other["residual_variance"], rel=5e-3)


def test_crossed_ar1_matches_the_dense_check():
    for case in ("crossed_ar1_reml", "crossed_ar1_ml"):
        res, ref = _fit(case)
        dense = ref["dense_check"]
        assert res.llf == pytest.approx(dense["best_logLik"], abs=2e-6)
        nat = res.sdcor
        assert nat.iloc[1] == pytest.approx(dense["ar1_rho"], abs=1e-3)
        assert nat.iloc[0] ** 2 == pytest.approx(dense["ar1_variance"], rel=5e-3)
        assert nat.iloc[2] ** 2 == pytest.approx(dense["item_variance"], rel=5e-3)
