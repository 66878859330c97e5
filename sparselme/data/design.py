"""Materialization: parsed formula + data → X, y, weights, offset and the terms of Z.

The fixed-effects part and each term's left-hand side go through formulaic. Categorical
columns follow their pandas category order (first level is the reference); ordered
categoricals get R's polynomial contrasts; grouping variables are always categorical.
Column names are reported in R's style (``(Intercept)``, ``recipeB``,
``temperature.L``) for the lme4 interface and in formulaic's style for the statsmodels
one. The formulaic model specs are kept so new data can be coded the same way.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

import numpy as np
import pandas as pd
from formulaic import ModelSpec, model_matrix
from formulaic.transforms.contrasts import C, PolyContrasts

from ..engine.rows import TermRows
from ..engine.terms import RandomEffectsTerm
from ..errors import (
    DataError,
    DroppedRowsWarning,
    MissingDataError,
    RankDeficiencyWarning,
)
from . import validation as check
from .formula import BarTerm, ParsedFormula, expand_dot
from .frames import level_labels
from .rank import engine_columns, redundant_columns_and_residual
from .rnames import r_label
from .transforms import R_TRANSFORMS
from .variables import formula_variables

__all__ = [
    "Design",
    "build_design",
    "coded_term",
    "r_style_name",
    "prepare_frame",
    "group_codes",
    "lme4_term_order",
]


def r_style_name(name: str) -> str:
    """formulaic column name → R's: ``Intercept``→``(Intercept)``, ``f[T.b]``→``fb``,
    ``I(x ** 2)``→``I(x^2)``, ``x 2``→`` `x 2` `` (see `sparselme.data.rnames`)."""
    if name == "Intercept":
        return "(Intercept)"
    return r_label(name)


def lme4_term_order(nlevels: Sequence[int]) -> list[int]:
    """The order lme4 1.1 (``mkReTrms``) gives random-effects terms with these numbers of
    levels (formula order): kept when the counts never increase, else R's
    ``rev(order(nlevels))``, most levels first with ties in reverse formula order."""
    counts = list(nlevels)
    if all(a >= b for a, b in zip(counts, counts[1:])):
        return list(range(len(counts)))
    return sorted(range(len(counts)), key=lambda i: (counts[i], i), reverse=True)


def prepare_frame(data: pd.DataFrame, variables: set[str]) -> tuple[pd.DataFrame, dict]:
    """Split data for formulaic: ordered categoricals go to the context with poly contrasts.

    Unused categories are dropped so that they do not create empty columns. The context
    also holds R's transforms (`sparselme.data.transforms`).
    """
    frame = {}
    context = dict(R_TRANSFORMS)
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
            lev = level_labels(col.cat.categories)
        else:
            c, lev = pd.factorize(col, sort=True)
            c = c.astype(np.int64)
            lev = level_labels(lev)
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


class RowSource(Protocol):
    """Rows that are read again when needed (a Parquet folder, a Dask frame)."""

    def fitted_values(self, design: Design, beta: np.ndarray, b_blocks: list[np.ndarray]): ...

    def response(self, design: Design): ...


@dataclass
class Design:
    """The materialized model: X (n, p), y (n,), weights, offset and the terms of Z."""

    y: np.ndarray
    X: np.ndarray
    terms: list[RandomEffectsTerm]  # the structure of Z's blocks, in Z's column order
    rows: list[TermRows]  # their n-length rows, in the same order
    fixed_names: list[str]  # formulaic style, e.g. "Intercept", "C(x)[T.b]"
    weights: np.ndarray | None = None
    offset: np.ndarray | None = None
    response_name: str = "y"
    dropped_columns: list[str] = field(default_factory=list)
    fixed_spec: ModelSpec | None = None
    parsed: ParsedFormula | None = None
    row_index: pd.Index | None = None
    source: RowSource | None = None  # where the rows are when they are not held (streamed)
    term_specs: dict[str, ModelSpec] = field(default_factory=dict)  # by a term's lhs
    offset_specs: tuple[ModelSpec, ...] = ()  # the formula's offset() terms, for new data
    offset_argument: bool = True  # whether ``offset`` includes an offset= argument
    data_index: pd.Index | None = None  # the rows given, before any were dropped
    formula_env: dict = field(default_factory=dict)  # names formulas use beyond the data

    nrows: int | None = None  # the number of rows when they are not held

    @property
    def nobs(self) -> int:
        return len(self.y) if self.y is not None else int(self.nrows)

    @property
    def fixed_names_r(self) -> list[str]:
        return [r_style_name(n) for n in self.fixed_names]

    @property
    def y_minus_offset(self) -> np.ndarray:
        """(n,) y − offset: the response the engine fits."""
        return self.y if self.offset is None else self.y - self.offset

    def with_terms(self, terms: list[RandomEffectsTerm], rows: list[TermRows]) -> Design:
        """The same fixed part and response with other random-effects terms."""
        return replace(self, terms=list(terms), rows=list(rows))


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
    env: dict | None = None,
) -> Design:
    """Materialize a parsed lme4 formula on a DataFrame.

    Terms are returned in lme4's order (`lme4_term_order`). ``.`` in the fixed part
    stands for the columns of data other than the response's; ``offset()`` terms of the
    formula add to ``offset``.
    ``env``: values of names the formulas use that are not data columns (a caller's
    functions, as statsmodels' ``eval_env``); data columns take precedence.
    """
    data = check.as_data_frame(data)
    if parsed.response is None:
        raise DataError("the formula has no response: write it as 'y ~ ...'")
    check.check_missing_option(missing)
    response_vars = formula_variables(f"~ {parsed.response}")
    parsed = expand_dot(parsed, data.columns, response_vars)
    fixed_text = parsed.fixed_formula()
    needed = formula_variables(fixed_text)
    for expr in parsed.offsets:
        needed |= formula_variables(f"~ I({expr})")
    predictors = set(needed)
    for bar in parsed.bars:
        lhs_vars = formula_variables("~" + bar.lhs)
        predictors |= lhs_vars
        needed |= lhs_vars | set(bar.group)
    env = {k: v for k, v in (env or {}).items() if k in needed and k not in data.columns}
    needed -= set(env)
    predictors -= set(env)
    check.check_columns(data, needed, parsed.text)
    response_vars -= set(env)
    check.check_variable_types(data, response_vars, predictors - response_vars)
    data = check.numbers_as_float(data, predictors | response_vars)

    w = check.data_vector(data, weights, "weights")
    off = check.data_vector(data, offset, "offset")
    original, data_index = len(data), data.index
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
    offset_specs, formula_offset = formula_offsets(parsed, data, needed, env)
    if formula_offset is not None:  # offset() terms add to the offset= argument, as in R
        off = formula_offset if off is None else off + formula_offset
    frame, context, y, Xdf = _fixed_part(parsed, data, needed, env)
    bad = check.nonfinite_model_rows(
        [(response_name, y), *((r_style_name(str(c)), Xdf[c]) for c in Xdf.columns)],
        missing,
        len(y),
    )
    if bad is not None:  # e.g. log(x) of negative x: drop the rows and evaluate again
        data = data.loc[~bad]
        w = None if w is None else w[~bad]
        off = None if off is None else off[~bad]
        offset_specs = formula_offsets(parsed, data, needed, env)[0]
        check.check_not_empty(len(data), original)
        frame, context, y, Xdf = _fixed_part(parsed, data, needed, env)
    X = np.asarray(Xdf, dtype=float)
    names = [str(c) for c in Xdf.columns]
    check.check_magnitude(y, [response_name], "the response")
    check.check_magnitude(X, [r_style_name(c) for c in names], "the fixed-effects column")

    yc = y if off is None else y - off
    # ranks judged on the centred and scaled columns the engine fits (Days + 1e9 is no
    # constant): a column is redundant only if it is one there
    dropped, residual = redundant_columns_and_residual(engine_columns(X), yc)
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
    coded = [_make_term(bar, data, frame, context, term_specs) for bar in parsed.bars]
    coded = [coded[i] for i in lme4_term_order([t.nlevels for t, _ in coded])]
    terms, rows = [t for t, _ in coded], [r for _, r in coded]
    check.check_random_terms(terms, rows, len(y), stacklevel=3)
    return Design(
        y=y,
        X=np.asfortranarray(X),
        terms=terms,
        rows=rows,
        fixed_names=names,
        weights=w,
        offset=off,
        response_name=response_name,
        dropped_columns=dropped_cols,
        fixed_spec=Xdf.model_spec,
        parsed=parsed,
        row_index=data.index,
        term_specs=term_specs,
        offset_specs=offset_specs,
        offset_argument=offset is not None,
        data_index=data_index,
        formula_env=env,
    )


def _fixed_part(parsed: ParsedFormula, data: pd.DataFrame, needed: set[str], env: dict):
    """(frame, context, y, X as formulaic's DataFrame) of the response ~ fixed formula."""
    frame, context = prepare_frame(data, needed)
    context.update(env)
    with check.formula_evaluation(parsed.text):
        mm = model_matrix(parsed.fixed_formula(), frame, context=context, na_action="ignore")
    return frame, context, check.check_response_matrix(mm.lhs, str(parsed.response).strip()), mm.rhs


def formula_offsets(
    parsed: ParsedFormula, data: pd.DataFrame, needed: set[str], env: dict | None = None
) -> tuple[tuple[ModelSpec, ...], np.ndarray | None]:
    """(formulaic specs, (n,) their sum) of the formula's ``offset(expr)`` terms."""
    if not parsed.offsets:
        return (), None
    frame, context = prepare_frame(data, needed)
    context.update(env or {})
    specs, total = [], np.zeros(len(data))
    for expr in parsed.offsets:
        with check.formula_evaluation(parsed.text, f"offset({expr})"):
            mm = model_matrix(f"~ 0 + I({expr})", frame, context=context, na_action="ignore")
        values = np.asarray(mm, dtype=float)
        if values.shape[1] != 1:
            raise DataError(f"offset({expr}) must be one numeric value per row")
        specs.append(mm.model_spec)
        total += values[:, 0]
    return tuple(specs), total


def _make_term(
    bar: BarTerm, data: pd.DataFrame, frame: pd.DataFrame, context: dict, specs: dict
) -> tuple[RandomEffectsTerm, TermRows]:
    """The term of ``bar`` and its rows; the formulaic spec of its left-hand side goes
    into ``specs``."""
    codes, levels = group_codes(data, bar.group)
    mm = _term_model(bar.lhs, frame, context)
    specs[bar.lhs] = mm.model_spec
    columns = [r_style_name(c) for c in mm.columns]
    model = np.asarray(mm, dtype=float)
    return coded_term(
        bar.group_name, columns, levels, codes, model, group_vars=bar.group, lhs=bar.lhs
    )


def coded_term(
    name: str,
    columns: Sequence[str],
    levels: pd.Index,
    codes: np.ndarray,
    model: np.ndarray,
    covariance: str = "unstructured",
    group_vars: Sequence[str] = (),
    lhs: str = "1",
) -> tuple[RandomEffectsTerm, TermRows]:
    """A term's structure and its rows; codes (n,) index levels, model is (n, k)."""
    rows = TermRows.of(codes, model, len(levels))
    term = RandomEffectsTerm(
        name=name,
        columns=tuple(columns),
        levels=levels,
        covariance=covariance,
        group_vars=tuple(group_vars),
        lhs=lhs,
        intercept_only=rows.k == 1 and bool(np.all(rows.model == 1.0)),
    )
    return term, rows


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
