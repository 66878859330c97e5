"""Moment statistics and their expectations against brute-force O(N²) computations."""

import numpy as np
import pytest

from sparselme.errors import IdentifiabilityError
from sparselme.moments import in_memory, layout_for
from sparselme.moments.components import estimate

from .dense import Dense, pair_ustat, small_design

CASES = [
    # (seed, levels, p_extra, repeat_cells)
    (1, (15, 9), 2, True),
    (2, (30, 6), 1, False),
    (3, (8, 7, 5), 2, True),
    (4, (12, 10), 0, True),
]


def _fit(cols, factors, x, chunk_rows=None, interactions=None, budget=1 << 20):
    lay = layout_for(cols, factors, x=x, interactions=interactions)
    counts, eq = estimate(in_memory(cols, chunk_rows), lay, budget)
    return lay, counts, eq


@pytest.mark.parametrize("seed, levels, p_extra, repeat", CASES)
def test_ustats_and_expectations_equal_brute_force(seed, levels, p_extra, repeat):
    cols = small_design(seed, n=110, levels=levels, p_extra=p_extra, repeat_cells=repeat,
                        sigma2=(1.0,) * (len(levels) + 1))
    factors = [f"f{k}" for k in range(len(levels))]
    x = [f"x{j + 1}" for j in range(p_extra)]
    lay, counts, eq = _fit(cols, factors, x)
    d = Dense(cols, factors, list(lay.levels), x)
    r = d.M @ d.y  # OLS residuals
    same = [(Z @ Z.T) > 0 for Z in d.Z] + [np.ones((d.n, d.n), dtype=bool)]
    brute = [pair_ustat(r, s) for s in same]
    np.testing.assert_allclose(eq.U, brute, rtol=1e-10)
    np.testing.assert_allclose(eq.C, d.expectation_matrix(), rtol=1e-9, atol=1e-8)
    # the quadratic forms themselves: U_f = yᵀ M A_f M y
    np.testing.assert_allclose(eq.U, [d.y @ d.M @ A @ d.M @ d.y for A in d.A], rtol=1e-9)


def test_repeated_cells_enter_the_expectation():
    """With repeated (a, b) cells, T_ab > N and C uses it (checked against dense traces)."""
    cols = small_design(5, n=150, levels=(6, 5), p_extra=1)
    lay, counts, eq = _fit(cols, ["f0", "f1"], ["x1"])
    assert counts.T[0, 1] > counts.N
    d = Dense(cols, ["f0", "f1"], list(lay.levels), ["x1"])
    np.testing.assert_allclose(eq.C, d.expectation_matrix(), rtol=1e-9, atol=1e-8)
    Z0, Z1 = d.Z
    assert counts.T[0, 1] == pytest.approx(np.sum((Z0.T @ Z1) ** 2))


def test_interaction_factor_and_nesting():
    """(1|a) + (1|b) + (1|a:b): the cell factor is nested in both; declared or detected."""
    cols = small_design(6, n=160, levels=(7, 6), p_extra=1)
    cell = cols["f0"] * 6 + cols["f1"]
    _, cols["ab"] = np.unique(cell, return_inverse=True)
    factors = ["f0", "f1", "ab"]
    d_lay, _, eq_declared = _fit(cols, factors, ["x1"], interactions={"ab": ("f0", "f1")})
    _, counts, eq_detected = _fit(cols, factors, ["x1"])
    assert counts.nested[0, 2] and counts.nested[1, 2] and not counts.nested[0, 1]
    np.testing.assert_allclose(eq_declared.C, eq_detected.C, rtol=1e-12)
    d = Dense(cols, factors, list(d_lay.levels), ["x1"])
    np.testing.assert_allclose(eq_detected.C, d.expectation_matrix(), rtol=1e-9, atol=1e-8)


def test_declared_interaction_must_be_nested():
    cols = small_design(7, n=80, levels=(6, 5, 4), p_extra=0)
    with pytest.raises(IdentifiabilityError, match="interaction"):
        _fit(cols, ["f0", "f1", "f2"], [], interactions={"f2": ("f0", "f1")})


def test_moment_estimates_are_unbiased_over_replicates():
    """Mean of σ̂² over simulated responses on a fixed design approaches σ²."""
    base = small_design(8, n=200, levels=(20, 8), p_extra=2)
    sigma2 = np.array([1.0, 0.5, 1.0])
    lay = layout_for(base, ["f0", "f1"], x=["x1", "x2"])
    d = Dense(base, ["f0", "f1"], list(lay.levels), ["x1", "x2"])
    Lchol = np.linalg.cholesky(d.V(sigma2))
    rng = np.random.default_rng(0)
    est = []
    for _ in range(400):
        cols = dict(base, y=d.X @ [1.0, 2.0, -1.0] + Lchol @ rng.standard_normal(d.n))
        est.append(estimate(in_memory(cols), lay, 1 << 20)[1].solve())
    est = np.array(est)
    se = est.std(axis=0) / np.sqrt(len(est))
    assert np.all(np.abs(est.mean(axis=0) - sigma2) < 4 * se)


def test_chunks_give_the_same_statistics():
    cols = small_design(9, n=130, levels=(11, 7), p_extra=2)
    _, _, one = _fit(cols, ["f0", "f1"], ["x1", "x2"])
    for rows in (1, 7, 64):
        _, _, many = _fit(cols, ["f0", "f1"], ["x1", "x2"], chunk_rows=rows)
        np.testing.assert_allclose(many.U, one.U, rtol=1e-9)
        np.testing.assert_allclose(many.C, one.C, rtol=1e-9)


def test_rank_deficient_x_and_degenerate_factor_raise():
    cols = small_design(10, n=60, levels=(6, 5), p_extra=1)
    cols["x2"] = 2.0 * cols["x1"]
    with pytest.raises(IdentifiabilityError, match="linearly dependent"):
        _fit(cols, ["f0", "f1"], ["x1", "x2"])
    cols = small_design(10, n=60, levels=(6, 5), p_extra=0)
    cols["one"] = np.zeros(60, dtype=np.int64)  # a factor with a single level
    _, _, eq = _fit(cols, ["f0", "one"], [])
    with pytest.raises(IdentifiabilityError, match="singular"):
        eq.solve()
