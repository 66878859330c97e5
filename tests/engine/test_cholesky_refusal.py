"""The sampled fill of the Schur complement and the refusal it allows before CHOLMOD's
analysis (`sparselme.engine.cholesky.choose_factorization`)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import sparselme as sl
from sparselme.engine import cholesky, limits, sparse_cholesky
from sparselme.engine.crossprod import chunk_crossproducts
from sparselme.engine.rows import TermRows
from sparselme.engine.terms import RandomEffectsTerm
from sparselme.errors import ProblemTooLargeError


def _design(codes: list[np.ndarray], nlevels: list[int], ks: list[int], seed: int = 0):
    """Terms, cross-products and dense W^½Z of random-intercept (k=1) or (1 + x | g)
    terms; random weights W keep the dense Schur complement free of exact cancellations."""
    rng = np.random.default_rng(seed)
    n = len(codes[0])
    rows, terms = [], []
    for i, (g, L, k) in enumerate(zip(codes, nlevels, ks)):
        model = np.column_stack([np.ones(n)] + [rng.normal(size=n)] * (k - 1))
        rows.append(TermRows.of(g, model, L))
        cols = ("(Intercept)", "x")[:k]
        terms.append(RandomEffectsTerm(f"g{i}", cols, pd.Index(range(L))))
    X = np.ones((n, 1))
    w = rng.uniform(0.5, 2.0, n)
    cp = chunk_crossproducts(rows, X, rng.normal(size=n), w)
    Z = np.hstack([r.z_matrix().toarray() for r in rows]) * np.sqrt(w)[:, None]
    return terms, cp, Z


def _dense_fill(Z: np.ndarray, q1: int, eliminated: np.ndarray | None = None) -> float:
    """Fill of the lower triangle of A₂₂ − A₂₁A₁₁⁻¹A₁₂ (A = ZᵀZ + I, first q1 columns
    leading), computed densely; ``eliminated``: the leading columns eliminated (all)."""
    A = Z.T @ Z + np.eye(Z.shape[1])
    e = np.arange(q1) if eliminated is None else eliminated
    S = A[q1:, q1:] - A[q1:, e] @ np.linalg.solve(A[np.ix_(e, e)], A[e, q1:])
    q2 = S.shape[0]
    return np.count_nonzero(np.tril(np.abs(S) > 1e-10)) / (q2 * (q2 + 1) / 2)


def test_sampled_fill_with_every_row_equals_the_dense_schur_complement():
    rng = np.random.default_rng(3)
    n = 400
    # leading (1|g0) with 150 levels; (1 + x|g1) with 30 and (1|g2) with 12: A₂₂ has the
    # g1-g2 cross blocks, and k=2 weights g1's entries
    codes = [rng.integers(0, 150, n), rng.integers(0, 30, n), rng.integers(0, 12, n)]
    terms, cp, Z = _design(codes, [150, 30, 12], [1, 2, 1])
    expected = _dense_fill(Z, 150)
    assert 0.05 < expected < 0.95  # neither empty nor full: the count is informative
    got = cholesky.sampled_schur_fill(terms, cp, sample=10_000, hubs=0.0)
    assert got == pytest.approx(expected, rel=1e-12)
    # a sample of 32 of the 42 levels estimates it
    assert cholesky.sampled_schur_fill(terms, cp, sample=32, hubs=0.0) == pytest.approx(
        expected, rel=0.25
    )


def test_the_fill_of_a_subset_of_the_rows_is_at_most_that_of_all_rows():
    """More rows only add level pairs: for the same sampled levels a subset's fill is a
    lower bound of all rows' (what `sparselme.streaming.passes.refuse_from_subset` uses)."""
    rng = np.random.default_rng(5)
    n, sizes, ks = 3000, [400, 100, 20], [1, 2, 1]
    codes = [rng.integers(0, L, n) for L in sizes]
    terms, cp, _ = _design(codes, sizes, ks)
    subsets = {
        "first rows": np.arange(n) < n // 4,
        "random rows": rng.random(n) < 0.3,
        "rows of a quarter of g0's levels": np.isin(codes[0], rng.choice(400, 100, False)),
    }
    for sample in (40, 10_000):  # a sample of the 120 later levels, and all of them
        full = cholesky.sampled_schur_fill(terms, cp, sample=sample, hubs=0.0)
        assert full > 0.2
        for name, rows in subsets.items():
            _, sub, _ = _design([c[rows] for c in codes], sizes, ks)
            got = cholesky.sampled_schur_fill(terms, sub, sample=sample, hubs=0.0)
            assert 0.01 < got < full, name
        # nested subsets: the first rows, then more of them
        fills = [
            cholesky.sampled_schur_fill(
                terms, _design([c[:m] for c in codes], sizes, ks)[1], sample=sample, hubs=0.0
            )
            for m in (300, 1000, 2000, n)
        ]
        assert fills == sorted(fills) and fills[-1] == full


def _hub_design(seed: int = 0):
    """(1|g0) with 150 levels over (1|g1) with 75, nested (g0's level l within g1's level
    l // 2) but for g0's level 0, which touches every level of g1 (the top 1%: one hub)."""
    a = np.random.default_rng(seed).integers(1, 150, 1000)
    codes = [np.concatenate([a, np.zeros(75, int)]), np.concatenate([a // 2, np.arange(75)])]
    return _design(codes, [150, 75], [1, 1], seed)


def test_a_hub_of_the_leading_term_is_left_out():
    terms, cp, Z = _hub_design()
    # eliminating the hub too fills the complement; without it, it stays near-diagonal
    assert cholesky.sampled_schur_fill(terms, cp, sample=10_000, hubs=0.0) == 1.0
    without_hub = _dense_fill(Z, 150, eliminated=np.arange(1, 150))
    got = cholesky.sampled_schur_fill(terms, cp, sample=10_000)  # top 1%: the one hub
    assert got == pytest.approx(without_hub, rel=1e-12)
    assert got < cholesky.DENSE_SCHUR_MIN_FILL


@pytest.fixture
def no_memory(monkeypatch):
    """Complements over 40 go to CHOLMOD, and nothing dense fits in memory."""
    monkeypatch.setattr(cholesky, "DENSE_SCHUR_MAX", 40)
    monkeypatch.setattr(limits, "available_memory", lambda: 1000.0)


def _crossed_frame(n: int = 3000, seed: int = 1) -> pd.DataFrame:
    """y ~ x + (1|a) + (1|b), a with 150 levels, b with 60: the complement fills in."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "y": rng.normal(size=n), "x": rng.normal(size=n),
        "a": pd.Categorical(rng.integers(0, 150, n)), "b": pd.Categorical(rng.integers(0, 60, n)),
    })


def test_dense_complement_is_refused_before_cholmod_analysis(no_memory, monkeypatch):
    def analyze(*args, **kwargs):
        raise AssertionError("CHOLMOD's analysis ran before the refusal")

    monkeypatch.setattr(sparse_cholesky.cholmod, "analyze", analyze)
    with pytest.raises(ProblemTooLargeError, match='estimator="moments"') as err:
        sl.LinearMixedModel.from_formula("y ~ x + (1|a) + (1|b)", _crossed_frame())
    message = str(err.value)
    assert "eliminating term 'a' first" in message and 'factorization="sparse"' in message
    assert err.value.estimate.order == 60 + 3  # b's levels and [1 x y]


def test_factorization_sparse_skips_the_dense_check(no_memory):
    rng = np.random.default_rng(1)
    codes = [rng.integers(0, 150, 3000), rng.integers(0, 60, 3000)]
    terms, cp, _ = _design(codes, [150, 60], [1, 1])
    with pytest.raises(ProblemTooLargeError):  # what "auto" does with it
        cholesky.choose_factorization(terms, cp)
    chol = cholesky.choose_factorization(terms, cp, method="sparse")
    assert isinstance(chol, cholesky.SparseCholesky)


def test_near_nested_clusters_go_on_to_cholmod(no_memory):
    rng = np.random.default_rng(4)
    a = rng.integers(0, 200, 2000)
    b = np.where(rng.random(2000) < 0.02, rng.integers(0, 100, 2000), a // 2)
    terms, cp, _ = _design([a, b], [200, 100], [1, 1])
    assert cholesky.sampled_schur_fill(terms, cp) < cholesky.DENSE_SCHUR_MIN_FILL
    assert isinstance(cholesky.choose_factorization(terms, cp), cholesky.SparseCholesky)


def test_a_single_hub_goes_on_to_cholmod(no_memory, monkeypatch):
    terms, cp, _ = _hub_design()
    # the cheap bound alone would have sent it to the dense check ...
    assert cholesky._schur_fill(terms, cp.cross, 150, 75) >= cholesky.DENSE_SCHUR_MIN_FILL
    measured = []
    sampled = cholesky.sampled_schur_fill

    def spy(*args, **kwargs):
        measured.append(sampled(*args, **kwargs))
        return measured[-1]

    monkeypatch.setattr(cholesky, "sampled_schur_fill", spy)
    assert isinstance(cholesky.choose_factorization(terms, cp), cholesky.SparseCholesky)
    # ... where the sampled fill, without the hub, was found sparse
    assert measured and measured[0] < cholesky.DENSE_SCHUR_MIN_FILL
