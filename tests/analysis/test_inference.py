"""Inference against frozen lme4 / lmerTest / pbkrtest numbers (no R needed).

References: tests/reference/lme4/inference_public.json (the issue's public numbers) and
tests/reference/lmertest/inference.json (written by make_reference.R next to it).
"""

from __future__ import annotations

import json
import time
import warnings
from functools import cache

import numpy as np
import pandas as pd
import pytest
import scipy.linalg as la
from dense_reference import dense_lambda, dense_z
from references import REFERENCE  # noqa: E402

import sparselme as sl
from sparselme.analysis import inference, profile
from sparselme.analysis.resampling import bootstrap, refit

REF = REFERENCE
PUBLIC = json.loads((REF / "lme4" / "inference_public.json").read_text())
LMERTEST = json.loads((REF / "lmertest" / "inference.json").read_text())
INFERENCE_CASES = [
    "sleepstudy",
    "sleepstudy_ml",
    "sleepstudy_unbalanced",
    "dietox_factors",
    "cake",
    "penicillin",
]
SIG3 = 1e-3  # "3 significant digits"


def vec(values) -> list:
    """A JSON vector (jsonlite writes length-one vectors as scalars)."""
    return list(values) if isinstance(values, list) else [values]


def num(values) -> np.ndarray:
    """JSON numbers with R's "NA" as NaN."""
    return np.array([np.nan if v == "NA" else v for v in vec(values)], dtype=float)


@cache
def data(name: str, rows: tuple[int, ...] | None = None) -> pd.DataFrame:
    d = sl.datasets.load(name)
    return d.iloc[list(rows)] if rows else d


@cache
def fit(formula: str, name: str, reml: bool = True, rows: tuple[int, ...] | None = None):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sl.errors.SingularFitWarning)
        return sl.lmer(formula, data(name, rows), REML=reml)


def case_fit(case: str):
    ref = LMERTEST[case]
    rows = tuple(ref["rows"]) if ref["rows"] else None
    return ref, fit(ref["formula"], ref["data"], ref["REML"], rows)


def sleepstudy():
    return fit("Reaction ~ Days + (Days | Subject)", "sleepstudy")


# ======================================================================================
# Likelihood-ratio tests
# ======================================================================================


def test_anova_dietox_public(capsys):
    ref = PUBLIC["anova_dietox"]
    m1, m2 = (fit(f, "dietox") for f in ref["models"])
    table = sl.anova(m2, m1)  # given out of order: sorted by npar
    assert "refitting model(s) with ML (instead of REML)" in capsys.readouterr().err
    assert list(table.columns) == [
        "npar", "AIC", "BIC", "logLik", "deviance", "Chisq", "Df", "Pr(>Chisq)"
    ]  # fmt: skip
    assert list(table.index) == ["m1", "m2"]  # the variables' names, as R's deparse
    np.testing.assert_array_equal(table["npar"], ref["npar"])
    for col in ["AIC", "BIC", "logLik", "deviance"]:
        np.testing.assert_allclose(table[col], ref[col], atol=2e-4)
    assert np.isnan(table["Chisq"].iloc[0])
    assert table["Chisq"].iloc[1] == pytest.approx(374.359, abs=1e-3)
    assert table["Df"].iloc[1] == 2
    assert table["Pr(>Chisq)"].iloc[1] == pytest.approx(ref["p"][1], rel=1e-3)


def test_anova_three_models_sorted_by_npar():
    ref = LMERTEST["anova_sleepstudy"]
    fits = [fit(f, "sleepstudy") for f in ref["models"]]
    table = sl.anova(*fits, names=["m_cor", "m_int", "m_ind"])
    assert list(table.index) == ref["order"]
    np.testing.assert_array_equal(table["npar"], ref["npar"])
    np.testing.assert_allclose(table["logLik"], ref["logLik"], atol=1e-4)
    np.testing.assert_allclose(table["Chisq"], num(ref["Chisq"]), atol=1e-3)
    np.testing.assert_allclose(table["Pr(>Chisq)"], num(ref["p"]), rtol=SIG3)
    assert table.attrs["formulas"]["m_cor"] == ref["models"][0]


def test_anova_ml_fits_are_not_refit(capsys):
    m1 = fit("Reaction ~ Days + (1 | Subject)", "sleepstudy", reml=False)
    m2 = fit("Reaction ~ Days + (Days | Subject)", "sleepstudy", reml=False)
    table = m1.anova(m2)
    assert capsys.readouterr().err == ""
    assert table["logLik"].tolist() == [m1.llf, m2.llf]


def test_anova_rejects_different_data():
    m1 = sleepstudy()
    m2 = fit("Reaction ~ Days + (1 | Subject)", "sleepstudy", rows=tuple(range(100)))
    with pytest.raises(ValueError, match="same number of observations"):
        sl.anova(m1, m2)


# ======================================================================================
# Satterthwaite and Kenward-Roger t tests
# ======================================================================================


def test_satterthwaite_and_kenward_roger_sleepstudy_public():
    ref = PUBLIC["satterthwaite_sleepstudy"]
    res = sleepstudy()
    satt = res.coef_table()
    assert list(satt.columns) == ["Estimate", "Std. Error", "df", "t value", "Pr(>|t|)"]
    assert list(satt.index) == ["(Intercept)", "Days"]
    np.testing.assert_allclose(satt["Estimate"], ref["estimate"], rtol=1e-6)
    np.testing.assert_allclose(satt["Std. Error"], ref["se"], rtol=SIG3)
    np.testing.assert_allclose(satt["df"], ref["df"], rtol=SIG3)
    np.testing.assert_allclose(satt["t value"], ref["t"], rtol=SIG3)
    np.testing.assert_allclose(satt["Pr(>|t|)"], ref["p"], rtol=5e-3)
    kr = res.coef_table(ddf="Kenward-Roger")
    np.testing.assert_allclose(kr["df"], ref["kr_df"], rtol=SIG3)
    np.testing.assert_allclose(kr["Std. Error"], ref["kr_se"], rtol=SIG3)


@pytest.mark.parametrize("case", INFERENCE_CASES)
def test_satterthwaite_matches_lmertest(case):
    ref, res = case_fit(case)
    table = res.coef_table("Satterthwaite")
    want = ref["satterthwaite"]
    assert [n.replace(" ", "") for n in table.index] == vec(want["names"])
    se = num(want["se"])
    # estimates near zero: compared on the scale of their standard errors
    assert np.all(np.abs(table["Estimate"] - num(want["estimate"])) <= SIG3 * se)
    np.testing.assert_allclose(table["t value"], num(want["t"]), rtol=SIG3, atol=SIG3)
    np.testing.assert_allclose(table["Std. Error"], se, rtol=SIG3)
    np.testing.assert_allclose(table["df"], num(want["df"]), rtol=SIG3)
    # tiny p-values amplify the last digits of t: a looser relative tolerance
    np.testing.assert_allclose(table["Pr(>|t|)"], num(want["p"]), rtol=5e-3)


@pytest.mark.parametrize("case", INFERENCE_CASES)
def test_variance_parameter_derivatives_match_lmertest(case):
    """The deviance Hessian in (θ, σ) and ∂Var(β̂)/∂(θ, σ) to 3 significant digits."""
    ref, res = case_fit(case)
    der = inference.varpar_derivatives(res)
    want = np.array(ref["vcov_varpar"], dtype=float).reshape(der.vcov_varpar.shape)
    scale = np.sqrt(np.outer(np.diag(want), np.diag(want)))
    np.testing.assert_allclose(der.vcov_varpar / scale, want / scale, atol=SIG3)
    for got, J in zip(der.jacobian, ref["jacobian"]):
        J = np.array(J, dtype=float).reshape(got.shape)
        np.testing.assert_allclose(got, J, rtol=2e-3, atol=SIG3 * np.max(np.abs(J)))


@pytest.mark.parametrize("case", [c for c in INFERENCE_CASES if LMERTEST[c]["REML"]])
def test_kenward_roger_matches_pbkrtest(case):
    ref, res = case_fit(case)
    table = res.coef_table("Kenward-Roger")
    want = ref["kenward_roger"]
    np.testing.assert_allclose(table["df"], num(want["df"]), rtol=SIG3)
    np.testing.assert_allclose(table["Std. Error"], num(want["se"]), rtol=SIG3)
    np.testing.assert_allclose(table["Pr(>|t|)"], num(want["p"]), rtol=5e-3, atol=1e-6)
    from sparselme.analysis.kenward_roger import kenward_roger

    adj = np.array(ref["vcov_adj"], dtype=float).reshape(res.k_fe, res.k_fe)
    se = np.sqrt(np.diag(adj))
    np.testing.assert_allclose(
        kenward_roger(res).vcov_adj / np.outer(se, se), adj / np.outer(se, se), atol=SIG3
    )


def test_kenward_roger_needs_reml():
    res = fit("Reaction ~ Days + (Days | Subject)", "sleepstudy", reml=False)
    with pytest.raises(ValueError, match="REML"):
        res.coef_table("Kenward-Roger")


def test_normal_coef_table_and_bad_ddf():
    res = sleepstudy()
    z = res.coef_table("normal")
    assert np.all(np.isinf(z["df"]))
    np.testing.assert_allclose(z["Std. Error"], res.bse_fe)
    with pytest.raises(ValueError, match="ddf"):
        res.coef_table("containment")


# ======================================================================================
# F tests of fixed-effect terms
# ======================================================================================

ANOVA_CASES = [
    (case, key)
    for case in INFERENCE_CASES
    for key in LMERTEST[case]["anova"]
    if LMERTEST[case]["anova"][key]["terms"]
]


@pytest.mark.parametrize("case,key", ANOVA_CASES)
def test_f_tests_match_lmertest(case, key):
    ref, res = case_fit(case)
    want = ref["anova"][key]
    typ, ddf = key[4], key.split("_", 1)[1]
    table = res.anova(type=int(typ), ddf=ddf)
    assert list(table.columns) == ["Sum Sq", "Mean Sq", "NumDF", "DenDF", "F value", "Pr(>F)"]
    assert list(table.index) == vec(want["terms"])
    np.testing.assert_array_equal(table["NumDF"], num(want["numdf"]))
    for col, k in [("Sum Sq", "sumsq"), ("Mean Sq", "meansq"), ("DenDF", "dendf"),
                   ("F value", "F")]:  # fmt: skip
        np.testing.assert_allclose(table[col], num(want[k]), rtol=SIG3, err_msg=col)
    np.testing.assert_allclose(table["Pr(>F)"], num(want["p"]), rtol=5e-3, atol=1e-12)


def test_f_test_of_single_column_is_squared_t():
    res = sleepstudy()
    t = res.coef_table()
    f = res.anova(type=1)
    assert f.loc["Days", "F value"] == pytest.approx(t.loc["Days", "t value"] ** 2, rel=1e-10)
    assert f.loc["Days", "DenDF"] == pytest.approx(t.loc["Days", "df"], rel=1e-10)
    with pytest.raises(ValueError, match="type"):
        res.anova(type=2)


# ======================================================================================
# Profile and Wald intervals
# ======================================================================================

CI_CASES = ["confint_dyestuff", "confint_penicillin", "confint_sleepstudy_ml",
            "confint_sleepstudy_indep"]  # fmt: skip


def _ci_fit(ref: dict):
    formula = ref["formula"].replace("((1 | Subject) + (0 + Days | Subject))", "(Days || Subject)")
    return fit(formula, ref["data"], ref["REML"])


def test_profile_and_wald_intervals_sleepstudy_public():
    ref = PUBLIC["confint_sleepstudy"]
    res = sleepstudy()
    prof = res.confint(method="profile")
    assert list(prof.index) == ref["names"]
    assert list(prof.columns) == ["2.5 %", "97.5 %"]
    np.testing.assert_allclose(prof["2.5 %"], ref["profile_lo"], rtol=SIG3)
    np.testing.assert_allclose(prof["97.5 %"], ref["profile_hi"], rtol=SIG3)
    wald = res.confint(method="wald")
    assert list(wald.index) == ref["names"] and list(wald.columns) == ["2.5 %", "97.5 %"]
    assert wald.iloc[:4].isna().all().all()  # variance parameters: NaN, as in lme4
    np.testing.assert_allclose(wald["2.5 %"], num(ref["wald_lo"]), rtol=SIG3)
    np.testing.assert_allclose(wald["97.5 %"], num(ref["wald_hi"]), rtol=SIG3)


@pytest.mark.parametrize("case", CI_CASES)
def test_profile_intervals_match_lme4(case):
    ref = LMERTEST[case]
    res = _ci_fit(ref)
    ci = profile.confint(res)
    assert list(ci.index) == ref["names"]
    np.testing.assert_allclose(ci["2.5 %"], num(ref["profile_lo"]), rtol=SIG3)
    np.testing.assert_allclose(ci["97.5 %"], num(ref["profile_hi"]), rtol=SIG3)
    wald = res.confint(method="Wald")
    np.testing.assert_allclose(wald["2.5 %"], num(ref["wald_lo"]), rtol=SIG3)


def test_confint_parm_and_level():
    res = fit("Yield ~ 1 + (1 | Batch)", "Dyestuff")
    ci = res.confint(parm=["sigma"], level=0.9)
    assert list(ci.index) == ["sigma"] and list(ci.columns) == ["5 %", "95 %"]
    assert list(res.confint(parm="beta_", method="wald").index) == ["(Intercept)"]
    with pytest.raises(KeyError, match="unknown parameter"):
        res.confint(parm=["tau"])
    with pytest.raises(ValueError, match="method"):
        res.confint(method="asymptotic")


def test_profile_traces():
    res = fit("Yield ~ 1 + (1 | Batch)", "Dyestuff")
    prof = res.profile()
    trace = prof.trace
    assert prof.parameters == ["sd_(Intercept)|Batch", "sigma", "(Intercept)"]
    assert {"parameter", "value", "zeta", "sigma", "(Intercept)"} <= set(trace.columns)
    for name, part in trace.groupby("parameter"):
        part = part.sort_values("value")
        assert np.all(np.diff(part["zeta"]) > 0), name  # monotone
        assert part["zeta"].abs().min() < 1e-8  # passes through the estimate
        assert part["zeta"].max() > 2.5 and part["zeta"].min() < -2.5 or name.startswith("sd_")
    ci = prof.confint()
    np.testing.assert_allclose(ci, profile.confint(res), rtol=1e-6)


def test_profile_plot():
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    prof = fit("Yield ~ 1 + (1 | Batch)", "Dyestuff").profile(which="theta_")
    fig = prof.plot()
    assert len([ax for ax in fig.axes if ax.get_visible()]) == 2


# ======================================================================================
# Parametric bootstrap
# ======================================================================================


@pytest.fixture(scope="module")
def dyestuff_boot():
    res = fit("Yield ~ 1 + (1 | Batch)", "Dyestuff")
    return res, bootstrap(res, nsim=200, seed=2024, verbose=False)


def test_bootstrap_covers_profile_centres(dyestuff_boot):
    res, boot = dyestuff_boot
    ci = boot.confint()
    prof = profile.confint(res)
    assert list(ci.index) == list(prof.index) == ["sd_(Intercept)|Batch", "sigma", "(Intercept)"]
    centre = prof.mean(axis=1)
    assert np.all((ci["2.5 %"] <= centre) & (centre <= ci["97.5 %"]))
    assert boot.n_failed == 0


def test_bootstrap_is_reproducible(dyestuff_boot):
    res, boot = dyestuff_boot
    again = res.bootstrap(nsim=200, seed=2024, verbose=False)
    pd.testing.assert_frame_equal(boot.t, again.t)
    other = res.bootstrap(nsim=200, seed=7, verbose=False)
    assert not np.allclose(other.t.to_numpy(), boot.t.to_numpy())


def test_bootstrap_in_processes_gives_the_same_replicates(dyestuff_boot):
    res, boot = dyestuff_boot
    par = bootstrap(res, nsim=40, seed=2024, n_jobs=2, verbose=False)
    pd.testing.assert_frame_equal(par.t, boot.t.iloc[:40])


def test_bootstrap_progress_bar_and_custom_statistic(capsys):
    res = fit("Yield ~ 1 + (1 | Batch)", "Dyestuff")
    boot = sl.bootstrap(res, 20, lambda r: r.sigma, seed=1, verbose=True)
    err = capsys.readouterr().err
    assert "bootstrap" in err and "20/20" in err
    assert list(boot.t.columns) == ["t1"] and boot.t.shape == (20, 1)
    assert boot.t0.iloc[0] == pytest.approx(res.sigma)
    assert set(boot.summary().columns) == {"original", "bias", "std. error", "median"}
    ci = res.confint(method="boot", nsim=30, seed=3, verbose=False)
    assert list(ci.index) == profile.parameter_names(res)


def test_refit_reuses_the_factorization_and_matches_a_fresh_fit():
    res = fit("diameter ~ 1 + (1 | plate) + (1 | sample)", "Penicillin")
    y = res.simulate(1, seed=11)["sim_1"].to_numpy()
    chol = res.model.pls.chol
    again = refit(res, y)
    assert again.model.pls.chol is chol  # the same symbolic factorization
    frame = data("Penicillin").assign(diameter=y)
    fresh = sl.lmer("diameter ~ 1 + (1 | plate) + (1 | sample)", frame)
    assert again.llf == pytest.approx(fresh.llf, abs=1e-6)
    np.testing.assert_allclose(again.fe_params, fresh.fe_params, rtol=1e-6)
    # the original fit still evaluates correctly on the shared factor
    assert res.model.objective(res.theta, True) == pytest.approx(res.optsum.fmin, abs=1e-9)
    cv = res.ranef().condvar["plate"][0, 0, 0]
    assert cv == pytest.approx(_dense_condvar(res)[0][0, 0, 0], rel=1e-8)


# ======================================================================================
# Conditional variances
# ======================================================================================


def _dense_condvar(res) -> list[np.ndarray]:
    """Per term (L, k, k) σ² blocks of Λ(ΛᵀZᵀWZΛ + I)⁻¹Λᵀ by dense algebra."""
    model = res.model
    Lam = dense_lambda(model, res.theta)
    Z = dense_z(model)
    w = model.design.weights
    ZW = Z if w is None else Z * np.sqrt(w)[:, None]
    A = Lam.T @ ZW.T @ ZW @ Lam + np.eye(Lam.shape[0])
    V = res.scale * Lam @ la.inv(A) @ Lam.T
    out, at = [], 0
    for t in model.design.terms:
        blocks = np.array(
            [V[at + i * t.k : at + (i + 1) * t.k, at + i * t.k : at + (i + 1) * t.k]
             for i in range(t.nlevels)]
        )  # fmt: skip
        out.append(blocks)
        at += t.q
    return out


@pytest.mark.parametrize(
    "formula,name,factorization",
    [
        ("Reaction ~ Days + (Days | Subject)", "sleepstudy", "auto"),
        ("diameter ~ 1 + (1 | plate) + (1 | sample)", "Penicillin", "block"),
        ("diameter ~ 1 + (1 | plate) + (1 | sample)", "Penicillin", "sparse"),
        ("strength ~ 1 + (1 | batch/cask)", "Pastes", "sparse"),
        ("Weight ~ Time + (Time | Pig) + (1 | Litter)", "dietox", "auto"),
    ],
)
def test_conditional_variances_match_dense_inverse(formula, name, factorization):
    model = sl.LinearMixedModel.from_formula(formula, data(name), factorization=factorization)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = model.fit()
    got = res.condvar_blocks
    for g, want in zip(got, _dense_condvar(res)):
        np.testing.assert_allclose(g, want, rtol=1e-7, atol=1e-10 * np.max(np.abs(want)))


def test_conditional_variances_for_100k_levels():
    """One factor with 100,000 levels: closed form σ²θ²/(1 + θ² n_l), no q×q inverse."""
    rng = np.random.default_rng(5)
    L = 100_000
    g = rng.integers(L, size=3 * L)
    g[:L] = np.arange(L)  # every level observed
    b = rng.normal(0, 0.7, L)
    frame = pd.DataFrame({"g": g.astype(str), "x": rng.normal(size=3 * L)})
    frame["y"] = 1 + 0.5 * frame["x"] + b[g] + rng.normal(size=3 * L)
    res = sl.lmer("y ~ x + (1 | g)", frame)
    start = time.perf_counter()
    cv = res.ranef().condvar["g"][:, 0, 0]
    assert time.perf_counter() - start < 10
    theta = res.theta[0]
    counts = np.bincount(res.design.rows[0].codes, minlength=L)
    np.testing.assert_allclose(cv, res.scale * theta**2 / (1 + theta**2 * counts), rtol=1e-10)
