"""Structured covariances of a term (glmmTMB's and lme4 ≥ 2.0's ``cs``, ``ar1``, ``toep`` ...).

Each is one more map θ → T(θ) (`.covariance.CovarianceStructure`): the sparse pattern
and the symbolic analysis do not change. θ is relative to σ, the standard deviations
t ≥ 0 come first (one per column, or one shared), then the structure's own parameters on
a bounded scale the optimizer searches directly:

* `CompoundSymmetry` (``cs``): Σ = σ² D R D, D = diag(t), R = (1 − ρ) I + ρ J with
  ρ ∈ [−1/(k − 1), 1]; T = D R^½ (R^½ = a I + b J in closed form);
* `HomogeneousCompoundSymmetry` (``homcs``): the same with one t;
* `AR1` (``ar1``): Σ_ij = σ² t² ρ^|i−j|, ρ ∈ [−1, 1]; T = t L with L the closed-form
  Cholesky factor of the AR(1) correlation (L_i0 = ρ^i, L_ij = ρ^(i−j) √(1 − ρ²));
* `Toeplitz` (``toep``): Σ = σ² D R D with R Toeplitz, parametrized by its partial
  autocorrelations φ_1..φ_(k−1) ∈ [−1, 1] (every such φ gives a valid R and every
  positive definite Toeplitz R has one); T = D A⁻¹ diag(√v) from the Durbin–Levinson
  recursion (A x = innovations of variance v);
* `ReducedRank` (``rr``): Σ = σ² Λ Λᵀ, Λ (k, d) lower trapezoidal with a diagonal ≥ 0;
* `HomogeneousDiagonal` (``homdiag``): Σ = σ² t² I.

Their natural parameters are the standard deviations and the structure's correlations
(the AR(1) ρ, the CS ρ, the Toeplitz band r_1..r_(k−1)), or the loadings σΛ of ``rr``.
The covariance is not linear in free entries, so `linear_basis` raises
`sparselme.errors.NonlinearStructureError`; `template_derivatives` are exact
(complex-step differentiation of the closed forms).

Over 500 lines because the structures share their bases (`_Structured`; `_Correlated` for
cs, homcs, ar1 and toep: bounds, projections, natural parameters, scales) and are read
side by side.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg as la

from ..errors import IdentifiabilityError, NonlinearStructureError
from .covariance import CovarianceStructure, Scalar

__all__ = [
    "CompoundSymmetry",
    "HomogeneousCompoundSymmetry",
    "AR1",
    "Toeplitz",
    "ReducedRank",
    "HomogeneousDiagonal",
    "STRUCTURES",
]

_STEP = 1e-30  # complex step: exact first derivatives of analytic closed forms


def _values(theta: np.ndarray) -> np.ndarray:
    """θ as floats, or as given when complex (complex-step derivatives)."""
    a = np.asarray(theta)
    return a if np.iscomplexobj(a) else a.astype(float)


def _root(x):
    """√x, with rounding below 0 taken as 0 for real x."""
    return np.sqrt(x) if np.iscomplexobj(x) else np.sqrt(max(float(x), 0.0))


def _span(columns: tuple[str, ...]) -> str:
    return columns[0] if len(columns) == 1 else f"{columns[0]}..{columns[-1]}"


def _mean_correlations(C: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(sd (k,), correlation matrix with 0 where an sd is 0)."""
    sd = np.sqrt(np.clip(np.diag(C), 0.0, None))
    den = np.outer(sd, sd)
    R = np.divide(C, den, out=np.zeros_like(C), where=den > 0)
    return sd, R


@dataclass(frozen=True)
class _Structured(CovarianceStructure):
    """What the nonlinear structures share: projections, derivatives, no linear basis."""

    min_columns = 2

    def __post_init__(self) -> None:
        if self.k < self.min_columns:
            raise IdentifiabilityError(
                f"a {self.keyword}() covariance needs at least {self.min_columns} random-effect "
                f"columns, this term has {self.k} (for a factor over time, write "
                f"{self.keyword}(0 + time_factor | group) with a factor of ≥ 2 levels)"
            )

    @property
    def correlated(self) -> bool:
        return self.k > 1

    def wrap(self, bar: str) -> str:
        return f"{self.keyword}({bar})"

    def theta_from_template(self, T: np.ndarray) -> np.ndarray:
        """θ of the structure's covariance nearest to T Tᵀ (exact for its own T)."""
        T = np.asarray(T, dtype=float)
        return self.theta_from_covariance(T @ T.T)

    def linear_basis(self) -> list[np.ndarray]:
        raise NonlinearStructureError(
            f"the {self.keyword}() covariance is not linear in its parameters, so methods built "
            "on a linear covariance model (Kenward-Roger, statsmodels' Hessian of the variance "
            "parameters) are not available for it; use Satterthwaite's method, profile or "
            "bootstrap intervals instead"
        )

    def template_derivatives(self, theta: np.ndarray) -> np.ndarray:
        theta = np.asarray(theta, dtype=float)
        out = np.empty((self.n_theta, self.k, self.k))
        for j in range(self.n_theta):
            z = theta.astype(complex)
            z[j] += 1j * _STEP
            out[j] = np.imag(self.template(z)) / _STEP
        return out

    @property
    def generic_theta(self) -> np.ndarray:
        """An interior θ without special values (identifiability is checked there)."""
        raise NotImplementedError

    def tangent_basis(self) -> list[np.ndarray]:
        """∂(T Tᵀ)/∂θ_j at `generic_theta`: the covariance's directions there."""
        theta = self.generic_theta
        T = self.template(theta)
        return [D @ T.T + T @ D.T for D in self.template_derivatives(theta)]


@dataclass(frozen=True)
class _Correlated(_Structured):
    """Standard deviations (one per column, or one shared) times a structured correlation.

    θ = (t, c): t ≥ 0, then the correlation's m parameters c in [``c_lower``, 1]; T =
    diag(t) R^½(c). A subclass gives R^½ (`root`), its parameters' natural values
    (`correlations`, `to_parameters`) and the projection of a correlation matrix
    (`project`).
    """

    shared_variance = False  # one standard deviation for all columns

    @property
    def n_sd(self) -> int:
        return 1 if self.shared_variance else self.k

    @property
    def n_cor(self) -> int:
        raise NotImplementedError

    @property
    def c_lower(self) -> float:
        return -1.0

    @property
    def n_theta(self) -> int:
        return self.n_sd + self.n_cor

    @property
    def lower(self) -> np.ndarray:
        return np.r_[np.zeros(self.n_sd), np.full(self.n_cor, self.c_lower)]

    @property
    def upper(self) -> np.ndarray:
        return np.r_[np.full(self.n_sd, np.inf), np.ones(self.n_cor)]

    @property
    def initial(self) -> np.ndarray:
        return np.r_[np.ones(self.n_sd), np.zeros(self.n_cor)]

    @property
    def generic_theta(self) -> np.ndarray:
        return np.r_[1.0 + 0.37 * np.arange(self.n_sd) / self.n_sd, self.generic_correlation]

    @property
    def generic_correlation(self) -> np.ndarray:
        return np.full(self.n_cor, 0.3)

    def root(self, c: np.ndarray) -> np.ndarray:
        """(k, k) R^½ with R^½ R^½ᵀ the correlation matrix of parameters c."""
        raise NotImplementedError

    def template(self, theta: np.ndarray) -> np.ndarray:
        theta = _values(theta)
        sd = theta[: self.n_sd] * np.ones(self.k)
        return sd[:, None] * self.root(theta[self.n_sd :])

    def project(self, R: np.ndarray) -> np.ndarray:
        """The correlation parameters nearest to a correlation matrix R (k, k)."""
        raise NotImplementedError

    def theta_from_covariance(self, C: np.ndarray) -> np.ndarray | None:
        C = np.asarray(C, dtype=float)
        if np.any(np.diag(C) < 0):
            return None
        if self.shared_variance:
            sd = np.array([np.sqrt(np.mean(np.diag(C)))])
            R = C / sd[0] ** 2 if sd[0] > 0 else np.eye(self.k)
        else:
            sd, R = _mean_correlations(C)
        return np.clip(np.r_[sd, self.project(R)], self.lower, self.upper)

    def natural_parameters(self) -> list[tuple[str, int, int]]:
        """The standard deviations, then the correlations at lags 1, 2, ... (row h, col 0)."""
        sds = [("sd", i, i) for i in range(self.n_sd)]
        return sds + [("cor", h, 0) for h in range(1, self.n_cor + 1)]

    def to_parameters(self, correlations: np.ndarray) -> np.ndarray | None:
        """The parameters c of the natural correlations (None if not valid)."""
        c = np.asarray(correlations, dtype=float)
        return c if np.all((c >= self.c_lower) & (c <= 1.0)) else None

    def from_natural(self, values: np.ndarray, sigma: float) -> np.ndarray | None:
        c = self.to_parameters(values[self.n_sd :])
        sd = np.asarray(values[: self.n_sd], dtype=float) / sigma
        return None if c is None else np.r_[sd, c]

    def natural_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        return self.lower, self.upper

    def natural_labels(self, columns: tuple[str, ...]) -> list[str]:
        span = _span(columns)
        sds = [f"sd_{span}"] if self.shared_variance else [f"sd_{c}" for c in columns]
        return sds + self.correlation_labels(span)

    def correlation_labels(self, span: str) -> list[str]:
        return [f"cor_{span}"]

    def column_sizes(self, mean_squares: np.ndarray) -> np.ndarray:
        """One size for all columns when one θ scales them together."""
        if self.shared_variance:
            return np.full(self.k, np.sqrt(np.mean(mean_squares)))
        return np.sqrt(mean_squares)

    def theta_scale(self, sizes: np.ndarray) -> np.ndarray:
        return np.r_[np.asarray(sizes, dtype=float)[: self.n_sd], np.ones(self.n_cor)]


# ---- compound symmetry ----------------------------------------------------------------------
@dataclass(frozen=True)
class CompoundSymmetry(_Correlated):
    """``cs``: k standard deviations and one correlation ρ ∈ [−1/(k−1), 1]."""

    kind = "cs"
    keyword = "cs"

    @property
    def n_cor(self) -> int:
        return 1

    @property
    def c_lower(self) -> float:
        return -1.0 / (self.k - 1)

    def root(self, c: np.ndarray) -> np.ndarray:
        """R^½ = a I + b J of R = (1 − ρ) I + ρ J (symmetric, closed form)."""
        a = _root(1.0 - c[0])
        b = (_root(1.0 + (self.k - 1) * c[0]) - a) / self.k
        return a * np.eye(self.k) + b * np.ones((self.k, self.k))

    def project(self, R: np.ndarray) -> np.ndarray:
        return np.array([np.mean(R[np.tril_indices(self.k, -1)])])

    def describe(self, theta: np.ndarray) -> str:
        return f"{self.keyword}, correlation {float(theta[-1]):.4g}"


@dataclass(frozen=True)
class HomogeneousCompoundSymmetry(CompoundSymmetry):
    """``homcs``: one standard deviation shared by the k columns and one correlation ρ."""

    kind = "homcs"
    keyword = "homcs"
    shared_variance = True


# ---- AR(1) and Toeplitz -------------------------------------------------------------------------
@dataclass(frozen=True)
class AR1(_Correlated):
    """``ar1``: one standard deviation t and the lag-one correlation ρ ∈ [−1, 1]."""

    kind = "ar1"
    keyword = "ar1"
    ordered = True
    shared_variance = True

    @property
    def n_cor(self) -> int:
        return 1

    @property
    def generic_correlation(self) -> np.ndarray:
        return np.array([0.4])

    def root(self, c: np.ndarray) -> np.ndarray:
        """The Cholesky factor of ρ^|i−j|: L_i0 = ρ^i, L_ij = ρ^(i−j) √(1 − ρ²)."""
        rho = c[0]
        lag = np.subtract.outer(np.arange(self.k), np.arange(self.k))
        L = np.where(lag >= 0, np.power(rho, np.maximum(lag, 0)), 0.0)
        L[:, 1:] = L[:, 1:] * _root(1.0 - rho * rho)
        return L

    def project(self, R: np.ndarray) -> np.ndarray:
        return np.array([np.mean(np.diag(R, -1))])

    def correlation_labels(self, span: str) -> list[str]:
        return [f"rho_{span}"]

    def describe(self, theta: np.ndarray) -> str:
        return f"ar1, rho {float(theta[1]):.4g}"


def levinson(pacf: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Durbin–Levinson from partial autocorrelations φ (m,) to a Toeplitz correlation.

    Returns (A (m+1, m+1) unit lower triangular, v (m+1,), r (m+1,)): A x are the
    innovations of a stationary series with lag correlations r (r_0 = 1), of variances v,
    so R = A⁻¹ diag(v) A⁻ᵀ.
    """
    pacf = _values(pacf)
    k = len(pacf) + 1
    dtype = complex if np.iscomplexobj(pacf) else float
    A = np.eye(k, dtype=dtype)
    v = np.ones(k, dtype=dtype)
    r = np.ones(k, dtype=dtype)
    a = np.zeros(0, dtype=dtype)  # the AR coefficients of the current order
    for m in range(1, k):
        phi = pacf[m - 1]
        r[m] = phi * v[m - 1] + a @ r[m - 1 : 0 : -1]
        a = np.r_[a - phi * a[::-1], phi]
        v[m] = v[m - 1] * (1.0 - phi * phi)
        A[m, :m] = -a[::-1]
    return A, v, r


def partial_autocorrelations(band: np.ndarray) -> np.ndarray | None:
    """φ (m,) of the Toeplitz correlation with band r_1..r_m; None if not a correlation."""
    band = np.asarray(band, dtype=float)
    r = np.r_[1.0, band]
    a = np.zeros(0)
    v = 1.0
    out = np.zeros(len(band))
    for m in range(1, len(r)):
        num = r[m] - a @ r[m - 1 : 0 : -1]
        if v <= 1e-14:  # already singular: the rest of the band must follow
            if abs(num) > 1e-8:
                return None
            phi = 0.0
        else:
            phi = num / v
        if not abs(phi) <= 1.0 + 1e-12:
            return None
        phi = float(np.clip(phi, -1.0, 1.0))
        out[m - 1] = phi
        a = np.r_[a - phi * a[::-1], phi]
        v *= 1.0 - phi * phi
    return out


@dataclass(frozen=True)
class Toeplitz(_Correlated):
    """``toep``: k standard deviations and k − 1 partial autocorrelations φ ∈ [−1, 1].

    The natural parameters are the band of correlations r_1..r_(k−1) at lags 1..k−1.
    """

    kind = "toep"
    keyword = "toep"
    ordered = True

    @property
    def n_cor(self) -> int:
        return self.k - 1

    @property
    def generic_correlation(self) -> np.ndarray:
        return 0.45 / np.arange(1, self.k)

    def root(self, c: np.ndarray) -> np.ndarray:
        """A⁻¹ diag(√v) of the Durbin–Levinson recursion: R's Cholesky factor."""
        A, v, _ = levinson(c)
        roots = np.sqrt(v) if np.iscomplexobj(v) else np.sqrt(np.clip(v, 0.0, None))
        return la.solve_triangular(A, np.diag(roots), lower=True, unit_diagonal=True)

    def band(self, theta: np.ndarray) -> np.ndarray:
        """(k − 1,) the correlations at lags 1..k−1."""
        return levinson(np.asarray(theta, dtype=float)[self.k :])[2][1:].real

    def project(self, R: np.ndarray) -> np.ndarray:
        band = np.array([np.mean(np.diag(R, -h)) for h in range(1, self.k)])
        for _ in range(200):  # shrink an averaged band that is no correlation towards 0
            pacf = partial_autocorrelations(band)
            if pacf is not None:
                return pacf
            band = 0.95 * band
        return np.zeros(self.k - 1)

    def to_parameters(self, correlations: np.ndarray) -> np.ndarray | None:
        return partial_autocorrelations(np.asarray(correlations, dtype=float))

    def correlation_labels(self, span: str) -> list[str]:
        return [f"cor_lag{h}_{span}" for h in range(1, self.k)]

    def describe(self, theta: np.ndarray) -> str:
        return "toep, correlation by lag " + " ".join(f"{r:.4g}" for r in self.band(theta))


# ---- reduced rank and homogeneous diagonal -------------------------------------------------------
@dataclass(frozen=True)
class ReducedRank(_Structured):
    """``rr(x | g, d)``: Σ = σ² Λ Λᵀ with Λ (k, d) lower trapezoidal, diagonal ≥ 0.

    θ are Λ's entries column by column (as lme4's unstructured θ, first d columns only).
    """

    rank: int = 2
    kind = "rr"
    keyword = "rr"
    min_columns = 1

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 1 <= self.rank <= self.k:
            raise IdentifiabilityError(
                f"rr(..., d = {self.rank}) on {self.k} random-effect column"
                f"{'s' if self.k > 1 else ''}: the rank d must be between 1 and {self.k}"
            )

    @property
    def positions(self) -> tuple[np.ndarray, np.ndarray]:
        """(rows, cols) of Λ's free entries in θ order."""
        cols = np.concatenate([np.full(self.k - j, j) for j in range(self.rank)])
        rows = np.concatenate([np.arange(j, self.k) for j in range(self.rank)])
        return rows, cols

    @property
    def n_theta(self) -> int:
        return len(self.positions[0])

    @property
    def lower(self) -> np.ndarray:
        rows, cols = self.positions
        return np.where(rows == cols, 0.0, -np.inf)

    @property
    def initial(self) -> np.ndarray:
        rows, cols = self.positions
        return (rows == cols).astype(float)

    @property
    def generic_theta(self) -> np.ndarray:
        rows, cols = self.positions
        return np.where(rows == cols, 1.2, 0.3 + 0.2 * rows - 0.45 * cols)

    def template(self, theta: np.ndarray) -> np.ndarray:
        theta = _values(theta)
        T = np.zeros((self.k, self.k), dtype=theta.dtype)
        T[self.positions] = theta
        return T

    def theta_from_covariance(self, C: np.ndarray) -> np.ndarray | None:
        """θ of the best rank-d approximation of C (exact for C of rank d)."""
        vals, vecs = np.linalg.eigh(np.asarray(C, dtype=float))
        top = np.argsort(vals)[::-1][: self.rank]
        M = vecs[:, top] * np.sqrt(np.clip(vals[top], 0.0, None))
        Q, _ = np.linalg.qr(M[: self.rank].T)
        Lam = M @ Q  # the same Λ Λᵀ, lower trapezoidal
        Lam = Lam * np.where(np.diag(Lam[: self.rank]) < 0, -1.0, 1.0)
        return Lam[self.positions].copy()

    def natural_parameters(self) -> list[tuple[str, int, int]]:
        return [("load", int(i), int(j)) for i, j in zip(*self.positions)]

    def to_natural(self, theta: np.ndarray, sigma: float) -> np.ndarray:
        return sigma * np.asarray(theta, dtype=float)

    def from_natural(self, values: np.ndarray, sigma: float) -> np.ndarray | None:
        return np.asarray(values, dtype=float) / sigma

    def natural_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        return self.lower, self.upper

    def natural_labels(self, columns: tuple[str, ...]) -> list[str]:
        return [f"load{j + 1}_{columns[i]}" for i, j in zip(*self.positions)]

    def natural_scale(self, sizes: np.ndarray) -> np.ndarray:
        return self.theta_scale(sizes)

    def wrap(self, bar: str) -> str:
        return f"rr({bar}, d = {self.rank})"

    def describe(self, theta: np.ndarray) -> str:
        return f"rr, rank {self.rank}"


@dataclass(frozen=True)
class HomogeneousDiagonal(Scalar):
    """``homdiag``: independent random effects with one shared variance (T = θ I)."""

    kind = "homdiag"
    keyword = "homdiag"

    def theta_from_template(self, T: np.ndarray) -> np.ndarray:
        T = np.asarray(T, dtype=float)
        return self.theta_from_covariance(T @ T.T)

    def theta_from_covariance(self, C: np.ndarray) -> np.ndarray | None:
        var = float(np.mean(np.diag(np.asarray(C, dtype=float))))
        return None if var < 0 else np.array([np.sqrt(var)])

    def natural_labels(self, columns: tuple[str, ...]) -> list[str]:
        return [f"sd_{_span(columns)}"]

    def wrap(self, bar: str) -> str:
        return f"homdiag({bar})"


STRUCTURES: dict[str, type[CovarianceStructure]] = {
    "cs": CompoundSymmetry,
    "homcs": HomogeneousCompoundSymmetry,
    "ar1": AR1,
    "toep": Toeplitz,
    "rr": ReducedRank,
    "homdiag": HomogeneousDiagonal,
}
