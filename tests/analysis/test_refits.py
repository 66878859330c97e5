"""update(formula) with R's update-formula semantics, and refit(newresp), against lme4."""

from __future__ import annotations

from functools import cache

import numpy as np
import pandas as pd
import pytest
from references import lme4_parity as reference  # noqa: E402

import sparselme as sl
from sparselme.analysis.refits import update_formula
from sparselme.analysis.terms_tests import r_term_label
from sparselme.data.formula import parse_formula
from sparselme.errors import FormulaError


@cache
def sleepstudy():
    return sl.lmer("Reaction ~ Days + (Days | Subject)", sl.datasets.load("sleepstudy"))


def check_fit(res, ref, rtol=1e-5):
    assert res.reml == ref["REML"] and res.nobs == ref["nobs"]
    # names of transformed terms are R's up to the spelling of the power
    assert [r_term_label(n) for n in res.fixef.index] == ref["fixef_names"]
    np.testing.assert_allclose(res.fixef, list(ref["fixef"].values()), rtol=rtol)
    np.testing.assert_allclose(res.theta, ref["theta"], rtol=1e-3, atol=1e-4)
    assert res.llf >= ref["logLik"] - 1e-7  # never worse than lme4's optimum
    assert res.llf == pytest.approx(ref["logLik"], abs=1e-6)


OLD = parse_formula("Reaction ~ Days + I(Days^2) + (Days | Subject)")


@pytest.mark.parametrize(
    ("new", "expected"),
    [
        (". ~ . - Days", "Reaction ~ I(Days ** 2) + (Days | Subject)"),
        ("~ . - Days", "Reaction ~ I(Days ** 2) + (Days | Subject)"),
        (
            ". ~ . - (Days | Subject) + (1 | Subject)",
            "Reaction ~ Days + I(Days ** 2) + (1 | Subject)",
        ),
        ("log(.) ~ .", "log(Reaction) ~ Days + I(Days ** 2) + (Days | Subject)"),
        (". ~ . - 1", "Reaction ~ 0 + Days + I(Days ** 2) + (Days | Subject)"),
        (". ~ . - I(Days^2) + x*f - x:f", "Reaction ~ Days + x + f + (Days | Subject)"),
        (
            ". ~ . + (Days || g)",
            "Reaction ~ Days + I(Days ** 2) + (Days | Subject) + (1 | g) + (0 + Days | g)",
        ),
        (". ~ . + (Days|Subject)", "Reaction ~ Days + I(Days ** 2) + (Days | Subject)"),
        ("y ~ x + (1 | h)", "y ~ x + (1 | h)"),
        (". ~ (1 | Subject)", "Reaction ~ (1 | Subject)"),
        (". ~ . - Days - I(Days^2)", "Reaction ~ (Days | Subject)"),
    ],
)
def test_update_formula_follows_r(new, expected):
    assert update_formula(OLD, new) == expected


def test_update_formula_errors():
    with pytest.raises(FormulaError, match="'- .'"):
        update_formula(OLD, ". ~ . - .")
    with pytest.raises(FormulaError, match="missing '~'"):
        update_formula(OLD, ". - Days")
    with pytest.raises(TypeError, match="string"):
        update_formula(OLD, None)


@pytest.mark.parametrize(
    ("key", "formula"),
    [
        ("update_drop_days", ". ~ . - Days"),
        ("update_add_fixed", ". ~ . + I(Days^2)"),
        ("update_swap_random", ". ~ . - (Days | Subject) + (1 | Subject)"),
    ],
)
def test_update_matches_lme4(key, formula):
    ref = reference(key)
    res = sleepstudy().update(formula)
    assert type(res) is type(sleepstudy())
    check_fit(res, ref)
    assert res.design.parsed.text == update_formula(sleepstudy().design.parsed, formula)


def test_update_keeps_the_call_and_can_chain_and_switch_criterion():
    res = sleepstudy().update(". ~ . - Days").update(". ~ . + Days")
    assert res.llf == pytest.approx(sleepstudy().llf, abs=1e-7)
    ml = sleepstudy().update(REML=False)
    ref = reference("diagnostics_sleepstudy_ml")
    assert not ml.reml and ml.llf == pytest.approx(ref["logLik"], abs=1e-6)
    with pytest.raises(TypeError, match="REML"):
        sleepstudy().update(REML="FALSE")


def test_update_with_new_data_and_weights_of_the_call():
    sleep = sl.datasets.load("sleepstudy").assign(w=lambda d: 1.0 + d["Days"] % 2)
    res = sl.lmer("Reaction ~ Days + (1 | Subject)", sleep, weights="w")
    again = res.update(". ~ . + I(Days^2)")
    direct = sl.lmer("Reaction ~ Days + I(Days^2) + (1 | Subject)", sleep, weights="w")
    assert again.llf == pytest.approx(direct.llf, abs=1e-8)
    subset = sleep[sleep["Days"] < 8]
    smaller = res.update(data=subset)
    assert smaller.nobs == len(subset)
    assert smaller.llf == pytest.approx(
        sl.lmer("Reaction ~ Days + (1 | Subject)", subset, weights="w").llf, abs=1e-8
    )


def test_update_needs_the_data():
    compat = sl.mixedlm("Reaction ~ Days", sl.datasets.load("sleepstudy"), groups="Subject").fit()
    with pytest.raises(NotImplementedError, match="data="):
        compat.update(". ~ . - Days")
    with pytest.raises(FormulaError, match="random-effects"):
        sleepstudy().update(". ~ . - (Days | Subject)")


def test_refit_matches_a_fresh_fit():
    """lme4's refit() misreports its logLik (README): the fresh lmer() fit is the reference."""
    ref = reference("refit_newresp")
    sleep = sl.datasets.load("sleepstudy")
    newresp = sleep["Reaction"] + 10 * np.sin(np.arange(1, 181))
    res = sleepstudy().refit(newresp)
    check_fit(res, ref)
    assert type(res) is type(sleepstudy())
    np.testing.assert_allclose(res.design.y, newresp)
    fresh = sl.lmer("Reaction ~ Days + (Days | Subject)", sleep.assign(Reaction=newresp))
    assert res.llf == pytest.approx(fresh.llf, abs=1e-8)
    np.testing.assert_allclose(res.fittedvalues, fresh.fittedvalues, rtol=1e-6)
    # the original fit is unchanged
    assert sleepstudy().llf == pytest.approx(reference("diagnostics_sleepstudy_reml")["logLik"])


def test_refit_aligns_a_series_and_checks_values():
    sleep = sl.datasets.load("sleepstudy")
    res = sleepstudy()
    shuffled = sleep["Reaction"].sample(frac=1.0, random_state=1)
    assert res.refit(shuffled).llf == pytest.approx(res.llf, abs=1e-7)
    with pytest.raises(ValueError, match="non-finite"):
        res.refit(np.r_[np.nan, sleep["Reaction"].to_numpy()[1:]])
    with pytest.raises(ValueError, match="shape"):
        res.refit(np.ones(10))
    assert isinstance(res.refit(pd.Series(sleep["Reaction"].to_numpy())), type(res))
