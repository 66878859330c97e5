"""lme4's parametrization of a fit: standard deviations, correlations, σ, then β.

``confint``, ``profile`` and the bootstrap report the variance parameters as lme4 does
(``sd_(Intercept)|Subject``, ``cor_Days.(Intercept)|Subject``, ..., ``sigma``), one per θ
entry in θ's order; each term's covariance structure maps θ to them and back.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..engine.terms import RandomEffectsTerm
from ..model.results import ModelFit

__all__ = [
    "parameter_names",
    "parameter_vector",
    "theta_to_sdcor",
    "sdcor_to_theta",
    "sdcor_bounds",
]


def parameter_names(res: ModelFit) -> list[str]:
    """lme4's names: sd_/cor_ per term, ``sigma``, then the fixed effects."""
    names = []
    for t in res.terms:
        names += [f"{label}|{t.name}" for label in t.covariance.natural_labels(t.columns)]
    return names + ["sigma"] + list(res.exog_names)


def theta_to_sdcor(
    terms: Sequence[RandomEffectsTerm], offsets: np.ndarray, theta: np.ndarray, sigma: float
) -> np.ndarray:
    """(n_theta + 1,) sd's and correlations of each term, then σ."""
    parts = [
        t.covariance.to_natural(theta[offsets[s] : offsets[s + 1]], sigma)
        for s, t in enumerate(terms)
    ]
    return np.concatenate([*parts, [sigma]])


def sdcor_to_theta(terms: Sequence[RandomEffectsTerm], pars: np.ndarray) -> np.ndarray | None:
    """Inverse of `theta_to_sdcor` (None for an invalid correlation matrix or σ ≤ 0)."""
    sigma = pars[-1]
    if not sigma > 0:
        return None
    out, at = [], 0
    for t in terms:
        theta = t.covariance.from_natural(pars[at : at + t.n_theta], sigma)
        if theta is None:
            return None
        out.append(theta)
        at += t.n_theta
    return np.concatenate(out) if out else np.zeros(0)


def sdcor_bounds(terms: Sequence[RandomEffectsTerm], p: int) -> tuple[np.ndarray, np.ndarray]:
    """(lower, upper) of the sd/cor parameters, σ and p fixed effects."""
    lo, hi = zip(*(t.covariance.natural_bounds() for t in terms)) if terms else ((), ())
    lower = np.concatenate([*lo, [0.0], np.full(p, -np.inf)])
    upper = np.concatenate([*hi, [np.inf], np.full(p, np.inf)])
    return lower, upper


def parameter_vector(res: ModelFit) -> pd.Series:
    """The estimates in lme4's parametrization (sd/cor, sigma, fixed effects), named."""
    offsets = res.engine.pls.theta_offsets
    values = np.r_[theta_to_sdcor(res.terms, offsets, res.theta, res.sigma), res.solution.beta]
    return pd.Series(values, index=parameter_names(res))
