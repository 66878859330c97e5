"""statsmodels' fit() arguments mapped onto the engine's fit (``free`` → fixed θ entries)."""

from __future__ import annotations

import warnings

import numpy as np

from ..engine.fit import FitOptions
from ..model.mixed_model import MixedModel
from ..model.results import ModelFit

# statsmodels' fit() options we accept and ignore (our optimizer is BOBYQA on θ).
IGNORED_FIT_KWARGS = ("gtol", "maxiter", "eps", "maxcor", "ftol", "tol", "disp", "maxls")
ENGINE_FIT_KWARGS = (
    "maxeval",
    "ftol_abs",
    "xtol_abs",
    "check_derivatives",
    "max_restarts",
    "polish",
    "keep_log",
    "verbose",
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


def optimize(
    engine: MixedModel,
    reml: bool,
    theta0: np.ndarray,
    fixed: np.ndarray,
    do_cg: bool,
    options: dict,
    engine_start: bool = False,
) -> ModelFit:
    """The fit with θ[fixed] held at theta0 (``do_cg=False``: evaluated at theta0).

    θ's are (n_theta,), ``fixed`` a (n_theta,) mask. ``engine_start``: no starting values
    were given, the engine may choose its own.
    """
    lower = engine.lower_bounds
    theta0 = np.where(fixed, theta0, np.maximum(theta0, lower))
    if not do_cg:
        fit = engine.fit_at(theta0, None, reml)
        fit.optsum.messages[-1] = "not optimized (do_cg=False)"
        return fit
    fixed_theta = np.where(fixed, theta0, np.nan) if fixed.any() else None
    start = None if engine_start else theta0
    options = dict(options)
    verbose = options.pop("verbose", None)
    return engine.optimize(
        REML=reml, start=start, fixed=fixed_theta, options=FitOptions(**options), verbose=verbose
    )
