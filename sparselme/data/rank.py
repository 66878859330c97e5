"""Linear dependence among columns, by a Householder QR (LAPACK ``geqrf``).

Used for the fixed-effects matrix (lme4 drops redundant columns with a warning) and for
the columns of a random-effects term (whose variances are not identifiable then). The
``*_in_r`` forms judge from the R factor alone, as the chunk summaries of
`sparselme.data.moments` give it.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg as la

from ..engine.threads import blas_threads
from ..errors import NumericalError

__all__ = [
    "redundant_columns",
    "redundant_columns_and_residual",
    "RANK_TOL",
    "qr_r",
    "redundant_in_r",
    "redundant_and_residual_in_r",
]

RANK_TOL = 1e-7


def redundant_columns(X: np.ndarray, tol: float = RANK_TOL) -> list[int]:
    """Indices of columns of X that are (numerically) in the span of earlier columns."""
    if X.shape[1] == 0:
        return []
    return _dependent_in_r(qr_r(X), _column_norms(X), tol)


def redundant_columns_and_residual(
    X: np.ndarray, y: np.ndarray, tol: float = RANK_TOL
) -> tuple[list[int], float | None]:
    """(redundant columns of X, ‖y − Xβ̂‖ of least squares) from one QR of [X y] (n, p+1).

    The last diagonal entry of R is the norm of y's part orthogonal to X's columns. With
    redundant columns the residual is None: the reflection for a dependent column turns
    in a direction of rounding noise, so R's last entry is no longer that norm.
    """
    n, p = X.shape
    Xy = np.empty((n, p + 1), order="F")
    Xy[:, :p] = X
    Xy[:, p] = y
    R = qr_r(Xy, overwrite=True)
    dropped = _dependent_in_r(R[:, :p], _column_norms(X), tol)
    if dropped:
        return dropped, None
    return dropped, abs(float(R[p, p])) if R.shape[0] > p else 0.0


def redundant_in_r(R: np.ndarray, tol: float = RANK_TOL) -> list[int]:
    """Redundant columns of a matrix M given only the R (≤ m, m) of its QR (the column
    norms of M are those of R)."""
    return _dependent_in_r(R, np.sqrt(np.einsum("ij,ij->j", R, R)), tol)


def redundant_and_residual_in_r(R: np.ndarray, tol: float = RANK_TOL):
    """`redundant_columns_and_residual` from the R (≤ p+1, p+1) of [X y]."""
    p = R.shape[1] - 1
    dropped = redundant_in_r(R[:, :p], tol)
    if dropped:
        return dropped, None
    return dropped, abs(float(R[p, p])) if R.shape[0] > p else 0.0


def _column_norms(X: np.ndarray) -> np.ndarray:
    """(p,) Euclidean norms of X's columns, without an n × p temporary."""
    return np.sqrt(np.einsum("ij,ij->j", X, X))


# rows per block of a tall QR: the block (with 30 columns, 480 KB) stays in cache while
# its reflectors are applied, where one QR of all rows streams the matrix once per column
QR_BLOCK_ROWS = 2048


def qr_r(M: np.ndarray, overwrite: bool = False) -> np.ndarray:
    """(min(n, m), m) triangular factor R of M (n, m), by LAPACK's Householder QR.

    A tall M is factored in blocks of `QR_BLOCK_ROWS` rows, then the blocks' R factors
    stacked (a tall-skinny QR: the same R up to the signs of its rows, as stable).
    """
    (geqrf,) = la.get_lapack_funcs(("geqrf",), (M,))
    n, m = M.shape
    with blas_threads(1):  # tall and skinny: threads only add contention
        if n > 2 * QR_BLOCK_ROWS and n > 4 * m:
            blocks = [
                _householder_r(geqrf, M[s : s + QR_BLOCK_ROWS], False)
                for s in range(0, n, QR_BLOCK_ROWS)
            ]
            return _householder_r(geqrf, np.asfortranarray(np.vstack(blocks)), True)
        return _householder_r(geqrf, M, overwrite)


def _householder_r(geqrf, M: np.ndarray, overwrite: bool) -> np.ndarray:
    qr, _, _, info = geqrf(M, lwork=max(1, 64 * M.shape[1]), overwrite_a=overwrite)
    if info != 0:
        raise NumericalError(f"QR of the fixed-effects matrix failed (LAPACK info={info})")
    return np.triu(qr[: min(M.shape)])


def _dependent_in_r(R: np.ndarray, norms: np.ndarray, tol: float) -> list[int]:
    d = np.abs(np.diag(R))
    scale = np.where(norms > 0, norms, 1.0)
    return [j for j in range(len(norms)) if norms[j] == 0 or j >= len(d) or d[j] <= tol * scale[j]]
