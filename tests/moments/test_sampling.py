"""Covariance of the variance-component estimates against the dense Gaussian formula."""

import numpy as np
import pytest

from sparselme.moments import in_memory, layout_for
from sparselme.moments.components import estimate
from sparselme.moments.sampling import component_covariance

from .dense import Dense, small_design

SIGMA2 = np.array([1.0, 0.5, 1.0])


@pytest.fixture(scope="module")
def design():
    cols = small_design(11, n=120, levels=(14, 8), p_extra=2)
    lay = layout_for(cols, ["f0", "f1"], x=["x1", "x2"])
    counts, eq = estimate(in_memory(cols), lay, 1 << 20)
    d = Dense(cols, ["f0", "f1"], list(lay.levels), ["x1", "x2"])
    return cols, lay, counts, eq, d


def test_terms_against_dense_traces(design):
    cols, lay, counts, eq, d = design
    reps = 4000
    _, parts = component_covariance(in_memory(cols), lay, counts, eq, SIGMA2, reps, seed=3)
    At = [d.M @ A @ d.M for A in d.A]
    VZ = d.V([*SIGMA2[:2], 0.0])
    term1 = np.array([[2 * np.trace(a @ VZ @ b @ VZ) for b in At] for a in At])
    term2 = np.array([[np.trace(a @ b @ VZ) for b in At] for a in At])
    term3 = np.array([[np.trace(a @ b) for b in At] for a in At])
    np.testing.assert_allclose(parts["term3"], term3, rtol=1e-9)  # exact
    scale = np.sqrt(np.outer(np.diag(term1), np.diag(term1)))
    # Monte Carlo: relative error ~ (2/reps)^½ ≈ 2% on the diagonal, allow 5 such errors
    assert np.all(np.abs(parts["term1"] - term1) / scale < 0.12)
    scale2 = np.sqrt(np.outer(np.diag(term2), np.diag(term2)))
    assert np.all(np.abs(parts["term2"] - term2) / scale2 < 0.06)
    np.testing.assert_allclose(parts["cov_u"], d.ustat_cov(SIGMA2), rtol=0.12)


def test_deterministic_and_chunking_invariant(design):
    cols, lay, counts, eq, _ = design
    one, _ = component_covariance(in_memory(cols), lay, counts, eq, SIGMA2, 30, seed=5)
    again, _ = component_covariance(in_memory(cols, 13), lay, counts, eq, SIGMA2, 30, seed=5)
    np.testing.assert_allclose(again, one, rtol=1e-10)
