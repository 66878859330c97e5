"""drop1 (lme4's likelihood-ratio and lmerTest's F tests) and ranova (lmerTest), against
frozen lme4 1.1-31 / lmerTest 3.1-3 tables."""

from __future__ import annotations

import warnings
from functools import cache

import numpy as np
import pytest
from references import lme4_parity as reference  # noqa: E402

import sparselme as sl

DATA = {
    "drop1_lme4_chisq": "sleepstudy",
    "drop1_lmerTest_satterthwaite": "sleepstudy",
    "drop1_cake_chisq": "cake",
    "drop1_cake_main_effects_lmerTest": "cake",
    "ranova_sleepstudy_rs": "sleepstudy",
    "ranova_sleepstudy_two_terms": "sleepstudy",
    "ranova_penicillin": "Penicillin",
    "ranova_dyestuff": "Dyestuff",
    "ranova_dyestuff_ml": "Dyestuff",
    "ranova_two_slopes": "sleepstudy",
}


@cache
def fitted(key: str, reml: bool | None = None):
    ref = reference(key)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sl.errors.SingularFitWarning)
        return sl.lmer(
            ref["formula"], sl.datasets.load(DATA[key]), REML=ref["REML"] if reml is None else reml
        )


def column(table: dict, name: str) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in table[name]], dtype=float)


def check_table(got, table, rtol, skip=()):
    assert list(got.index) == table["rownames"]
    for name in got.columns:
        if name in skip:
            continue
        np.testing.assert_allclose(
            got[name].to_numpy(float), column(table, name), rtol=rtol, atol=1e-12, err_msg=name
        )
    assert got.attrs["heading"][0] == table["heading"][0]


@pytest.mark.parametrize("key", ["drop1_lme4_chisq", "drop1_cake_chisq"])
def test_drop1_likelihood_ratio_matches_lme4(key):
    table = reference(key)["table"]
    got = fitted(key).drop1(test="Chisq")
    assert list(got.columns) == ["npar", "AIC", "LRT", "Pr(Chi)"]
    check_table(got, table, rtol=1e-6)
    none = fitted(key).drop1(test="none")
    assert list(none.columns) == ["npar", "AIC"]
    np.testing.assert_allclose(none["AIC"], got["AIC"])


def test_drop1_of_a_reml_fit_refits_with_ml_as_lme4():
    """lme4's extractAIC refits REML fits with ML: the REML fit gives the ML table."""
    table = reference("drop1_lme4_chisq")["table"]
    got = fitted("drop1_lme4_chisq", reml=True).drop1(test="Chisq")
    check_table(got, table, rtol=1e-6)


@pytest.mark.parametrize(
    "key", ["drop1_lmerTest_satterthwaite", "drop1_cake_main_effects_lmerTest"]
)
def test_drop1_f_tests_match_lmertest(key):
    table = reference(key)["table"]
    got = fitted(key).drop1()
    assert list(got.columns) == ["Sum Sq", "Mean Sq", "NumDF", "DenDF", "F value", "Pr(>F)"]
    check_table(got, table, rtol=2e-5)


def test_drop1_respects_marginality_and_checks_arguments():
    res = fitted("drop1_cake_chisq")
    assert list(res.drop1().index) == ["recipe:temperature"]  # main effects are not marginal
    kr = fitted("drop1_lmerTest_satterthwaite").drop1(ddf="Kenward-Roger")
    assert kr.attrs["heading"][0] == "Single term deletions using Kenward-Roger's method:"
    assert (kr["DenDF"] > 0).all()
    with pytest.raises(ValueError, match="test must be"):
        res.drop1(test="LRT")
    with pytest.raises(ValueError, match="ddf must be"):
        res.drop1(ddf="containment")
    with pytest.raises(ValueError, match="F tests need"):
        res.drop1(ddf="normal")


@pytest.mark.parametrize(
    "key",
    [
        "ranova_sleepstudy_rs",
        "ranova_sleepstudy_two_terms",
        "ranova_penicillin",
        "ranova_dyestuff",
        "ranova_dyestuff_ml",
    ],
)
def test_ranova_matches_lmertest(key):
    ref = reference(key)
    got = fitted(key).ranova()
    assert list(got.columns) == ["npar", "logLik", "AIC", "LRT", "Df", "Pr(>Chisq)"]
    assert np.all(got["logLik"].to_numpy() >= column(ref["table"], "logLik") - 1e-6)
    check_table(got, ref["table"], rtol=1e-7, skip=("Pr(>Chisq)",))
    np.testing.assert_allclose(
        got["Pr(>Chisq)"].iloc[1:], column(ref["table"], "Pr(>Chisq)")[1:], rtol=1e-5
    )


def test_ranova_with_two_random_slopes_reaches_at_least_lmertest():
    """(Days + I(Days^2) | Subject): sparselme's likelihoods are at least lmerTest's frozen
    ones for the full and every reduced fit, the table's layout the same."""
    ref = reference("ranova_two_slopes")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sl.errors.ConvergenceWarning)  # so does the gradient check
        got = fitted("ranova_two_slopes").ranova()
    table = ref["table"]
    assert list(got.index) == table["rownames"]
    np.testing.assert_array_equal(got["npar"], column(table, "npar"))
    np.testing.assert_array_equal(got["Df"].iloc[1:], column(table, "Df")[1:])
    assert np.all(got["logLik"].to_numpy() >= column(table, "logLik") - 1e-6)
