"""Penalized fixed effects: ``MixedLM.fit_regularized`` and ``fit(fe_pen=...)``.

With statsmodels' log-likelihood ℓ(β, ψ) (scale profiled out; see `.derivatives`),
at a fixed covariance only Q(β) = r² + ‖R_X(β − β̂)‖² depends on β, so every penalized
problem in β is p-dimensional and needs no pass over the rows:

* ``method="l1"`` (statsmodels' default): the covariance of the unpenalized fit is kept
  and β minimizes Q(β)/σ² + Σ α_j|β_j| (the generalized least-squares loss on the user
  scale plus the L1 penalty) by cyclic coordinate descent, statsmodels' algorithm and
  settings: a coefficient below ``ceps`` in magnitude is 0 and stays 0; sweeps stop when
  no coefficient moves by ``ptol``, or after ``maxit`` sweeps.
* a smooth penalty object (statsmodels' ``L2``, ``PseudoHuber``: ``func``/``deriv`` of
  β, weights scaled by ``alpha``): ℓ(β, ψ) − pen(β) is maximized over both, β by
  L-BFGS inside each evaluation of the covariance's objective and θ by BOBYQA.

The results are statsmodels' (`PenalizedResults`): the penalized β, the scale
Q(β)/(n − p) (or /n), the covariance parameters, llf = ℓ at the estimates (without the
penalty) and the inverse of minus the Hessian of ℓ over the variance parameters and the
coefficients larger than ``ceps`` (NaN for the others), at the estimates. (statsmodels
0.15 evaluates that Hessian at the packed ``params`` read in its ``use_sqrt`` form, i.e.
at cov_re's square, so its standard errors of an L1 fit differ.)
"""

from __future__ import annotations

import dataclasses
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np
from scipy import optimize

from ..engine.fit import FitOptions, fit_blocks, natural_values
from ..engine.objective import PLSSolution
from .results import MixedLMCompatResults

if TYPE_CHECKING:
    from .model import MixedLM

__all__ = ["fit_regularized", "fit_penalized", "l1_coordinate_descent", "PenalizedResults"]


def l1_coordinate_descent(
    beta0: np.ndarray,
    M: np.ndarray,
    alpha: np.ndarray,
    ceps: float = 1e-4,
    ptol: float = 1e-6,
    maxit: int = 200,
) -> np.ndarray:
    """(p,) argmin of (β − β₀)ᵀM(β − β₀) + Σ α_j|β_j| by cyclic coordinate descent.

    M (p, p) is XᵀV⁻¹X on the user scale; coefficients below ``ceps`` are left at 0.
    """
    beta = np.array(beta0, dtype=float)
    for _ in range(maxit):
        before = beta.copy()
        for j in range(len(beta)):
            if abs(beta[j]) < ceps:
                continue
            beta[j] = 0.0
            a = M[j, j]
            b = 2.0 * (M[j] @ (beta - beta0))
            if b > alpha[j]:
                beta[j] = -(b - alpha[j]) / (2 * a)
            elif b < -alpha[j]:
                beta[j] = -(b + alpha[j]) / (2 * a)
        if np.abs(before - beta).max(initial=0.0) < ptol:
            break
    return beta


def _penalized_beta(sol: PLSSolution, fac: int, pen) -> np.ndarray:
    """(p,) argmin over β of (fac/2)·log Q(β) + pen(β) at the solution's covariance."""
    RX, bhat = sol.RX, sol.beta

    def f(beta):
        d = RX @ (beta - bhat)
        Q = sol.pwrss + d @ d
        grad = fac * (RX.T @ d) / Q + np.asarray(pen.deriv(beta), dtype=float)
        return 0.5 * fac * np.log(Q) + float(pen.func(beta)), grad

    out = optimize.minimize(f, bhat, jac=True, method="L-BFGS-B", options={"gtol": 1e-10})
    return out.x


def fit_penalized(model: MixedLM, pen, reml: bool, options: dict) -> PenalizedResults:
    """max over (β, θ) of ℓ(β, θ) − pen(β): BOBYQA over θ, β profiled by L-BFGS."""
    if not (callable(getattr(pen, "func", None)) and callable(getattr(pen, "deriv", None))):
        raise TypeError("fe_pen must be a penalty object with func and deriv methods of β")
    engine = model._engine_for(False)
    fac = engine.design.nobs - (model.k_fe if reml else 0)

    def state(theta):
        sol = engine.solve(theta)
        beta = _penalized_beta(sol, fac, pen)
        d = sol.RX @ (beta - sol.beta)
        return sol, beta, float(sol.pwrss + d @ d)

    def objective(theta: np.ndarray) -> float:
        try:
            sol, beta, Q = state(theta)
        except (np.linalg.LinAlgError, ValueError):
            return np.inf
        return engine.deviance_of(sol, reml, pwrss=Q) + 2 * float(pen.func(beta))

    blocks = engine.parameter_blocks()
    x0, _ = engine.start_values()
    optsum = fit_blocks(objective, blocks, x0, options=FitOptions(**options), nobs=model.nobs)
    theta = natural_values(blocks, optsum.final)
    fit = engine.fit_at(theta, optsum, reml)
    sol, beta, Q = state(theta)
    return PenalizedResults.at(fit, model, beta, Q, ceps=0.0)


def fit_regularized(
    model: MixedLM, method, alpha, ceps: float, ptol: float, maxit: int, fit_kwargs: dict
) -> PenalizedResults:
    """``MixedLM.fit_regularized`` (see the module docstring)."""
    if isinstance(method, str):
        if method.lower() != "l1":
            raise ValueError("Invalid regularization method")
    elif not (callable(getattr(method, "func", None)) and callable(getattr(method, "deriv", None))):
        raise TypeError("method must be 'l1' or a penalty object with func and deriv methods")
    else:
        method.alpha = alpha  # statsmodels scales the penalty's weights by alpha
        return model.fit(fe_pen=method, **fit_kwargs)
    alpha = np.broadcast_to(np.asarray(alpha, dtype=float), (model.k_fe,)).copy()
    mdf = model.fit(**fit_kwargs)
    RX = mdf.solution.RX
    beta = l1_coordinate_descent(mdf.solution.beta, RX.T @ RX / mdf.scale, alpha, ceps, ptol, maxit)
    d = RX @ (beta - mdf.solution.beta)
    return PenalizedResults.at(mdf, mdf.model, beta, float(mdf.solution.pwrss + d @ d), ceps)


class PenalizedResults(MixedLMCompatResults):
    """Results with penalized fixed effects (see the module docstring)."""

    ceps: float = 0.0

    @classmethod
    def at(cls, fit, view, beta: np.ndarray, Q: float, ceps: float) -> PenalizedResults:
        """The fit's covariance with the fixed effects ``beta`` (Q = Q(β))."""
        out = cls.from_fit(fit)
        cached = {n for n in dir(cls) if isinstance(getattr(cls, n, None), cached_property)}
        for name in cached & set(out.__dict__):
            del out.__dict__[name]  # values of the unpenalized fit
        out.model_view = view
        out.solution = dataclasses.replace(fit.solution, beta=np.asarray(beta, float), pwrss=Q)
        out.ceps = ceps
        for name in ("freepat", "fixed_theta", "hist"):
            setattr(out, name, getattr(fit, name, None))
        return out

    @property
    def converged(self) -> bool:
        return True

    @cached_property
    def llf(self) -> float:
        """ℓ(β, ψ) at the penalized estimates, without the penalty."""
        return -0.5 * self.engine.deviance_of(self.solution, self.reml)

    @cached_property
    def _cov_params(self) -> np.ndarray:
        """Inverse of minus ℓ's Hessian over the variance parameters and |β_j| > ceps."""
        k = self.k_params
        H, _ = self.model.hessian(self.params_object)
        keep = np.ones(k, dtype=bool)
        keep[: self.k_fe] = np.abs(self.solution.beta) > self.ceps
        out = np.full((k, k), np.nan)
        ii = np.flatnonzero(keep)
        out[np.ix_(ii, ii)] = np.linalg.inv(-H[np.ix_(ii, ii)])
        return out
