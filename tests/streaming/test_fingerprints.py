"""Fingerprints of the input and the per-partition row counts of Dask passes."""

from __future__ import annotations

import pytest

from sparselme import errors
from sparselme.streaming.fingerprints import FileFingerprint, PartitionRows, changes, check_same


def test_changes_are_listed_in_words():
    a = FileFingerprint(100, 1, 10, "s")
    before = {"x.parquet": a, "y.parquet": a}
    after = {"x.parquet": FileFingerprint(120, 2, 12, "s"), "z.parquet": a}
    found = changes(before, after)
    assert found == [
        "y.parquet was deleted",
        "z.parquet was added",
        "x.parquet changed (size 100 → 120, rows 10 → 12, mtime_ns 1 → 2)",
    ]
    with pytest.raises(errors.DataChangedError, match="y.parquet was deleted"):
        check_same(before, after)
    check_same(before, dict(before))


class Count:
    def __init__(self, n):
        self.n = n

    @classmethod
    def sum(cls, parts):
        return cls(sum(p.n for p in parts))


def test_each_partition_counts_once():
    total = PartitionRows.sum([PartitionRows(Count(3), {0: 3}), PartitionRows(None, {1: 0})])
    total = PartitionRows.sum([total, PartitionRows(Count(4), {2: 4})])
    assert total.value.n == 7 and total.rows == {0: 3, 1: 0, 2: 4}
    with pytest.raises(RuntimeError, match=r"partitions \[2\] were counted twice"):
        PartitionRows.sum([total, PartitionRows(Count(4), {2: 4})])
