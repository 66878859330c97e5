"""Selected inversion: entries of A⁻¹ on the pattern of its Cholesky factor (Takahashi).

For A = LLᵀ (L lower, diagonal first in each CSC column) write L = L̃D^½ with L̃ unit
lower. Then Z = A⁻¹ satisfies, column by column from the last,

    Z[S, j] = −Z[S, S] l,   Z[j, j] = 1/L_jj² − lᵀ Z[S, j],

where S are the rows below the diagonal of column j and l = L[S, j]/L_jj. The rows S of a
Cholesky column form a clique of the filled graph, so Z[S, S] lies on L's pattern too and
Z is never needed elsewhere. The cost is Σ_j |S_j|² instead of the q solves (each
O(nnz(L))) of inverting against unit columns.

`inverse_diagonal_blocks` gives each term's (L, k, k) diagonal blocks of A⁻¹ from a
CHOLMOD factor of P A Pᵀ; it is meant for ``SparseCholesky.inverse_diagonal_blocks``.
`cholmod_pattern_inverse` and `block_pattern_inverse` give A⁻¹ on all of A's
blocks (diagonal and cross), as the analytic gradient needs them (`.gradient`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from . import _gram

__all__ = [
    "selected_inverse",
    "lookup",
    "inverse_diagonal_blocks",
    "cholmod_pattern_inverse",
    "block_pattern_inverse",
]


def selected_inverse(L: sp.spmatrix) -> sp.csc_matrix:
    """(n, n) lower triangle of (LLᵀ)⁻¹ on the pattern of the lower-triangular L."""
    L = sp.csc_matrix(L, copy=True)
    L.sort_indices()
    n = L.shape[0]
    ip, ix, lx = L.indptr, L.indices, L.data
    zx = np.zeros_like(lx)
    for j in range(n - 1, -1, -1):
        a, b = ip[j], ip[j + 1]
        d = lx[a]
        m = b - a - 1
        if m == 0:
            zx[a] = 1.0 / (d * d)
            continue
        S = ix[a + 1 : b]
        l = lx[a + 1 : b] / d
        ZSS = np.empty((m, m))
        for t in range(m):
            k = S[t]
            ka, kb = ip[k], ip[k + 1]
            col = zx[ka + np.searchsorted(ix[ka:kb], S[t:])]
            ZSS[t:, t] = col
            ZSS[t, t:] = col
        zS = -(ZSS @ l)
        zx[a + 1 : b] = zS
        zx[a] = 1.0 / (d * d) - l @ zS
    return sp.csc_matrix((zx, ix.copy(), ip.copy()), shape=(n, n))


def lookup(Z: sp.csc_matrix, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Entries Z[rows, cols] of a symmetric matrix stored as its lower triangle (on pattern)."""
    n = Z.shape[0]
    r = np.maximum(rows, cols).astype(np.int64)
    c = np.minimum(rows, cols).astype(np.int64)
    col_of = np.repeat(np.arange(n, dtype=np.int64), np.diff(Z.indptr))
    keys = col_of * n + Z.indices
    pos = np.searchsorted(keys, c * n + r)
    if np.any(pos >= len(keys)) or np.any(keys[np.minimum(pos, len(keys) - 1)] != c * n + r):
        raise ValueError("requested entries are not on the factor's pattern")
    return Z.data[pos]


def _block_grid(r0: int, c0: int, rows: np.ndarray, cols: np.ndarray, kr: int, kc: int):
    """(m, kr, kc) matrix rows and columns of blocks at level pairs (rows, cols)."""
    a, b = np.arange(kr)[None, :, None], np.arange(kc)[None, None, :]
    r = r0 + rows[:, None, None] * kr + a + 0 * b
    c = c0 + cols[:, None, None] * kc + b + 0 * a
    return r, c


def _factor_inverse(factor):
    """(Z, where): the selected inverse of P A Pᵀ and A's index → its position there."""
    f = factor.copy()
    Z = selected_inverse(f.L())
    P = np.asarray(f.P())
    where = np.empty_like(P)
    where[P] = np.arange(len(P))
    return Z, where


def inverse_diagonal_blocks(factor, ks: Sequence[int], nlevels: Sequence[int]) -> list[np.ndarray]:
    """Per term the (L, k, k) diagonal blocks of A⁻¹ from a CHOLMOD factor of P A Pᵀ.

    ``ks``/``nlevels``: each term's columns per level and number of levels, in A's order
    (term blocks level-major). The factor is copied, not converted in place.
    """
    Z, where = _factor_inverse(factor)
    out = []
    offset = 0
    for k, L in zip(ks, nlevels):
        lv = np.arange(L)
        r, c = _block_grid(offset, offset, lv, lv, k, k)
        out.append(lookup(Z, where[r.ravel()], where[c.ravel()]).reshape(L, k, k))
        offset += L * k
    return out


def cholmod_pattern_inverse(factor, terms, cp) -> tuple[list[np.ndarray], dict]:
    """A⁻¹ on A's blocks from a CHOLMOD factor: per term (L, k, k) diagonal blocks, per
    cross key (s, t) the (m, k_s, k_t) blocks at the level pairs of ``cp.cross``."""
    Z, where = _factor_inverse(factor)
    off = np.concatenate([[0], np.cumsum([t.q for t in terms])])

    def blocks(s: int, t: int, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        r, c = _block_grid(off[s], off[t], rows, cols, terms[s].k, terms[t].k)
        return lookup(Z, where[r.ravel()], where[c.ravel()]).reshape(r.shape)

    diag = [blocks(s, s, np.arange(t.nlevels), np.arange(t.nlevels)) for s, t in enumerate(terms)]
    cross = {key: blocks(*key, blk.rows, blk.cols) for key, blk in cp.cross.items()}
    return diag, cross


def block_pattern_inverse(chol, Sinv: np.ndarray) -> tuple[list[np.ndarray], dict]:
    """A⁻¹ on A's blocks from a block factorization (``BlockCholesky``) and its S⁻¹.

    (A⁻¹)₂₂ = S⁻¹ gives the blocks among the Schur terms; (A⁻¹)₂₁ = −S⁻¹L₂₁L₁₁⁻¹ is
    needed only on A₂₁'s pattern, which is L₂₁'s: S⁻¹L₂₁ there costs Σ (column count)².
    """
    terms, cp, off = chol.terms, chol.cp, chol.offsets
    diag = chol.inverse_diagonal_blocks(Sinv)
    cross = {}
    for (s, t), blk in cp.cross.items():
        if t >= 1:
            r, c = _block_grid(off[s], off[t], blk.rows, blk.cols, terms[s].k, terms[t].k)
            cross[(s, t)] = Sinv[r, c]
    if not chol._a21_keys:
        return diag, cross
    L21 = chol.L21
    if chol.dense_cross:  # S⁻¹L₂₁ dense, read at the pattern
        full = Sinv @ chol._l21()
        cols = np.repeat(np.arange(L21.shape[1]), np.diff(L21.indptr))
        on_pattern = full[L21.indices, cols]
    else:
        on_pattern = np.empty(L21.nnz)
        threads = chol._kernel_threads()
        _gram.pattern_product(chol._col_ptr, chol._col_rows, L21.data, Sinv, on_pattern, threads)
    flat = np.empty_like(on_pattern)
    flat[chol._a21_gather] = on_pattern  # back to the blocks' order, key by key
    at, k1 = 0, chol.k1
    for key, lv in zip(chol._a21_keys, chol._a21_levels):
        m, ks = len(lv), terms[key[0]].k
        Y = flat[at : at + m * ks * k1].reshape(m, ks, k1)
        at += m * ks * k1
        cross[key] = -np.matmul(Y, chol.L11inv[lv])
    return diag, cross
