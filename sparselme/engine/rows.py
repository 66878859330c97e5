"""The n-length rows of a random-effects term: each observation's level and model row.

Only the cross-products, fitted values and simulation touch these; the engine's
evaluations never do.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import scipy.sparse as sp

__all__ = ["TermRows"]


class TermRows(NamedTuple):
    """The rows of one random-effects term in (a chunk of) the data.

    codes : (n,) level index into the term's (global) levels.
    model : (n, k) model rows.
    nlevels : number of levels L.
    """

    codes: np.ndarray
    model: np.ndarray
    nlevels: int

    @classmethod
    def of(cls, codes: np.ndarray, model: np.ndarray, nlevels: int) -> TermRows:
        """Contiguous intp codes and a float (n, k) model."""
        codes = np.ascontiguousarray(codes, dtype=np.intp)
        model = np.ascontiguousarray(np.asarray(model, dtype=float).reshape(len(codes), -1))
        return cls(codes, model, int(nlevels))

    @property
    def k(self) -> int:
        return self.model.shape[1]

    @property
    def nobs(self) -> int:
        return len(self.codes)

    @property
    def q(self) -> int:
        return self.k * self.nlevels

    def take(self, rows: np.ndarray) -> TermRows:
        """The rows selected by an index or mask."""
        return TermRows(self.codes[rows], self.model[rows], self.nlevels)

    def z_matrix(self) -> sp.csc_matrix:
        """(n, q) sparse block of Z, level-major columns."""
        n, k = self.model.shape
        rows = np.repeat(np.arange(n), k)
        cols = self.codes[:, None] * k + np.arange(k)[None, :]
        return sp.csc_matrix((self.model.ravel(), (rows, cols.ravel())), shape=(n, self.q))

    def z_times(self, b: np.ndarray) -> np.ndarray:
        """(n,) Z_term @ b for b of shape (q,) (or (L, k)) without forming Z."""
        B = np.asarray(b).reshape(self.nlevels, self.k)
        return np.einsum("nk,nk->n", self.model, B[self.codes])
