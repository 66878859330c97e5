"""Pass 1: what the design is (level counts, level sums of X and y, nesting, cells).

Factors are indexed 0..K-1; index K is the *grand* pseudo-factor, one level holding every
row, so that whole-data sums use the same formulas as level sums ("ext" arrays below).

For two factors f and g with level weights ``wf`` (L_f,) and ``wg`` (L_g,),
``Counts.cell_sum`` gives ``Σ_{(f,g) cells c} wf(ℓ_c) wg(m_c) n_c²``, the building block
of every expectation and trace. It is exact from level counts when g is nested in f (each
g-level lies in one f-level, its *parent*), or f in g, or f = g; for crossed factors it is
``Σ_i wf(g_f(i)) wg(g_g(i))`` (a row sum, supplied by the caller) plus the repeated-cell
part from ``.cells.CellSample`` (exact within its budget).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from ..errors import IdentifiabilityError
from .cells import CellSample
from .source import Block, Extremes, Layout, Sums, chunk_pass

__all__ = ["Counts", "count_pass", "level_sums", "by_level", "ext_codes"]


def level_sums(codes: np.ndarray, nlevels: int, values: np.ndarray) -> np.ndarray:
    """Σ of ``values`` (m,) or (c, m) over rows with each code: (L,) or (c, L)."""
    if values.ndim == 1:
        return np.bincount(codes, weights=values, minlength=nlevels)
    out = np.empty((values.shape[0], nlevels))
    for k in range(values.shape[0]):
        out[k] = np.bincount(codes, weights=values[k], minlength=nlevels)
    return out


def by_level(codes: np.ndarray, nlevels: int, values: np.ndarray) -> np.ndarray:
    """(L, c) sums of the rows of ``values`` (m, c) by code: one sparse product
    ``Zᵀ values`` (faster than c bincounts once c exceeds a few columns)."""
    m = codes.shape[0]
    zt = sp.csr_matrix((np.ones(m), (codes, np.arange(m))), shape=(nlevels, m))
    return np.asarray(zt @ values)


def ext_codes(blk: Block) -> np.ndarray:
    """(K+1, m) codes with the grand pseudo-factor (all zeros) appended."""
    return np.vstack([blk.codes, np.zeros((1, blk.m), dtype=blk.codes.dtype)])


def _declared(layout: Layout) -> dict[tuple[int, int], int]:
    """{(i, j): k} for each factor k declared the interaction of factors i < j."""
    out = {}
    for name, (a, b) in layout.interactions.items():
        i, j = sorted((layout.index(a), layout.index(b)))
        out[(i, j)] = layout.index(name)
    return out


def _cell_pairs(layout: Layout) -> list[tuple[int, int]]:
    """Unordered pairs of factors whose cells are sampled (not involved in a declaration)."""
    skip = set()
    for (i, j), k in _declared(layout).items():
        skip |= {(i, j), tuple(sorted((i, k))), tuple(sorted((j, k)))}
    K = layout.K
    return [(f, h) for f in range(K) for h in range(f + 1, K) if (f, h) not in skip]


@chunk_pass
def count_pass(blk: Block, layout: Layout, cell_budget: int) -> Sums:
    """Per-chunk sums of pass 1 (see ``Counts``)."""
    X, y, g = blk.X, blk.y, blk.codes
    s = Sums(n=blk.m, xtx=X.T @ X, xty=X.T @ y, yty=float(y @ y))
    for f, L in enumerate(layout.levels):
        s[f"n{f}"] = np.bincount(g[f], minlength=L)
        s[f"xs{f}"] = level_sums(g[f], L, np.ascontiguousarray(X.T))
        s[f"ys{f}"] = level_sums(g[f], L, y)
        for h, Lh in enumerate(layout.levels):
            if h != f:  # the range of f's codes within each level of h
                s[f"nest{f},{h}"] = Extremes.of(g[h], g[f], Lh)
    for f, h in _cell_pairs(layout):
        s[f"cell{f},{h}"] = CellSample.of(g[f], g[h], layout.levels[h], cell_budget)
    return s


@dataclass(frozen=True)
class Counts:
    """What pass 1 learns about the design (K factors, p columns of X).

    N : rows. n : per factor (L_f,) rows per level. xsum : per factor (p, L_f) level sums
    of X. ysum : per factor (L_f,) level sums of y. xtx (p, p), xty (p,), yty.
    nested : (K+1, K+1) bool, ``nested[f, h]`` when every level of h lies in one level of
    f (index K is the grand pseudo-factor, which nests every factor).
    parents : {(f, h): (L_h,) the f-level of each h-level} where nested[f, h].
    cells : {(f, h): CellSample} for crossed pairs f < h. declared : {(i, j): k}.
    """

    N: int
    n: list[np.ndarray]
    xsum: list[np.ndarray]
    ysum: list[np.ndarray]
    xtx: np.ndarray
    xty: np.ndarray
    yty: float
    levels: tuple[int, ...]
    nested: np.ndarray
    parents: dict
    cells: dict
    declared: dict

    @property
    def K(self) -> int:  # noqa: N802 - the number of factors
        return len(self.n)

    @property
    def colsum(self) -> np.ndarray:
        """(p,) column sums of X."""
        return self.xsum[0].sum(axis=1) if self.n else self.xtx[0] * 0

    @property
    def n_ext(self) -> list[np.ndarray]:
        """Per factor and the grand pseudo-factor, rows per level (float)."""
        return [n.astype(np.float64) for n in self.n] + [np.array([float(self.N)])]

    @property
    def xsum_ext(self) -> list[np.ndarray]:
        return [*self.xsum, self.colsum[:, None]]

    @property
    def levels_ext(self) -> tuple[int, ...]:
        return (*self.levels, 1)

    @classmethod
    def from_sums(cls, s: Sums, layout: Layout) -> Counts:
        K = layout.K
        nested = np.eye(K + 1, dtype=bool)
        nested[K, :] = True
        parents = {(K, h): np.zeros(L, dtype=np.int64) for h, L in enumerate(layout.levels)}
        for f in range(K):
            for h in range(K):
                if h != f:
                    ext: Extremes = s[f"nest{f},{h}"]
                    nested[f, h] = ext.constant()
                    if nested[f, h]:
                        parents[(f, h)] = np.where(ext.high >= 0, ext.low, 0)
        declared = _declared(layout)
        for (i, j), k in declared.items():
            if not (nested[i, k] and nested[j, k]):
                raise IdentifiabilityError(
                    f"factor {layout.factors[k]!r} was declared the interaction of "
                    f"{layout.factors[i]!r} and {layout.factors[j]!r}, but some of its levels "
                    "span several levels of either"
                )
        cells = {pair: s[f"cell{pair[0]},{pair[1]}"] for pair in _cell_pairs(layout)}
        return cls(
            N=int(s["n"]),
            n=[np.asarray(s[f"n{f}"], dtype=np.int64) for f in range(K)],
            xsum=[np.asarray(s[f"xs{f}"]) for f in range(K)],
            ysum=[np.asarray(s[f"ys{f}"]) for f in range(K)],
            xtx=np.asarray(s["xtx"]),
            xty=np.asarray(s["xty"]),
            yty=float(s["yty"]),
            levels=tuple(layout.levels),
            nested=nested,
            parents=parents,
            cells=cells,
            declared=declared,
        )

    # ---- sums over cells ------------------------------------------------------------------
    def cell_sum(
        self, f: int, g: int, wf: np.ndarray, wg: np.ndarray, row_sum: float | None = None
    ) -> tuple[float, float]:
        """``(Σ_{(f,g) cells} wf wg n_c², standard error)`` for ext factors f, g.

        ``row_sum`` is ``Σ_i wf(g_f(i)) wg(g_g(i))``, needed only for crossed factors.
        """
        n = self.n_ext
        if f == g:
            return float(np.sum(wf * wg * n[f] ** 2)), 0.0
        if self.nested[f, g]:
            return float(np.sum(wf[self.parents[(f, g)]] * wg * n[g] ** 2)), 0.0
        if self.nested[g, f]:
            return float(np.sum(wf * wg[self.parents[(g, f)]] * n[f] ** 2)), 0.0
        pair = (min(f, g), max(f, g))
        if pair in self.declared:  # cells of (i, j) are the levels of k
            k = self.declared[pair]
            return float(
                np.sum(wf[self.parents[(f, k)]] * wg[self.parents[(g, k)]] * n[k] ** 2)
            ), 0.0
        if row_sum is None:
            raise ValueError("crossed factors need the row sum of the weights")
        cells: CellSample = self.cells[pair]
        a, b = (wf, wg) if f < g else (wg, wf)
        extra, se = cells.repeated_pairs(self.levels[pair[1]], a, b)
        return row_sum + extra, se

    def cell_fraction(self) -> dict[tuple[int, int], float]:
        """Sampled fraction of the cells of each crossed pair (1 when exact)."""
        return {pair: c.fraction for pair, c in self.cells.items()}
