r"""Quadratic forms of the OLS residuals built from level sums, and their expectations.

Model (rows i = 1..N, factors f = 1..K with codes ``g_f(i)`` and ``L_f`` levels):

    y = Xβ + Σ_f Z_f u_f + ε,   u_f ~ (0, σ_f² I),   ε ~ (0, σ_e² I),
    V = Σ_h σ_h² W_h,   W_h = Z_h Z_hᵀ (h = 1..K),   W_e = I,

``Z_f`` (N, L_f) being the indicator matrix of factor f. On the OLS residuals
``r = M y`` (``M = I − X G Xᵀ``, ``G = (XᵀX)⁻¹``) a ``Statistic`` of factor f with
level weights φ, w (L_f,) is:

    U = Σ_ℓ φ_ℓ Σ_{i∈ℓ} r_i² − Σ_ℓ w_ℓ (Σ_{i∈ℓ} r_i)² = rᵀ Q r,   Q = D_φ − Z_f D_w Z_fᵀ,

with ``D_φ = diag(φ_{g_f(i)})``. Its value needs only the per-level sums of r and r² (one
pass, ``residual_pass``). Examples (f = K is the one-level grand pseudo-factor):

* Gao & Owen's U-statistic ``½ Σ_{g_f(i)=g_f(i')} (r_i − r_i')²``: φ = n_f, w = 1;
  the all-pairs one: grand, φ = N, w = 1;
* within-level sum of squares ``Σ_ℓ Σ_{i∈ℓ} (r_i − r̄_ℓ)²``: φ = 1, w = 1/n_f;
* weighted squared level sums ``Σ_ℓ c_ℓ (Σ_{i∈ℓ} r_i)²``: φ = 0, w = −c;
* total sum of squares: grand, φ = 1, w = 0.

**Expectation.** ``M X = 0``, so ``E U = Σ_h σ_h² C_h`` with ``C_h = tr(M Q M W_h) =
tr(Q W_h) − 2 tr(G Xᵀ W_h Q X) + tr(G XᵀQX G XᵀW_hX)`` where

* ``tr(Q W_h) = Σ_ℓ φ_ℓ n_fℓ − Σ_{(f,h) cells} w_ℓ n_c²`` (``Counts.cell_sum``);
* ``Xᵀ W_h Q X = Σ_i (Z_hᵀX)_{g_h(i)} (QX)_iᵀ``, ``XᵀQX = Σ_i φ_i x_i x_iᵀ − (Z_fᵀX) D_w (Z_fᵀX)ᵀ``,
  with row i of ``QX`` equal to ``φ_i x_i − w_{g_f(i)} (Z_fᵀX)_{g_f(i)}``: sums of one
  pass (``correction_sums``) once the weights are fixed.

So ``E U = C σ²`` exactly, for any design and any X. The same pass gives what the
covariance of the statistics needs: ``tr(Q_k Q_l) = Σ_i φ_k φ_l − Σ_i φ_k ω_l −
Σ_i ω_k φ_l + Σ_cells w_k w_l n_c²`` (``ω_i = w_{g_f(i)}``) and ``Xᵀ Q_l Q_k X``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .counts import Counts, ext_codes, level_sums
from .source import Block, Layout, Sums, chunk_pass

__all__ = ["Statistic", "residual_pass", "correction_sums", "Equations", "equations"]

_ROWS_PER_SLICE = 1 << 18


@dataclass(frozen=True)
class Statistic:
    """``rᵀ Q r`` with ``Q = D_φ − Z_f D_w Z_fᵀ``; f in 0..K (K: grand), φ and w (L_f,)."""

    name: str
    factor: int
    phi: np.ndarray
    w: np.ndarray

    def value(self, S: np.ndarray, SS: np.ndarray) -> float:
        """From the level sums of r (S) and of r² (SS) of the statistic's factor."""
        return float(self.phi @ SS - self.w @ (S * S))


@chunk_pass
def residual_pass(blk: Block, layout: Layout, beta: np.ndarray) -> Sums:
    """Pass 2: level sums of r and r² per factor and for the grand pseudo-factor."""
    r = blk.y - blk.X @ beta
    r2 = r * r
    s = Sums(S_grand=np.array([r.sum()]), SS_grand=np.array([r2.sum()]))
    for f, L in enumerate(layout.levels):
        s[f"S{f}"] = level_sums(blk.codes[f], L, r)
        s[f"SS{f}"] = level_sums(blk.codes[f], L, r2)
    return s


def level_moments(s: Sums, K: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per ext factor, (L_f,) level sums of r and of r²."""
    S = [np.asarray(s[f"S{f}"]) for f in range(K)] + [np.asarray(s["S_grand"])]
    SS = [np.asarray(s[f"SS{f}"]) for f in range(K)] + [np.asarray(s["SS_grand"])]
    return S, SS


def correction_sums(
    blk: Block, layout: Layout, counts: Counts, stats: list[Statistic], s: Sums
) -> None:
    """Add to ``s`` the sums of one chunk that the expectations and traces need.

    ``wqx{h}`` (p, k·p): ``Xᵀ W_h Q_k X = Σ_i (Z_hᵀX)_{g_h(i)} (Q_k X)_iᵀ`` for every
    statistic k side by side (a row sum, since Z_hᵀX is known from pass 1);
    ``pxx`` (k, p(p+1)/2): the upper triangles of ``Σ_i φ_ki x_i x_iᵀ``; ``qxqx``
    (k·p, k·p): ``(QX)ᵀ(QX)`` for all statistics side by side; ``ff``, ``fo``, ``oo``
    (k, k): ``Σ_i φ φ``, ``Σ_i φ ω``, ``Σ_i ω ω``. Rows are held transposed (features ×
    rows) so that every elementwise operation runs along contiguous rows.
    """
    codes = ext_codes(blk)
    xsum = counts.xsum_ext
    nk, p = len(stats), layout.p
    for a in range(0, blk.m, _ROWS_PER_SLICE):
        rows = slice(a, a + _ROWS_PER_SLICE)
        xt, g = np.ascontiguousarray(blk.X[rows].T), codes[:, rows]
        m = xt.shape[1]
        phi = np.empty((nk, m))
        omega = np.empty((nk, m))
        qxt = np.empty((nk * p, m))
        # per ext factor, (p, m) columns of Z_fᵀX looked up by row
        xg = {f: np.take(xsum[f], g[f], axis=1) for f in range(layout.K + 1)}
        for k, st in enumerate(stats):
            f = st.factor
            np.take(st.phi, g[f], out=phi[k])
            np.take(st.w, g[f], out=omega[k])
            block = qxt[k * p : (k + 1) * p]
            np.multiply(xt, phi[k], out=block)
            block -= omega[k] * xg[f]
        for h in range(layout.K):
            accumulate(s, f"wqx{h}", xg[h] @ qxt.T)
        iu = np.triu_indices(p)
        accumulate(s, "pxx", phi @ (xt[iu[0]] * xt[iu[1]]).T)  # (k, p(p+1)/2): Σ_i φ_ki x_ij x_il
        accumulate(s, "qxqx", qxt @ qxt.T)
        accumulate(s, "ff", phi @ phi.T)
        accumulate(s, "fo", phi @ omega.T)
        accumulate(s, "oo", omega @ omega.T)


def accumulate(s: Sums, key: str, value: np.ndarray) -> None:
    """Accumulate a freshly computed array into ``s`` (in place after the first)."""
    if key in s:
        s[key] += value
    else:
        s[key] = value


@dataclass(frozen=True)
class Equations:
    """``E U = C σ²`` for statistics U (k,), C (k, K+1) (columns σ_1²..σ_K², σ_e²).

    C_se (k, K+1): standard errors of C from sampled cells (0 where exact).
    XQX : (k,) of (p, p) ``XᵀQ_kX``. trQQ (k, k) ``tr(Q_k Q_l)``, QQ (k, k) of (p, p)
    ``Xᵀ Q_k Q_l X``, G (p, p) ``(XᵀX)⁻¹``.
    """

    names: list[str]
    U: np.ndarray
    C: np.ndarray
    C_se: np.ndarray
    XQX: list[np.ndarray]
    trQQ: np.ndarray
    QQ: list[list[np.ndarray]]
    G: np.ndarray

    def subset(self, idx: list[int]) -> Equations:
        return Equations(
            [self.names[i] for i in idx],
            self.U[idx],
            self.C[idx],
            self.C_se[idx],
            [self.XQX[i] for i in idx],
            self.trQQ[np.ix_(idx, idx)],
            [[self.QQ[i][j] for j in idx] for i in idx],
            self.G,
        )

    def tilde_traces(self) -> np.ndarray:
        """(k, k) ``tr(M Q_k M Q_l) = tr(Q_kQ_l) − 2 tr(G XᵀQ_lQ_kX) + tr(G XᵀQ_kX G XᵀQ_lX)``."""
        G, k = self.G, len(self.names)
        out = np.empty((k, k))
        for a in range(k):
            for b in range(k):
                out[a, b] = (
                    self.trQQ[a, b]
                    - 2.0 * np.trace(G @ self.QQ[b][a])
                    + np.trace(G @ self.XQX[a] @ G @ self.XQX[b])
                )
        return out


def base_traces(counts: Counts, stats: list[Statistic]) -> tuple[np.ndarray, np.ndarray]:
    """(k, K+1) ``tr(Q_k W_h)`` and its standard error: no pass needed."""
    K = counts.K
    n = counts.n_ext
    T = np.zeros((len(stats), K + 1))
    T_se = np.zeros_like(T)
    for k, st in enumerate(stats):
        f = st.factor
        diag = float(st.phi @ n[f])
        for h in range(K):
            # crossed: Σ_i w(g_f(i)) · 1 = Σ_ℓ w_ℓ n_ℓ
            total, se = counts.cell_sum(f, h, st.w, np.ones(counts.levels[h]), st.w @ n[f])
            T[k, h], T_se[k, h] = diag - total, se
        T[k, K] = diag - float(st.w @ n[f])  # tr(Q) = Σ_i φ_i − Σ_ℓ w_ℓ n_ℓ
    return T, T_se


def equations(
    counts: Counts,
    stats: list[Statistic],
    S: list[np.ndarray],
    SS: list[np.ndarray],
    s3: Sums,
    G: np.ndarray,
) -> Equations:
    """The exact equations from the level moments (pass 2) and correction sums (pass 3)."""
    K, p = counts.K, counts.xtx.shape[0]
    xsum = counts.xsum_ext
    XWX = [counts.xsum[h] @ counts.xsum[h].T for h in range(K)] + [counts.xtx]
    T, T_se = base_traces(counts, stats)
    nk = len(stats)
    C = np.empty((nk, K + 1))
    XQX = []
    for k, st in enumerate(stats):
        xf = xsum[st.factor]
        pxx = np.empty((p, p))
        iu = np.triu_indices(p)
        pxx[iu] = pxx[iu[1], iu[0]] = np.asarray(s3["pxx"])[k]
        xqx = pxx - (xf * st.w) @ xf.T
        XQX.append(xqx)
        for h in range(K + 1):
            if h == K:
                xwqx = xqx
            else:
                xwqx = np.asarray(s3[f"wqx{h}"])[:, k * p : (k + 1) * p]
            C[k, h] = T[k, h] - 2.0 * np.trace(G @ xwqx) + np.trace(G @ xqx @ G @ XWX[h])
    U = np.array([st.value(S[st.factor], SS[st.factor]) for st in stats])
    qxqx = np.asarray(s3["qxqx"])
    QQ = [[qxqx[a * p : (a + 1) * p, b * p : (b + 1) * p] for b in range(nk)] for a in range(nk)]
    trQQ = np.empty((nk, nk))
    for a, sa in enumerate(stats):
        for b, sb in enumerate(stats):
            cross, _ = counts.cell_sum(sa.factor, sb.factor, sa.w, sb.w, float(s3["oo"][a, b]))
            trQQ[a, b] = s3["ff"][a, b] - s3["fo"][a, b] - s3["fo"][b, a] + cross
    return Equations([st.name for st in stats], U, C, T_se, XQX, trQQ, QQ, G)
