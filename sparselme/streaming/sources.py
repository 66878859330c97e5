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

from ..data.frames import CsvDataset, csv_dataset, is_csv_path
from ..errors import CorruptDataError, DataChangedError, DataError
from .fingerprints import PartitionRows, check_same, file_fingerprints

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
        if is_csv_path(data):  # a large CSV file (small ones are read into memory)
            return ParquetSource(csv_dataset(data), rows)
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

    def __init__(self, dataset, chunk_size: int = DEFAULT_CHUNK_ROWS, path: str | None = None):
        self.dataset = dataset
        self.chunk_size = int(chunk_size)
        self.path = path  # a folder or file given by name: listed again at every pass
        self._dictionaries: dict[str, tuple] = {}
        self._fingerprint: dict | None = None  # taken at the first pass

    # ---- what is read: checksums and fingerprints -------------------------------------------
    def _files(self) -> tuple[list[str], object]:
        """(the Parquet files now, their filesystem); none for in-memory data."""
        import pyarrow.dataset as ds

        dataset = self.dataset
        if self.path is not None:
            try:
                dataset = _open(self.path)
            except DataError as exc:  # the folder itself is gone or unreadable
                raise DataChangedError([f"{self.path} cannot be listed again: {exc}"]) from exc
        if isinstance(dataset, CsvDataset):  # a large CSV file: its size and time
            import pyarrow.fs as pafs

            return [os.path.abspath(dataset.path)], pafs.LocalFileSystem()
        if not isinstance(dataset, ds.FileSystemDataset):
            return [], None
        return list(dataset.files), dataset.filesystem

    def fingerprint(self) -> dict:
        """Path → `FileFingerprint` of every file of the input now."""
        files, filesystem = self._files()
        return file_fingerprints(files, filesystem) if files else {}

    def _check_unchanged(self) -> None:
        """At every pass: the first takes the fingerprint, later ones compare with it."""
        now = self.fingerprint()
        if self._fingerprint is None:
            self._fingerprint = now
        else:
            check_same(self._fingerprint, now)

    def _scan_options(self):
        """Page checksums verified wherever the pages carry them (Parquet files)."""
        import pyarrow.dataset as ds

        if isinstance(self.dataset, ds.FileSystemDataset):
            return ds.ParquetFragmentScanOptions(page_checksum_verification=True)
        return None

    def _corrupt_file(self, columns: Sequence[str], exc: Exception) -> CorruptDataError:
        """The first file whose pages fail to verify or decode (for the error message)."""
        options = self._scan_options()
        for fragment in self.dataset.get_fragments():
            try:
                for _ in fragment.to_batches(
                    schema=self.dataset.schema,
                    columns=list(columns),
                    fragment_scan_options=options,
                ):
                    pass
            except (OSError, ValueError) as bad:
                return CorruptDataError(fragment.path, _reason(bad))
        return CorruptDataError(str(self.path or "the dataset"), _reason(exc))

    @classmethod
    def from_path(cls, path: str | os.PathLike, chunk_size: int) -> ParquetSource:
        return cls(_open(path), chunk_size, str(path))

    @property
    def columns(self) -> list[str]:
        return list(self.dataset.schema.names)

    def chunks(self, columns: Sequence[str]) -> Iterator[pd.DataFrame]:
        """pandas chunks of the given columns (dictionary columns become categoricals).

        Page checksums are verified (`CorruptDataError` names the file); the input's
        fingerprint is checked at the start and the end (`DataChangedError`).
        """
        self._check_unchanged()
        batches = self.dataset.to_batches(
            columns=list(columns),
            batch_size=self.chunk_size,
            batch_readahead=1,
            fragment_readahead=1,
            fragment_scan_options=self._scan_options(),
        )
        while True:
            try:
                batch = next(batches)
            except StopIteration:
                break
            except (OSError, ValueError) as exc:
                if isinstance(exc, DataError) or not _is_corruption(exc):
                    raise  # a named error already (a CSV value of another type), or no damage
                raise self._corrupt_file(columns, exc) from exc
            if batch.num_rows:
                yield self._to_pandas(batch)
        self._check_unchanged()

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


def _open(path: str | os.PathLike):
    """The pyarrow dataset of a Parquet file or folder (hive partitioning)."""
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
        return ds.dataset(str(p), format="parquet", partitioning="hive")
    except Exception as exc:  # pyarrow's errors vary by version
        raise DataError(f"cannot open {str(path)!r} as Parquet: {exc}") from exc


_CORRUPTION = ("checksum", "page integrity", "deserialize", "corrupt", "invalid", "magic")


def _is_corruption(exc: Exception) -> bool:
    return any(word in str(exc).lower() for word in _CORRUPTION)


def _reason(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if "checksum" in text.lower() or "integrity" in text.lower():
        return f"a page checksum does not match ({text})"
    return text


class DaskSource:
    """A Dask DataFrame: one task per partition (sliced into ``chunk_size`` rows), the
    results summed by a tree of tasks on the active ``dask.distributed`` client (or
    dask's default local scheduler). Only the sum travels back to the driver."""

    def __init__(self, ddf, chunk_size: int = DEFAULT_CHUNK_ROWS, tree_width: int = 8):
        _require("dask.dataframe", "dask")
        self.ddf = ddf
        self.chunk_size = int(chunk_size)
        self.tree_width = int(tree_width)
        self._rows: dict[int, int] | None = None  # rows per partition, from the first pass
        self._files: dict | None = None  # fingerprints of the Parquet files it reads

    def _check_unchanged(self, n: int, rows: dict[int, int] | None = None) -> None:
        """Partitions (their number n as read, and the rows each gave this pass) and the
        files they are read from, against the first pass (which records them)."""
        files = _dask_parquet_fingerprint(self.ddf)
        if self._files is None:
            self._files = files
        else:
            check_same(self._files, files)
        if rows is not None and set(rows) != set(range(n)):
            raise RuntimeError(f"partitions {sorted(set(range(n)) - set(rows))} were not counted")
        if self._rows is None:
            self._rows = rows
            return
        if n != len(self._rows):
            check_same({"partitions": len(self._rows)}, {"partitions": n})
        if rows is not None:
            before = {f"partition {i} rows": c for i, c in self._rows.items()}
            check_same(before, {f"partition {i} rows": c for i, c in rows.items()})

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
        """Σ fn(chunk, *args): each partition's rows travel with its summary, so that each
        partition is counted exactly once (a task retried after a lost worker included) and
        the rows match the first pass."""
        import dask

        partitions = self._partitions(columns)
        n = len(partitions)
        if self._rows is not None:
            self._check_unchanged(n)
        shared = self._shared(args)
        parts = [
            dask.delayed(_reduce_partition, pure=False)(p, i, fn, self.chunk_size, *shared)
            for i, p in enumerate(partitions)
        ]
        while len(parts) > 1:
            w = self.tree_width
            parts = [
                dask.delayed(_sum_parts, pure=False)(*parts[i : i + w])
                for i in range(0, len(parts), w)
            ]
        if not parts:
            return None
        total: PartitionRows = dask.compute(parts[0])[0]
        self._check_unchanged(n, total.rows)
        return total.value

    def map_chunks(self, fn: Callable, columns: Sequence[str], *args) -> Iterator[Any]:
        import dask

        partitions = self._partitions(columns)
        self._check_unchanged(len(partitions))
        shared = self._shared(args)
        for p in partitions:
            yield dask.compute(dask.delayed(fn, pure=False)(p, *shared))[0]

    def map_partitions(self, fn: Callable, columns: Sequence[str], *args, meta=None):
        """A lazy Dask collection of fn(partition, *args)."""
        return self.ddf[list(columns)].map_partitions(fn, *self._shared(args), meta=meta)


def _reduce_partition(
    df: pd.DataFrame, index: int, fn: Callable, chunk_size: int, *args
) -> PartitionRows:
    """Σ fn(slice, *args) over slices of ``chunk_size`` rows of partition ``index``."""
    acc = Accumulator()
    for start in range(0, len(df), chunk_size):
        acc.add(fn(df.iloc[start : start + chunk_size], *args))
    return PartitionRows(acc.result(), {index: len(df)})


def _dask_parquet_fingerprint(ddf) -> dict:
    """Fingerprints of the Parquet files a Dask frame reads (none if not read from files)."""
    out: dict = {}
    walk = getattr(getattr(ddf, "expr", None), "walk", None)
    if walk is None:
        return out
    for node in walk():
        info = getattr(node, "_dataset_info", None) if "Parquet" in type(node).__name__ else None
        dataset = info.get("ds") if isinstance(info, dict) else None
        files = getattr(dataset, "files", None)
        if files:
            out.update(file_fingerprints(files, dataset.filesystem))
    return out


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
