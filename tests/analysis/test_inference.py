"""Likelihood-ratio, t and F tests against frozen lme4 / lmerTest / pbkrtest numbers."""

from __future__ import annotations

import numpy as np
import pytest
from lme4_cases import (
    INFERENCE_CASES,
    LMERTEST,
    PUBLIC,
    SIG3,
    case_fit,
    fit,
    num,
    sleepstudy,
    vec,
)

import sparselme as sl
from sparselme.analysis import inference

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


