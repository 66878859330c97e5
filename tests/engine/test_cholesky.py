"""Both factorizations of A(θ) = ΛᵀZᵀWZΛ + I against the dense matrix."""

import numpy as np
import pandas as pd
import pytest
import scipy.linalg as la

from sparselme.engine import block_cholesky, cholesky
from sparselme.engine.crossprod import chunk_crossproducts
from sparselme.engine.rows import TermRows
from sparselme.engine.terms import RandomEffectsTerm


def _design(seed: int = 0, n: int = 300, scalar: bool = False, weighted: bool = True):
    """Crossed (1 + x | g1) with 25 levels, (1 | g2) with 8, (1 | g3) with 5; with
    ``scalar``, (1 | g1): every term scalar (the block form's scalar path). Without
    ``weighted``, unit weights: A₂₁ holds counts."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    lead = np.ones((n, 1)) if scalar else np.column_stack([np.ones(n), x])
    rows = [
        TermRows.of(rng.integers(0, 25, n), lead, 25),
        TermRows.of(rng.integers(0, 8, n), np.ones((n, 1)), 8),
        TermRows.of(rng.integers(0, 5, n), np.ones((n, 1)), 5),
    ]
    lead_cols = ("1",) if scalar else ("(Intercept)", "x")
    terms = [
        RandomEffectsTerm(f"g{i}", cols, pd.Index(range(r.nlevels)))
        for i, (r, cols) in enumerate(zip(rows, [lead_cols, ("1",), ("1",)]))
    ]
    X = np.column_stack([np.ones(n), rng.normal(size=n)])
    w = rng.uniform(0.5, 2.0, n) if weighted else np.ones(n)
    cp = chunk_crossproducts(rows, X, rng.normal(size=n), w)
    theta = [np.array([0.7] if scalar else [0.8, -0.3, 0.5]), np.array([1.3]), np.array([0.4])]
    T = [t.template(th) for t, th in zip(terms, theta)]
    Z = np.hstack([r.z_matrix().toarray() for r in rows])
    Lam = la.block_diag(*[np.kron(np.eye(t.nlevels), Ts) for t, Ts in zip(terms, T)])
    A = Lam.T @ (Z.T * w) @ Z @ Lam + np.eye(Z.shape[1])
    return terms, cp, T, A


FACTORS = [
    ("sparse", lambda terms, cp: cholesky.SparseCholesky(terms, cp)),
    ("block", lambda terms, cp: cholesky.BlockCholesky(terms, cp)),
]


@pytest.mark.parametrize("scalar", [False, True])
@pytest.mark.parametrize("dense_cross", [False, True])
@pytest.mark.parametrize("name,make", FACTORS)
def test_factor_matches_the_dense_matrix(name, make, dense_cross, scalar, monkeypatch):
    monkeypatch.setattr(block_cholesky, "DENSE_CROSS_FLOPS_PER_PAIR", 1e12 if dense_cross else 0.0)
    terms, cp, T, A = _design(scalar=scalar)
    chol = make(terms, cp)
    chol.update(T)
    assert chol.logdet() == pytest.approx(np.linalg.slogdet(A)[1], rel=1e-12)
    B = np.random.default_rng(1).normal(size=(A.shape[0], 3))
    # forward then backward solves A x = b: L⁻ᵀ L⁻¹ with the permutation folded in
    x = chol.backward(chol.forward(B))
    np.testing.assert_allclose(A @ x, B, atol=1e-10)
    # forward alone is a factor: ‖L⁻¹b‖² = bᵀA⁻¹b
    fb = chol.forward(B[:, 0])
    assert fb @ fb == pytest.approx(B[:, 0] @ np.linalg.solve(A, B[:, 0]), rel=1e-10)
    Ainv = np.linalg.inv(A)
    at = 0
    for t, blocks in zip(terms, chol.inverse_diagonal_blocks()):
        for lev in range(t.nlevels):
            sl = slice(at + lev * t.k, at + (lev + 1) * t.k)
            np.testing.assert_allclose(blocks[lev], Ainv[sl, sl], rtol=1e-9, atol=1e-12)
        at += t.q


@pytest.mark.parametrize("weighted", [False, True])
def test_count_kernel_gives_the_general_kernels_factor(weighted, monkeypatch):
    """Unweighted scalar indicator terms (A₂₁ = counts, here with repeated cells) take the
    count kernel; its factor, [X y] block included, its solves and inverse blocks (L₂₁'s
    values formed when first needed) are the general kernel's."""
    monkeypatch.setattr(block_cholesky, "DENSE_CROSS_FLOPS_PER_PAIR", 0.0)
    monkeypatch.setattr(block_cholesky.CountPattern, "MAX_PAIR_GROWTH", 10.0)
    terms, cp, T, A = _design(scalar=True, weighted=weighted)
    rng = np.random.default_rng(5)
    q, r = A.shape[0], 3
    xy = (rng.normal(size=(q, r)), np.eye(r) * 50.0)
    counted = cholesky.BlockCholesky(terms, cp)
    assert (counted._counts is not None) == (not weighted)
    if not weighted:
        assert len(counted._counts._rep_rows) > 0  # cells with more than one row
    counted.update(T, xy)
    assert counted.logdet() == pytest.approx(np.linalg.slogdet(A)[1], rel=1e-12)
    monkeypatch.setattr(block_cholesky.CountPattern, "of", classmethod(lambda *a: None))
    general = cholesky.BlockCholesky(terms, cp)
    general.update(T, xy)
    assert general._counts is None
    np.testing.assert_allclose(np.triu(counted._U), np.triu(general._U), rtol=1e-12, atol=1e-12)
    # the count path forms L₂₁'s values only when a solve needs them
    assert (counted._pending is not None) == (not weighted)
    B = rng.normal(size=(q, 2))
    np.testing.assert_allclose(counted.forward(B), general.forward(B), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(counted.backward(B), general.backward(B), rtol=1e-12, atol=1e-12)
    assert counted._pending is None
    for a, b in zip(counted.inverse_diagonal_blocks(), general.inverse_diagonal_blocks()):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


def test_count_layout_only_where_it_pays():
    """Non-integer values, a Schur block beyond 16-bit rows and repeats that add many
    pairs keep the general kernel."""
    import scipy.sparse as sp

    L = sp.csc_matrix(np.array([[1.0, 0.0], [2.0, 1.0], [0.0, 3.0]]))
    col = np.repeat(np.arange(2), np.diff(L.indptr))
    pairs = 6  # two columns of two entries: 2·3/2 each
    assert block_cholesky.CountPattern.of(L, L.data, col, pairs) is None  # 1+2, 1+3: growth
    assert block_cholesky.CountPattern.of(L, L.data, col, 100) is not None
    assert block_cholesky.CountPattern.of(L, L.data + 0.5, col, 100) is None
    tall = sp.csc_matrix(([1.0], ([70_000], [0])), shape=(70_001, 1))
    assert block_cholesky.CountPattern.of(tall, tall.data, np.zeros(1, int), 1) is None


def test_choose_factorization_picks_the_block_form_for_a_small_complement():
    terms, cp, _, _ = _design()
    assert isinstance(cholesky.choose_factorization(terms, cp), cholesky.BlockCholesky)
    assert isinstance(
        cholesky.choose_factorization(terms, cp, method="sparse"), cholesky.SparseCholesky
    )
    with pytest.raises(ValueError, match="factorization"):
        cholesky.choose_factorization(terms, cp, method="dense")


@pytest.mark.parametrize("k", [1, 2, 3])
def test_batched_cholesky_and_inverse(k):
    rng = np.random.default_rng(k)
    M = rng.normal(size=(6, k, k))
    A = M @ M.transpose(0, 2, 1) + k * np.eye(k)
    L = cholesky.batched_cholesky(A)
    np.testing.assert_allclose(L @ L.transpose(0, 2, 1), A, rtol=1e-12)
    assert np.allclose(np.triu(L, 1), 0)
    np.testing.assert_allclose(
        cholesky.batched_lower_inverse(L) @ L, np.broadcast_to(np.eye(k), L.shape), atol=1e-12
    )


@pytest.mark.parametrize("order", ["C", "F"])
def test_symmetric_from_upper_in_blocks(order):
    rng = np.random.default_rng(0)
    full = rng.normal(size=(50, 50))
    full = full + full.T
    M = np.array(np.triu(full) + np.tril(rng.normal(size=(50, 50)), -1), order=order)
    out = block_cholesky.symmetric_from_upper(M, block=16)  # several blocks and a partial one
    assert out.flags.c_contiguous
    np.testing.assert_array_equal(out, full)


@pytest.mark.parametrize("dense_cross", [False, True])
@pytest.mark.parametrize("name,make", FACTORS)
def test_inverse_on_the_pattern_of_a_matches_the_dense_inverse(
    name, make, dense_cross, monkeypatch
):
    monkeypatch.setattr(block_cholesky, "DENSE_CROSS_FLOPS_PER_PAIR", 1e12 if dense_cross else 0.0)
    terms, cp, T, A = _design()
    chol = make(terms, cp)
    chol.update(T)
    diag, cross = chol.inverse_on_pattern()
    Ainv = np.linalg.inv(A)
    off = np.concatenate([[0], np.cumsum([t.q for t in terms])])
    for s, t in enumerate(terms):
        for lev in range(t.nlevels):
            at = slice(off[s] + lev * t.k, off[s] + (lev + 1) * t.k)
            np.testing.assert_allclose(diag[s][lev], Ainv[at, at], rtol=1e-9, atol=1e-12)
    assert set(cross) == set(cp.cross)
    for (s, t), blk in cp.cross.items():
        ks, kt = terms[s].k, terms[t].k
        for i, (r, c) in enumerate(zip(blk.rows, blk.cols)):
            rows = slice(off[s] + r * ks, off[s] + (r + 1) * ks)
            cols = slice(off[t] + c * kt, off[t] + (c + 1) * kt)
            np.testing.assert_allclose(cross[(s, t)][i], Ainv[rows, cols], rtol=1e-9, atol=1e-12)
