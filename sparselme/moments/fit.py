"""The whole moment fit of a crossed random-intercept model, pass by pass.

``fit_moments`` runs, over any reducer (``.source``):

1. pass 1, counts (``.counts.count_pass``), then β_OLS on the driver;
2. pass 2, level sums of the OLS residuals (``.quadratic.residual_pass``): the
   Gao–Owen pilot estimate;
3. pass 3, the correction sums of the exact expectations, with the first Monte Carlo
   pass; pass V2, the second: the estimated covariance of the statistics and the
   efficient (GMM) components (``.components``, ``.sampling``); negative
   solutions are set to 0 and reported;
4. one pass per iteration of the GLS solve (``.gls``): β̂, Cov(β̂), conditional modes.

Everything held between passes is O(Σ_f L_f · (p + R) + p²), R Monte Carlo draws (plus
the bounded cell samples).
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field

import numpy as np

from ..errors import IdentifiabilityError, SingularFitWarning
from .cells import DEFAULT_CELL_BUDGET
from .components import ComponentEstimate, estimate_components, ols
from .counts import Counts, count_pass
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
    sigma2_gao_owen : (K+1,) the Gao–Owen estimate (the pilot of the efficient one).
    method : "gmm", "gao-owen" (``variance_reps=0``) or "given" (``components=``).
    statistics : names of the statistics combined; ustats : (k,) their values;
    moment_matrix : (k, K+1) C with E U = C σ²; J : overidentification statistic.
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
    sigma2_gao_owen: np.ndarray | None
    method: str
    statistics: tuple[str, ...]
    ustats: np.ndarray | None
    moment_matrix: np.ndarray | None
    J: float | None
    x_names: tuple[str, ...]
    beta: np.ndarray
    beta_cov: np.ndarray
    beta_ols: np.ndarray
    ols_cov: np.ndarray
    modes: list[np.ndarray] = field(repr=False)
    nobs: int = 0
    levels: tuple[int, ...] = ()
    iterations: int = 0
    converged: bool = True
    passes: int = 0
    diagnostics: dict = field(default_factory=dict, repr=False)

    @property
    def bse(self) -> np.ndarray:
        """(p,) standard errors of β̂ (GLS)."""
        return np.sqrt(np.diag(self.beta_cov))

    @property
    def bse_ols(self) -> np.ndarray:
        """(p,) naive OLS standard errors (ignore the random effects; for comparison)."""
        return np.sqrt(np.diag(self.ols_cov))

    def summary(self) -> str:
        """A plain-text table of the components and the fixed effects."""
        se = self.sigma2_se
        go = self.sigma2_gao_owen
        lines = [
            f"Crossed random intercepts by moments ({self.method}) and GLS: "
            f"{self.nobs} rows, {self.passes} passes, {self.iterations} GLS iterations",
            "",
            f"{'component':<16}{'levels':>10}{'variance':>12}{'std.err':>12}{'Gao-Owen':>12}",
        ]
        for k, name in enumerate(self.names):
            levels = self.levels[k] if k < len(self.levels) else self.nobs
            cells = [f"{self.sigma2[k]:12.6g}"]
            cells.append(f"{se[k]:12.4g}" if se is not None else f"{'':12}")
            cells.append(f"{go[k]:12.6g}" if go is not None else f"{'':12}")
            lines.append(f"{name:<16}{levels:>10}" + "".join(cells))
        lines += [
            "",
            f"{'fixed effect':<16}{'estimate':>12}{'std.err':>12}{'z':>9}{'OLS s.e.':>12}",
        ]
        for j, name in enumerate(self.x_names):
            b, e = self.beta[j], self.bse[j]
            lines.append(f"{name:<16}{b:12.6g}{e:12.4g}{b / e:9.2f}{self.bse_ols[j]:12.4g}")
        return "\n".join(lines)

    @property
    def sigma2_se(self) -> np.ndarray | None:
        """(K+1,) standard errors of the variance components (None if not computed)."""
        if self.sigma2_cov is None:
            return None
        return np.sqrt(np.maximum(np.diag(self.sigma2_cov), 0.0))


def _ols_cov(counts: Counts, beta: np.ndarray, G: np.ndarray) -> np.ndarray:
    rss = counts.yty - 2.0 * beta @ counts.xty + beta @ counts.xtx @ beta
    dof = max(counts.N - beta.shape[0], 1)
    return max(rss, 0.0) / dof * G


def fit_moments(
    reduce: Reduce,
    layout: Layout,
    *,
    components: np.ndarray | None = None,
    variance_reps: int = 20,
    seed: int | None = 0,
    solver: str = "cg",
    tol: float = 1e-8,
    max_iter: int = 200,
    cell_budget: int = DEFAULT_CELL_BUDGET,
) -> MomentsFit:
    """Fit a crossed random-intercept model by moments + GLS.

    Parameters
    ----------
    reduce : the data, as a reducer over chunks (``.source.in_memory``, adapters).
    layout : which chunk columns are the factors, covariates and response.
    components : (K+1,) variance components to use instead of estimating them (e.g.
        REML's): only pass 1 and the GLS passes run.
    variance_reps : Monte Carlo level draws R for the covariance of the statistics (2
        passes); 0 gives the plain Gao–Owen estimate without a covariance.
    seed : seed of those draws.
    solver : "cg" (default) or "backfitting"; tol, max_iter : stopping rule.
    cell_budget : most (f, h) cells counted exactly per pair of crossed factors.
    """
    counted = Counted(reduce)
    t0 = time.perf_counter()
    s1 = counted(count_pass, layout, cell_budget)
    if s1 is None:
        raise IdentifiabilityError("the data have no rows")
    counts = Counts.from_sums(s1, layout)
    beta_ols, G = ols(counts)
    est: ComponentEstimate | None = None
    clipped: list[str] = []
    if components is None:
        est = estimate_components(counted, layout, counts, beta_ols, G, variance_reps, seed)
        raw = est.sigma2_raw
        sigma2 = np.maximum(raw, 0.0)
        clipped = [(*layout.factors, "Residual")[f] for f in np.flatnonzero(raw < 0)]
        if clipped:
            warnings.warn(
                f"moment estimates of {', '.join(clipped)} were negative and are set to 0",
                SingularFitWarning,
                stacklevel=2,
            )
    else:
        sigma2 = raw = np.asarray(components, dtype=np.float64).copy()
    t1 = time.perf_counter()
    sol: GLSSolution = solve_gls(
        counted, layout, counts, sigma2, solver=solver, tol=tol, max_iter=max_iter
    )
    t2 = time.perf_counter()
    diagnostics = {
        "cell_fraction": counts.cell_fraction(),
        "nested": counts.nested,
        "clipped": clipped,
        "pilot": None if est is None else est.pilot,
        "statistic_cov": None if est is None else est.stat_cov,
        "expectation_se": None if est is None else est.equations.C_se,
        "variance_parts": {} if est is None else est.parts,
        "solver": solver,
        "residual_history": sol.history,
        "gls_passes": sol.passes,
        "pass_seconds": list(counted.seconds),
        "seconds": {"components": t1 - t0, "gls": t2 - t1},
        "xtvx": sol.xtvx,
    }
    eq = None if est is None else est.equations
    return MomentsFit(
        names=(*layout.factors, "Residual"),
        sigma2=sigma2,
        sigma2_raw=raw,
        sigma2_cov=None if est is None else est.cov,
        sigma2_gao_owen=None if est is None else est.gao_owen,
        method="given" if est is None else est.method,
        statistics=() if eq is None else tuple(eq.names),
        ustats=None if eq is None else eq.U,
        moment_matrix=None if eq is None else eq.C,
        J=None if est is None else est.J,
        x_names=tuple(layout.x_names),
        beta=sol.beta,
        beta_cov=sol.cov,
        beta_ols=beta_ols,
        ols_cov=_ols_cov(counts, beta_ols, G),
        modes=sol.modes,
        nobs=counts.N,
        levels=tuple(layout.levels),
        iterations=sol.iterations,
        converged=sol.converged,
        passes=counted.passes,
        diagnostics=diagnostics,
    )
