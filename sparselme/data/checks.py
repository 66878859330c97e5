"""The checks of a model's data, made on chunk-additive summaries.

In-memory data are one chunk; streamed data (Parquet, pyarrow, Dask) add the summaries of
their chunks first. Either way the same functions look at the same numbers, so the two
paths raise the same errors and warnings:

* `WeightCounts`, `check_weights`: negative or all-zero weights raise, zero weights are
  dropped (`DroppedRowsWarning`), a range beyond double precision raises;
* `check_fixed`: magnitudes of y and X, redundant fixed-effects columns (dropped with a
  `RankDeficiencyWarning`, judged on the centred and scaled columns the engine fits) and
  an exact fit, from the `ColumnMoments` of [X, y − offset];
* `check_random_terms`: identifiability (levels against observations), non-finite, dependent
  or nearly constant random-effects columns, magnitudes, terms that cannot be told apart
  and the scale warning, from the terms' `ColumnMoments` (and their rows or cross-products).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..engine.crossprod import CrossProducts
from ..engine.rows import TermRows
from ..engine.start import SCALE_RATIO
from ..engine.terms import RandomEffectsTerm
from ..errors import (
    DataError,
    IdentifiabilityError,
    IdentifiabilityWarning,
    MissingDataError,
    RankDeficiencyWarning,
    ScaleWarning,
)
from .coder import r_style_name
from .missing import warn_dropped
from .moments import ColumnMoments
from .overlap import check_distinct_terms, mimics_residual
from .rank import redundant_and_residual_in_r, redundant_in_r

__all__ = [
    "MAX_MAGNITUDE",
    "MAX_WEIGHT_RATIO",
    "WeightCounts",
    "check_weights",
    "report_nonfinite",
    "check_magnitude",
    "check_fixed",
    "term_moments",
    "check_random_terms",
    "warn_dropped_columns",
]

# |values| beyond this overflow when squared and summed; below its inverse they underflow.
MAX_MAGNITUDE = 1e150
# Positive weights spanning more than this ratio lose the small ones to rounding.
MAX_WEIGHT_RATIO = 1e12
# Centred spread below this fraction of a column's size is rounding (as FixedScaling).
_ROUNDING = 1e-12


# ---- weights ----------------------------------------------------------------------------------
@dataclass
class WeightCounts:
    """Chunk-additive counts of prior weights (finite ones): negative, zero, positive, and
    the first negative value seen, the smallest and largest positive weight."""

    negative: int = 0
    zero: int = 0
    positive: int = 0
    first_negative: float = float("nan")
    low: float = float("inf")
    high: float = 0.0

    @classmethod
    def of(cls, w: np.ndarray | None) -> WeightCounts | None:
        if w is None:
            return None
        w = np.asarray(w, dtype=float)
        w = w[np.isfinite(w)]
        neg = w < 0
        pos = w[w > 0]
        return cls(
            negative=int(neg.sum()),
            zero=int((w == 0).sum()),
            positive=len(pos),
            first_negative=float(w[neg][0]) if neg.any() else float("nan"),
            low=float(pos.min()) if len(pos) else float("inf"),
            high=float(pos.max()) if len(pos) else 0.0,
        )

    def __add__(self, other: WeightCounts) -> WeightCounts:
        return WeightCounts(
            self.negative + other.negative,
            self.zero + other.zero,
            self.positive + other.positive,
            self.first_negative if self.negative else other.first_negative,
            min(self.low, other.low),
            max(self.high, other.high),
        )

    @classmethod
    def sum(cls, parts: Sequence[WeightCounts]) -> WeightCounts:
        out = parts[0]
        for p in parts[1:]:
            out = out + p
        return out


def check_weights(wc: WeightCounts | None, nrows: int, stacklevel: int = 3) -> None:
    """Negative or all-zero weights raise; zero weights are dropped with a warning (a weight
    of 0 is infinite residual variance: leaving the row out is the exact limit, as R's lm
    does); positive weights spanning more than double precision resolves raise."""
    if wc is None:
        return
    total = wc.negative + wc.zero + wc.positive
    if wc.negative:
        raise DataError(
            f"weights must be non-negative: {wc.negative} of {total} are negative "
            f"(e.g. {wc.first_negative:g})"
        )
    if total and not wc.positive:
        raise DataError("weights sum to zero: every observation has weight 0")
    if wc.positive:
        lo, hi = wc.low, wc.high
        if hi > MAX_MAGNITUDE or lo < 1 / MAX_MAGNITUDE or hi / lo > MAX_WEIGHT_RATIO:
            raise DataError(
                f"weights range from {lo:.3g} to {hi:.3g}; beyond a ratio of "
                f"{MAX_WEIGHT_RATIO:.0e} the lightest observations are lost to rounding: "
                "rescale the weights or drop the lightest rows"
            )
    if wc.zero:
        warn_dropped(wc.zero, nrows, "with weight 0", stacklevel=stacklevel + 1)


def report_nonfinite(
    counts: dict[str, int], nbad: int, total: int, missing: str, stacklevel: int = 4
) -> None:
    """Rows where evaluating the formula (log of negatives...) gave NaN or inf: dropped with
    a warning (``missing="drop"``), else `MissingDataError`."""
    if not nbad:
        return
    where = ", ".join(f"{name} ({c})" for name, c in counts.items())
    if missing != "drop":
        raise MissingDataError(
            f"{nbad} of {total} rows have non-finite values after evaluating the "
            f"formula, in: {where}. Pass missing='drop' to drop these rows."
        )
    warn_dropped(nbad, total, f"with non-finite values after evaluating: {where}", stacklevel)


# ---- the fixed effects ------------------------------------------------------------------------
def check_magnitude(maxabs: np.ndarray, names: Sequence[str], role: str) -> None:
    """Columns whose values would overflow or underflow when squared raise (max |x| given)."""
    top = np.asarray(maxabs, dtype=float)
    for j in np.flatnonzero((top > MAX_MAGNITUDE) | ((top > 0) & (top < 1 / MAX_MAGNITUDE))):
        raise DataError(
            f"{role} {names[j]!r} has values of magnitude {top[j]:.3g}, too "
            f"{'large' if top[j] > 1 else 'small'} for double precision sums of squares; "
            "rescale it"
        )


def _engine_scaling(mom: ColumnMoments, p: int) -> tuple[np.ndarray, np.ndarray]:
    """(shift, scale) (p,) of X's columns as ``FixedScaling.of(X, zero_rounding=True)``:
    centred on the first constant non-zero column, scaled to unit root mean square."""
    const = np.flatnonzero(mom.constant[:p] & (mom.lo[:p] != 0))
    c = int(const[0]) if len(const) else None
    size, std, mean = mom.maxabs[:p], mom.std[:p], mom.mean[:p]
    shift = np.zeros(p)
    if c is not None:
        shift[c + 1 :] = mean[c + 1 :]
    rms = np.sqrt(std**2 + (mean - shift) ** 2)
    scale = np.where(rms > _ROUNDING * size, rms, np.where(size > 0, 0.0, 1.0))
    if c is not None:
        scale[c] = abs(float(mom.lo[c]))
    return shift, scale


def check_fixed(
    mom: ColumnMoments,
    names: Sequence[str],
    response: str,
    role: str = "the fixed-effects column",
    r_names: bool = True,
) -> tuple[list[int], float]:
    """(redundant columns of X, ‖y − Xβ̂‖) from the `ColumnMoments` of [X, y − offset].

    Raises for badly scaled columns and for a response fitted exactly; the redundant
    columns are judged on the centred and scaled columns the engine fits (``Days + 1e9``
    is no constant) and are to be dropped (see `warn_dropped_columns`).
    """
    p = mom.m - 1
    shown = [r_style_name(n) for n in names] if r_names else list(names)
    check_magnitude(mom.maxabs[p:], [response], "the response")
    check_magnitude(mom.maxabs[:p], shown, role)
    shift, scale = _engine_scaling(mom, p)
    shift, scale = np.append(shift, 0.0), np.append(scale, 1.0)
    R = mom.r_factor(shift, scale)
    dropped, residual = redundant_and_residual_in_r(R)
    if dropped:
        keep = [j for j in range(p) if j not in set(dropped)] + [p]
        _, residual = redundant_and_residual_in_r(_r_columns(R, keep))
    y_norm = math.sqrt(mom.n * (mom.std[p] ** 2 + mom.mean[p] ** 2)) if mom.n else 0.0
    if residual is None or residual <= 1e-10 * y_norm or y_norm == 0.0:
        constant = bool(mom.constant[p])
        what = "is constant" if constant else "is fitted exactly by the fixed effects"
        raise DataError(
            f"the response {response!r} {what}: no residual variation is left to estimate "
            f"variance components from ({mom.n} observations, {p - len(dropped)} fixed-effect "
            "columns)"
        )
    return dropped, residual


def _r_columns(R: np.ndarray, keep: Sequence[int]) -> np.ndarray:
    """The R factor of a subset of the columns, from the R of all of them."""
    sub = np.asfortranarray(R[:, list(keep)])
    if sub.shape[0] == 0:
        return sub
    return np.linalg.qr(sub, mode="r")


def warn_dropped_columns(names: list[str], stacklevel: int = 2) -> None:
    """lme4's warning for fixed-effect columns dropped as redundant (formulaic names)."""
    shown = ", ".join(r_style_name(n) for n in names)
    warnings.warn(
        f"fixed-effect model matrix is rank deficient so dropping {len(names)} "
        f"column{'s' if len(names) > 1 else ''}: {shown}",
        RankDeficiencyWarning,
        stacklevel=stacklevel + 1,
    )


# ---- random-effects terms -----------------------------------------------------------------------
def term_moments(rows: Sequence[TermRows]) -> list[ColumnMoments]:
    """The `ColumnMoments` of each term's model rows (in memory: one chunk)."""
    return [ColumnMoments.of(r.model) for r in rows]


def check_identifiable(
    terms: Sequence[RandomEffectsTerm], nobs: int, nobs_vs_nre: str = "stop", stacklevel: int = 3
) -> None:
    """lme4's checks: > 1 level, fewer levels than observations, fewer effects than obs.

    ``nobs_vs_nre``: "stop" raises when a term has as many random effects as observations
    or more, "warning" warns (lme4's ``check.nobs.vs.nRE``). That check applies to
    covariances that can trade variance with the residual (see
    `.overlap.mimics_residual`): an AR(1) term over a time factor with one observation
    per occasion has as many effects as observations and is identifiable.
    """
    for t in terms:
        if t.nlevels < 2:
            only = f" ({t.levels[0]!r})" if t.nlevels else ""
            raise IdentifiabilityError(
                f"grouping factor {t.name!r} of term {t.label()} has {t.nlevels} "
                f"level{only}; grouping factors must have > 1 sampled level"
            )
    crowded = [t for t in terms if t.nlevels >= nobs]
    if crowded:
        problems = ", ".join(f"{t.name!r} ({t.nlevels} levels)" for t in crowded)
        raise IdentifiabilityError(
            "number of levels of each grouping factor must be < number of observations "
            f"(= {nobs}); problems: {problems}"
        )
    for t in terms:
        if t.q >= nobs and mimics_residual(t):
            text = (
                f"number of observations (= {nobs}) <= number of random effects (= {t.q}: "
                f"{t.k} per level × {t.nlevels} levels) for term {t.label()}; the "
                "random-effects parameters and the residual variance are probably unidentifiable"
            )
            if nobs_vs_nre != "warning":
                raise IdentifiabilityError(text)
            warnings.warn(text, IdentifiabilityWarning, stacklevel=stacklevel + 1)


def _check_term_columns(term: RandomEffectsTerm, mom: ColumnMoments) -> None:
    """A term's columns must be finite and linearly independent (else their variances are not)."""
    bad = mom.nonfinite_rows
    if bad:
        raise MissingDataError(
            f"the random-effects term {term.label()} has non-finite values in "
            f"{bad} of {mom.n + bad} rows after evaluating {term.lhs!r}; transform the data "
            "first (or drop those rows)"
        )
    zero = mom.constant & (mom.lo == 0)
    if term.k < 2 and not zero.all():
        return
    dependent = redundant_in_r(mom.r_factor())
    if not dependent:
        return
    names = ", ".join(repr(term.columns[j]) for j in dependent)
    size, spread = mom.maxabs, mom.std
    nearly = [j for j in dependent if size[j] > 0 and 1e-12 * size[j] < spread[j] < 1e-6 * size[j]]
    ones = mom.constant & (mom.lo == 1)
    if nearly and ones.any():
        j = nearly[0]
        raise IdentifiabilityError(
            f"the random-effects column {term.columns[j]!r} of term {term.label()} "
            f"varies by only {spread[j] / size[j]:.2g} of its size "
            f"({mom.mean[j]:.6g} on average): in double precision it cannot be told from "
            "the intercept; centre it (subtract a typical value) before fitting"
        )
    raise IdentifiabilityError(
        f"the random-effects columns of term {term.label()} are linearly dependent "
        f"or zero ({names}): their variances cannot be told apart; remove them"
    )


def check_random_terms(
    terms: Sequence[RandomEffectsTerm],
    nobs: int,
    rows: Sequence[TermRows] | None = None,
    moments: Sequence[ColumnMoments] | None = None,
    cp: CrossProducts | None = None,
    stacklevel: int = 3,
    nobs_vs_nre: str = "stop",
) -> None:
    """All checks of the random-effects terms, for every API and every kind of input.

    From the terms' ``moments`` (computed from ``rows`` when not given) and, for terms that
    may not be told apart, their ``rows`` or cross-products ``cp``. ``nobs_vs_nre``: see
    `check_identifiable`.
    """
    check_identifiable(terms, nobs, nobs_vs_nre, stacklevel=stacklevel + 1)
    if moments is None:
        moments = term_moments(rows or [])
    for t, mom in zip(terms, moments):
        _check_term_columns(t, mom)
        check_magnitude(mom.maxabs, t.columns, f"the column of {t.label()}")
    check_distinct_terms(terms, rows, cp)
    warn_about_scales(terms, moments, stacklevel=stacklevel + 1)


def warn_about_scales(
    terms: Sequence[RandomEffectsTerm], moments: Sequence[ColumnMoments], stacklevel: int = 3
) -> None:
    """Warn about random-effects columns on extreme scales (their θ is far from 1).

    Columns holding only 0 and 1 are left alone, as lme4's scale check does.
    """
    seen = set()
    for t, mom in zip(terms, moments):
        sds, sizes = mom.std, mom.maxabs
        for j, col in enumerate(t.columns):
            if col in seen or mom.binary[j]:
                continue
            sd = float(sds[j])
            size = sd if sd > 0 else float(sizes[j])
            if size > SCALE_RATIO or 0 < size < 1 / SCALE_RATIO:
                seen.add(col)
                warnings.warn(
                    f"the random-effects column {col!r} of term {t.label()} has standard "
                    f"deviation {size:.3g}; its variance parameter is then far from 1 and may "
                    "be misjudged as zero or missed: consider rescaling it",
                    ScaleWarning,
                    stacklevel=stacklevel + 1,
                )
