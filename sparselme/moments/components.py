r"""Variance components of crossed random intercepts by the method of moments.

The statistics are quadratic forms of the OLS residuals built from level sums
(``.quadratic``); each has an exact expectation ``E U = C σ²``.

1. **Gao & Owen** (EJS 2017; Statistica Sinica 2020): for each factor f the U-statistic
   ``U_f = ½ Σ_{g_f(i) = g_f(i')} (r_i − r_i')²`` and the all-pairs ``U_0``: K+1 equations
   for K+1 unknowns, ``σ̂²_GO = C⁻¹ U``. Unbiased, but on designs with very unequal level
   sizes the pairs inside the largest levels dominate (a level with n rows has n² pairs),
   and the component of a factor whose popular levels recur everywhere (items rated by
   everyone) is estimated from few effective levels.
2. **Efficient combination** (default when the covariance is estimated): with σ̂²_GO as
   a pilot, for each factor f the within-level sum of squares
   ``W_f = Σ_ℓ Σ_{i∈ℓ} (r_i − r̄_ℓ)²`` (pairs weighted 1/n_ℓ) and the weighted between-level
   sum ``B_f = Σ_ℓ c_ℓ (Σ_{i∈ℓ} r_i)²`` with ``c_ℓ = (n_ℓ σ_f² + τ_f)⁻²``,
   ``τ_f = σ_e² + Σ_{h≠f} σ_h²`` (each level mean weighted by the inverse square of its
   pilot variance, as in a one-way REML step), and the total sum of squares: 2K+1
   statistics, combined by generalized least squares on their estimated covariance Σ
   (``.sampling``): ``σ̂² = (CᵀΣ⁻¹C)⁻¹ CᵀΣ⁻¹ U`` with covariance ``(CᵀΣ⁻¹C)⁻¹`` (a two-step
   GMM estimator). Also reported: the overidentification statistic
   ``J = (U − Cσ̂²)ᵀ Σ⁻¹ (U − Cσ̂²)``, about χ² with K degrees of freedom under the model.

Passes: pass 2 (level sums of r and r²; every statistic's value for any weights), pass 3
(the correction sums of the expectations, with pass V1 of ``.sampling``), pass V2.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import IdentifiabilityError
from .counts import Counts
from .quadratic import (
    Equations,
    Statistic,
    base_traces,
    correction_sums,
    equations,
    level_moments,
    residual_pass,
)
from .sampling import draw_sums, draws_for, statistic_covariance
from .source import Block, Layout, Reduce, Sums, chunk_pass

__all__ = ["ComponentEstimate", "estimate_components", "ols"]


def ols(counts: Counts) -> tuple[np.ndarray, np.ndarray]:
    """``(β_OLS, (XᵀX)⁻¹)``; a rank-deficient X raises ``IdentifiabilityError``."""
    w, v = np.linalg.eigh(counts.xtx)
    if w.size and w[0] <= 1e-10 * max(w[-1], 1e-300):
        raise IdentifiabilityError(
            "the fixed-effects columns are linearly dependent (or constant zero); "
            "drop redundant covariates"
        )
    G = (v / w) @ v.T
    return G @ counts.xty, G


def gao_owen_statistics(counts: Counts, names: tuple[str, ...]) -> list[Statistic]:
    """U_f (φ = n_f, w = 1) per factor, then the all-pairs U_0 (grand, φ = N, w = 1)."""
    K = counts.K
    out = [
        Statistic(f"U[{names[f]}]", f, counts.n[f].astype(np.float64), np.ones(counts.levels[f]))
        for f in range(K)
    ]
    out.append(Statistic("U[all]", K, np.array([float(counts.N)]), np.ones(1)))
    return out


def efficient_statistics(
    counts: Counts, names: tuple[str, ...], pilot: np.ndarray
) -> list[Statistic]:
    """W_f and B_f per factor (weights from the pilot components), then the total SS."""
    K = counts.K
    total = float(np.sum(pilot))
    se2 = max(pilot[K], 1e-6 * total, 1e-300)
    out = []
    for f in range(K):
        n = counts.n[f].astype(np.float64)
        inv_n = np.divide(1.0, n, out=np.zeros_like(n), where=n > 0)
        tau = se2 + total - pilot[K] - pilot[f]
        c = 1.0 / (n * max(pilot[f], 0.0) + tau) ** 2
        out.append(Statistic(f"W[{names[f]}]", f, np.ones_like(n), inv_n))
        out.append(Statistic(f"B[{names[f]}]", f, np.zeros_like(n), -c))
    out.append(Statistic("R", K, np.ones(1), np.zeros(1)))
    return out


@chunk_pass
def stats_pass(
    blk: Block,
    layout: Layout,
    counts: Counts,
    stats: list[Statistic],
    draws: list[np.ndarray] | None,
) -> Sums:
    """Pass 3: the correction sums of all statistics, and pass V1's draw sums."""
    s = Sums()
    correction_sums(blk, layout, counts, stats, s)
    if draws is not None:
        draw_sums(blk, layout, draws, s)
    return s


def _solve(C: np.ndarray, U: np.ndarray) -> np.ndarray:
    """C⁻¹U, refusing a (numerically) singular C: columns scaled to unit norm, the
    smallest singular value must exceed 1e-10 of the largest."""
    scale = np.linalg.norm(C, axis=0)
    sv = np.linalg.svd(C / np.where(scale > 0, scale, 1.0), compute_uv=False)
    try:
        if scale.min() == 0 or sv[-1] <= 1e-10 * sv[0]:
            raise np.linalg.LinAlgError
        return np.linalg.solve(C, U)
    except np.linalg.LinAlgError:
        raise IdentifiabilityError(
            "the variance components are not identified by these data: the moment "
            "equations are singular (a factor with one level, two factors that coincide, "
            "or an interaction with one row per cell, which the residual absorbs); drop "
            "or merge factors"
        ) from None


def _whiten(cov: np.ndarray) -> np.ndarray:
    """A matrix L⁻¹ with L Lᵀ ≈ cov, eigenvalues floored (Monte Carlo noise)."""
    d = np.sqrt(np.maximum(np.diag(cov), 1e-300))
    corr = cov / np.outer(d, d)
    w, v = np.linalg.eigh(corr)
    w = np.maximum(w, 1e-8 * w.max())
    return (v / np.sqrt(w)).T / d


@dataclass(frozen=True)
class ComponentEstimate:
    """Moment estimates of (σ_1², ..., σ_K², σ_e²).

    sigma2_raw : (K+1,) the estimate (may be negative); cov : (K+1, K+1) its estimated
    covariance, or None. method : "gmm" or "gao-owen". gao_owen : (K+1,) the Gao–Owen
    estimate. pilot : (K+1,) the pilot used for weights and draws. equations : the
    statistics used, their values and expectation matrix. stat_cov : their estimated
    covariance (or None). J : overidentification statistic (gmm only).
    """

    sigma2_raw: np.ndarray
    cov: np.ndarray | None
    method: str
    gao_owen: np.ndarray
    pilot: np.ndarray
    equations: Equations
    stat_cov: np.ndarray | None
    J: float | None
    parts: dict = field(default_factory=dict)


def estimate_components(
    reduce: Reduce,
    layout: Layout,
    counts: Counts,
    beta_ols: np.ndarray,
    G: np.ndarray,
    reps: int,
    seed,
) -> ComponentEstimate:
    """Passes 2, 3 (with V1) and V2; see the module docstring."""
    K = layout.K
    S, SS = level_moments(reduce(residual_pass, layout, beta_ols), K)
    go = gao_owen_statistics(counts, layout.factors)
    T0, _ = base_traces(counts, go)  # expectations without the X corrections: the pilot
    U0 = np.array([st.value(S[st.factor], SS[st.factor]) for st in go])
    pilot = np.maximum(_solve(T0, U0), 0.0)
    eff = efficient_statistics(counts, layout.factors, pilot) if reps > 0 else []
    stats = go + eff
    draws = draws_for(pilot, layout.levels, reps, seed) if reps > 0 else None
    s3 = reduce(stats_pass, layout, counts, stats, draws)
    eq = equations(counts, stats, S, SS, s3, G)
    go_eq = eq.subset(list(range(K + 1)))
    gao_owen = _solve(go_eq.C, go_eq.U)
    if reps <= 0:
        return ComponentEstimate(gao_owen, None, "gao-owen", gao_owen, pilot, go_eq, None, None)
    idx = list(range(K + 1, len(stats)))
    eff_eq = eq.subset(idx)
    cov_u, parts = statistic_covariance(
        reduce, layout, counts, eff_eq, eff, draws, s3, float(pilot[K])
    )
    Winv = _whiten(cov_u)
    A = Winv @ eff_eq.C
    b = Winv @ eff_eq.U
    info = A.T @ A
    try:
        raw = np.linalg.solve(info, A.T @ b)
        cov = np.linalg.inv(info)
    except np.linalg.LinAlgError:
        raise IdentifiabilityError(
            "the variance components are not identified by these data (singular moment "
            "equations); drop or merge factors"
        ) from None
    resid = b - A @ raw
    return ComponentEstimate(
        raw, 0.5 * (cov + cov.T), "gmm", gao_owen, pilot, eff_eq, cov_u, float(resid @ resid), parts
    )
