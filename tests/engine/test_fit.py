"""The one fit driver: parameter blocks, their scales, fixed entries and the callback."""

import numpy as np
import pytest

from sparselme.engine.fit import (
    FitOptions,
    ParameterBlock,
    check_flag,
    check_maxeval,
    check_start,
    fit_blocks,
    natural_values,
    to_free,
)
from sparselme.errors import NumericalError

THETA = ParameterBlock("theta", np.array([0.0, -np.inf]), np.full(2, np.inf))
POSITIVE = ParameterBlock("rho", np.array([-np.inf]), np.array([np.inf]), np.log, np.exp, step=None)


def objective(params: np.ndarray) -> float:
    """Minimum at θ = (0.8, −0.3), ρ = 2.5 (ρ > 0, searched as log ρ)."""
    theta, rho = params[:2], params[2]
    return float(np.sum((theta - [0.8, -0.3]) ** 2) + (np.log(rho) - np.log(2.5)) ** 2)


def test_blocks_are_fitted_jointly_on_their_own_scales():
    opt = fit_blocks(objective, [THETA, POSITIVE], np.array([1.0, 0.0, 1.0]))
    params = natural_values([THETA, POSITIVE], opt.final)
    np.testing.assert_allclose(params, [0.8, -0.3, 2.5], rtol=1e-4, atol=1e-5)
    assert opt.final[2] == pytest.approx(np.log(2.5), abs=1e-4)  # the record: free scale
    np.testing.assert_allclose(to_free([THETA, POSITIVE], params), opt.final, atol=1e-12)


def test_fixed_entries_are_held():
    fixed = np.array([np.nan, 0.5, np.nan])
    opt = fit_blocks(objective, [THETA, POSITIVE], np.array([1.0, 0.0, 1.0]), fixed=fixed)
    params = natural_values([THETA, POSITIVE], opt.final)
    assert params[1] == 0.5
    np.testing.assert_allclose(params[[0, 2]], [0.8, 2.5], rtol=1e-4)


def test_a_scaled_block_is_searched_at_moderate_size_and_reported_unscaled():
    d = np.array([1e6, 1.0])
    big = ParameterBlock("theta", np.zeros(2), np.full(2, np.inf), scale=d)

    def f(theta):  # the minimum sits at θ = (2e-6, 0.7): d·θ = (2, 0.7)
        return float((theta[0] * 1e6 - 2.0) ** 2 + (theta[1] - 0.7) ** 2)

    seen = []
    opt = fit_blocks(f, [big], np.array([1e-6, 1.0]), callback=lambda i, p, v: seen.append(p))
    np.testing.assert_allclose(opt.final, [2e-6, 0.7], rtol=1e-4)
    np.testing.assert_array_equal(opt.theta_scale, d)
    np.testing.assert_allclose(opt.scaled_final(), [2.0, 0.7], rtol=1e-4)
    assert all(p[0] < 1e-4 for p in seen)  # the callback sees θ, not d·θ


def test_no_finite_value_anywhere_raises_a_named_error():
    with pytest.raises(NumericalError, match="Rescale"):
        fit_blocks(lambda p: np.inf, [THETA], np.array([1.0, 0.0]), options=FitOptions(maxeval=20))


def test_argument_checks():
    assert check_flag(np.True_, "REML") is True
    with pytest.raises(TypeError, match="REML must be True or False"):
        check_flag("FALSE", "REML")
    with pytest.raises(ValueError, match="positive"):
        check_maxeval(0)
    with pytest.raises(TypeError):
        FitOptions(maxeval=1.5)
    np.testing.assert_array_equal(check_start([-1.0, 2.0], np.array([0.0, -np.inf])), [0.0, 2.0])
    with pytest.raises(ValueError, match="has 1 values"):
        check_start([1.0], np.zeros(2))
    with pytest.raises(ValueError, match="finite"):
        check_start([np.nan, 1.0], np.zeros(2))
