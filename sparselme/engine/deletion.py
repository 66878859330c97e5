"""The penalized least-squares objective without some rows, on the full model's pattern.

Cross-products are sums over rows, so deleting rows subtracts theirs: O(rows deleted
+ level pairs touched), not a pass over the data. The pattern of the penalized system
does not change — a level left without rows keeps an identity block in Λ'Z'WZΛ + I (its
u is 0 and adds nothing to log|L|²), so the deviance and every estimate are exactly
those of the model refitted to the remaining rows — and the factorization's symbolic
analysis is shared; only the numeric factor is the twin's own.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from .cholesky import BlockCholesky, SparseCholesky
from .crossprod import CrossBlocks, CrossProducts, chunk_crossproducts
from .objective import PenalizedLeastSquares
from .rows import TermRows

__all__ = ["crossproducts_without", "factorization_twin", "objective_without"]


def crossproducts_without(
    cp: CrossProducts,
    rows: Sequence[TermRows],
    X: np.ndarray,
    y: np.ndarray,
    weights: np.ndarray | None = None,
) -> CrossProducts:
    """``cp`` less the cross-products of some of its rows, on ``cp``'s level pairs.

    ``rows``, X (m, p), y (m,), weights (m,) are the deleted rows as ``cp`` holds them
    (the engine's X̃ and ỹ, codes into the global levels).
    """
    part = chunk_crossproducts(rows, X, y, weights)
    cross = {}
    for key, full in cp.cross.items():
        drop = part.cross.get(key)
        if drop is None or not len(drop.rows):
            cross[key] = full
            continue
        width = int(max(full.cols.max(initial=0), drop.cols.max(initial=0))) + 1
        keys = full.rows.astype(np.int64) * width + full.cols
        pos = np.searchsorted(keys, drop.rows.astype(np.int64) * width + drop.cols)
        values = full.values.copy()
        values[pos] -= drop.values  # the deleted rows' pairs are unique and among cp's
        cross[key] = CrossBlocks(rows=full.rows, cols=full.cols, values=values)
    return replace(
        cp,
        nobs=cp.nobs - part.nobs,
        diag=[a - b for a, b in zip(cp.diag, part.diag)],
        cross=cross,
        ZtX=[a - b for a, b in zip(cp.ZtX, part.ZtX)],
        Zty=[a - b for a, b in zip(cp.Zty, part.Zty)],
        XtX=cp.XtX - part.XtX,
        Xty=cp.Xty - part.Xty,
        yty=cp.yty - part.yty,
        sum_log_weights=cp.sum_log_weights - part.sum_log_weights,
    )


def factorization_twin(
    chol: SparseCholesky | BlockCholesky, cp: CrossProducts
) -> SparseCholesky | BlockCholesky:
    """A factorization of the same pattern for cross-products ``cp`` of other values.

    The symbolic analysis (CHOLMOD's ordering and supernodes, the Schur complement's
    layout) is shared; the numeric factor and every array updated in place are the
    twin's own, so factoring one never changes the other.
    """
    twin = copy.copy(chol)
    twin.cp = cp
    twin.theta = None
    if isinstance(chol, SparseCholesky):
        twin.A = chol.A.copy()
        twin.factor = chol.factor.copy()
    else:
        twin._L21 = chol.L21.copy()  # values formed at chol's θ; the twin refactors anyway
        twin._pending = None
        twin._resize(chol._S.shape[0] - chol.q2)  # its own Schur buffer (and [X y] rows)
        twin.refresh()
    return twin


def objective_without(
    pls: PenalizedLeastSquares,
    rows: Sequence[TermRows],
    X: np.ndarray,
    y: np.ndarray,
    weights: np.ndarray | None = None,
) -> PenalizedLeastSquares:
    """The objective of ``pls``'s model refitted without the given rows (see
    `crossproducts_without` for the arguments)."""
    cp = crossproducts_without(pls.cp, rows, X, y, weights)
    twin = pls.with_crossproducts(cp)
    twin.chol = factorization_twin(pls.chol, cp)
    twin.n = cp.nobs
    twin.n_evaluations = 0
    return twin
