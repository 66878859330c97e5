"""Penalized least squares: θ → profiled deviance on a fixed sparse pattern.

For a given θ the engine factors

    P (Λᵀ ZᵀWZ Λ + I) Pᵀ = L Lᵀ

(`sparselme.engine.cholesky`). The pattern of ΛᵀZᵀWZΛ is that of ZᵀWZ (Λ is block
diagonal with the same block structure), so the symbolic analysis is done once and each θ
only rescales stored block values — through each term's k×k template — and refactors
numerically. The columns [X y] are the factor's last block (Bates, Alday & Kokandakar,
2025):

    [R_ZX  c_u] = L⁻¹ P Λᵀ ZᵀW[X y]                    (q, p + 1)
    RᵀR = [X y]ᵀW[X y] − [R_ZX  c_u]ᵀ[R_ZX  c_u],  R = [[R_X, c_β], [0, r]]

with R upper triangular (r + 1 columns), β = R_X⁻¹ c_β and r² the penalized weighted
residual sum of squares. The deviance needs only log|L|², R's diagonal and r², so an
evaluation solves for neither β nor u. The block factorization appends [X y] to its
dense Schur complement and gets R from the same LAPACK call; CHOLMOD's path forms the
tail by one forward solve.

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
from .cholesky import FixedEffectsNotPositiveDefinite, choose_factorization
from .crossprod import CrossProducts
from .fixed_scaling import FixedScaling
from .limits import check_feasible
from .terms import RandomEffectsTerm
from .threads import blas_threads

__all__ = ["PenalizedLeastSquares", "PLSSolution", "deviance"]

_LOG_2PI = math.log(2 * math.pi)
# r² is the factor's last pivot, yᵀWy less sums of squares: it carries a rounding error of
# order ε·yᵀWy. At or below this fraction of yᵀWy it is rounding: y is fitted exactly.
EXACT_FIT_RSS = 8 * np.finfo(float).eps


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
        check_feasible(self.chol.estimate(self.p + 1))  # before the first factorization
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
        self._read_response(self.cp)
        self.chol.refresh()
        self.chol.theta = None

    def _read_response(self, cp: CrossProducts) -> None:
        """[ZᵀWX  ZᵀWy] per term, stored (L, p+1, k) so Λᵀ applies as one GEMM, and the
        (p+1, p+1) [X y]ᵀW[X y]."""
        self._zxy_t = [np.ascontiguousarray(B.transpose(0, 2, 1)) for B in cp.ZXy]
        xy = np.empty((cp.p + 1, cp.p + 1))
        xy[: cp.p, : cp.p] = cp.XtX
        xy[: cp.p, cp.p] = xy[cp.p, : cp.p] = cp.Xty
        xy[cp.p, cp.p] = cp.yty
        self._xy_gram = xy

    def with_crossproducts(self, cp: CrossProducts) -> PenalizedLeastSquares:
        """The objective for another response on the same design, sharing the factorization.

        ``cp`` may differ from this one only in its response parts (Zᵀy, Xᵀy, yᵀy): the
        factorization depends on θ and ZᵀWZ alone, so both objects use the same one
        (bootstrap refits, lme4's ``refit``).
        """
        twin = copy.copy(self)
        twin.cp = cp
        twin._read_response(cp)
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
        """Templates at θ, with the factor made current (kept if it already holds θ).

        The factor's last block is the response's, so a factor shared with a twin of
        another response (`with_crossproducts`) is current only for the one that made it.
        """
        theta = np.asarray(theta, dtype=float)
        T = self.templates(theta)
        chol = self.chol
        current = chol.theta
        if (
            current is None
            or getattr(chol, "response", None) is not self._zxy_t
            or not np.array_equal(current, theta)
        ):
            chol.theta = None  # until the update succeeds, the factor holds no θ
            try:
                chol.update(T, (self._lambda_t_zxy(T), self._xy_gram))
            except FixedEffectsNotPositiveDefinite as exc:
                raise NumericalError(
                    "XᵀV⁻¹X of the fixed effects is not positive definite in double "
                    "precision (nearly collinear fixed-effect columns): remove or rescale "
                    "the columns that are almost linear combinations of others"
                ) from exc
            except (np.linalg.LinAlgError, CholmodError) as exc:
                raise NumericalError(
                    "the penalized system Λ'Z'WZΛ + I is not positive definite in double "
                    f"precision at θ = {np.array2string(theta, precision=3)}: rescale the "
                    "random-effects columns (and weights) to moderate sizes"
                ) from exc
            chol.theta = theta.copy()  # which θ the (possibly shared) factor holds
            chol.response = self._zxy_t  # ... and for which response
        return T

    def _pieces(self) -> tuple[float, float, float, np.ndarray]:
        """(log|L|², log|R_X|², r², R̃) of the current factor; R̃ (p+1, p+1) its last block
        in the engine's X̃ (log|R_X|² is the user's X's)."""
        R = self.chol.fixed_part()
        p = self.p
        pwrss = float(R[p, p]) ** 2
        if pwrss <= EXACT_FIT_RSS * self.cp.yty:  # y fitted exactly, to rounding: σ̂² = 0
            pwrss = 0.0
        return self.chol.logdet(), self._logdet_rx(R[:p, :p]), pwrss, R

    def deviance(self, theta: np.ndarray, reml: bool = True) -> float:
        """Profiled deviance (−2 log-likelihood, or the REML criterion) at θ."""
        self.n_evaluations += 1
        self._factor(theta)
        logdet_l, logdet_rx, pwrss, _ = self._pieces()
        return deviance(logdet_l, logdet_rx, pwrss, self.n, self.p, reml, self.cp.sum_log_weights)

    def solve(self, theta: np.ndarray) -> PLSSolution:
        """β, the conditional modes and the pieces of the deviance at θ."""
        T = self._factor(theta)
        logdet_l, logdet_rx, pwrss, R = self._pieces()
        p = self.p
        RX, cbeta = np.ascontiguousarray(R[:p, :p]), R[:p, p]
        beta = la.solve_triangular(RX, cbeta, check_finite=False) if p else np.zeros(0)
        tail = self.chol.fixed_tail()
        u = self.chol.backward(tail[:, p] - tail[:, :p] @ beta)
        fixed = self.fixed
        return PLSSolution(
            theta=np.asarray(theta, dtype=float).copy(),
            beta=fixed.beta(beta),
            u=u,
            b=self.lambda_times(T, u),
            pwrss=pwrss,
            logdet_L=logdet_l,
            logdet_RX=logdet_rx,
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
        p = self.p
        RX = np.ascontiguousarray(self.chol.fixed_part()[:p, :p])
        return T, np.ascontiguousarray(self.chol.fixed_tail()[:, :p]), RX

    # ---- conditional variances ---------------------------------------------------------
    def inverse_diagonal_blocks(self, theta: np.ndarray) -> list[np.ndarray]:
        """Per term, the (L, k, k) diagonal blocks of (ΛᵀZᵀWZΛ + I)⁻¹ at θ."""
        with blas_threads(self.chol.blas_threads):
            self._factor(theta)
            return self.chol.inverse_diagonal_blocks()
