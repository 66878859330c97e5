"""Random-effects terms: the structure of one block of columns of Z.

A term ``(expr | g)`` is k model columns varying over the L levels of a grouping factor.
Its structure — names, levels, k, the covariance parametrization θ → T(θ) — is all the
engine needs once the cross-products are formed; the n-length rows of the term (each
observation's level and model row) are a separate object, `.rows.TermRows`.

Z's columns for a term are level-major: level 0's k columns, then level 1's, and so on,
so Λ restricted to the term is ``I_L ⊗ T`` (block diagonal, T repeated per level).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from .covariance import CovarianceStructure
from .parametrizations import make_covariance

__all__ = ["RandomEffectsTerm", "sandwich"]


@dataclass(frozen=True, eq=False)
class RandomEffectsTerm:
    """One random-effects term: ``k`` model columns varying over ``nlevels`` levels.

    Attributes
    ----------
    name : label of the grouping factor, e.g. ``"Subject"`` or ``"cask:batch"``.
    columns : names of the k model columns, e.g. ``("(Intercept)", "Days")``.
    levels : the observed levels of the grouping factor, in order.
    covariance : the parametrization θ → T(θ) (a name such as ``"unstructured"``,
        ``"diagonal"`` or ``"scalar"`` is turned into one).
    group_vars : the data columns whose interaction is the grouping factor.
    lhs : the term's left-hand side as written (``"1 + Days"``).
    intercept_only : the term is ``(1 | g)``: one model column of ones.
    """

    name: str
    columns: tuple[str, ...]
    levels: pd.Index
    covariance: CovarianceStructure | str = "unstructured"
    group_vars: tuple[str, ...] = ()
    lhs: str = "1"
    intercept_only: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "columns", tuple(self.columns))
        object.__setattr__(self, "covariance", make_covariance(self.covariance, len(self.columns)))

    def with_covariance(self, covariance: CovarianceStructure | str) -> RandomEffectsTerm:
        """The same term with another parametrization."""
        return replace(self, covariance=make_covariance(covariance, self.k))

    # ---- sizes --------------------------------------------------------------------
    @property
    def k(self) -> int:
        """Number of model columns (random effects per level)."""
        return len(self.columns)

    @property
    def nlevels(self) -> int:
        return len(self.levels)

    @property
    def q(self) -> int:
        """Number of columns of Z this term contributes (k · nlevels)."""
        return self.k * self.nlevels

    # ---- the Λ template -----------------------------------------------------------
    @property
    def n_theta(self) -> int:
        return self.covariance.n_theta

    @property
    def lower_bounds(self) -> np.ndarray:
        """(n_theta,) lower bounds of θ."""
        return self.covariance.lower

    @property
    def upper_bounds(self) -> np.ndarray:
        """(n_theta,) upper bounds of θ."""
        return self.covariance.upper

    @property
    def initial_theta(self) -> np.ndarray:
        """(n_theta,) θ giving T = I."""
        return self.covariance.initial

    def template(self, theta: np.ndarray) -> np.ndarray:
        """(k, k) relative covariance factor T for this term's θ."""
        return self.covariance.template(theta)

    def theta_from_template(self, T: np.ndarray) -> np.ndarray:
        """Inverse of `template`."""
        return self.covariance.theta_from_template(T)

    def covariance_matrix(self, theta: np.ndarray, sigma2: float = 1.0) -> np.ndarray:
        """(k, k) covariance of one level's random effects: σ² T Tᵀ."""
        return self.covariance.covariance(theta, sigma2)

    def description(self) -> str:
        """The term as written; a variance component (one shared variance) by its name."""
        shared = self.covariance.kind == "scalar"
        return f"variance component {self.name!r}" if shared else self.label()

    def label(self) -> str:
        """``(x | g)``; terms built from arrays (no formula) show their column names."""
        lhs = self.lhs
        if lhs == "1" and self.columns != ("(Intercept)",):
            lhs = " + ".join("1" if c == "(Intercept)" else c for c in self.columns)
        return self.covariance.wrap(f"{lhs} | {self.name}")


def sandwich(Ta: np.ndarray, blocks: np.ndarray, Tb: np.ndarray) -> np.ndarray:
    """Taᵀ · B · Tb for a stack of blocks B of shape (m, ka, kb)."""
    m, ka, kb = blocks.shape
    if ka == 1 and kb == 1:
        return blocks * (Ta[0, 0] * Tb[0, 0])
    right = (blocks.reshape(m * ka, kb) @ Tb).reshape(m, ka, kb)  # B·Tb as one GEMM
    left = right.transpose(0, 2, 1).reshape(m * kb, ka) @ Ta  # (Taᵀ·B·Tb)ᵀ blockwise
    return left.reshape(m, kb, ka).transpose(0, 2, 1)
