"""Reading statsmodels' inputs: arrays, data columns, groups, subsets, missing values."""

from __future__ import annotations

import sys
from collections import ChainMap
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from formulaic import model_matrix

from ..data import validation
from ..data.design import prepare_frame
from ..data.missing import bad_rows, report_missing
from ..data.variables import formula_variables
from ..errors import DataError, MissingDataError, UnknownColumnError


def groups_to_codes(groups: np.ndarray) -> tuple[np.ndarray, list[Any]]:
    """Codes (n,) into the sorted distinct labels, as statsmodels orders groups."""
    values = np.asarray(groups)
    if values.ndim != 1:
        raise DataError(f"groups must be one-dimensional, got shape {values.shape}")
    try:
        codes, uniques = pd.factorize(values, sort=True)
    except TypeError as exc:
        raise DataError(f"groups labels cannot be sorted: {exc}") from None
    if (codes < 0).any():
        raise MissingDataError(f"groups has {int((codes < 0).sum())} missing labels")
    labels = [u.item() if isinstance(u, np.generic) else u for u in uniques]
    return codes.astype(np.intp), labels


def group_rows(codes: np.ndarray, n_groups: int) -> list[np.ndarray]:
    """Per group, its row numbers in increasing order, for group codes (n,)."""
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(n_groups + 1))
    return [order[bounds[g] : bounds[g + 1]] for g in range(n_groups)]


formula_vars = formula_variables  # the data columns a formula uses


def formula_environment(eval_env, depth: int) -> Mapping[str, Any]:
    """The namespace statsmodels' ``eval_env`` names for formulas (read, never copied).

    None or an int k: the namespace k frames above the caller (``depth`` frames above
    this function); −1: none; a mapping: itself.
    """
    if isinstance(eval_env, Mapping):
        return eval_env
    k = 0 if eval_env is None else int(eval_env)
    if k < 0:
        return {}
    frame = sys._getframe(depth + 1 + k)
    return ChainMap(frame.f_locals, frame.f_globals)


def external_names(texts: list[str], data: pd.DataFrame, namespace: Mapping) -> dict:
    """{name: value} of the names the formulas (``"y ~ x"`` or ``"~ x"``) use that are not
    data columns."""
    needed = set().union(*(formula_vars(t) for t in texts))
    return {n: namespace[n] for n in sorted(needed - set(data.columns)) if n in namespace}


def evaluate(text: str, data: pd.DataFrame, sparse: bool = False, env: dict | None = None):
    """A one-sided formula evaluated with formulaic (pandas categoricals kept in order).

    ``env``: values of names that are not data columns (see `external_names`).
    """
    env = env or {}
    rhs = text.strip()
    rhs = rhs[1:] if rhs.startswith("~") else rhs
    needed = formula_vars("~" + rhs) - set(env)
    missing = [v for v in needed if v not in data.columns]
    if missing:
        raise UnknownColumnError(missing[0], data.columns)
    frame, context = prepare_frame(data, needed)
    context.update(env)
    return model_matrix(
        "~" + rhs, frame, context=context, na_action="ignore", output="sparse" if sparse else None
    )


def check_columns(data: pd.DataFrame, names: set[str]) -> None:
    for name in sorted(names):
        if name not in data.columns:
            raise UnknownColumnError(name, data.columns)


def subset_mask(data: pd.DataFrame, subset) -> np.ndarray:
    """(n,) bool: ``subset`` as a boolean mask or index labels of ``data``."""
    sub = np.asarray(subset)
    if sub.dtype == bool:
        if len(sub) != len(data):
            raise DataError("a boolean subset must have one value per row of data")
        return sub
    return np.asarray(data.index.isin(sub))


def as_matrix(a, what: str) -> tuple[np.ndarray, list[str] | None, pd.Index | None]:
    """Array-like → (values (n, k), column names or None, row index or None)."""
    validation.check_array_input(a, what)
    if isinstance(a, pd.DataFrame):
        return a.to_numpy(dtype=float), [str(c) for c in a.columns], a.index
    if isinstance(a, pd.Series):
        name = None if a.name is None else [str(a.name)]
        return a.to_numpy(dtype=float)[:, None], name, a.index
    try:
        arr = np.asarray(a, dtype=float)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{what} must be numeric: {exc}") from None
    return (arr[:, None] if arr.ndim == 1 else arr), None, None


def exog_names(X: np.ndarray) -> list[str]:
    """statsmodels' default names: 'const' for a constant column, x1, x2, ... otherwise."""
    p = X.shape[1]
    if p == 0:
        return []
    const = np.flatnonzero(np.ptp(X, axis=0) == 0) if len(X) else np.array([], dtype=int)
    if const.size:
        names = [f"x{i}" for i in range(1, p)]
        names.insert(int(const[0]), "const")
        return names
    return [f"x{i}" for i in range(1, p + 1)]


def handle_missing(
    data: pd.DataFrame, needed: set[str], garr: np.ndarray | None, missing: str
) -> tuple[pd.DataFrame, np.ndarray | None]:
    """Raise on, or drop (``missing="drop"``), rows with missing values in ``needed``
    (the data layer's one rule, `sparselme.data.missing`)."""
    validation.check_missing_option(missing)
    columns = [(name, data[name]) for name in sorted(needed)]
    if garr is not None:
        columns.append(("groups", pd.Series(garr)))
    bad, counts = bad_rows(columns, len(data))
    report_missing(int(bad.sum()), len(data), counts, missing, stacklevel=3)
    if not bad.any():
        return data, garr
    return data.loc[~bad], None if garr is None else garr[~bad]
