"""The fixed effects as the engine fits them: X̃ = X A, centred and scaled columns.

Badly scaled predictors ruin the normal equations: ``Days + 1e9`` makes XᵀX the
difference of numbers of size 10²⁰ (cancellation: a wrong fit or a column dropped as
redundant), ``Days * 1e9`` squares the scales of the columns apart (Cholesky of XᵀV⁻¹X
fails). The engine therefore works with X̃ = X A, A (p, p) upper triangular: the
intercept column c (the first constant column, if any) is scaled to ±1, each column
after it is centred on it and scaled to unit root mean square,

    X̃_j = (X_j − m_j) / s_j,

and the response is centred on the intercept the same way, ỹ = y − m_y. Then
β = A β̃ + (m_y / x_c) e_c, Var(β̂) = A Var(β̃) Aᵀ, R_X = R̃_X A⁻¹ (still upper
triangular), and log|XᵀV⁻¹X| = log|X̃ᵀV⁻¹X̃| − 2 log|det A|: ML deviances are unchanged,
the REML criterion shifts by that known constant, which is added back so that every
figure is the user's parametrization's.

A column whose centred spread is within rounding of its size (``1 + 1e-17 x``) holds
no information beyond the intercept: it becomes zero and is dropped as redundant.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["FixedScaling"]

# Centred spread below this fraction of a column's size is rounding, not data.
_ROUNDING = 1e-12


@dataclass(frozen=True)
class FixedScaling:
    """X̃ = X A with A upper triangular (see the module docstring); ỹ = y − y_shift."""

    intercept: int | None  # index c of the constant column (None: nothing is centred)
    value: float  # x_c, the constant column's value
    shift: np.ndarray  # (p,) m_j subtracted from column j (0 for columns ≤ c)
    scale: np.ndarray  # (p,) s_j > 0 (0: the column is rounding only, set to zero)
    y_shift: float = 0.0

    @classmethod
    def identity(cls, p: int) -> FixedScaling:
        return cls(None, 1.0, np.zeros(p), np.ones(p))

    @classmethod
    def of(
        cls, X: np.ndarray, y: np.ndarray | None = None, zero_rounding: bool = False
    ) -> FixedScaling:
        """The centring and scaling of X (n, p) and of the response y (n,).

        ``zero_rounding``: a column whose centred spread is rounding gets scale 0 (X̃'s
        column is zero: for the rank check); otherwise every scale is positive.
        """
        n, p = X.shape
        if n == 0 or p == 0:
            return cls.identity(p)
        first = X[0]
        constant = np.flatnonzero(np.all(X == first, axis=0) & (first != 0))
        c = int(constant[0]) if len(constant) else None
        shift = np.zeros(p)
        scale = np.empty(p)
        for j in range(p):
            x = X[:, j]
            size = float(np.max(np.abs(x)))
            if c is not None and j > c:
                shift[j] = float(np.mean(x))
                x = x - shift[j]
            rms = float(np.sqrt(np.mean(x * x)))
            if rms > _ROUNDING * size:
                scale[j] = rms
            else:
                scale[j] = 0.0 if zero_rounding and size else (rms or 1.0)
        if c is not None:
            scale[c] = abs(float(first[c]))
        y_shift = float(np.mean(y)) if c is not None and y is not None and len(y) else 0.0
        return cls(c, float(first[c]) if c is not None else 1.0, shift, scale, y_shift)

    @property
    def p(self) -> int:
        return len(self.scale)

    # ---- the data --------------------------------------------------------------------------
    def apply(self, X: np.ndarray) -> np.ndarray:
        """(n, p) X̃ = X A, column by column (F-ordered)."""
        out = np.empty(X.shape, order="F")
        for j in range(self.p):
            s = self.scale[j]
            out[:, j] = 0.0 if s == 0 else (X[:, j] - self.shift[j]) / s
        return out

    def apply_y(self, y: np.ndarray) -> np.ndarray:
        """(n,) ỹ = y − y_shift."""
        return y - self.y_shift if self.y_shift else y

    # ---- the estimates -----------------------------------------------------------------
    @property
    def A(self) -> np.ndarray:
        """(p, p) upper triangular A with X̃ = X A (columns set to zero: a zero column)."""
        A = np.diag(np.where(self.scale > 0, 1.0 / np.where(self.scale > 0, self.scale, 1), 0))
        if self.intercept is not None:
            c = self.intercept
            live = self.scale > 0
            A[c, live] -= self.shift[live] / (self.value * self.scale[live])
            A[c, c] = 1.0 / self.scale[c]
        return A

    @property
    def A_inv(self) -> np.ndarray:
        """(p, p) A⁻¹ (X = X̃ A⁻¹); every column must have a positive scale."""
        A_inv = np.diag(self.scale.astype(float))
        if self.intercept is not None:
            c = self.intercept
            A_inv[c, :] += self.shift * self.scale[c] / self.value
            A_inv[c, c] = self.scale[c]
        return A_inv

    @property
    def logdet(self) -> float:
        """log|det A| = −Σ log s_j."""
        return -float(np.sum(np.log(self.scale)))

    def beta(self, beta_s: np.ndarray) -> np.ndarray:
        """(p,) β = A β̃ + (y_shift / x_c) e_c."""
        beta = self.A @ beta_s
        if self.intercept is not None:
            beta[self.intercept] += self.y_shift / self.value
        return beta

    def cov(self, cov_s: np.ndarray) -> np.ndarray:
        """(p, p) A K Aᵀ: a covariance of β̃ in the user's units."""
        A = self.A
        return A @ cov_s @ A.T

    def factor(self, R_s: np.ndarray) -> np.ndarray:
        """(p, p) R̃ A⁻¹: upper triangular with (R̃A⁻¹)ᵀ(R̃A⁻¹) = XᵀV⁻¹X."""
        return R_s @ self.A_inv

    def contrast(self, L: np.ndarray) -> np.ndarray:
        """(r, p) L A: the hypothesis Lβ in β̃ (up to the intercept's shift)."""
        return L @ self.A
