"""Covariance parametrizations of a random-effects term: θ → the k×k template T(θ).

A term's random effects at one level have covariance σ² T Tᵀ, and the engine only ever
needs T (Λ is ``I_L ⊗ T`` for the term). Each parametrization says how its θ entries fill
T, their bounds and starting values, how to go back from a covariance to θ, and which
"natural" parameters it reports (standard deviations, correlations), so code outside this
module never branches on the kind of structure:

* `Unstructured`: T lower triangular, its k(k+1)/2 entries are θ (lme4's order:
  the lower triangle column by column); diagonal entries ≥ 0;
* `Diagonal`: T diagonal, k θ's ≥ 0 (lme4's ``||`` on numeric columns);
* `Scalar`: T = θ I, one θ ≥ 0 shared by the k columns (statsmodels' variance
  components over several columns).

The structures of glmmTMB and lme4 ≥ 2.0 (compound symmetry, AR(1), Toeplitz, reduced
rank, homogeneous diagonal) are in `.structures`; `.parametrizations.make_covariance`
builds any of them by name.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

__all__ = [
    "CovarianceStructure",
    "Unstructured",
    "Diagonal",
    "Scalar",
    "psd_cholesky",
]


@dataclass(frozen=True)
class CovarianceStructure:
    """Base class: the map θ (n_theta,) → T (k, k) of one term."""

    k: int
    kind = "abstract"
    keyword = "us"  # the formula's name of the structure: us(x | g), ar1(0 + t | g) ...
    ordered = False  # the columns' order is part of the model (time: AR(1), Toeplitz)

    # ---- the parameters -----------------------------------------------------------
    @property
    def n_theta(self) -> int:
        raise NotImplementedError

    @property
    def lower(self) -> np.ndarray:
        """(n_theta,) lower bounds of θ."""
        raise NotImplementedError

    @property
    def upper(self) -> np.ndarray:
        """(n_theta,) upper bounds of θ (+inf where unbounded)."""
        return np.full(self.n_theta, np.inf)

    @property
    def initial(self) -> np.ndarray:
        """(n_theta,) θ giving T = I."""
        raise NotImplementedError

    def template(self, theta: np.ndarray) -> np.ndarray:
        """(k, k) relative covariance factor T(θ)."""
        raise NotImplementedError

    def theta_from_template(self, T: np.ndarray) -> np.ndarray:
        """θ whose template is T (T lower triangular, as from a Cholesky factor)."""
        raise NotImplementedError

    def theta_from_covariance(self, C: np.ndarray) -> np.ndarray | None:
        """θ with T Tᵀ = C (relative covariance, k × k); None if C is not valid."""
        T = psd_cholesky(np.asarray(C, dtype=float))
        return None if T is None else self.theta_from_template(T)

    def covariance(self, theta: np.ndarray, sigma2: float = 1.0) -> np.ndarray:
        """(k, k) covariance σ² T Tᵀ of one level's random effects."""
        T = self.template(theta)
        return sigma2 * T @ T.T

    # ---- what is reported ------------------------------------------------------------
    @property
    def correlated(self) -> bool:
        """Whether the structure estimates correlations between its columns."""
        return False

    def natural_parameters(self) -> list[tuple[str, int, int]]:
        """(kind, i, j) per natural parameter, in θ order: ("sd", i, i) or ("cor", i, j)."""
        return [("sd", i, i) for i in range(self.n_theta)]

    def to_natural(self, theta: np.ndarray, sigma: float) -> np.ndarray:
        """(n_theta,) standard deviations (and correlations) at θ on σ's scale."""
        cov = self.covariance(theta, sigma**2)
        sd = np.sqrt(np.diag(cov))
        out = []
        for kind, i, j in self.natural_parameters():
            if kind == "sd":
                out.append(sd[i])
            else:
                den = sd[i] * sd[j]
                out.append(cov[i, j] / den if den > 0 else 0.0)
        return np.asarray(out)

    def from_natural(self, values: np.ndarray, sigma: float) -> np.ndarray | None:
        """Inverse of `to_natural` (None for an invalid correlation matrix).

        The correlations are factored first (D R D = (D L)(D L)ᵀ), so standard
        deviations of any size come back exactly.
        """
        sd = np.zeros(self.k)
        R = np.eye(self.k)
        for (kind, i, j), v in zip(self.natural_parameters(), values):
            if kind == "sd":
                sd[i] = v
            else:
                R[i, j] = R[j, i] = v
        L = psd_cholesky(R)
        return None if L is None else self.theta_from_template((sd / sigma)[:, None] * L)

    def natural_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """(lower, upper) of the natural parameters: sd ≥ 0, −1 ≤ cor ≤ 1."""
        kinds = [kind for kind, _, _ in self.natural_parameters()]
        lower = np.array([0.0 if k == "sd" else -1.0 for k in kinds])
        upper = np.array([np.inf if k == "sd" else 1.0 for k in kinds])
        return lower, upper

    def natural_labels(self, columns: tuple[str, ...]) -> list[str]:
        """lme4's labels: ``sd_<column>`` and ``cor_<column i>.<column j>``."""
        out = []
        for kind, i, j in self.natural_parameters():
            out.append(f"sd_{columns[i]}" if kind == "sd" else f"cor_{columns[i]}.{columns[j]}")
        return out

    def diagonal(self) -> CovarianceStructure:
        """The same columns without correlations (statsmodels' ``free`` on cov_re)."""
        return Diagonal(self.k)

    def column_sizes(self, mean_squares: np.ndarray) -> np.ndarray:
        """(k,) the sizes of the columns as θ sees them: the root mean squares."""
        return np.sqrt(mean_squares)

    def linear_basis(self) -> list[np.ndarray]:
        """Symmetric (k, k) matrices E_r with covariance Σ_r c_r E_r, one per free entry.

        The covariance as a linear model in its entries (Kenward–Roger, statsmodels'
        parameters), in θ's order: E_ii for a variance, E_ij + E_ji for a covariance.
        """
        out = []
        for _, i, j in self.natural_parameters():
            E = np.zeros((self.k, self.k))
            E[i, j] = E[j, i] = 1.0
            out.append(E)
        return out

    # ---- derivatives, scales and labels shared by every structure ---------------------
    def template_derivatives(self, theta: np.ndarray) -> np.ndarray:
        """(n_theta, k, k) ∂T/∂θ_j at θ (here T is linear in θ: T(e_j) − T(0))."""
        zero = self.template(np.zeros(self.n_theta))
        return np.array([self.template(e) - zero for e in np.eye(self.n_theta)])

    def tangent_basis(self) -> list[np.ndarray]:
        """Symmetric (k, k) directions in which the covariance can move, one per θ entry.

        Identifiability checks test these for linear independence; for a covariance linear
        in its entries they are `linear_basis`.
        """
        return self.linear_basis()

    def theta_scale(self, sizes: np.ndarray) -> np.ndarray:
        """(n_theta,) d with θ̃ = d θ for the columns divided by ``sizes`` (k,).

        Dividing column a by s_a multiplies row a of T by s_a (T̃ = diag(s) T).
        """
        return np.asarray(sizes, dtype=float)[self.positions[0]]

    def natural_scale(self, sizes: np.ndarray) -> np.ndarray:
        """(n_theta,) the sizes of the natural parameters for ``sizes`` (k,) of the columns:
        a standard deviation scales with its column, a correlation does not."""
        sizes = np.asarray(sizes, dtype=float)
        kinds = self.natural_parameters()
        return np.array([sizes[i] if kind == "sd" else 1.0 for kind, i, _ in kinds])

    def wrap(self, bar: str) -> str:
        """The term as written around its bar ``x | g``: ``(x | g)``, ``ar1(x | g)``."""
        return f"({bar})"

    def describe(self, theta: np.ndarray) -> str:
        """A short text of the structure's own parameters at θ ("" when the sd's and
        correlations say it all)."""
        return ""


@lru_cache(maxsize=64)
def _lower_by_columns(k: int) -> tuple[np.ndarray, np.ndarray]:
    """(rows, cols) of a k×k lower triangle column by column (read-only, shared)."""
    cols, rows = np.triu_indices(k)
    rows.flags.writeable = cols.flags.writeable = False
    return rows, cols


@dataclass(frozen=True)
class Unstructured(CovarianceStructure):
    """T lower triangular with free entries: k(k+1)/2 θ's, lme4's column-wise order."""

    kind = "unstructured"

    @property
    def positions(self) -> tuple[np.ndarray, np.ndarray]:
        """(rows, cols) of T's entries in θ order: the lower triangle column by column."""
        return _lower_by_columns(self.k)

    @property
    def n_theta(self) -> int:
        return self.k * (self.k + 1) // 2

    @property
    def lower(self) -> np.ndarray:
        rows, cols = self.positions
        return np.where(rows == cols, 0.0, -np.inf)

    @property
    def initial(self) -> np.ndarray:
        rows, cols = self.positions
        return (rows == cols).astype(float)

    def template(self, theta: np.ndarray) -> np.ndarray:
        T = np.zeros((self.k, self.k))
        T[self.positions] = theta
        return T

    def theta_from_template(self, T: np.ndarray) -> np.ndarray:
        return np.asarray(T)[self.positions].copy()

    @property
    def correlated(self) -> bool:
        return self.k > 1

    def natural_parameters(self) -> list[tuple[str, int, int]]:
        rows, cols = self.positions
        return [("sd" if i == j else "cor", int(i), int(j)) for i, j in zip(rows, cols)]


@dataclass(frozen=True)
class Diagonal(CovarianceStructure):
    """T diagonal: k θ's ≥ 0, independent random effects."""

    kind = "diagonal"
    keyword = "diag"

    @property
    def n_theta(self) -> int:
        return self.k

    @property
    def lower(self) -> np.ndarray:
        return np.zeros(self.k)

    @property
    def initial(self) -> np.ndarray:
        return np.ones(self.k)

    def template(self, theta: np.ndarray) -> np.ndarray:
        return np.diag(np.asarray(theta, dtype=float))

    def theta_from_template(self, T: np.ndarray) -> np.ndarray:
        return np.diag(np.asarray(T)).copy()

    def theta_from_covariance(self, C: np.ndarray) -> np.ndarray | None:
        d = np.diag(np.asarray(C, dtype=float))
        return None if np.any(d < 0) else np.sqrt(d)

    @property
    def positions(self) -> tuple[np.ndarray, np.ndarray]:
        """(rows, cols) of T's entries in θ order: the diagonal."""
        return np.arange(self.k), np.arange(self.k)

    def wrap(self, bar: str) -> str:
        return f"diag({bar})"


@dataclass(frozen=True)
class Scalar(CovarianceStructure):
    """T = θ I: one θ ≥ 0 shared by the k columns."""

    kind = "scalar"
    keyword = ""

    @property
    def n_theta(self) -> int:
        return 1

    @property
    def lower(self) -> np.ndarray:
        return np.zeros(1)

    @property
    def initial(self) -> np.ndarray:
        return np.ones(1)

    def template(self, theta: np.ndarray) -> np.ndarray:
        return float(theta[0]) * np.eye(self.k)

    def theta_from_template(self, T: np.ndarray) -> np.ndarray:
        return np.array([np.asarray(T)[0, 0]])

    def theta_from_covariance(self, C: np.ndarray) -> np.ndarray | None:
        c = float(np.asarray(C)[0, 0])
        return None if c < 0 else np.array([math.sqrt(c)])

    @property
    def positions(self) -> tuple[np.ndarray, np.ndarray]:
        """(rows, cols) of T's entry that θ sets (all diagonal entries share it)."""
        return np.zeros(1, dtype=int), np.zeros(1, dtype=int)

    def to_natural(self, theta: np.ndarray, sigma: float) -> np.ndarray:
        return np.array([sigma * abs(float(theta[0]))])

    def from_natural(self, values: np.ndarray, sigma: float) -> np.ndarray | None:
        return np.array([values[0] / sigma])

    def natural_labels(self, columns: tuple[str, ...]) -> list[str]:
        return [f"sd_{'+'.join(columns) if self.k > 1 else columns[0]}"]

    def diagonal(self) -> CovarianceStructure:
        return self

    def linear_basis(self) -> list[np.ndarray]:
        return [np.eye(self.k)]

    def column_sizes(self, mean_squares: np.ndarray) -> np.ndarray:
        """One size for all columns (one θ scales them together)."""
        return np.full(self.k, np.sqrt(np.mean(mean_squares)))


def psd_cholesky(A: np.ndarray) -> np.ndarray | None:
    """Lower Cholesky factor of a positive semi-definite A (None when A is indefinite)."""
    k = A.shape[0]
    L = np.zeros_like(A, dtype=float)
    scale = max(float(np.max(np.diag(A))), 1e-300) if k else 1.0
    for j in range(k):
        d = A[j, j] - L[j, :j] @ L[j, :j]
        if d < -1e-10 * scale:
            return None
        if d <= 1e-14 * scale:
            continue
        L[j, j] = math.sqrt(d)
        L[j + 1 :, j] = (A[j + 1 :, j] - L[j + 1 :, :j] @ L[j, :j]) / L[j, j]
    return L
