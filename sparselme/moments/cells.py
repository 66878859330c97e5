"""Rows sharing a cell of two crossed factors, counted in bounded memory.

The moment equations need, for two factors f and h, ``T_fh = Σ_c n_c²``: the sum over the
observed (f-level, h-level) cells of the squared number of rows in the cell, i.e. the
number of ordered pairs of rows (a row paired with itself included) that share both
levels. Write ``T_fh = N + P_fh`` with ``P_fh = Σ_c n_c (n_c − 1)``, the pairs of distinct
rows in one cell (zero when no cell is repeated, as in rating data).

Counting cells exactly takes memory proportional to the number of distinct cells, which
can be as large as N. ``CellSample`` keeps instead the cells whose 64-bit hash falls
below ``2**(64 − j)``, a pseudo-random sample of a fraction ``2**-j`` of the cells with
their exact row counts, and raises ``j`` whenever more than ``budget`` cells are held.
Two samples merge by taking the larger ``j`` and adding the counts of equal cells. The
final ``j`` is the smallest that fits the budget on the whole data, so the result does not
depend on how the rows were chunked; with ``j = 0`` (at most ``budget`` distinct cells)
the count is exact. The estimate ``P̂ = 2**j Σ_sampled n_c (n_c − 1)`` is unbiased over the
hash, with variance ``(2**j − 1) Σ_c (n_c (n_c − 1))²`` estimated from the sample.

The hash is a bijective 64-bit mixer of the cell key ``f_code · L_h + h_code``, so a
hash identifies its cell; the keys are kept too, for sums with level weights.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["CellSample", "mix64", "DEFAULT_CELL_BUDGET"]

DEFAULT_CELL_BUDGET = 1 << 21  # distinct cells held per pair of factors (~2M, ~32 MB)

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def mix64(keys: np.ndarray) -> np.ndarray:
    """A bijection of uint64 that scrambles the bits (the splitmix64 finalizer)."""
    z = keys.astype(np.uint64, copy=True)
    z ^= z >> np.uint64(30)
    z *= _M1
    z ^= z >> np.uint64(27)
    z *= _M2
    z ^= z >> np.uint64(31)
    return z


def _below(hashes: np.ndarray, j: int) -> np.ndarray:
    """Mask of the hashes kept at sampling level j (all of them at j = 0)."""
    if j == 0:
        return np.ones(hashes.shape, dtype=bool)
    return (hashes >> np.uint64(64 - j)) == 0


@dataclass(frozen=True)
class CellSample:
    """Sampled cells of one pair of factors.

    hashes : (s,) sorted uint64 hashes of the sampled cells.
    keys : (s,) their cell keys ``f_code · L_h + h_code`` (uint64).
    counts : (s,) int64 rows in each sampled cell.
    level : j, the sampled fraction of cells is ``2**-j``.
    budget : the most cells held.
    """

    hashes: np.ndarray
    keys: np.ndarray
    counts: np.ndarray
    level: int
    budget: int

    @classmethod
    def of(cls, codes_f: np.ndarray, codes_h: np.ndarray, levels_h: int, budget: int) -> CellSample:
        """The cells of one chunk: codes (m,) of the two factors, h with ``levels_h``."""
        keys = codes_f.astype(np.uint64) * np.uint64(levels_h) + codes_h.astype(np.uint64)
        keys, counts = np.unique(keys, return_counts=True)
        hashes = mix64(keys)
        order = np.argsort(hashes)
        return cls(
            hashes[order], keys[order], counts[order].astype(np.int64), 0, int(budget)
        )._thin()

    def _keep(self, mask: np.ndarray, j: int) -> CellSample:
        return CellSample(self.hashes[mask], self.keys[mask], self.counts[mask], j, self.budget)

    def _thin(self) -> CellSample:
        out = self
        while out.hashes.shape[0] > out.budget:
            j = out.level + 1
            out = out._keep(_below(out.hashes, j), j)
        return out

    def merge(self, other: CellSample) -> CellSample:
        j = max(self.level, other.level)
        a, b = self._at(j), other._at(j)
        hashes = np.concatenate([a.hashes, b.hashes])
        order = np.argsort(hashes, kind="stable")  # two sorted runs: linear time
        hashes = hashes[order]
        starts = np.flatnonzero(np.r_[True, hashes[1:] != hashes[:-1]])
        counts = np.add.reduceat(np.concatenate([a.counts, b.counts])[order], starts)
        keys = np.concatenate([a.keys, b.keys])[order[starts]]
        return CellSample(hashes[starts], keys, counts, j, self.budget)._thin()

    def _at(self, j: int) -> CellSample:
        return self if j == self.level else self._keep(_below(self.hashes, j), j)

    @property
    def fraction(self) -> float:
        """The sampled fraction of cells, ``2**-level`` (1 when exact)."""
        return 2.0**-self.level

    @property
    def exact(self) -> bool:
        return self.level == 0

    def repeated_pairs(
        self,
        levels_h: int,
        weight_f: np.ndarray | None = None,
        weight_h: np.ndarray | None = None,
    ) -> tuple[float, float]:
        """``(P̂, standard error)``: ordered pairs of distinct rows sharing a cell,
        ``Σ_c wf(ℓ_c) wh(m_c) n_c (n_c − 1)`` with optional level weights (L_f,), (L_h,)."""
        c = self.counts.astype(np.float64)
        d = c * (c - 1.0)
        if weight_f is not None:
            d = d * weight_f[(self.keys // np.uint64(levels_h)).astype(np.int64)]
        if weight_h is not None:
            d = d * weight_h[(self.keys % np.uint64(levels_h)).astype(np.int64)]
        scale = 2.0**self.level
        se = float(np.sqrt((scale - 1.0) * scale * float(d @ d)))
        return scale * float(d.sum()), se
