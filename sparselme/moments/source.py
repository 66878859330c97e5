"""Where the rows come from: a *reducer* over chunks, and what a chunk must hold.

Every computation of this package is a sum over rows. It is written as a function
``fn(chunk, *args) -> Sums | None`` of one chunk of rows, and handed to a **reducer**:
any callable ``reduce(fn, *args)`` that applies ``fn`` to every chunk of the data and
returns the sum of the results (``None`` results are skipped; the sum of nothing is
``None``). ``Sums`` add with ``+`` and with ``Sums.sum(items)``, so the same pass runs

* in memory (``in_memory``, slices of arrays),
* over the record batches of a Parquet folder or the partitions of a Dask DataFrame
  (``sparselme.moments.adapters``, or any streaming source with a ``reduce`` method).

A **chunk** is a mapping from column names to 1-D arrays of equal length (a dict of numpy
arrays or a pandas DataFrame). Which columns are the factors, the covariates and the
response is said once by a ``Layout``; ``read_block`` turns a chunk into a
``Block`` (integer codes, X, y). Factor columns hold dense integer codes
``0..levels-1`` (a pandas Categorical column contributes its codes, with the same
categories in every chunk).

Memory: a pass holds one chunk and the running sums, whose size depends on the numbers
of levels, covariates and Monte Carlo draws, never on the number of rows (the cell
samples of ``.cells`` are bounded by a fixed budget).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from ..errors import DataError, MissingDataError, UnknownColumnError

__all__ = [
    "Reduce",
    "Sums",
    "Layout",
    "Block",
    "read_block",
    "in_memory",
    "Counted",
    "chunk_pass",
    "layout_for",
    "levels_of",
]


class Reduce(Protocol):
    """``reduce(fn, *args)``: Σ over chunks of ``fn(chunk, *args)`` (``None`` if no rows)."""

    def __call__(self, fn: Callable[..., Sums | None], *args: Any) -> Sums | None: ...


class Sums(dict):
    """A summary of some rows: named values that combine across chunks.

    numpy arrays and numbers add; any value with a ``merge(other)`` method (e.g.
    ``Extremes``, ``sparselme.moments.cells.CellSample``) merges that way.
    """

    def __add__(self, other: Sums) -> Sums:
        if other is None:
            return self
        out = Sums()
        for key, a in self.items():
            b = other[key]
            out[key] = a.merge(b) if hasattr(a, "merge") else a + b
        return out

    __radd__ = __add__

    @classmethod
    def sum(cls, items: Iterable[Sums | None]) -> Sums | None:
        total = None
        for item in items:
            if item is not None:
                total = item if total is None else total + item
        return total


@dataclass(frozen=True)
class Extremes:
    """Per-level minimum and maximum of an integer variable: (L,) arrays each."""

    low: np.ndarray
    high: np.ndarray

    @classmethod
    def of(cls, codes: np.ndarray, values: np.ndarray, nlevels: int) -> Extremes:
        low = np.full(nlevels, np.iinfo(np.int64).max, dtype=np.int64)
        high = np.full(nlevels, -1, dtype=np.int64)
        np.minimum.at(low, codes, values)
        np.maximum.at(high, codes, values)
        return cls(low, high)

    def merge(self, other: Extremes) -> Extremes:
        return Extremes(np.minimum(self.low, other.low), np.maximum(self.high, other.high))

    def constant(self) -> bool:
        """True when every level that occurs has a single value."""
        seen = self.high >= 0
        return bool(np.all(self.low[seen] == self.high[seen]))


@dataclass(frozen=True)
class Layout:
    """Which chunk columns hold what.

    Parameters
    ----------
    factors : names of the columns holding the codes of each random-intercept factor.
    levels : number of levels of each factor (codes are ``0..levels-1``).
    x : names of the numeric fixed-effects columns (besides the intercept).
    y : name of the response column.
    intercept : prepend a column of ones to X.
    interactions : ``{name: (f, h)}`` for a factor whose levels are the observed cells of
        factors ``f`` and ``h`` (lme4's ``(1|f:h)``); used to count rows per (f, h) cell
        exactly without a cell sample.
    """

    factors: tuple[str, ...]
    levels: tuple[int, ...]
    x: tuple[str, ...] = ()
    y: str = "y"
    intercept: bool = True
    interactions: Mapping[str, tuple[str, str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(self.factors) != len(self.levels):
            raise ValueError("one number of levels per factor is needed")
        if len(self.factors) < 1:
            raise DataError("at least one random-intercept factor is needed")
        for name, pair in self.interactions.items():
            if name not in self.factors or any(f not in self.factors for f in pair):
                raise UnknownColumnError(name, self.factors, where="the factors")

    @property
    def columns(self) -> list[str]:
        """Every chunk column the passes read."""
        return [*self.factors, *self.x, self.y]

    @property
    def x_names(self) -> list[str]:
        return (["(Intercept)"] if self.intercept else []) + list(self.x)

    @property
    def p(self) -> int:
        return len(self.x) + int(self.intercept)

    @property
    def K(self) -> int:  # noqa: N802 - the number of factors, as in the formulas
        return len(self.factors)

    def index(self, name: str) -> int:
        return self.factors.index(name)


@dataclass(frozen=True)
class Block:
    """One chunk, decoded: codes (K, m) int64, X (m, p) float64, y (m,) float64."""

    codes: np.ndarray
    X: np.ndarray
    y: np.ndarray

    @property
    def m(self) -> int:
        return self.y.shape[0]


def _column(chunk: Mapping[str, Any], name: str) -> np.ndarray:
    try:
        col = chunk[name]
    except KeyError:
        raise UnknownColumnError(name, list(chunk.keys()), where="the chunk") from None
    cat = getattr(col, "cat", None)  # a pandas Categorical column: its codes
    if cat is not None:
        return np.asarray(cat.codes)
    return np.asarray(col)


def read_block(chunk: Mapping[str, Any], layout: Layout) -> Block | None:
    """The codes, X and y of a chunk (``None`` for an empty chunk).

    Raises ``MissingDataError`` for missing codes or non-finite X / y, and
    ``DataError`` for codes outside ``0..levels-1``.
    """
    y = np.asarray(_column(chunk, layout.y), dtype=np.float64)
    m = y.shape[0]
    if m == 0:
        return None
    codes = np.empty((layout.K, m), dtype=np.int64)
    for k, (name, L) in enumerate(zip(layout.factors, layout.levels)):
        c = _column(chunk, name)
        if not np.issubdtype(c.dtype, np.integer):
            raise DataError(f"factor column {name!r} must hold integer codes, not {c.dtype}")
        codes[k] = c
        lo, hi = int(codes[k].min()), int(codes[k].max())
        if lo < 0:
            raise MissingDataError(f"factor {name!r} has missing values (code {lo})")
        if hi >= L:
            raise DataError(f"factor {name!r} has code {hi} but only {L} levels were declared")
    X = np.empty((m, layout.p), dtype=np.float64)
    at = 0
    if layout.intercept:
        X[:, 0] = 1.0
        at = 1
    for j, name in enumerate(layout.x):
        X[:, at + j] = _column(chunk, name)
    if not (np.isfinite(y).all() and np.isfinite(X).all()):
        raise MissingDataError("missing or non-finite values in the response or covariates")
    return Block(codes, X, y)


_BLAS: list = []


def _one_blas_thread() -> AbstractContextManager:
    """BLAS limited to one thread: the products of a pass are skinny (m × c with c ≤ a few
    dozen), where a second thread gains nothing and, on a busy machine, threads spinning
    at barriers cost an order of magnitude."""
    if not _BLAS:
        try:
            from threadpoolctl import ThreadpoolController

            _BLAS.append(ThreadpoolController())
        except ImportError:  # pragma: no cover - threadpoolctl is a dependency
            _BLAS.append(None)
    return nullcontext() if _BLAS[0] is None else _BLAS[0].limit(limits=1, user_api="blas")


def chunk_pass(fn: Callable[..., Sums]) -> Callable[..., Sums | None]:
    """Make ``fn(block, layout, *args)`` a pass function ``(chunk, layout, *args)``: the
    chunk is decoded by ``read_block`` (empty chunks give ``None``) and ``fn`` runs
    with one BLAS thread."""

    @functools.wraps(fn)
    def run(chunk: Mapping[str, Any], layout: Layout, *args: Any) -> Sums | None:
        blk = read_block(chunk, layout)
        if blk is None:
            return None
        with _one_blas_thread():
            return fn(blk, layout, *args)

    return run


def in_memory(columns: Mapping[str, Sequence], chunk_rows: int | None = None) -> Reduce:
    """A reducer over slices of in-memory columns (a dict of arrays or a DataFrame).

    ``chunk_rows=None`` makes one chunk of all rows.
    """
    data = {k: columns[k] for k in columns.keys()}
    n = len(next(iter(data.values())))
    step = n if chunk_rows is None else int(chunk_rows)
    if step < 1:
        raise ValueError(f"chunk_rows must be a positive number of rows, not {chunk_rows!r}")

    def reduce(fn: Callable[..., Sums | None], *args: Any) -> Sums | None:
        parts = (
            fn({k: _rows(v, start, start + step) for k, v in data.items()}, *args)
            for start in range(0, max(n, 1), step)
        )
        return Sums.sum(parts)

    return reduce


def _rows(col: Any, start: int, stop: int) -> Any:
    """Rows ``start:stop`` of an array or a pandas Series (by position)."""
    iloc = getattr(col, "iloc", None)
    return iloc[start:stop] if iloc is not None else col[start:stop]


class Counted:
    """A reducer that counts its passes over the data (and their wall time)."""

    def __init__(self, reduce: Reduce):
        self._reduce = reduce
        self.passes = 0
        self.seconds: list[float] = []

    def __call__(self, fn: Callable[..., Sums | None], *args: Any) -> Sums | None:
        import time

        t0 = time.perf_counter()
        out = self._reduce(fn, *args)
        self.passes += 1
        self.seconds.append(time.perf_counter() - t0)
        return out


def levels_of(col: Any) -> int:
    """Number of levels of a code column: its categories, or max code + 1."""
    cat = getattr(col, "cat", None)
    if cat is not None:
        return len(cat.categories)
    codes = np.asarray(col)
    return int(codes.max()) + 1 if codes.size else 0


def layout_for(
    columns: Mapping[str, Any],
    factors: Sequence[str],
    x: Sequence[str] = (),
    y: str = "y",
    intercept: bool = True,
    interactions: Mapping[str, tuple[str, str]] | None = None,
) -> Layout:
    """A ``Layout`` for in-memory columns, with the levels read from the data."""
    return Layout(
        factors=tuple(factors),
        levels=tuple(levels_of(columns[f]) for f in factors),
        x=tuple(x),
        y=y,
        intercept=intercept,
        interactions=dict(interactions or {}),
    )
