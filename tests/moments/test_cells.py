"""Cell counts of two factors: exact within the budget, an unbiased sample beyond it."""

import numpy as np
import pytest

from sparselme.moments.cells import CellSample, mix64
from sparselme.moments.source import Sums


def _codes(seed: int, n: int, la: int, lb: int):
    rng = np.random.default_rng(seed)
    return rng.integers(0, la, n), rng.integers(0, lb, n)


def _brute_pairs(a, b) -> int:
    _, counts = np.unique(a.astype(np.int64) * 10_000 + b, return_counts=True)
    return int(np.sum(counts * (counts - 1)))


def _chunked(a, b, lb, budget, rows):
    parts = [
        Sums(c=CellSample.of(a[i : i + rows], b[i : i + rows], lb, budget))
        for i in range(0, a.shape[0], rows)
    ]
    return Sums.sum(parts)["c"]


def test_mix64_is_a_bijection_on_a_sample():
    keys = np.arange(500_000, dtype=np.uint64) * np.uint64(7919)
    assert np.all(np.diff(np.sort(mix64(keys))) != 0)


def test_exact_within_budget_for_any_chunking():
    a, b = _codes(0, 5000, 40, 30)
    want = _brute_pairs(a, b)
    for rows in (5000, 333, 17):
        cells = _chunked(a, b, 30, budget=10_000, rows=rows)
        assert cells.exact
        assert cells.repeated_pairs(30) == (float(want), 0.0)


def test_sampled_beyond_budget_is_chunking_invariant_and_unbiased():
    a, b = _codes(1, 20_000, 300, 200)
    want = _brute_pairs(a, b)
    one = _chunked(a, b, 200, budget=2_000, rows=20_000)
    assert one.level > 0 and one.hashes.shape[0] <= 2_000
    for rows in (999, 4096):
        other = _chunked(a, b, 200, budget=2_000, rows=rows)
        assert other.level == one.level
        np.testing.assert_array_equal(other.hashes, one.hashes)
        np.testing.assert_array_equal(other.counts, one.counts)
        np.testing.assert_array_equal(other.keys, one.keys)
    est, se = one.repeated_pairs(200)
    assert se > 0 and abs(est - want) < 4 * se


def test_weighted_pairs():
    a, b = _codes(2, 3000, 25, 20)
    wa, wb = np.linspace(0.5, 2.0, 25), np.linspace(1.0, 3.0, 20)
    keys, counts = np.unique(a * 20 + b, return_counts=True)
    want = np.sum(wa[keys // 20] * wb[keys % 20] * counts * (counts - 1))
    got, se = _chunked(a, b, 20, budget=10_000, rows=700).repeated_pairs(20, wa, wb)
    assert se == 0.0 and got == pytest.approx(want, rel=1e-12)
