"""Cross-products are sums over rows: chunks add up to the whole (the basis of streaming)."""

from __future__ import annotations

import numpy as np
import pytest

from sparselme.engine.crossprod import (
    CrossBlocks,
    CrossProducts,
    _level_pairs,
    chunk_crossproducts,
)
from sparselme.engine.rows import TermRows


def _problem(n: int = 500, seed: int = 3):
    rng = np.random.default_rng(seed)
    L1, L2 = 40, 7
    c1, c2 = rng.integers(0, L1, n), rng.integers(0, L2, n)
    m1 = np.column_stack([np.ones(n), rng.normal(size=n)])  # (1 + x | g1)
    m2 = np.ones((n, 1))  # (1 | g2)
    X = np.column_stack([np.ones(n), rng.normal(size=(n, 2))])
    y = rng.normal(size=n)
    w = rng.uniform(0.5, 2.0, n)
    return [TermRows(c1, m1, L1), TermRows(c2, m2, L2)], X, y, w


def _assert_cp_close(a: CrossProducts, b: CrossProducts, rtol: float = 1e-12) -> None:
    assert a.nobs == b.nobs
    for u, v in zip(a.diag + a.ZtX + a.Zty, b.diag + b.ZtX + b.Zty):
        np.testing.assert_allclose(u, v, rtol=rtol, atol=1e-12)
    np.testing.assert_allclose(a.XtX, b.XtX, rtol=rtol)
    np.testing.assert_allclose(a.Xty, b.Xty, rtol=rtol)
    assert a.yty == pytest.approx(b.yty, rel=rtol)
    assert a.sum_log_weights == pytest.approx(b.sum_log_weights, rel=rtol, abs=1e-12)
    assert list(a.cross) == list(b.cross)
    for key in a.cross:
        np.testing.assert_array_equal(a.cross[key].rows, b.cross[key].rows)
        np.testing.assert_array_equal(a.cross[key].cols, b.cross[key].cols)
        np.testing.assert_allclose(a.cross[key].values, b.cross[key].values, rtol=rtol)


def _slice(rows, X, y, w, idx):
    return [TermRows(t.codes[idx], t.model[idx], t.nlevels) for t in rows], X[idx], y[idx], w[idx]


@pytest.mark.parametrize("weighted", [False, True])
def test_chunks_add_up_to_the_whole(weighted):
    rows, X, y, w = _problem()
    w = w if weighted else None
    whole = chunk_crossproducts(rows, X, y, w)
    cuts = [0, 1, 2, 60, 61, 300, 500]  # includes one-row chunks that miss most levels
    parts = []
    for lo, hi in zip(cuts[:-1], cuts[1:]):
        idx = np.arange(lo, hi)
        r, Xc, yc, wc = _slice(rows, X, y, np.ones(len(y)) if w is None else w, idx)
        parts.append(chunk_crossproducts(r, Xc, yc, None if w is None else wc))
    _assert_cp_close(CrossProducts.sum(parts), whole)
    # pairwise addition, in any order, gives the same
    total = parts[3] + parts[0]
    for p in (parts[5], parts[1], parts[4], parts[2]):
        total = total + p
    _assert_cp_close(total, whole)


def test_crossproducts_equal_dense_products_of_z_x_y():
    """Every block equals the matching block of [Z X y]ᵀW[Z X y] formed densely."""
    rows, X, y, w = _problem()
    cp = chunk_crossproducts(rows, X, y, w)
    Z = np.hstack([r.z_matrix().toarray() for r in rows])
    M = np.column_stack([Z, X, y])
    G = M.T @ (w[:, None] * M)
    q1, q = rows[0].q, rows[0].q + rows[1].q
    k1, k2 = rows[0].k, rows[1].k
    for s, (r, lo) in enumerate(zip(rows, (0, q1))):
        for lev in range(r.nlevels):
            sl = slice(lo + lev * r.k, lo + (lev + 1) * r.k)
            np.testing.assert_allclose(cp.diag[s][lev], G[sl, sl], rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(cp.ZtX[s].reshape(-1, X.shape[1]), G[lo : lo + r.q, q:-1])
        np.testing.assert_allclose(cp.Zty[s].ravel(), G[lo : lo + r.q, -1])
    blk = cp.cross[(1, 0)]
    dense = np.zeros((rows[1].q, rows[0].q))
    for i, j, v in zip(blk.rows, blk.cols, blk.values):
        dense[i * k2 : (i + 1) * k2, j * k1 : (j + 1) * k1] = v
    np.testing.assert_allclose(dense, G[q1:q, :q1], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(cp.XtX, G[q:-1, q:-1])
    np.testing.assert_allclose(cp.Xty, G[q:-1, -1])
    assert cp.yty == pytest.approx(G[-1, -1])
    assert cp.sum_log_weights == pytest.approx(np.sum(np.log(w)))


def test_cross_blocks_concat_sums_shared_pairs_sorted():
    a = CrossBlocks(
        np.array([0, 2, 5]), np.array([1, 0, 3]), np.array([1.0, 2.0, 3.0])[:, None, None]
    )
    b = CrossBlocks(
        np.array([2, 0, 1]), np.array([0, 0, 9]), np.array([10.0, 20.0, 30.0])[:, None, None]
    )
    c = CrossBlocks.concat([a, b])
    assert list(zip(c.rows, c.cols)) == [(0, 0), (0, 1), (1, 9), (2, 0), (5, 3)]
    np.testing.assert_array_equal(c.values[:, 0, 0], [20.0, 1.0, 30.0, 12.0, 3.0])


def test_adding_different_designs_is_an_error():
    rows, X, y, w = _problem()
    cp = chunk_crossproducts(rows, X, y)
    other = chunk_crossproducts(rows, X[:, :2], y)
    with pytest.raises(ValueError, match="different designs"):
        cp + other
    assert cp.__add__(3) is NotImplemented


def test_select_fixed_drops_columns_everywhere():
    rows, X, y, w = _problem()
    cp = chunk_crossproducts(rows, X, y, w)
    sub = cp.select_fixed([0, 2])
    ref = chunk_crossproducts(rows, X[:, [0, 2]], y, w)
    _assert_cp_close(sub, ref)


def _dense_z(t: TermRows) -> np.ndarray:
    """(n, L·k) Z of one term, level-major columns, built entry by entry."""
    n = len(t.codes)
    Z = np.zeros((n, t.nlevels * t.k))
    for i in range(n):
        Z[i, t.codes[i] * t.k : (t.codes[i] + 1) * t.k] = t.model[i]
    return Z


def test_blocks_equal_the_dense_products():
    rows, X, y, w = _problem(n=300)
    rows[0] = TermRows(rows[0].codes, rows[0].model, 45)  # five levels never occur
    cp = chunk_crossproducts(rows, X, y, w)
    Z = [_dense_z(t) for t in rows]
    W = w[:, None]
    for s, t in enumerate(rows):
        ZtWZ = Z[s].T @ (W * Z[s])
        for level in range(t.nlevels):
            blk = slice(level * t.k, (level + 1) * t.k)
            np.testing.assert_allclose(cp.diag[s][level], ZtWZ[blk, blk], atol=1e-12)
        np.testing.assert_allclose(
            cp.ZtX[s], (Z[s].T @ (W * X)).reshape(t.nlevels, t.k, -1), atol=1e-12
        )
        np.testing.assert_allclose(cp.Zty[s].ravel(), Z[s].T @ (w * y), atol=1e-12)
    dense = Z[1].T @ (W * Z[0])  # (7, 45·2)
    blk = cp.cross[(1, 0)]
    assert np.all(np.diff(blk.rows * 45 + blk.cols) > 0)  # distinct, row-major
    expected = np.zeros_like(dense)
    for r, c, v in zip(blk.rows, blk.cols, blk.values):
        expected[r, c * 2 : c * 2 + 2] = v[0]
    np.testing.assert_allclose(expected, dense, atol=1e-12)
    np.testing.assert_allclose(cp.XtX, X.T @ (W * X), rtol=1e-12)
    np.testing.assert_allclose(cp.Xty, X.T @ (w * y), rtol=1e-12)
    assert cp.yty == pytest.approx(float(y @ (w * y)), rel=1e-12)


def test_level_pairs_match_a_sort_of_the_combined_keys():
    rng = np.random.default_rng(8)
    r, c = rng.integers(0, 30, 2000), rng.integers(0, 500, 2000)
    rows, cols, inverse = _level_pairs(r, c, 30, 500)
    pairs, expected = np.unique(r * 500 + c, return_inverse=True)
    np.testing.assert_array_equal(rows * 500 + cols, pairs)
    np.testing.assert_array_equal(inverse, expected.ravel())
    assert [len(a) for a in _level_pairs(r[:0], c[:0], 30, 500)] == [0, 0, 0]
