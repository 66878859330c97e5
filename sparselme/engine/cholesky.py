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

A complement too large for LAPACK (order over DENSE_SCHUR_MAX) goes to CHOLMOD, whose
ordering of a crossed pattern with hundreds of thousands of levels can itself take
minutes. When a sample of the complement's rows shows that it fills in anyway
(`sampled_schur_fill`), the dense complement's cost is checked first
(`sparselme.engine.limits.check_feasible`), so such a fit is refused in seconds.
`check_dense_schur` also takes the cross-products of a subset of the rows, whose fill is
a lower bound: streamed fits are checked so before their cross-products pass.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from . import limits
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
    "check_dense_schur",
    "dense_schur_infeasible",
    "sampled_schur_fill",
    "batched_cholesky",
    "batched_lower_inverse",
]

# Dense Schur complements up to this order are factored with LAPACK.
DENSE_SCHUR_MAX = 12000
# ... when at least this fraction of their lower triangle is structurally nonzero.
DENSE_SCHUR_MIN_FILL = 0.05
# Rows of a larger complement whose fill is measured exactly (`sampled_schur_fill`) ...
SCHUR_FILL_SAMPLE = 256
# ... leaving out this fraction of the leading term's levels, those of highest degree.
SCHUR_FILL_HUBS = 0.01


def choose_factorization(
    terms: Sequence[RandomEffectsTerm],
    cp: CrossProducts,
    ordering: str = "default",
    method: str = "auto",
) -> SparseCholesky | BlockCholesky:
    """BlockCholesky when the Schur complement is small or fills in, else CHOLMOD.

    ``method`` forces one: ``"sparse"`` (CHOLMOD) or ``"block"``. With ``"auto"``, a
    complement too large for LAPACK that fills in anyway is first checked at its dense
    cost: ProblemTooLargeError before CHOLMOD's analysis where that cost is infeasible.
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
    elif _schur_fill(terms, cp.cross, q1, q2) >= DENSE_SCHUR_MIN_FILL:
        check_dense_schur(terms, cp, cp.p)
    return SparseCholesky(terms, cp, ordering)


def dense_schur_infeasible(terms: Sequence[RandomEffectsTerm], p: int) -> bool:
    """Whether the Schur complement is too large for LAPACK and its dense cost (with p
    fixed-effects columns) infeasible: then `check_dense_schur` refuses a fit where the
    complement fills in (known from the terms' levels alone, before any cross-product)."""
    q2 = sum(t.q for t in terms[1:])
    return q2 > DENSE_SCHUR_MAX and not limits.is_feasible(limits.dense_estimate(q2, p + 1))


def check_dense_schur(
    terms: Sequence[RandomEffectsTerm], cp: CrossProducts, p: int, subset: str = ""
) -> None:
    """ProblemTooLargeError where the complement fills in (`sampled_schur_fill` of
    ``cp``) and its dense cost with p fixed-effects columns is infeasible; otherwise
    nothing (CHOLMOD's ordering may still do better).

    ``subset`` says which rows ``cp`` sums when not all of them: its level pairs are a
    subset of all rows', so is its fill (for the same sampled levels): a lower bound.
    """
    fill = sampled_schur_fill(terms, cp)
    if fill < DENSE_SCHUR_MIN_FILL:
        return
    where = f"; measured on {subset}, a lower bound for all rows" if subset else ""
    path = (
        f"dense Schur complement (left by eliminating term {terms[0].name!r} first; "
        f"{100 * fill:.3g}% filled in a sample of its rows{where})"
    )
    limits.check_feasible(
        limits.dense_estimate(sum(t.q for t in terms[1:]), p + 1, path=path),
        note='factorization="sparse" runs CHOLMOD\'s own fill-reducing ordering instead, '
        "whose analysis can itself take minutes at this size.",
    )


def sampled_schur_fill(
    terms: Sequence[RandomEffectsTerm],
    cp: CrossProducts,
    sample: int = SCHUR_FILL_SAMPLE,
    hubs: float = SCHUR_FILL_HUBS,
    seed: int = 0,
) -> float:
    """Structural fill of the Schur complement A₂₂ − L₂₁L₂₁ᵀ left by eliminating the
    leading term first, as a fraction of its lower triangle (q₂(q₂+1)/2).

    At level granularity, levels i, j of the later terms are joined where they share an
    observation (A₂₂) or a level of the leading term (L₂₁L₂₁ᵀ), and a pair covers
    k_i·k_j entries. ``sample`` of those levels (seeded; all when fewer) are expanded
    exactly, by a sparse product of their rows of the level incidence with its transpose,
    and their mean row count is scaled to all q₂ rows.

    The ``hubs`` fraction of the leading term's levels of highest degree is left out: a
    fill-reducing ordering eliminates such levels last, where they add a few dense rows,
    not a dense complement. The fraction is of the levels that occur in ``cp`` (all of
    them when it sums all rows). With every row sampled and ``hubs=0`` the fill is exact.
    """
    later = terms[1:]
    start = np.concatenate([[0], np.cumsum([t.nlevels for t in later])]).astype(np.int64)
    n2, n1 = int(start[-1]), terms[0].nlevels
    k = np.concatenate([np.full(t.nlevels, float(t.k)) for t in later])
    q2 = float(k.sum())
    # (n2, n1) incidence of the later terms' levels with the leading term's; each block's
    # pairs are sorted by (row, col) and unique, so stacking the terms gives its CSR form
    lead = [(blk, start[s - 1]) for (s, t), blk in sorted(cp.cross.items()) if t == 0]
    r = np.concatenate([blk.rows + off for blk, off in lead] + [np.zeros(0, np.int64)])
    c = np.concatenate([blk.cols for blk, _ in lead] + [np.zeros(0, np.int64)]).astype(np.int32)
    indptr = np.concatenate([[0], np.cumsum(np.bincount(r, minlength=n2))])
    B = sp.csr_matrix((np.ones(len(c), np.float32), c, indptr), shape=(n2, n1))
    # later levels that share observations (both ways), and each level with itself
    diag = np.arange(n2)
    other = [(blk, start[s - 1], start[t - 1]) for (s, t), blk in cp.cross.items() if t > 0]
    ar = [diag] + [b.rows + o for b, o, _ in other] + [b.cols + o for b, _, o in other]
    ac = [diag] + [b.cols + o for b, _, o in other] + [b.rows + o for b, o, _ in other]
    ones = np.ones(sum(len(x) for x in ar), np.float32)
    A22 = sp.csc_matrix((ones, (np.concatenate(ar), np.concatenate(ac))), shape=(n2, n2))
    cols = diag
    if n2 > sample:
        cols = np.sort(np.random.default_rng(seed).choice(n2, sample, replace=False))
    sampled = B[cols]  # without the leading term's hubs
    degree = np.bincount(c, minlength=n1)
    n_hubs = int(hubs * np.count_nonzero(degree))  # of the levels in cp's rows
    if n_hubs:
        hub = np.zeros(n1, dtype=bool)
        hub[np.argpartition(degree, -n_hubs)[-n_hubs:]] = True
        sampled.data[hub[sampled.indices]] = 0.0
        sampled.eliminate_zeros()
    # (n2, len(cols)) pattern of the sampled columns: one pass over B, no transpose of it
    reach = (B @ sampled.T + A22[:, cols]).tocsc()
    reach.data[:] = 1.0
    both_triangles = n2 * float(np.mean(k[cols] * (reach.T @ k)))
    return min(1.0, (both_triangles + q2) / (q2 * (q2 + 1)))


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
