r"""Covariance of the statistics ``U_k = rᵀ Q_k r`` (``.quadratic``), estimated.

With ``Q̃_k = M Q_k M`` (so ``U_k = yᵀ Q̃_k y`` and ``Q̃_k X = 0``), for Gaussian random
effects and errors:

    Cov(U_k, U_l) = 2 tr(Q̃_k V Q̃_l V),   V = V_Z + σ_e² I,   V_Z = Σ_h σ_h² Z_h Z_hᵀ,
                  = 2 tr(Q̃_k V_Z Q̃_l V_Z)          (1)
                  + 4 σ_e² tr(Q̃_k Q̃_l V_Z)          (2)
                  + 2 σ_e⁴ tr(Q̃_k Q̃_l)              (3)

at the estimated components. Term (3) is exact (``.quadratic.Equations.tilde_traces``).
Terms (1) and (2) contain traces such as ``‖Z_aᵀ Z_b Z_bᵀ Z_a‖²_F`` (4-cycles of the
bipartite level graph) that no linear-time pass computes exactly. They are estimated by
Monte Carlo over **level draws only**: R independent ``w_r = Σ_h Z_h u_hr`` with
``u_hr ~ N(0, σ̂_h² I)`` drawn on the driver, so every pass is deterministic given the
seed and does not depend on the chunking. With ``m_r = M w_r``:

* (1): for independent w, w' of covariance V_Z, ``E[(wᵀQ̃_k w')(wᵀQ̃_l w')] =
  tr(Q̃_k V_Z Q̃_l V_Z)`` and ``w_rᵀ Q̃_k w_s = m_rᵀ Q_k m_s``: averaged over the R(R−1)
  ordered pairs r ≠ s, a U-statistic whose relative error is of order 1/R (not R^-½)
  when many levels contribute;
* (2): ``E[wᵀ Q̃_k Q̃_l w] = tr(Q̃_k Q̃_l V_Z)`` (a Hutchinson trace estimate), with
  ``wᵀQ̃_kQ̃_l w = (Q_k m)ᵀ(Q_l m) − (XᵀQ_k m)ᵀ G (XᵀQ_l m)``.

Pass V1 (``draw_sums``, run with the correction sums of ``.quadratic``) gives
``Xᵀ w`` and the level sums ``Z_fᵀ w``, hence the replicates' β* and ``Z_fᵀ m``; pass V2
(``cross_pass``) forms ``Q_k m`` row by row. Each costs O(N R k) time and
O(Σ_f L_f R) memory. Excess kurtosis of the effects or errors would add fourth-moment
terms to Cov(U), which are not estimated.
"""

from __future__ import annotations

import numpy as np

from .counts import Counts, by_level, ext_codes
from .quadratic import Equations, Statistic, accumulate
from .source import Block, Layout, Reduce, Sums, chunk_pass

__all__ = ["draw_sums", "cross_pass", "draws_for", "statistic_covariance"]

_CELLS_PER_SLICE = 1 << 23  # replicate × row values held at once inside a chunk


def _slices(blk: Block, reps: int):
    step = max(1, _CELLS_PER_SLICE // max(reps, 1))
    for a in range(0, blk.m, step):
        yield Block(blk.codes[:, a : a + step], blk.X[a : a + step], blk.y[a : a + step])


def _draw_rows(blk: Block, draws: list[np.ndarray]) -> np.ndarray:
    """(m, R) ``w`` for the rows of ``blk`` from level draws (L_f, R) per factor."""
    w = np.take(draws[0], blk.codes[0], axis=0)
    for f in range(1, len(draws)):
        w += np.take(draws[f], blk.codes[f], axis=0)
    return w


def draws_for(sigma2: np.ndarray, levels: tuple[int, ...], reps: int, seed) -> list:
    """Per factor, (L_f, R) level draws ``N(0, σ_f²)``."""
    rng = np.random.default_rng(seed)
    sd = np.sqrt(np.maximum(sigma2[: len(levels)], 0.0))
    return [sd[f] * rng.standard_normal((L, reps)) for f, L in enumerate(levels)]


def draw_sums(blk: Block, layout: Layout, draws: list[np.ndarray], s: Sums) -> None:
    """Add pass V1's sums to ``s``: ``Xᵀ w`` (p, R), ``Σ w`` (R,), ``Z_fᵀ w`` (L_f, R)."""
    R = draws[0].shape[1]
    for part in _slices(blk, R):
        w = _draw_rows(part, draws)
        sums = {"xw": part.X.T @ w, "w1": w.sum(axis=0)}
        for f, L in enumerate(layout.levels):
            sums[f"ws{f}"] = by_level(part.codes[f], L, w)
        for key, value in sums.items():
            accumulate(s, key, value)


@chunk_pass
def cross_pass(
    blk: Block,
    layout: Layout,
    draws: list[np.ndarray],
    beta: np.ndarray,
    mlev: list[np.ndarray],
    counts: Counts,
    stats: list[Statistic],
) -> Sums:
    """Pass V2 for ``m = M w``: ``(Q_k m)ᵀ m`` (R, R), ``Σ_i (Q_k m)(Q_l m)`` (R,) and
    ``Xᵀ Q_k m`` (p, R).

    beta : (p, R) OLS coefficients of each replicate; mlev : per ext factor (L_f, R)
    level sums of m (the grand one (1, R)).
    """
    nk, R = len(stats), draws[0].shape[1]
    s = Sums()
    for k in range(nk):
        s[f"qm{k}"] = np.zeros((R, R))
        s[f"xq{k}"] = np.zeros((layout.p, R))
        for j in range(k, nk):
            s[f"qq{k},{j}"] = np.zeros(R)
    for part in _slices(blk, R * nk):
        codes = ext_codes(part)
        m = _draw_rows(part, draws) - part.X @ beta
        q = []
        tg: dict[int, np.ndarray] = {}  # per factor, level sums of m looked up by row
        for st in stats:
            g = codes[st.factor]
            if st.factor not in tg:
                tg[st.factor] = np.take(mlev[st.factor], g, axis=0)
            q.append(st.phi[g][:, None] * m - st.w[g][:, None] * tg[st.factor])
        for k in range(nk):
            s[f"qm{k}"] += q[k].T @ m
            s[f"xq{k}"] += part.X.T @ q[k]
            for j in range(k, nk):
                s[f"qq{k},{j}"] += np.einsum("ir,ir->r", q[k], q[j])
    return s


def _pair_mean(a: np.ndarray, b: np.ndarray) -> float:
    """Mean of a[r, s] b[r, s] over r ≠ s."""
    R = a.shape[0]
    return float(((a * b).sum() - np.trace(a * b)) / (R * (R - 1)))


def replicate_levels(s1: Sums, counts: Counts, G: np.ndarray) -> tuple[np.ndarray, list]:
    """From pass V1: β* (p, R) and the level sums of m = M w per ext factor."""
    beta = G @ s1["xw"]
    mlev = [s1[f"ws{f}"] - counts.xsum[f].T @ beta for f in range(counts.K)]
    mlev.append((s1["w1"] - counts.colsum @ beta)[None, :])
    return beta, mlev


def statistic_covariance(
    reduce: Reduce,
    layout: Layout,
    counts: Counts,
    eq: Equations,
    stats: list[Statistic],
    draws: list[np.ndarray],
    s1: Sums,
    sigma_e2: float,
) -> tuple[np.ndarray, dict]:
    """(k, k) estimated Cov(U) (pass V2; V1's sums ``s1`` given), and its three terms."""
    beta, mlev = replicate_levels(s1, counts, eq.G)
    s2 = reduce(cross_pass, layout, draws, beta, mlev, counts, stats)
    nk = len(stats)
    term1 = np.empty((nk, nk))
    term2 = np.empty((nk, nk))
    for k in range(nk):
        for j in range(k, nk):
            term1[k, j] = term1[j, k] = 2.0 * _pair_mean(s2[f"qm{k}"], s2[f"qm{j}"])
            corr = np.einsum("pr,pq,qr->r", s2[f"xq{k}"], eq.G, s2[f"xq{j}"])
            term2[k, j] = term2[j, k] = float(np.mean(s2[f"qq{k},{j}"] - corr))
    term3 = eq.tilde_traces()
    cov = term1 + 4.0 * sigma_e2 * term2 + 2.0 * sigma_e2**2 * term3
    parts = {"term1": term1, "term2": term2, "term3": term3, "reps": draws[0].shape[1]}
    return 0.5 * (cov + cov.T), parts
