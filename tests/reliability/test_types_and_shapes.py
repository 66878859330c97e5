"""Wrong containers, types, lengths and names: each a clear sparselme error."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from reliability_data import no_warnings

import sparselme as sl
from sparselme.errors import (
    DataError,
    DataTypeError,
    FormulaError,
    SparselmeError,
    UnknownColumnError,
)

FORMULA = "y ~ x + (1|g)"


# ---- the data container -------------------------------------------------------------------
@pytest.mark.parametrize("data", [None, [1, 2, 3], 3.0, np.zeros((5, 3))])
def test_data_that_is_not_a_table(data):
    with pytest.raises(DataTypeError, match="must be a DataFrame .*, a dict of columns"):
        sl.lmer(FORMULA, data)


def test_data_type_error_is_both_type_and_value_error():
    assert issubclass(DataTypeError, TypeError) and issubclass(DataTypeError, ValueError)


def test_dict_of_columns_is_accepted(frame):
    res = sl.lmer(FORMULA, {c: frame[c].to_numpy() for c in ["y", "x", "g"]})
    np.testing.assert_array_equal(res.theta, sl.lmer(FORMULA, frame).theta)


def test_ragged_dict(frame):
    with pytest.raises(DataError, match="cannot be made into a DataFrame"):
        sl.lmer(FORMULA, {"y": [1.0, 2.0], "x": [1.0], "g": ["a", "b"]})


def test_empty_data(frame):
    with pytest.raises(DataError, match="no observations: the data are empty"):
        sl.lmer(FORMULA, frame.iloc[:0])


# ---- column names -------------------------------------------------------------------------
def test_unknown_column_suggests_close_matches(frame):
    with pytest.raises(UnknownColumnError, match="column 'xx' not found in data; did you mean 'x'"):
        sl.lmer("y ~ xx + (1|g)", frame)


def test_unknown_column_is_a_key_error_and_a_value_error(frame):
    for kind in (KeyError, ValueError, SparselmeError):
        with pytest.raises(kind):
            sl.lmer("y ~ x + (1|gg)", frame)


def test_unknown_function_says_so(frame):
    with pytest.raises(UnknownColumnError, match=r"nope\(\) is not a function"):
        sl.lmer("y ~ nope(x) + (1|g)", frame)


def test_duplicate_column_names(frame):
    data = pd.concat([frame, frame[["x"]]], axis=1)
    with pytest.raises(DataError, match="duplicate column names in the data: 'x' \\(2 times\\)"):
        sl.lmer(FORMULA, data)


def test_duplicates_among_unused_columns_do_not_matter(frame):
    data = pd.concat([frame, frame[["s"]]], axis=1)
    assert sl.lmer(FORMULA, data).nobs == 60


# ---- column types -------------------------------------------------------------------------
@pytest.mark.parametrize(
    "values, words",
    [
        (lambda f: f.g, "holds text \\(e.g. 'g0'\\)"),
        (lambda f: f.y.astype(str), "holds text"),
        (lambda f: f.f, "holds categories"),
        (lambda f: f.y + 1j, "holds complex numbers"),
        (lambda f: pd.date_range("2020-01-01", periods=60), "holds dates or times"),
    ],
)
def test_non_numeric_response(frame, values, words):
    with pytest.raises(DataError, match=f"the response 'y' must be numeric, but it {words}"):
        sl.lmer(FORMULA, frame.assign(y=values(frame)))


def test_non_numeric_response_inside_a_transformation(frame):
    with pytest.raises(DataError, match="the response 'g' must be numeric"):
        sl.lmer("log(g) ~ x + (1|h)", frame)


def test_numbers_in_object_columns_and_booleans_are_numeric(frame):
    with no_warnings():
        a = sl.lmer(FORMULA, frame.assign(y=frame.y.astype(object)))
    np.testing.assert_array_equal(a.theta, sl.lmer(FORMULA, frame).theta)
    assert sl.lmer(FORMULA, frame.assign(y=frame.y > 1)).nobs == 60


@pytest.mark.parametrize(
    "values, words",
    [
        (lambda f: pd.date_range("2020-01-01", periods=60), "holds dates or times"),
        (lambda f: pd.to_timedelta(np.arange(60), unit="D"), "holds dates or times"),
        (lambda f: f.x + 2j, "holds complex numbers"),
    ],
)
def test_unusable_predictors(frame, values, words):
    with pytest.raises(DataError, match=f"column 'x' {words}"):
        sl.lmer(FORMULA, frame.assign(x=values(frame)))


def test_dates_are_fine_as_grouping_factors(frame):
    days = pd.Timestamp("2024-01-01") + pd.to_timedelta(np.arange(60) % 6, unit="D")
    res = sl.lmer(FORMULA, frame.assign(g=days))
    np.testing.assert_allclose(res.theta, sl.lmer(FORMULA, frame).theta)


# ---- weights and offsets given as arrays ----------------------------------------------------
@pytest.mark.parametrize("argument", ["weights", "offset"])
@pytest.mark.parametrize(
    "values, words",
    [
        (np.ones(59), "has length 59, but the data have 60 rows"),
        (np.ones(61), "has length 61, but the data have 60 rows"),
        (np.ones((60, 2)), "must be one-dimensional, but has shape \\(60, 2\\)"),
        (np.array(["a"] * 60), "must be numeric"),
    ],
)
def test_weights_and_offsets_of_the_wrong_shape_or_type(frame, argument, values, words):
    with pytest.raises(DataError, match=f"{argument} {words}"):
        sl.lmer(FORMULA, frame, **{argument: values})


def test_weights_column_that_does_not_exist(frame):
    with pytest.raises(UnknownColumnError, match="'wt' not found in data \\(named by weights=\\)"):
        sl.lmer(FORMULA, frame, weights="wt")


def test_weights_column_that_is_not_numeric(frame):
    with pytest.raises(DataError, match="the weights column 's' must be numeric"):
        sl.lmer(FORMULA, frame, weights="s")


def test_series_with_a_misaligned_index(frame):
    w = pd.Series(np.linspace(1, 2, 60), index=frame.index[::-1])
    with pytest.raises(DataError, match="weights is a Series whose index does not match"):
        sl.lmer(FORMULA, frame, weights=w)
    aligned = sl.lmer(FORMULA, frame, weights=w.reindex(frame.index))
    np.testing.assert_array_equal(
        aligned.theta, sl.lmer(FORMULA, frame, weights=w.to_numpy()[::-1]).theta
    )


# ---- formula and arguments ---------------------------------------------------------------------
def test_formula_without_random_effects(frame):
    with pytest.raises(FormulaError, match="no random-effects terms"):
        sl.lmer("y ~ x", frame)


def test_formula_that_formulaic_cannot_evaluate(frame):
    with pytest.raises(FormulaError, match="cannot evaluate the formula"):
        sl.lmer("y ~ log(s) + (1|g)", frame)


def test_formula_that_is_not_a_string(frame):
    with pytest.raises(TypeError, match="formula must be a str"):
        sl.lmer(3, frame)


@pytest.mark.parametrize("value", ["FALSE", "no", None, 2])
def test_reml_must_be_a_bool(frame, value):
    with pytest.raises(TypeError, match="REML must be True or False"):
        sl.lmer(FORMULA, frame, REML=value)


@pytest.mark.parametrize("value, kind", [(0, ValueError), (-5, ValueError), (2.5, TypeError)])
def test_maxeval_must_be_a_positive_integer(frame, value, kind):
    with pytest.raises(kind, match="maxeval must be a positive integer"):
        sl.lmer(FORMULA, frame, maxeval=value)
