"""lme4's formula language against frozen lme4 1.1-31 fits (tests/reference/lme4_parity).

Stateful transforms (fits, and new rows coded with the training bases), bars without
parentheses, re.form spellings, offset() terms, the ``.`` shorthand, R-style and
backquoted names, dummy() and factor slopes, and lme4's order of random-effects terms.
"""

from __future__ import annotations

import json
import warnings
from functools import cache

import numpy as np
import pandas as pd
import pytest
from references import REFERENCE

import sparselme as sl
from sparselme.data.coding import fixed_rows
from sparselme.errors import FormulaError

PARITY = REFERENCE / "lme4_parity"
CASES = json.loads((PARITY / "reference.json").read_text())["cases"]


def load(name: str) -> pd.DataFrame:
    if name.endswith(".csv"):
        return pd.read_csv(PARITY / name)
    if name.startswith("sleepstudy (columns"):
        return sl.datasets.load("sleepstudy")[["Reaction", "Days", "Subject"]]
    return sl.datasets.load(name)


@cache
def fit(formula: str, data: str, reml: bool = True):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sl.errors.SingularFitWarning)
        return sl.lmer(formula, load(data), REML=reml)


def fit_case(key: str, formula: str | None = None):
    case = CASES[key]
    return fit(formula or case["formula"], case["data"], case["REML"]), case


def check_fit(res, case, rtol=1e-5, theta_atol=2e-4, names=True):
    """Estimates as lme4's to its optimizer's tolerance (``rtol`` for β, σ and the
    variances, ``theta_atol``); the criterion never worse than lme4's (lme4 may stop
    short: Reaction ~ (Days + I(Days^2)) | Subject)."""
    assert res.llf >= case["logLik"] - 1e-6
    assert res.llf == pytest.approx(case["logLik"], abs=1e-4)
    if names:
        assert list(res.fixef.index) == case["fixef_names"]
    np.testing.assert_allclose(res.fixef, list(case["fixef"].values()), rtol=rtol, atol=1e-8)
    np.testing.assert_allclose(res.theta, case["theta"], atol=theta_atol)
    assert res.sigma == pytest.approx(case["sigma"], rel=rtol)
    vc = res.varcorr
    ref = case["varcorr"]
    assert list(vc["grp"]) == ref["grp"]
    assert [None if pd.isna(v) else v for v in vc["var1"]] == ref["var1"]
    scale = np.max(np.abs(ref["vcov"]))  # small components are as flat as the largest
    np.testing.assert_allclose(vc["vcov"], ref["vcov"], rtol=max(rtol, 1e-4), atol=1e-4 * scale)


# ---- stateful transforms: the fit, and new rows coded with the training bases ---------------

TRANSFORMS = [k for k in CASES if k.startswith("transform_")]


@pytest.mark.parametrize("key", TRANSFORMS)
def test_transform_fits_and_predictions_match_lme4(key):
    case = CASES[key]
    res, _ = fit_case(key, case.get("sparselme_spelling"))
    check_fit(res, case, names="sparselme_spelling" not in case)
    new = pd.DataFrame(case["newdata"])
    X, _ = fixed_rows(res.design, new)  # R's model.matrix of newdata with the predvars
    np.testing.assert_allclose(X, case["X_newdata"]["rows"], atol=1e-12, rtol=1e-12)
    population = res.predict(new, re_form="~0")
    np.testing.assert_allclose(population, case["predict_population"], rtol=1e-9)
    conditional = res.predict(new, allow_new_levels=True)
    np.testing.assert_allclose(conditional, case["predict_conditional"], rtol=1e-6)


def test_center_in_r_spelling_is_r_scale_without_scaling():
    case = CASES["transform_center"]
    res, _ = fit_case("transform_center")  # Reaction ~ scale(Days, scale = FALSE) + ...
    check_fit(res, case)
    assert list(res.fixef.index) == ["(Intercept)", "scale(Days, scale = FALSE)"]


def test_splines_beyond_the_training_range_extrapolate_as_r():
    for key, column in (("transform_bs", "splines::bs(Days, 3)3"), ("transform_ns", None)):
        res, case = fit_case(key)
        days = np.asarray(case["newdata"]["Days"])
        assert days.max() > 9  # outside the boundary knots (0, 9)
        X, _ = fixed_rows(res.design, pd.DataFrame(case["newdata"]))
        np.testing.assert_allclose(X[days > 9], np.asarray(case["X_newdata"]["rows"])[days > 9])
        if column:
            assert column in res.fixef.index


# ---- formula syntax -------------------------------------------------------------------------

SYNTAX = {
    "syntax_bar_no_parens_intercept": {},
    "syntax_bar_no_parens_slope": {"rtol": 5e-5},
    "syntax_bar_no_parens_log_response": {"rtol": 5e-5},
    "syntax_bar_no_parens_sum": {"rtol": 1e-3, "theta_atol": 1e-3},  # lme4 stops short
    "syntax_log_response": {},
    "syntax_offset": {},
    "syntax_dot": {},
    "syntax_dummy_machines": {},
    "syntax_zero_plus_factor_machines": {"rtol": 2e-5, "theta_atol": 1e-3},
    "syntax_factor_minus_one_machines": {"rtol": 2e-5, "theta_atol": 1e-3},
    "syntax_nested_machines": {},
    "syntax_rstyle_names": {},
    "syntax_backtick_names": {},
}


@pytest.mark.parametrize("key", list(SYNTAX))
def test_formula_syntax_fits_as_lme4(key):
    res, case = fit_case(key)
    assert case["error"] is None
    check_fit(res, case, **SYNTAX[key])


@pytest.mark.parametrize(
    "key",
    [
        "syntax_dummy_machines",
        "syntax_zero_plus_factor_machines",
        "syntax_factor_minus_one_machines",
    ],
)
def test_factor_and_dummy_slopes_give_lme4s_conditional_modes(key):
    res, case = fit_case(key)
    ref = case["ranef_Worker"]
    re = res.ranef(condvar=False)["Worker"]
    assert list(re.index) == ref["levels"]
    columns = [c for c in ref if c != "levels"]
    assert list(re.columns) == columns
    np.testing.assert_allclose(re[columns], np.column_stack([ref[c] for c in columns]), atol=2e-3)


def test_offset_term_is_added_to_fitted_values_and_new_rows():
    res, case = fit_case("syntax_offset")
    np.testing.assert_allclose(res.fittedvalues.iloc[:10], case["fitted_head"], rtol=1e-7)
    new = pd.DataFrame(case["newdata"])
    np.testing.assert_allclose(
        res.predict(new, re_form="~0"), case["predict_population"], rtol=1e-9
    )
    np.testing.assert_allclose(
        res.predict(new, allow_new_levels=True), case["predict_conditional"], rtol=1e-7
    )


def test_offset_term_and_offset_argument_add_up():
    sleep = sl.datasets.load("sleepstudy").assign(o=lambda d: 0.5 * d["Days"])
    both = sl.lmer("Reaction ~ Days + offset(1.5 * Days) + (1 | Subject)", sleep, offset="o")
    one = sl.lmer("Reaction ~ Days + offset(2 * Days) + (1 | Subject)", sleep)
    np.testing.assert_allclose(both.fixef, one.fixef, rtol=1e-9)
    new = sleep.iloc[:4]
    with pytest.raises(ValueError, match="offset="):
        both.predict(new)
    np.testing.assert_allclose(both.predict(new, offset="o"), one.predict(new), rtol=1e-9)


def test_dot_expands_to_the_other_columns_in_data_order():
    res, _ = fit_case("syntax_dot")
    assert list(res.fixef.index) == ["(Intercept)", "Days"]
    extra = load("sleepstudy (columns").assign(x=lambda d: d["Days"] ** 0.5)
    wide = sl.lmer("Reaction ~ . - Subject + (1 | Subject)", extra)
    assert list(wide.fixef.index) == ["(Intercept)", "Days", "x"]


# ---- re.form spellings --------------------------------------------------------------------------

SPELLINGS = CASES["re_form_spellings"]
SPELLING_DATA = {"sleepstudy_rs": "sleepstudy", "pastes_nested": "Pastes",
                 "penicillin_crossed": "Penicillin"}  # fmt: skip


@pytest.mark.parametrize(
    ("model", "spelling"),
    [(m, r["re_form"]) for m, v in SPELLINGS.items() if m != "note" for r in v["results"]],
)
def test_re_form_spellings_as_lme4(model, spelling):
    entry = SPELLINGS[model]
    result = next(r for r in entry["results"] if r["re_form"] == spelling)
    res = fit(entry["formula"], SPELLING_DATA[model])
    if result["error"] is not None:  # lme4 names the nested factor cask:batch
        with pytest.raises(FormulaError, match="not a term of the model"):
            res.predict(re_form=spelling)
        return
    np.testing.assert_allclose(res.predict(re_form=spelling), result["fitted"], rtol=1e-6)


# ---- term order -------------------------------------------------------------------------

ORDER = [k for k in CASES if k.startswith("term_order_")]


@pytest.mark.parametrize("key", ORDER)
def test_random_terms_in_lme4s_order(key):
    res, case = fit_case(key)
    assert list(res.ranef(condvar=False)) == case["ranef_names"]
    assert list(res.varcorr["grp"]) == case["varcorr_grp_order"]
    assert list(res.ngroups) == case["flist_names"]
    assert [t.name for t in res.terms] == case["cnms_names"]
    assert [list(t.columns) for t in res.terms] == [case["cnms"][n] for n in case["cnms_names"]]
    check_fit(res, case, theta_atol=1e-4)
