"""Cross-products of the precision pieces, laid out as flat vectors over the engine's arrays."""

from __future__ import annotations

import numpy as np

from ..data.design import Design
from ..engine.crossprod import CrossProducts

__all__ = ["CrossProductLayout"]


class CrossProductLayout:
    """The engine's cross-product arrays as one flat vector (same pattern, same order).

    ``products`` computes a piece's [Z X y]ᵀW_j[Z X y] straight into that layout (cross
    blocks at the base pattern's level pairs); ``write`` puts a combination back into the
    `CrossProducts` in place.
    """

    def __init__(self, cp: CrossProducts, design: Design):
        self.keys = list(cp.cross)
        arrays = self._arrays(cp)
        self.offsets = np.cumsum([0] + [a.size for a in arrays])
        self.size = int(self.offsets[-1]) + 1  # the last entry is yᵀWy
        self._pair_keys = {}  # (s, t) → sorted level-pair codes row·L_t + col of the pattern
        for (s, t), blk in cp.cross.items():
            width = design.terms[t].nlevels
            self._pair_keys[(s, t)] = blk.rows.astype(np.int64) * width + blk.cols

    def _arrays(self, cp: CrossProducts) -> list[np.ndarray]:
        cross = [cp.cross[k].values for k in self.keys]
        return [*cp.diag, *cross, *cp.ZtX, *cp.Zty, cp.XtX, cp.Xty]

    def write(self, vec: np.ndarray, cp: CrossProducts) -> None:
        """Copy a layout vector into cp's arrays in place (yᵀWy replaced)."""
        o = self.offsets
        for i, arr in enumerate(self._arrays(cp)):
            arr[...] = vec[o[i] : o[i + 1]].reshape(arr.shape)
        cp.yty = float(vec[-1])

    def products(
        self, design: Design, a: np.ndarray, b: np.ndarray | None, w: np.ndarray
    ) -> np.ndarray:
        """(size,) Σ_k w_k u_{a_k} u_{b_k}ᵀ (+ transpose) for u = [Z X y] rows; b None: b = a."""
        if b is None:
            return self._half(design, a, a, w)
        return self._half(design, a, b, w) + self._half(design, b, a, w)

    def _half(self, design: Design, a: np.ndarray, b: np.ndarray, w: np.ndarray) -> np.ndarray:
        terms, X, y = design.rows, design.X, design.y_minus_offset
        parts: list[np.ndarray] = []
        for t in terms:  # level blocks: a and b always share the level
            ma, mb, codes = t.model[a], t.model[b], t.codes[a]
            blk = np.empty((t.nlevels, t.k, t.k))
            for i in range(t.k):
                for j in range(t.k):
                    blk[:, i, j] = np.bincount(codes, w * ma[:, i] * mb[:, j], minlength=t.nlevels)
            parts.append(blk.ravel())
        for s, t in self.keys:
            keys = self._pair_keys[(s, t)]
            ts, tt = terms[s], terms[t]
            query = ts.codes[a].astype(np.int64) * tt.nlevels + tt.codes[a]
            idx = np.minimum(np.searchsorted(keys, query), len(keys) - 1)
            if not np.array_equal(keys[idx], query):  # a level pair outside the pattern
                raise ValueError(f"rows pair levels of terms {s} and {t} outside Z'WZ's pattern")
            m = len(keys)
            ms, mt = ts.model[a], tt.model[b]
            blk = np.empty((m, ts.k, tt.k))
            for i in range(ts.k):
                for j in range(tt.k):
                    blk[:, i, j] = np.bincount(idx, w * ms[:, i] * mt[:, j], minlength=m)
            parts.append(blk.ravel())
        Xb, yb = X[b], y[b]
        zx, zy = [], []
        for t in terms:
            ma, codes = t.model[a] * w[:, None], t.codes[a]
            blk = np.empty((t.nlevels, t.k, X.shape[1]))
            for i in range(t.k):
                for j in range(X.shape[1]):
                    blk[:, i, j] = np.bincount(codes, ma[:, i] * Xb[:, j], minlength=t.nlevels)
            zx.append(blk.ravel())
            zy.append(
                np.stack(
                    [np.bincount(codes, ma[:, i] * yb, minlength=t.nlevels) for i in range(t.k)],
                    axis=1,
                ).ravel()
            )
        wXa = X[a] * w[:, None]
        parts += zx + zy + [(wXa.T @ Xb).ravel(), wXa.T @ yb, np.array([float((w * y[a]) @ yb)])]
        return np.concatenate(parts)
