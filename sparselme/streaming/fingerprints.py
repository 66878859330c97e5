"""Streamed fits read exactly the data the user has: fingerprints checked between passes.

A streamed fit reads its input two or more times (levels, cross-products, then fitted values
or residuals on request). A file appended to, replaced or deleted in between — as happens
with live pipelines — would silently mix two versions of the data. So the first pass takes
a fingerprint of the input and every later pass compares it, at its start and at its end,
raising `DataChangedError` with the list of changes before any number from mixed data is
used:

* Parquet (`file_fingerprints`): per file its path, size, modification time and, from the
  footer, its row count and schema; a folder is listed again, so added files count too;
* Dask (`PartitionRows`): the number of partitions and the rows of each, counted by the
  pass itself (each partition's count travels with its summary, so a partition whose task
  ran twice — a retry after a lost worker — is caught rather than counted twice), plus the
  files' fingerprints when the frame was read from Parquet.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import DataChangedError

__all__ = ["FileFingerprint", "file_fingerprints", "changes", "PartitionRows", "check_same"]


@dataclass(frozen=True)
class FileFingerprint:
    """What identifies one version of a Parquet file."""

    size: int | None
    mtime_ns: int | None
    rows: int | None
    schema: str | None


def file_fingerprints(files: Iterable[str], filesystem) -> dict[str, FileFingerprint]:
    """Path → `FileFingerprint` of Parquet files on a pyarrow filesystem (footers read)."""
    import pyarrow.fs as pafs
    import pyarrow.parquet as pq

    out = {}
    files = list(files)
    for path, info in zip(files, filesystem.get_file_info(files)):
        if info.type == pafs.FileType.NotFound:
            continue
        rows = schema = None
        try:
            with filesystem.open_input_file(path) as handle:
                meta = pq.ParquetFile(handle).metadata
            rows, schema = int(meta.num_rows), str(meta.schema.to_arrow_schema())
        except Exception:  # not readable as Parquet now: size and time still tell
            pass
        out[path] = FileFingerprint(info.size, info.mtime_ns, rows, schema)
    return out


def changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    """What differs between two fingerprints (path → fingerprint), in words."""
    out = [f"{p} was deleted" for p in sorted(set(before) - set(after))]
    out += [f"{p} was added" for p in sorted(set(after) - set(before))]
    for p in sorted(set(before) & set(after)):
        a, b = before[p], after[p]
        if a == b:
            continue
        if isinstance(a, FileFingerprint):
            what = [
                f"{name} {getattr(a, name)} → {getattr(b, name)}"
                for name in ("size", "rows", "mtime_ns")
                if getattr(a, name) != getattr(b, name)
            ]
            if a.schema != b.schema:
                what.append("schema changed")
            out.append(f"{p} changed ({', '.join(what)})")
        else:
            out.append(f"{p}: {a} → {b}")
    return out


def check_same(before: Mapping[str, Any], after: Mapping[str, Any]) -> None:
    """`DataChangedError` listing the changes, if any."""
    found = changes(before, after)
    if found:
        raise DataChangedError(found)


@dataclass
class PartitionRows:
    """A pass's summed result and the rows each partition contributed to it.

    Adding two of these whose partitions overlap raises: each partition counts once.
    """

    value: Any
    rows: dict[int, int] = field(default_factory=dict)

    @classmethod
    def sum(cls, parts: Sequence[PartitionRows]) -> PartitionRows:
        rows: dict[int, int] = {}
        for p in parts:
            twice = set(rows) & set(p.rows)
            if twice:
                raise RuntimeError(f"partitions {sorted(twice)} were counted twice")
            rows.update(p.rows)
        values = [p.value for p in parts if p.value is not None]
        value = type(values[0]).sum(values) if values else None
        return cls(value, rows)
