"""Pieces shared by the two factorizations of A(θ) (`.sparse_cholesky`, `.block_cholesky`):
batched small Cholesky factors, the stored blocks' positions in A, the scaled blocks
ΛᵀZᵀWZΛ of a term or term pair, and the fixed effects' last block R of the factor.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.linalg import blas, lapack

from .crossprod import CrossProducts
from .terms import RandomEffectsTerm, sandwich

__all__ = [
    "batched_cholesky",
    "batched_lower_inverse",
    "FixedEffectsNotPositiveDefinite",
    "check_pivots",
    "fixed_effects_factor",
    "term_offsets",
    "block_entries",
    "scaled_diag",
    "scaled_cross",
]


def batched_cholesky(A: np.ndarray) -> np.ndarray:
    """Lower Cholesky factors of a stack of SPD blocks (m, k, k); closed form for k ≤ 2."""
    k = A.shape[1]
    if k == 1:
        return np.sqrt(A)
    if k == 2:
        L = np.zeros_like(A)
        L[:, 0, 0] = l00 = np.sqrt(A[:, 0, 0])
        L[:, 1, 0] = l10 = A[:, 1, 0] / l00
        L[:, 1, 1] = np.sqrt(A[:, 1, 1] - l10 * l10)
        return L
    return np.linalg.cholesky(A)


def batched_lower_inverse(L: np.ndarray) -> np.ndarray:
    """Inverses of a stack of lower-triangular blocks (m, k, k); closed form for k ≤ 2."""
    k = L.shape[1]
    if k == 1:
        return 1.0 / L
    if k == 2:
        out = np.zeros_like(L)
        out[:, 0, 0] = i00 = 1.0 / L[:, 0, 0]
        out[:, 1, 1] = i11 = 1.0 / L[:, 1, 1]
        out[:, 1, 0] = -L[:, 1, 0] * i00 * i11
        return out
    return np.linalg.inv(L)


class FixedEffectsNotPositiveDefinite(np.linalg.LinAlgError):
    """The [X y] block's XᵀV⁻¹X part has a non-positive pivot (collinear columns)."""


def check_pivots(info: int, q: int, r: int) -> None:
    """Raise for a failed dpotrf of [A-part (q), [X y] (r)], unless only the last pivot —
    the penalized residual sum of squares r² — is not positive (the caller records r² = 0)."""
    if info < 0:
        raise RuntimeError(f"dpotrf: illegal argument {-info}")
    if 0 < info <= q:
        raise np.linalg.LinAlgError(f"Schur complement not positive definite (info={info})")
    if q < info < q + r:
        raise FixedEffectsNotPositiveDefinite(
            "the fixed effects' Schur complement XᵀV⁻¹X is not positive definite "
            f"(pivot {info - q} of {r - 1})"
        )


def fixed_effects_factor(tail: np.ndarray, gram: np.ndarray) -> np.ndarray:
    """(r, r) upper R with RᵀR = gram − tailᵀtail: the factor's last block from its tail.

    ``tail`` (q, r) = L⁻¹ΛᵀZᵀW[X y], ``gram`` (r, r) = [X y]ᵀW[X y]. R's last pivot is
    √r² (0 where r² ≤ 0); other failures raise LinAlgError.
    """
    r = gram.shape[0]
    C = blas.dsyrk(-1.0, tail, beta=1.0, c=np.array(gram, order="F"), trans=1, lower=0)
    R, info = lapack.dpotrf(C, lower=0, overwrite_a=1, clean=1)
    check_pivots(info, 0, r)
    if info:
        R[-1, -1] = 0.0
    return R


def term_offsets(terms: Sequence[RandomEffectsTerm]) -> np.ndarray:
    return np.concatenate([[0], np.cumsum([t.q for t in terms])]).astype(np.intp)


def block_entries(
    row0: int,
    col0: int,
    rows: np.ndarray,
    cols: np.ndarray,
    kr: int,
    kc: int,
    lower_only: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Matrix (row, col) of every entry of blocks stacked (m, kr, kc), flattened C-order."""
    if lower_only:
        a, b = np.tril_indices(kr)
    else:
        a, b = np.divmod(np.arange(kr * kc), kc)
    r = row0 + rows[:, None] * kr + a
    c = col0 + cols[:, None] * kc + b
    return r.ravel(), c.ravel()


def scaled_diag(T: list[np.ndarray], cp: CrossProducts, s: int) -> np.ndarray:
    """(L, k, k) level blocks of term s in ΛᵀZᵀWZΛ."""
    return sandwich(T[s], cp.diag[s], T[s])


def scaled_cross(T: list[np.ndarray], cp: CrossProducts, key: tuple[int, int]) -> np.ndarray:
    """(m, k_s, k_t) cross blocks of terms (s, t) in ΛᵀZᵀWZΛ."""
    return sandwich(T[key[0]], cp.cross[key].values, T[key[1]])
