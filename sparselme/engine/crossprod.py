"""The cross-products [Z X y]ᵀ W [Z X y], computed once per model.

These are sums over observations, so they are the only place where n-length arrays are
touched. Everything the optimizer needs afterwards is in `CrossProducts`, stored
in the block form of the random-effects terms:

* ``diag[s]``: (L_s, k_s, k_s) — the level-diagonal blocks of Z_sᵀWZ_s (a term's
  levels never co-occur in one observation, so Z_sᵀWZ_s is block diagonal);
* ``cross[(s, t)]`` for s > t: the level pairs of terms s and t that share observations
  and their (m, k_s, k_t) blocks of Z_sᵀWZ_t;
* ``ZtX[s]``: (L_s, k_s, p), ``Zty[s]``: (L_s, k_s), ``XtX``: (p, p), ``Xty``: (p,),
  ``yty``: float.

Being sums over rows, cross-products of disjoint chunks of the data add up:
`chunk_crossproducts` computes them for one chunk (codes into the *global* levels
of each term) and ``a + b`` / `CrossProducts.sum` combine chunks, so data that do
not fit in memory can be reduced chunk by chunk or across a cluster
(`sparselme.distributed`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from .rows import TermRows
from .threads import blas_threads

__all__ = [
    "CrossBlocks",
    "CrossProducts",
    "TermRows",
    "chunk_crossproducts",
]


@dataclass
class CrossBlocks:
    """Blocks of Z_sᵀWZ_t at the level pairs (rows[i], cols[i]) that co-occur.

    Pairs are sorted by (row, col) and unique.
    """

    rows: np.ndarray  # (m,) level index in term s
    cols: np.ndarray  # (m,) level index in term t
    values: np.ndarray  # (m, k_s, k_t)

    @classmethod
    def concat(cls, parts: Sequence[CrossBlocks]) -> CrossBlocks:
        """Sum of blocks over the union of their level pairs (sorted by (row, col))."""
        if len(parts) == 1:
            return parts[0]
        rows = np.concatenate([b.rows for b in parts]).astype(np.int64, copy=False)
        cols = np.concatenate([b.cols for b in parts]).astype(np.int64, copy=False)
        values = np.concatenate([b.values for b in parts], axis=0)
        width = int(cols.max()) + 1 if len(cols) else 1
        keys = rows * width + cols
        # each part is sorted: a stable sort (timsort) merges the runs in near-linear time
        order = np.argsort(keys, kind="stable")
        keys = keys[order]
        first = np.empty(len(keys), dtype=bool)
        first[:1] = True
        np.not_equal(keys[1:], keys[:-1], out=first[1:])
        pairs = keys[first]
        inverse = np.empty(len(keys), dtype=np.intp)
        inverse[order] = np.cumsum(first) - 1
        m, ks, kt = len(pairs), values.shape[1], values.shape[2]
        out = np.empty((m, ks, kt))
        for a in range(ks):
            for b in range(kt):
                out[:, a, b] = np.bincount(inverse, values[:, a, b], minlength=m)
        return cls(rows=pairs // width, cols=pairs % width, values=out)


@dataclass
class CrossProducts:
    """Weighted cross-products of Z, X and y (see module docstring for shapes).

    Cross-products of disjoint row sets add: ``cp1 + cp2`` (or `sum` for many,
    which merges the sparse cross blocks once) is the cross-products of the union.
    """

    nobs: int
    diag: list[np.ndarray]
    cross: dict[tuple[int, int], CrossBlocks]
    ZtX: list[np.ndarray]
    Zty: list[np.ndarray]
    XtX: np.ndarray
    Xty: np.ndarray
    yty: float
    sum_log_weights: float = 0.0

    @property
    def p(self) -> int:
        return self.XtX.shape[0]

    @property
    def ZXy(self) -> list[np.ndarray]:
        """Per term (L, k, p + 1): [ZᵀWX  ZᵀWy] blocks side by side."""
        return [np.concatenate([zx, zy[:, :, None]], axis=2) for zx, zy in zip(self.ZtX, self.Zty)]

    # ---- additivity ------------------------------------------------------------------------
    def _check_compatible(self, other: CrossProducts) -> None:
        shapes = [d.shape for d in self.diag], [x.shape for x in self.ZtX]
        others = [d.shape for d in other.diag], [x.shape for x in other.ZtX]
        if shapes != others or self.XtX.shape != other.XtX.shape:
            raise ValueError(
                "cannot add cross-products of different designs: "
                f"terms {shapes[0]} vs {others[0]}, p = {self.p} vs {other.p}"
            )

    @classmethod
    def sum(cls, parts: Iterable[CrossProducts]) -> CrossProducts:
        """The cross-products of the union of the (disjoint) row sets of ``parts``."""
        parts = list(parts)
        if not parts:
            raise ValueError("CrossProducts.sum needs at least one part")
        first = parts[0]
        if len(parts) == 1:
            return first
        for other in parts[1:]:
            first._check_compatible(other)
        keys = sorted({key for cp in parts for key in cp.cross})
        return cls(
            nobs=sum(cp.nobs for cp in parts),
            diag=[_add_all([cp.diag[s] for cp in parts]) for s in range(len(first.diag))],
            cross={
                key: CrossBlocks.concat([cp.cross[key] for cp in parts if key in cp.cross])
                for key in keys
            },
            ZtX=[_add_all([cp.ZtX[s] for cp in parts]) for s in range(len(first.ZtX))],
            Zty=[_add_all([cp.Zty[s] for cp in parts]) for s in range(len(first.Zty))],
            XtX=_add_all([cp.XtX for cp in parts]),
            Xty=_add_all([cp.Xty for cp in parts]),
            yty=float(sum(cp.yty for cp in parts)),
            sum_log_weights=float(sum(cp.sum_log_weights for cp in parts)),
        )

    def __add__(self, other: CrossProducts) -> CrossProducts:
        if not isinstance(other, CrossProducts):
            return NotImplemented
        return CrossProducts.sum([self, other])

    merge = __add__

    def select_fixed(self, keep: Sequence[int]) -> CrossProducts:
        """The cross-products with X restricted to the columns ``keep`` (e.g. full rank)."""
        keep = np.asarray(keep, dtype=np.intp)
        return CrossProducts(
            nobs=self.nobs,
            diag=self.diag,
            cross=self.cross,
            ZtX=[np.ascontiguousarray(zx[:, :, keep]) for zx in self.ZtX],
            Zty=self.Zty,
            XtX=self.XtX[np.ix_(keep, keep)],
            Xty=self.Xty[keep],
            yty=self.yty,
            sum_log_weights=self.sum_log_weights,
        )


def _add_all(arrays: Sequence[np.ndarray]) -> np.ndarray:
    """Elementwise sum of equally shaped arrays (one copy, summed in order)."""
    out = np.array(arrays[0], dtype=float, copy=True)
    for a in arrays[1:]:
        out += a
    return out


def _level_gram(term: TermRows, w: np.ndarray) -> np.ndarray:
    """(L, k, k) per-level Σ w·m mᵀ."""
    L, k = term.nlevels, term.k
    out = np.empty((L, k, k))
    for a in range(k):
        for b in range(a + 1):
            v = np.bincount(term.codes, w * term.model[:, a] * term.model[:, b], minlength=L)
            out[:, a, b] = v
            out[:, b, a] = v
    return out


def _cross_blocks(ts: TermRows, tt: TermRows, w: np.ndarray) -> CrossBlocks:
    """Blocks of Z_sᵀWZ_t for the level pairs that occur together."""
    rows, cols, inverse = _level_pairs(ts.codes, tt.codes, ts.nlevels, tt.nlevels)
    m = len(rows)
    values = np.empty((m, ts.k, tt.k))
    for a in range(ts.k):
        for b in range(tt.k):
            values[:, a, b] = np.bincount(inverse, w * ts.model[:, a] * tt.model[:, b], minlength=m)
    return CrossBlocks(rows=rows, cols=cols, values=values)


def _level_pairs(
    r: np.ndarray, c: np.ndarray, nrows: int, ncols: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The distinct (r, c) code pairs in row-major order, and each observation's pair index.

    Observations are put in (r, c) order by two stable counting sorts, by c and then by r
    (a radix sort on the two codes), not by a comparison sort of combined keys. Returns
    (rows (m,), cols (m,), inverse (n,)).
    """
    n = len(r)
    order = _counting_order(c, ncols)
    order = order[_counting_order(r[order], nrows)]
    rr, cc = np.asarray(r, dtype=np.int64)[order], np.asarray(c, dtype=np.int64)[order]
    first = np.ones(n, dtype=bool)
    first[1:] = (rr[1:] != rr[:-1]) | (cc[1:] != cc[:-1])
    inverse = np.empty(n, dtype=np.intp)
    inverse[order] = np.cumsum(first) - 1
    return rr[first], cc[first], inverse


def _counting_order(keys: np.ndarray, nkeys: int) -> np.ndarray:
    """(n,) stable permutation that sorts integer keys in [0, nkeys): a counting sort.

    The keys as an nkeys × n indicator matrix, one entry per column; converting it from
    columns to rows lists each row's observations in their original order.
    """
    n = len(keys)
    index = _index_dtype(n, nkeys)
    by_obs = sp.csc_matrix(
        (np.ones(n, dtype=np.int8), keys.astype(index), np.arange(n + 1, dtype=index)),
        shape=(nkeys, n),
    )
    return by_obs.tocsr().indices


def _index_dtype(*sizes: int) -> type:
    """int32 sparse indices when every size fits (half the memory traffic), else int64."""
    return np.int32 if max(sizes) < np.iinfo(np.int32).max else np.int64


def _level_sums(term: TermRows, wv: np.ndarray) -> np.ndarray:
    """(L, k, r) per-level Σ m ⊗ v for v of shape (n, r) (already weighted, F-ordered).

    One weighted count per column a of the term's model and column j of v (a column of
    ones, an intercept, weighs by v alone).
    """
    L, k = term.nlevels, term.k
    r = wv.shape[1]
    out = np.empty((L, k, r))
    for a in range(k):
        m = term.model[:, a]
        ones = bool(np.all(m == 1.0))
        for j in range(r):
            out[:, a, j] = np.bincount(term.codes, wv[:, j] if ones else m * wv[:, j], minlength=L)
    return out


def chunk_crossproducts(
    rows: Sequence[TermRows],
    X: np.ndarray,
    y: np.ndarray,
    weights: np.ndarray | None = None,
) -> CrossProducts:
    """Cross-products of one chunk of n rows (or of all the data, in one pass).

    ``rows`` are the terms' rows in Z's column order, their codes index the terms'
    global levels (so chunks add); X is (n, p), y is (n,) (offset already removed),
    weights (n,) prior weights or None.
    """
    n, p = X.shape
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=float)
    Xy = np.asfortranarray(np.column_stack([X, y]))  # the level sums read it by columns
    wXy = Xy if weights is None else Xy * w[:, None]
    with blas_threads(1):  # tall and skinny: a second thread only adds contention
        G = Xy.T @ wXy  # (p+1, p+1) [X y]ᵀW[X y]
    diag = [_level_gram(t, w) for t in rows]
    cross = {(s, t): _cross_blocks(rows[s], rows[t], w) for s in range(len(rows)) for t in range(s)}
    sums = [_level_sums(t, wXy) for t in rows]
    return CrossProducts(
        nobs=n,
        diag=diag,
        cross=cross,
        ZtX=[np.ascontiguousarray(s[:, :, :-1]) for s in sums],
        Zty=[np.ascontiguousarray(s[:, :, -1]) for s in sums],
        XtX=np.ascontiguousarray(G[:p, :p]),
        Xty=G[:p, p].copy(),
        yty=float(G[p, p]),
        sum_log_weights=float(np.sum(np.log(w))) if weights is not None else 0.0,
    )
