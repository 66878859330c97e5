"""The input checks, one function at a time."""

import numpy as np
import pandas as pd
import pytest

from sparselme.data import validation as v
from sparselme.data.design import coded_term
from sparselme.errors import (
    DataError,
    DataTypeError,
    DroppedRowsWarning,
    IdentifiabilityError,
    MissingDataError,
    ScaleWarning,
    UnknownColumnError,
)

FRAME = pd.DataFrame(
    {
        "y": [1.0, 2.0, 3.5, 4.0],
        "Days": [0, 1, 2, 3],
        "g": list("aabb"),
        "when": pd.to_datetime(["2020-01-01"] * 4),
        "z": [1 + 1j] * 4,
    }
)


def test_unknown_columns_are_named_with_close_matches():
    with pytest.raises(UnknownColumnError, match="did you mean 'Days'"):
        v.check_columns(FRAME, ["Dyas"])
    dup = pd.concat([FRAME[["y"]], FRAME[["y"]]], axis=1)
    with pytest.raises(DataError, match="duplicate column names"):
        v.check_columns(dup, ["y"])


def test_variable_types():
    with pytest.raises(DataError, match="must be numeric, but it holds text"):
        v.check_variable_types(FRAME, ["g"], [])
    with pytest.raises(DataError, match="dates or times"):
        v.check_variable_types(FRAME, ["y"], ["when"])
    with pytest.raises(DataError, match="complex"):
        v.check_variable_types(FRAME, ["y"], ["z"])
    v.check_variable_types(FRAME, ["y"], ["Days", "g"])  # grouping variables of any type


def test_data_vectors_from_names_series_and_arrays():
    np.testing.assert_array_equal(v.data_vector(FRAME, "Days", "weights"), [0, 1, 2, 3])
    with pytest.raises(DataError, match="length 3"):
        v.data_vector(FRAME, np.ones(3), "weights")
    shifted = pd.Series(np.ones(4), index=[5, 6, 7, 8])
    with pytest.raises(DataError, match="index does not match"):
        v.data_vector(FRAME, shifted, "offset")
    with pytest.raises(DataError, match="numeric"):
        v.data_vector(FRAME, np.array(list("abcd")), "weights")


def test_weights():
    assert v.zero_weight_rows(np.array([1.0, 2.0])) is None
    np.testing.assert_array_equal(v.zero_weight_rows(np.array([1.0, 0.0])), [False, True])
    with pytest.raises(DataError, match="non-negative"):
        v.zero_weight_rows(np.array([1.0, -1.0]))
    with pytest.raises(DataError, match="sum to zero"):
        v.zero_weight_rows(np.zeros(3))
    with pytest.raises(DataError, match="ratio"):
        v.check_weight_range(np.array([1.0, 1e13]))


def test_non_finite_model_rows_raise_or_drop():
    cols = [("log(x)", np.array([0.0, np.nan, 1.0]))]
    with pytest.raises(MissingDataError, match="1 of 3 rows"):
        v.nonfinite_model_rows(cols, "raise", 3)
    with pytest.warns(DroppedRowsWarning, match="dropped 1 of 3"):
        bad = v.nonfinite_model_rows(cols, "drop", 3)
    np.testing.assert_array_equal(bad, [False, True, False])


def test_magnitudes_and_exact_fits():
    with pytest.raises(DataError, match="too large"):
        v.check_magnitude(np.array([[1e200], [1.0]]), ["x"], "the column")
    y = np.array([1.0, 2.0, 3.0])
    X = np.column_stack([np.ones(3), y])
    with pytest.raises(DataError, match="fitted exactly"):
        v.check_not_exact_fit(y, X, "y")
    with pytest.raises(DataError, match="is constant"):
        v.check_not_exact_fit(np.ones(3), np.ones((3, 1)), "y")


def _term(codes, model, levels):
    return coded_term("g", [f"c{j}" for j in range(model.shape[1])], pd.Index(levels), codes, model)


def test_identifiability_of_grouping_factors():
    one, _ = _term(np.zeros(4, int), np.ones((4, 1)), ["a"])
    with pytest.raises(IdentifiabilityError, match="has 1 level"):
        v.check_identifiable([one], 4)
    crowded, _ = _term(np.arange(4), np.ones((4, 1)), list("abcd"))
    with pytest.raises(IdentifiabilityError, match="must be < number of observations"):
        v.check_identifiable([crowded], 4)
    wide, _ = _term(np.arange(4) % 2, np.ones((4, 3)), ["a", "b"])
    with pytest.raises(IdentifiabilityError, match="number of random effects"):
        v.check_identifiable([wide], 4)


def test_random_effects_columns_checks():
    x = np.arange(8.0)
    term, rows = _term(np.arange(8) % 2, np.column_stack([x, 2 * x]), ["a", "b"])
    with pytest.raises(IdentifiabilityError, match="linearly dependent"):
        v.check_term_columns(term, rows)
    term, rows = _term(np.arange(8) % 2, np.column_stack([np.ones(8), x * 1e6]), ["a", "b"])
    with pytest.warns(ScaleWarning, match="standard deviation"):
        v.warn_about_scales([term], [rows])
    term, rows = _term(np.arange(8) % 2, np.column_stack([np.ones(8), np.r_[x[:-1], np.nan]]),
                       ["a", "b"])  # fmt: skip
    with pytest.raises(MissingDataError, match="non-finite"):
        v.check_term_values(term, rows)


def test_arrays_of_the_statsmodels_api():
    with pytest.raises(DataError, match="groups has 3 rows"):
        v.check_same_length(4, groups=np.ones(3))
    with pytest.raises(DataError, match="index of exog does not match"):
        v.check_aligned(endog=pd.Series(np.ones(2)), exog=pd.Series(np.ones(2), index=[3, 4]))
    with pytest.raises(DataTypeError, match="required"):
        v.check_array_input(None, "exog")
    with pytest.raises(DataError, match="numeric"):
        v.check_array_input(np.array(["a", "b"]), "exog")


def test_data_frames_and_options():
    assert v.as_data_frame({"a": [1, 2]}).shape == (2, 1)
    with pytest.raises(DataTypeError, match="DataFrame"):
        v.as_data_frame([1, 2, 3])
    with pytest.raises(ValueError, match="missing must be"):
        v.check_missing_option("omit")
    assert v.is_streamable("folder/") and not v.is_streamable(FRAME)
