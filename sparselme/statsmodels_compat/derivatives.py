"""statsmodels' log-likelihood, score and Hessian of ``MixedLM`` in its parametrization.

statsmodels writes the log-likelihood with the scale profiled out as

    ℓ(β, ψ) = −½log|V| − (f/2)·log Q(β) [− ½log|XᵀV⁻¹X| under REML] + const,

V = I + ZΨZᵀ/σ² (Ψ/σ² linear in the parameters ψ: the lower triangle of ``cov_re`` and
the variance components, all divided by the scale), Q(β) = (y − Xβ)ᵀV⁻¹(y − Xβ) and
f = n (ML) or n − p (REML). Its value comes from the engine's penalized least-squares
solve at the θ with ΛΛᵀ = Ψ/σ² (Q(β) = r²(θ) + ‖R_X(β − β̂)‖², the log-determinants are
the engine's); the score and Hessian are analytic, from the per-group algebra of
`sparselme.statsmodels_compat.algebra.GroupAlgebra`. With ``use_sqrt`` the
covariance is parametrized by its lower Cholesky factor L (Ψ/σ² = LLᵀ) and the variance
components by their square roots; the chain rule gives ∂ℓ/∂L = 2·G·L for G the
symmetric gradient in Ψ/σ² (off-diagonal entries halved) and ∂ℓ/∂s = 2s·∂ℓ/∂v.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np

from ..engine.covariance import psd_cholesky
from ..engine.objective import PLSSolution
from ..engine.residuals import penalized_residual_sum
from ..model.mixed_model import MixedModel
from .algebra import GroupAlgebra, spec_matrix
from .params import MixedLMParams

if TYPE_CHECKING:
    from .model import MixedLM

__all__ = ["ParameterPoint", "loglike", "score", "score_full", "score_sqrt", "hessian"]


def as_params(model: MixedLM, params, has_fe: bool) -> MixedLMParams:
    """A MixedLMParams from itself (or statsmodels' own) or from a packed vector (model's
    ``use_sqrt``)."""
    if isinstance(params, MixedLMParams):
        return params
    if all(hasattr(params, a) for a in ("fe_params", "cov_re", "vcomp")):
        return MixedLMParams.from_components(params.fe_params, params.cov_re, vcomp=params.vcomp)
    return MixedLMParams.from_packed(
        np.asarray(params, dtype=float), model.k_fe, model.k_re, model.use_sqrt, has_fe=has_fe
    )


def theta_of(model: MixedLM, engine: MixedModel, params: MixedLMParams) -> np.ndarray:
    """θ (n_theta,) with ΛΛᵀ = the covariance of ``params`` (profile scale)."""
    if model.layout.extra:
        raise NotImplementedError(
            "statsmodels' parameters (cov_re, vcomp) do not cover the model's correlated "
            "lme4 bar terms; use the lme4-style results (theta, deviance) for this model"
        )
    theta = engine.pls.initial_theta.copy()
    o, s = engine.pls.theta_offsets, 0
    if model.k_re:
        cov = np.asarray(params.cov_re, dtype=float)
        L = psd_cholesky(cov) if cov.shape == (model.k_re, model.k_re) else None
        if L is None:
            raise ValueError(f"cov_re must be a positive semi-definite {model.k_re}×{model.k_re}")
        theta[o[0] : o[1]] = engine.design.terms[0].theta_from_template(L)
        s = 1
    vc = np.asarray(params.vcomp, dtype=float)
    if len(vc) != model.k_vc or np.any(vc < 0):
        raise ValueError(f"vcomp must hold {model.k_vc} non-negative variances")
    for j, v in enumerate(vc):
        theta[o[s + j]] = np.sqrt(v)
    return theta


@dataclass
class ParameterPoint:
    """The model at statsmodels' parameters: the engine's solve there and derived pieces.

    ``beta`` (p,) is the given fixed effects (or the GLS estimate when profiled).
    """

    model: MixedLM
    engine: MixedModel
    theta: np.ndarray
    beta: np.ndarray
    solution: PLSSolution

    @classmethod
    def at(cls, model: MixedLM, params: MixedLMParams, profile_fe: bool) -> ParameterPoint:
        if model.residual is not None:
            raise NotImplementedError(
                "statsmodels' likelihood derivatives are not available with a residual structure"
            )
        engine = model._engine_for(False)
        theta = theta_of(model, engine, params)
        sol = engine.solve(theta)
        beta = sol.beta if profile_fe else np.asarray(params.fe_params, dtype=float)
        if beta.shape != sol.beta.shape:
            raise ValueError(f"fe_params must have {len(sol.beta)} entries, not {len(beta)}")
        return cls(model, engine, theta, beta, sol)

    @property
    def M(self) -> np.ndarray:
        """(p, p) XᵀV⁻¹X."""
        RX = self.solution.RX
        return RX.T @ RX

    @property
    def xvr(self) -> np.ndarray:
        """(p,) XᵀV⁻¹(y − Xβ), zero at the GLS estimate."""
        return self.M @ (self.solution.beta - self.beta)

    @cached_property
    def Q(self) -> float:
        """(y − Xβ)ᵀV⁻¹(y − Xβ), summed from the residuals (see `..engine.residuals`)."""
        d = self.engine.design
        r = d.y_minus_offset - d.X @ self.beta
        return penalized_residual_sum(self.engine.pls, self.theta, d.rows, r)[0]

    @property
    def fac(self) -> int:
        return self.engine.design.nobs - (len(self.beta) if self.model.reml else 0)

    def loglike(self) -> float:
        return -0.5 * self.engine.deviance_of(self.solution, self.model.reml, pwrss=self.Q)

    @cached_property
    def algebra(self) -> GroupAlgebra:
        d = self.engine.design
        o = self.engine.pls.theta_offsets
        thetas = [self.theta[o[i] : o[i + 1]] for i in range(len(d.terms))]
        resid = d.y_minus_offset - d.X @ self.beta
        blocks = self.model.layout.block_of_levels()
        return GroupAlgebra(list(d.terms), list(d.rows), thetas, blocks, d.X, resid)

    @property
    def specs(self) -> list[tuple[int, np.ndarray]]:
        terms = self.engine.design.terms
        return [(s, spec_matrix(terms[s], a, b)) for s, a, b in self.model.layout.param_specs()]


def loglike(model: MixedLM, params, profile_fe: bool = True) -> float:
    """statsmodels' ``MixedLM.loglike``: packed params hold the covariance parameters only."""
    point = ParameterPoint.at(model, as_params(model, params, has_fe=False), profile_fe)
    return point.loglike()


def score_full(
    model: MixedLM, params, calc_fe: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(∂ℓ/∂β (zeros unless ``calc_fe``), ∂ℓ/∂cov_re's lower triangle, ∂ℓ/∂vcomp) at params."""
    point = ParameterPoint.at(model, as_params(model, params, has_fe=True), profile_fe=False)
    g = point.algebra.score(point.specs, point.M, point.Q, point.fac, model.reml)
    fe = point.fac * point.xvr / point.Q if calc_fe else np.zeros(model.k_fe)
    return fe, g[: model.k_re2], g[model.k_re2 :]


def score_sqrt(
    model: MixedLM, params, calc_fe: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The score in the square-root parametrization (Cholesky factor, sqrt of vcomp)."""
    params = as_params(model, params, has_fe=True)
    fe, g_re, g_vc = score_full(model, params, calc_fe)
    k = model.k_re
    if k:
        G = np.zeros((k, k))
        G[np.tril_indices(k)] = g_re
        G = (G + G.T) / 2  # the off-diagonal entries stand for both (i, j) and (j, i)
        L = psd_cholesky(np.asarray(params.cov_re, dtype=float))
        g_re = (2 * G @ L)[np.tril_indices(k)]
    g_vc = 2 * np.sqrt(np.asarray(params.vcomp, dtype=float)) * g_vc
    return fe, g_re, g_vc


def score(model: MixedLM, params, profile_fe: bool = True) -> np.ndarray:
    """statsmodels' ``MixedLM.score`` in the model's parametrization (``use_sqrt``).

    ``profile_fe``: β at its GLS estimate and only the covariance parameters' score;
    otherwise β from ``params`` and the score of all parameters. Entries that the fit's
    ``free`` pattern holds fixed are 0.
    """
    params = as_params(model, params, has_fe=not profile_fe).copy()
    if profile_fe:
        params.fe_params = ParameterPoint.at(model, params, True).beta
    parts = (score_sqrt if model.use_sqrt else score_full)(model, params, not profile_fe)
    free = getattr(model, "_freepat", None)
    if free is not None:
        masks = (free.fe_params, np.asarray(free.cov_re)[np.tril_indices(model.k_re)], free.vcomp)
        parts = tuple(p * np.asarray(m, dtype=float) for p, m in zip(parts, masks))
    return np.concatenate(parts if not profile_fe else parts[1:])


def hessian(model: MixedLM, params) -> tuple[np.ndarray, bool]:
    """(Hessian (k, k) of ℓ in (β, cov_re's lower triangle, vcomp), singular?) at params.

    Exact at any β (statsmodels' drops the terms in XᵀV⁻¹(y − Xβ), which vanish at the
    GLS estimate). ``singular``: cov_re is singular or a variance component is ~0.
    """
    params = as_params(model, params, has_fe=True)
    point = ParameterPoint.at(model, params, profile_fe=False)
    H = point.algebra.hessian(point.specs, point.M, point.Q, point.fac, model.reml, point.xvr)
    cov = np.asarray(params.cov_re, dtype=float)
    sing = bool(model.k_re and np.linalg.eigvalsh(cov).min() < 1e-10)
    sing |= bool(np.any(np.asarray(params.vcomp, dtype=float) < 1e-10))
    return H, sing
