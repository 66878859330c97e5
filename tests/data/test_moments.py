"""ColumnMoments: summaries of chunks add up to the summary of all rows (one chunk)."""

from __future__ import annotations

import numpy as np
import pytest

from sparselme.data.moments import ColumnMoments


def gram(R: np.ndarray) -> np.ndarray:
    return R.T @ R


@pytest.mark.parametrize("cuts", [[500], [1, 2, 999], [100, 350, 351, 700]])
def test_chunks_add_up_to_one_chunk(cuts):
    rng = np.random.default_rng(1)
    M = np.column_stack([np.ones(1000), rng.normal(size=1000) + 1e9, rng.integers(0, 2, 1000)])
    whole = ColumnMoments.of(M)
    parts = ColumnMoments.sum([ColumnMoments.of(c) for c in np.split(M, cuts)])
    assert parts.n == whole.n == 1000
    np.testing.assert_allclose(parts.mean, whole.mean, rtol=1e-15)
    # the centred Gram matrix keeps the small variation of a column of size 1e9
    np.testing.assert_allclose(gram(parts.R), gram(whole.R), rtol=1e-9, atol=1e-6)
    np.testing.assert_allclose(parts.std[1], np.std(M[:, 1]), rtol=1e-6)
    np.testing.assert_array_equal(parts.lo, M.min(axis=0))
    np.testing.assert_array_equal(parts.hi, M.max(axis=0))
    assert list(parts.binary) == [True, False, True]
    assert list(parts.constant) == [True, False, False]


def test_r_factor_of_an_affine_transform():
    rng = np.random.default_rng(2)
    M = rng.normal(size=(300, 3)) * [1.0, 50.0, 1e-3] + [0.0, 7.0, 2.0]
    mom = ColumnMoments.sum([ColumnMoments.of(M[:120]), ColumnMoments.of(M[120:])])
    shift, scale = np.array([0.0, 7.0, 1.0]), np.array([1.0, 50.0, 0.0])
    T = (M - shift) / np.where(scale > 0, scale, 1) * (scale > 0)
    np.testing.assert_allclose(gram(mom.r_factor(shift, scale)), T.T @ T, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(gram(mom.r_factor()), M.T @ M, rtol=1e-10)


def test_non_finite_rows_are_counted_and_left_out():
    M = np.array([[1.0, 2.0], [np.nan, 1.0], [3.0, np.inf], [5.0, 6.0]])
    mom = ColumnMoments.of(M[:2]) + ColumnMoments.of(M[2:])
    assert mom.n == 2 and mom.nonfinite_rows == 2
    assert list(mom.nonfinite) == [1, 1]
    np.testing.assert_allclose(mom.mean, [3.0, 4.0])
