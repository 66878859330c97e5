"""Data frames from other libraries, and CSV files, as the pandas frames the models read.

`to_pandas` converts what `sparselme.data.validation.as_data_frame` receives when it
is not pandas: polars, pyarrow (``Table``, ``RecordBatch``) and the other libraries
narwhals knows; any object with the Arrow PyCapsule interface (``__arrow_c_stream__`` or
``__arrow_c_array__``) or the dataframe interchange protocol (``__dataframe__``); the path
of a CSV file (read with pandas). A CSV file larger than `IN_MEMORY_CSV_BYTES` is not
read here: `is_large_csv` sends it to the streamed fit, which reads it through
`csv_dataset` in chunks as it reads Parquet.

`level_labels` gives the labels of a grouping factor's levels (an integer-coded column
keeps ``308``, not ``308.0``, even when a missing value made it float).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import DataError, DataTypeError

__all__ = [
    "CSV_SUFFIXES",
    "IN_MEMORY_CSV_BYTES",
    "is_csv_path",
    "is_large_csv",
    "read_csv",
    "csv_dataset",
    "CsvDataset",
    "to_pandas",
    "level_labels",
]

#: file name endings read as delimited text (optionally compressed: .gz, .bz2, .xz, .zst)
CSV_SUFFIXES = (".csv", ".tsv", ".txt")
_COMPRESSED = (".gz", ".bz2", ".xz", ".zst", ".zip")
#: CSV files up to this size on disk (compressed ones counted 4×) are read into memory;
#: larger ones are streamed in chunks, as Parquet is.
IN_MEMORY_CSV_BYTES = 256 * 2**20


# ---- CSV files ----------------------------------------------------------------------------
def _text_suffix(path: str | os.PathLike) -> tuple[str, bool]:
    """(the text suffix, e.g. ".csv", or "", whether the file is compressed)."""
    suffixes = [s.lower() for s in Path(path).suffixes]
    compressed = bool(suffixes) and suffixes[-1] in _COMPRESSED
    if compressed:
        suffixes = suffixes[:-1]
    kind = suffixes[-1] if suffixes and suffixes[-1] in CSV_SUFFIXES else ""
    return kind, compressed


def is_csv_path(data: object) -> bool:
    """True for a ``str``/``os.PathLike`` naming a .csv, .tsv or .txt file (or a
    compressed one, .csv.gz ...)."""
    return isinstance(data, (str, os.PathLike)) and _text_suffix(data)[0] != ""


def is_large_csv(path: str | os.PathLike) -> bool:
    """True for a CSV file too large to read into memory (see `IN_MEMORY_CSV_BYTES`)."""
    p = Path(path)
    if not p.is_file():
        return False
    size = p.stat().st_size * (4 if _text_suffix(p)[1] else 1)
    return size > IN_MEMORY_CSV_BYTES


def _separator(path: str | os.PathLike) -> str:
    return "\t" if _text_suffix(path)[0] == ".tsv" else ","


def read_csv(path: str | os.PathLike) -> pd.DataFrame:
    """The rows of a CSV (TSV) file as a DataFrame; a clear error when it cannot be read."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"no such CSV file: {str(path)!r}")
    try:
        return pd.read_csv(p, sep=_separator(p))
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read {str(path)!r} as a table: {exc}") from exc


class CsvDataset:
    """A CSV file as the pyarrow dataset a streamed fit reads (``schema``, ``to_batches``).

    Column types are inferred from the file's first block: whole numbers are read as
    float64 (a later block may hold a decimal or a missing value), dates and times as text
    (as pandas reads them). A value that does not fit its column's type further down
    raises a `sparselme.errors.DataError` naming the file, instead of pyarrow's error.
    """

    def __init__(self, path: str | os.PathLike):
        import pyarrow as pa
        import pyarrow.csv as pacsv
        import pyarrow.dataset as ds

        self.path = str(path)
        parse = pacsv.ParseOptions(delimiter=_separator(path))
        try:
            with pacsv.open_csv(self.path, parse_options=parse) as reader:
                inferred = reader.schema
        except (pa.ArrowInvalid, OSError) as exc:
            raise DataError(f"cannot read {self.path!r} as a table: {exc}") from exc
        fields = [pa.field(f.name, _streamed_type(f.type)) for f in inferred]
        self.schema = pa.schema(fields)
        convert = pacsv.ConvertOptions(column_types=self.schema)
        fmt = ds.CsvFileFormat(parse_options=parse, convert_options=convert)
        self._dataset = ds.dataset(self.path, format=fmt, schema=self.schema)

    def to_batches(self, **kwargs: Any) -> Iterator[Any]:
        """pyarrow record batches (``columns``, ``batch_size`` ... as ``Dataset.to_batches``)."""
        import pyarrow as pa

        try:
            yield from self._dataset.to_batches(**kwargs)
        except pa.ArrowInvalid as exc:
            raise DataError(
                f"cannot read {self.path!r} in chunks: {exc}. A column's values do not all "
                "have the type read from the start of the file; convert the file to Parquet "
                "with explicit column types (or read it with pandas and pass the DataFrame)"
            ) from exc


def _streamed_type(t):
    import pyarrow as pa

    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_null(t):
        return pa.float64()
    if pa.types.is_temporal(t):
        return pa.string()
    return t


def csv_dataset(path: str | os.PathLike) -> CsvDataset:
    """A CSV file to be streamed in chunks (see `CsvDataset`); needs pyarrow."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"no such CSV file: {str(path)!r}")
    try:
        import pyarrow  # noqa: F401
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError(
            f"{str(path)!r} is larger than {IN_MEMORY_CSV_BYTES // 2**20} MB and is read in "
            "chunks, which needs pyarrow: pip install 'sparselme[parquet]'"
        ) from None
    return CsvDataset(path)


# ---- frames of other libraries ---------------------------------------------------------------
def to_pandas(data: object, name: str = "data") -> pd.DataFrame | None:
    """A pandas DataFrame of ``data``, or None when ``data`` is no frame this knows.

    Parameters
    ----------
    data : polars, pyarrow or another library's data frame, an object with the Arrow
        PyCapsule interface or the dataframe interchange protocol, or a CSV file's path.
    name : the argument's name, for messages.

    Returns
    -------
    pandas.DataFrame or None
        The same n rows and columns (categoricals stay categorical, with their level order).
    """
    if isinstance(data, pd.DataFrame):
        return data
    if is_csv_path(data):
        return read_csv(data)  # type: ignore[arg-type]
    try:
        frame = _via_narwhals(data)
        if frame is None:
            frame = _via_protocols(data)
    except ImportError as exc:
        raise DataTypeError(
            f"{name} is a {type(data).__name__}, whose conversion to pandas needs a package "
            f"that is not installed ({exc}); pip install pyarrow"
        ) from exc
    return frame


def _via_narwhals(data: object) -> pd.DataFrame | None:
    import narwhals as nw

    try:
        frame = nw.from_native(data)
    except TypeError:  # not a frame narwhals knows
        return None
    if isinstance(frame, nw.LazyFrame):
        frame = frame.collect()
    if not isinstance(frame, nw.DataFrame):
        return None
    return frame.to_pandas()


def _via_protocols(data: object) -> pd.DataFrame | None:
    if hasattr(data, "__arrow_c_stream__") or hasattr(data, "__arrow_c_array__"):
        import pyarrow as pa

        return pa.table(data).to_pandas()
    if hasattr(data, "__dataframe__"):
        with warnings.catch_warnings():  # pandas deprecates the protocol, not its readers
            warnings.simplefilter("ignore")
            return pd.api.interchange.from_dataframe(data)
    return None


# ---- labels ----------------------------------------------------------------------------------
def level_labels(values: pd.Index | pd.Series | np.ndarray) -> np.ndarray:
    """(m,) str labels of grouping values: a factor's levels, or a column of new rows.

    Whole numbers stored as floats (an integer column that held a missing value) are
    labelled as integers, as R does: ``308``, not ``308.0``. Missing values give "nan".
    """
    if isinstance(getattr(values, "dtype", None), pd.CategoricalDtype):
        cat = pd.Categorical(values)
        labels = np.append(level_labels(cat.categories), "nan").astype(object)
        return labels[cat.codes]  # code -1 (missing) takes the last
    values = pd.Index(values)
    out = np.asarray(values.astype(str), dtype=object)
    out[np.asarray(values.isna())] = "nan"
    if pd.api.types.is_float_dtype(values.dtype):
        v = values.to_numpy(dtype=float)
        with np.errstate(invalid="ignore"):
            whole = np.isfinite(v) & (v == np.round(v)) & (np.abs(v) < 2**53)
        out[whole] = v[whole].astype(np.int64).astype(str)
    return out
