"""The statsmodels-compatible API: the same checks on arrays, pandas objects and formulas."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from dense_reference import dense_deviance
from reliability_data import make_frame

import sparselme as sl
import sparselme.formula.api as slf
from sparselme.errors import (
    DataError,
    DataTypeError,
    DroppedRowsWarning,
    IdentifiabilityError,
    IdentifiabilityWarning,
    MissingDataError,
    SingularFitWarning,
    UnknownColumnError,
)

DATA = make_frame()
Y, G = DATA.y, DATA.g
X = pd.DataFrame({"const": 1.0, "x": DATA.x})


# ---- lengths, alignment, shapes ------------------------------------------------------------
@pytest.mark.parametrize(
    "args, words",
    [
        ((Y[:-1], X, G), "exog has 60 rows, but endog has 59"),
        ((Y, X, G[:-1]), "groups has 59 rows, but endog has 60"),
        ((Y, X[:-2], G), "exog has 58 rows, but endog has 60"),
    ],
)
def test_arrays_of_different_lengths(args, words):
    with pytest.raises(DataError, match=words):
        sl.MixedLM(*args)


def test_exog_re_of_the_wrong_length():
    with pytest.raises(DataError, match="exog_re has 59 rows, but endog has 60"):
        sl.MixedLM(Y, X, G, exog_re=np.ones(59))


@pytest.mark.parametrize(
    "args, name",
    [
        ((Y, X, G.set_axis(G.index[::-1])), "groups"),
        ((Y, X.set_axis(X.index + 100), G), "exog"),
        ((Y.set_axis(Y.index * 2), X, G), "exog"),
    ],
)
def test_pandas_inputs_whose_indexes_do_not_align(args, name):
    with pytest.raises(DataError, match=f"the index of {name} does not match the index of endog"):
        sl.MixedLM(*args)


def test_aligned_pandas_inputs_and_plain_arrays_agree():
    a = sl.MixedLM(Y, X, G).fit()
    b = sl.MixedLM(Y.to_numpy(), X.to_numpy(), G.to_numpy()).fit()
    np.testing.assert_array_equal(np.asarray(a.params), np.asarray(b.params))


def test_formula_groups_array_whose_index_does_not_align():
    with pytest.raises(DataError, match="the index of groups does not match the index of data"):
        slf.mixedlm("y ~ x", DATA, groups=G.set_axis(G.index[::-1]))


@pytest.mark.parametrize(
    "endog, words",
    [
        (DATA.s, "the endog 's' must be numeric, but it holds text"),
        (DATA.f, "the endog 'f' must be numeric, but it holds categories"),
        (Y + 1j, "holds complex numbers"),
        (np.c_[Y, Y], "endog must be a single column, but has shape \\(60, 2\\)"),
        (np.array(["a"] * 60), "endog must be numeric, not an array of dtype <U1"),
    ],
)
def test_endog_that_is_not_one_numeric_column(endog, words):
    with pytest.raises(DataError, match=words):
        sl.MixedLM(endog, X, G)


@pytest.mark.parametrize(
    "exog, words",
    [
        (DATA[["x", "s"]], "the exog column 's' must be numeric"),
        (np.ones((60, 2, 2)), "exog must be one- or two-dimensional"),
        (pd.concat([X, X[["x"]]], axis=1), "duplicate column names in exog: 'x'"),
    ],
)
def test_unusable_exog(exog, words):
    with pytest.raises(DataError, match=words):
        sl.MixedLM(Y, exog, G)


@pytest.mark.parametrize("args, name", [((Y, None, G), "exog"), ((Y, X, None), "groups")])
def test_required_arrays(args, name):
    with pytest.raises(DataTypeError, match=f"{name} is required"):
        sl.MixedLM(*args)


def test_empty_arrays():
    with pytest.raises(DataError, match="no observations"):
        sl.MixedLM(Y[:0], X[:0], G[:0])


def test_formula_data_that_is_not_a_table():
    with pytest.raises(DataTypeError, match="data must be a DataFrame"):
        slf.mixedlm("y ~ x", [1, 2, 3], groups="g")


# ---- missing values ----------------------------------------------------------------------------
def test_missing_values_are_counted_per_array():
    y = Y.where(Y.index != 3)
    g = G.where(~G.index.isin([5, 6]))
    for missing in ("none", "raise"):
        with pytest.raises(MissingDataError, match=r"3 of 60 rows .* endog \(1\), groups \(2\)"):
            sl.MixedLM(y, X, g, missing=missing)
    with pytest.warns(DroppedRowsWarning, match="dropped 3 of 60 rows"):
        assert sl.MixedLM(y, X, g, missing="drop").nobs == 57
    with pytest.raises(ValueError, match="missing must be"):
        sl.MixedLM(Y, X, G, missing="omit")


def test_formula_missing_values_default_raises_and_drop_drops():
    data = DATA.assign(x=np.r_[np.nan, DATA.x[1:]])
    with pytest.raises(MissingDataError, match=r"x \(1\)"):
        slf.mixedlm("y ~ x", data, groups="g")
    with pytest.warns(DroppedRowsWarning, match="dropped 1 of 60"):
        assert slf.mixedlm("y ~ x", data, groups="g", missing="drop").nobs == 59


# ---- identifiability ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "groups, words",
    [
        (np.zeros(60), "grouping factor 'Group' of term \\(1 \\| Group\\) has 1 level"),
        (np.arange(60), "must be < number of observations \\(= 60\\); problems: 'Group'"),
    ],
)
def test_array_groups_that_cannot_be_estimated(groups, words):
    with pytest.raises(IdentifiabilityError, match=words):
        sl.MixedLM(Y, X, groups)


def test_random_slopes_with_too_few_observations():
    # statsmodels fits these, so its API warns (lme4's check.nobs.vs.nRE = "warning")
    data = DATA.assign(p=np.arange(60) // 2)
    with pytest.warns(IdentifiabilityWarning, match=r"\(= 60: 2 per level × 30 levels\)"):
        slf.mixedlm("y ~ x", data, groups="p", re_formula="~x")
    with pytest.raises(IdentifiabilityError, match=r"\(= 60: 2 per level × 30 levels\)"):
        sl.lmer("y ~ x + (x | p)", data)  # lme4's default: stop


def test_variance_component_with_a_level_per_observation():
    with pytest.raises(IdentifiabilityError, match="problems: 'o' \\(60 levels\\)"):
        slf.mixedlm("y ~ x", DATA.assign(o=np.arange(60)), groups="g", vc_formula={"o": "0+C(o)"})


def test_dependent_random_effects_columns():
    with pytest.raises(IdentifiabilityError, match=r"term \(1 \+ z \| g\) are linearly dependent"):
        slf.mixedlm("y ~ x", DATA.assign(z=0.0), groups="g", re_formula="~z")


# ---- fits ---------------------------------------------------------------------------------------
def test_constant_endog():
    with pytest.raises(DataError, match="is constant"):
        sl.MixedLM(np.ones(60), X, G)


def test_unknown_columns_suggest_close_matches():
    with pytest.raises(UnknownColumnError, match="did you mean 'g'"):
        slf.mixedlm("y ~ x", DATA, groups="gg")


def test_singular_fit_warns_once_and_reports_a_zero_variance():
    dyestuff2 = sl.datasets.load("Dyestuff2")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = slf.mixedlm("Yield ~ 1", dyestuff2, groups="Batch").fit()
    assert [w.category for w in caught] == [SingularFitWarning]
    assert res.cov_re.iloc[0, 0] == 0.0


def test_fit_flags_are_checked():
    with pytest.raises(TypeError, match="REML must be True or False"):
        slf.mixedlm("y ~ x", DATA, groups="g").fit(reml="no")


def test_larger_frame_fits_the_dense_likelihood():
    """A variance component within groups: the optimum is the dense likelihood's there."""
    data = make_frame(200, seed=5, groups=10)
    res = slf.mixedlm("y ~ x", data, groups="g", vc_formula={"h": "0 + C(h)"}).fit()
    assert res.llf == pytest.approx(-0.5 * dense_deviance(res.engine, res.theta, True), abs=1e-8)
    worse = res.theta * np.r_[1.1, 0.9]
    assert -0.5 * dense_deviance(res.engine, worse, True) < res.llf
