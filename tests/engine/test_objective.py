"""The sparse penalized least-squares objective against a dense brute force."""

from __future__ import annotations

import numpy as np
import pytest
from dense_reference import dense_deviance
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from random_frames import random_frame

import sparselme as sl

FORMULAS = [
    "y ~ x + (1|g1)",
    "y ~ x + (x|g1)",
    "y ~ x + (1|g1) + (1|g2)",
    "y ~ x + (1|g1) + (1|g2) + (1|g3)",
    "y ~ x + (1|g1/g3)",
    "y ~ x + (x||g1) + (1|g2)",
    "y ~ x + (x|g1) + (1|g2)",
    "y ~ 0 + x + (1|g1:g2)",
    "y ~ f + (0 + f|g1)",
]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**31 - 1),
    formula=st.sampled_from(FORMULAS),
    n=st.integers(30, 70),
    n1=st.integers(3, 7),
    n2=st.integers(2, 5),
    weighted=st.booleans(),
    reml=st.booleans(),
    factorization=st.sampled_from(["sparse", "block"]),
)
def test_sparse_objective_equals_dense_brute_force(
    seed, formula, n, n1, n2, weighted, reml, factorization
):
    rng = np.random.default_rng(seed)
    data = random_frame(rng, n, n1, n2)
    weights = rng.uniform(0.3, 3.0, n) if weighted else None
    model = sl.LinearMixedModel.from_formula(
        formula, data, weights=weights, factorization=factorization
    )
    lower = model.lower_bounds
    theta = np.where(lower == 0, rng.uniform(0.0, 2.0, len(lower)), rng.uniform(-1, 1, len(lower)))
    sparse = model.objective(theta, reml=reml)
    dense = dense_deviance(model, theta, reml)
    assert sparse == pytest.approx(dense, rel=1e-8)


def test_fitted_theta_minimizes_the_dense_criterion_too():
    rng = np.random.default_rng(7)
    data = random_frame(rng, 80, 6, 4)
    model = sl.LinearMixedModel.from_formula("y ~ x + (x|g1) + (1|g2)", data)
    res = model.fit(REML=False)
    best = dense_deviance(model, res.theta, reml=False)
    for _ in range(20):
        step = rng.normal(scale=1e-2, size=len(res.theta))
        trial = np.maximum(res.theta + step, model.lower_bounds)
        assert dense_deviance(model, trial, reml=False) >= best - 1e-7


@pytest.mark.parametrize("factorization", ["sparse", "block"])
def test_solution_satisfies_the_penalized_normal_equations(factorization):
    rng = np.random.default_rng(3)
    data = random_frame(rng, 60, 5, 3)
    model = sl.LinearMixedModel.from_formula(
        "y ~ x + (x|g1) + (1|g2)", data, factorization=factorization
    )
    theta = np.array([0.8, 0.3, 0.5, 1.2])
    sol = model.pls.solve(theta)
    from dense_reference import dense_lambda, dense_z

    ZL = dense_z(model) @ dense_lambda(model, theta)
    X, y = model.design.X, model.design.y
    # [ΛᵀZᵀZΛ + I, ΛᵀZᵀX; XᵀZΛ, XᵀX] [u; β] = [ΛᵀZᵀy; Xᵀy]
    A = np.block([[ZL.T @ ZL + np.eye(ZL.shape[1]), ZL.T @ X], [X.T @ ZL, X.T @ X]])
    rhs = np.concatenate([ZL.T @ y, X.T @ y])
    np.testing.assert_allclose(
        np.concatenate([sol.u, sol.beta]), np.linalg.solve(A, rhs), rtol=1e-8, atol=1e-10
    )
    r = y - X @ sol.beta - ZL @ sol.u
    assert sol.pwrss == pytest.approx(r @ r + sol.u @ sol.u, rel=1e-9)


@pytest.mark.parametrize("factorization", ["sparse", "block"])
def test_the_factor_is_kept_for_the_same_theta_and_dropped_after_a_failure(
    factorization, monkeypatch
):
    rng = np.random.default_rng(6)
    data = random_frame(rng, 60, 5, 3)
    model = sl.LinearMixedModel.from_formula(
        "y ~ x + (x|g1) + (1|g2)", data, factorization=factorization
    )
    pls, theta = model.pls, np.array([0.8, 0.3, 0.5, 1.2])
    fresh = pls.solve(theta)
    updates = []
    real_update = pls.chol.update
    monkeypatch.setattr(pls.chol, "update", lambda *a: updates.append(1) or real_update(*a))
    pls.deviance(theta + 0.1)
    pls.deviance(theta)
    again = pls.solve(theta)  # the factor already holds θ: no second update
    assert len(updates) == 2
    np.testing.assert_array_equal(again.u, fresh.u)
    assert again.logdet_L == fresh.logdet_L

    def failing(*args):
        real_update(*args)
        raise np.linalg.LinAlgError("not positive definite")

    monkeypatch.setattr(pls.chol, "update", failing)
    with pytest.raises(sl.errors.NumericalError, match="rescale"):  # never numpy's own
        pls.solve(theta + 0.2)
    assert pls.chol.theta is None  # a failed update leaves no θ behind
    monkeypatch.setattr(pls.chol, "update", real_update)
    np.testing.assert_allclose(pls.solve(theta).u, fresh.u, rtol=1e-12)


@pytest.mark.parametrize("factorization", ["sparse", "block"])
@pytest.mark.parametrize(
    "formula", ["y ~ x + (x|g1) + (1|g2)", "y ~ x + (1|g2) + (x|g1:g3)", "y ~ x + (x|g1)"]
)
def test_conditional_variances_equal_the_dense_inverse(factorization, formula):
    rng = np.random.default_rng(5)
    data = random_frame(rng, 60, 5, 4)
    model = sl.LinearMixedModel.from_formula(formula, data, factorization=factorization)
    theta = np.linspace(0.9, 0.4, len(model.lower_bounds))
    from dense_reference import dense_lambda, dense_z

    ZL = dense_z(model) @ dense_lambda(model, theta)
    inv = np.linalg.inv(ZL.T @ ZL + np.eye(ZL.shape[1]))
    blocks = model.pls.inverse_diagonal_blocks(theta)
    at = 0
    for t, B in zip(model.design.terms, blocks):
        for lvl in range(t.nlevels):
            sl_ = slice(at + lvl * t.k, at + (lvl + 1) * t.k)
            np.testing.assert_allclose(B[lvl], inv[sl_, sl_], rtol=1e-9, atol=1e-12)
        at += t.q


@pytest.mark.parametrize("dense_cross", [False, True])
def test_both_outer_product_strategies_agree_with_the_dense_likelihood(dense_cross, monkeypatch):
    import sparselme.engine.block_cholesky as chol

    monkeypatch.setattr(chol, "DENSE_CROSS_FLOPS_PER_PAIR", 1e12 if dense_cross else 0.0)
    rng = np.random.default_rng(11)
    data = random_frame(rng, 90, 7, 5)
    model = sl.LinearMixedModel.from_formula(
        "y ~ x + (x|g1) + (1|g2) + (1|g3)", data, factorization="block"
    )
    assert model.pls.chol.dense_cross is dense_cross
    theta = np.array([0.8, 0.2, 0.5, 1.1, 0.6])
    for reml in (True, False):
        assert model.objective(theta, reml) == pytest.approx(
            dense_deviance(model, theta, reml), rel=1e-9
        )
    from dense_reference import dense_lambda, dense_z

    ZL = dense_z(model) @ dense_lambda(model, theta)
    inv = np.linalg.inv(ZL.T @ ZL + np.eye(ZL.shape[1]))
    blocks = model.pls.inverse_diagonal_blocks(theta)
    np.testing.assert_allclose(blocks[0][2], inv[4:6, 4:6], rtol=1e-9)
    sol = model.pls.solve(theta)
    X, y = model.design.X, model.design.y
    A = np.block([[ZL.T @ ZL + np.eye(ZL.shape[1]), ZL.T @ X], [X.T @ ZL, X.T @ X]])
    np.testing.assert_allclose(
        np.concatenate([sol.u, sol.beta]),
        np.linalg.solve(A, np.concatenate([ZL.T @ y, X.T @ y])),
        rtol=1e-8,
        atol=1e-10,
    )


def test_selected_inversion_path_gives_the_same_conditional_variances(monkeypatch):
    import sparselme.engine.sparse_cholesky as chol

    rng = np.random.default_rng(21)
    data = random_frame(rng, 80, 6, 5)
    model = sl.LinearMixedModel.from_formula(
        "y ~ x + (x|g1) + (1|g2)", data, factorization="sparse"
    )
    theta = np.array([0.7, 0.1, 0.4, 0.9])
    batched = model.pls.inverse_diagonal_blocks(theta)
    monkeypatch.setattr(chol, "SELECTED_INVERSION_MIN_Q", 0)
    selected = model.pls.inverse_diagonal_blocks(theta)
    for a, b in zip(batched, selected):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("factorization", ["sparse", "block"])
def test_a_factor_shared_with_another_response_is_refactored_for_each(factorization):
    # the factor's last block is [X y]: a twin for another response shares the object
    # but not its content, so alternating between the two never reads the other's r²
    rng = np.random.default_rng(8)
    data = random_frame(rng, 60, 5, 3)
    model = sl.LinearMixedModel.from_formula(
        "y ~ x + (1|g1) + (1|g2)", data, factorization=factorization
    )
    other = model.with_response(rng.normal(size=60) * 2 + 5)
    assert other.pls.chol is model.pls.chol
    theta = np.array([0.7, 1.2])
    want = [dense_deviance(m, theta, True) for m in (model, other)]
    for _ in range(2):
        for m, value in zip((model, other), want):
            assert m.objective(theta, True) == pytest.approx(value, rel=1e-10)
            assert m.pls.solve(theta).pwrss == pytest.approx(m.pls.solve(theta).pwrss)


@pytest.mark.parametrize("factorization", ["sparse", "block"])
def test_an_exactly_fitted_response_has_no_finite_profiled_deviance(factorization):
    # y in the span of X (the input checks refuse such data; a refit can reach it): r² = 0
    # is the factor's last pivot, which LAPACK reports as a failure; the criterion is
    # +inf there (σ̂² = 0), not an error
    rng = np.random.default_rng(9)
    data = random_frame(rng, 40, 4, 3)
    model = sl.LinearMixedModel.from_formula(
        "y ~ x + (1|g1) + (1|g2)", data, factorization=factorization
    ).with_response(2.0 + 3.0 * data["x"].to_numpy())
    theta = np.array([0.5, 0.5])
    assert model.pls.deviance(theta) == np.inf
    sol = model.pls.solve(theta)
    assert sol.pwrss == pytest.approx(0.0, abs=1e-18)
    np.testing.assert_allclose(sol.beta, [2.0, 3.0], rtol=1e-9)
    np.testing.assert_allclose(sol.u, 0.0, atol=1e-9)
