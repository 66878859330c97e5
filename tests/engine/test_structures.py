"""Structured covariances: each θ → T(θ) against the structure's covariance written out."""

import numpy as np
import pytest
from dense_reference import structure_covariance, yule_walker_pacf

from sparselme.engine.parametrizations import make_covariance
from sparselme.engine.structures import (
    AR1,
    CompoundSymmetry,
    HomogeneousCompoundSymmetry,
    HomogeneousDiagonal,
    ReducedRank,
    Toeplitz,
    levinson,
    partial_autocorrelations,
)
from sparselme.errors import IdentifiabilityError, NonlinearStructureError

NONLINEAR = [
    CompoundSymmetry(2),
    CompoundSymmetry(4),
    HomogeneousCompoundSymmetry(3),
    AR1(2),
    AR1(5),
    Toeplitz(2),
    Toeplitz(4),
    ReducedRank(4, rank=1),
    ReducedRank(4, rank=2),
    ReducedRank(3, rank=3),
]
ALL = NONLINEAR + [HomogeneousDiagonal(3)]


def _ids(cov):
    return f"{cov.kind}{cov.k}" + (f"d{cov.rank}" if isinstance(cov, ReducedRank) else "")


def _theta(cov, seed=0):
    """A random interior θ of the structure."""
    rng = np.random.default_rng(seed)
    lo, hi = cov.lower, cov.upper
    th = rng.normal(size=cov.n_theta)
    th = np.where(lo == 0, 0.3 + np.abs(th), th)
    bounded = np.isfinite(hi)
    th[bounded] = lo[bounded] + (hi[bounded] - lo[bounded]) * rng.uniform(0.1, 0.9, bounded.sum())
    return th


@pytest.mark.parametrize("cov", ALL, ids=_ids)
def test_template_gives_the_structure(cov):
    for seed in range(3):
        theta = _theta(cov, seed)
        T = cov.template(theta)
        assert T.shape == (cov.k, cov.k) and np.isrealobj(T)
        np.testing.assert_allclose(T @ T.T, structure_covariance(cov, theta), atol=1e-12)
        np.testing.assert_allclose(cov.covariance(theta, 2.0), 2.0 * T @ T.T)
    assert cov.initial.shape == cov.lower.shape == cov.upper.shape == (cov.n_theta,)
    assert np.all(cov.lower <= cov.initial) and np.all(cov.initial <= cov.upper)


@pytest.mark.parametrize("cov", ALL, ids=_ids)
def test_theta_from_template_inverts_template(cov):
    theta = _theta(cov, 4)
    np.testing.assert_allclose(cov.theta_from_template(cov.template(theta)), theta, atol=1e-10)
    np.testing.assert_allclose(cov.theta_from_covariance(cov.covariance(theta)), theta, atol=1e-10)


@pytest.mark.parametrize("cov", NONLINEAR, ids=_ids)
def test_projection_of_any_covariance_is_in_the_parameter_space(cov):
    rng = np.random.default_rng(7)
    M = rng.normal(size=(cov.k, cov.k))
    theta = cov.theta_from_covariance(M @ M.T)
    assert np.all(theta >= cov.lower) and np.all(theta <= cov.upper)
    assert np.all(np.isfinite(cov.template(theta)))


@pytest.mark.parametrize("cov", NONLINEAR, ids=_ids)
def test_template_is_valid_on_the_bounds(cov):
    """ρ = ±1, the CS lower bound, φ = ±1: singular but finite and positive semi-definite."""
    theta = _theta(cov, 1)
    for j in np.flatnonzero(np.isfinite(cov.upper) | (cov.lower < 0) & np.isfinite(cov.lower)):
        for bound in (cov.lower[j], cov.upper[j]):
            th = theta.copy()
            th[j] = bound
            C = cov.covariance(th)
            assert np.all(np.isfinite(C))
            assert np.linalg.eigvalsh(C).min() > -1e-10
            np.testing.assert_allclose(C, structure_covariance(cov, th), atol=1e-10)


@pytest.mark.parametrize("cov", ALL, ids=_ids)
def test_template_derivatives_match_finite_differences(cov):
    theta = _theta(cov, 2)
    D = cov.template_derivatives(theta)
    assert D.shape == (cov.n_theta, cov.k, cov.k)
    h = 1e-6
    for j in range(cov.n_theta):
        e = np.zeros(cov.n_theta)
        e[j] = h
        fd = (cov.template(theta + e) - cov.template(theta - e)) / (2 * h)
        np.testing.assert_allclose(D[j], fd, atol=1e-7)


@pytest.mark.parametrize("cov", ALL, ids=_ids)
def test_natural_parameters_round_trip(cov):
    theta, sigma = _theta(cov, 3), 1.7
    nat = cov.to_natural(theta, sigma)
    assert nat.shape == (cov.n_theta,)
    np.testing.assert_allclose(cov.from_natural(nat, sigma), theta, atol=1e-10)
    lower, upper = cov.natural_bounds()
    assert np.all(lower <= nat) and np.all(nat <= upper)
    columns = tuple(f"c{i}" for i in range(cov.k))
    labels = cov.natural_labels(columns)
    assert len(labels) == len(set(labels)) == cov.n_theta


@pytest.mark.parametrize(
    "cov", [c for c in NONLINEAR if not isinstance(c, ReducedRank)], ids=_ids
)
def test_natural_parameters_are_the_structures_sds_and_correlations(cov):
    theta, sigma = _theta(cov, 5), 2.0
    C = cov.covariance(theta, sigma**2)
    sd = np.sqrt(np.diag(C))
    nat = cov.to_natural(theta, sigma)
    k = cov.k
    if isinstance(cov, (AR1, HomogeneousCompoundSymmetry)):
        np.testing.assert_allclose(nat, [sd[0], C[1, 0] / sd[0] ** 2])
        np.testing.assert_allclose(sd, sd[0])
    elif isinstance(cov, CompoundSymmetry):
        np.testing.assert_allclose(nat, np.r_[sd, C[1, 0] / (sd[0] * sd[1])])
    else:  # Toeplitz: the band of correlations
        R = C / np.outer(sd, sd)
        np.testing.assert_allclose(nat, np.r_[sd, R[1:, 0]])
        for h in range(1, k):
            np.testing.assert_allclose(np.diag(R, -h), R[h, 0])


def test_reduced_rank_natural_parameters_are_the_loadings():
    cov = ReducedRank(3, rank=2)
    theta = _theta(cov, 6)
    np.testing.assert_allclose(cov.to_natural(theta, 2.0), 2.0 * theta)
    assert cov.natural_labels(("a", "b", "c")) == [
        "load1_a", "load1_b", "load1_c", "load2_b", "load2_c"
    ]
    assert np.linalg.matrix_rank(cov.covariance(theta)) == 2


def test_invalid_natural_values_give_none():
    assert AR1(3).from_natural(np.array([1.0, 1.2]), 1.0) is None
    assert CompoundSymmetry(3).from_natural(np.array([1.0, 1.0, 1.0, -0.6]), 1.0) is None
    assert Toeplitz(3).from_natural(np.array([1.0, 1.0, 1.0, 0.9, -0.9]), 1.0) is None
    assert partial_autocorrelations(np.array([0.9, -0.9])) is None


def test_levinson_and_partial_autocorrelations_invert_each_other():
    pacf = np.array([0.6, -0.3, 0.2, 0.5])
    A, v, r = levinson(pacf)
    np.testing.assert_allclose(partial_autocorrelations(r[1:]), pacf)
    np.testing.assert_allclose(yule_walker_pacf(r[1:]), pacf)
    R = np.linalg.inv(A) @ np.diag(v) @ np.linalg.inv(A).T
    lag = np.abs(np.subtract.outer(np.arange(5), np.arange(5)))
    np.testing.assert_allclose(R, r[lag])


@pytest.mark.parametrize("cov", NONLINEAR, ids=_ids)
def test_nonlinear_structures_have_no_linear_basis(cov):
    with pytest.raises(NonlinearStructureError, match="Kenward-Roger"):
        cov.linear_basis()
    tangents = np.array([E.ravel() for E in cov.tangent_basis()])
    assert tangents.shape == (cov.n_theta, cov.k**2)
    assert np.linalg.matrix_rank(tangents) == cov.n_theta  # locally identifiable
    for E in cov.tangent_basis():
        np.testing.assert_allclose(E, E.T)


def test_homogeneous_diagonal_is_linear():
    cov = HomogeneousDiagonal(3)
    np.testing.assert_allclose(cov.linear_basis()[0], np.eye(3))
    assert cov.natural_labels(("a", "b", "c")) == ["sd_a..c"]
    np.testing.assert_allclose(cov.theta_from_covariance(np.diag([1.0, 4.0, 4.0])), [np.sqrt(3)])


def test_scales_follow_the_columns():
    sizes = np.array([2.0, 3.0, 5.0])
    np.testing.assert_allclose(CompoundSymmetry(3).theta_scale(sizes), [2, 3, 5, 1])
    np.testing.assert_allclose(Toeplitz(3).theta_scale(sizes), [2, 3, 5, 1, 1])
    np.testing.assert_allclose(ReducedRank(3, rank=2).theta_scale(sizes), [2, 3, 5, 3, 5])
    common = AR1(3).column_sizes(np.array([1.0, 4.0, 4.0]))
    np.testing.assert_allclose(common, np.full(3, np.sqrt(3)))
    np.testing.assert_allclose(AR1(3).theta_scale(np.full(3, 2.0)), [2, 1])
    np.testing.assert_allclose(CompoundSymmetry(3).natural_scale(sizes), [2, 3, 5, 1])
    # the scaled template is the template of the scaled columns: T̃ = diag(s) T
    for cov, s in [(CompoundSymmetry(3), sizes), (Toeplitz(3), sizes), (AR1(3), np.full(3, 2.0))]:
        theta = _theta(cov, 8)
        np.testing.assert_allclose(
            cov.template(cov.theta_scale(s) * theta), s[:, None] * cov.template(theta)
        )


def test_make_covariance_by_keyword():
    assert make_covariance("ar1", 3) == AR1(3)
    assert make_covariance("rr", 4, rank=1) == ReducedRank(4, rank=1)
    assert make_covariance("toep", 3).n_theta == 5
    assert make_covariance("homcs", 4).n_theta == 2
    with pytest.raises(IdentifiabilityError, match="at least 2"):
        make_covariance("ar1", 1)
    with pytest.raises(IdentifiabilityError, match="between 1 and 3"):
        make_covariance("rr", 3, rank=4)
    with pytest.raises(ValueError, match="unknown covariance structure 'ou'"):
        make_covariance("ou", 3)


def test_wrap_writes_the_term():
    assert AR1(3).wrap("0 + t | g") == "ar1(0 + t | g)"
    assert ReducedRank(3, rank=1).wrap("x | g") == "rr(x | g, d = 1)"
    assert make_covariance("us", 2).wrap("x | g") == "(x | g)"
    assert make_covariance("diag", 2).wrap("x | g") == "diag(x | g)"
