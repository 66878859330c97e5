"""The block factorization of A(θ): the leading term eliminated in closed form (its block
of A is block diagonal, one k×k block per level) and the Schur complement of the other
terms, with [X y] as its last block, factored densely by LAPACK (compiled kernels in
`._gram` form −L₂₁L₂₁ᵀ)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.linalg as la
import scipy.sparse as sp
from scipy.linalg import blas, lapack

from . import _gram, limits, selinv
from .arrays import distinct
from .crossprod import CrossProducts
from .factor_blocks import (
    batched_cholesky,
    batched_lower_inverse,
    block_entries,
    check_pivots,
    scaled_cross,
    scaled_diag,
    term_offsets,
)
from .terms import RandomEffectsTerm
from .threads import dense_blas_threads, kernel_threads

__all__ = ["BlockCholesky", "symmetric_from_upper"]

# L₂₁L₂₁ᵀ by dense SYRK when its flops are below this many per gathered entry pair ...
DENSE_CROSS_FLOPS_PER_PAIR = 100
# ... and dense L₂₁ stays below this many entries (256 MB).
DENSE_CROSS_MAX_ENTRIES = 2**25


class BlockCholesky:
    """The leading term eliminated in closed form, a dense Schur complement for the rest.

    With A = [[A₁₁, A₂₁ᵀ], [A₂₁, A₂₂]] and A₁₁ block diagonal (one k₁×k₁ block per level
    of the leading term):  L₁₁ = chol(A₁₁) blockwise, L₂₁ = A₂₁ L₁₁⁻ᵀ (sparse, the
    pattern of A₂₁), S = A₂₂ − L₂₁L₂₁ᵀ dense, S = U₂₂ᵀU₂₂ by LAPACK (L₂₂ = U₂₂ᵀ).
    """

    def __init__(self, terms: Sequence[RandomEffectsTerm], cp: CrossProducts):
        self.terms = list(terms)
        self.cp = cp
        cross = cp.cross
        lead = terms[0]
        self.k1, self.L1, self.q1 = lead.k, lead.nlevels, lead.q
        self.offsets = off = term_offsets(terms) - self.q1  # offsets within the Schur block
        self.q = int(off[-1]) + self.q1
        self.q2 = self.q - self.q1
        # where A₂₂'s block values go in the dense Schur complement: (row, col) pairs
        rows, cols = [np.zeros(0, dtype=np.intp)], [np.zeros(0, dtype=np.intp)]
        for s in range(1, len(terms)):
            lv = np.arange(terms[s].nlevels)
            r, c = block_entries(off[s], off[s], lv, lv, terms[s].k, terms[s].k)
            rows.append(r)
            cols.append(c)
        self._a22_keys = [key for key in cross if key[1] >= 1]
        for s, t in self._a22_keys:
            blk = cross[(s, t)]
            r, c = block_entries(off[s], off[t], blk.rows, blk.cols, terms[s].k, terms[t].k)
            rows.append(r)
            cols.append(c)
        self._a22_rows, self._a22_cols = np.concatenate(rows), np.concatenate(cols)
        flat = self._a22_rows * self.q2 + self._a22_cols
        if len(distinct(flat)) != len(flat):  # the blocks never overlap
            raise AssertionError("A₂₂ blocks overlap in the Schur complement")
        # the fixed CSC pattern of L₂₁ (q₂ × q₁) and a gather map from block values
        self._a21_keys = [key for key in cross if key[1] == 0]
        self._a21_levels = [cross[key].cols for key in self._a21_keys]
        rows, cols = [np.zeros(0, dtype=np.intp)], [np.zeros(0, dtype=np.intp)]
        for s, _ in self._a21_keys:
            blk = cross[(s, 0)]
            r, c = block_entries(off[s], 0, blk.rows, blk.cols, terms[s].k, self.k1)
            rows.append(r)
            cols.append(c)
        r, c = np.concatenate(rows), np.concatenate(cols)
        self._a21_gather = np.lexsort((r, c))
        indptr = np.concatenate([[0], np.cumsum(np.bincount(c, minlength=self.q1))])
        self._L21 = sp.csc_matrix(
            (np.zeros(len(r)), r[self._a21_gather], indptr), shape=(self.q2, self.q1)
        )
        # L₂₁L₂₁ᵀ: a dense SYRK when L₂₁ is dense enough that BLAS beats the sparse
        # kernel (cross-tabulations that fill in, e.g. many rows over few levels);
        # otherwise the compiled kernel on L₂₁'s pattern, whose cost is Σ (column count)².
        counts = np.diff(indptr).astype(np.int64)
        pairs = int(np.sum(counts * (counts + 1) // 2))
        self.dense_cross = (
            self.q2 * self.q1 <= DENSE_CROSS_MAX_ENTRIES
            and self.q2 * self.q2 * self.q1 / 2 < DENSE_CROSS_FLOPS_PER_PAIR * pairs
        )
        entry_col = np.repeat(np.arange(self.q1), counts)  # each entry's column (CSC order)
        if self.dense_cross:  # unscaled A₂₁ = Z₂ᵀWZ₁, dense; rescaled per θ at fixed cost
            self._base_flat = self._L21.indices.astype(np.int64) * self.q1 + entry_col
            self._L21_dense = np.zeros((self.q2, self.q1), order="F")  # + the tail's rows
        else:  # L₂₁ by columns (its CSC), indexed by rows: each entry's CSC position
            self._col_ptr = self._L21.indptr.astype(np.int64)
            self._col_rows = self._L21.indices.astype(np.int32)
            self._row_ptr, self._row_cols, self._row_pos = row_index(
                self._L21.indices, entry_col, self.q2
            )
        self._pairs = pairs
        # all terms scalar: L₂₁'s entries are A₂₁'s times a column scale T₁/l₁ and a row
        # scale T_s, so each θ costs one gather and two products (no block algebra)
        self._scalar = not self.dense_cross and all(t.k == 1 for t in terms)
        if self._scalar:
            self._entry_col = entry_col
            row_term = np.searchsorted(off[1:], self._L21.indices, side="right")
            self._entry_term = None if len(terms) == 2 else row_term - 1  # index into T[1:]
            self._schur_term = np.searchsorted(off[1:], np.arange(self.q2), side="right") - 1
        self._counts: CountPattern | None = None  # set by refresh() where A₂₁ holds counts
        self._pending: list[np.ndarray] | None = None  # templates whose L₂₁ values are unformed
        self.refresh()
        self._resize(0)
        self.L11 = np.zeros((self.L1, self.k1, self.k1))
        self.L11inv = np.zeros_like(self.L11)
        self._LX1t = np.zeros((self.q1, 0))

    def estimate(self, r: int) -> limits.FitEstimate:
        """Predicted memory and flops per evaluation with r tail columns [X y]."""
        dense = (self.q2 + r) * self.q1 + self.q2 * self.q1 if self.dense_cross else 0
        # beside S: L₂₁'s values and the tail's (q, r) temporaries
        return limits.dense_estimate(self.q2, r, dense + self._L21.nnz + 3 * self.q * r)

    def _resize(self, r: int) -> None:
        """Schur buffer of order q₂ + r (r tail columns [X y], or none)."""
        m = self.q2 + r
        self._S = np.zeros((m, m))  # C-ordered; its lower triangle becomes Uᵀ
        self._U = self._S.T[:0, :0]  # the factor: none yet
        self._a22_flat = self._a22_rows * m + self._a22_cols
        if self.dense_cross:
            self._L21_dense = np.zeros((m, self.q1), order="F")
        else:  # L₂₁ L_X1ᵀ (q₂, r)
            self._tail = np.zeros((self.q2, r))

    @property
    def order(self) -> int:
        """Order of the dense matrix factored at each evaluation: q₂ plus the [X y] columns
        appended (after the first update with them)."""
        return int(self._S.shape[0])

    @property
    def U22(self) -> np.ndarray:
        """(q₂, q₂) upper-triangular factor of the Schur complement S = U₂₂ᵀU₂₂."""
        return self._U[: self.q2, : self.q2]

    def __getstate__(self) -> dict:
        """All but the Schur buffer, whose factored content U is pickled (once)."""
        state = self.__dict__.copy()
        del state["_S"]
        return state

    def __setstate__(self, state: dict) -> None:
        """The buffer again, sharing memory with U as after update()."""
        self.__dict__.update(state)
        self._S = np.ascontiguousarray(self._U.T)
        self._U = self._S.T

    # ---- factorization --------------------------------------------------------------------
    def update(self, T: list[np.ndarray], xy: tuple[np.ndarray, np.ndarray] | None = None) -> None:
        """Refactor at the templates T; with ``xy`` = (ΛᵀZᵀW[X y] (q, r), [X y]ᵀW[X y] (r, r))
        the r columns [X y] are the factor's last block (see `fixed_part`)."""
        cp = self.cp
        self.L11 = batched_cholesky(scaled_diag(T, cp, 0) + np.eye(self.k1))
        self.L11inv = batched_lower_inverse(self.L11)
        r = 0 if xy is None else xy[1].shape[0]
        if self._S.shape[0] != self.q2 + r:
            self._resize(r)
        q1, q2 = self.q1, self.q2
        if r:  # L_X1ᵀ = L₁₁⁻¹ Λ₁ᵀZ₁ᵀW[X y]: the tail's rows of the first block column
            self._LX1t = self._l11_solve(xy[0][:q1], transpose=False)
        if q2 + r == 0:
            return
        pieces = [scaled_diag(T, cp, s).ravel() for s in range(1, len(self.terms))]
        pieces += [scaled_cross(T, cp, key).ravel() for key in self._a22_keys]
        # S = A₂₂ + I − L₂₁L₂₁ᵀ (and the tail's rows) in its lower triangle (C order);
        # LAPACK reads that as the upper triangle of the F-ordered view Sᵀ and overwrites
        # it with U. The strictly upper triangle of S keeps stale values (never read).
        S = self._S
        if self.dense_cross:
            D = self._L21_dense
            D[:q2] = self._dense_l21(T)
            D[q2:] = self._LX1t.T
            blas.dsyrk(-1.0, D, beta=0.0, c=S.T, lower=0, overwrite_c=1)
            if r:
                S[q2:, :q2] += xy[0][q1:].T
                S[q2:, q2:] += xy[1]
        else:
            self._pending = None
            if self._counts is None:
                self._update_sparse_l21(T)
            else:  # the count kernels read no values: form them when first asked for
                self._pending = T
            LX1t = self._sparse_products(T, S, r)
            if r:  # the tail's rows: −L_X1 L₂₁ᵀ and −L_X1 L_X1ᵀ (a SYRK's upper triangle)
                np.subtract(xy[0][q1:].T, self._tail.T, out=S[q2:, :q2])
                np.subtract(xy[1], blas.dsyrk(1.0, LX1t, trans=1).T, out=S[q2:, q2:])
        flat = S.reshape(-1)
        if pieces:  # A₂₂'s stored blocks sit at distinct positions (checked in __init__)
            flat[self._a22_flat] += np.concatenate(pieces)
        flat[: q2 * (q2 + r + 1) : q2 + r + 1] += 1.0
        U, info = lapack.dpotrf(S.T, lower=0, overwrite_a=1, clean=0)
        self._U = U
        check_pivots(info, q2, r)
        if info:  # the last pivot: r² ≤ 0, the response is fitted exactly
            U[-1, -1] = 0.0

    def _sparse_products(self, T: list[np.ndarray], S: np.ndarray, r: int) -> np.ndarray:
        """The compiled kernels: −L₂₁L₂₁ᵀ into S's lower triangle and, with r tail columns,
        L₂₁L_X1ᵀ (q₂, r) into the tail buffer. Returns L_X1ᵀ (q₁, r), C-ordered."""
        threads = self._kernel_threads()
        LX1t = np.ascontiguousarray(self._LX1t)
        if self._counts is not None:  # L₂₁ = diag(r) C diag(c): the counts' layout
            col_scale, row_scale = self._column_scale(T), self._row_scale(T)
            self._counts.negative_gram(col_scale, row_scale, S, threads)
            if r:
                self._counts.times_dense(col_scale, row_scale, LX1t, self._tail, threads)
            return LX1t
        L = (self._row_ptr, self._row_cols, self._row_pos)
        _gram.negative_lower_gram(
            *L, self._col_ptr, self._col_rows, self._L21.data, S[: self.q2, : self.q2], threads
        )
        if r:
            _gram.sparse_times_dense(*L, self._L21.data, LX1t, self._tail, threads)
        return LX1t

    def fixed_part(self) -> np.ndarray:
        """(r, r) upper triangular R with RᵀR = [X y]ᵀV⁻¹[X y]: [[R_X, c_β], [0, √r²]]."""
        r = self._LX1t.shape[1]
        return np.triu(self._U[self.q2 :, self.q2 :]) if r else np.zeros((0, 0))

    def fixed_tail(self) -> np.ndarray:
        """(q, r) L⁻¹ΛᵀZᵀW[X y] = [R_ZX  c_u], read off the factor's last block."""
        return np.concatenate([self._LX1t, self._U[: self.q2, self.q2 :]], axis=0)

    @property
    def blas_threads(self) -> int | None:
        """BLAS threads for the dense Schur complement (see `.threads`)."""
        return dense_blas_threads(self.q2)

    def _kernel_threads(self) -> int:
        return kernel_threads(self._pairs, self.blas_threads)

    def refresh(self) -> None:
        """Re-read values derived from the cross-products (after they were changed in place)."""
        self._form_pending()  # unformed values belong to the old cross-products
        values = [self.cp.cross[key].values.ravel() for key in self._a21_keys]
        in_csc = np.concatenate(values or [np.zeros(0)])[self._a21_gather]
        if self.dense_cross:
            base = np.zeros(self.q2 * self.q1)
            base[self._base_flat] = in_csc
            self._A21_base = base.reshape(self.q2, self.q1)
        elif self._scalar:
            if self._counts is None or not np.array_equal(in_csc, self._A21_csc):
                self._counts = CountPattern.of(self._L21, in_csc, self._entry_col, self._pairs)
            self._A21_csc = in_csc

    def _update_sparse_l21(self, T: list[np.ndarray]) -> None:
        """L₂₁ = A₂₁ L₁₁⁻ᵀ on its sparse pattern, block by block."""
        if not self._a21_keys:
            return
        if self._scalar:
            out = self._L21.data
            np.multiply(self._A21_csc, self._column_scale(T)[self._entry_col], out=out)
            if self._entry_term is None:  # one term after the leading one
                out *= T[1][0, 0]
            else:
                out *= np.array([t[0, 0] for t in T[1:]])[self._entry_term]
            return
        Linv_t = self.L11inv.transpose(0, 2, 1)
        blocks = []
        for key, lv in zip(self._a21_keys, self._a21_levels):
            V = scaled_cross(T, self.cp, key)
            blocks.append(V * Linv_t[lv] if self.k1 == 1 else np.matmul(V, Linv_t[lv]))
        np.take(np.concatenate([b.ravel() for b in blocks]), self._a21_gather, out=self._L21.data)

    @property
    def L21(self) -> sp.csc_matrix:
        """(q₂, q₁) L₂₁ at the factored θ, CSC on A₂₁'s pattern. On the count path its
        values are formed here, at the first use after an update, not at each evaluation."""
        self._form_pending()
        return self._L21

    def _form_pending(self) -> None:
        """Form the L₂₁ values a count-kernel update left unformed."""
        if self._pending is not None:
            T, self._pending = self._pending, None
            self._update_sparse_l21(T)

    def _column_scale(self, T: list[np.ndarray]) -> np.ndarray:
        """(q₁,) all terms scalar: L₂₁'s column scale T₁ / l₁ (after update's L₁₁)."""
        return T[0][0, 0] * self.L11inv[:, 0, 0]

    def _row_scale(self, T: list[np.ndarray]) -> np.ndarray:
        """(q₂,) all terms scalar: L₂₁'s row scale, T_s of each row's term."""
        return np.array([t[0, 0] for t in T[1:]])[self._schur_term]

    def _dense_l21(self, T: list[np.ndarray]) -> np.ndarray:
        """(q₂, q₁) L₂₁ = Λ₂ᵀ A₂₁ Λ₁ L₁₁⁻ᵀ from the stored dense A₂₁: O(q₂q₁)."""
        if self.k1 == 1:
            D = self._A21_base * (T[0][0, 0] * self.L11inv[:, 0, 0])[None, :]
        else:  # columns of level l times T₁ L₁₁[l]⁻ᵀ
            R = np.matmul(T[0][None, :, :], self.L11inv.transpose(0, 2, 1))
            D3 = self._A21_base.reshape(self.q2, self.L1, self.k1)
            D = np.einsum("ila,lab->ilb", D3, R).reshape(self.q2, self.q1)
        for s in range(1, len(self.terms)):  # rows of term s times T_sᵀ
            k, rows = self.terms[s].k, slice(self.offsets[s], self.offsets[s + 1])
            if k == 1:
                D[rows] *= T[s][0, 0]
            else:
                block = D[rows].reshape(-1, k, self.q1)
                D[rows] = np.einsum("ba,lbc->lac", T[s], block).reshape(-1, self.q1)
        return D

    def _l21(self):
        """L₂₁ in the form the products use: dense (F-ordered) or sparse CSC."""
        return self._L21_dense[: self.q2] if self.dense_cross else self.L21

    def logdet(self) -> float:
        ld = 2.0 * float(np.sum(np.log(np.diagonal(self.L11, axis1=1, axis2=2))))
        if self.q2:
            ld += 2.0 * float(np.sum(np.log(np.diag(self.U22))))
        return ld

    # ---- solves -------------------------------------------------------------------------------
    def _l11_solve(self, B1: np.ndarray, transpose: bool) -> np.ndarray:
        r = B1.shape[1]
        M = self.L11inv.transpose(0, 2, 1) if transpose else self.L11inv
        return np.matmul(M, B1.reshape(self.L1, self.k1, r)).reshape(self.q1, r)

    def forward(self, B: np.ndarray) -> np.ndarray:
        """L⁻¹B: x₁ = L₁₁⁻¹b₁, x₂ = L₂₂⁻¹(b₂ − L₂₁x₁)."""
        vec = B.ndim == 1
        B = B.reshape(self.q, -1)
        X1 = self._l11_solve(B[: self.q1], transpose=False)
        parts = [X1]
        if self.q2:
            rhs = B[self.q1 :] - self._l21() @ X1
            parts.append(la.solve_triangular(self.U22, rhs, trans="T", check_finite=False))
        X = np.concatenate(parts, axis=0)
        return X[:, 0] if vec else X

    def backward(self, C: np.ndarray) -> np.ndarray:
        """L⁻ᵀC: y₂ = L₂₂⁻ᵀc₂, y₁ = L₁₁⁻ᵀ(c₁ − L₂₁ᵀy₂)."""
        vec = C.ndim == 1
        C = C.reshape(self.q, -1)
        rhs1 = C[: self.q1]
        parts = []
        if self.q2:
            Y2 = la.solve_triangular(self.U22, C[self.q1 :], check_finite=False)
            rhs1 = rhs1 - self._l21().T @ Y2
            parts.append(Y2)
        Y = np.concatenate([self._l11_solve(rhs1, transpose=True)] + parts, axis=0)
        return Y[:, 0] if vec else Y

    def schur_inverse(self) -> np.ndarray:
        """(q₂, q₂) S⁻¹ = (A⁻¹)₂₂, symmetric and C-ordered (LAPACK dpotri on U₂₂)."""
        if not self.q2:
            return np.zeros((0, 0))
        Sinv, _ = lapack.dpotri(self.U22, lower=0)  # F-ordered, upper triangle
        return symmetric_from_upper(Sinv)

    def inverse_on_pattern(self) -> tuple[list[np.ndarray], dict]:
        """A⁻¹ where A has blocks: per term (L, k, k) diagonal blocks, per cross key
        (m, k_s, k_t) blocks at the cross-products' level pairs (see `.selinv`)."""
        return selinv.block_pattern_inverse(self, self.schur_inverse())

    def inverse_diagonal_blocks(self, Sinv: np.ndarray | None = None) -> list[np.ndarray]:
        """Diagonal blocks of A⁻¹ from S⁻¹ (q₂×q₂) and L₂₁; never the q×q inverse.

        (A⁻¹)₂₂ = S⁻¹, and the level blocks of (A⁻¹)₁₁ = L₁₁⁻ᵀ(I + L₂₁ᵀS⁻¹L₂₁)L₁₁⁻¹ need
        S⁻¹ only at the row pairs that share a column block of L₂₁. ``Sinv``: S⁻¹ if known.
        """
        k1 = self.k1
        G = np.zeros((self.L1, k1, k1))  # level blocks of L₂₁ᵀ S⁻¹ L₂₁
        rest = []
        if self.q2:
            Sinv = self.schur_inverse() if Sinv is None else Sinv
            for s in range(1, len(self.terms)):
                t = self.terms[s]
                base = self.offsets[s] + np.arange(t.nlevels)[:, None, None] * t.k
                a = np.arange(t.k)
                rest.append(Sinv[base + a[None, :, None], base + a[None, None, :]])
            if self.dense_cross:
                D = self._l21()
                M = (Sinv @ D).reshape(self.q2, self.L1, k1)
                D3 = D.reshape(self.q2, k1, self.L1, order="F")  # column l·k₁+a → [:, a, l]
                G += np.einsum("ial,ilb->lab", D3, M)
            else:  # G[l] = L₂₁[:, level l]ᵀ S⁻¹ L₂₁[:, level l] on L₂₁'s pattern
                threads = self._kernel_threads()
                _gram.gram_block_forms(
                    self._col_ptr, self._col_rows, self.L21.data, Sinv, G, threads
                )
        inner = np.eye(k1)[None, :, :] + G
        lead = np.matmul(np.matmul(self.L11inv.transpose(0, 2, 1), inner), self.L11inv)
        return [lead] + rest


def row_index(rows: np.ndarray, cols: np.ndarray, nrows: int):
    """A sparse matrix's entries, given in CSC order by their rows and columns (n,), indexed
    by rows: (row_ptr (nrows + 1,), each entry's column (n,) int32 and its CSC position
    (n,) int64), the entries of a row in CSC order."""
    order = np.argsort(rows, kind="stable")
    row_ptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=nrows))])
    return row_ptr.astype(np.int64), cols[order].astype(np.int32), order.astype(np.int64)


class CountPattern:
    """L₂₁ = diag(r) C diag(c) with C (q₂, q₁) a matrix of counts (scalar indicator terms
    without weights: C = Z₂ᵀZ₁), laid out for `_gram.negative_lower_gram_counts`: each
    entry repeated as often as its count, 2-byte row indices, indexed by rows.
    """

    # counts repeat entries; beyond this many times the pairs of the plain kernel, it pays
    # no longer (the count kernel reads a sixth of the bytes per pair)
    MAX_PAIR_GROWTH = 1.5

    def __init__(self, L21: sp.csc_matrix, counts: np.ndarray, entry_col: np.ndarray):
        k = counts.astype(np.int64)
        rows = np.repeat(L21.indices, k).astype(np.uint16)
        cols = np.repeat(entry_col, k)
        per_col = np.bincount(entry_col, weights=k, minlength=L21.shape[1]).astype(np.int64)
        self.col_ptr = np.concatenate([[0], np.cumsum(per_col)])
        self.row_ptr, self.row_cols, self.row_pos = row_index(rows, cols, L21.shape[0])
        self.col_rows = rows
        repeated = k > 1  # the diagonal's remainder: r_i² Σ_c w_c C(C − 1)/2
        self._rep_rows = L21.indices[repeated]
        self._rep_cols = entry_col[repeated]
        self._rep_half = (k[repeated] * (k[repeated] - 1) / 2).astype(float)

    @classmethod
    def of(
        cls, L21: sp.csc_matrix, values: np.ndarray, entry_col: np.ndarray, pairs: int
    ) -> CountPattern | None:
        """The layout where A₂₁'s values (CSC order) are positive integers, q₂ fits 16 bits
        and the repeats add few pairs; otherwise None (the general kernel)."""
        q2 = L21.shape[0]
        if q2 > np.iinfo(np.uint16).max + 1 or not len(values):
            return None
        if not (np.all(values >= 1) and np.all(values == np.round(values))):
            return None
        per_col = np.bincount(entry_col, weights=values, minlength=L21.shape[1])
        if np.sum(per_col * (per_col + 1) / 2) > cls.MAX_PAIR_GROWTH * max(pairs, 1):
            return None
        return cls(L21, values, entry_col)

    def times_dense(
        self, c: np.ndarray, r: np.ndarray, B: np.ndarray, out: np.ndarray, threads: int
    ) -> None:
        """out (q₂, s) = L₂₁ B for B (q₁, s), column scales c (q₁,), row scales r (q₂,)."""
        _gram.sparse_times_dense_counts(
            self.row_ptr, self.row_cols, r, np.ascontiguousarray(B * c[:, None]), out, threads
        )

    def negative_gram(self, c: np.ndarray, r: np.ndarray, S: np.ndarray, threads: int) -> None:
        """Lower triangle of S[:q₂, :q₂] = −L₂₁L₂₁ᵀ for column scales c (q₁,), row scales
        r (q₂,)."""
        q2 = len(r)
        w = c * c
        _gram.negative_lower_gram_counts(
            self.row_ptr,
            self.row_cols,
            self.row_pos,
            self.col_ptr,
            self.col_rows,
            w,
            r,
            S[:q2, :q2],
            threads,
        )
        if len(self._rep_rows):
            extra = np.bincount(self._rep_rows, self._rep_half * w[self._rep_cols], minlength=q2)
            S.reshape(-1)[: q2 * S.shape[1] : S.shape[1] + 1] -= r * r * extra


def symmetric_from_upper(M: np.ndarray, block: int = 1024) -> np.ndarray:
    """Copy M's upper triangle onto its lower one in place, a block of rows at a time.

    Returns the symmetric matrix as a C-ordered array (M itself or its transpose view)."""
    for r0 in range(block, M.shape[0], block):
        r1 = min(r0 + block, M.shape[0])
        M[r0:r1, :r0] = M[:r0, r0:r1].T
    for r0 in range(0, M.shape[0], block):
        r1 = min(r0 + block, M.shape[0])
        D = M[r0:r1, r0:r1]
        D[...] = np.triu(D) + np.triu(D, 1).T
    return M if M.flags.c_contiguous else M.T  # symmetric: its transpose is itself, C-ordered
