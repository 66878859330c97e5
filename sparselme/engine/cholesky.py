"""Cholesky factorizations of the penalized system A(θ) = ΛᵀZᵀWZΛ + I.

Both classes hold the cross-products ZᵀWZ in block form (per term the (L, k, k)
level-diagonal blocks, per term pair (s, t), s > t, the (m, k_s, k_t) cross blocks) and
provide the same operations on P A Pᵀ = L Lᵀ:

* ``update(T)``: rescale by the terms' templates T(θ) and refactor (the pattern never
  changes);
* ``logdet()``: log|L|²;
* ``forward(B)``: L⁻¹ P B and ``backward(C)``: Pᵀ L⁻ᵀ C for B, C of shape (q, r);
* ``inverse_diagonal_blocks()``: per term the (L, k, k) diagonal blocks of A⁻¹.

`SparseCholesky` factors A with CHOLMOD on a fill-reducing ordering analysed once.
`BlockCholesky` eliminates the leading term in closed form — its block of A is
block diagonal, one k×k block per level — and factors the Schur complement of the
remaining terms densely with LAPACK. It is chosen when that complement is small or fills
in anyway (crossed designs), and it needs no CHOLMOD at all for a single term.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .block_cholesky import BlockCholesky
from .crossprod import CrossProducts
from .factor_blocks import (
    FixedEffectsNotPositiveDefinite,
    batched_cholesky,
    batched_lower_inverse,
)
from .sparse_cholesky import SparseCholesky
from .terms import RandomEffectsTerm

__all__ = [
    "SparseCholesky",
    "BlockCholesky",
    "FixedEffectsNotPositiveDefinite",
    "choose_factorization",
    "batched_cholesky",
    "batched_lower_inverse",
]

# Dense Schur complements up to this order are factored with LAPACK.
DENSE_SCHUR_MAX = 12000
# ... when at least this fraction of their lower triangle is structurally nonzero.
DENSE_SCHUR_MIN_FILL = 0.05


def choose_factorization(
    terms: Sequence[RandomEffectsTerm],
    cp: CrossProducts,
    ordering: str = "default",
    method: str = "auto",
) -> SparseCholesky | BlockCholesky:
    """BlockCholesky when the Schur complement is small or fills in, else CHOLMOD.

    ``method`` forces one: ``"sparse"`` (CHOLMOD) or ``"block"``.
    """
    if method == "sparse":
        return SparseCholesky(terms, cp, ordering)
    if method == "block":
        return BlockCholesky(terms, cp)
    if method != "auto":
        raise ValueError(f"factorization must be 'auto', 'sparse' or 'block', not {method!r}")
    q1 = terms[0].q
    q2 = sum(t.q for t in terms[1:])
    if q2 == 0:
        return BlockCholesky(terms, cp)
    if q2 <= DENSE_SCHUR_MAX:
        fill = _schur_fill(terms, cp.cross, q1, q2)
        if q2 <= 500 or fill >= DENSE_SCHUR_MIN_FILL:
            return BlockCholesky(terms, cp)
    return SparseCholesky(terms, cp, ordering)


def _schur_fill(terms, cross, q1: int, q2: int) -> float:
    """Upper bound on the structural fill of L₂₁L₂₁ᵀ's lower triangle (fraction of q₂²/2).

    Each column of L₂₁ with m entries touches at most m(m+1)/2 positions.
    """
    k1 = terms[0].k
    per_level = np.zeros(terms[0].nlevels)
    for (s, t), blk in cross.items():
        if t == 0:
            per_level += np.bincount(blk.cols, minlength=len(per_level)) * terms[s].k
    touched = k1 * float(np.sum(per_level * (per_level + 1) / 2))
    return min(1.0, touched / (q2 * (q2 + 1) / 2))
