"""Reducers over Parquet folders and Dask DataFrames (thin, for tests and benchmarks).

The passes of ``sparselme.moments`` need only a reducer ``reduce(fn, *args)``
(``.source``). These two build one from pyarrow or dask directly; any other streaming
source with a ``reduce(fn, columns, *args)`` method fits as
``lambda fn, *args: source.reduce(fn, columns, *args)``.

Factor columns in Parquet are integer codes, or dictionary columns whose dictionary is the
same in every batch (as written from one pandas Categorical dtype).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..errors import DataError
from .source import Reduce, Sums

__all__ = ["parquet_reducer", "dask_reducer"]


def _batch_columns(batch, dictionaries: dict) -> dict[str, np.ndarray]:
    """numpy columns of a record batch; dictionary columns become their indices."""
    import pyarrow as pa

    out = {}
    for name, arr in zip(batch.schema.names, batch.columns):
        if pa.types.is_dictionary(arr.type):
            first = dictionaries.setdefault(name, arr.dictionary)
            if not first.equals(arr.dictionary):
                raise DataError(
                    f"column {name!r} has different dictionaries in different batches; "
                    "write it with one categorical dtype or as integer codes"
                )
            out[name] = arr.indices.fill_null(-1).to_numpy(zero_copy_only=False)
        else:
            out[name] = arr.to_numpy(zero_copy_only=False)
    return out


def parquet_reducer(
    path: str | os.PathLike, columns: Sequence[str], chunk_rows: int = 1_000_000
) -> Reduce:
    """A reducer over the record batches (≤ ``chunk_rows`` rows) of a Parquet file/folder."""
    import pyarrow.dataset as ds

    dataset = ds.dataset(str(path), format="parquet")
    cols = list(columns)

    def reduce(fn: Callable[..., Sums | None], *args: Any) -> Sums | None:
        total = None
        dictionaries: dict = {}
        batches = dataset.to_batches(
            columns=cols, batch_size=int(chunk_rows), batch_readahead=1, fragment_readahead=1
        )
        for batch in batches:
            if batch.num_rows:
                total = Sums.sum([total, fn(_batch_columns(batch, dictionaries), *args)])
        return total

    return reduce


def _partition_sum(df, fn: Callable, chunk_rows: int, *args) -> Sums | None:
    return Sums.sum(
        fn(df.iloc[a : a + chunk_rows], *args) for a in range(0, max(len(df), 1), chunk_rows)
    )


def _tree_sum(*parts) -> Sums | None:
    return Sums.sum(parts)


def dask_reducer(
    ddf, columns: Sequence[str], chunk_rows: int = 1_000_000, width: int = 8
) -> Reduce:
    """A reducer over the partitions of a Dask DataFrame, summed as a tree of tasks.

    Runs on the active ``dask.distributed`` client if there is one. The arguments of each
    pass are sent once per worker (one graph key each), not embedded in every task.
    """
    import dask

    cols = list(columns)

    def reduce(fn: Callable[..., Sums | None], *args: Any) -> Sums | None:
        shared = [dask.delayed(a, traverse=False) for a in args]
        parts = [
            dask.delayed(_partition_sum, pure=False)(p, fn, int(chunk_rows), *shared)
            for p in ddf[cols].to_delayed()
        ]
        while len(parts) > 1:
            parts = [
                dask.delayed(_tree_sum, pure=False)(*parts[i : i + width])
                for i in range(0, len(parts), width)
            ]
        return dask.compute(parts[0])[0] if parts else None

    return reduce
