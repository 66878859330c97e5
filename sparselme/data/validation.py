"""Checks of the user's input, run before any numerics.

Plain functions shared by the lme4 path (`sparselme.data.design.build_design`), the
statsmodels-compatible API and streamed data (arguments, columns and their types); the
checks made on the model's columns are in `sparselme.data.checks`. Each raises a
`sparselme.errors` exception whose message names the column, term or count at fault, or
returns the cleaned value.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from ..errors import (
    DataError,
    DataTypeError,
    FormulaError,
    UnknownColumnError,
)
from . import frames
from .missing import warn_dropped

__all__ = [
    "MISSING_OPTIONS",
    "as_data_frame",
    "is_streamable",
    "check_missing_option",
    "check_columns",
    "check_variable_types",
    "check_numeric",
    "numbers_as_float",
    "data_vector",
    "check_not_empty",
    "warn_dropped",
    "check_response_matrix",
    "check_has_random_terms",
    "check_same_length",
    "check_aligned",
    "check_array_input",
    "formula_evaluation",
]

MISSING_OPTIONS = ("none", "raise", "drop")


# ---- arguments ------------------------------------------------------------------------------
def is_streamable(data: object) -> bool:
    """True for inputs fitted out of core: a Parquet path, a CSV file too large for memory
    (`sparselme.data.frames.is_large_csv`), a pyarrow Dataset, a Dask frame.

    Decided from the type's module, so neither pyarrow nor Dask is imported to ask. An
    in-memory pyarrow ``Table`` or ``RecordBatch`` is not streamed: `as_data_frame`
    converts it (wrap it in ``pyarrow.dataset.dataset(table)`` to stream it).
    """
    if isinstance(data, (str, os.PathLike)):
        return not frames.is_csv_path(data) or frames.is_large_csv(data)
    module = type(data).__module__
    if module.startswith("pyarrow"):
        return type(data).__name__.endswith("Dataset") and hasattr(data, "to_batches")
    if module.startswith("dask"):
        return hasattr(data, "map_partitions") and hasattr(data, "columns")
    return False


def as_data_frame(data: object, name: str = "data") -> pd.DataFrame:
    """A pandas DataFrame from any data frame, a mapping of equal-length columns or the
    path of a CSV file (`sparselme.data.frames.to_pandas`: polars, pyarrow, the Arrow
    PyCapsule and dataframe interchange protocols)."""
    if isinstance(data, pd.DataFrame):
        return data
    if isinstance(data, Mapping) or (isinstance(data, np.ndarray) and data.dtype.names):
        try:
            return pd.DataFrame(data)
        except ValueError as exc:
            raise DataError(f"{name} cannot be made into a DataFrame: {exc}") from exc
    frame = frames.to_pandas(data, name)
    if frame is not None:
        return frame
    raise DataTypeError(
        f"{name} must be a DataFrame (pandas, polars, pyarrow, or any with the Arrow "
        "PyCapsule or dataframe interchange protocol), a dict of columns or the path of a "
        f"CSV or Parquet file, not {type(data).__name__}"
    )


def check_missing_option(missing: object) -> str:
    if missing not in MISSING_OPTIONS:
        raise ValueError(f"missing must be 'none', 'raise' or 'drop', not {missing!r}")
    return str(missing)


def check_columns(data: pd.DataFrame, names: Iterable[str], formula: str | None = None) -> None:
    """Every name is exactly one column of data (close matches suggested otherwise)."""
    names = sorted(set(names))
    for name in names:
        if name not in data.columns:
            raise UnknownColumnError(name, data.columns, note=_function_note(name, formula))
    dup = data.columns[data.columns.duplicated()]
    clash = sorted({str(c) for c in dup} & set(names))
    if clash:
        counts = ", ".join(f"{c!r} ({int((data.columns == c).sum())} times)" for c in clash)
        raise DataError(f"duplicate column names in the data: {counts}; rename them")


def _function_note(name: str, formula: str | None) -> str:
    if formula and re.search(rf"(?<![\w.]){re.escape(name)}\s*\(", formula):
        return f" (and {name}() is not a function formulas know)"
    return ""


def _kind(col: pd.Series) -> str:
    """'numeric', 'bool', 'complex', 'datetime', 'categorical' or 'text'."""
    dtype = col.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        return "categorical"
    if pd.api.types.is_bool_dtype(dtype):
        return "bool"
    if pd.api.types.is_complex_dtype(dtype):
        return "complex"
    if pd.api.types.is_datetime64_any_dtype(dtype) or pd.api.types.is_timedelta64_dtype(dtype):
        return "datetime"
    if pd.api.types.is_numeric_dtype(dtype):
        return "numeric"
    if pd.api.types.is_object_dtype(dtype):
        inferred = pd.api.types.infer_dtype(col, skipna=True)
        if inferred in ("integer", "floating", "mixed-integer-float", "decimal", "empty"):
            return "numeric"
        if inferred == "boolean":
            return "bool"
        if inferred == "complex":
            return "complex"
        if inferred in ("datetime", "datetime64", "date", "timedelta", "time", "period"):
            return "datetime"
    if isinstance(dtype, (pd.PeriodDtype, pd.IntervalDtype)):
        return "datetime" if isinstance(dtype, pd.PeriodDtype) else "text"
    return "text"


def _example(col: pd.Series) -> str:
    vals = col.dropna()
    if not len(vals):
        return ""
    v = vals.iloc[0]
    return f" (e.g. {v!r})" if isinstance(v, str) else f" (e.g. {v})"


def check_numeric(col: pd.Series, name: str, role: str) -> None:
    """A response, weight or offset must hold real numbers (booleans count as 0/1)."""
    kind = _kind(col)
    if kind not in ("numeric", "bool"):
        what = {
            "text": "text",
            "categorical": "categories",
            "datetime": "dates or times",
            "complex": "complex numbers",
        }[kind]
        raise DataError(
            f"the {role} {name!r} must be numeric, but it holds {what}{_example(col)} "
            f"(dtype {col.dtype})"
        )


def check_variable_types(
    data: pd.DataFrame, response: Iterable[str], predictors: Iterable[str]
) -> None:
    """Numeric response variables; no complex numbers or dates among the predictors.

    Grouping variables may be of any type (they are made categorical).
    """
    for name in sorted(set(response)):
        check_numeric(data[name], name, "response")
    for name in sorted(set(predictors)):
        kind = _kind(data[name])
        if kind == "complex":
            raise DataError(f"column {name!r} holds complex numbers; use the real part or modulus")
        if kind == "datetime":
            raise DataError(
                f"column {name!r} holds dates or times (dtype {data[name].dtype}); convert it "
                "to a number (e.g. days since the first date) or to a category"
            )


def numbers_as_float(data: pd.DataFrame, names: Iterable[str]) -> pd.DataFrame:
    """Object columns holding only numbers become float (formulas would see categories)."""
    convert = [n for n in sorted(set(names)) if pd.api.types.is_object_dtype(data[n].dtype)]
    convert = [n for n in convert if _kind(data[n]) in ("numeric", "bool")]
    if not convert:
        return data
    return data.assign(**{n: pd.to_numeric(data[n]).astype(float) for n in convert})


def data_vector(data: pd.DataFrame, spec: object, name: str) -> np.ndarray | None:
    """weights/offset given as a column name or an array → (n,) float array (or None)."""
    if spec is None:
        return None
    n = len(data)
    if isinstance(spec, str):
        if spec not in data.columns:
            raise UnknownColumnError(spec, data.columns, note=f" (named by {name}=)")
        check_columns(data, [spec])
        check_numeric(data[spec], spec, f"{name} column")
        return data[spec].to_numpy(dtype=float, na_value=np.nan)
    if isinstance(spec, pd.Series):
        if len(spec) == n and not spec.index.equals(data.index):
            raise DataError(
                f"{name} is a Series whose index does not match the data's index; "
                f"reindex it (e.g. {name}.reindex(data.index)) or pass {name}.to_numpy()"
            )
        check_numeric(spec, name, "values of")
        arr = spec.to_numpy(dtype=float, na_value=np.nan)
    else:
        raw = np.asarray(spec)
        if raw.dtype.kind not in "biuf":
            raise DataError(f"{name} must be numeric, not an array of dtype {raw.dtype}")
        arr = raw.astype(float)
    if arr.ndim != 1:
        raise DataError(f"{name} must be one-dimensional, but has shape {arr.shape}")
    if len(arr) != n:
        raise DataError(f"{name} has length {len(arr)}, but the data have {n} rows")
    return arr


def check_not_empty(nrows: int, original: int) -> None:
    if nrows == 0:
        if original == 0:
            raise DataError("no observations: the data are empty")
        raise DataError(f"no observations left: all {original} rows were dropped")


# ---- materialized arrays ----------------------------------------------------------------------
def check_response_matrix(lhs: object, name: str) -> np.ndarray:
    """The response model matrix (n, 1) → (n,) float; anything wider is not a number."""
    arr = np.asarray(lhs)
    if arr.ndim == 2 and arr.shape[1] != 1:
        raise DataError(
            f"the response {name!r} must be numeric, but it expands to {arr.shape[1]} columns "
            "(is it a category or text?)"
        )
    if arr.dtype.kind not in "biuf":
        raise DataError(f"the response {name!r} must be numeric, not of dtype {arr.dtype}")
    return arr.astype(float).ravel()


# ---- random-effects structure -------------------------------------------------------------------
def check_has_random_terms(bars: Sequence[object], formula: str | None = None) -> None:
    if not bars:
        raise FormulaError(
            "no random-effects terms: a mixed model needs at least one, such as (1 | group) "
            "(or, with groups, re_formula='~1')",
            formula,
        )


# ---- arrays of the statsmodels API --------------------------------------------------------------
def check_same_length(n: int, **arrays: object) -> None:
    """Every given array (None skipped) has n rows."""
    for name, arr in arrays.items():
        if arr is None:
            continue
        m = len(arr) if hasattr(arr, "__len__") else np.asarray(arr).shape[0]
        if m != n:
            raise DataError(f"{name} has {m} rows, but endog has {n}")


def check_aligned(**arrays: object) -> None:
    """pandas inputs must share one index (rows are matched by position, not by label).

    The first argument with an index is the reference; arrays without one are skipped.
    """
    indexed = [(k, a.index) for k, a in arrays.items() if isinstance(a, (pd.Series, pd.DataFrame))]
    if not indexed:
        return
    ref_name, ref_index = indexed[0]
    for name, index in indexed[1:]:
        if len(index) == len(ref_index) and not index.equals(ref_index):
            raise DataError(
                f"the index of {name} does not match the index of {ref_name}; rows are "
                f"used by position, so reindex {name} (e.g. {name}.reindex({ref_name}.index)) "
                "or pass plain arrays"
            )


def check_array_input(a: object, what: str) -> None:
    """endog/exog/exog_re of the array API: numeric, at most 2-D, unique column names."""
    if a is None:
        raise DataTypeError(f"{what} is required: an array or a pandas object, not None")
    if isinstance(a, pd.DataFrame):
        dup = sorted({str(c) for c in a.columns[a.columns.duplicated()]})
        if dup:
            raise DataError(f"duplicate column names in {what}: {', '.join(map(repr, dup))}")
        for c in a.columns:
            check_numeric(a[c], str(c), f"{what} column")
        return
    if isinstance(a, pd.Series):
        check_numeric(a, str(a.name) if a.name is not None else what, what)
        return
    arr = np.asarray(a)
    if arr.ndim > 2:
        raise DataError(f"{what} must be one- or two-dimensional, but has shape {arr.shape}")
    if arr.dtype.kind not in "biuf":
        if arr.dtype.kind == "O" and _kind(pd.Series(arr.reshape(-1))) in ("numeric", "bool"):
            return
        flat = arr.reshape(-1)
        example = f" (e.g. {flat[0]!r})" if flat.size else ""
        raise DataError(f"{what} must be numeric, not an array of dtype {arr.dtype}{example}")


class formula_evaluation:  # noqa: N801 - used as a lower-case context manager
    """Turn failures of formulaic while evaluating a formula into a FormulaError."""

    def __init__(self, formula: str, what: str = "formula"):
        self.formula = formula
        self.what = what

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind, exc, tb) -> bool:
        if exc is None or isinstance(exc, (DataError, UnknownColumnError, FormulaError)):
            return False
        if not isinstance(exc, Exception) or isinstance(exc, MemoryError):
            return False
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise FormulaError(f"cannot evaluate the {self.what}: {reason}", self.formula) from exc
