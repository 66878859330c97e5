"""The optimizer: BOBYQA with bounds, lme4's boundary and gradient checks, Newton polish."""

import numpy as np
import pytest

from sparselme.engine.optimize import (
    OptSummary,
    check_convergence,
    finite_difference_derivatives,
    minimize_bobyqa,
    newton_polish,
    optimize_checked,
    restart_bobyqa,
    snap_to_boundary,
)

A = np.array([[2.0, 0.6], [0.6, 1.0]])


def quadratic(centre):
    return lambda x: float((x - centre) @ A @ (x - centre))


def test_bobyqa_finds_an_interior_minimum():
    f = quadratic(np.array([1.5, -2.0]))
    opt = minimize_bobyqa(f, np.array([0.5, 0.5]), np.array([0.0, -np.inf]), ftol_abs=1e-12)
    np.testing.assert_allclose(opt.final, [1.5, -2.0], atol=1e-4)
    assert opt.fmin == pytest.approx(0.0, abs=1e-8)
    assert opt.returnvalue.startswith("NLOPT_") and opt.feval > 0


def test_bobyqa_respects_lower_and_upper_bounds():
    f = quadratic(np.array([-1.0, 5.0]))
    opt = minimize_bobyqa(
        f, np.array([1.0, 1.0]), np.array([0.0, -np.inf]), upper=np.array([np.inf, 2.0])
    )
    assert opt.final[0] == pytest.approx(0.0, abs=1e-6)
    assert opt.final[1] <= 2.0 + 1e-12
    # the constrained minimum: x0 = 0, x1 at the upper bound
    assert opt.final[1] == pytest.approx(2.0, abs=1e-6)


def test_the_log_and_the_callback_see_every_evaluation():
    seen = []
    opt = minimize_bobyqa(
        quadratic(np.ones(2)),
        np.zeros(2),
        np.full(2, -np.inf),
        keep_log=True,
        callback=lambda i, x, v: seen.append((i, v)),
    )
    assert len(opt.fitlog) == opt.feval == len(seen)
    assert [i for i, _ in seen] == list(range(1, opt.feval + 1))
    assert min(v for _, v in seen) == opt.fmin


def test_finite_differences_match_the_analytic_derivatives():
    centre = np.array([0.3, -0.4])
    f = quadratic(centre)
    x = np.array([1.0, 2.0])
    g, H = finite_difference_derivatives(f, x, np.full(2, -np.inf))
    np.testing.assert_allclose(g, 2 * A @ (x - centre), rtol=1e-6)
    np.testing.assert_allclose(H, 2 * A, rtol=1e-5)
    # on a bound the differences are one-sided, still exact for a quadratic
    g0, H0 = finite_difference_derivatives(f, np.array([0.0, 2.0]), np.array([0.0, -np.inf]))
    np.testing.assert_allclose(g0, 2 * A @ (np.array([0.0, 2.0]) - centre), rtol=1e-6)
    np.testing.assert_allclose(np.diag(H0), 2 * np.diag(A), rtol=1e-5)


def test_snap_to_boundary_only_when_no_worse():
    f = lambda x: float((x[0] + 1.0) ** 2 + (x[1] - 1.0) ** 2)  # noqa: E731
    opt = OptSummary(initial=np.ones(2), lower=np.zeros(2), final=np.array([3e-6, 1.0]))
    opt.fmin = f(opt.final)
    snap_to_boundary(f, opt)
    np.testing.assert_array_equal(opt.final, [0.0, 1.0])
    assert opt.boundary_snapped == [0]
    g = lambda x: float((x[0] - 1e-5) ** 2)  # noqa: E731  the minimum is just inside
    opt = OptSummary(initial=np.ones(1), lower=np.zeros(1), final=np.array([1e-5]))
    opt.fmin = g(opt.final)
    snap_to_boundary(g, opt)
    assert opt.final[0] == 1e-5 and opt.boundary_snapped == []


def test_convergence_check_flags_a_large_scaled_gradient():
    f = quadratic(np.zeros(2))
    good = OptSummary(initial=np.ones(2), lower=np.full(2, -np.inf), final=np.zeros(2), fmin=0.0)
    check_convergence(f, good)
    assert good.messages == [] and good.converged
    x = np.array([0.5, 0.5])
    bad = OptSummary(initial=np.ones(2), lower=np.full(2, -np.inf), final=x, fmin=f(x))
    bad.returnvalue = "NLOPT_FTOL_REACHED"
    check_convergence(f, bad)
    assert bad.messages and bad.messages[0].startswith("gradient check")
    assert not bad.converged


def test_newton_polish_takes_theta_the_rest_of_the_way():
    centre = np.array([0.7, 1.2])
    f = quadratic(centre)
    x = centre + 1e-3
    opt = OptSummary(initial=x, lower=np.zeros(2), final=x.copy(), fmin=f(x))
    opt.gradient, opt.hessian = finite_difference_derivatives(f, x, opt.lower, opt.fmin)
    assert newton_polish(f, opt)
    np.testing.assert_allclose(opt.final, centre, atol=1e-7)
    assert opt.newton_steps >= 1


def test_restart_accumulates_the_record():
    f = quadratic(np.array([1.0, 1.0]))
    first = minimize_bobyqa(f, np.zeros(2), np.full(2, -np.inf), maxeval=5)
    again = restart_bobyqa(f, first)
    assert again.restarts == 1 and again.feval > first.feval
    assert again.fmin <= first.fmin


def test_optimize_checked_records_the_gradient_at_maxeval():
    opt = optimize_checked(
        quadratic(np.array([3.0, 3.0])),
        np.zeros(2),
        np.full(2, -np.inf),
        check_derivatives=False,
        maxeval=4,
    )
    assert opt.returnvalue == "NLOPT_MAXEVAL_REACHED" and not opt.converged
    assert opt.gradient is not None and np.linalg.norm(opt.gradient) > 0


def test_expand_and_unscale_re_express_the_record():
    opt = OptSummary(initial=np.array([2.0]), lower=np.zeros(1), final=np.array([4.0]))
    opt.gradient = np.array([1.0])
    opt.unscale(np.array([2.0]))  # searched 2x: back to x
    assert opt.final[0] == 2.0 and opt.gradient[0] == 2.0
    opt.expand(np.array([9.0, 0.0, 9.0]), np.array([False, True, False]), np.zeros(3))
    np.testing.assert_array_equal(opt.final, [9.0, 2.0, 9.0])
    np.testing.assert_array_equal(opt.gradient, [0.0, 2.0, 0.0])
