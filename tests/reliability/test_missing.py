"""Missing and non-finite values: the default raises with counts and columns; 'drop' drops."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from reliability_data import no_warnings

import sparselme as sl
from sparselme.errors import DataError, DroppedRowsWarning, MissingDataError

FORMULA = "y ~ x + (1|g)"


def with_values(frame: pd.DataFrame, column: str, rows: list[int], value) -> pd.DataFrame:
    out = frame.copy()
    out[column] = out[column].astype(object) if value is None else out[column]
    out.loc[rows, column] = value
    return out


@pytest.mark.parametrize(
    "column, value", [("y", np.nan), ("x", np.inf), ("x", -np.inf), ("g", None), ("y", np.nan)]
)
@pytest.mark.parametrize("missing", ["raise", "none"])
def test_default_raises_naming_rows_and_columns(frame, column, value, missing):
    data = with_values(frame, column, [3, 7], value)
    with pytest.raises(MissingDataError) as info:
        sl.lmer(FORMULA, data, missing=missing)
    msg = str(info.value)
    assert "2 of 60 rows" in msg and f"{column} (2)" in msg and "missing='drop'" in msg
    assert isinstance(info.value, ValueError)


def test_message_lists_every_column_with_its_count(frame):
    data = with_values(with_values(frame, "y", [1], np.nan), "x", [1, 2, 3], np.nan)
    with pytest.raises(MissingDataError, match=r"3 of 60 rows .* x \(3\), y \(1\)"):
        sl.lmer(FORMULA, data)


def test_drop_removes_the_rows_and_reports_the_count(frame):
    data = with_values(frame, "x", [0, 5, 9], np.nan)
    with pytest.warns(DroppedRowsWarning, match="dropped 3 of 60 rows .* x \\(3\\)"):
        res = sl.lmer(FORMULA, data, missing="drop")
    assert res.nobs == 57
    clean = sl.lmer(FORMULA, frame.drop(index=[0, 5, 9]))
    np.testing.assert_array_equal(res.theta, clean.theta)
    np.testing.assert_array_equal(res.fe_params, clean.fe_params)


def test_missing_values_in_unused_columns_do_not_matter(frame):
    frame["unused"] = np.nan
    with no_warnings():
        assert sl.lmer(FORMULA, frame).nobs == 60


def test_pandas_na_in_nullable_columns_counts_as_missing(frame):
    data = frame.assign(y=pd.array(np.r_[[None], np.round(frame.y[1:] * 100)], dtype="Int64"))
    with pytest.raises(MissingDataError, match=r"y \(1\)"):
        sl.lmer(FORMULA, data)


@pytest.mark.parametrize("argument", ["weights", "offset"])
def test_missing_weights_and_offsets(frame, argument):
    values = np.ones(60)
    values[4] = np.nan
    with pytest.raises(MissingDataError, match=rf"{argument} \(1\)"):
        sl.lmer(FORMULA, frame, **{argument: values})
    with pytest.warns(DroppedRowsWarning, match="dropped 1 of 60"):
        assert sl.lmer(FORMULA, frame, missing="drop", **{argument: values}).nobs == 59


def test_dropping_every_row_leaves_no_observations(frame):
    with pytest.warns(DroppedRowsWarning), pytest.raises(DataError, match="all 60 rows"):
        sl.lmer(FORMULA, frame.assign(x=np.nan), missing="drop")


def test_a_level_whose_rows_are_all_dropped_disappears(frame):
    data = frame.copy()
    data.loc[data.g == "g0", "y"] = np.nan
    with pytest.warns(DroppedRowsWarning, match="dropped 10 of 60"):
        res = sl.lmer(FORMULA, data, missing="drop")
    assert res.ngroups == {"g": 5}
    assert "g0" not in res.ranef()["g"].index


def test_unknown_missing_option(frame):
    with pytest.raises(ValueError, match="missing must be 'none', 'raise' or 'drop', not 'omit'"):
        sl.lmer(FORMULA, frame, missing="omit")
