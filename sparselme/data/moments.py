"""Chunk-additive summaries of model columns, from which every input check is made.

The checks of the data (magnitudes, redundant fixed-effects columns, an exact fit,
random-effects columns that are dependent, constant or badly scaled) need only a few
numbers per column: the count, means, the R factor of a QR of the centred columns, the
minimum and maximum, and whether a column holds only 0 and 1. These add up over
disjoint chunks of rows (`ColumnMoments.sum`), so data in memory (one chunk) and data
streamed from Parquet or Dask partitions are checked by the same code on the same numbers.

Centred R factors merge without cancellation (Chan, Golub and LeVeque's update): for
chunks a and b with means μ_a, μ_b, the centred R of their union is the R of the QR of
``[R_a; R_b; √(n_a n_b / n) (μ_a − μ_b)ᵀ]``. The R of any affine transform of the
columns, ``(M − 1 sᵀ) D⁻¹``, follows as the R of ``[R D⁻¹; √n ((μ − s) / d)ᵀ]``, so a column
such as ``Days + 1e9`` keeps its small variation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .rank import qr_r

__all__ = ["ColumnMoments"]


@dataclass
class ColumnMoments:
    """Summary of the columns of M (n, m) over its rows with finite values.

    ``n`` rows counted, ``nonfinite`` (m,) rows left out per column (NaN/inf), ``mean``
    (m,), ``R`` (≤ m, m) upper triangular with RᵀR = (M − 1μᵀ)ᵀ(M − 1μᵀ), ``lo``/``hi`` (m,)
    the extremes, ``binary`` (m,) True where every value is 0 or 1.
    """

    n: int
    nonfinite: np.ndarray
    mean: np.ndarray
    R: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    binary: np.ndarray
    nonfinite_rows: int = 0  # rows left out (a non-finite value in some column)

    @property
    def m(self) -> int:
        return len(self.mean)

    @classmethod
    def empty(cls, m: int) -> ColumnMoments:
        return cls(
            0,
            np.zeros(m, dtype=np.int64),
            np.zeros(m),
            np.zeros((0, m)),
            np.full(m, np.inf),
            np.full(m, -np.inf),
            np.ones(m, dtype=bool),
        )

    @classmethod
    def of(cls, M: np.ndarray, overwrite: bool = False) -> ColumnMoments:
        """The summary of M (n, m) (rows with a non-finite value are counted, then left out).

        ``overwrite``: M (float, F-ordered) may be used as workspace.
        """
        M = np.asarray(M, dtype=float)
        M = M.reshape(len(M), -1)
        n, m = M.shape
        if n == 0:
            return cls.empty(m)
        lo, hi = M.min(axis=0), M.max(axis=0)  # NaN and ±inf show up here
        nonfinite = np.zeros(m, dtype=np.int64)
        dropped = 0
        if not (np.isfinite(lo).all() and np.isfinite(hi).all()):
            finite = np.isfinite(M)
            nonfinite = (~finite).sum(axis=0).astype(np.int64)
            rows = finite.all(axis=1)
            dropped = n - int(rows.sum())
            M, overwrite = M[rows], True
            n = len(M)
            if n == 0:
                out = cls.empty(m)
                out.nonfinite, out.nonfinite_rows = nonfinite, dropped
                return out
            lo, hi = M.min(axis=0), M.max(axis=0)
        # only a column within [0, 1] that is not constant needs a look at its values
        binary = ((lo == 0) | (lo == 1)) & ((hi == 0) | (hi == 1))
        for j in np.flatnonzero(binary & (lo != hi)):
            x = M[:, j]
            binary[j] = np.count_nonzero(x) == np.count_nonzero(x == 1.0)
        # centred on the first row, then on the mean of the differences: no cancellation
        # for columns far from zero (Days + 1e9), and the mean comes out exact to rounding
        first = M[0].copy()
        C = M if overwrite and M.flags.f_contiguous else np.array(M, order="F")
        C -= first
        fix = C.sum(axis=0) / n
        C -= fix
        mean = first + fix
        return cls(
            n=n,
            nonfinite=nonfinite,
            mean=mean,
            R=qr_r(C, overwrite=True) if m else np.zeros((0, 0)),
            lo=lo,
            hi=hi,
            binary=binary,
            nonfinite_rows=dropped,
        )

    @classmethod
    def sum(cls, parts: Sequence[ColumnMoments]) -> ColumnMoments:
        """The summary of the union of the (disjoint) row sets of ``parts``."""
        parts = list(parts)
        out = parts[0]
        for b in parts[1:]:
            out = out._merge(b)
        return out

    def __add__(self, other: ColumnMoments) -> ColumnMoments:
        return self._merge(other)

    def _merge(self, b: ColumnMoments) -> ColumnMoments:
        a = self
        nonfinite = a.nonfinite + b.nonfinite
        rows = a.nonfinite_rows + b.nonfinite_rows
        if b.n == 0 or a.n == 0:
            kept = a if b.n == 0 else b
            return ColumnMoments(
                kept.n,
                nonfinite,
                kept.mean,
                kept.R,
                np.minimum(a.lo, b.lo),
                np.maximum(a.hi, b.hi),
                a.binary & b.binary,
                rows,
            )
        n = a.n + b.n
        delta = (a.mean - b.mean) * np.sqrt(a.n * b.n / n)
        return ColumnMoments(
            n=n,
            nonfinite=nonfinite,
            mean=a.mean + (b.mean - a.mean) * (b.n / n),
            R=_r_of([a.R, b.R, delta[None, :]]),
            lo=np.minimum(a.lo, b.lo),
            hi=np.maximum(a.hi, b.hi),
            binary=a.binary & b.binary,
            nonfinite_rows=rows,
        )

    # ---- derived numbers --------------------------------------------------------------------
    @property
    def maxabs(self) -> np.ndarray:
        """(m,) max |value| per column (0 without rows)."""
        if self.n == 0:
            return np.zeros(self.m)
        return np.maximum(np.abs(self.lo), np.abs(self.hi))

    @property
    def std(self) -> np.ndarray:
        """(m,) standard deviation per column (divisor n)."""
        if self.n == 0:
            return np.zeros(self.m)
        return np.sqrt(np.einsum("ij,ij->j", self.R, self.R) / self.n)

    @property
    def constant(self) -> np.ndarray:
        """(m,) True where every value of the column is the same."""
        return self.lo == self.hi

    def r_factor(self, shift: np.ndarray | None = None, scale: np.ndarray | None = None):
        """R (≤ m, m) of the QR of (M − 1 shiftᵀ) / scale (no shift: M itself).

        A column of scale 0 is a zero column.
        """
        shift = np.zeros(self.m) if shift is None else np.asarray(shift, dtype=float)
        scale = np.ones(self.m) if scale is None else np.asarray(scale, dtype=float)
        inv = np.where(scale > 0, 1.0 / np.where(scale > 0, scale, 1.0), 0.0)
        top = self.R * inv
        row = (np.sqrt(self.n) * (self.mean - shift) * inv)[None, :]
        return _r_of([top, row])


def _r_of(blocks: Sequence[np.ndarray]) -> np.ndarray:
    """R of the QR of the blocks stacked (a tall-skinny QR step), at most m rows."""
    A = np.vstack([b for b in blocks if b.size] or [np.zeros((0, blocks[0].shape[1]))])
    m = A.shape[1]
    if m == 0 or A.shape[0] == 0:
        return np.zeros((0, m))
    return qr_r(np.asfortranarray(A), overwrite=True)
