"""Fits with some θ held fixed (statsmodels' ``free``), and a Newton polish of the optimum."""

from __future__ import annotations

import contextlib
import warnings

import numpy as np

from ..errors import SingularFitWarning
from ..model import LinearMixedModel
from ..optimize import (
    SINGULAR_TOL,
    OptSummary,
    check_convergence,
    finite_difference_derivatives,
    minimize_bobyqa,
    restart_bobyqa,
    snap_to_boundary,
)

# statsmodels' fit() options we accept and ignore (our optimizer is BOBYQA on θ).
IGNORED_FIT_KWARGS = ("gtol", "maxiter", "eps", "maxcor", "ftol", "tol", "disp", "maxls")
ENGINE_FIT_KWARGS = (
    "maxeval",
    "ftol_abs",
    "xtol_abs",
    "check_derivatives",
    "max_restarts",
    "keep_log",
)


def engine_options(fit_kwargs: dict) -> dict:
    """The engine's fit options among ``fit_kwargs``."""
    return {k: fit_kwargs[k] for k in ENGINE_FIT_KWARGS if k in fit_kwargs}


def split_fit_kwargs(fit_kwargs: dict, reml: bool) -> tuple[bool, np.ndarray | None, dict]:
    """(reml, θ start, engine options) from ``MixedLM.fit``'s further keyword arguments.

    lme4's spellings (``REML``, ``start``) serve lme4-style code that refits
    ``results.model``; statsmodels' optimizer options are ignored; others warn.
    """
    if "REML" in fit_kwargs:
        reml = bool(fit_kwargs.pop("REML"))
    theta_start = fit_kwargs.pop("start", None)
    fit_kwargs.pop("r_names", None)
    options = engine_options(fit_kwargs)
    for k in (*ENGINE_FIT_KWARGS, *IGNORED_FIT_KWARGS, "retall"):
        fit_kwargs.pop(k, None)
    if fit_kwargs:
        warnings.warn(
            f"argument(s) {', '.join(sorted(fit_kwargs))} not used by MixedLM.fit",
            UserWarning,
            stacklevel=3,
        )
    return reml, theta_start, options


def _blas_limits(engine: LinearMixedModel):
    """The engine's BLAS thread setting (one thread for small dense factors)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl comes with the engine
        return contextlib.nullcontext()
    threads = getattr(getattr(engine.pls, "chol", None), "blas_threads", None)
    return threadpool_limits(limits=threads, user_api="blas")


def optimize(
    engine: LinearMixedModel,
    reml: bool,
    theta0: np.ndarray,
    fixed: np.ndarray,
    do_cg: bool,
    options: dict,
    engine_start: bool = False,
):
    """(PLSSolution, OptSummary over the full θ) of a fit with θ[fixed] held at theta0.

    θ's are (n_theta,), ``fixed`` a (n_theta,) mask. ``engine_start``: no starting values
    were given, the engine may choose its own.
    """
    with _blas_limits(engine):
        return _optimize_in(engine, reml, theta0, fixed, do_cg, options, engine_start)


def _optimize_in(engine, reml, theta0, fixed, do_cg, options, engine_start):
    lower = engine.pls.lower_bounds
    theta0 = np.where(fixed, theta0, np.maximum(theta0, lower))
    if not do_cg:
        return _not_optimized(engine, reml, theta0, lower)
    free = ~fixed

    def f(x: np.ndarray) -> float:
        th = theta0.copy()
        th[free] = x
        return engine.objective(th, reml)

    if not fixed.any():
        start = None if engine_start else theta0
        res = engine.fit(REML=reml, start=start, r_names=False, **options)
        if _polish(f, res.optsum):
            return engine.pls.solve(res.optsum.final), res.optsum
        return res.solution, res.optsum
    optsum = _bobyqa(f, theta0[free], lower[free], options, engine.design.nobs)
    _polish(f, optsum)
    full = theta0.copy()
    full[free] = optsum.final
    reduced_initial = optsum.initial
    optsum.initial = theta0.copy()
    optsum.initial[free] = reduced_initial
    optsum.final, optsum.lower = full, lower
    if np.any(full[(lower == 0) & free] < SINGULAR_TOL):
        warnings.warn(
            "boundary (singular) fit: a variance component is estimated as zero",
            SingularFitWarning,
            stacklevel=4,
        )
    return engine.pls.solve(full), optsum


def _not_optimized(engine, reml, theta0, lower):
    """The solution at theta0 (``do_cg=False``)."""
    fmin = engine.objective(theta0, reml)
    optsum = OptSummary(initial=theta0, lower=lower, final=theta0.copy(), fmin=fmin)
    optsum.feval, optsum.returnvalue = 1, "NOT_OPTIMIZED"
    optsum.messages.append("not optimized (do_cg=False)")
    return engine.pls.solve(theta0), optsum


def _bobyqa(f, x0: np.ndarray, lower: np.ndarray, options: dict, nobs: int) -> OptSummary:
    """BOBYQA over the free θ with boundary snapping, checks and restarts as the engine."""
    opts = {k: options[k] for k in ("maxeval", "ftol_abs", "xtol_abs") if k in options}
    optsum = minimize_bobyqa(f, x0, lower, **opts)
    check = options.get("check_derivatives", nobs < 10_000)
    for attempt in range(int(options.get("max_restarts", 2)) + 1):
        snap_to_boundary(f, optsum)
        if not check:
            break
        check_convergence(f, optsum)
        if not optsum.messages or attempt == options.get("max_restarts", 2):
            break
        optsum = restart_bobyqa(f, optsum, **opts)
    return optsum


def _polish(f, optsum: OptSummary, max_steps: int = 2) -> bool:
    """Newton steps from BOBYQA's stopping point (interior optima with few θ's only).

    BOBYQA stops when the deviance changes by less than ftol_abs, which leaves θ good
    to about √ftol; statsmodels reports its estimates with 4 decimals on the user scale
    (a variance of 10⁷ shows 11 digits). Newton steps on finite-difference derivatives,
    starting from those of the convergence check (made below 10,000 observations), take θ
    to the optimum; a step is taken only when it lowers the deviance.
    """
    x, fx, lower = optsum.final.copy(), optsum.fmin, optsum.lower
    if len(x) == 0 or len(x) > 10 or np.any((lower == 0) & (x < SINGULAR_TOL)):
        return False
    g, H = optsum.gradient, optsum.hessian
    if g is None or H is None or len(g) != len(x):
        return False  # no convergence check was made (large data): keep BOBYQA's θ
    moved = False
    for step_no in range(max_steps):
        try:
            np.linalg.cholesky(H)
            step = np.linalg.solve(H, g)
        except np.linalg.LinAlgError:
            break
        decrement = float(g @ step)
        if decrement < 1e-10:
            break
        t = 1.0
        while t > 1e-3:
            trial = x - t * step
            if np.all(trial >= lower):
                ft = float(f(trial))
                if ft < fx:
                    break
            t /= 2
        else:
            break
        x, fx, moved = trial, ft, True
        if decrement < 1e-6 or step_no + 1 == max_steps:
            break  # the remaining error is of the order of decrement²
        g, H = finite_difference_derivatives(f, x, lower, fx)
    if moved:
        optsum.final, optsum.fmin = x, fx
    return moved
