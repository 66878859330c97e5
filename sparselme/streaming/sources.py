"""Where the chunks of streamed data come from: Parquet (files, folders, pyarrow datasets)
read as record batches, or Dask partitions reduced as a tree of tasks.

A source offers ``reduce(fn, columns, *args)`` — Σ fn(chunk, *args) over its chunks, for
summaries that add up (``type(x).sum(parts)``) — and ``map_chunks`` (fn of each chunk, in
order). ``None`` results are skipped.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import DataError

__all__ = [
    "DEFAULT_CHUNK_ROWS",
    "as_source",
    "ParquetSource",
    "DaskSource",
    "Accumulator",
]

# Rows per chunk (Parquet record batches; slices of a Dask partition). About 150 bytes
# per row are live while a chunk is coded (X, y, codes, sort keys), so ~150 MB by default.
DEFAULT_CHUNK_ROWS = 1_000_000


def as_source(data: Any, chunk_size: int | None = None) -> ParquetSource | DaskSource:
    """The chunk source for ``data`` (see `is_streamable`)."""
    rows = DEFAULT_CHUNK_ROWS if chunk_size is None else int(chunk_size)
    if rows < 1:
        raise ValueError(f"chunk_size must be a positive number of rows, not {chunk_size!r}")
    if isinstance(data, (str, os.PathLike)):
        return ParquetSource.from_path(data, rows)
    module = type(data).__module__
    if module.startswith("pyarrow"):
        import pyarrow.dataset as ds

        return ParquetSource(data if isinstance(data, ds.Dataset) else ds.dataset(data), rows)
    if module.startswith("dask"):
        return DaskSource(data, rows)
    raise TypeError(f"cannot stream data of type {type(data).__name__}")


def _require(module: str, extra: str):
    try:
        return __import__(module, fromlist=["_"])
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError(
            f"{module} is needed for this input: pip install 'sparselme[{extra}]'"
        ) from None


class ParquetSource:
    """A pyarrow dataset read as record batches of at most ``chunk_size`` rows.

    Batches are read one at a time (read-ahead of one batch and one file), so memory is
    bounded by the chunk size, not by the data.
    """

    def __init__(self, dataset, chunk_size: int = DEFAULT_CHUNK_ROWS):
        self.dataset = dataset
        self.chunk_size = int(chunk_size)
        self._dictionaries: dict[str, tuple] = {}

    @classmethod
    def from_path(cls, path: str | os.PathLike, chunk_size: int) -> ParquetSource:
        _require("pyarrow", "parquet")
        import pyarrow.dataset as ds

        p = Path(path)
        if not p.exists():
            raise FileNotFoundError(f"no such Parquet file or folder: {str(path)!r}")
        if p.is_file() and p.suffix.lower() in (".csv", ".tsv", ".txt", ".gz", ".json"):
            raise DataError(
                f"{str(path)!r} is not Parquet: only Parquet files and folders are streamed; "
                "read other formats with pandas (or dask.dataframe) first"
            )
        try:
            dataset = ds.dataset(str(p), format="parquet", partitioning="hive")
        except Exception as exc:  # pyarrow's errors vary by version
            raise DataError(f"cannot open {str(path)!r} as Parquet: {exc}") from exc
        return cls(dataset, chunk_size)

    @property
    def columns(self) -> list[str]:
        return list(self.dataset.schema.names)

    def chunks(self, columns: Sequence[str]) -> Iterator[pd.DataFrame]:
        """pandas chunks of the given columns (dictionary columns become categoricals)."""
        batches = self.dataset.to_batches(
            columns=list(columns),
            batch_size=self.chunk_size,
            batch_readahead=1,
            fragment_readahead=1,
        )
        for batch in batches:
            if batch.num_rows:
                yield self._to_pandas(batch)

    def _to_pandas(self, batch) -> pd.DataFrame:
        """``batch.to_pandas()``, with dictionary columns decoded once per distinct
        dictionary (not per batch: a 100,000-level dictionary costs more than its codes)."""
        import pyarrow as pa
        import pyarrow.compute as pc

        cols = {}
        for name, arr in zip(batch.schema.names, batch.columns):
            if not pa.types.is_dictionary(arr.type):
                cols[name] = arr.to_pandas()
                continue
            cached = self._dictionaries.get(name)
            if cached is None or not cached[0].equals(arr.dictionary):
                cats = pd.Index(arr.dictionary.to_pandas())
                dtype = pd.CategoricalDtype(cats, ordered=arr.type.ordered)
                cached = self._dictionaries[name] = (arr.dictionary, dtype)
            codes = pc.fill_null(arr.indices, -1).to_numpy(zero_copy_only=False)
            cols[name] = pd.Categorical.from_codes(codes, dtype=cached[1])
        return pd.DataFrame(cols)

    def reduce(self, fn: Callable, columns: Sequence[str], *args):
        """Σ fn(chunk, *args) over the chunks (``None`` results are skipped)."""
        acc = Accumulator()
        for df in self.chunks(columns):
            acc.add(fn(df, *args))
        return acc.result()

    def map_chunks(self, fn: Callable, columns: Sequence[str], *args) -> Iterator[Any]:
        """fn(chunk, *args) for each chunk, in order."""
        for df in self.chunks(columns):
            yield fn(df, *args)


class DaskSource:
    """A Dask DataFrame: one task per partition (sliced into ``chunk_size`` rows), the
    results summed by a tree of tasks on the active ``dask.distributed`` client (or
    dask's default local scheduler). Only the sum travels back to the driver."""

    def __init__(self, ddf, chunk_size: int = DEFAULT_CHUNK_ROWS, tree_width: int = 8):
        _require("dask.dataframe", "dask")
        self.ddf = ddf
        self.chunk_size = int(chunk_size)
        self.tree_width = int(tree_width)

    @property
    def columns(self) -> list[str]:
        return [str(c) for c in self.ddf.columns]

    @staticmethod
    def _shared(args: tuple) -> tuple:
        """Large arguments (the coder) become one graph key each, so they are serialized
        once and sent to each worker once, not embedded in every task."""
        import dask

        return tuple(
            dask.delayed(a, name=f"sparselme-arg-{uuid.uuid4().hex}", traverse=False) for a in args
        )

    def _partitions(self, columns: Sequence[str]):
        return self.ddf[list(columns)].to_delayed()

    def reduce(self, fn: Callable, columns: Sequence[str], *args):
        import dask

        shared = self._shared(args)
        parts = [
            dask.delayed(_reduce_frame, pure=False)(p, fn, self.chunk_size, *shared)
            for p in self._partitions(columns)
        ]
        while len(parts) > 1:
            w = self.tree_width
            parts = [
                dask.delayed(_sum_parts, pure=False)(*parts[i : i + w])
                for i in range(0, len(parts), w)
            ]
        if not parts:
            return None
        return dask.compute(parts[0])[0]

    def map_chunks(self, fn: Callable, columns: Sequence[str], *args) -> Iterator[Any]:
        import dask

        shared = self._shared(args)
        for p in self._partitions(columns):
            yield dask.compute(dask.delayed(fn, pure=False)(p, *shared))[0]

    def map_partitions(self, fn: Callable, columns: Sequence[str], *args, meta=None):
        """A lazy Dask collection of fn(partition, *args)."""
        return self.ddf[list(columns)].map_partitions(fn, *self._shared(args), meta=meta)


def _reduce_frame(df: pd.DataFrame, fn: Callable, chunk_size: int, *args):
    """Σ fn(slice, *args) over slices of ``chunk_size`` rows of one partition."""
    acc = Accumulator()
    for start in range(0, len(df), chunk_size):
        acc.add(fn(df.iloc[start : start + chunk_size], *args))
    return acc.result()


def _sum_parts(*parts):
    items = [p for p in parts if p is not None]
    if not items:
        return None
    return type(items[0]).sum(items)


class Accumulator:
    """Sums a stream of summaries like a binary counter: every item is merged O(log m)
    times, and at most log₂ m partial sums are held at once."""

    def __init__(self):
        self._stack: list[tuple[int, Any]] = []

    def add(self, item) -> None:
        if item is None:
            return
        level = 0
        while self._stack and self._stack[-1][0] == level:
            _, prev = self._stack.pop()
            item = _sum_parts(prev, item)
            level += 1
        self._stack.append((level, item))

    def result(self):
        return _sum_parts(*[s for _, s in self._stack])
