"""Moment starting values and the optimizer's first steps and θ scales."""

import numpy as np
import pandas as pd
import pytest

from sparselme.engine.crossprod import chunk_crossproducts
from sparselme.engine.rows import TermRows
from sparselme.engine.start import (
    SCALE_RATIO,
    column_scales,
    initial_steps,
    moment_start,
    theta_scales,
)
from sparselme.engine.terms import RandomEffectsTerm


def _one_way(L=400, m=6, sd_b=2.0, sigma=1.0, seed=0, scale=1.0):
    """(1 | g) with L levels of m rows, and (x | g) data with the slope column times scale."""
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(L), m)
    x = rng.normal(size=L * m) * scale
    b = rng.normal(0, sd_b, L)
    slope = rng.normal(0, 0.5, L)
    y = 3 + b[g] + (slope / scale)[g] * x + rng.normal(0, sigma, L * m)
    X = np.column_stack([np.ones(L * m), x])
    return g, x, X, y


def test_one_way_anova_start_is_close_to_the_truth():
    g, _, X, y = _one_way()
    rows = [TermRows.of(g, np.ones((len(g), 1)), 400)]
    term = RandomEffectsTerm("g", ("(Intercept)",), pd.Index(range(400)), intercept_only=True)
    cp = chunk_crossproducts(rows, X, y)
    theta, estimated = moment_start([term], cp, np.array([0, 1]))
    assert estimated.all()
    assert theta[0] == pytest.approx(2.0, rel=0.15)  # σ_b/σ = 2


def test_random_slopes_start_from_per_level_regressions():
    g, x, X, y = _one_way()
    model = np.column_stack([np.ones(len(g)), x])
    term = RandomEffectsTerm("g", ("(Intercept)", "x"), pd.Index(range(400)))
    cp = chunk_crossproducts([TermRows.of(g, model, 400)], X, y)
    theta, estimated = moment_start([term], cp, np.array([0, 3]))
    assert estimated.all()
    cov = term.covariance_matrix(theta)
    assert cov[0, 0] == pytest.approx(4.0, rel=0.2) and cov[1, 1] == pytest.approx(0.25, rel=0.3)


def test_too_few_levels_keep_the_identity():
    g = np.repeat(np.arange(2), 3)
    X = np.ones((6, 1))
    y = np.arange(6.0)
    term = RandomEffectsTerm("g", ("(Intercept)", "x"), pd.Index(range(2)))
    model = np.column_stack([np.ones(6), np.arange(6.0)])
    cp = chunk_crossproducts([TermRows.of(g, model, 2)], X, y)
    theta, estimated = moment_start([term], cp, np.array([0, 3]))
    assert not estimated.any()
    np.testing.assert_array_equal(theta, term.initial_theta)


def test_first_steps_shrink_with_the_number_of_levels():
    few = RandomEffectsTerm("a", ("(Intercept)",), pd.Index(range(4)))
    many = RandomEffectsTerm("b", ("(Intercept)",), pd.Index(range(40_000)))
    steps = initial_steps([few, many], np.array([1.0, 1.0]), np.array([0, 1, 2]))
    assert steps[0] == pytest.approx(0.2)  # clipped at 20%
    assert steps[1] == pytest.approx(0.02)  # clipped at 2%
    near_zero = initial_steps([few], np.array([0.0]), np.array([0, 1]))
    assert near_zero[0] == pytest.approx(0.05)  # a quarter of the fraction


@pytest.mark.parametrize("scale", [1.0, 1e6])
def test_theta_scales_divide_out_columns_far_from_unit_size(scale):
    g, x, X, y = _one_way(scale=scale)
    model = np.column_stack([np.ones(len(g)), x])
    term = RandomEffectsTerm("g", ("(Intercept)", "x"), pd.Index(range(400)))
    cp = chunk_crossproducts([TermRows.of(g, model, 400)], X, y)
    sizes = column_scales([term], cp)[0]
    d = theta_scales([term], cp)
    if scale == 1.0:
        np.testing.assert_array_equal(sizes, [1.0, 1.0])
        np.testing.assert_array_equal(d, np.ones(3))
    else:
        assert sizes[0] == 1.0 and sizes[1] > SCALE_RATIO
        # θ entries of row 1 of T (the slope's) scale by the slope column's size
        rows = term.covariance.positions[0]
        np.testing.assert_allclose(d, sizes[rows])
