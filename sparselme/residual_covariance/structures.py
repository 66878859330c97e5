"""The user-facing structures (VarIdent, AR1) and their precision on the model's rows.

A bound structure writes W(ρ) = Σⱼ cⱼ(ρ) Wⱼ: ``pieces`` (the Wⱼ as row pairs),
``coefficients(ρ)`` (J,), ``logdet_precision(ρ)`` = log|W(ρ)| and the optimizer's scale
(``to_free``/``from_free``).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..data.design import Design
from ..engine.arrays import distinct
from ..errors import DataError

__all__ = ["VarIdent", "AR1", "ResidualSpec", "BoundStructure", "ResidualStructureError"]

# More distinct time gaps than this (3 stored cross-products each) get a warning.
MANY_GAPS = 20
# |φ| is kept below this (φ = tanh η saturates; the AR(1) precision needs 1 − φ² > 0).
_PHI_MAX = 1.0 - 1e-10


class ResidualStructureError(DataError):
    """A residual variance structure cannot be used with these data or this model."""


# ======================================================================================
# The user-facing specifications
# ======================================================================================


@dataclass(frozen=True)
class VarIdent:
    """Heteroscedastic residuals by stratum: var(εᵢ) = σ² δ²_{s(i)} (nlme's varIdent).

    ``stratum`` names a column; δ of its first level (category order, else sorted) is
    fixed at 1, so σ is the residual standard deviation of that level.
    """

    stratum: str

    @property
    def columns(self) -> tuple[str, ...]:
        return (self.stratum,)

    def bind(self, frame: pd.DataFrame, design: Design) -> BoundVarIdent:
        """The structure on the design's rows (``frame`` holds the column, one row each)."""
        codes, levels = _factor(frame[self.stratum])
        if len(levels) < 2:
            raise ResidualStructureError(
                f"VarIdent({self.stratum!r}): the stratum has a single level "
                f"({levels[0]!r}); there is no variance ratio to estimate"
            )
        return BoundVarIdent(self, codes, levels)

    def __str__(self) -> str:
        return f"VarIdent({self.stratum!r})"


@dataclass(frozen=True)
class AR1:
    """AR(1) residuals within groups: corr(εᵢ, εⱼ) = φ^|tᵢ − tⱼ| (nlme's corAR1).

    ``time`` names an integer-valued column (unique within a group; gaps are allowed and
    exact), ``group`` the grouping column; each group must lie within one level of every
    random-effects grouping factor, e.g. ``AR1(time="Time", group="Pig")`` with
    ``(Time | Pig)``.
    """

    time: str
    group: str

    @property
    def columns(self) -> tuple[str, ...]:
        return (self.time, self.group)

    def bind(self, frame: pd.DataFrame, design: Design) -> BoundAR1:
        """The structure on the design's rows (``frame`` holds the columns, one row each).

        Checks that each group lies within one level of every grouping factor of the
        design, then that the times are integers, unique within a group.
        """
        group, glevels = _factor(frame[self.group])
        _check_within_levels(self, group, glevels, design)
        t = _integer_times(frame[self.time], self.time)
        order = np.lexsort((t, group))
        g, ts = group[order], t[order]
        same = g[1:] == g[:-1]
        gap = ts[1:] - ts[:-1]
        dup = same & (gap == 0)
        if dup.any():
            k = int(np.flatnonzero(dup)[0])
            raise ResidualStructureError(
                f"AR1: {self.time!r} must have unique values within each {self.group!r}; "
                f"group {glevels[g[k]]!r} has time {ts[k]} more than once"
            )
        return BoundAR1(self, group, glevels, order, same, gap)

    def __str__(self) -> str:
        return f"AR1(time={self.time!r}, group={self.group!r})"


ResidualSpec = VarIdent | AR1


def _factor(col: pd.Series) -> tuple[np.ndarray, list[str]]:
    """(codes (n,), level labels): category order for categoricals, sorted otherwise."""
    if isinstance(col.dtype, pd.CategoricalDtype):
        col = col.cat.remove_unused_categories()
        return col.cat.codes.to_numpy().astype(np.intp), [str(c) for c in col.cat.categories]
    codes, levels = pd.factorize(col, sort=True)
    return codes.astype(np.intp), [str(v) for v in levels]


def _check_within_levels(spec: AR1, group: np.ndarray, glevels: list[str], design: Design):
    """Each AR group must lie within one level of every grouping factor (lag products
    then keep each term's level-block-diagonal pattern)."""
    for t, rows in zip(design.terms, design.rows):
        pairs = distinct(group.astype(np.int64) * t.nlevels + rows.codes)
        if len(pairs) > len(glevels):
            spans = np.bincount(pairs // t.nlevels, minlength=len(glevels))
            g = int(np.flatnonzero(spans > 1)[0])
            raise ResidualStructureError(
                f"AR1 group {spec.group!r} must lie within one level of every "
                f"random-effects grouping factor: group {glevels[g]!r} spans "
                f"{spans[g]} levels of {t.name!r} (use a group nested in {t.name!r}, "
                f"e.g. AR1(time={spec.time!r}, group={t.name!r}))"
            )


def _integer_times(col: pd.Series, name: str) -> np.ndarray:
    try:
        t = col.to_numpy(dtype=float)
    except (TypeError, ValueError):
        raise ResidualStructureError(
            f"AR1: the time column {name!r} must be numeric (integer-valued), got {col.dtype}"
        ) from None
    if np.any(t != np.round(t)):
        bad = t[t != np.round(t)][0]
        raise ResidualStructureError(
            f"AR1: the time column {name!r} must be integer-valued (equally spaced steps of 1;"
            f" rescale it), got {bad}"
        )
    return t.astype(np.int64)


# ======================================================================================
# Bound structures: the precision as Σ c_j(ρ) W_j on the model's rows
# ======================================================================================


@dataclass
class Piece:
    """One W_j: Σ_k weight_k (e_{a_k} e_{b_k}ᵀ [+ e_{b_k} e_{a_k}ᵀ when ``b`` is given])."""

    a: np.ndarray  # (m,) rows
    b: np.ndarray | None = None  # (m,) partner rows of a symmetric off-diagonal piece


class BoundVarIdent:
    """VarIdent on the model's rows: one piece per stratum, c_h = δ_h⁻², η = log δ."""

    kind = "delta"

    def __init__(self, spec: VarIdent, codes: np.ndarray, levels: list[str]):
        self.spec, self.codes, self.levels = spec, codes, levels
        self.counts = np.bincount(codes, minlength=len(levels))
        self.pieces = [Piece(np.flatnonzero(codes == h)) for h in range(len(levels))]
        self.names = levels[1:]
        self.initial = np.ones(len(levels) - 1)

    def to_free(self, rho: np.ndarray) -> np.ndarray:
        return np.log(rho)

    def from_free(self, eta: np.ndarray) -> np.ndarray:
        return np.exp(eta)

    def valid(self, rho: np.ndarray) -> bool:
        return bool(np.all(np.isfinite(rho)) and np.all(rho > 0))

    def coefficients(self, rho: np.ndarray) -> np.ndarray:
        """(J,) c_h = 1/δ_h² with δ_0 = 1."""
        return 1.0 / np.r_[1.0, rho] ** 2

    def logdet_precision(self, rho: np.ndarray) -> float:
        """log|W(ρ)| = −Σ_h n_h log δ_h²."""
        return -float(self.counts[1:] @ np.log(rho**2))

    def describe(self) -> str:
        return (
            f"VarIdent by {self.spec.stratum}: residual SD ratios to level "
            f"{self.levels[0]!r} (sigma is its SD)"
        )


class BoundAR1:
    """AR1 on the model's rows: pieces [starts] + per gap d [later, earlier, lag pairs]."""

    kind = "phi"
    names = ["Phi"]

    def __init__(
        self,
        spec: AR1,
        group: np.ndarray,
        glevels: list[str],
        order: np.ndarray,
        same: np.ndarray,
        gap: np.ndarray,
    ):
        self.spec, self.group, self.glevels = spec, group, glevels
        starts = order[np.r_[True, ~same]]
        earlier, later, d = order[:-1][same], order[1:][same], gap[same]
        self.gaps, self.gap_counts = np.unique(d, return_counts=True)
        if len(self.gaps) > MANY_GAPS:
            warnings.warn(
                f"AR1: {len(self.gaps)} distinct gaps between consecutive times of "
                f"{spec.time!r}; each adds three stored cross-products, so memory and the time "
                "per evaluation grow with them",
                UserWarning,
                stacklevel=5,
            )
        self.pieces = [Piece(starts)]
        for g in self.gaps:
            sel = d == g
            self.pieces += [Piece(later[sel]), Piece(earlier[sel]), Piece(earlier[sel], later[sel])]
        self.initial = np.zeros(1)

    def to_free(self, rho: np.ndarray) -> np.ndarray:
        return np.arctanh(np.clip(rho, -_PHI_MAX, _PHI_MAX))

    def from_free(self, eta: np.ndarray) -> np.ndarray:
        return np.clip(np.tanh(eta), -_PHI_MAX, _PHI_MAX)

    def valid(self, rho: np.ndarray) -> bool:
        return bool(np.all(np.isfinite(rho)) and abs(rho[0]) < 1)

    def coefficients(self, rho: np.ndarray) -> np.ndarray:
        """(J,) 1 for the starts, per gap d (1, r², −r)/(1 − r²) with r = φ^d."""
        r = float(rho[0]) ** self.gaps.astype(float)
        den = 1.0 - r * r
        per_gap = np.column_stack([1.0 / den, r * r / den, -r / den])
        return np.r_[1.0, per_gap.ravel()]

    def logdet_precision(self, rho: np.ndarray) -> float:
        """log|W(φ)| = −Σ_d n_d log(1 − φ^{2d})."""
        r = float(rho[0]) ** self.gaps.astype(float)
        return -float(self.gap_counts @ np.log1p(-r * r))

    def describe(self) -> str:
        gaps = "" if list(self.gaps) == [1] else f"; time gaps {', '.join(map(str, self.gaps))}"
        return f"AR(1) within {self.spec.group}, ordered by {self.spec.time}: corr = Phi^|dt|{gaps}"


BoundStructure = BoundVarIdent | BoundAR1
