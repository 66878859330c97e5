"""CHOLMOD's supernodal factorization of A(θ) = ΛᵀZᵀWZΛ + I on a pattern analysed once
(the operations both factorizations share are listed in `.cholesky`)."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
from sksparse import cholmod

from . import limits, selinv
from .crossprod import CrossProducts
from .factor_blocks import (
    block_entries,
    fixed_effects_factor,
    scaled_cross,
    scaled_diag,
    term_offsets,
)
from .terms import RandomEffectsTerm

__all__ = ["SparseCholesky"]

# Above this many random effects, CHOLMOD's conditional variances use selected inversion.
SELECTED_INVERSION_MIN_Q = 4000


class SparseCholesky:
    """CHOLMOD supernodal factorization of A on a pattern analysed once."""

    def __init__(
        self,
        terms: Sequence[RandomEffectsTerm],
        cp: CrossProducts,
        ordering: str = "default",
    ):
        self.terms = list(terms)
        self.cp = cp
        cross = cp.cross
        self.offsets = off = term_offsets(terms)
        self.q = int(off[-1])
        rows, cols = [], []
        for s, t in enumerate(terms):
            lv = np.arange(t.nlevels)
            r, c = block_entries(off[s], off[s], lv, lv, t.k, t.k, lower_only=True)
            rows.append(r)
            cols.append(c)
        for (s, t), blk in cross.items():
            r, c = block_entries(off[s], off[t], blk.rows, blk.cols, terms[s].k, terms[t].k)
            rows.append(r)
            cols.append(c)
        r, c = np.concatenate(rows), np.concatenate(cols)
        order = np.lexsort((r, c))
        indptr = np.concatenate([[0], np.cumsum(np.bincount(c, minlength=self.q))])
        self._gather = order
        self._tril = [np.tril_indices(t.k) for t in terms]
        self.A = sp.csc_matrix(
            (np.zeros(len(r)), r[order].astype(np.int32), indptr.astype(np.int32)),
            shape=(self.q, self.q),
        )
        self.ordering = ordering
        try:
            self.factor = cholmod.analyze(self.A, mode="supernodal", ordering_method=ordering)
        except cholmod.CholmodTooLargeError as exc:  # its symbolic factor overflows
            raise limits.symbolic_overflow(self.q, self.A.nnz, str(exc)) from None
        self._tail = self._R = None
        self.blas_threads = 1  # supernodes here are small: threads mostly contend

    def estimate(self, r: int) -> limits.FitEstimate:
        """Predicted memory and flops per evaluation, from the symbolic analysis."""
        return limits.sparse_estimate(self.A, np.asarray(self.factor.P()))

    def __getstate__(self) -> dict:
        """Everything but the CHOLMOD factor, which does not pickle (see __setstate__)."""
        state = self.__dict__.copy()
        del state["factor"]
        return state

    def __setstate__(self, state: dict) -> None:
        """Analyse A's pattern again and refactor its stored values: the same factor."""
        self.__dict__.update(state)
        self.factor = cholmod.analyze(self.A, mode="supernodal", ordering_method=self.ordering)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", cholmod.CholmodWarning)
            self.factor.cholesky_inplace(self.A, beta=1.0)

    def update(self, T: list[np.ndarray], xy: tuple[np.ndarray, np.ndarray] | None = None) -> None:
        """Refactor at the templates T; with ``xy`` = (ΛᵀZᵀW[X y] (q, r), [X y]ᵀW[X y] (r, r))
        also the [X y] block (see `fixed_part`), by one forward solve."""
        cp = self.cp
        pieces = [scaled_diag(T, cp, s)[:, a, b].ravel() for s, (a, b) in enumerate(self._tril)]
        pieces += [scaled_cross(T, cp, key).ravel() for key in cp.cross]
        np.take(np.concatenate(pieces), self._gather, out=self.A.data)
        self._tail = self._R = None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", cholmod.CholmodWarning)
            self.factor.cholesky_inplace(self.A, beta=1.0)
        if xy is not None:
            self._tail = np.asfortranarray(self.forward(xy[0]))
            self._R = fixed_effects_factor(self._tail, xy[1])

    def fixed_part(self) -> np.ndarray:
        """(r, r) upper triangular R with RᵀR = [X y]ᵀV⁻¹[X y]: [[R_X, c_β], [0, √r²]]."""
        return self._R

    def fixed_tail(self) -> np.ndarray:
        """(q, r) L⁻¹PΛᵀZᵀW[X y] = [R_ZX  c_u]."""
        return self._tail

    def refresh(self) -> None:
        """Nothing is derived from the cross-products' values here."""

    def logdet(self) -> float:
        return float(self.factor.logdet())

    def forward(self, B: np.ndarray) -> np.ndarray:
        f = self.factor
        return f.solve_L(f.apply_P(B), use_LDLt_decomposition=False)

    def backward(self, C: np.ndarray) -> np.ndarray:
        f = self.factor
        return f.apply_Pt(f.solve_Lt(C, use_LDLt_decomposition=False))

    def inverse_on_pattern(self) -> tuple[list[np.ndarray], dict]:
        """A⁻¹ where A has blocks (see `BlockCholesky.inverse_on_pattern`), by
        selected inversion of the factor."""
        return selinv.cholmod_pattern_inverse(self.factor, self.terms, self.cp)

    def inverse_diagonal_blocks(self, max_entries: int = 2**24) -> list[np.ndarray]:
        """Diagonal blocks of A⁻¹; never forms the q×q inverse.

        Small systems solve against batches of unit columns (q solves, in C); larger ones
        use the selected inversion of the factor (`.selinv`), whose cost is
        Σ (column count)² on L's pattern.
        """
        if self.q > SELECTED_INVERSION_MIN_Q:
            return selinv.inverse_diagonal_blocks(
                self.factor, [t.k for t in self.terms], [t.nlevels for t in self.terms]
            )
        out = []
        for s, t in enumerate(self.terms):
            k, L = t.k, t.nlevels
            blocks = np.empty((L, k, k))
            per_batch = max(1, max_entries // (self.q * k))
            for start in range(0, L, per_batch):
                stop = min(L, start + per_batch)
                m = stop - start
                cols = self.offsets[s] + np.arange(start * k, stop * k)
                E = np.zeros((self.q, m * k))
                E[cols, np.arange(m * k)] = 1.0
                R = self.factor.solve_A(E)
                blocks[start:stop] = R[
                    cols.reshape(m, k)[:, :, None], np.arange(m * k).reshape(m, k)[:, None, :]
                ]
            out.append(blocks)
        return out
