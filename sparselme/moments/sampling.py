r"""Sampling covariance of the moment estimates of the variance components.

``σ̂² = C⁻¹ U`` is linear in the statistics ``U_f = yᵀ Ã_f y`` with ``Ã_f = M A_f M``
(:mod:`.components`), so ``Cov(σ̂²) = C⁻¹ Cov(U) C⁻ᵀ``. For Gaussian random effects and
errors, and since ``Ã_f X = 0``::

    Cov(U_f, U_g) = 2 tr(Ã_f V Ã_g V),   V = V_Z + σ_e² I,   V_Z = Σ_h σ_h² Z_h Z_hᵀ,
                  = 2 tr(Ã_f V_Z Ã_g V_Z)          (1)
                  + 4 σ_e² tr(Ã_f Ã_g V_Z)          (2)
                  + 2 σ_e⁴ tr(Ã_f Ã_g)              (3)

evaluated at the estimates. Term (3) is exact from sums of passes 1–2:
``tr(Ã_f Ã_g) = tr(A_f A_g) − 2 tr(G Xᵀ A_g A_f X) + tr(G XᵀA_fX G XᵀA_gX)``.
Terms (1) and (2) contain traces such as ``‖Z_aᵀ Z_b Z_bᵀ Z_a‖²_F`` (counts of 4-cycles
of the bipartite level graph) that no linear-time pass computes exactly. They are
estimated by Monte Carlo over **level draws only**: ``w = Σ_h Z_h u_h*`` with
``u_h* ~ N(0, σ̂_h² I)`` drawn on the driver (R replicates at once), so every pass is
deterministic given the seed and does not depend on the chunking:

* pass V1 (:func:`draw_pass`) gives per-level sums of w and the sums needed for
  ``U_f(M w) = wᵀ Ã_f w``; their covariance over the replicates, about the exact mean
  ``Σ_h σ_h² C[f, h]``, estimates (1);
* pass V2 (:func:`cross_pass`) gives ``(Ã_f w)ᵀ (Ã_g w)``, whose mean estimates
  ``tr(Ã_f Ã_g V_Z)`` in (2).

The Monte Carlo relative error of each term is about ``(2/R)^½``. Non-Gaussian effects
(kurtosis) are not accounted for.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from .components import Counts, MomentEquations, level_sums
from .source import Block, Layout, Reduce, Sums, read_block

__all__ = ["component_covariance", "draw_pass", "cross_pass"]

_CELLS_PER_SLICE = 1 << 22  # replicate × row values held at once inside a chunk


def _slices(blk: Block, reps: int):
    step = max(1, _CELLS_PER_SLICE // max(reps, 1))
    for a in range(0, blk.m, step):
        yield Block(blk.codes[:, a : a + step], blk.X[a : a + step], blk.y[a : a + step])


def _draw_rows(blk: Block, draws: list[np.ndarray]) -> np.ndarray:
    """(R, m) ``w`` for the rows of ``blk`` from level draws (R, L_f) per factor."""
    w = draws[0][:, blk.codes[0]]
    for f in range(1, len(draws)):
        w += draws[f][:, blk.codes[f]]
    return w


def draw_pass(chunk: Mapping, layout: Layout, draws: list[np.ndarray], counts: Counts) -> Sums:
    """Pass V1: sums of the replicates ``w`` (R of them, one per row of ``draws[f]``)."""
    blk = read_block(chunk, layout)
    if blk is None:
        return None
    R = draws[0].shape[0]
    s = Sums(xw=np.zeros((R, layout.p)), w1=np.zeros(R), w2=np.zeros(R))
    for f, L in enumerate(layout.levels):
        s[f"ws{f}"] = np.zeros((R, L))
        s[f"nw2{f}"] = np.zeros(R)
        s[f"nxw{f}"] = np.zeros((R, layout.p))
    for part in _slices(blk, R):
        w = _draw_rows(part, draws)
        s["xw"] += w @ part.X
        s["w1"] += w.sum(axis=1)
        w2 = w * w
        s["w2"] += w2.sum(axis=1)
        for f, L in enumerate(layout.levels):
            nf = counts.n[f][part.codes[f]].astype(np.float64)
            s[f"ws{f}"] += level_sums(part.codes[f], L, w)
            s[f"nw2{f}"] += w2 @ nf
            s[f"nxw{f}"] += w @ (part.X * nf[:, None])
    return s


def cross_pass(
    chunk: Mapping,
    layout: Layout,
    draws: list[np.ndarray],
    beta: np.ndarray,
    mlev: list[np.ndarray],
    msum: np.ndarray,
    counts: Counts,
) -> Sums:
    """Pass V2: ``(A_f m)ᵀ(A_g m)`` and ``Xᵀ A_f m`` for ``m = M w`` (f, g in 1..K, 0).

    beta : (R, p) OLS coefficients of each replicate; mlev : per factor (R, L_f) level
    sums of m; msum : (R,) Σ m.
    """
    blk = read_block(chunk, layout)
    if blk is None:
        return None
    K, R, N = layout.K, draws[0].shape[0], float(counts.N)
    s = Sums()
    for f in range(K + 1):
        s[f"xa{f}"] = np.zeros((R, layout.p))
        for g in range(f, K + 1):
            s[f"aa{f},{g}"] = np.zeros(R)
    for part in _slices(blk, R):
        m = _draw_rows(part, draws) - beta @ part.X.T
        a = [counts.n[f][part.codes[f]] * m - mlev[f][:, part.codes[f]] for f in range(K)]
        a.append(N * m - msum[:, None])
        for f in range(K + 1):
            s[f"xa{f}"] += a[f] @ part.X
            for g in range(f, K + 1):
                s[f"aa{f},{g}"] += np.einsum("ij,ij->i", a[f], a[g])
    return s


def _replicate_statistics(
    s: Sums, counts: Counts, eq: MomentEquations, layout: Layout
) -> tuple[np.ndarray, np.ndarray, list[np.ndarray], np.ndarray]:
    """From pass V1: β* (R, p), U(Mw) (R, K+1), level sums of m, Σ m."""
    K, N = layout.K, float(counts.N)
    G = eq.G
    beta = s["xw"] @ G  # (R, p); G symmetric
    U = np.empty((beta.shape[0], K + 1))
    mlev = []
    for f in range(K):
        q = np.einsum("rp,pq,rq->r", beta, eq.XAX[f] + counts.xsum[f] @ counts.xsum[f].T, beta)
        nm2 = s[f"nw2{f}"] - 2.0 * np.einsum("rp,rp->r", beta, s[f"nxw{f}"]) + q
        lev = s[f"ws{f}"] - beta @ counts.xsum[f]
        mlev.append(lev)
        U[:, f] = nm2 - np.einsum("rl,rl->r", lev, lev)
    m2 = s["w2"] - np.einsum("rp,rp->r", beta, s["xw"])
    msum = s["w1"] - beta @ counts.colsum
    U[:, K] = N * m2 - msum**2
    return beta, U, mlev, msum


def component_covariance(
    reduce: Reduce,
    layout: Layout,
    counts: Counts,
    eq: MomentEquations,
    sigma2: np.ndarray,
    reps: int,
    seed: int | None,
) -> tuple[np.ndarray, dict]:
    """(K+1, K+1) estimated covariance of σ̂² (two passes), and its parts.

    ``sigma2`` (K+1,) are the (clipped) estimates at which the covariance is evaluated.
    """
    K = layout.K
    rng = np.random.default_rng(seed)
    sd = np.sqrt(np.maximum(sigma2[:K], 0.0))
    draws = [sd[f] * rng.standard_normal((reps, L)) for f, L in enumerate(layout.levels)]
    s1 = reduce(draw_pass, layout, draws, counts)
    beta, U, mlev, msum = _replicate_statistics(s1, counts, eq, layout)
    mean = eq.C[:, :K] @ sigma2[:K]
    dev = U - mean
    term1 = dev.T @ dev / reps
    s2 = reduce(cross_pass, layout, draws, beta, mlev, msum, counts)
    G = eq.G
    term2 = np.empty((K + 1, K + 1))
    for f in range(K + 1):
        for g in range(f, K + 1):
            corr = np.einsum("rp,pq,rq->r", s2[f"xa{f}"], G, s2[f"xa{g}"])
            term2[f, g] = term2[g, f] = float(np.mean(s2[f"aa{f},{g}"] - corr))
    term3 = np.empty((K + 1, K + 1))
    for f in range(K + 1):
        for g in range(K + 1):
            term3[f, g] = (
                eq.traceAA[f, g]
                - 2.0 * np.trace(G @ eq.AA[g][f])
                + np.trace(G @ eq.XAX[f] @ G @ eq.XAX[g])
            )
    se2 = sigma2[K]
    cov_u = term1 + 4.0 * se2 * term2 + 2.0 * se2**2 * term3
    Cinv = np.linalg.inv(eq.C)
    cov = Cinv @ cov_u @ Cinv.T
    parts = {"cov_u": cov_u, "term1": term1, "term2": term2, "term3": term3, "reps": reps}
    return 0.5 * (cov + cov.T), parts
