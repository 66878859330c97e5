"""The input checks, one function at a time."""

import numpy as np
import pandas as pd
import pytest

from sparselme.data import validation as v
from sparselme.errors import (
    DataError,
    DataTypeError,
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
