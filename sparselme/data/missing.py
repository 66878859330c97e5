"""The one rule for missing values: which rows are bad, how they are counted and reported.

A row is bad when a variable the model uses is missing (NaN, None, NA) or, for a numeric
column, not finite. Counts are kept per column so that the message names them; they add
up over chunks, so in-memory data (one chunk) and streamed data report the same numbers.
With ``missing="drop"`` bad rows are dropped with a `DroppedRowsWarning`; otherwise a
`MissingDataError` says how many rows and where.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

from ..errors import DroppedRowsWarning, MissingDataError

__all__ = ["missing_mask", "bad_rows", "report_missing", "warn_dropped"]


def missing_mask(values: object) -> np.ndarray:
    """(n,) True where a column is missing (NaN, None, NA) or, if numeric, not finite.

    ``values``: a pandas Series, or an array (n,) or (n, k) (a row is bad when any of its
    entries is). Booleans, text and categories are missing only when NA.
    """
    if isinstance(values, pd.Series):
        col = values
        if isinstance(col.dtype, pd.CategoricalDtype) or pd.api.types.is_bool_dtype(col):
            return col.isna().to_numpy()
        if col.dtype == object or pd.api.types.is_string_dtype(col):
            return col.isna().to_numpy()
        try:
            return ~np.isfinite(col.to_numpy(dtype=float, na_value=np.nan))
        except (TypeError, ValueError):
            return col.isna().to_numpy()
    arr = np.asarray(values)
    flat = arr.reshape(len(arr), -1)
    if arr.dtype.kind in "fc":
        return ~np.isfinite(flat).all(axis=1)
    if arr.dtype.kind == "O":
        return pd.isna(pd.DataFrame(flat)).any(axis=1).to_numpy()
    return np.zeros(len(arr), dtype=bool)


def bad_rows(columns: Iterable[tuple[str, object]], n: int) -> tuple[np.ndarray, dict[str, int]]:
    """((n,) bad rows, bad-value count per column name) over ``(name, values)`` pairs."""
    bad = np.zeros(n, dtype=bool)
    counts: dict[str, int] = {}
    for name, values in columns:
        if values is None:
            continue
        isbad = missing_mask(values)
        if isbad.any():
            counts[name] = counts.get(name, 0) + int(isbad.sum())
            bad |= isbad
    return bad, counts


def report_missing(
    nbad: int,
    nrows: int,
    counts: Mapping[str, int],
    missing: str,
    stacklevel: int = 3,
    order: Iterable[str] | None = None,
) -> None:
    """Raise `MissingDataError` for ``nbad`` bad rows of ``nrows`` (``missing`` other than
    ``"drop"``), or warn that they are dropped; nothing when ``nbad`` is 0.

    ``counts`` are listed in ``order`` (names not in it last, sorted), e.g. ``y (3), x (1)``.
    """
    if not nbad:
        return
    names = [n for n in (order or []) if n in counts]
    names += sorted(set(counts) - set(names))
    listed = ", ".join(f"{n} ({counts[n]})" for n in names)
    if missing == "drop":
        warnings.warn(
            f"dropped {nbad} of {nrows} rows with missing or non-finite values in: {listed}",
            DroppedRowsWarning,
            stacklevel=stacklevel + 1,
        )
        return
    raise MissingDataError(
        f"{nbad} of {nrows} rows have missing or non-finite values in the model's "
        f"variables: {listed}. Pass missing='drop' to drop these rows."
    )


def warn_dropped(count: int, total: int, reason: str, stacklevel: int = 3) -> None:
    """`DroppedRowsWarning`: ``count`` of ``total`` rows left out, for ``reason``."""
    warnings.warn(
        f"dropped {count} of {total} rows {reason}", DroppedRowsWarning, stacklevel=stacklevel + 1
    )
