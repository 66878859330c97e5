"""statsmodels' fit() arguments mapped onto the engine's fit (``free`` → fixed θ entries)."""

from __future__ import annotations

import warnings

import numpy as np

from ..engine.fit import FitOptions
from ..model.mixed_model import MixedModel
from ..model.results import ModelFit

# statsmodels hands these to scipy's optimizers; sparselme's optimizer is BOBYQA over θ.
STATSMODELS_OPTIMIZER_KWARGS = ("gtol", "maxiter", "eps", "maxcor", "ftol", "tol", "disp", "maxls")
ENGINE_FIT_KWARGS = (
    "maxeval",
    "ftol_abs",
    "xtol_abs",
    "check_derivatives",
    "max_restarts",
    "polish",
    "keep_log",
    "verbose",
    "callback",
)
LME4_FIT_KWARGS = ("REML", "start")  # for lme4-style code that refits ``results.model``


def fit_options(
    fit_kwargs: dict,
    caller: str,
    method=None,
    niter_sa: int = 0,
    lme4_spellings: bool = True,
    stacklevel: int = 3,
    unknown: str = "raise",
) -> tuple[dict, dict]:
    """(engine options, lme4 spellings REML/start) among a fit's further keyword arguments.

    statsmodels' optimizer settings (``method``, ``niter_sa`` > 0, ``gtol``, ``maxiter``...)
    mean nothing to BOBYQA: they warn with a FutureWarning, the class statsmodels uses for
    fit arguments it does not use. Any other keyword raises TypeError, or (``unknown=
    "warn"``, ``MixedLM.fit`` as in statsmodels) is named in the same warning and not used.
    """
    allowed = set(ENGINE_FIT_KWARGS) | set(STATSMODELS_OPTIMIZER_KWARGS)
    allowed |= set(LME4_FIT_KWARGS) if lme4_spellings else set()
    others = sorted(set(fit_kwargs) - allowed)
    if others and unknown != "warn":
        raise TypeError(f"{caller}() got an unexpected keyword argument {others[0]!r}")
    unused = ["method"] if method is not None else []
    unused += ["niter_sa"] if niter_sa else []
    unused += [k for k in STATSMODELS_OPTIMIZER_KWARGS if k in fit_kwargs] + others
    if unused:
        warnings.warn(
            f"Argument{'s' if len(unused) > 1 else ''} {', '.join(unused)} not used by "
            f"{caller}: sparselme minimizes the profiled deviance over θ with BOBYQA (its "
            "settings: maxeval, ftol_abs, xtol_abs)",
            FutureWarning,
            stacklevel=stacklevel,
        )
    engine = {k: fit_kwargs[k] for k in ENGINE_FIT_KWARGS if k in fit_kwargs}
    lme4 = {k: fit_kwargs[k] for k in LME4_FIT_KWARGS if k in fit_kwargs}
    return engine, lme4


def split_fit_kwargs(
    fit_kwargs: dict, reml: bool, method=None, niter_sa: int = 0
) -> tuple[bool, np.ndarray | None, dict]:
    """(reml, θ start, engine options) from ``MixedLM.fit``'s further keyword arguments.

    lme4's spellings (``REML``, ``start``) serve lme4-style code that refits
    ``results.model``; see `fit_options` for the rest.
    """
    options, lme4 = fit_options(
        fit_kwargs, "MixedLM.fit", method, niter_sa, stacklevel=4, unknown="warn"
    )
    if "REML" in lme4:
        reml = bool(lme4["REML"])
    return reml, lme4.get("start"), options


def fit_engine(
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
    verbose, callback = options.pop("verbose", None), options.pop("callback", None)
    return engine.optimize(
        REML=reml,
        start=start,
        fixed=fixed_theta,
        options=FitOptions(**options),
        verbose=verbose,
        callback=callback,
    )
