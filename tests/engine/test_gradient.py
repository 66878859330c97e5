"""The analytic gradient of the profiled criterion against finite differences and a
dense brute force."""

from __future__ import annotations

import numpy as np
import pytest
from dense_reference import dense_gradient
from random_frames import random_frame

import sparselme as sl
from sparselme.engine.gradient import gram_times, profiled_gradient

CASES = [
    ("y ~ x + (1|g1)", [0.8]),
    ("y ~ x + (x|g1)", [0.9, -0.4, 0.6]),
    ("y ~ x + (1|g1) + (1|g2)", [0.7, 1.3]),
    ("y ~ x + (x|g1) + (1|g2)", [0.8, 0.3, 0.5, 1.1]),
    ("y ~ x + (x||g1) + (1|g2) + (1|g3)", [0.6, 0.4, 0.9, 0.5]),
    ("y ~ 0 + x + (1|g1:g2)", [1.2]),
    ("y ~ x + (x||g1) + (1|g2)", [0.6, 0.0, 0.9]),  # on the boundary: no T⁻¹ is needed
]


def _central_differences(f, x: np.ndarray, h: float = 1e-5) -> np.ndarray:
    out = []
    for e in np.eye(len(x)):
        out.append((f(x + h * e) - f(x - h * e)) / (2 * h))
    return np.array(out)


@pytest.mark.parametrize("reml", [True, False])
@pytest.mark.parametrize("factorization", ["sparse", "block"])
@pytest.mark.parametrize("formula,theta", CASES)
def test_gradient_equals_dense_derivatives_and_finite_differences(
    formula, theta, factorization, reml
):
    rng = np.random.default_rng(len(formula))
    data = random_frame(rng, 70, 6, 4)
    weights = rng.uniform(0.5, 2.0, 70)
    model = sl.LinearMixedModel.from_formula(
        formula, data, weights=weights, factorization=factorization
    )
    theta = np.asarray(theta)
    grad = profiled_gradient(model.pls, theta, reml=reml)
    np.testing.assert_allclose(grad, dense_gradient(model, theta, reml), rtol=1e-7, atol=1e-8)
    numeric = _central_differences(lambda t: model.pls.deviance(t, reml), theta)
    np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dense_cross", [False, True])
def test_gradient_on_both_outer_product_strategies(dense_cross, monkeypatch):
    import sparselme.engine.cholesky as chol

    monkeypatch.setattr(chol, "DENSE_CROSS_FLOPS_PER_PAIR", 1e12 if dense_cross else 0.0)
    rng = np.random.default_rng(3)
    model = sl.LinearMixedModel.from_formula(
        "y ~ x + (x|g1) + (1|g2) + (1|g3)", random_frame(rng, 90, 7, 5), factorization="block"
    )
    assert model.pls.chol.dense_cross is dense_cross
    theta = np.array([0.8, 0.2, 0.5, 1.1, 0.6])
    np.testing.assert_allclose(
        profiled_gradient(model.pls, theta), dense_gradient(model, theta, True), rtol=1e-7
    )


def test_gradient_with_a_given_residual_variance():
    rng = np.random.default_rng(4)
    model = sl.LinearMixedModel.from_formula("y ~ x + (x|g1) + (1|g2)", random_frame(rng, 60, 5, 4))
    theta, sigma2 = np.array([0.7, 0.2, 0.4, 0.9]), 2.5

    def criterion(t):
        return model.deviance_of(model.pls.solve(t), reml=True, sigma2=sigma2)

    np.testing.assert_allclose(
        profiled_gradient(model.pls, theta, reml=True, sigma2=sigma2),
        _central_differences(criterion, theta),
        rtol=1e-5,
    )


def test_gradient_vanishes_at_the_optimum():
    fit = sl.lmer("Reaction ~ Days + (Days|Subject)", sl.datasets.load("sleepstudy"))
    grad = profiled_gradient(fit.model.pls, fit.optsum.final)
    assert np.max(np.abs(grad)) < 1e-2  # BOBYQA's stopping rule leaves θ good to ~1e-4


def test_gram_times_equals_the_dense_product():
    rng = np.random.default_rng(5)
    model = sl.LinearMixedModel.from_formula("y ~ x + (x|g1) + (1|g2)", random_frame(rng, 50, 5, 4))
    from dense_reference import dense_z

    Z = dense_z(model)
    v = rng.normal(size=(Z.shape[1], 2))
    o = model.pls.b_offsets
    blocks = [
        v[o[i] : o[i + 1]].reshape(t.nlevels, t.k, 2) for i, t in enumerate(model.design.terms)
    ]
    got = np.concatenate([g.reshape(-1, 2) for g in gram_times(model.cp, blocks)])
    np.testing.assert_allclose(got, Z.T @ Z @ v, rtol=1e-12)
