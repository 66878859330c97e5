"""The analytic gradient of the profiled deviance / REML criterion with respect to θ.

With A = ΛᵀGΛ + I (G = ZᵀWZ), K = ZᵀWX, the penalized least-squares solution β̂, û
(b̂ = Λû), z = ZᵀW(y − Xβ̂ − Zb̂), P = A⁻¹ΛᵀK (q, p), M = R_XᵀR_X = XᵀWX − KᵀΛP and
N = PM⁻¹, the pieces of the criterion change with a template entry as (∂Λ = I ⊗ ∂T on
one term, Frobenius products ⟨·,·⟩ summed over that term's levels l)

    ∂ log|A|  = 2 Σ_l ⟨∂T, X_lᵀ⟩,         X_l = Σ_m (A⁻¹)_lm T_mᵀ G_ml   (m on G's pattern)
    ∂ r²      = −2 Σ_l ⟨∂T, z_l û_lᵀ⟩                                   (envelope theorem)
    ∂ log|M|  = −2 Σ_l ⟨∂T, K_l N_lᵀ⟩ + 2 Σ_l ⟨∂T, (GΛN)_l P_lᵀ⟩,

so A⁻¹ is needed only where A has blocks (selected inversion, `.selinv`). The
templates are linear in θ (∂T/∂θ_j = T(e_j)). The profiled criteria of
`.objective.deviance` then have

    ML:   ∂ log|A| + n ∂r²/r²,      REML: ∂ log|A| + ∂ log|M| + (n − p) ∂r²/r²,

and with σ² given, ∂r²/σ² in place of the last term. Cost: one factorization, S⁻¹ on the
block path (about twice a Cholesky of the Schur complement) and products on A's pattern.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg as la
import scipy.sparse as sp

from .crossprod import CrossProducts
from .objective import PenalizedLeastSquares
from .threads import fit_threads

__all__ = ["profiled_gradient", "gram_times", "gram_matrix", "template_basis"]


def template_basis(pls: PenalizedLeastSquares) -> list[list[np.ndarray]]:
    """Per term, ∂T/∂θ_j (k, k) for each of its θ entries (the templates are linear)."""
    out = []
    for t in pls.terms:
        zero = t.template(np.zeros(t.n_theta))
        out.append([t.template(e) - zero for e in np.eye(t.n_theta)])
    return out


def _block_coo(r0: int, c0: int, rows, cols, values: np.ndarray):
    """(row, col, value) triplets of blocks (m, kr, kc) at level pairs (rows, cols)."""
    m, kr, kc = values.shape
    a, b = np.arange(kr)[None, :, None], np.arange(kc)[None, None, :]
    r = r0 + np.asarray(rows)[:, None, None] * kr + a + 0 * b
    c = c0 + np.asarray(cols)[:, None, None] * kc + b + 0 * a
    return r.ravel(), c.ravel(), values.ravel()


def gram_matrix(cp: CrossProducts) -> sp.csr_matrix:
    """G = ZᵀWZ (q, q) as a sparse matrix, from its level blocks."""
    sizes = [d.shape[0] * d.shape[1] for d in cp.diag]
    off = np.concatenate([[0], np.cumsum(sizes)])
    parts = []
    for s, D in enumerate(cp.diag):
        lv = np.arange(D.shape[0])
        parts.append(_block_coo(off[s], off[s], lv, lv, D))
    for (s, t), blk in cp.cross.items():
        r, c, v = _block_coo(off[s], off[t], blk.rows, blk.cols, blk.values)
        parts += [(r, c, v), (c, r, v)]
    r, c, v = (np.concatenate(x) for x in zip(*parts))
    return sp.csr_matrix((v, (r, c)), shape=(off[-1], off[-1]))


def gram_times(
    cp: CrossProducts, V: list[np.ndarray], G: sp.csr_matrix | None = None
) -> list[np.ndarray]:
    """G V in block form: V and the result per term (L, k, c); ``G`` if already built."""
    c = V[0].shape[2]
    flat = np.concatenate([v.reshape(-1, c) for v in V], axis=0)
    out = (gram_matrix(cp) if G is None else G) @ flat
    sizes = np.cumsum([v.shape[0] * v.shape[1] for v in V])[:-1]
    return [o.reshape(v.shape) for o, v in zip(np.split(out, sizes), V)]


def _per_term(pls: PenalizedLeastSquares, x: np.ndarray) -> list[np.ndarray]:
    """A (q, c) array split into the terms' (L, k, c) blocks."""
    o = pls.b_offsets
    x = x.reshape(pls.q, -1)
    return [x[o[i] : o[i + 1]].reshape(t.nlevels, t.k, -1) for i, t in enumerate(pls.terms)]


def _logdet_a_parts(pls: PenalizedLeastSquares, T: list[np.ndarray]) -> list[np.ndarray]:
    """Per term the (k, k) Σ_l X_lᵀ of ∂ log|A| = 2 Σ_l ⟨∂T, X_lᵀ⟩."""
    cp = pls.cp
    inv_diag, inv_cross = pls.chol.inverse_on_pattern()
    X = [
        np.einsum("lab,cb,lcd->ad", inv, Ts, D, optimize=True)
        for inv, Ts, D in zip(inv_diag, T, cp.diag)
    ]
    for (s, t), blk in cp.cross.items():
        B, V = inv_cross[(s, t)], blk.values  # (A⁻¹)_lm and G_lm, l of term s, m of term t
        X[s] += np.einsum("mab,cb,mdc->ad", B, T[t], V, optimize=True)
        X[t] += np.einsum("mba,cb,mcd->ad", B, T[s], V, optimize=True)
    return [x.T for x in X]


def profiled_gradient(
    pls: PenalizedLeastSquares,
    theta: np.ndarray,
    reml: bool = True,
    sigma2: float | None = None,
) -> np.ndarray:
    """(n_theta,) gradient of ``pls.deviance`` (σ² profiled out, or given) at θ.

    The same criterion as `.objective.deviance`; the factor is left current at θ.
    """
    with fit_threads(pls.chol.blas_threads):
        return _gradient(pls, np.asarray(theta, dtype=float), reml, sigma2)


def _gradient(
    pls: PenalizedLeastSquares, theta: np.ndarray, reml: bool, sigma2: float | None
) -> np.ndarray:
    sol = pls.solve(theta)
    T = pls.templates(theta)
    cp, p = pls.cp, pls.p
    u, b = _per_term(pls, sol.u), _per_term(pls, sol.b)
    G = gram_matrix(cp)
    Gb = gram_times(cp, b, G)
    beta = sol.beta if sol.beta_engine is None else sol.beta_engine  # of the engine's X̃
    RX = sol.RX if sol.RX_engine is None else sol.RX_engine
    z = [zy[:, :, None] - zx @ beta[:, None] - g for zy, zx, g in zip(cp.Zty, cp.ZtX, Gb)]
    dof = (pls.n - p) if reml else pls.n
    scale = dof / sol.pwrss if sigma2 is None else 1.0 / sigma2
    parts = [
        2.0 * a - 2.0 * scale * np.einsum("lai,lbi->ab", zl, ul)
        for a, zl, ul in zip(_logdet_a_parts(pls, T), z, u)
    ]
    if reml and p:
        tail = pls.chol.fixed_tail()
        P = pls.chol.backward(np.ascontiguousarray(tail[:, :p]))  # A⁻¹ΛᵀK
        N = la.cho_solve((RX, False), P.T, check_finite=False).T  # P M⁻¹
        Pb, Nb = _per_term(pls, P), _per_term(pls, N)
        GLN = gram_times(cp, [np.einsum("ab,lbp->lap", Ts, n) for Ts, n in zip(T, Nb)], G)
        for s, (K, n, g, pp) in enumerate(zip(cp.ZtX, Nb, GLN, Pb)):
            parts[s] += -2.0 * np.einsum("lap,lbp->ab", K, n) + 2.0 * np.einsum(
                "lap,lbp->ab", g, pp
            )
    grad = [float(np.sum(D * part)) for part, Ds in zip(parts, template_basis(pls)) for D in Ds]
    return np.asarray(grad)
