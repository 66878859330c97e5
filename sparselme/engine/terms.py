"""Random-effects terms.

A term ``(expr | g)`` owns everything that depends on its structure: the grouping codes,
the per-observation model rows (the columns of ``expr``), the lower-triangular k×k
template T(θ) of its relative covariance factor, its slice of θ with bounds, and its
block of the global random-effects matrix Z.

Z's columns for a term are level-major: level 0's k columns, then level 1's, and so on,
so Λ restricted to the term is ``I_L ⊗ T`` (block diagonal, T repeated per level).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp

__all__ = ["RandomEffectsTerm", "COVARIANCE_STRUCTURES", "sandwich"]

COVARIANCE_STRUCTURES = ("unstructured", "diagonal", "scalar")


@dataclass(eq=False)
class RandomEffectsTerm:
    """One random-effects term: ``k`` model columns varying over ``nlevels`` levels.

    Attributes
    ----------
    name : label of the grouping factor, e.g. ``"Subject"`` or ``"cask:batch"``.
    columns : names of the k model columns, e.g. ``("(Intercept)", "Days")``.
    levels : the observed levels of the grouping factor, in order.
    codes : (n,) level index of each observation.
    model : (n, k) model rows of the term.
    covariance : ``"unstructured"`` (k(k+1)/2 θ's), ``"diagonal"`` (k θ's) or
        ``"scalar"`` (one θ shared by the k columns).
    """

    name: str
    columns: tuple[str, ...]
    levels: pd.Index
    codes: np.ndarray
    model: np.ndarray
    covariance: str = "unstructured"
    group_vars: tuple[str, ...] = ()
    lhs: str = "1"
    _theta_pos: tuple[np.ndarray, np.ndarray] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.covariance not in COVARIANCE_STRUCTURES:
            raise ValueError(f"unknown covariance structure {self.covariance!r}")
        self.codes = np.ascontiguousarray(self.codes, dtype=np.intp)
        self.model = np.ascontiguousarray(
            np.asarray(self.model, dtype=float).reshape(len(self.codes), -1)
        )
        k = self.k
        if self.covariance == "unstructured":
            # lme4's order: the lower triangle column by column.
            cols, rows = np.triu_indices(k)
            self._theta_pos = (rows, cols)
        else:
            self._theta_pos = (np.arange(k), np.arange(k))

    # ---- sizes --------------------------------------------------------------------
    @property
    def k(self) -> int:
        """Number of model columns (random effects per level)."""
        return self.model.shape[1]

    @property
    def nlevels(self) -> int:
        return len(self.levels)

    @property
    def q(self) -> int:
        """Number of columns of Z this term contributes (k · nlevels)."""
        return self.k * self.nlevels

    @property
    def nobs(self) -> int:
        return len(self.codes)

    @property
    def intercept_only(self) -> bool:
        """True for a ``(1 | g)`` term: one model column of ones."""
        return self.k == 1 and bool(np.all(self.model == 1.0))

    @property
    def n_theta(self) -> int:
        return 1 if self.covariance == "scalar" else len(self._theta_pos[0])

    # ---- the Λ template -----------------------------------------------------------
    @property
    def theta_positions(self) -> tuple[np.ndarray, np.ndarray]:
        """(rows, cols) of the template entries that θ fills, in θ order."""
        return self._theta_pos

    @property
    def lower_bounds(self) -> np.ndarray:
        """(n_theta,) 0 for diagonal entries of T, -inf for off-diagonal ones."""
        if self.covariance == "scalar":
            return np.zeros(1)
        rows, cols = self._theta_pos
        return np.where(rows == cols, 0.0, -np.inf)

    @property
    def initial_theta(self) -> np.ndarray:
        """(n_theta,) θ giving T = I."""
        if self.covariance == "scalar":
            return np.ones(1)
        rows, cols = self._theta_pos
        return (rows == cols).astype(float)

    def template(self, theta: np.ndarray) -> np.ndarray:
        """(k, k) lower-triangular relative covariance factor T for this term's θ."""
        k = self.k
        if self.covariance == "scalar":
            return float(theta[0]) * np.eye(k)
        T = np.zeros((k, k))
        T[self._theta_pos] = theta
        return T

    def theta_from_template(self, T: np.ndarray) -> np.ndarray:
        """Inverse of `template`."""
        if self.covariance == "scalar":
            return np.array([T[0, 0]])
        return np.asarray(T)[self._theta_pos].copy()

    def covariance_matrix(self, theta: np.ndarray, sigma2: float = 1.0) -> np.ndarray:
        """(k, k) covariance of one level's random effects: σ² T Tᵀ."""
        T = self.template(theta)
        return sigma2 * T @ T.T

    # ---- the term's block of Z ------------------------------------------------------
    def z_columns(self) -> np.ndarray:
        """(n, k) global-within-term column index of each model entry."""
        return self.codes[:, None] * self.k + np.arange(self.k)[None, :]

    def z_matrix(self) -> sp.csc_matrix:
        """(n, q) sparse block of Z, level-major columns."""
        n, k = self.model.shape
        rows = np.repeat(np.arange(n), k)
        return sp.csc_matrix(
            (self.model.ravel(), (rows, self.z_columns().ravel())), shape=(n, self.q)
        )

    def z_times(self, b: np.ndarray) -> np.ndarray:
        """(n,) Z_term @ b for b of shape (q,) without forming Z."""
        B = np.asarray(b).reshape(self.nlevels, self.k)
        return np.einsum("nk,nk->n", self.model, B[self.codes])


def sandwich(Ta: np.ndarray, blocks: np.ndarray, Tb: np.ndarray) -> np.ndarray:
    """Taᵀ · B · Tb for a stack of blocks B of shape (m, ka, kb)."""
    m, ka, kb = blocks.shape
    if ka == 1 and kb == 1:
        return blocks * (Ta[0, 0] * Tb[0, 0])
    right = (blocks.reshape(m * ka, kb) @ Tb).reshape(m, ka, kb)  # B·Tb as one GEMM
    left = right.transpose(0, 2, 1).reshape(m * kb, ka) @ Ta  # (Taᵀ·B·Tb)ᵀ blockwise
    return left.reshape(m, kb, ka).transpose(0, 2, 1)
