"""Weights: negative or all-zero weights raise, zero weights drop rows, scaling is harmless."""

from __future__ import annotations

import numpy as np
import pytest

import sparselme as sl
from sparselme.errors import DataError, DroppedRowsWarning

FORMULA = "y ~ x + (1|g)"


def weights(n: int = 60, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0.5, 2.0, n)


def test_negative_weights(frame):
    w = weights()
    w[[3, 8]] = -1.0
    with pytest.raises(DataError, match=r"weights must be non-negative: 2 of 60 are negative"):
        sl.lmer(FORMULA, frame, weights=w)


def test_weights_that_sum_to_zero(frame):
    with pytest.raises(DataError, match="weights sum to zero"):
        sl.lmer(FORMULA, frame, weights=np.zeros(60))


def test_zero_weights_drop_their_rows(frame):
    w = weights()
    w[[0, 1, 2]] = 0.0
    with pytest.warns(DroppedRowsWarning, match="dropped 3 of 60 rows with weight 0"):
        res = sl.lmer(FORMULA, frame, weights=w)
    kept = sl.lmer(FORMULA, frame.iloc[3:], weights=w[3:])
    assert res.nobs == 57
    np.testing.assert_array_equal(res.theta, kept.theta)
    np.testing.assert_array_equal(res.fe_params, kept.fe_params)


def test_weights_by_column_name_equal_weights_by_array(frame):
    w = weights()
    by_name = sl.lmer(FORMULA, frame.assign(w=w), weights="w")
    by_array = sl.lmer(FORMULA, frame, weights=w)
    np.testing.assert_array_equal(by_name.theta, by_array.theta)


def test_unit_weights_equal_no_weights(frame):
    np.testing.assert_allclose(
        sl.lmer(FORMULA, frame, weights=np.ones(60)).theta, sl.lmer(FORMULA, frame).theta
    )


def test_scaling_the_weights_scales_only_the_residual_variance(frame):
    w = weights()
    a = sl.lmer(FORMULA, frame, weights=w)
    b = sl.lmer(FORMULA, frame, weights=1000.0 * w)
    np.testing.assert_allclose(b.theta * np.sqrt(1000.0), a.theta, rtol=1e-4)
    np.testing.assert_allclose(b.fe_params, a.fe_params, rtol=1e-6)
    np.testing.assert_allclose(b.scale / 1000.0, a.scale, rtol=1e-5)
