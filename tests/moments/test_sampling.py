"""Covariance of the statistics against the dense Gaussian formula 2 tr(Q̃VQ̃V)."""

import numpy as np
import pytest

from sparselme.moments import in_memory, layout_for
from sparselme.moments.components import efficient_statistics, ols, stats_pass
from sparselme.moments.counts import Counts, count_pass
from sparselme.moments.quadratic import equations, level_moments, residual_pass
from sparselme.moments.sampling import draws_for, statistic_covariance

from .dense import Dense, q_matrix, small_design

SIGMA2 = np.array([1.0, 0.5, 1.0])


def _covariance(cols, lay, reps, seed, chunk_rows=None):
    reduce = in_memory(cols, chunk_rows)
    counts = Counts.from_sums(reduce(count_pass, lay, 1 << 20), lay)
    beta, G = ols(counts)
    S, SS = level_moments(reduce(residual_pass, lay, beta), lay.K)
    stats = efficient_statistics(counts, lay.factors, SIGMA2)
    draws = draws_for(SIGMA2, lay.levels, reps, seed)
    s3 = reduce(stats_pass, lay, counts, stats, draws)
    eq = equations(counts, stats, S, SS, s3, G)
    cov, parts = statistic_covariance(reduce, lay, counts, eq, stats, draws, s3, SIGMA2[-1])
    return stats, cov, parts


@pytest.fixture(scope="module")
def design():
    cols = small_design(11, n=120, levels=(14, 8), p_extra=2)
    lay = layout_for(cols, ["f0", "f1"], x=["x1", "x2"])
    return cols, lay, Dense(cols, ["f0", "f1"], list(lay.levels), ["x1", "x2"])


def test_terms_against_dense_traces(design):
    cols, lay, d = design
    stats, cov, parts = _covariance(cols, lay, reps=300, seed=3)
    Qt = [d.M @ q_matrix(d, st) @ d.M for st in stats]
    VZ = d.V([*SIGMA2[:2], 0.0])
    term1 = np.array([[2 * np.trace(a @ VZ @ b @ VZ) for b in Qt] for a in Qt])
    term2 = np.array([[np.trace(a @ b @ VZ) for b in Qt] for a in Qt])
    term3 = np.array([[np.trace(a @ b) for b in Qt] for a in Qt])
    np.testing.assert_allclose(parts["term3"], term3, rtol=1e-8, atol=1e-10 * np.abs(term3).max())
    for got, want in ((parts["term1"], term1), (parts["term2"], term2)):
        scale = np.sqrt(np.outer(np.diag(want), np.diag(want)))
        assert np.all(np.abs(got - want) / scale < 0.1)  # Monte Carlo over level draws
    V = d.V(SIGMA2)
    exact = np.array([[2 * np.trace(a @ V @ b @ V) for b in Qt] for a in Qt])
    scale = np.sqrt(np.outer(np.diag(exact), np.diag(exact)))
    assert np.all(np.abs(cov - exact) / scale < 0.1)


def test_deterministic_and_chunking_invariant(design):
    cols, lay, _ = design
    _, one, _ = _covariance(cols, lay, reps=30, seed=5)
    _, again, _ = _covariance(cols, lay, reps=30, seed=5, chunk_rows=13)
    np.testing.assert_allclose(again, one, rtol=1e-9, atol=1e-12 * np.abs(one).max())
