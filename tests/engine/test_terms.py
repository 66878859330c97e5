"""Random-effects terms: Λ templates, θ layout and their block of Z."""

import numpy as np
import pandas as pd
import pytest

from sparselme.engine.terms import RandomEffectsTerm, sandwich


def make_term(covariance="unstructured", k=2, n=12, L=4, seed=0):
    rng = np.random.default_rng(seed)
    codes = np.arange(n) % L
    model = np.column_stack([np.ones(n)] + [rng.normal(size=n) for _ in range(k - 1)])
    return RandomEffectsTerm("g", tuple(f"c{i}" for i in range(k)), pd.Index(range(L)),
                             codes, model, covariance)


def test_unstructured_theta_fills_the_lower_triangle_by_column_like_lme4():
    t = make_term(k=3)
    assert t.n_theta == 6
    T = t.template(np.arange(1.0, 7.0))
    np.testing.assert_array_equal(T, [[1, 0, 0], [2, 4, 0], [3, 5, 6]])
    np.testing.assert_array_equal(t.lower_bounds, [0, -np.inf, -np.inf, 0, -np.inf, 0])
    np.testing.assert_array_equal(t.initial_theta, [1, 0, 0, 1, 0, 1])
    np.testing.assert_array_equal(t.theta_from_template(T), np.arange(1.0, 7.0))


@pytest.mark.parametrize("cov, n_theta", [("diagonal", 2), ("scalar", 1)])
def test_restricted_structures(cov, n_theta):
    t = make_term(cov)
    assert t.n_theta == n_theta
    T = t.template(np.array([0.5, 2.0][:n_theta]))
    assert np.count_nonzero(T - np.diag(np.diag(T))) == 0
    assert np.all(t.lower_bounds == 0)
    cov_matrix = t.covariance_matrix(np.array([0.5, 2.0][:n_theta]), sigma2=4.0)
    np.testing.assert_allclose(cov_matrix, 4.0 * T @ T.T)


def test_unknown_structure_is_rejected():
    with pytest.raises(ValueError, match="covariance structure"):
        make_term("toeplitz")


def test_z_block_is_level_major_and_matches_z_times():
    t = make_term(k=2, n=10, L=3)
    Z = t.z_matrix().toarray()
    assert Z.shape == (10, 6)
    for i in range(10):
        lvl = t.codes[i]
        np.testing.assert_array_equal(Z[i, 2 * lvl : 2 * lvl + 2], t.model[i])
        assert np.count_nonzero(Z[i]) <= 2
    b = np.random.default_rng(1).normal(size=6)
    np.testing.assert_allclose(t.z_times(b), Z @ b)


def test_sandwich_is_ta_transpose_b_tb():
    rng = np.random.default_rng(2)
    Ta, Tb = np.tril(rng.normal(size=(2, 2))), np.tril(rng.normal(size=(3, 3)))
    B = rng.normal(size=(5, 2, 3))
    np.testing.assert_allclose(sandwich(Ta, B, Tb), np.stack([Ta.T @ b @ Tb for b in B]))
    s = rng.normal(size=(4, 1, 1))
    np.testing.assert_allclose(sandwich(np.array([[2.0]]), s, np.array([[3.0]])), 6 * s)
