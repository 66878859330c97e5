"""Materialization of formulas on data: contrasts, names, grouping factors, term order."""

import json

import numpy as np
import pandas as pd
import pytest
from references import REFERENCE

import sparselme as sl
from sparselme.data.design import build_design, group_codes, r_style_name
from sparselme.data.formula import parse_formula
from sparselme.errors import MissingDataError, UnknownColumnError


def design(formula, data, **kw):
    return build_design(parse_formula(formula), data, **kw)


def test_r_style_names():
    assert r_style_name("Intercept") == "(Intercept)"
    assert r_style_name("recipe[T.B]") == "recipeB"
    assert r_style_name("temperature[.L]") == "temperature.L"
    assert r_style_name("recipe[T.B]:temperature[^4]") == "recipeB:temperature^4"


def test_ordered_factors_get_r_polynomial_contrasts():
    cake = sl.datasets.load("cake")
    d = design("angle ~ temperature + (1|replicate)", cake)
    assert d.fixed_names_r == ["(Intercept)", "temperature.L", "temperature.Q",
                               "temperature.C", "temperature^4", "temperature^5"]
    first = d.X[cake["temperature"].cat.codes.to_numpy() == 0][0]
    # R: contr.poly(6)[1, ] = -0.5976143, 0.5455447, -0.3726780, 0.1889822, -0.06299408
    np.testing.assert_allclose(first[1:], [-0.5976143, 0.5455447, -0.3726780, 0.1889822,
                                           -0.06299408], atol=1e-7)


def test_unordered_factors_use_category_order_with_first_level_as_reference():
    data = pd.DataFrame({"y": np.arange(6.0), "g": list("aabbcc"),
                         "f": pd.Categorical(list("xyzxyz"), categories=["z", "y", "x"])})
    d = design("y ~ f + (1|g)", data)
    assert d.fixed_names_r == ["(Intercept)", "fy", "fx"]


def test_grouping_variables_are_categorical_and_interactions_keep_r_level_order():
    pastes = sl.datasets.load("Pastes")
    codes, levels = group_codes(pastes, ["cask", "batch"])
    assert list(levels[:4]) == ["a:A", "a:B", "a:C", "a:D"]
    assert len(levels) == 30
    assert (levels[codes] == pastes["cask"].astype(str) + ":" + pastes["batch"].astype(str)).all()
    sitka = sl.datasets.load("Sitka")  # tree is numeric
    codes, levels = group_codes(sitka, ["tree"])
    assert len(levels) == 79 and list(levels[:3]) == ["1", "2", "3"]


def test_terms_are_ordered_by_decreasing_number_of_levels():
    pastes = sl.datasets.load("Pastes")
    d = design("strength ~ 1 + (1|batch/cask)", pastes)
    assert [t.name for t in d.terms] == ["cask:batch", "batch"]
    assert [t.nlevels for t in d.terms] == [30, 10]


def test_unused_categories_are_dropped():
    data = sl.datasets.load("sleepstudy")
    data["Subject"] = data["Subject"].cat.add_categories(["999"])
    d = design("Reaction ~ Days + (1|Subject)", data)
    assert d.terms[0].nlevels == 18


def test_unknown_column_suggests_close_matches():
    data = sl.datasets.load("sleepstudy")
    with pytest.raises(UnknownColumnError, match="did you mean 'Days'"):
        design("Reaction ~ Dayz + (1|Subject)", data)
    with pytest.raises(KeyError):
        design("Reaction ~ Days + (1|Subjekt)", data)


def test_missing_values_raise_by_default_and_drop_on_request():
    data = sl.datasets.load("dietox")  # Feed has missing values
    with pytest.raises(MissingDataError, match=r"rows .* Feed"):
        design("Weight ~ Feed + (1|Pig)", data)
    with pytest.warns(UserWarning, match="dropped"):
        d = design("Weight ~ Feed + (1|Pig)", data, missing="drop")
    assert d.nobs == int(data["Feed"].notna().sum())


@pytest.mark.parametrize("nvalues", [5, 2000])  # counted over the code space / sorted
def test_group_codes_of_an_interaction_number_the_observed_pairs_in_order(nvalues):
    rng = np.random.default_rng(4)
    data = pd.DataFrame({"a": rng.integers(0, nvalues, 300), "b": rng.integers(0, nvalues, 300)})
    codes, levels = group_codes(data, ["a", "b"])
    pairs = sorted(set(zip(data["a"], data["b"])))
    assert list(levels) == [f"{a}:{b}" for a, b in pairs]
    assert (levels[codes] == data["a"].astype(str) + ":" + data["b"].astype(str)).all()


def test_one_qr_gives_the_redundant_columns_and_the_least_squares_residual():
    from sparselme.data.rank import redundant_columns, redundant_columns_and_residual

    rng = np.random.default_rng(5)
    X, y = rng.normal(size=(200, 4)), rng.normal(size=200)
    dropped, residual = redundant_columns_and_residual(X, y)
    beta = np.linalg.lstsq(X, y, rcond=None)[0]
    assert dropped == [] and residual == pytest.approx(np.linalg.norm(y - X @ beta), rel=1e-12)
    assert redundant_columns_and_residual(X[:, :0], y)[1] == pytest.approx(np.linalg.norm(y))
    X = np.column_stack([X[:, :2], 2 * X[:, 1], X[:, 2:]])
    assert redundant_columns_and_residual(X, y) == ([2], None)  # residual left to lstsq
    assert redundant_columns(X) == [2]


# ---- formulas with transforms and with operators whose Python meaning differs ------------

_PREDICT_REF = REFERENCE / "lme4_predict" / "reference.json"


@pytest.mark.parametrize(
    ("transform", "same_space"),
    [("poly(Days, 2)", "Days + I(Days**2)"), ("scale(Days)", "Days"), ("center(Days)", "Days"),
     ("bs(Days, 3)", "Days + I(Days**2) + I(Days**3)")],
)  # fmt: skip
def test_variables_inside_stateful_transforms_are_taken_from_the_data(transform, same_space):
    """The transform's columns span the same space as plain polynomials: same fit."""
    sleep = sl.datasets.load("sleepstudy")
    res = sl.lmer(f"Reaction ~ {transform} + (1 | Subject)", sleep)
    plain = sl.lmer(f"Reaction ~ {same_space} + (1 | Subject)", sleep)
    np.testing.assert_allclose(res.fittedvalues, plain.fittedvalues, rtol=1e-7)
    assert res.deviance == pytest.approx(plain.deviance, abs=1e-6)


@pytest.mark.parametrize("case", ["caret_in_I", "caret_in_call", "caret_response",
                                  "caret_crossing", "in_operator"])  # fmt: skip
def test_r_operators_fit_like_lme4(case):
    ref = json.loads(_PREDICT_REF.read_text())["formulas"][case]
    res = sl.lmer(ref["formula"], sl.datasets.load(ref["data"]))
    assert res.llf == pytest.approx(ref["logLik"], abs=1e-5)
    np.testing.assert_allclose(res.fittedvalues[:8], ref["fitted_head"], rtol=1e-6)
    if case.startswith("caret"):  # the same columns in the same order as R's
        np.testing.assert_allclose(res.fe_params, list(ref["fixef"].values()), rtol=1e-5)


def test_caret_in_I_is_never_xor():
    sleep = sl.datasets.load("sleepstudy")
    caret = sl.lmer("Reaction ~ Days + I(Days^2) + (1 | Subject)", sleep)
    power = sl.lmer("Reaction ~ Days + I(Days**2) + (1 | Subject)", sleep)
    np.testing.assert_allclose(caret.design.X, power.design.X)
    np.testing.assert_allclose(caret.design.X[:, 2], sleep["Days"].to_numpy() ** 2)
