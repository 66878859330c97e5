"""The compiled Schur-complement kernels against dense products."""

import numpy as np
import pytest
import scipy.sparse as sp

from sparselme.engine import _gram, block_cholesky


def _random_pattern(m: int, ncols: int, density: float, seed: int) -> sp.csc_matrix:
    L = sp.random(m, ncols, density=density, format="csc", random_state=seed)
    L.sort_indices()
    return L


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("density", [0.0, 0.02, 0.3, 1.0])
def test_negative_lower_gram_equals_dense_product(threads, density):
    L = _random_pattern(60, 150, density, seed=3)
    order = sp.csc_matrix(
        (np.arange(L.nnz, dtype=np.int64), L.indices, L.indptr), shape=L.shape
    ).tocsr()
    S = np.arange(60 * 60, dtype=float).reshape(60, 60)
    before = S.copy()
    _gram.negative_lower_gram(
        order.indptr.astype(np.int64),
        order.indices.astype(np.int32),
        order.data.astype(np.int64),
        L.indptr.astype(np.int64),
        L.indices.astype(np.int32),
        L.data,
        S,
        threads,
    )
    dense = L.toarray()
    want = -dense @ dense.T
    lower = np.tril_indices(60)
    np.testing.assert_allclose(S[lower], want[lower], rtol=1e-13, atol=1e-12)
    upper = np.triu_indices(60, 1)
    np.testing.assert_array_equal(S[upper], before[upper])  # the upper triangle is untouched


@pytest.mark.parametrize("threads", [1, 2])
def test_count_kernels_equal_dense_products(threads):
    """−diag(r) C diag(c)² Cᵀ diag(r) for counts C (repeats, an empty column, empty rows):
    the rows below q₂ (the [X y] rows) and the upper triangle are untouched; and L B."""
    rng = np.random.default_rng(4)
    q2, q1, tail = 40, 90, 3
    D = (rng.random((q2, q1)) < 0.1) * rng.integers(1, 4, (q2, q1)).astype(float)
    D[:, 7] = 0.0
    D[5, :] = 0.0
    C = sp.csc_matrix(D)
    C.sort_indices()
    col = np.repeat(np.arange(q1), np.diff(C.indptr))
    layout = block_cholesky.CountPattern(C, C.data, col)
    c, r = rng.uniform(0.2, 2.0, q1), rng.uniform(0.5, 1.5, q2)
    S = rng.normal(size=(q2 + tail, q2 + tail))
    before = S.copy()
    layout.negative_gram(c, r, S, threads)
    L = (C.toarray() * r[:, None]) * c[None, :]
    want = -L @ L.T
    lower = np.tril_indices(q2)
    np.testing.assert_allclose(S[:q2, :q2][lower], want[lower], rtol=1e-13, atol=1e-12)
    untouched = np.ones_like(S, dtype=bool)
    untouched[:q2, :q2][lower] = False
    np.testing.assert_array_equal(S[untouched], before[untouched])
    B = rng.normal(size=(q1, 4))
    out = np.full((q2, 4), np.nan)
    layout.times_dense(c, r, B, out, threads)  # the [X y] rows' product L B
    np.testing.assert_allclose(out, L @ B, rtol=1e-13, atol=1e-12)


@pytest.mark.parametrize("k", [1, 2, 3])
def test_gram_block_forms_equal_dense_quadratic_forms(k):
    levels, m = 40, 25
    L = _random_pattern(m, levels * k, 0.2, seed=k)
    rng = np.random.default_rng(k)
    M = rng.normal(size=(m, m))
    M = M + M.T
    out = np.zeros((levels, k, k))
    _gram.gram_block_forms(L.indptr.astype(np.int64), L.indices.astype(np.int32), L.data, M, out, 2)
    dense = L.toarray().reshape(m, levels, k)
    want = np.einsum("ila,ij,jlb->lab", dense, M, dense)
    np.testing.assert_allclose(out, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("threads", [1, 2])
def test_pattern_product_is_the_dense_product_on_the_pattern(threads):
    L = _random_pattern(30, 80, 0.15, seed=7)
    rng = np.random.default_rng(7)
    M = rng.normal(size=(30, 30))
    out = np.full(L.nnz, np.nan)
    _gram.pattern_product(
        L.indptr.astype(np.int64), L.indices.astype(np.int32), L.data, M, out, threads
    )
    cols = np.repeat(np.arange(80), np.diff(L.indptr))
    np.testing.assert_allclose(out, (M @ L.toarray())[L.indices, cols], rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("density", [0.0, 0.1, 1.0])
def test_sparse_times_dense_equals_dense_product(threads, density):
    L = _random_pattern(40, 70, density, seed=11)
    B = np.random.default_rng(11).normal(size=(70, 5))
    rows = sp.csc_matrix((np.arange(L.nnz, dtype=np.int64), L.indices, L.indptr), shape=L.shape)
    rows = rows.tocsr()
    out = np.full((40, 5), 7.0)
    _gram.sparse_times_dense(
        rows.indptr.astype(np.int64),
        rows.indices.astype(np.int32),
        rows.data.astype(np.int64),
        L.data,
        B,
        out,
        threads,
    )
    np.testing.assert_allclose(out, L.toarray() @ B, rtol=1e-13, atol=1e-12)
