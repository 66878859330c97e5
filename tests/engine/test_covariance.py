"""Covariance parametrizations: θ ↔ T, covariances, natural parameters, linear basis."""

import numpy as np
import pytest

from sparselme.engine.covariance import Diagonal, Scalar, Unstructured
from sparselme.engine.parametrizations import make_covariance

STRUCTURES = [Unstructured(3), Diagonal(3), Scalar(3), Unstructured(1)]


def _theta(cov, seed=0):
    rng = np.random.default_rng(seed)
    th = rng.normal(size=cov.n_theta)
    return np.where(cov.lower == 0, np.abs(th) + 0.1, th)


@pytest.mark.parametrize("cov", STRUCTURES, ids=lambda c: f"{c.kind}{c.k}")
def test_theta_template_covariance_round_trip(cov):
    theta = _theta(cov)
    T = cov.template(theta)
    assert T.shape == (cov.k, cov.k)
    np.testing.assert_allclose(cov.theta_from_template(T), theta)
    C = cov.covariance(theta, sigma2=2.5)
    np.testing.assert_allclose(C, 2.5 * T @ T.T)
    back = cov.theta_from_covariance(C / 2.5)
    np.testing.assert_allclose(cov.covariance(back), C / 2.5, atol=1e-12)
    assert cov.initial.shape == cov.lower.shape == cov.upper.shape == (cov.n_theta,)
    np.testing.assert_allclose(cov.template(cov.initial), np.eye(cov.k))


@pytest.mark.parametrize("cov", STRUCTURES, ids=lambda c: f"{c.kind}{c.k}")
def test_natural_parameters_are_sds_and_correlations(cov):
    theta, sigma = _theta(cov, 1), 1.7
    nat = cov.to_natural(theta, sigma)
    C = cov.covariance(theta, sigma**2)
    sd = np.sqrt(np.diag(C))
    for (kind, i, j), v in zip(cov.natural_parameters(), nat):
        want = sd[i] if kind == "sd" else C[i, j] / (sd[i] * sd[j])
        assert v == pytest.approx(want)
    np.testing.assert_allclose(cov.covariance(cov.from_natural(nat, sigma), sigma**2), C)
    lower, upper = cov.natural_bounds()
    assert np.all(lower <= nat) and np.all(nat <= upper)
    labels = cov.natural_labels(("a", "b", "c")[: cov.k])
    assert len(labels) == cov.n_theta and labels[0].startswith("sd_")


@pytest.mark.parametrize("cov", STRUCTURES, ids=lambda c: f"{c.kind}{c.k}")
def test_linear_basis_spans_the_covariance(cov):
    theta = _theta(cov, 2)
    C = cov.covariance(theta)
    coef = [C[i, j] for _, i, j in cov.natural_parameters()]
    np.testing.assert_allclose(sum(c * E for c, E in zip(coef, cov.linear_basis())), C)


def test_invalid_correlations_give_none():
    cov = Unstructured(2)
    assert cov.from_natural(np.array([1.0, 1.5, 1.0]), 1.0) is None
    assert Diagonal(2).theta_from_covariance(np.diag([1.0, -1.0])) is None


def test_make_covariance():
    assert isinstance(make_covariance("diagonal", 2), Diagonal)
    assert make_covariance(Scalar(2), 2) == Scalar(2)
    with pytest.raises(ValueError, match="for 2 columns used on 3"):
        make_covariance(Scalar(2), 3)
    assert Unstructured(2).diagonal() == Diagonal(2) and Scalar(2).diagonal() == Scalar(2)
