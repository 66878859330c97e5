"""Checks of the user's input, run before any numerics.

Plain functions shared by the lme4 path (`sparselme.design.build_design`) and the
statsmodels-compatible API. Each raises a `sparselme.errors` exception whose
message names the column, term or count at fault, or returns the cleaned value.
"""

from __future__ import annotations

import math
import os
import re
import warnings
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from ..engine.rows import TermRows
from ..engine.start import SCALE_RATIO
from ..engine.terms import RandomEffectsTerm
from ..errors import (
    DataError,
    DataTypeError,
    DroppedRowsWarning,
    FormulaError,
    IdentifiabilityError,
    IdentifiabilityWarning,
    MissingDataError,
    ScaleWarning,
    UnknownColumnError,
)
from . import frames
from .overlap import check_distinct_terms
from .rank import redundant_columns

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
    "zero_weight_rows",
    "check_weight_range",
    "check_not_empty",
    "check_response_matrix",
    "nonfinite_model_rows",
    "check_term_values",
    "check_magnitude",
    "check_not_exact_fit",
    "check_has_random_terms",
    "check_identifiable",
    "check_random_terms",
    "check_term_columns",
    "warn_about_scales",
    "check_same_length",
    "check_aligned",
    "check_array_input",
    "formula_evaluation",
]

MISSING_OPTIONS = ("none", "raise", "drop")
# |values| beyond this overflow when squared and summed; below its inverse they underflow.
MAX_MAGNITUDE = 1e150
# Positive weights spanning more than this ratio lose the small ones to rounding.
MAX_WEIGHT_RATIO = 1e12
# The exact-fit check runs a least-squares fit; skipped when that would cost more.
_EXACT_FIT_MAX_FLOPS = 1e10


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


def zero_weight_rows(w: np.ndarray | None) -> np.ndarray | None:
    """Rows with weight 0 (to be dropped), or None; negative or all-zero weights raise.

    A weight of 0 gives an observation infinite residual variance: it carries no
    information, and leaving it out is the exact limit (as R's lm does).
    """
    if w is None:
        return None
    finite = np.isfinite(w)
    neg = finite & (w < 0)
    if neg.any():
        first = int(np.flatnonzero(neg)[0])
        raise DataError(
            f"weights must be non-negative: {int(neg.sum())} of {len(w)} are negative "
            f"(the first at row {first}: {w[first]:g})"
        )
    if finite.any() and not np.any(w[finite] > 0):
        raise DataError("weights sum to zero: every observation has weight 0")
    zero = finite & (w == 0)
    return zero if zero.any() else None


def check_weight_range(w: np.ndarray | None) -> None:
    """Positive weights must not span more orders of magnitude than doubles resolve."""
    if w is None:
        return
    pos = w[np.isfinite(w) & (w > 0)]
    if pos.size == 0:
        return
    lo, hi = float(pos.min()), float(pos.max())
    if hi > MAX_MAGNITUDE or lo < 1 / MAX_MAGNITUDE or hi / lo > MAX_WEIGHT_RATIO:
        raise DataError(
            f"weights range from {lo:.3g} to {hi:.3g}; beyond a ratio of "
            f"{MAX_WEIGHT_RATIO:.0e} the lightest observations are lost to rounding: "
            "rescale the weights or drop the lightest rows"
        )


def warn_dropped(count: int, total: int, reason: str, stacklevel: int = 3) -> None:
    warnings.warn(
        f"dropped {count} of {total} rows {reason}", DroppedRowsWarning, stacklevel=stacklevel + 1
    )


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


def nonfinite_model_rows(
    columns: Sequence[tuple[str, np.ndarray]], missing: str, total: int
) -> np.ndarray | None:
    """Rows where evaluating the formula (log of negatives...) gave NaN or inf.

    With missing='drop' they are reported and returned to be dropped; otherwise raise.
    """
    bad = np.zeros(total, dtype=bool)
    found = []
    for name, values in columns:
        isbad = ~np.isfinite(np.asarray(values, dtype=float))
        if isbad.any():
            found.append(f"{name} ({int(isbad.sum())})")
            bad |= isbad
    if not found:
        return None
    where = ", ".join(found)
    if missing != "drop":
        raise MissingDataError(
            f"{int(bad.sum())} of {total} rows have non-finite values after evaluating the "
            f"formula, in: {where}. Pass missing='drop' to drop these rows."
        )
    warn_dropped(int(bad.sum()), total, f"with non-finite values after evaluating: {where}", 4)
    return bad


def check_term_values(term: RandomEffectsTerm, rows: TermRows) -> None:
    """A random-effects term's columns must be finite (its variables were checked raw)."""
    bad = ~np.isfinite(rows.model).all(axis=1)
    if bad.any():
        raise MissingDataError(
            f"the random-effects term {term_label(term)} has non-finite values in "
            f"{int(bad.sum())} of {len(bad)} rows after evaluating {term.lhs!r}; transform "
            "the data first (or drop those rows)"
        )


def check_magnitude(M: np.ndarray, names: Sequence[str], role: str) -> None:
    """Columns whose values would overflow or underflow when squared raise."""
    M = np.asarray(M, dtype=float).reshape(len(M), -1)
    if M.size == 0:
        return
    top = np.maximum(M.max(axis=0), -M.min(axis=0))  # max |M| by column, without a copy
    for j in np.flatnonzero((top > MAX_MAGNITUDE) | ((top > 0) & (top < 1 / MAX_MAGNITUDE))):
        raise DataError(
            f"{role} {names[j]!r} has values of magnitude {top[j]:.3g}, too "
            f"{'large' if top[j] > 1 else 'small'} for double precision sums of squares; "
            "rescale it"
        )


def check_not_exact_fit(
    y: np.ndarray, X: np.ndarray, name: str, residual: float | None = None
) -> None:
    """The fixed effects must not reproduce the response exactly (no residual variance).

    ``residual``: ‖y − Xβ̂‖ when already known (from a QR of [X y]); else least squares.
    """
    n, p = X.shape
    if residual is None and n * p * p > _EXACT_FIT_MAX_FLOPS:
        return
    scale = math.sqrt(float(y @ y))
    if residual is not None:
        resid = residual
    elif p:
        beta = np.linalg.lstsq(X, y, rcond=None)[0]
        resid = float(np.linalg.norm(y - X @ beta))
    else:
        resid = scale
    if resid <= 1e-10 * scale or scale == 0.0:
        what = "is constant" if np.ptp(y) == 0 else "is fitted exactly by the fixed effects"
        raise DataError(
            f"the response {name!r} {what}: no residual variation is left to estimate "
            f"variance components from ({n} observations, {p} fixed-effect columns)"
        )


# ---- random-effects structure -------------------------------------------------------------------
def check_has_random_terms(bars: Sequence[object], formula: str | None = None) -> None:
    if not bars:
        raise FormulaError(
            "no random-effects terms: a mixed model needs at least one, such as (1 | group) "
            "(or, with groups, re_formula='~1')",
            formula,
        )


def term_label(term: RandomEffectsTerm) -> str:
    """``(x | g)``; terms built from arrays (no formula) show their column names."""
    return term.label()


def check_identifiable(
    terms: Sequence[RandomEffectsTerm], nobs: int, nobs_vs_nre: str = "stop", stacklevel: int = 3
) -> None:
    """lme4's checks: > 1 level, fewer levels than observations, fewer effects than obs.

    ``nobs_vs_nre``: "stop" raises when a term has as many random effects as observations
    or more, "warning" warns (lme4's ``check.nobs.vs.nRE``).
    """
    for t in terms:
        if t.nlevels < 2:
            only = f" ({t.levels[0]!r})" if t.nlevels else ""
            raise IdentifiabilityError(
                f"grouping factor {t.name!r} of term {term_label(t)} has {t.nlevels} "
                f"level{only}; grouping factors must have > 1 sampled level"
            )
    crowded = [t for t in terms if t.nlevels >= nobs]
    if crowded:
        problems = ", ".join(f"{t.name!r} ({t.nlevels} levels)" for t in crowded)
        raise IdentifiabilityError(
            "number of levels of each grouping factor must be < number of observations "
            f"(= {nobs}); problems: {problems}"
        )
    for t in terms:
        if t.q >= nobs:
            text = (
                f"number of observations (= {nobs}) <= number of random effects (= {t.q}: "
                f"{t.k} per level × {t.nlevels} levels) for term {term_label(t)}; the "
                "random-effects parameters and the residual variance are probably unidentifiable"
            )
            if nobs_vs_nre != "warning":
                raise IdentifiabilityError(text)
            warnings.warn(text, IdentifiabilityWarning, stacklevel=stacklevel + 1)


def check_term_columns(term: RandomEffectsTerm, rows: TermRows) -> None:
    """A term's columns must be linearly independent (else their variances are not)."""
    if term.k < 2 and np.any(rows.model != 0):
        return
    dependent = redundant_columns(rows.model)
    if dependent:
        names = ", ".join(repr(term.columns[j]) for j in dependent)
        offset = [j for j in dependent if _nearly_constant(rows.model[:, j])]
        if offset and np.any(np.all(rows.model == 1.0, axis=0)):
            j = offset[0]
            x = rows.model[:, j]
            raise IdentifiabilityError(
                f"the random-effects column {term.columns[j]!r} of term {term_label(term)} "
                f"varies by only {np.std(x) / np.max(np.abs(x)):.2g} of its size "
                f"({np.mean(x):.6g} on average): in double precision it cannot be told from "
                "the intercept; centre it (subtract a typical value) before fitting"
            )
        raise IdentifiabilityError(
            f"the random-effects columns of term {term_label(term)} are linearly dependent "
            f"or zero ({names}): their variances cannot be told apart; remove them"
        )


def _nearly_constant(x: np.ndarray) -> bool:
    """A column that is a large constant plus a small variation beyond rounding."""
    size = float(np.max(np.abs(x)))
    spread = float(np.std(x))
    return size > 0 and 1e-12 * size < spread < 1e-6 * size


def check_random_terms(
    terms: Sequence[RandomEffectsTerm],
    rows: Sequence[TermRows],
    nobs: int,
    stacklevel: int = 3,
    nobs_vs_nre: str = "stop",
) -> None:
    """All checks of the random-effects terms (structures and rows), for every API."""
    check_identifiable(terms, nobs, nobs_vs_nre, stacklevel=stacklevel + 1)
    for t, r in zip(terms, rows):
        check_term_values(t, r)
        check_term_columns(t, r)
        check_magnitude(r.model, t.columns, f"the column of {term_label(t)}")
    check_distinct_terms(terms, rows)
    warn_about_scales(terms, rows, stacklevel=stacklevel + 1)


def warn_about_scales(
    terms: Sequence[RandomEffectsTerm], rows: Sequence[TermRows], stacklevel: int = 3
) -> None:
    """Warn about random-effects columns on extreme scales (their θ is far from 1).

    Columns holding only 0 and 1 are left alone, as lme4's scale check does.
    """
    seen = set()
    for t, r in zip(terms, rows):
        for j, col in enumerate(t.columns):
            x = r.model[:, j]
            if col in seen or np.all((x == 0) | (x == 1)):
                continue
            sd = float(np.std(x))
            size = sd if sd > 0 else float(np.max(np.abs(x)))
            if size > SCALE_RATIO or 0 < size < 1 / SCALE_RATIO:
                seen.add(col)
                warnings.warn(
                    f"the random-effects column {col!r} of term {term_label(t)} has standard "
                    f"deviation {size:.3g}; its variance parameter is then far from 1 and may "
                    "be misjudged as zero or missed: consider rescaling it",
                    ScaleWarning,
                    stacklevel=stacklevel + 1,
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
