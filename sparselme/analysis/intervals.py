"""Standard errors and intervals of predictions, exact given θ (lme4 has none).

A prediction ŷ = xβ̂ + z b̂ estimates η = xβ + zb (the random effects that ``re_form``
keeps). Given θ, the error (β̂ − β, b̂ − b) has covariance σ² times the inverse of the
joint system of (u, β) (Henderson's prediction error variance), so

    Var(ŷ − η) = σ² aᵀM⁻¹a,   a = (Λᵀz, x)

exactly, evaluated from the penalized least-squares factor (`.joint`) without forming
any n×n or q×q matrix. A level the fit has not seen (``allow_new_levels``) has no
conditional mode: its effect is estimated by 0, and its prior variance σ²‖Tᵀz‖² adds to
the error. ``se_fit`` is the square root of that variance.

Intervals use normal quantiles (θ and σ held at their estimates):

* ``"confidence"``: for η, ŷ ± z·se_fit;
* ``"prediction"``: for a new observation y = η + (terms left out by ``re_form``) + ε:
  the variance adds σ²/w (w = 1 for new rows) and, for each term ``re_form`` leaves
  out, the variance of a new level's effect σ²‖Tᵀz‖² (the population-level prediction
  interval for a new group). A term that ``re_form`` keeps only partly has no such
  interval (NotImplementedError).

``random_only`` predicts zb̂ alone (lme4's ``random.only = TRUE``): its error variance
has x = 0.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from ..data.coding import fixed_rows, term_rows
from ..model.results import ModelFit
from . import predict as predictions
from .joint import joint_quadratic_forms, require_iid_residuals, require_rows

__all__ = ["predict", "INTERVALS"]

INTERVALS = ("confidence", "prediction")


def _check_flag(value, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, not {value!r}")
    return bool(value)


def predict(
    res: ModelFit,
    newdata: pd.DataFrame | None = None,
    re_form=None,
    allow_new_levels: bool = False,
    offset=None,
    random_only: bool = False,
    se_fit: bool = False,
    interval: str | None = None,
    level: float = 0.95,
) -> pd.Series | pd.DataFrame:
    """Predictions (`sparselme.analysis.predict.predict`) with ``random_only``, standard
    errors and intervals (see the module docstring).

    Returns the predictions as a Series, or with ``se_fit`` or ``interval`` a DataFrame
    with columns ``fit``, ``se_fit`` (if asked) and ``lwr``, ``upr`` (with ``interval``).
    """
    random_only = _check_flag(random_only, "random_only")
    se_fit = _check_flag(se_fit, "se_fit")
    if interval is not None and interval not in INTERVALS:
        raise ValueError(f"interval must be None, 'confidence' or 'prediction', not {interval!r}")
    if not (isinstance(level, (int, float)) and 0 < level < 1):
        raise ValueError(f"level must be between 0 and 1, not {level!r}")
    if not random_only and not se_fit and interval is None:
        return predictions.predict(res, newdata, re_form, allow_new_levels, offset)
    if random_only and offset is not None:
        raise TypeError("offset applies to the fixed part: random_only predictions take none")
    masks = predictions.select_columns(res, re_form)
    rows = _Rows(res, newdata, masks, allow_new_levels, need_all=interval == "prediction")
    if random_only:
        fit = pd.Series(rows.random_part(res), index=rows.index, name="predicted")
    else:
        fit = predictions.predict(res, newdata, re_form, allow_new_levels, offset)
    if not se_fit and interval is None:
        return fit
    require_iid_residuals(res, "predict(se_fit=True) and intervals")
    var = rows.error_variance(res, random_only)
    out = pd.DataFrame({"fit": fit.to_numpy()}, index=rows.index)
    if se_fit:
        out["se_fit"] = np.sqrt(var)
    if interval is not None:
        if interval == "prediction":
            var = var + rows.new_observation_variance(res)
        z = stats.norm.ppf(0.5 + level / 2)
        half = z * np.sqrt(var)
        out["lwr"], out["upr"] = fit.to_numpy() - half, fit.to_numpy() + half
    return out


class _Rows:
    """The rows predicted: fixed rows, and per term the level index and model rows."""

    def __init__(self, res: ModelFit, newdata, masks, allow_new_levels: bool, need_all: bool):
        design = res.design
        self.masks = masks
        if newdata is None:
            require_rows(res, "predict() of the fitted rows with these options")
            self.index = design.row_index
            self.X, self.missing = design.X, np.zeros(design.nobs, dtype=bool)
            self.levels = [r.codes for r in design.rows]
            self.Z = [r.model for r in design.rows]
            self.weights = design.weights
            return
        newdata = predictions._as_frame(newdata)
        self.index = newdata.index
        self.X, self.missing = fixed_rows(design, newdata)
        self.weights = None
        self.levels, self.Z = [], []
        m = len(newdata)
        for term, mask in zip(res.terms, masks):
            if mask.any():
                idx = predictions._group_index(term, newdata)
                predictions._check_new_levels(term, newdata, idx, allow_new_levels)
            else:
                idx = np.full(m, -1)
            need = mask.any() or (need_all and not mask.any())
            self.levels.append(idx)
            self.Z.append(term_rows(design, term, newdata) if need else np.zeros((m, term.k)))

    def random_part(self, res: ModelFit) -> np.ndarray:
        """(m,) Σ over terms of the kept columns of z·b̂ (0 for unseen levels)."""
        out = np.zeros(len(self.index))
        for B, mask, idx, Z in zip(res.b_blocks(), self.masks, self.levels, self.Z):
            if not mask.any():
                continue
            known = idx >= 0
            out[known] += np.einsum("mk,mk->m", Z[known][:, mask], B[idx[known]][:, mask])
        return out

    def error_variance(self, res: ModelFit, random_only: bool) -> np.ndarray:
        """(m,) Var(ŷ − η) given θ: σ² aᵀM⁻¹a plus the prior variance of unseen levels."""
        T = res.engine.pls.templates(res.theta)
        zrows = [Z * mask for Z, mask in zip(self.Z, self.masks)]
        levels = [np.where(mask.any(), lv, -1) for lv, mask in zip(self.levels, self.masks)]
        X = np.zeros_like(self.X) if random_only else np.nan_to_num(self.X)
        var = res.scale * joint_quadratic_forms(res, levels, zrows, X)
        for Ts, zr, lv, mask in zip(T, zrows, self.levels, self.masks):
            new = lv < 0
            if mask.any() and new.any():
                var[new] += res.scale * np.sum((zr[new] @ Ts) ** 2, axis=1)
        return np.where(self.missing, np.nan, var)

    def new_observation_variance(self, res: ModelFit) -> np.ndarray:
        """(m,) σ²/w plus a new level's variance for each term ``re_form`` leaves out."""
        w = np.ones(len(self.index)) if self.weights is None else self.weights
        var = res.scale / w
        T = res.engine.pls.templates(res.theta)
        for term, Ts, Z, mask in zip(res.terms, T, self.Z, self.masks):
            if mask.all():
                continue
            if mask.any():
                raise NotImplementedError(
                    f"re_form keeps part of the term ({term.lhs} | {term.name}): a prediction "
                    "interval needs each term kept whole or left out (interval='confidence' "
                    "works)"
                )
            var = var + res.scale * np.sum((Z @ Ts) ** 2, axis=1)
        return var
