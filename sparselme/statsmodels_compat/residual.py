"""The statsmodels API with a residual structure: ``mixedlm(..., residual=...)``.

`fit_compat` fits the compat model's engine (a `ResidualModel`) jointly over
(θ, ρ) and returns `ResidualCompatResults`: statsmodels' names with statsmodels'
meaning, plus ρ. statsmodels' covariance of the estimates is the inverse of minus the
Hessian of its log-likelihood (profiled over the scale only) in (β, Ψ/σ² entries,
variance components/σ²); here that Hessian is taken by finite differences of the engine's
likelihood in those parameters and ρ, since the per-group algebra of the iid case does
not apply. The β directions are cheap: r²(β) = r²(β̂) + ‖R_X(β − β̂)‖² at a fixed (θ, ρ).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import scipy.linalg as la

from ..engine.fit import FitOptions
from ..engine.objective import deviance
from ..engine.optimize import finite_difference_derivatives
from ..engine.threads import blas_threads
from ..results.residual import ResidualMixedLMResults, with_residual_block
from ..results.summary import lme4_summary
from .fit import split_fit_kwargs
from .params import is_independent
from .results import MixedLMCompatResults

if TYPE_CHECKING:
    from .model import MixedLM

__all__ = ["fit_compat", "ResidualCompatResults", "compat_deviance", "compat_covariance"]



def fit_compat(
    model: MixedLM, start_params, reml: bool, do_cg: bool, free, fit_kwargs: dict
) -> ResidualCompatResults:
    """``MixedLM.fit`` for a model built with ``residual=``: joint BOBYQA over (θ, ρ)."""
    if not do_cg:
        raise NotImplementedError("do_cg=False is not supported with a residual structure")
    reml, theta_start, options = split_fit_kwargs(dict(fit_kwargs), reml)
    start = model._as_params(start_params)
    view = model._view(is_independent(free, start, model.k_re))
    engine = view._engine
    theta0 = None
    if theta_start is not None:
        theta0 = np.asarray(theta_start, dtype=float)
    elif start is not None:
        theta0 = view._theta_from_params(engine, start)
    fixed = view._fixed_theta(engine, free)
    fixed_theta = None
    if fixed.any():
        base = engine.pls.initial_theta if theta0 is None else theta0
        fixed_theta = np.where(fixed, base, np.nan)
    verbose = options.pop("verbose", None)
    fit = engine.optimize(
        REML=reml, start=theta0, fixed=fixed_theta, options=FitOptions(**options), verbose=verbose
    )
    return ResidualCompatResults.of_model(fit, view, free, model.use_sqrt, fixed)


# ======================================================================================
# statsmodels' covariance of the estimates, by finite differences
# ======================================================================================


def compat_deviance(
    res: MixedLMCompatResults, engine_beta: bool = False
) -> tuple[Callable, np.ndarray, np.ndarray]:
    """(f, x̂, free): −2 × statsmodels' log-likelihood (scale profiled out) as f(x).

    x = (β (p,), the variance parameters of ``param_specs`` (m,), ρ (r,)); ``free`` (p+m,)
    marks the parameters ``free`` leaves free. ``engine_beta``: β̃ of the engine's
    centred and scaled X̃ = XA instead of β (well-conditioned differences). Also for fits
    without a residual structure (r = 0), which checks it against statsmodels' analytic
    Hessian.
    """
    engine = res.engine
    terms, o = engine.design.terms, engine.pls.theta_offsets
    specs = res.model.layout.param_specs()
    relcov = [res._relcov(s) for s in range(len(terms))]
    rho = res.params_all[engine.n_theta :]
    p, m, r = res.k_fe, len(specs), len(rho)
    cache: dict[bytes, tuple] = {}

    def solve(vc: np.ndarray, rh: np.ndarray):
        key = np.r_[vc, rh].tobytes()
        if key not in cache:
            mats = [c.copy() for c in relcov]
            for (s, a, b), v in zip(specs, vc):
                mats[s][a, b] = mats[s][b, a] = v
            theta = np.empty(o[-1])
            try:
                for s, t in enumerate(terms):
                    theta[o[s] : o[s + 1]] = t.theta_from_template(la.cholesky(mats[s], lower=True))
            except (la.LinAlgError, ValueError):
                cache[key] = None
                return None
            if r and not engine.structure.valid(rh):
                cache[key] = None
                return None
            sol = engine.solve(np.r_[theta, rh])
            cache[key] = (sol, engine.cp.sum_log_weights)
        return cache[key]

    def f(x: np.ndarray) -> float:
        got = solve(x[p : p + m], x[p + m :])
        if got is None or not np.all(np.isfinite(x)):
            return np.inf
        sol, slw = got
        R, beta = (sol.RX_engine, sol.beta_engine) if engine_beta else (sol.RX, sol.beta)
        r2 = sol.pwrss + float(np.sum((R @ (x[:p] - beta)) ** 2))
        return deviance(sol.logdet_L, sol.logdet_RX, r2, res.nobs, p, res.reml, slw)

    beta = res.solution.beta_engine if engine_beta else res.solution.beta
    x0 = np.r_[beta, [relcov[s][a, b] for s, a, b in specs], rho]
    pat = res._free_packed()
    free = np.ones(p + m, bool) if pat is None else np.asarray(pat, bool)
    return f, x0, free


def compat_covariance(res: MixedLMCompatResults) -> tuple[np.ndarray, np.ndarray]:
    """((p+m, p+m) covariance of (β, variance params), (p+m+r, p+m+r) Hessian of the llf).

    The inverse of minus the llf Hessian over the free parameters and ρ; fixed ones get
    zero rows. Where the Hessian is not negative definite (boundary fits), β gets lme4's
    σ²(R_XᵀR_X)⁻¹ and the variance parameters NaN. With every β free the differences are
    taken in the engine's β̃ (X̃ = XA, well scaled) and mapped back with A.
    """
    p = res.k_fe
    fixed = getattr(res.solution, "fixed", None)
    pat = res._free_packed()
    engine_beta = fixed is not None and (pat is None or bool(np.all(pat[:p])))
    f, x0, free = compat_deviance(res, engine_beta)
    k, r = len(free), len(x0) - len(free)
    use = np.r_[free, np.ones(r, bool)]
    engine = res.engine

    def g(z: np.ndarray) -> float:
        x = x0.copy()
        x[use] = z
        return f(x)

    with blas_threads(engine.pls.chol.blas_threads):
        _, H = finite_difference_derivatives(g, x0[use], np.full(int(use.sum()), -np.inf))
    hess = np.zeros((len(x0), len(x0)))
    hess[np.ix_(use, use)] = -0.5 * H
    cov = np.zeros((k, k))
    idx = np.flatnonzero(free)
    try:
        if not np.all(np.isfinite(H)):
            raise np.linalg.LinAlgError("not finite")
        np.linalg.cholesky(H)
        cov[np.ix_(idx, idx)] = (2.0 * np.linalg.inv(H))[: len(idx), : len(idx)]
    except np.linalg.LinAlgError:  # e.g. on the boundary: lme4's Var(β̂), NaN for the rest
        cov[np.ix_(idx, idx)] = np.nan
        cov[:p, :p] = res.cov_fe
        return cov, _beta_map(hess, np.linalg.inv(fixed.A).T) if engine_beta else hess
    if engine_beta:  # β = Aβ̃ + shift: Var(β) = A Var(β̃) Aᵀ, ∂²/∂β² = A⁻ᵀ ∂²/∂β̃² A⁻¹
        return _beta_map(cov, fixed.A), _beta_map(hess, fixed.A_inv.T)
    return cov, hess


def _beta_map(M: np.ndarray, B: np.ndarray) -> np.ndarray:
    """J M Jᵀ with J = diag(B, I): B (p, p) applied to the β rows and columns of M."""
    J = np.eye(M.shape[0])
    p = B.shape[0]
    J[:p, :p] = B
    return J @ M @ J.T


# ======================================================================================
# Results
# ======================================================================================


class ResidualCompatResults(ResidualMixedLMResults, MixedLMCompatResults):
    """statsmodels-API results with a residual structure (ρ in ``residual_params``).

    ``params``, ``bse``, ``cov_params()``, ``summary()`` follow statsmodels (the summary
    gets a table of ρ); the covariance comes from a finite-difference Hessian in
    statsmodels' parameters and ρ. ``random_effects_cov`` is available for a single
    random-effects term; ``profile_re`` is not available.
    """

    @property
    def _compat(self) -> tuple[np.ndarray, np.ndarray]:
        if "_compat_cache" not in self.__dict__:
            self.__dict__["_compat_cache"] = compat_covariance(self)
        return self.__dict__["_compat_cache"]

    @property
    def _cov_params(self) -> np.ndarray:
        return self._compat[0]

    @property
    def hessian(self) -> np.ndarray:
        """Hessian of statsmodels' log-likelihood in (β, variance parameters, ρ)."""
        return self._compat[1]

    @property
    def _algebra(self):
        raise NotImplementedError("the per-group algebra assumes independent residuals")

    @property
    def _df_modelwc(self) -> int:
        return MixedLMCompatResults._df_modelwc.fget(self) + len(self._rho)

    @property
    def random_effects_cov(self) -> dict:
        """Conditional covariance of each group's random effects (single term only)."""
        if not self._only_re:
            self._unsupported("random_effects_cov with several random-effects terms")
        index = pd.Index(self.model.exog_re_names)
        covs = self.condvar_blocks[0]
        return {
            g: pd.DataFrame(c, index=index, columns=index)
            for g, c in zip(self.model.group_labels, covs)
        }

    def profile_re(self, *args, **kwargs):
        self._unsupported("profile_re()")

    def summary(self, yname=None, xname_fe=None, xname_re=None, title=None, alpha=0.05):
        """statsmodels' summary with a table of the residual parameters."""
        smry = MixedLMCompatResults.summary(self, yname, xname_fe, xname_re, title, alpha)
        table = self.residual_table(1 - alpha)
        cells = [[f"{v:.3f}" if np.isfinite(v) else "" for v in row] for row in table.to_numpy()]
        # the names as a column of their own: the summary pads every column separator to
        # reach the frame's width, and counts the separator after a row index as none
        names = [str(n).ljust(max(len(str(m)) for m in table.index)) for n in table.index]
        frame = pd.DataFrame(cells, columns=table.columns).assign(**{"": names})
        smry.add_df(frame[["", *table.columns]], index=False, align="r")
        smry.add_text(f"Residual structure: {self._structure.describe()}")
        return smry

    def summary_lme4(self) -> str:
        """lme4's printout with the residual structure's block."""
        return with_residual_block(lme4_summary(self), self)

    def __repr__(self) -> str:
        return ResidualMixedLMResults.__repr__(self)
