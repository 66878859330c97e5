"""``MixedLM.get_distribution``: draws of the response at given statsmodels parameters."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..errors import DataError
from .params import MixedLMParams

if TYPE_CHECKING:
    from .model import MixedLM

__all__ = ["MixedLMDistribution", "as_generator"]


def as_generator(rng) -> np.random.Generator | np.random.RandomState:
    """statsmodels' ``rng`` argument: None (fresh entropy), a seed, a Generator or RandomState."""
    if isinstance(rng, (np.random.Generator, np.random.RandomState)):
        return rng
    return np.random.default_rng(rng)


class MixedLMDistribution:
    """The distribution of y at ``params`` (packed: β, cov_re/scale, vcomp/scale).

    y = Xβ + Σ_terms Z_s b_s + ε with the re term's effects ~ N(0, scale·cov_re) per group,
    each variance component's effects ~ N(0, scale·vcomp_j) and ε ~ N(0, scale·I).
    ``exog`` (n, k_fe) replaces the model's X.
    """

    def __init__(self, model: MixedLM, params, scale: float, exog=None):
        if model.layout.extra:
            raise NotImplementedError(
                "get_distribution does not cover correlated lme4 bar terms; use "
                "results.simulate() of the fit"
            )
        po = MixedLMParams.from_packed(
            np.asarray(params, dtype=float), model.k_fe, model.k_re, use_sqrt=False, has_fe=True
        )
        self.model = model
        self.exog = model.exog if exog is None else np.asarray(exog, dtype=float)
        if self.exog.shape != (model.nobs, model.k_fe):
            raise DataError(
                f"exog must have shape ({model.nobs}, {model.k_fe}) (the model's rows), "
                f"not {self.exog.shape}"
            )
        self.fe_params = po.fe_params
        self.cov_re = scale * po.cov_re
        self.vcomp = scale * po.vcomp
        self.scale = float(scale)

    def rvs(self, n=None, rng=None) -> np.ndarray:
        """(nobs,) one draw of the response; ``n`` is not used (statsmodels' interface)."""
        gen = as_generator(rng)
        layout = self.model.layout
        y = self.exog @ self.fe_params
        if self.model.k_re:
            rows = layout.re_rows
            L = np.linalg.cholesky(self.cov_re)
            y = y + rows.z_times(gen.normal(size=(rows.nlevels, rows.k)) @ L.T)
        for v, var in zip(layout.vc, self.vcomp):
            rows = v.rows
            y = y + rows.z_times(np.sqrt(var) * gen.normal(size=(rows.nlevels, rows.k)))
        return y + np.sqrt(self.scale) * gen.normal(size=len(y))
