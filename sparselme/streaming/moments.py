"""An lme4 formula fitted by the method of moments (``estimator="moments"``), on any input.

The kernels of `sparselme.moments` read chunks of integer codes, covariates and a
response. This module turns a formula and its data into those chunks:

1. pass 1 over the data (`.passes.level_pass`): the global levels, as the one `Coder`
   that codes every chunk exactly as the exact in-memory path codes the whole frame
   (same fixed-effects columns, same level order, same term order);
2. every later pass codes each chunk with it (X, y, one code column per term) and hands
   it to a moments pass (`sparselme.moments.fit_moments`).

A DataFrame in memory is read in slices (`FrameSource`), a Parquet path / pyarrow dataset
in record batches, a Dask DataFrame per partition: the same passes, the same sums, so the
same results up to the order of floating-point additions. What the passes hold is
O(levels), never O(rows).

Models: ``y ~ <fixed effects> + (1|f_1) + ... + (1|f_K)``, crossed or with an interaction
``(1|f:h)``; `check_moments_formula` refuses anything else with
`sparselme.errors.EstimatorError`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..data.coder import Coder
from ..data.design import Design
from ..data.formula import ParsedFormula, parse_formula
from ..data.validation import as_data_frame, check_has_random_terms, is_streamable
from ..engine.terms import RandomEffectsTerm
from ..errors import EstimatorError
from ..moments import Layout, MomentsFit, fit_moments
from .columns import StreamedRows
from .passes import level_pass
from .sources import DEFAULT_CHUNK_ROWS, ParquetSource, as_source

__all__ = ["FrameSource", "MomentsModel", "check_moments_formula", "fit_formula_moments"]

#: settings of `sparselme.moments.fit_moments` that ``lmer(..., estimator="moments")`` takes
MOMENTS_OPTIONS = ("variance_reps", "seed", "solver", "tol", "max_iter", "cell_budget")


class FrameSource:
    """A DataFrame in memory read as slices of ``chunk_size`` rows (a chunk source like
    `.passes.ParquetSource`): each pass codes one slice at a time."""

    def __init__(self, frame: pd.DataFrame, chunk_size: int = DEFAULT_CHUNK_ROWS):
        self.frame = frame
        self.chunk_size = int(chunk_size)

    @property
    def columns(self) -> list[str]:
        return [str(c) for c in self.frame.columns]

    def chunks(self, columns: Sequence[str]) -> Iterator[pd.DataFrame]:
        cols = list(columns)
        for start in range(0, len(self.frame), self.chunk_size):
            yield self.frame.iloc[start : start + self.chunk_size][cols]

    # the same reduction as a Parquet source's, over these chunks
    reduce = ParquetSource.reduce
    map_chunks = ParquetSource.map_chunks


def check_moments_formula(parsed: ParsedFormula, formula: str) -> None:
    """Raise EstimatorError unless every random-effects term is a random intercept
    ``(1 | g)`` (g a factor or an interaction ``a:b``)."""
    check_has_random_terms(parsed.bars, formula)
    for bar in parsed.bars:
        lhs = bar.lhs.replace(" ", "")
        if lhs != "1":
            raise EstimatorError(
                f'estimator="moments" fits random intercepts (1 | g) only, not '
                f"({bar.lhs} | {bar.group_name}): write (1 | {bar.group_name}) or use "
                'estimator="exact"'
            )
    if parsed.offsets:
        raise EstimatorError(
            'estimator="moments" takes no offset: subtract it from the response, or use '
            'estimator="exact"'
        )


def _coded_pass(
    df: pd.DataFrame, coder: Coder, drop_missing: bool, fn: Callable, layout: Layout, *args
):
    """A moments pass on one chunk of the data, coded by the formula's coder."""
    enc = coder.code(df, drop_missing)
    if len(enc.y) == 0:
        return None
    chunk: dict[str, np.ndarray] = {"y": enc.y}
    for k, codes in enumerate(enc.codes):
        chunk[f"g{k}"] = codes
    for j in range(enc.X.shape[1]):
        chunk[f"x{j}"] = enc.X[:, j]
    return fn(chunk, layout, *args)


@dataclass
class MomentsModel:
    """The handle of a moments fit: the design (structure only; rows stay with the
    source), the source and coder, the kernels' layout, and the fit's numbers.

    ``in_memory``: the data were a DataFrame (row outputs are Series on its index).
    """

    design: Design
    source: Any
    coder: Coder
    columns: list[str]  # the columns each pass reads
    drop_missing: bool
    layout: Layout
    fit: MomentsFit
    in_memory: bool

    def reducer(self):
        """The reducer the moments passes run on (`sparselme.moments.source.Reduce`)."""
        return _reducer(self.source, self.coder, self.columns, self.drop_missing)

    def fitted_values(self, beta: np.ndarray, b_blocks: list[np.ndarray]):
        """Xβ + Zb, computed chunk by chunk (`.passes.StreamedColumn`)."""
        return self.design.source.fitted_values(self.design, beta, b_blocks)

    def response(self):
        return self.design.source.response(self.design)

    def __getattr__(self, name: str):
        """What the exact engine has and this handle has not (the penalized least-squares
        system, the criterion, ...): EstimatorError, never a raw AttributeError."""
        if name.startswith("__"):
            raise AttributeError(name)
        raise EstimatorError(
            f"the exact engine's {name!r} is not available for a fit by estimator='moments' "
            "(no likelihood); refit with estimator='exact' where that is feasible"
        )


def _reducer(source: Any, coder: Coder, columns: list[str], drop_missing: bool):
    def reduce(fn: Callable, layout: Layout, *args):
        return source.reduce(_coded_pass, columns, coder, drop_missing, fn, layout, *args)

    return reduce


def _layout(coder: Coder) -> Layout:
    """The kernels' layout: factor g<k> per term, x<j> per fixed-effects column, y."""
    names = [f"g{k}" for k in range(len(coder.terms))]
    singles = {t.bar.group: names[k] for k, t in enumerate(coder.terms) if len(t.bar.group) == 1}
    interactions = {}
    for k, t in enumerate(coder.terms):
        parts = t.bar.group
        if len(parts) == 2 and all((v,) in singles for v in parts):
            interactions[names[k]] = (singles[(parts[0],)], singles[(parts[1],)])
    return Layout(
        factors=tuple(names),
        levels=tuple(len(t.levels) for t in coder.terms),
        x=tuple(f"x{j}" for j in range(len(coder.fixed_names))),
        y="y",
        intercept=False,
        interactions=interactions,
    )


def _source(data: Any, chunk_size: int | None) -> tuple[Any, bool]:
    if isinstance(data, pd.DataFrame):
        return FrameSource(data, chunk_size or DEFAULT_CHUNK_ROWS), True
    if is_streamable(data):
        return as_source(data, chunk_size), False
    return FrameSource(as_data_frame(data), chunk_size or DEFAULT_CHUNK_ROWS), True


def fit_formula_moments(
    formula: str,
    data: Any,
    missing: str = "raise",
    chunk_size: int | None = None,
    **options,
) -> MomentsModel:
    """Fit ``formula`` on ``data`` by moments + GLS (`sparselme.moments.fit_moments`).

    Parameters
    ----------
    formula : an lme4 formula whose random-effects terms are all ``(1 | g)``.
    data : a DataFrame, a Parquet file or folder, a pyarrow dataset or a Dask DataFrame.
    missing : "raise" or "drop" (rows with missing values).
    chunk_size : rows per chunk (default 1,000,000).
    **options : ``variance_reps``, ``seed``, ``solver``, ``tol``, ``max_iter``,
        ``cell_budget`` of `sparselme.moments.fit_moments`.
    """
    unknown = sorted(set(options) - set(MOMENTS_OPTIONS))
    if unknown:
        raise EstimatorError(
            f'estimator="moments" does not take {", ".join(unknown)} (settings of the exact '
            f"fit's optimizer); its settings are {', '.join(MOMENTS_OPTIONS)}"
        )
    parsed = parse_formula(formula)
    check_moments_formula(parsed, formula)
    source, in_memory = _source(data, chunk_size)
    rows = "drop" if missing in ("drop", "exclude") else "raise"
    coder, plan, _ = level_pass(parsed, source, None, None, rows)
    layout = _layout(coder)
    drop = rows == "drop"
    fit = fit_moments(_reducer(source, coder, plan.columns, drop), layout, **options)
    terms = [
        RandomEffectsTerm(
            name=t.bar.group_name,
            columns=t.columns,
            levels=t.levels,
            covariance="scalar",
            group_vars=tuple(t.bar.group),
            lhs=t.bar.lhs,
            intercept_only=True,
        )
        for t in coder.terms
    ]
    design = Design(
        y=None,
        X=None,
        terms=terms,
        rows=None,
        fixed_names=list(coder.fixed_names),
        response_name=coder.response_name,
        fixed_spec=coder.fixed_spec.rhs,
        parsed=parsed,
        source=StreamedRows(source, coder, np.arange(len(coder.fixed_names)), drop),
        nrows=fit.nobs,
        coder=coder,
    )
    return MomentsModel(design, source, coder, plan.columns, drop, layout, fit, in_memory)
