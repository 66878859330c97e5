"""Starting values for θ from moment estimates (cross-products only, no pass over data).

A good start saves optimizer evaluations. Residuals r of an ordinary least-squares fit of
y on X give, per term:

* ``(1 | g)``: the one-way ANOVA estimate of σ²_g / σ² from between- and within-level
  mean squares (with the usual n₀ correction for unbalanced levels);
* any other term with k columns: per-level regressions b_l = G_l⁻¹ Z_lᵀr (G_l = Z_lᵀZ_l),
  whose spread, less the average sampling covariance σ²·mean(G_l⁻¹), estimates the
  random-effects covariance; its Cholesky factor relative to σ is the template T.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .crossprod import CrossProducts
from .terms import RandomEffectsTerm

__all__ = ["moment_start", "initial_steps", "column_scales", "theta_scales", "SCALE_RATIO"]

# Random-effects columns whose size is outside [1/x, x] give θ's far from 1.
SCALE_RATIO = 1e3


def column_scales(terms: Sequence[RandomEffectsTerm], cp: CrossProducts) -> list[np.ndarray]:
    """Per term, (k,) the sizes of its columns that the optimizer divides out.

    A column's size is its (weighted) root mean square, read from ZᵀWZ; sizes within
    [1/SCALE_RATIO, SCALE_RATIO] are left alone (1), so that fits of ordinary data are
    lme4's to the last digit. A scalar term gets one size for all its columns.
    """
    out = []
    for s, term in enumerate(terms):
        sq = np.einsum("lii->i", cp.diag[s]) / max(cp.nobs, 1)  # (k,) mean squares
        size = term.covariance.column_sizes(sq)
        moderate = (size == 0) | ((size >= 1 / SCALE_RATIO) & (size <= SCALE_RATIO))
        out.append(np.where(moderate, 1.0, size))
    return out


def theta_scales(terms: Sequence[RandomEffectsTerm], cp: CrossProducts) -> np.ndarray:
    """(n_theta,) d with θ̃ = d θ: θ for the columns divided by `column_scales`.

    Scaling column a of a term by 1/s_a scales row a of its template T (T̃ = diag(s) T):
    the same model, with θ̃'s of moderate size for the optimizer and its boundary checks.
    """
    parts = []
    for term, sizes in zip(terms, column_scales(terms, cp)):
        parts.append(term.covariance.theta_scale(sizes))
    return np.concatenate(parts) if parts else np.zeros(0)


def moment_start(
    terms: Sequence[RandomEffectsTerm], cp: CrossProducts, theta_offsets: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(θ₀, mask of entries that were estimated); unestimated entries keep T̃ = I.

    Regressions run on the columns divided by `column_scales` (T = diag(1/s) T̃).
    """
    n = cp.nobs
    sizes = column_scales(terms, cp)
    if cp.p:  # lstsq raises only on non-finite input, which the checks exclude
        beta = np.linalg.lstsq(cp.XtX, cp.Xty, rcond=None)[0]
        rss = float(cp.yty - 2.0 * beta @ cp.Xty + beta @ cp.XtX @ beta)
    else:
        beta, rss = np.zeros(0), float(cp.yty)
    anova = {
        s: _anova_components(
            cp.diag[s][:, 0, 0], cp.Zty[s][:, 0] - cp.ZtX[s][:, 0, :] @ beta, rss, n, cp.p
        )
        for s, term in enumerate(terms)
        if term.intercept_only
    }
    sigma2 = _residual_variance([c for c in anova.values() if c is not None], rss, n, cp.p)
    parts, mask = [], []
    for s, term in enumerate(terms):
        if term.intercept_only:
            comp = anova[s]
            T = None if comp is None else np.array([[np.sqrt(comp[0] / sigma2)]])
        else:
            d = sizes[s]
            G = cp.diag[s] / np.outer(d, d)
            T = _regression_template(G, (cp.Zty[s] - cp.ZtX[s] @ beta) / d, rss, n, cp.p)
        ok = T is not None
        if ok and not term.intercept_only:
            T = T / sizes[s][:, None]
        th = term.theta_from_template(T if ok else np.diag(1.0 / sizes[s]))
        parts.append(th)
        mask.append(np.full(len(th), ok))
    del theta_offsets  # the concatenation order is the offsets' order
    return np.concatenate(parts), np.concatenate(mask)


# BOBYQA's first step for a term with L levels is this / √L of its θ entries (clipped).
INITIAL_STEP_FACTOR = 0.5


def initial_steps(
    terms: Sequence[RandomEffectsTerm],
    theta0: np.ndarray,
    theta_offsets: np.ndarray,
    factor: float | None = None,
) -> np.ndarray:
    """(n_theta,) BOBYQA's first steps around a moment start: as precise as the start.

    A standard deviation estimated from L levels has a relative sampling error of about
    1/√(2L), so each term's θ entries get steps of order that: 1/(2√L) of their size,
    between 2% and 20% (no less than a quarter of that fraction in absolute terms, for
    entries near 0). InstEval-sized and larger designs start close and need fewer
    evaluations to settle; a few levels keep the wide first steps a rough start needs.
    ``factor`` (default `INITIAL_STEP_FACTOR`, ½) took the fewest evaluations over
    the lme4 reference fits among those tried (``python -m benchmarks.evaluations``).
    """
    factor = INITIAL_STEP_FACTOR if factor is None else factor
    steps = np.empty(len(theta0))
    for s, term in enumerate(terms):
        part = slice(theta_offsets[s], theta_offsets[s + 1])
        fraction = float(np.clip(factor / np.sqrt(term.nlevels), 0.02, 0.2))
        steps[part] = np.maximum(fraction * np.abs(theta0[part]), fraction / 4)
    return steps


def _anova_components(counts: np.ndarray, sums: np.ndarray, rss: float, n: int, p: int):
    """(between-level variance, within-level mean square) of a one-way ANOVA, or None."""
    L = len(counts)
    if L < 2 or n - L - p <= 0:
        return None
    ssb = float(np.sum(sums**2 / counts))
    msw = (rss - ssb) / (n - L)
    n0 = (n - np.sum(counts**2) / n) / (L - 1)
    if msw <= 0 or n0 <= 0:
        return None
    return max((ssb / (L - 1) - msw) / n0, 0.0), msw


def _residual_variance(components: list[tuple[float, float]], rss: float, n: int, p: int) -> float:
    """σ² for the intercept terms' start.

    Each term's within-level mean square also holds the variance of the factors crossed
    with it, so with crossed factors the total variance less every between-level
    component is the better estimate; with nested factors that difference is too small,
    and the smallest within-level mean square (the innermost factor's) is used.
    """
    if not components:
        return 1.0
    if len(components) == 1:
        return components[0][1]
    smallest_within = min(msw for _, msw in components)
    remainder = rss / max(n - p, 1) - sum(b for b, _ in components)
    return remainder if remainder >= 0.5 * smallest_within else smallest_within


def _regression_template(G: np.ndarray, h: np.ndarray, rss: float, n: int, p: int):
    """The template T of a moment estimate, or None (a start is only a start)."""
    try:
        return _regression_estimate(G, h, rss, n, p)
    except np.linalg.LinAlgError:
        return None


def _regression_estimate(G: np.ndarray, h: np.ndarray, rss: float, n: int, p: int):
    L, k, _ = G.shape
    det = np.linalg.det(G)
    scale = np.einsum("lii->l", G) ** k
    usable = det > 1e-10 * np.maximum(scale, 1e-300)
    m = int(usable.sum())
    if m <= k or n - m * k - p <= 0:
        return None
    Ginv = np.linalg.inv(G[usable])
    b = np.einsum("lij,lj->li", Ginv, h[usable])
    sigma2 = (rss - float(np.einsum("li,li->", h[usable], b))) / (n - m * k - p)
    if not sigma2 > 0:
        return None
    cov = np.cov(b, rowvar=False).reshape(k, k) - sigma2 * Ginv.mean(axis=0)
    vals, vecs = np.linalg.eigh(cov / sigma2)
    rel = (vecs * np.maximum(vals, 0.0)) @ vecs.T
    rel += np.eye(k) * (1e-6 * max(float(np.max(np.diag(rel))), 1e-6))
    return np.linalg.cholesky(rel)
