"""Materialization: parsed formula + data → X, y, weights, offset and the terms of Z.

The fixed-effects part and each term's left-hand side go through formulaic. Categorical
columns follow their pandas category order (first level is the reference); ordered
categoricals get R's polynomial contrasts; grouping variables are always categorical.
Column names are reported in R's style (``(Intercept)``, ``recipeB``,
``temperature.L``) for the lme4 interface and in formulaic's style for the statsmodels
one. The formulaic model specs are kept so new data can be coded the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

import numpy as np
import pandas as pd
from formulaic import ModelSpec, model_matrix
from formulaic.transforms.contrasts import C, PolyContrasts

from ..engine.covariance import CovarianceStructure
from ..engine.parametrizations import make_covariance
from ..engine.rows import TermRows
from ..engine.terms import RandomEffectsTerm
from ..errors import DataError, IdentifiabilityError
from . import checks, validation
from .checks import WeightCounts, warn_dropped_columns
from .coder import (
    Coder,
    group_coding,
    lme4_term_order,
    model_variables,
    nonfinite_counts,
    r_style_name,
)
from .formula import BarTerm, ParsedFormula, expand_dot
from .missing import bad_rows, missing_mask, report_missing
from .moments import ColumnMoments
from .transforms import R_TRANSFORMS

__all__ = [
    "Design",
    "build_design",
    "coded_term",
    "bar_covariance",
    "r_style_name",
    "prepare_frame",
    "group_codes",
    "lme4_term_order",
    "missing_mask",
    "warn_dropped_columns",
]


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
    codes, labels, _, _ = group_coding(data, variables)
    return codes, labels


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
    coder: Coder | None = None  # codes new data and chunks as these were coded

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


def build_design(
    parsed: ParsedFormula,
    data: pd.DataFrame,
    weights: np.ndarray | str | None = None,
    offset: np.ndarray | str | None = None,
    missing: str = "raise",
    env: dict | None = None,
) -> Design:
    """Materialize a parsed lme4 formula on a DataFrame.

    The data are one chunk for the one coder (`sparselme.data.coder.Coder`, learned on
    them) and for the checks on chunk summaries (`sparselme.data.checks`), which streamed
    data go through too. Terms are in lme4's order (`lme4_term_order`). ``.`` in the fixed
    part stands for the columns of data other than the response's; ``offset()`` terms of
    the formula add to ``offset``.
    ``env``: values of names the formulas use that are not data columns (a caller's
    functions, as statsmodels' ``eval_env``); data columns take precedence.
    """
    data = validation.as_data_frame(data)
    if parsed.response is None:
        raise DataError("the formula has no response: write it as 'y ~ ...'")
    validation.check_missing_option(missing)
    parsed = expand_dot(parsed, data.columns, model_variables(parsed)[2])
    needed = model_variables(parsed)[0]
    env = {k: v for k, v in (env or {}).items() if k in needed and k not in data.columns}
    needed, predictors, response_vars = model_variables(parsed, env)
    validation.check_columns(data, needed, parsed.text)
    validation.check_variable_types(data, response_vars, predictors)
    data = validation.numbers_as_float(data, predictors | response_vars)

    w = validation.data_vector(data, weights, "weights")
    off = validation.data_vector(data, offset, "offset")
    original, data_index = len(data), data.index
    columns = [(name, data[name]) for name in sorted(needed)]
    bad, counts = bad_rows(columns + [("weights", w), ("offset", off)], original)
    report_missing(int(bad.sum()), original, counts, missing, stacklevel=3)
    keep = ~bad
    wc = WeightCounts.of(None if w is None else w[keep])
    checks.check_weights(wc, original, stacklevel=3)
    if wc is not None and wc.zero:
        keep &= ~(w == 0)
    if not keep.all():
        data, w, off = _take(data, w, off, keep)
    validation.check_not_empty(len(data), original)

    coder, chunk, Xdf = Coder.learn(parsed, data, env)
    y, X = chunk.y, chunk.X
    response_name = coder.response_name
    bad = ~np.isfinite(y) | ~np.isfinite(X).all(axis=1)
    if bad.any():  # e.g. log(x) of negative x: drop the rows and evaluate again
        counts = nonfinite_counts(response_name, y, coder.fixed_names, X)
        checks.report_nonfinite(counts, int(bad.sum()), len(y), missing)
        data, w, off = _take(data, w, off, ~bad)
        validation.check_not_empty(len(data), original)
        coder, chunk, Xdf = Coder.learn(parsed, data, env)
        y, X = chunk.y, chunk.X
    offset_specs, formula_offset = formula_offsets(parsed, coder, data)
    if formula_offset is not None:  # offset() terms add to the offset= argument, as in R
        off = formula_offset if off is None else off + formula_offset
    names = list(coder.fixed_names)
    yc = y if off is None else y - off
    Xy = np.empty((len(yc), X.shape[1] + 1), order="F")
    Xy[:, :-1], Xy[:, -1] = X, yc
    moments = ColumnMoments.of(Xy, overwrite=True)
    dropped, _ = checks.check_fixed(moments, names, response_name)
    dropped_cols = [names[j] for j in dropped]
    if dropped:
        warn_dropped_columns(dropped_cols, stacklevel=3)
        kept = [j for j in range(X.shape[1]) if j not in set(dropped)]
        X = X[:, kept]
        names = [names[j] for j in kept]

    coded = [
        coded_term(
            t.bar.group_name,
            t.columns,
            t.levels,
            codes,
            model,
            covariance=bar_covariance(t.bar, len(t.columns)),
            group_vars=t.bar.group,
            lhs=t.bar.lhs,
        )
        for t, codes, model in zip(coder.terms, chunk.codes, chunk.models)
    ]
    terms, rows = [t for t, _ in coded], [r for _, r in coded]
    checks.check_random_terms(terms, len(y), rows=rows, stacklevel=3)
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
        term_specs=dict(coder.term_specs),
        offset_specs=offset_specs,
        offset_argument=offset is not None,
        data_index=data_index,
        formula_env=env,
        coder=coder,
    )


def formula_offsets(
    parsed: ParsedFormula, coder: Coder, data: pd.DataFrame
) -> tuple[tuple[ModelSpec, ...], np.ndarray | None]:
    """(formulaic specs, (n,) their sum) of the formula's ``offset(expr)`` terms, evaluated
    on the coder's frame of ``data`` (its levels, R's functions and ``env``)."""
    if not parsed.offsets:
        return (), None
    frame, context = coder.formula_frame(data)
    specs, total = [], np.zeros(len(data))
    for expr in parsed.offsets:
        with validation.formula_evaluation(parsed.text, f"offset({expr})"):
            mm = model_matrix(f"~ 0 + I({expr})", frame, context=context, na_action="ignore")
        values = np.asarray(mm, dtype=float)
        if values.shape[1] != 1:
            raise DataError(f"offset({expr}) must be one numeric value per row")
        specs.append(mm.model_spec)
        total += values[:, 0]
    return tuple(specs), total


def _take(data: pd.DataFrame, w, off, keep: np.ndarray):
    """The rows ``keep`` of the data and of the weight and offset vectors."""
    return (
        data.loc[keep],
        None if w is None else w[keep],
        None if off is None else off[keep],
    )


def bar_covariance(bar: BarTerm, k: int) -> CovarianceStructure:
    """The parametrization of a bar term's k columns: unstructured, or its structure."""
    try:
        return make_covariance(bar.covariance or "unstructured", k, **dict(bar.options))
    except IdentifiabilityError as exc:
        term = f"{bar.covariance}({bar.lhs} | {bar.group_name})"
        raise IdentifiabilityError(f"term {term}: {exc}") from None


def coded_term(
    name: str,
    columns: Sequence[str],
    levels: pd.Index,
    codes: np.ndarray,
    model: np.ndarray,
    covariance: str | CovarianceStructure = "unstructured",
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
