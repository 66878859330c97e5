"""Blocks of A⁻¹ = (ΛᵀZᵀWZΛ + I)⁻¹ between two terms, at given level pairs.

The diagonal blocks of A⁻¹ (one per level of a term) come with the factorizations
(``inverse_diagonal_blocks``). Leverages and prediction variances of rows that touch
several terms also need the blocks between the levels a row has in two terms s > t:
(A⁻¹)[level l_s of s, level l_t of t], a (k_s, k_t) block per pair. Rows of the data
only pair levels that co-occur, which are on the pattern of A (and of its factor), so:

* `SparseCholesky`: small systems solve A against the unit columns of the levels of t
  that are needed; larger ones read the selected inverse on the factor's pattern
  (`.selinv`), with solves only for pairs off that pattern (new combinations).
* `BlockCholesky`: with S = A₂₂ − L₂₁L₂₁ᵀ the Schur complement of the leading term,
  (A⁻¹)₂₂ = S⁻¹ and (A⁻¹)₂₁ = −S⁻¹L₂₁L₁₁⁻¹, formed for the needed levels only.

Nothing here forms the q×q inverse.
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import lapack

from . import selinv
from .cholesky import (
    SELECTED_INVERSION_MIN_Q,
    BlockCholesky,
    SparseCholesky,
    _symmetric_from_upper,
)

__all__ = ["SelectedInverse", "inverse_cross_blocks", "inverse_diagonal_blocks"]

# Dense work arrays are kept below this many entries (128 MB).
_MAX_ENTRIES = 2**24


class SelectedInverse:
    """The selected inverse of a CHOLMOD factor (A⁻¹ on the pattern of L), computed once
    for several look-ups: ``Z`` the lower triangle, ``where`` A's index → row of P A Pᵀ."""

    def __init__(self, chol: SparseCholesky):
        f = chol.factor.copy()
        self.Z = selinv.selected_inverse(f.L())
        P = np.asarray(f.P())
        self.where = np.empty_like(P)
        self.where[P] = np.arange(len(P))

    @classmethod
    def of(cls, chol) -> SelectedInverse | None:
        """For a large `SparseCholesky`; None where solves or the Schur complement serve."""
        if isinstance(chol, SparseCholesky) and chol.q > SELECTED_INVERSION_MIN_Q:
            return cls(chol)
        return None


def inverse_diagonal_blocks(chol, selected: SelectedInverse | None = None) -> list[np.ndarray]:
    """Per term the (L, k, k) diagonal blocks of A⁻¹ (read from ``selected`` if given)."""
    if selected is None:
        return chol.inverse_diagonal_blocks()
    out = []
    for s, t in enumerate(chol.terms):
        levels = np.arange(t.nlevels)
        out.append(_selected_blocks(chol, selected, s, s, levels, levels)[0])
    return out


def inverse_cross_blocks(
    chol: SparseCholesky | BlockCholesky,
    s: int,
    t: int,
    rows: np.ndarray,
    cols: np.ndarray,
    selected: SelectedInverse | None = None,
) -> np.ndarray:
    """(m, k_s, k_t) blocks of A⁻¹ at the level pairs (rows[i] of term s, cols[i] of term t).

    ``chol`` must hold the factor of the θ of interest (s ≠ t, any order); ``selected``:
    its selected inverse, when already computed (`SelectedInverse.of`).
    """
    rows = np.asarray(rows, dtype=np.intp)
    cols = np.asarray(cols, dtype=np.intp)
    if s < t:
        return inverse_cross_blocks(chol, t, s, cols, rows, selected).transpose(0, 2, 1)
    if s == t:
        raise ValueError("inverse_cross_blocks is for two different terms")
    if isinstance(chol, BlockCholesky):
        return _block_cross(chol, s, t, rows, cols)
    if len(rows) == 0 or (selected is None and chol.q <= SELECTED_INVERSION_MIN_Q):
        return _solved_cross(chol, s, t, rows, cols)
    selected = selected or SelectedInverse(chol)
    out, missing = _selected_blocks(chol, selected, s, t, rows, cols)
    if missing.any():  # pairs that never occur together in the data: solve for them
        out[missing] = _solved_cross(chol, s, t, rows[missing], cols[missing])
    return out


# ---- CHOLMOD ---------------------------------------------------------------------------------


def _entry_indices(offset: int, levels: np.ndarray, k: int) -> np.ndarray:
    """(m, k) indices in A of the k columns of each level."""
    return offset + levels[:, None] * k + np.arange(k)[None, :]


def _solved_cross(chol: SparseCholesky, s: int, t: int, rows, cols) -> np.ndarray:
    """The blocks by solving A against the unit columns of the needed levels of t."""
    ks, kt = chol.terms[s].k, chol.terms[t].k
    out = np.empty((len(rows), ks, kt))
    levels, where = np.unique(cols, return_inverse=True)
    per_batch = max(1, _MAX_ENTRIES // (chol.q * kt))
    row_idx = _entry_indices(chol.offsets[s], rows, ks)  # (m, ks)
    for start in range(0, len(levels), per_batch):
        batch = levels[start : start + per_batch]
        E = np.zeros((chol.q, len(batch) * kt))
        E[_entry_indices(chol.offsets[t], batch, kt).ravel(), np.arange(E.shape[1])] = 1.0
        R = chol.factor.solve_A(E).reshape(chol.q, len(batch), kt)
        sel = (where >= start) & (where < start + len(batch))
        out[sel] = R[
            row_idx[sel][:, :, None],
            (where[sel] - start)[:, None, None],
            np.arange(kt)[None, None, :],
        ]
    return out


def _selected_blocks(chol, selected: SelectedInverse, s: int, t: int, rows, cols):
    """(blocks (m, k_s, k_t) read from the selected inverse, (m,) pairs not on its pattern)."""
    ks, kt = chol.terms[s].k, chol.terms[t].k
    where = selected.where
    i = _entry_indices(chol.offsets[s], rows, ks)[:, :, None] + np.zeros(kt, dtype=np.intp)
    j = _entry_indices(chol.offsets[t], cols, kt)[:, None, :] + np.zeros((1, ks, 1), np.intp)
    values, found = _lookup(selected.Z, where[i.ravel()], where[j.ravel()])
    missing = ~found.reshape(len(rows), ks * kt).all(axis=1)
    return values.reshape(len(rows), ks, kt), missing


def _lookup(Z, rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(values, found) of a symmetric matrix stored as its lower triangle on a pattern."""
    n = Z.shape[0]
    r = np.maximum(rows, cols).astype(np.int64)
    c = np.minimum(rows, cols).astype(np.int64)
    col_of = np.repeat(np.arange(n, dtype=np.int64), np.diff(Z.indptr))
    keys = col_of * n + Z.indices
    wanted = c * n + r
    pos = np.minimum(np.searchsorted(keys, wanted), max(len(keys) - 1, 0))
    found = keys[pos] == wanted if len(keys) else np.zeros(len(wanted), bool)
    return np.where(found, Z.data[pos], np.nan), found


# ---- leading term in closed form, dense Schur complement ---------------------------------------


def _schur_inverse(chol: BlockCholesky) -> np.ndarray:
    """(q₂, q₂) S⁻¹ from the factor U₂₂ of the Schur complement."""
    Sinv, info = lapack.dpotri(chol.U22, lower=0)
    if info != 0:
        raise np.linalg.LinAlgError(f"inverting the Schur complement failed (info={info})")
    return _symmetric_from_upper(Sinv)


def _block_cross(chol: BlockCholesky, s: int, t: int, rows, cols) -> np.ndarray:
    ks, kt = chol.terms[s].k, chol.terms[t].k
    out = np.empty((len(rows), ks, kt))
    if len(rows) == 0:
        return out
    Sinv = _schur_inverse(chol)
    row_idx = _entry_indices(chol.offsets[s], rows, ks)  # positions within the Schur block
    if t >= 1:
        col_idx = _entry_indices(chol.offsets[t], cols, kt)
        return Sinv[row_idx[:, :, None], col_idx[:, None, :]]
    # t = 0: −(S⁻¹ L₂₁)[rows of s, columns of level l] L₁₁[l]⁻¹
    L21 = chol._l21()
    k1 = chol.k1
    levels, where = np.unique(cols, return_inverse=True)
    per_batch = max(1, _MAX_ENTRIES // (chol.q2 * k1))
    for start in range(0, len(levels), per_batch):
        batch = levels[start : start + per_batch]
        cidx = _entry_indices(0, batch, k1).ravel()
        C = L21[:, cidx]
        C = C.toarray() if hasattr(C, "toarray") else np.asarray(C)
        G = (Sinv @ C).reshape(chol.q2, len(batch), k1)
        G = np.einsum("rmj,mjb->rmb", G, chol.L11inv[batch])
        sel = (where >= start) & (where < start + len(batch))
        out[sel] = -G[
            row_idx[sel][:, :, None],
            (where[sel] - start)[:, None, None],
            np.arange(k1)[None, None, :],
        ]
    return out
