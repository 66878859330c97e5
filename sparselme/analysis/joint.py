"""Quadratic forms of rows in the inverse of the joint system of (u, β): leverages and
prediction variances, from the penalized least-squares factor.

The spherical random effects u (b = Λu) and the fixed effects β solve the joint system

    M = [[ΛᵀZᵀWZΛ + I, ΛᵀZᵀWX], [XᵀWZΛ, XᵀWX]],

whose Cholesky factor is [[L, 0], [R_ZXᵀ, R_Xᵀ]] (P on the u rows). Given θ, the
conditional covariance of the errors (û − u, β̂ − β) is σ² M⁻¹ (Henderson's prediction
error variance), so a linear function aᵀ(u, β) of a row — the linear predictor
xβ + zb = (Λᵀz, x)ᵀ(u, β) — is estimated with error variance σ² aᵀM⁻¹a, and the
leverage of row i of the fit is w_i aᵢᵀM⁻¹aᵢ (lme4's ``hatvalues``: the diagonal of
the hat matrix of the fitted values, random effects included). With

    K = A⁻¹ΛᵀZᵀWX = Pᵀ L⁻ᵀ R_ZX                         (q, p),
    aᵀM⁻¹a = a_uᵀ A⁻¹ a_u + ‖R_X⁻ᵀ (a_x − Kᵀ a_u)‖²,

and a_u has k_s entries per term (the row's level), a_uᵀA⁻¹a_u needs only A⁻¹'s diagonal
blocks and its blocks between the levels a row has in two terms
(`sparselme.engine.inverse_blocks`). No n×n or q×n matrix is formed: the cost is one
solve with p right-hand sides, the diagonal (and row-pair) blocks of A⁻¹, and O(n k p).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.linalg as la

from ..engine.inverse_blocks import (
    SelectedInverse,
    inverse_cross_blocks,
    inverse_diagonal_blocks,
)
from ..engine.threads import blas_threads
from ..errors import DataError
from ..model.results import ModelFit

__all__ = ["joint_quadratic_forms", "leverages", "require_iid_residuals", "require_rows"]

_CHUNK = 200_000  # rows per chunk of the per-row work


def require_iid_residuals(res: ModelFit, what: str) -> None:
    """NotImplementedError for fits whose model has parameter blocks beyond θ."""
    if res.engine.blocks:
        raise NotImplementedError(
            f"{what} is not available for fits with a residual structure: it assumes "
            "independent residuals with variance σ²/w"
        )


def require_rows(res: ModelFit, what: str) -> None:
    """NotImplementedError for fits whose rows are not held (streamed data)."""
    if res.design.rows is None or res.design.X is None:
        raise NotImplementedError(
            f"{what} needs the rows in memory; this fit was made from streamed data"
        )


def joint_quadratic_forms(
    res: ModelFit,
    levels: Sequence[np.ndarray],
    zrows: Sequence[np.ndarray],
    X: np.ndarray,
) -> np.ndarray:
    """(m,) aᵢᵀ M⁻¹ aᵢ for rows aᵢ = (Λᵀzᵢ, xᵢ) of the joint system at the fit's θ.

    Parameters
    ----------
    res : the fit.
    levels : per term, (m,) each row's level index (−1: the row has no random effect of
        that term, e.g. a level the fit has not seen).
    zrows : per term, (m, k) the rows' random-effects model rows z (weighted or masked
        as wanted; rows with level −1 are ignored).
    X : (m, p) the rows' fixed-effects model rows in the user's columns.
    """
    model = res.engine
    pls = model.pls
    m = X.shape[0]
    require_iid_residuals(res, "leverages and prediction variances")
    with blas_threads(pls.chol.blas_threads):
        T, RZX, RX = pls.joint_factor(res.theta)
        K = pls.chol.backward(RZX) if RZX.size else np.zeros((pls.q, 0))
        selected = SelectedInverse.of(pls.chol)  # large CHOLMOD factors: computed once
        D = inverse_diagonal_blocks(pls.chol, selected)
        A = [zr @ Ts for zr, Ts in zip(zrows, T)]  # per term (m, k): rows of Λᵀz
        known = [lv >= 0 for lv in levels]
        cross = _cross_terms(pls.chol, levels, A, known, selected)
    Xt = X @ model.fixed.A if X.shape[1] else X
    out = np.empty(m)
    o = pls.b_offsets
    for a in range(0, m, _CHUNK):
        rows = slice(a, min(a + _CHUNK, m))
        v = cross[rows].copy()
        fixed = Xt[rows].copy()
        for s, (lv, As, ok) in enumerate(zip(levels, A, known)):
            lv, As, ok = lv[rows], As[rows], ok[rows]
            if not ok.any():
                continue
            li, ai = lv[ok], As[ok]
            v[ok] += np.einsum("mk,mkj,mj->m", ai, D[s][li], ai)
            if fixed.shape[1]:
                Ks = K[o[s] : o[s + 1]].reshape(-1, As.shape[1], K.shape[1])
                fixed[ok] -= np.einsum("mkp,mk->mp", Ks[li], ai)
        if fixed.shape[1]:
            d = la.solve_triangular(RX, fixed.T, trans="T", check_finite=False)
            v += np.einsum("pm,pm->m", d, d)
        out[rows] = v
    return out


def _cross_terms(chol, levels, A, known, selected) -> np.ndarray:
    """(m,) 2 Σ_{s>t} a_sᵀ (A⁻¹)[l_s, l_t] a_t over the rows' level pairs."""
    m = len(levels[0]) if levels else 0
    out = np.zeros(m)
    for s in range(len(levels)):
        for t in range(s):
            both = known[s] & known[t]
            if not both.any():
                continue
            ls, lt = levels[s][both], levels[t][both]
            width = int(lt.max()) + 1
            keys, inverse = np.unique(ls.astype(np.int64) * width + lt, return_inverse=True)
            blocks = inverse_cross_blocks(chol, s, t, keys // width, keys % width, selected)
            out[both] += 2 * np.einsum(
                "mk,mkj,mj->m", A[s][both], blocks[inverse.ravel()], A[t][both]
            )
    return out


def leverages(res: ModelFit) -> np.ndarray:
    """(n,) diagonal of the hat matrix of the fitted values (lme4's ``hatvalues``).

    h_i = w_i aᵢᵀM⁻¹aᵢ with aᵢ = (Λᵀzᵢ, xᵢ): the sensitivity of the i-th fitted value
    to the i-th response, the random effects included.
    """
    require_rows(res, "hatvalues()")
    design = res.design
    w = design.weights
    sw = np.ones(design.nobs) if w is None else np.sqrt(w)
    levels = [r.codes for r in design.rows]
    zrows = [r.model * sw[:, None] for r in design.rows]
    h = joint_quadratic_forms(res, levels, zrows, design.X * sw[:, None])
    if not np.all(np.isfinite(h)):
        raise DataError("the leverages could not be computed (non-finite values)")
    return h
