"""Columns of a streamed fit that are never stored: fitted values and residuals.

`StreamedRows` is where a streamed design's rows are (the source and the coder that codes
its chunks); `StreamedColumn` recomputes Xβ + Zb (or y minus it) chunk by chunk on request.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.lib.mixins import NDArrayOperatorsMixin

from ..data.coder import Coder
from ..data.design import Design
from .sources import DaskSource

__all__ = ["StreamedRows", "StreamedColumn"]


@dataclass
class StreamedRows:
    """Where a streamed design's rows are: the source and the coder that codes its chunks.

    ``keep`` (p,) are the fixed-effects columns kept after dropping redundant ones;
    ``level_counts`` the number of rows at each level of each term.
    """

    source: Any
    coder: Coder
    keep: np.ndarray
    drop_missing: bool = False
    level_counts: list[np.ndarray] | None = None  # per term (L,): rows at each level

    def fitted_values(self, design: Design, beta: np.ndarray, b_blocks) -> StreamedColumn:
        """Xβ + Zb (+ offset), computed chunk by chunk on request."""
        return StreamedColumn(self, design.nobs, self._state(beta, b_blocks), "fitted")

    def response(self, design: Design):
        """y, read chunk by chunk on request: y − fitted is the residual column."""
        return _Response()

    def _state(self, beta: np.ndarray, b_blocks) -> tuple:
        full = np.zeros(len(self.coder.fixed_names))
        full[self.keep] = beta
        return self.coder, full, list(b_blocks), self.drop_missing


class _Response:
    """y of a streamed design: only y − fitted (a residual column) is ever formed."""

    def __sub__(self, fitted: StreamedColumn) -> StreamedColumn:
        return StreamedColumn(fitted.rows, len(fitted), fitted.state, "resid")


def _chunk_values(
    df: pd.DataFrame, state: tuple[Coder, np.ndarray, list[np.ndarray], bool], what: str
) -> pd.Series:
    """Fitted values (or residuals) of one chunk, indexed like the chunk's kept rows."""
    coder, beta, blocks, drop_missing = state
    enc = coder.code(df, drop_missing)
    fit = enc.X @ beta
    for codes, model, B in zip(enc.codes, enc.models, blocks):
        fit += np.einsum("nk,nk->n", model, B[codes])
    if enc.offset is not None:
        fit += enc.offset
    values = enc.y - fit if what == "resid" else fit
    return pd.Series(values, index=enc.index, name=what)


class StreamedColumn(NDArrayOperatorsMixin):
    """An n-vector of a streamed fit (fitted values or residuals), never stored.

    ``iter_chunks()`` yields it chunk by chunk; ``to_numpy()`` (and any numpy operation,
    ``res.resid / res.sigma``, ``np.quantile(res.resid, q)``) materializes it; for a Dask
    fit ``to_dask()`` gives a lazy Dask Series computed per partition.
    """

    def __init__(self, rows: StreamedRows, n: int, state: tuple, what: str):
        self.rows = rows
        self.n = n
        self.state = state
        self.what = what

    @property
    def _source(self):
        return self.rows.source

    def _columns(self) -> list[str]:
        return self.rows.coder.columns

    def __len__(self) -> int:
        return self.n

    @property
    def shape(self) -> tuple[int]:
        return (len(self),)

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(float)

    def iter_chunks(self) -> Iterator[pd.Series]:
        """The values chunk by chunk (pandas Series indexed like the source's rows)."""
        yield from self._source.map_chunks(_chunk_values, self._columns(), self.state, self.what)

    def head(self, n: int = 5) -> np.ndarray:
        """The first n values (reads only the chunks needed)."""
        out, got = [], 0
        for s in self.iter_chunks():
            out.append(s.to_numpy())
            got += len(s)
            if got >= n:
                break
        return np.concatenate(out)[:n] if out else np.zeros(0)

    def to_dask(self):
        """A lazy Dask Series (Dask sources only)."""
        if not isinstance(self._source, DaskSource):
            raise TypeError("to_dask() needs a fit on a Dask DataFrame; use iter_chunks()")
        meta = pd.Series(dtype=float, name=self.what)
        return self._source.map_partitions(
            _chunk_values, self._columns(), self.state, self.what, meta=meta
        )

    def to_numpy(self) -> np.ndarray:
        if isinstance(self._source, DaskSource):
            return self.to_dask().compute().to_numpy()
        parts = [s.to_numpy() for s in self.iter_chunks()]
        return np.concatenate(parts) if parts else np.zeros(0)

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        a = self.to_numpy()
        return a if dtype is None else a.astype(dtype)

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        inputs = tuple(x.to_numpy() if isinstance(x, StreamedColumn) else x for x in inputs)
        return getattr(ufunc, method)(*inputs, **kwargs)

    def __getitem__(self, key):
        return self.to_numpy()[key]

    def __repr__(self) -> str:
        return f"<StreamedColumn {self.what}: {len(self)} values, computed per chunk>"
