"""statsmodels' parameter state (``MixedLMParams``) and its packed form; ``VCSpec``."""

from __future__ import annotations

import numpy as np

from ..engine.covariance import Unstructured
from ..engine.terms import RandomEffectsTerm
from ..errors import NonlinearStructureError


class MixedLMParams:
    """A parameter state: fixed effects, random-effects covariance, variance components.

    As in statsmodels, ``cov_re`` and ``vcomp`` are on the profile scale (divided by the
    residual variance). ``k_re2 = k_re(k_re+1)/2`` covariance entries are packed as the
    lower triangle of ``cov_re`` row by row (or of its Cholesky factor with ``use_sqrt``).
    """

    def __init__(self, k_fe: int, k_re: int, k_vc: int):
        self.k_fe = k_fe
        self.k_re = k_re
        self.k_re2 = k_re * (k_re + 1) // 2
        self.k_vc = k_vc
        self.k_tot = k_fe + self.k_re2 + k_vc
        self._ix = np.tril_indices(k_re)
        self.fe_params = np.zeros(k_fe)
        self.cov_re = np.eye(k_re)
        self.vcomp = np.ones(k_vc)

    @staticmethod
    def from_packed(
        params: np.ndarray, k_fe: int, k_re: int, use_sqrt: bool, has_fe: bool
    ) -> MixedLMParams:
        """Unpack ``[fe_params,] tril(cov_re or its Cholesky factor), vcomp (or sqrt)``."""
        params = np.asarray(params, dtype=float)
        k_re2 = k_re * (k_re + 1) // 2
        k_vc = len(params) - k_re2 - (k_fe if has_fe else 0)
        out = MixedLMParams(k_fe, k_re, k_vc)
        at = 0
        if has_fe:
            out.fe_params = params[:k_fe].copy()
            at = k_fe
        tri = np.zeros((k_re, k_re))
        tri[out._ix] = params[at : at + k_re2]
        if use_sqrt:
            out.cov_re = tri @ tri.T
        else:
            out.cov_re = tri + tri.T - np.diag(np.diag(tri))
        vc = params[at + k_re2 :]
        out.vcomp = vc**2 if use_sqrt else vc.copy()
        return out

    @staticmethod
    def from_components(
        fe_params: np.ndarray | None = None,
        cov_re: np.ndarray | None = None,
        cov_re_sqrt: np.ndarray | None = None,
        vcomp: np.ndarray | None = None,
    ) -> MixedLMParams:
        """Build from components; ``cov_re_sqrt`` is a lower-triangular factor of cov_re."""
        fe = np.zeros(0) if fe_params is None else np.asarray(fe_params, dtype=float)
        vc = np.zeros(0) if vcomp is None else np.asarray(vcomp, dtype=float)
        if cov_re is None and cov_re_sqrt is None:
            cov = np.zeros((0, 0))
        elif cov_re_sqrt is not None:
            f = np.asarray(cov_re_sqrt, dtype=float)
            cov = f @ f.T
        else:
            cov = np.asarray(cov_re, dtype=float)
        out = MixedLMParams(len(fe), cov.shape[0], len(vc))
        out.fe_params, out.cov_re, out.vcomp = fe, cov, vc
        return out

    def copy(self) -> MixedLMParams:
        out = MixedLMParams(self.k_fe, self.k_re, self.k_vc)
        out.fe_params = np.array(self.fe_params, dtype=float)
        out.cov_re = np.array(self.cov_re, dtype=float)
        out.vcomp = np.array(self.vcomp, dtype=float)
        return out

    def get_packed(self, use_sqrt: bool, has_fe: bool = False) -> np.ndarray:
        """Pack into one vector (the inverse of `from_packed`)."""
        if self.k_re:
            cov = np.asarray(self.cov_re, dtype=float)
            cpa = (chol_or_diag(cov) if use_sqrt else cov)[self._ix]
        else:
            cpa = np.zeros(0)
        vc = np.asarray(self.vcomp, dtype=float)
        vc = np.sqrt(vc) if use_sqrt else vc
        parts = [np.asarray(self.fe_params, dtype=float)] if has_fe else []
        return np.concatenate([*parts, cpa, vc])

    def __repr__(self) -> str:
        return f"<MixedLMParams k_fe={self.k_fe} k_re={self.k_re} k_vc={self.k_vc}>"


class VCSpec:
    """Variance-component structure for the array API.

    ``mats[k][i]`` is the design (n_i, c) of component ``names[k]`` in group i (groups in
    sorted order) and ``colnames[k][i]`` its column names.
    """

    def __init__(self, names: list[str], colnames: list[list[list[str]]], mats: list[list]):
        self.names = list(names)
        self.colnames = colnames
        self.mats = mats


def chol_or_diag(cov: np.ndarray) -> np.ndarray:
    """Lower Cholesky factor (k, k) of cov (statsmodels' fallback: sqrt of the diagonal)."""
    if cov.size == 0:
        return cov
    try:
        return np.linalg.cholesky(cov)
    except np.linalg.LinAlgError:
        return np.diag(np.sqrt(np.maximum(np.diag(cov), 0.0)))


def is_independent(free: MixedLMParams | None, start: MixedLMParams | None, k_re: int) -> bool:
    """Does ``free`` hold every off-diagonal Cholesky entry at 0 (diagonal free)?"""
    if free is None or k_re < 2:
        return False
    mask = np.asarray(free.cov_re)
    off = np.tril(np.ones((k_re, k_re), dtype=bool), -1)
    if np.any(mask[off] != 0) or np.any(np.diag(mask) == 0):
        return False
    if start is not None:
        L = chol_or_diag(np.asarray(start.cov_re, dtype=float))
        if np.any(L[off] != 0):
            return False
    return True


def check_free_pattern(term: RandomEffectsTerm) -> None:
    """``free`` marks entries of an unstructured ``cov_re``'s Cholesky factor; with a
    covariance structure (``cov_struct``) there are no such entries."""
    if term.covariance != Unstructured(term.k):
        raise NonlinearStructureError(
            f"free= holds entries of the Cholesky factor of an unstructured cov_re at their "
            f"starting values; the random effects {term.label()} have a covariance structure "
            "of their own parameters: fit without free, or without cov_struct"
        )

