"""Data that do not fit in memory: cross-products from Parquet chunks or Dask partitions.

`streamed_design` reads a source in two passes and returns what the in-memory path
builds too — the terms' structure (a `sparselme.data.design.Design` whose rows
stay with the source) and the cross-products — so the model, its fit and its results are
the same objects as for a DataFrame. Modules: `sources` (Parquet, pyarrow, Dask), `levels`
(pass 1), `passes` (pass 2 and the checks), `columns` (fitted values and residuals).
"""

from __future__ import annotations

from typing import Any

from ..data.design import Design
from ..data.formula import parse_formula
from ..data.validation import is_streamable
from ..engine.crossprod import CrossProducts
from .columns import StreamedColumn, StreamedRows
from .passes import streamed_design as _two_passes
from .sources import DEFAULT_CHUNK_ROWS, DaskSource, ParquetSource, as_source

__all__ = [
    "DEFAULT_CHUNK_ROWS",
    "DaskSource",
    "ParquetSource",
    "StreamedColumn",
    "StreamedRows",
    "as_source",
    "is_streamable",
    "streamed_design",
]


def streamed_design(
    formula: str,
    data: Any,
    weights: str | None = None,
    offset: str | None = None,
    missing: str = "raise",
    chunk_size: int | None = None,
    factorization: str | None = None,
) -> tuple[Design, CrossProducts]:
    """(design, cross-products) of an lme4 formula on a Parquet path, pyarrow dataset or
    Dask DataFrame, in two passes over the data. ``factorization``: the exact fit's, when
    the design is for one ("auto": refused between the passes where a subset of the rows
    shows it infeasible, `sparselme.streaming.passes.refuse_from_subset`)."""
    source = data if isinstance(data, (ParquetSource, DaskSource)) else as_source(data, chunk_size)
    return _two_passes(
        parse_formula(formula), source, weights, offset, missing, factorization=factorization
    )
