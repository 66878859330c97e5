"""Random-effects terms: structure, Λ templates, θ layout."""

import numpy as np
import pandas as pd
import pytest

from sparselme.engine.covariance import Diagonal, Unstructured
from sparselme.engine.terms import RandomEffectsTerm, sandwich


def make_term(covariance="unstructured", k=2, L=4):
    return RandomEffectsTerm("g", tuple(f"c{i}" for i in range(k)), pd.Index(range(L)), covariance)


def test_sizes_and_parametrization():
    t = make_term(k=3, L=5)
    assert (t.k, t.nlevels, t.q, t.n_theta) == (3, 5, 15, 6)
    assert isinstance(t.covariance, Unstructured)
    d = t.with_covariance("diagonal")
    assert isinstance(d.covariance, Diagonal) and d.n_theta == 3 and d.name == "g"
    assert t.covariance.kind == "unstructured"  # the original is unchanged


def test_unstructured_theta_fills_the_lower_triangle_by_column_like_lme4():
    t = make_term(k=3)
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


def test_label_names_the_columns_of_terms_built_from_arrays():
    assert make_term(k=1).label() == "(c0 | g)"
    t = RandomEffectsTerm("g", ("(Intercept)", "x"), pd.Index([1, 2]), lhs="1 + x")
    assert t.label() == "(1 + x | g)"


def test_sandwich_is_ta_transpose_b_tb():
    rng = np.random.default_rng(2)
    Ta, Tb = np.tril(rng.normal(size=(2, 2))), np.tril(rng.normal(size=(3, 3)))
    B = rng.normal(size=(5, 2, 3))
    np.testing.assert_allclose(sandwich(Ta, B, Tb), np.stack([Ta.T @ b @ Tb for b in B]))
    s = rng.normal(size=(4, 1, 1))
    np.testing.assert_allclose(sandwich(np.array([[2.0]]), s, np.array([[3.0]])), 6 * s)
