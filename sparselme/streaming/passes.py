"""Fits on data that do not fit in memory: two passes over Parquet chunks or Dask partitions.

The fit needs the data only through the cross-products of [Z X y] (`sparselme.engine.crossprod`),
which are sums over rows. So a model is fitted in two passes over the data, then on the
driver:

1. **Levels** (`sparselme.streaming.levels`): every chunk reports its levels, missing values
   and weights; the union gives the global levels, from which the one coder
   (`sparselme.data.coder.Coder`) is built.
   Where the exact fit's dense Schur complement would be infeasible, the rows of a
   sample of the leading term's levels are coded first: if their cross-products already
   show the complement filled in, the fit is refused before pass 2 (`refuse_from_subset`).
2. **Moments**: each chunk is coded with that coder and its cross-products are summed
   (``CrossProducts.__add__``), together with the chunk-additive summaries of [X, y] and of
   each term's columns (`sparselme.data.moments.ColumnMoments`). The checks of data in
   memory (`sparselme.data.checks`) then run on these sums: the same errors and warnings.
3. **Fit**: the engine runs on the summed cross-products; its cost depends on the number
   of random effects, not on the number of rows.

Fitted values and residuals of a streamed fit are not stored (`sparselme.streaming.columns`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pandas as pd

from ..data import checks, validation
from ..data.coder import CodedChunk, Coder, refuse_stateful_transforms
from ..data.design import Design, bar_covariance
from ..data.formula import ParsedFormula
from ..data.missing import report_missing
from ..data.moments import ColumnMoments
from ..engine import cholesky
from ..engine.crossprod import CrossProducts, chunk_crossproducts
from ..engine.rows import TermRows
from ..engine.terms import RandomEffectsTerm
from ..errors import DataError
from .columns import StreamedRows
from .levels import LevelSummary, Plan, coder_of, plan_of, summarize_levels
from .sources import DaskSource, ParquetSource

__all__ = [
    "SUBSET_ROWS",
    "ChunkMoments",
    "LevelPass",
    "chunk_moments",
    "level_pass",
    "refuse_from_subset",
    "streamed_design",
    "subset_levels",
]


@dataclass
class ChunkMoments:
    """What pass 2 sums over chunks: the cross-products, the `ColumnMoments` of
    [X, y − offset] and of each term's model rows, each term's level counts, and the rows
    left out because evaluating the formula gave non-finite values (per column)."""

    cp: CrossProducts
    fixed: ColumnMoments
    terms: list[ColumnMoments]
    counts: list[np.ndarray]  # per term (L,)
    dropped: dict[str, int]
    ndropped: int

    @classmethod
    def sum(cls, parts: Sequence[ChunkMoments]) -> ChunkMoments:
        dropped: dict[str, int] = {}
        for p in parts:
            for k, v in p.dropped.items():
                dropped[k] = dropped.get(k, 0) + v
        return cls(
            cp=CrossProducts.sum([m.cp for m in parts]),
            fixed=ColumnMoments.sum([m.fixed for m in parts]),
            terms=[ColumnMoments.sum(t) for t in zip(*(m.terms for m in parts))],
            counts=[np.sum(c, axis=0) for c in zip(*(m.counts for m in parts))],
            dropped=dropped,
            ndropped=sum(m.ndropped for m in parts),
        )


def chunk_moments(df: pd.DataFrame, coder: Coder, drop_missing: bool) -> ChunkMoments | None:
    """Pass 2 on one chunk: coded with the one coder, then summed up."""
    enc = coder.code(df, drop_missing)
    if len(enc.y) == 0 and not enc.ndropped:
        return None
    rows = _term_rows(enc, coder)
    y = enc.y_minus_offset
    return ChunkMoments(
        cp=chunk_crossproducts(rows, enc.X, y, enc.weights),
        fixed=ColumnMoments.of(_stacked(enc.X, y), overwrite=True),
        terms=[ColumnMoments.of(m) for m in enc.models],
        counts=[np.bincount(r.codes, minlength=r.nlevels) for r in rows],
        dropped=enc.dropped,
        ndropped=enc.ndropped,
    )


def _term_rows(enc: CodedChunk, coder: Coder) -> list[TermRows]:
    return [TermRows.of(c, m, len(t.levels)) for c, m, t in zip(enc.codes, enc.models, coder.terms)]


def _stacked(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(n, p + 1) [X y], F-ordered (a fresh array, used as workspace)."""
    out = np.empty((len(y), X.shape[1] + 1), order="F")
    out[:, :-1], out[:, -1] = X, y
    return out


def _column_arg(value, what: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise DataError(
        f"{what} must be a column name for streamed data (an array would have to be "
        "aligned with rows that are never all in memory)"
    )


class LevelPass(NamedTuple):
    """What pass 1 gives: the one coder, the plan of the columns read, the rows seen."""

    coder: Coder
    plan: Plan
    nrows: int


def level_pass(
    parsed: ParsedFormula,
    source,
    weights: str | None = None,
    offset: str | None = None,
    missing: str = "raise",
    stacklevel: int = 4,
) -> LevelPass:
    """Pass 1 over ``source``: the global levels, missing values and weights, as the one
    coder (which codes any chunk as the in-memory path codes all the data), the plan of
    the columns read and the number of rows. ``source``: anything with ``columns`` and
    ``reduce(fn, columns, *args)`` (`ParquetSource`, `DaskSource`, a frame in slices)."""
    if parsed.response is None:
        raise DataError("the formula has no response: write it as 'y ~ ...'")
    validation.check_missing_option(missing)
    weights, offset = _column_arg(weights, "weights"), _column_arg(offset, "offset")
    if parsed.offsets:
        raise DataError(
            f"streamed fits take the offset as a column: compute offset({parsed.offsets[0]}) "
            "into a column and pass offset='<column>'"
        )
    validation.check_has_random_terms(parsed.bars, parsed.text)
    refuse_stateful_transforms(parsed)
    plan = plan_of(parsed, weights, offset, missing)
    columns = pd.DataFrame(columns=source.columns)
    validation.check_columns(columns, plan.needed, parsed.text)
    for name, what in ((weights, "weights"), (offset, "offset")):
        if name is not None and name not in source.columns:
            validation.data_vector(columns, name, what)  # the in-memory error

    summary: LevelSummary | None = source.reduce(summarize_levels, plan.columns, plan)
    nrows = 0 if summary is None else summary.nrows
    if summary is not None:
        summary.raise_error()
    validation.check_not_empty(nrows, nrows)
    order = plan.needed + ["weights", "offset"]
    report_missing(summary.bad, nrows, summary.bad_counts, missing, stacklevel, order)
    checks.check_weights(summary.weights, nrows, stacklevel=stacklevel)
    zero = summary.weights.zero if summary.weights is not None else 0
    validation.check_not_empty(nrows - summary.bad - zero, nrows)
    return LevelPass(coder_of(parsed, summary), plan, nrows)


# Rows whose cross-products are summed before pass 2 to show that the exact fit's dense
# Schur complement fills in (`refuse_from_subset`; in expectation: whole levels are taken).
SUBSET_ROWS = 4_000_000


def refuse_from_subset(coder: Coder, source, plan: Plan, nrows: int, drop_missing: bool) -> None:
    """ProblemTooLargeError where the rows of a sample of the leading term's levels already
    show that the exact fit's dense Schur complement fills in and is infeasible.

    Known from pass 1 (``coder``, ``plan``, ``nrows``): the terms' levels, so the order of
    the complement and its dense cost (`sparselme.engine.cholesky.dense_schur_infeasible`);
    where that cost is infeasible, the fill decides the refusal
    (`sparselme.engine.cholesky.check_dense_schur`). The level pairs of a subset of the
    rows are a subset of all rows', so is its fill (for the same sampled levels): a fill
    that reaches DENSE_SCHUR_MIN_FILL on the subset is reached on all rows. Below it
    nothing is decided and pass 2 runs: this check can only refuse earlier, never accept.

    The subset is every row of a seeded sample of the leading term's levels (of its first
    grouping variable), about SUBSET_ROWS rows: a share f of the levels keeps about f of
    the fill, where a share f of the rows at random keeps about f² of it. The fill leaves
    out the 1% of the leading levels of highest degree (hubs) among those sampled, each
    with all its rows, not among all: the bound holds up to which levels count as hubs.
    The dense cost counts every fixed-effects column the formula codes (pass 2 may still
    drop collinear ones).
    """
    terms = [RandomEffectsTerm(t.bar.group_name, t.columns, t.levels) for t in coder.terms]
    p = len(coder.fixed_names)
    if len(terms) < 2 or not cholesky.dense_schur_infeasible(terms, p):
        return  # nothing to prove: the complement is factored, or refused, anyway
    var = coder.terms[0].bar.group[0]
    levels = coder.group_levels[var]
    chosen = subset_levels(levels, nrows)
    cp = source.reduce(_subset_crossproducts, plan.columns, coder, drop_missing, var, chosen)
    if cp is not None:
        subset = f"the {cp.nobs:,} rows of {len(chosen):,} of the {len(levels):,} {var!r} levels"
        cholesky.check_dense_schur(terms, cp, p, subset=subset)


def subset_levels(levels: pd.Index, nrows: int) -> pd.Index:
    """The levels whose rows `refuse_from_subset` reads: a seeded sample of about
    SUBSET_ROWS / nrows of them (all when nrows ≤ SUBSET_ROWS)."""
    share = min(1.0, SUBSET_ROWS / max(nrows, 1))
    return levels[np.random.default_rng(0).random(len(levels)) < share]


def _subset_crossproducts(
    df: pd.DataFrame, coder: Coder, drop_missing: bool, var: str, chosen: pd.Index
) -> CrossProducts | None:
    """The cross-products of a chunk's rows at the ``chosen`` levels of ``var``, coded as
    pass 2 codes them."""
    at = df[var].isin(chosen).to_numpy()
    enc = coder.code(df.loc[at], drop_missing) if at.any() else None
    if enc is None or len(enc.y) == 0:
        return None
    return chunk_crossproducts(_term_rows(enc, coder), enc.X, enc.y_minus_offset, enc.weights)


def streamed_design(
    parsed: ParsedFormula,
    source: ParquetSource | DaskSource,
    weights: str | None = None,
    offset: str | None = None,
    missing: str = "raise",
    stacklevel: int = 4,
    factorization: str | None = None,
) -> tuple[Design, CrossProducts]:
    """Both passes over ``source``: the design (structure only) and its cross-products.

    The input checks are those of data in memory, made on the chunks' summed summaries.
    ``factorization``: the exact fit's (`sparselme.engine.cholesky.choose_factorization`)
    when the design is for one; with ``"auto"`` an exact fit that a subset of the rows
    shows infeasible is refused between the passes (`refuse_from_subset`).
    """
    # ---- pass 1: levels, missing values, weights
    coder, plan, nrows = level_pass(parsed, source, weights, offset, missing, stacklevel + 1)
    if factorization == "auto":
        refuse_from_subset(coder, source, plan, nrows, missing == "drop")

    # ---- pass 2: cross-products and the summaries the checks need
    moments: ChunkMoments = source.reduce(chunk_moments, plan.columns, coder, missing == "drop")
    checks.report_nonfinite(
        moments.dropped, moments.ndropped, moments.cp.nobs + moments.ndropped, missing, stacklevel
    )
    validation.check_not_empty(moments.cp.nobs, nrows)
    names = coder.fixed_names
    dropped, _ = checks.check_fixed(moments.fixed, names, coder.response_name)
    if dropped:
        checks.warn_dropped_columns([names[j] for j in dropped], stacklevel=stacklevel)
    keep = np.array([j for j in range(len(names)) if j not in set(dropped)], dtype=np.intp)
    cp = moments.cp.select_fixed(keep) if dropped else moments.cp
    terms = [_term(t, m) for t, m in zip(coder.terms, moments.terms)]
    for t, counts in zip(terms, moments.counts):
        empty = np.flatnonzero(counts == 0)
        if len(empty):
            raise DataError(
                f"level {t.levels[empty[0]]!r} of {t.name!r} has no rows left after dropping "
                "rows whose formula values are not finite; drop those rows from the data first"
            )
    checks.check_random_terms(terms, cp.nobs, moments=moments.terms, cp=cp, stacklevel=stacklevel)
    design = Design(
        y=None,
        X=None,
        terms=terms,
        rows=None,
        fixed_names=[names[j] for j in keep],
        response_name=coder.response_name,
        dropped_columns=[names[j] for j in dropped],
        fixed_spec=coder.fixed_spec.rhs,
        parsed=parsed,
        source=StreamedRows(source, coder, keep, missing == "drop", moments.counts),
        nrows=cp.nobs,
        term_specs=dict(coder.term_specs),
        coder=coder,
    )
    return design, cp


def _term(t, mom: ColumnMoments) -> RandomEffectsTerm:
    """The structure of a coded term; an intercept-only term has one column of ones."""
    ones = len(t.columns) == 1 and bool(mom.constant[0] and mom.lo[0] == 1.0)
    return RandomEffectsTerm(
        name=t.bar.group_name,
        columns=t.columns,
        levels=t.levels,
        covariance=bar_covariance(t.bar, len(t.columns)),
        group_vars=tuple(t.bar.group),
        lhs=t.bar.lhs,
        intercept_only=ones,
    )
