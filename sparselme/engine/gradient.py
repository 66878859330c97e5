"""The analytic gradient of the profiled deviance / REML criterion with respect to θ.

With A = ΛᵀGΛ + I (G = ZᵀWZ), K = ZᵀWX, the penalized least-squares solution β̂, û
(b̂ = Λû), z = ZᵀW(y − Xβ̂ − Zb̂), P = A⁻¹ΛᵀK (q, p), M = R_XᵀR_X = XᵀWX − KᵀΛP and
N = PM⁻¹, the pieces of the criterion change with a template entry as (∂Λ = I ⊗ ∂T on
one term, Frobenius products ⟨·,·⟩ summed over that term's levels l)

    ∂ log|A|  = 2 Σ_l ⟨∂T, X_lᵀ⟩,         X_l = Σ_m (A⁻¹)_lm T_mᵀ G_ml   (m on G's pattern)
    ∂ r²      = −2 Σ_l ⟨∂T, z_l û_lᵀ⟩                                   (envelope theorem)
    ∂ log|M|  = −2 Σ_l ⟨∂T, K_l N_lᵀ⟩ + 2 Σ_l ⟨∂T, (GΛN)_l P_lᵀ⟩,

so A⁻¹ is needed only where A has blocks (selected inversion, :mod:`.selinv`). The
templates are linear in θ (∂T/∂θ_j = T(e_j)). The profiled criteria of
:func:`.objective.deviance` then have

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

__all__ = ["profiled_gradient", "gram_times", "template_basis"]


def template_basis(pls: PenalizedLeastSquares) -> list[list[np.ndarray]]:
    """Per term, ∂T/∂θ_j (k, k) for each of its θ entries (the templates are linear)."""
    out = []
    for t in pls.terms:
        zero = t.template(np.zeros(t.n_theta))
        out.append([t.template(e) - zero for e in np.eye(t.n_theta)])
    return out


def _scatter_rows(index: np.ndarray, values: np.ndarray, nrows: int) -> np.ndarray:
    """(nrows, ...) sums of ``values`` (m, ...) by row ``index`` (m,)."""
    m = len(index)
    S = sp.csr_matrix((np.ones(m), (index, np.arange(m))), shape=(nrows, m))
    return (S @ values.reshape(m, -1)).reshape((nrows,) + values.shape[1:])


def gram_times(cp: CrossProducts, V: list[np.ndarray]) -> list[np.ndarray]:
    """G V in block form: V and the result per term (L, k, c)."""
    out = [np.matmul(D, v) for D, v in zip(cp.diag, V)]
    for (s, t), blk in cp.cross.items():
        out[s] += _scatter_rows(blk.rows, np.matmul(blk.values, V[t][blk.cols]), len(out[s]))
        back = np.matmul(blk.values.transpose(0, 2, 1), V[s][blk.rows])
        out[t] += _scatter_rows(blk.cols, back, len(out[t]))
    return out


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

    The same criterion as :func:`.objective.deviance`; the factor is left current at θ.
    """
    theta = np.asarray(theta, dtype=float)
    sol = pls.solve(theta)
    T = pls.templates(theta)
    cp, p = pls.cp, pls.p
    u, b = _per_term(pls, sol.u), _per_term(pls, sol.b)
    Gb = gram_times(cp, b)
    z = [zy[:, :, None] - zx @ sol.beta[:, None] - g for zy, zx, g in zip(cp.Zty, cp.ZtX, Gb)]
    dof = (pls.n - p) if reml else pls.n
    scale = dof / sol.pwrss if sigma2 is None else 1.0 / sigma2
    parts = [
        2.0 * a - 2.0 * scale * np.einsum("lai,lbi->ab", zl, ul)
        for a, zl, ul in zip(_logdet_a_parts(pls, T), z, u)
    ]
    if reml and p:
        tail = pls.chol.fixed_tail()
        P = pls.chol.backward(np.ascontiguousarray(tail[:, :p]))  # A⁻¹ΛᵀK
        N = la.cho_solve((sol.RX, False), P.T, check_finite=False).T  # P M⁻¹
        Pb, Nb = _per_term(pls, P), _per_term(pls, N)
        GLN = gram_times(cp, [np.einsum("ab,lbp->lap", Ts, n) for Ts, n in zip(T, Nb)])
        for s, (K, n, g, pp) in enumerate(zip(cp.ZtX, Nb, GLN, Pb)):
            parts[s] += -2.0 * np.einsum("lap,lbp->ab", K, n) + 2.0 * np.einsum(
                "lap,lbp->ab", g, pp
            )
    grad = [float(np.sum(D * part)) for part, Ds in zip(parts, template_basis(pls)) for D in Ds]
    return np.asarray(grad)
