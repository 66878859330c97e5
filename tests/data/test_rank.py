"""The R factor of tall matrices (blocked QR) and the redundant columns it finds."""

import numpy as np
import pytest

from sparselme.data import rank


@pytest.mark.parametrize("n", [300, 3 * rank.QR_BLOCK_ROWS + 17])
def test_r_factor_of_a_tall_matrix(n):
    rng = np.random.default_rng(n)
    M = np.asfortranarray(rng.normal(size=(n, 12)) * np.logspace(-3, 4, 12))
    R = rank.qr_r(M)
    assert R.shape == (12, 12)
    np.testing.assert_array_equal(R, np.triu(R))
    np.testing.assert_allclose(R.T @ R, M.T @ M, rtol=1e-12, atol=1e-12 * np.abs(M.T @ M).max())
    direct = np.linalg.qr(M, mode="r")  # the same R up to the signs of its rows
    np.testing.assert_allclose(np.abs(np.diag(R)), np.abs(np.diag(direct)), rtol=1e-12)


@pytest.mark.parametrize("n", [500, 5 * rank.QR_BLOCK_ROWS])
def test_redundant_columns_in_blocks(n):
    rng = np.random.default_rng(1)
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    X = np.column_stack([np.ones(n), x1, x2, x1 - 2 * x2, x2 + 1e-9 * rng.normal(size=n)])
    assert rank.redundant_columns(X) == [3, 4]
    y = 1 + x1 + rng.normal(size=n)
    dropped, resid = rank.redundant_columns_and_residual(X[:, :3], y)
    beta, *_ = np.linalg.lstsq(X[:, :3], y, rcond=None)
    assert dropped == []
    assert resid == pytest.approx(np.linalg.norm(y - X[:, :3] @ beta), rel=1e-10)
