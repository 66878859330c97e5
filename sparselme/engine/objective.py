"""Penalized least squares: θ → profiled deviance on a fixed sparse pattern.

For a given θ the engine factors

    P (Λᵀ ZᵀWZ Λ + I) Pᵀ = L Lᵀ

with CHOLMOD. The pattern of ΛᵀZᵀWZΛ is that of ZᵀWZ (Λ is block diagonal with the
same block structure), so the symbolic analysis is done once and each θ only rescales
stored block values — through each term's k×k template — and refactors numerically.
With

    c_u  = L⁻¹ P Λᵀ ZᵀWy              (q,)
    R_ZX = L⁻¹ P Λᵀ ZᵀWX              (q, p)
    R_XᵀR_X = XᵀWX − R_ZXᵀR_ZX        (p, p), dense Cholesky
    c_β  = R_X⁻ᵀ (XᵀWy − R_ZXᵀ c_u),  β = R_X⁻¹ c_β
    r²   = yᵀWy − ‖c_u‖² − ‖c_β‖²     (penalized weighted residual sum of squares)

the deviance at a residual variance σ² is (`deviance`, the one formula)

    ML:   log|L|² − Σlog w + r²/σ² + n log(2πσ²)
    REML: log|L|² + log|R_X|² − Σlog w + r²/σ² + (n−p) log(2πσ²),

and with σ² profiled out (σ̂² = r²/n for ML, r²/(n−p) for REML)

    ML:   log|L|² − Σlog w + n (1 + log(2π r²/n))
    REML: log|L|² + log|R_X|² − Σlog w + (n−p)(1 + log(2π r²/(n−p))).

The cross-products hold the centred and scaled X̃ = X A (`.fixed_scaling`); the
REML criterion and every solution are reported for the user's X (β = Aβ̃ + shift,
R_X = R̃_X A⁻¹, log|R_X|² = log|R̃_X|² − 2 log|det A|).

Nothing here touches an n-length array.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.linalg as la
from sksparse.cholmod import CholmodError

from ..errors import NumericalError
from .cholesky import choose_factorization
from .crossprod import CrossProducts
from .fixed_scaling import FixedScaling
from .terms import RandomEffectsTerm
from .threads import blas_threads

__all__ = ["PenalizedLeastSquares", "PLSSolution", "deviance"]

_LOG_2PI = math.log(2 * math.pi)


@dataclass
class PLSSolution:
    """Everything the penalized least-squares solve gives at one θ."""

    theta: np.ndarray  # (n_theta,)
    beta: np.ndarray  # (p,)
    u: np.ndarray  # (q,) spherical random effects
    b: np.ndarray  # (q,) random effects, b = Λu
    pwrss: float  # penalized weighted residual sum of squares r²
    logdet_L: float  # log|L|²
    logdet_RX: float  # log|R_X|²
    RX: np.ndarray  # (p, p) upper triangular, R_XᵀR_X = Schur complement of XᵀWX
    cov_unscaled: np.ndarray | None = None  # (p, p) (R_XᵀR_X)⁻¹, formed from R̃_X
    RX_engine: np.ndarray | None = None  # (p, p) R̃_X of the engine's X̃ = X A
    beta_engine: np.ndarray | None = None  # (p,) β̃ of X̃ and the centred response
    fixed: FixedScaling | None = None  # the engine's A (None: X̃ = X)

    def fixed_fit(self, X: np.ndarray) -> np.ndarray:
        """(m,) Xβ for rows X (m, p) of the user's columns, formed as X̃β̃ + shift.

        Xβ itself can cancel (x + 1e9 times a slope, less a huge intercept); X̃'s
        centred columns do not.
        """
        if self.fixed is None or self.beta_engine is None:
            return X @ self.beta
        fit = self.fixed.apply(X) @ self.beta_engine
        return fit + self.fixed.y_shift if self.fixed.intercept is not None else fit

    def unscaled_cov(self) -> np.ndarray:
        """(p, p) (R_XᵀR_X)⁻¹ = Var(β̂)/σ², formed in the engine's well-scaled X̃."""
        if self.cov_unscaled is not None:
            return self.cov_unscaled
        return _inverse_gram(self.RX)  # solutions pickled before the scaling existed


def _inverse_gram(R: np.ndarray) -> np.ndarray:
    """(p, p) (RᵀR)⁻¹ for R upper triangular."""
    if R.size == 0:
        return np.zeros((0, 0))
    Rinv = la.solve_triangular(R, np.eye(R.shape[0]), check_finite=False)
    return Rinv @ Rinv.T


def deviance(
    logdet_L: float,
    logdet_RX: float,
    pwrss: float,
    n: int,
    p: int,
    reml: bool,
    sum_log_weights: float = 0.0,
    sigma2: float | None = None,
) -> float:
    """−2 log-likelihood (ML) or the REML criterion from the pieces of a PLS solve.

    ``sigma2`` None profiles σ² out; otherwise the deviance at that residual variance.
    +inf where r² ≤ 0 (σ̂² would be 0).
    """
    dof = n - p if reml else n
    if sigma2 is None:
        if pwrss <= 0:
            return math.inf
        sigma2 = pwrss / dof
        dev = dof * (1.0 + _LOG_2PI + math.log(sigma2))
    else:
        dev = pwrss / sigma2 + dof * (_LOG_2PI + math.log(sigma2))
    dev += logdet_L - sum_log_weights
    if reml and p:
        dev += logdet_RX
    return dev


class PenalizedLeastSquares:
    """The profiled deviance of a linear mixed model as a function of θ.

    Parameters
    ----------
    terms : random-effects terms, in Z's column order.
    cp : their cross-products with X and y.
    ordering : CHOLMOD fill-reducing ordering (``"default"``, ``"amd"``, ``"metis"``,
        ``"natural"`` ...).
    factorization : ``"auto"``, ``"sparse"`` (CHOLMOD on all of A) or ``"block"``
        (leading term in closed form, dense Schur complement); see `sparselme.cholesky`.
    """

    def __init__(
        self,
        terms: Sequence[RandomEffectsTerm],
        cp: CrossProducts,
        ordering: str = "default",
        factorization: str = "auto",
        fixed: FixedScaling | None = None,
    ):
        self.terms = list(terms)
        self.cp = cp
        self.fixed = FixedScaling.identity(cp.p) if fixed is None else fixed
        self.n = cp.nobs
        self.p = cp.p
        q_sizes = [t.q for t in self.terms]
        self.q = int(sum(q_sizes))
        self.b_offsets = np.concatenate([[0], np.cumsum(q_sizes)]).astype(np.intp)
        th_sizes = [t.n_theta for t in self.terms]
        self.theta_offsets = np.concatenate([[0], np.cumsum(th_sizes)]).astype(np.intp)
        self.lower_bounds = np.concatenate([t.lower_bounds for t in self.terms])
        self.upper_bounds = np.concatenate([t.upper_bounds for t in self.terms])
        self.initial_theta = np.concatenate([t.initial_theta for t in self.terms])
        self.chol = choose_factorization(self.terms, cp, ordering, factorization)
        self.refresh()
        self.n_evaluations = 0

    # ---- per-θ work ---------------------------------------------------------------------
    def templates(self, theta: np.ndarray) -> list[np.ndarray]:
        """Each term's k×k template T(θ)."""
        o = self.theta_offsets
        return [t.template(theta[o[i] : o[i + 1]]) for i, t in enumerate(self.terms)]

    def refresh(self) -> None:
        """Re-read the cross-products after their values changed in place (same pattern).

        Residual variance structures re-weight the cross-products between evaluations.
        """
        # [ZᵀWX  ZᵀWy] per term, stored (L, p+1, k) so Λᵀ applies as one GEMM
        self._zxy_t = [np.ascontiguousarray(B.transpose(0, 2, 1)) for B in self.cp.ZXy]
        self.chol.refresh()
        self.chol.theta = None

    def with_crossproducts(self, cp: CrossProducts) -> PenalizedLeastSquares:
        """The objective for another response on the same design, sharing the factorization.

        ``cp`` may differ from this one only in its response parts (Zᵀy, Xᵀy, yᵀy): the
        factorization depends on θ and ZᵀWZ alone, so both objects use the same one
        (bootstrap refits, lme4's ``refit``).
        """
        twin = copy.copy(self)
        twin.cp = cp
        twin._zxy_t = [np.ascontiguousarray(B.transpose(0, 2, 1)) for B in cp.ZXy]
        return twin

    def _lambda_t_zxy(self, T: list[np.ndarray]) -> np.ndarray:
        """(q, p+1) Λᵀ[ZᵀWX  ZᵀWy]: one small GEMM per term on the stored (L, p+1, k) blocks."""
        out = []
        for B, Ts in zip(self._zxy_t, T):
            L, r, k = B.shape
            if k == 1:
                out.append(B[:, :, 0] * Ts[0, 0])
            else:
                lam = (B.reshape(L * r, k) @ Ts).reshape(L, r, k)
                out.append(lam.transpose(0, 2, 1).reshape(L * k, r))
        return np.concatenate(out, axis=0)

    def _factor(self, theta: np.ndarray) -> list[np.ndarray]:
        """Templates at θ, with the factor made current (kept if it already holds θ)."""
        theta = np.asarray(theta, dtype=float)
        T = self.templates(theta)
        current = self.chol.theta
        if current is None or not np.array_equal(current, theta):
            self.chol.theta = None  # until the update succeeds, the factor holds no θ
            try:
                self.chol.update(T)
            except (np.linalg.LinAlgError, CholmodError) as exc:
                raise NumericalError(
                    "the penalized system Λ'Z'WZΛ + I is not positive definite in double "
                    f"precision at θ = {np.array2string(theta, precision=3)}: rescale the "
                    "random-effects columns (and weights) to moderate sizes"
                ) from exc
            self.chol.theta = theta.copy()  # which θ the (possibly shared) factor holds
        return T

    def _solve_fixed(self, T: list[np.ndarray]):
        """c_u, R_ZX, R_X, c_β, β after the factor is current."""
        cp = self.cp
        # one forward solve for [ΛᵀZᵀWX  ΛᵀZᵀWy]
        sol = self.chol.forward(self._lambda_t_zxy(T))
        RZX, cu = sol[:, :-1], np.ascontiguousarray(sol[:, -1])
        if self.p:
            XtVX = cp.XtX - RZX.T @ RZX
            try:
                RX = la.cholesky(XtVX, lower=False, check_finite=False)
            except la.LinAlgError as exc:
                raise NumericalError(
                    "XᵀV⁻¹X of the fixed effects is not positive definite in double "
                    "precision (nearly collinear fixed-effect columns): remove or rescale "
                    "the columns that are almost linear combinations of others"
                ) from exc
            cbeta = la.solve_triangular(RX, cp.Xty - RZX.T @ cu, trans="T", check_finite=False)
            beta = la.solve_triangular(RX, cbeta, check_finite=False)
        else:
            RX = np.zeros((0, 0))
            cbeta = beta = np.zeros(0)
        return cu, RZX, RX, cbeta, beta

    def deviance(self, theta: np.ndarray, reml: bool = True) -> float:
        """Profiled deviance (−2 log-likelihood, or the REML criterion) at θ."""
        self.n_evaluations += 1
        T = self._factor(theta)
        cu, _, RX, cbeta, _ = self._solve_fixed(T)
        pwrss = self.cp.yty - cu @ cu - cbeta @ cbeta
        return deviance(
            self.chol.logdet(), self._logdet_rx(RX), pwrss, self.n, self.p, reml,
            self.cp.sum_log_weights,
        )

    def solve(self, theta: np.ndarray) -> PLSSolution:
        """β, the conditional modes and the pieces of the deviance at θ."""
        T = self._factor(theta)
        cu, RZX, RX, cbeta, beta = self._solve_fixed(T)
        u = self.chol.backward(cu - RZX @ beta)
        fixed = self.fixed
        return PLSSolution(
            theta=np.asarray(theta, dtype=float).copy(),
            beta=fixed.beta(beta),
            u=u,
            b=self.lambda_times(T, u),
            pwrss=float(self.cp.yty - cu @ cu - cbeta @ cbeta),
            logdet_L=self.chol.logdet(),
            logdet_RX=self._logdet_rx(RX),
            RX=fixed.factor(RX),
            cov_unscaled=fixed.cov(_inverse_gram(RX)),
            RX_engine=RX,
            beta_engine=beta,
            fixed=fixed,
        )

    def _logdet_rx(self, RX: np.ndarray) -> float:
        """log|R_X|² of the user's X from the engine's (p, p) R̃_X: − 2 log|det A|."""
        if not RX.size:
            return 0.0
        return 2.0 * float(np.sum(np.log(np.abs(np.diag(RX))))) - 2.0 * self.fixed.logdet

    def lambda_times(self, T: list[np.ndarray], u: np.ndarray) -> np.ndarray:
        """(q,) Λu."""
        o = self.b_offsets
        return np.concatenate(
            [(u[o[i] : o[i + 1]].reshape(-1, Ts.shape[0]) @ Ts.T).ravel() for i, Ts in enumerate(T)]
        )

    def joint_factor(self, theta: np.ndarray) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
        """(templates T, R_ZX (q, p), R̃_X (p, p)) at θ, the factor L made current.

        With L these are the blocks of the Cholesky factor of the joint system of (u, β̃)
        (X̃ the engine's columns): [[L, 0], [R_ZXᵀ, R̃_Xᵀ]] times its transpose is
        [[ΛᵀZᵀWZΛ + I, ΛᵀZᵀWX̃], [X̃ᵀWZΛ, X̃ᵀWX̃]] (P applied to the u rows).
        """
        T = self._factor(theta)
        _, RZX, RX, _, _ = self._solve_fixed(T)
        return T, RZX, RX

    # ---- conditional variances ---------------------------------------------------------
    def inverse_diagonal_blocks(self, theta: np.ndarray) -> list[np.ndarray]:
        """Per term, the (L, k, k) diagonal blocks of (ΛᵀZᵀWZΛ + I)⁻¹ at θ."""
        with blas_threads(self.chol.blas_threads):
            self._factor(theta)
            return self.chol.inverse_diagonal_blocks()


