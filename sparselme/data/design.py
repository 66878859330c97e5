"""Materialization: parsed formula + data → X, y, weights, offset and the terms of Z.

The fixed-effects part and each term's left-hand side go through formulaic. Categorical
columns follow their pandas category order (first level is the reference); ordered
categoricals get R's polynomial contrasts; grouping variables are always categorical.
Column names are reported in R's style (``(Intercept)``, ``recipeB``,
``temperature.L``) for the lme4 interface and in formulaic's style for the statsmodels
one. The formulaic model specs are kept so new data can be coded the same way.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.linalg as la
from formulaic import ModelSpec, model_matrix
from formulaic.transforms.contrasts import C, PolyContrasts

from ..engine.cholesky import blas_threads
from ..engine.terms import RandomEffectsTerm
from ..errors import DataError, DroppedRowsWarning, MissingDataError, RankDeficiencyWarning
from . import validation as check
from ..engine.cholesky import blas_threads
from ..errors import DataError, DroppedRowsWarning, MissingDataError, NumericalError, RankDeficiencyWarning
from .fixed_scaling import FixedScaling
from .formula import BarTerm, ParsedFormula
from .variables import formula_variables
from ..engine.terms import RandomEffectsTerm

__all__ = ["Design", "build_design", "r_style_name", "prepare_frame", "group_codes"]

_RANK_TOL = 1e-7


def r_style_name(name: str) -> str:
    """formulaic column name → R's: ``Intercept``→``(Intercept)``, ``f[T.b]``→``fb``."""
    if name == "Intercept":
        return "(Intercept)"
    name = re.sub(r"\[T\.([^\]]*)\]", r"\1", name)
    return re.sub(r"\[([^\]]*)\]", r"\1", name)


def prepare_frame(data: pd.DataFrame, variables: set[str]) -> tuple[pd.DataFrame, dict]:
    """Split data for formulaic: ordered categoricals go to the context with poly contrasts.

    Unused categories are dropped so that they do not create empty columns.
    """
    frame = {}
    context = {}
    for name in variables:
        if name not in data.columns:
            continue
        col = data[name]
        if isinstance(col.dtype, pd.CategoricalDtype):
            col = col.cat.remove_unused_categories()
            if col.cat.ordered and len(col.cat.categories) > 1:
                context[name] = C(col, PolyContrasts())
                continue
        frame[name] = col
    return pd.DataFrame(frame, index=data.index), context


def group_codes(data: pd.DataFrame, variables: Sequence[str]) -> tuple[np.ndarray, pd.Index]:
    """Observed levels of a grouping factor (an interaction for several variables).

    Levels are in R's order: category order for categoricals, sorted values otherwise;
    for ``a:b`` the first variable varies slowest. Returns (codes (n,), levels).
    """
    codes = None
    labels: list[np.ndarray] = []
    for name in variables:
        col = data[name]
        if isinstance(col.dtype, pd.CategoricalDtype):  # unused categories drop out below
            c = col.cat.codes.to_numpy().astype(np.int64)
            lev = np.asarray(col.cat.categories.astype(str))
        else:
            c, lev = pd.factorize(col, sort=True)
            c = c.astype(np.int64)
            lev = np.asarray(pd.Index(lev).astype(str))
        if codes is None:
            codes, labels = c, [lev]
        else:
            codes = codes * len(lev) + c
            labels.append(lev)
    observed, dense = _observed_codes(codes, int(np.prod([len(lv) for lv in labels])))
    # decode observed combined codes back to per-variable labels
    parts = []
    rem = observed
    sizes = [len(lv) for lv in labels]
    for i in range(len(labels) - 1, -1, -1):
        rem, idx = np.divmod(rem, sizes[i])
        parts.append(labels[i][idx])
    parts.reverse()
    names = parts[0].astype(object)
    for part in parts[1:]:
        names = names + ":" + part.astype(object)
    return dense.astype(np.intp), pd.Index(names, name=":".join(variables))


def _observed_codes(codes: np.ndarray, space: int) -> tuple[np.ndarray, np.ndarray]:
    """(sorted observed codes, each row's index among them) for codes in [0, space).

    A count over the code space (no sort) when that space is not much larger than the
    data, else ``np.unique``.
    """
    if space <= max(8 * len(codes), 1 << 20):
        present = np.bincount(codes, minlength=space) > 0
        position = np.cumsum(present) - 1
        return np.flatnonzero(present), position[codes]
    return np.unique(codes, return_inverse=True)


@dataclass
class Design:
    """The materialized model: X (n, p), y (n,), weights, offset and the terms of Z."""

    y: np.ndarray
    X: np.ndarray
    terms: list[RandomEffectsTerm]
    fixed_names: list[str]  # formulaic style, e.g. "Intercept", "C(x)[T.b]"
    weights: np.ndarray | None = None
    offset: np.ndarray | None = None
    response_name: str = "y"
    dropped_columns: list[str] = field(default_factory=list)
    fixed_spec: ModelSpec | None = None
    parsed: ParsedFormula | None = None
    row_index: pd.Index | None = None
    term_specs: dict[str, ModelSpec] = field(default_factory=dict)  # by a term's lhs

    @property
    def nobs(self) -> int:
        return len(self.y)

    @property
    def fixed_names_r(self) -> list[str]:
        return [r_style_name(n) for n in self.fixed_names]

    @property
    def y_centered(self) -> np.ndarray:
        """y − offset."""
        return self.y if self.offset is None else self.y - self.offset


def _engine_columns(X: np.ndarray) -> np.ndarray:
    """(n, p) X centred on its intercept and scaled (:mod:`.fixed_scaling`); columns that
    are constant up to rounding are zero."""
    return FixedScaling.of(X, zero_rounding=True).apply(X)


def redundant_fixed_columns(X: np.ndarray, tol: float = _RANK_TOL) -> list[int]:
    """Redundant columns of a fixed-effects matrix, judged on its centred, scaled columns."""
    return redundant_columns(_engine_columns(X), tol)


def redundant_columns(X: np.ndarray, tol: float = _RANK_TOL) -> list[int]:
    """Indices of columns of X that are (numerically) in the span of earlier columns."""
    if X.shape[1] == 0:
        return []
    return _dependent_in_r(_qr_r(X), _column_norms(X), tol)


def redundant_columns_and_residual(
    X: np.ndarray, y: np.ndarray, tol: float = _RANK_TOL
) -> tuple[list[int], float | None]:
    """(redundant columns of X, ‖y − Xβ̂‖ of least squares) from one QR of [X y] (n, p+1).

    The last diagonal entry of R is the norm of y's part orthogonal to X's columns. With
    redundant columns the residual is None: the reflection for a dependent column turns
    in a direction of rounding noise, so R's last entry is no longer that norm.
    """
    n, p = X.shape
    Xy = np.empty((n, p + 1), order="F")
    Xy[:, :p] = X
    Xy[:, p] = y
    R = _qr_r(Xy, overwrite=True)
    dropped = _dependent_in_r(R[:, :p], _column_norms(X), tol)
    if dropped:
        return dropped, None
    return dropped, abs(float(R[p, p])) if R.shape[0] > p else 0.0


def _column_norms(X: np.ndarray) -> np.ndarray:
    """(p,) Euclidean norms of X's columns, without an n × p temporary."""
    return np.sqrt(np.einsum("ij,ij->j", X, X))


def _qr_r(M: np.ndarray, overwrite: bool = False) -> np.ndarray:
    """(min(n, m), m) triangular factor R of M (n, m), by LAPACK's Householder QR."""
    (geqrf,) = la.get_lapack_funcs(("geqrf",), (M,))
    with blas_threads(1):  # tall and skinny: threads only add contention
        qr, _, _, info = geqrf(M, lwork=max(1, 64 * M.shape[1]), overwrite_a=overwrite)
    if info != 0:
        raise NumericalError(f"QR of the fixed-effects matrix failed (LAPACK info={info})")
    return np.triu(qr[: min(M.shape)])


def _dependent_in_r(R: np.ndarray, norms: np.ndarray, tol: float) -> list[int]:
    d = np.abs(np.diag(R))
    scale = np.where(norms > 0, norms, 1.0)
    return [j for j in range(len(norms)) if norms[j] == 0 or j >= len(d) or d[j] <= tol * scale[j]]


def _term_model(lhs: str, frame: pd.DataFrame, context: dict):
    """formulaic's model matrix of a term's left-hand side (its spec codes new data)."""
    with check.formula_evaluation(lhs, "random-effects term"):
        return model_matrix(lhs, frame, context=context, na_action="ignore")


def build_design(
    parsed: ParsedFormula,
    data: pd.DataFrame,
    weights: np.ndarray | str | None = None,
    offset: np.ndarray | str | None = None,
    missing: str = "raise",
) -> Design:
    """Materialize a parsed lme4 formula on a DataFrame.

    Terms are returned in lme4's order: by decreasing number of levels (stable).
    """
    data = check.as_data_frame(data)
    if parsed.response is None:
        raise DataError("the formula has no response: write it as 'y ~ ...'")
    check.check_missing_option(missing)
    fixed_text = parsed.fixed_formula()
    needed = formula_variables(fixed_text)
    predictors = set(needed)
    for bar in parsed.bars:
        lhs_vars = formula_variables("~" + bar.lhs)
        predictors |= lhs_vars
        needed |= lhs_vars | set(bar.group)
    check.check_columns(data, needed, parsed.text)
    response_vars = formula_variables(f"~ {parsed.response}")
    check.check_variable_types(data, response_vars, predictors - response_vars)
    data = check.numbers_as_float(data, predictors | response_vars)

    w = check.data_vector(data, weights, "weights")
    off = check.data_vector(data, offset, "offset")
    original = len(data)
    keep = _missing_rows(data, needed, w, off, missing)
    zero = check.zero_weight_rows(w)
    check.check_weight_range(w)
    if zero is not None:
        check.warn_dropped(int(zero.sum()), original, "with weight 0", stacklevel=3)
        keep = ~zero if keep is None else keep & ~zero
    if keep is not None:
        data = data.loc[keep]
        w = None if w is None else w[keep]
        off = None if off is None else off[keep]
    check.check_not_empty(len(data), original)

    response_name = str(parsed.response).strip()
    frame, context, y, Xdf = _fixed_part(parsed, data, needed)
    bad = check.nonfinite_model_rows(
        [(response_name, y), *((r_style_name(str(c)), Xdf[c]) for c in Xdf.columns)],
        missing,
        len(y),
    )
    if bad is not None:  # e.g. log(x) of negative x: drop the rows and evaluate again
        data = data.loc[~bad]
        w = None if w is None else w[~bad]
        off = None if off is None else off[~bad]
        check.check_not_empty(len(data), original)
        frame, context, y, Xdf = _fixed_part(parsed, data, needed)
    X = np.asarray(Xdf, dtype=float)
    names = [str(c) for c in Xdf.columns]
    check.check_magnitude(y, [response_name], "the response")
    check.check_magnitude(X, [r_style_name(c) for c in names], "the fixed-effects column")

    yc = y if off is None else y - off
    # ranks judged on the centred and scaled columns the engine fits (Days + 1e9 is no
    # constant): a column is redundant only if it is one there
    dropped, residual = redundant_columns_and_residual(_engine_columns(X), yc)
    if dropped:
        warn_dropped_columns([names[j] for j in dropped], stacklevel=3)
        keep = [j for j in range(X.shape[1]) if j not in set(dropped)]
        X = X[:, keep]
        dropped_cols = [names[j] for j in dropped]
        names = [names[j] for j in keep]
    else:
        dropped_cols = []
    check.check_not_exact_fit(yc, X, response_name, residual)

    term_specs: dict[str, ModelSpec] = {}
    terms = [_make_term(bar, data, frame, context, term_specs) for bar in parsed.bars]
    order = sorted(range(len(terms)), key=lambda i: -terms[i].nlevels)
    terms = [terms[i] for i in order]
    check.check_random_terms(terms, len(y), stacklevel=3)
    return Design(
        y=y,
        X=np.asfortranarray(X),
        terms=terms,
        fixed_names=names,
        weights=w,
        offset=off,
        response_name=response_name,
        dropped_columns=dropped_cols,
        fixed_spec=Xdf.model_spec,
        parsed=parsed,
        row_index=data.index,
        term_specs=term_specs,
    )


def _fixed_part(parsed: ParsedFormula, data: pd.DataFrame, needed: set[str]):
    """(frame, context, y, X as formulaic's DataFrame) of the response ~ fixed formula."""
    frame, context = prepare_frame(data, needed)
    with check.formula_evaluation(parsed.text):
        mm = model_matrix(parsed.fixed_formula(), frame, context=context, na_action="ignore")
    return frame, context, check.check_response_matrix(mm.lhs, str(parsed.response).strip()), mm.rhs


def _make_term(
    bar: BarTerm, data: pd.DataFrame, frame: pd.DataFrame, context: dict, specs: dict
) -> RandomEffectsTerm:
    """The term of ``bar``; the formulaic spec of its left-hand side goes into ``specs``."""
    codes, levels = group_codes(data, bar.group)
    mm = _term_model(bar.lhs, frame, context)
    specs[bar.lhs] = mm.model_spec
    return RandomEffectsTerm(
        name=bar.group_name,
        columns=tuple(r_style_name(c) for c in mm.columns),
        levels=levels,
        codes=codes,
        model=np.asarray(mm, dtype=float),
        covariance="unstructured",
        group_vars=tuple(bar.group),
        lhs=bar.lhs,
    )


def warn_dropped_columns(names: list[str], stacklevel: int = 2) -> None:
    """lme4's warning for fixed-effect columns dropped as redundant (formulaic names)."""
    shown = ", ".join(r_style_name(n) for n in names)
    warnings.warn(
        f"fixed-effect model matrix is rank deficient so dropping {len(names)} "
        f"column{'s' if len(names) > 1 else ''}: {shown}",
        RankDeficiencyWarning,
        stacklevel=stacklevel + 1,
    )


def missing_mask(col: pd.Series) -> np.ndarray:
    """(n,) True where a column is missing (NaN, None, NA) or, if numeric, not finite."""
    if (
        isinstance(col.dtype, pd.CategoricalDtype)
        or col.dtype == object
        or pd.api.types.is_string_dtype(col)
    ):
        return col.isna().to_numpy()
    try:
        return ~np.isfinite(col.to_numpy(dtype=float, na_value=np.nan))
    except (TypeError, ValueError):
        return col.isna().to_numpy()


def _missing_rows(data: pd.DataFrame, needed: set[str], w, off, missing: str) -> np.ndarray | None:
    """Rows to keep (None: all) after checking the used columns for NaN/inf."""
    check.check_missing_option(missing)
    bad = np.zeros(len(data), dtype=bool)
    bad_cols = []
    for name in sorted(needed):
        isbad = missing_mask(data[name])
        if isbad.any():
            bad_cols.append(f"{name} ({int(isbad.sum())})")
            bad |= isbad
    for label, arr in (("weights", w), ("offset", off)):
        if arr is not None:
            isbad = ~np.isfinite(arr)  # shape checked by validation.data_vector
            if isbad.any():
                bad_cols.append(f"{label} ({int(isbad.sum())})")
                bad |= isbad
    if not bad.any():
        return None
    if missing == "drop":
        warnings.warn(
            f"dropped {int(bad.sum())} of {len(data)} rows with missing or non-finite values "
            f"in: {', '.join(bad_cols)}",
            DroppedRowsWarning,
            stacklevel=4,
        )
        return ~bad
    raise MissingDataError(
        f"{int(bad.sum())} of {len(data)} rows have missing or non-finite values in the model's "
        f"variables: {', '.join(bad_cols)}. Pass missing='drop' to drop these rows."
    )
