"""The whole moment fit of a crossed random-intercept model, pass by pass.

:func:`fit_moments` runs, over any reducer (:mod:`.source`):

1. pass 1, counts (:func:`.components.count_pass`), then β_OLS on the driver;
2. pass 2, U-statistics on OLS residuals (:func:`.components.residual_pass`), then the
   moment equations ``C σ² = U`` (negative solutions are set to 0 and reported);
3. optionally two passes for the covariance of σ̂² (:mod:`.sampling`);
4. one pass per iteration of the GLS solve (:mod:`.gls`): β̂, Cov(β̂), conditional modes.

Everything held between passes is O(Σ_f L_f · p + p²) (plus the bounded cell samples).
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field

import numpy as np

from ..errors import SingularFitWarning
from .cells import DEFAULT_CELL_BUDGET
from .components import Counts, MomentEquations, estimate
from .gls import GLSSolution, solve_gls
from .source import Counted, Layout, Reduce

__all__ = ["MomentsFit", "fit_moments"]


@dataclass(frozen=True)
class MomentsFit:
    """A moment-method fit of ``y ~ X + (1|f_1) + ... + (1|f_K)``.

    Attributes
    ----------
    names : the K factor names, then "Residual".
    sigma2 : (K+1,) variance components used (negative moment solutions set to 0).
    sigma2_raw : (K+1,) the unconstrained moment solution C⁻¹U.
    sigma2_cov : (K+1, K+1) estimated covariance of sigma2_raw (None if not computed).
    ustats : (K+1,) the U-statistics (U_1..U_K, U_0). moment_matrix : (K+1, K+1) C.
    x_names : the p fixed-effects names. beta : (p,) GLS β̂. beta_cov : (p, p) Cov(β̂).
    beta_ols : (p,) OLS β. ols_cov : (p, p) naive OLS covariance s²(XᵀX)⁻¹.
    modes : per factor, (L_f,) conditional modes of the random intercepts.
    nobs : N. levels : (K,) levels per factor.
    iterations, converged : of the GLS solve. passes : passes over the data in all.
    diagnostics : cell sampling, nesting, solver residuals, timings per stage.
    """

    names: tuple[str, ...]
    sigma2: np.ndarray
    sigma2_raw: np.ndarray
    sigma2_cov: np.ndarray | None
    ustats: np.ndarray
    moment_matrix: np.ndarray
    x_names: tuple[str, ...]
    beta: np.ndarray
    beta_cov: np.ndarray
    beta_ols: np.ndarray
    ols_cov: np.ndarray
    modes: list[np.ndarray]
    nobs: int
    levels: tuple[int, ...]
    iterations: int
    converged: bool
    passes: int
    diagnostics: dict = field(default_factory=dict)

    @property
    def bse(self) -> np.ndarray:
        """(p,) standard errors of β̂ (GLS)."""
        return np.sqrt(np.diag(self.beta_cov))

    @property
    def bse_ols(self) -> np.ndarray:
        """(p,) naive OLS standard errors (ignore the random effects; for comparison)."""
        return np.sqrt(np.diag(self.ols_cov))

    @property
    def sigma2_se(self) -> np.ndarray | None:
        """(K+1,) standard errors of the variance components (None if not computed)."""
        if self.sigma2_cov is None:
            return None
        return np.sqrt(np.maximum(np.diag(self.sigma2_cov), 0.0))


def _ols_cov(counts: Counts, eq: MomentEquations) -> np.ndarray:
    beta = eq.beta_ols
    rss = counts.yty - 2.0 * beta @ counts.xty + beta @ counts.xtx @ beta
    dof = max(counts.N - beta.shape[0], 1)
    return max(rss, 0.0) / dof * eq.G


def fit_moments(
    reduce: Reduce,
    layout: Layout,
    *,
    components: np.ndarray | None = None,
    variance_reps: int = 50,
    seed: int | None = 0,
    solver: str = "cg",
    tol: float = 1e-8,
    max_iter: int = 200,
    cell_budget: int = DEFAULT_CELL_BUDGET,
) -> MomentsFit:
    """Fit a crossed random-intercept model by moments + GLS.

    Parameters
    ----------
    reduce : the data, as a reducer over chunks (:func:`.source.in_memory`, adapters).
    layout : which chunk columns are the factors, covariates and response.
    components : (K+1,) variance components to use instead of the moment estimates
        (e.g. REML's); the moment statistics are still computed and reported.
    variance_reps : Monte Carlo replicates for the covariance of σ̂² (0: skip; 2 passes).
    seed : seed of those replicates.
    solver : "cg" (default) or "backfitting"; tol, max_iter : stopping rule.
    cell_budget : most (f, h) cells counted exactly per pair of crossed factors.
    """
    from .sampling import component_covariance

    counted = Counted(reduce)
    clock = {"start": time.perf_counter()}
    counts, eq = estimate(counted, layout, cell_budget)
    clock["moments"] = time.perf_counter()
    raw = eq.solve()
    K = layout.K
    if components is None:
        sigma2 = np.maximum(raw, 0.0)
        clipped = [layout.factors[f] if f < K else "Residual" for f in np.flatnonzero(raw < 0)]
        if clipped:
            warnings.warn(
                f"moment estimates of {', '.join(clipped)} were negative and are set to 0",
                SingularFitWarning,
                stacklevel=2,
            )
    else:
        sigma2 = np.asarray(components, dtype=np.float64).copy()
        clipped = []
    cov_sigma = None
    var_parts: dict = {}
    if variance_reps > 0:
        cov_sigma, var_parts = component_covariance(
            counted, layout, counts, eq, sigma2, variance_reps, seed
        )
    clock["variance"] = time.perf_counter()
    sol: GLSSolution = solve_gls(
        counted, layout, counts, sigma2, solver=solver, tol=tol, max_iter=max_iter
    )
    clock["gls"] = time.perf_counter()
    diagnostics = {
        "cells_T": counts.T,
        "cells_T_se": counts.T_se,
        "cell_fraction": counts.cell_fraction,
        "nested": counts.nested,
        "clipped": clipped,
        "solver": solver,
        "residual_history": sol.history,
        "gls_passes": sol.passes,
        "pass_seconds": list(counted.seconds),
        "seconds": {
            "moments": clock["moments"] - clock["start"],
            "variance": clock["variance"] - clock["moments"],
            "gls": clock["gls"] - clock["variance"],
        },
        "variance_parts": var_parts,
        "xtvx": sol.xtvx,
    }
    return MomentsFit(
        names=(*layout.factors, "Residual"),
        sigma2=sigma2,
        sigma2_raw=raw,
        sigma2_cov=cov_sigma,
        ustats=eq.U,
        moment_matrix=eq.C,
        x_names=tuple(layout.x_names),
        beta=sol.beta,
        beta_cov=sol.cov,
        beta_ols=eq.beta_ols,
        ols_cov=_ols_cov(counts, eq),
        modes=sol.modes,
        nobs=counts.N,
        levels=tuple(layout.levels),
        iterations=sol.iterations,
        converged=sol.converged,
        passes=counted.passes,
        diagnostics=diagnostics,
    )
