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
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

__all__ = ["selected_inverse", "lookup", "inverse_diagonal_blocks"]


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


def inverse_diagonal_blocks(factor, ks: Sequence[int], nlevels: Sequence[int]) -> list[np.ndarray]:
    """Per term the (L, k, k) diagonal blocks of A⁻¹ from a CHOLMOD factor of P A Pᵀ.

    ``ks``/``nlevels``: each term's columns per level and number of levels, in A's order
    (term blocks level-major). The factor is copied, not converted in place.
    """
    f = factor.copy()
    Z = selected_inverse(f.L())
    P = np.asarray(f.P())
    where = np.empty_like(P)
    where[P] = np.arange(len(P))  # A's index → position in P A Pᵀ
    out = []
    offset = 0
    for k, L in zip(ks, nlevels):
        base = offset + np.arange(L)[:, None, None] * k
        a = np.arange(k)
        i = (base + a[None, :, None]) + 0 * a[None, None, :]
        j = (base + a[None, None, :]) + 0 * a[None, :, None]
        vals = lookup(Z, where[i.ravel()], where[j.ravel()])
        out.append(vals.reshape(L, k, k))
        offset += L * k
    return out
