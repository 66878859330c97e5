"""The penalized residual sum of squares of a given residual vector, summed accurately.

For a residual r = y − Xβ at fixed β (n,) and θ,

    Q(r) = min_u ‖r − ZΛu‖² + ‖u‖² = rᵀ(I + ZΛΛᵀZᵀ)⁻¹r.

`PenalizedLeastSquares.solve` obtains r² at the GLS β̂ from the cross-products
(yᵀy − ‖c_u‖² − ‖c_β‖²), which cancels digits when the fit explains most of yᵀy.
Here Q is the sum of squares of the PLS residuals themselves: Q is stationary in u, so
rounding in û enters only to second order, and the sums are taken with ``math.fsum``. The
result is as smooth in the parameters as the data allow (numerical differentiation of a
likelihood built on it stays accurate). This touches n-length arrays.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from .objective import PenalizedLeastSquares
from .rows import TermRows
from .threads import blas_threads

__all__ = ["penalized_residual_sum"]


def penalized_residual_sum(
    pls: PenalizedLeastSquares, theta: np.ndarray, rows: Sequence[TermRows], r: np.ndarray
) -> tuple[float, np.ndarray]:
    """(Q(r), û (q,)) at θ for the residual r (n,) of the unweighted model.

    ``rows`` are the terms' rows, in ``pls``'s term order.
    """
    r = np.asarray(r, dtype=float)
    with blas_threads(pls.chol.blas_threads):
        T = pls._factor(theta)
        parts = []
        for t, Ts in zip(rows, T):
            Ztr = np.column_stack(
                [np.bincount(t.codes, t.model[:, a] * r, minlength=t.nlevels) for a in range(t.k)]
            )
            parts.append(Ztr @ Ts)  # rows of (Λᵀ Zᵀ r) per level
        rhs = np.concatenate([p.ravel() for p in parts])[:, None]
        u = pls.chol.backward(pls.chol.forward(rhs))[:, 0]
    b = pls.lambda_times(T, u)
    o = pls.b_offsets
    e = r.copy()
    for i, t in enumerate(rows):
        e -= t.z_times(b[o[i] : o[i + 1]])
    return math.fsum(e * e) + math.fsum(u * u), u
