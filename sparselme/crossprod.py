"""The cross-products [Z X y]ᵀ W [Z X y], computed once per model.

These are sums over observations, so they are the only place where n-length arrays are
touched. Everything the optimizer needs afterwards is in :class:`CrossProducts`, stored
in the block form of the random-effects terms:

* ``diag[s]``: (L_s, k_s, k_s) — the level-diagonal blocks of Z_sᵀWZ_s (a term's
  levels never co-occur in one observation, so Z_sᵀWZ_s is block diagonal);
* ``cross[(s, t)]`` for s > t: the level pairs of terms s and t that share observations
  and their (m, k_s, k_t) blocks of Z_sᵀWZ_t;
* ``ZtX[s]``: (L_s, k_s, p), ``Zty[s]``: (L_s, k_s), ``XtX``: (p, p), ``Xty``: (p,),
  ``yty``: float.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .terms import RandomEffectsTerm

__all__ = ["CrossBlocks", "CrossProducts", "compute_crossproducts"]


@dataclass
class CrossBlocks:
    """Blocks of Z_sᵀWZ_t at the level pairs (rows[i], cols[i]) that co-occur."""

    rows: np.ndarray  # (m,) level index in term s
    cols: np.ndarray  # (m,) level index in term t
    values: np.ndarray  # (m, k_s, k_t)


@dataclass
class CrossProducts:
    """Weighted cross-products of Z, X and y (see module docstring for shapes)."""

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


def _level_gram(term: RandomEffectsTerm, w: np.ndarray) -> np.ndarray:
    """(L, k, k) per-level Σ w·m mᵀ."""
    L, k = term.nlevels, term.k
    out = np.empty((L, k, k))
    for a in range(k):
        for b in range(a + 1):
            v = np.bincount(term.codes, w * term.model[:, a] * term.model[:, b], minlength=L)
            out[:, a, b] = v
            out[:, b, a] = v
    return out


def _cross_blocks(ts: RandomEffectsTerm, tt: RandomEffectsTerm, w: np.ndarray) -> CrossBlocks:
    """Blocks of Z_sᵀWZ_t for the level pairs that occur together."""
    key = ts.codes.astype(np.int64) * tt.nlevels + tt.codes
    pairs, inverse = np.unique(key, return_inverse=True)
    m = len(pairs)
    values = np.empty((m, ts.k, tt.k))
    for a in range(ts.k):
        for b in range(tt.k):
            values[:, a, b] = np.bincount(inverse, w * ts.model[:, a] * tt.model[:, b], minlength=m)
    return CrossBlocks(rows=pairs // tt.nlevels, cols=pairs % tt.nlevels, values=values)


def _level_sums(term: RandomEffectsTerm, wv: np.ndarray) -> np.ndarray:
    """(L, k, r) per-level Σ m ⊗ v for v of shape (n, r) (already weighted)."""
    L, k = term.nlevels, term.k
    r = wv.shape[1]
    out = np.empty((L, k, r))
    for a in range(k):
        mw = term.model[:, a]
        for j in range(r):
            out[:, a, j] = np.bincount(term.codes, mw * wv[:, j], minlength=L)
    return out


def compute_crossproducts(
    terms: Sequence[RandomEffectsTerm],
    X: np.ndarray,
    y: np.ndarray,
    weights: np.ndarray | None = None,
) -> CrossProducts:
    """Form every cross-product the fit needs, in one pass over the n observations.

    ``terms`` are in Z's column order; X is (n, p), y is (n,) (offset already removed),
    weights (n,) prior weights or None.
    """
    n = len(y)
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=float)
    wX = X * w[:, None]
    wy = y * w
    diag = [_level_gram(t, w) for t in terms]
    cross = {
        (s, t): _cross_blocks(terms[s], terms[t], w) for s in range(len(terms)) for t in range(s)
    }
    wXy = np.column_stack([wX, wy])
    sums = [_level_sums(t, wXy) for t in terms]
    return CrossProducts(
        nobs=n,
        diag=diag,
        cross=cross,
        ZtX=[s[:, :, :-1] for s in sums],
        Zty=[s[:, :, -1] for s in sums],
        XtX=X.T @ wX,
        Xty=X.T @ wy,
        yty=float(y @ wy),
        sum_log_weights=float(np.sum(np.log(w))) if weights is not None else 0.0,
    )
