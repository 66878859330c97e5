"""Residuals, leverages and coefficients of a fit, as lme4's methods compute them.

* `residuals`: ``residuals(m, type, scaled)``: response (= working) residuals y − μ,
  Pearson (= deviance) residuals √w (y − μ), divided by σ when ``scaled``.
* `hatvalues`: the diagonal of the hat matrix of the fitted values, random effects
  included (`.joint.leverages`, from the factor; never an n×n matrix).
* `cooks_distance`: lme4's one-step formula (r/(1 − h))² h / (σ² p), r the Pearson
  residuals and p the rank of X; `rstudent`: r / (σ √(1 − h)).
* `df_resid`: lme4's ``df.residual``, nobs − the number of parameters.
* `coef`: lme4's ``coef(m)``: per grouping factor, the fixed effects plus each level's
  random effects; `fixef_with_dropped`: ``fixef(m, add.dropped = TRUE)``.

Every result is a pandas object on the fit's rows (``design.row_index``: the rows kept
after any dropped for missing values) or on the grouping factor's levels.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..data.design import r_style_name
from ..model.results import ModelFit
from .joint import leverages, require_iid_residuals, require_rows

__all__ = [
    "RESIDUAL_TYPES",
    "residuals",
    "hatvalues",
    "cooks_distance",
    "rstudent",
    "df_resid",
    "coef",
    "fixef_with_dropped",
    "FixedEffects",
]

RESIDUAL_TYPES = ("response", "working", "pearson", "deviance")


def _series(res: ModelFit, values: np.ndarray, name: str) -> pd.Series:
    return pd.Series(np.asarray(values, dtype=float), index=res.design.row_index, name=name)


def residuals(res: ModelFit, type: str = "response", scaled: bool = False) -> pd.Series:  # noqa: A002
    """(n,) residuals of the fitted rows (lme4's ``residuals(m, type, scaled)``).

    ``type``: "response" or "working" (y − μ, μ the fitted values with random effects
    and offset), "pearson" or "deviance" (√w (y − μ) with prior weights w; the same
    as "response" without weights). ``scaled``: divided by σ.
    """
    if type not in RESIDUAL_TYPES:
        raise ValueError(f"type must be one of {', '.join(RESIDUAL_TYPES)}, not {type!r}")
    if not isinstance(scaled, (bool, np.bool_)):
        raise TypeError(f"scaled must be True or False, not {scaled!r}")
    if type in ("pearson", "deviance"):
        require_iid_residuals(res, f"residuals(type={type!r})")
    r = np.asarray(res.resid, dtype=float)
    w = res.design.weights
    if type in ("pearson", "deviance") and w is not None:
        r = r * np.sqrt(w)
    if scaled:
        r = r / res.sigma
    return _series(res, r, "resid")


def hatvalues(res: ModelFit) -> pd.Series:
    """(n,) leverages: the diagonal of the hat matrix of the fitted values (lme4's)."""
    require_iid_residuals(res, "hatvalues()")
    cache = res.cache
    if "hatvalues" not in cache:
        cache["hatvalues"] = leverages(res)
    return _series(res, cache["hatvalues"], "hat")


def cooks_distance(res: ModelFit) -> pd.Series:
    """(n,) lme4's ``cooks.distance(m)``: (r/(1 − h))² h / (σ² p), NaN where h = 1.

    r are the Pearson residuals, h the leverages and p the number of fixed effects
    (the rank of X: columns dropped as redundant do not count). For the exact effect of
    deleting each row, refit without it: `sparselme.analysis.influence.influence`.
    """
    require_rows(res, "cooks_distance()")
    h = hatvalues(res).to_numpy()
    r = residuals(res, "pearson").to_numpy()
    p = max(res.k_fe, 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        d = (r / (1 - h)) ** 2 * h / (res.scale * p)
    return _series(res, np.where(np.isfinite(d), d, np.nan), "cooks_distance")


def rstudent(res: ModelFit) -> pd.Series:
    """(n,) lme4's ``rstudent(m)``: r / (σ √(1 − h)) (r Pearson residuals, h leverages)."""
    require_rows(res, "rstudent()")
    h = hatvalues(res).to_numpy()
    r = residuals(res, "pearson").to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.sign(r) * np.sqrt(r * r + h * r * r / (1 - h)) / res.sigma
    return _series(res, np.where(np.isfinite(t), t, np.nan), "rstudent")


def df_resid(res: ModelFit) -> int:
    """lme4's ``df.residual(m)``: nobs − npar (β, θ, σ and any further parameters)."""
    return int(res.nobs - res.npar)


def coef(res: ModelFit) -> dict[str, pd.DataFrame]:
    """lme4's ``coef(m)``: per grouping factor, fixed effects plus random effects by level.

    Each DataFrame has one row per level and one column per fixed effect (R's names, in
    the fit's order); a column that has a random effect on that factor holds the fixed
    effect plus the level's conditional mode. Random-effect columns without a fixed
    effect come first, holding the random effect alone (lme4 fills them with 0).
    """
    names = [r_style_name(n) for n in res.design.fixed_names]
    beta = pd.Series(res.solution.beta, index=names)
    ranef = res.ranef(condvar=False)
    extra = [c for df in ranef.values() for c in df.columns if c not in beta.index]
    extra = list(dict.fromkeys(extra))
    base = pd.concat([pd.Series(0.0, index=extra), beta])
    out = {}
    for name, re in ranef.items():
        frame = pd.DataFrame(
            np.tile(base.to_numpy(), (len(re), 1)), index=re.index, columns=base.index
        )
        for col in re.columns:
            frame[col] = frame[col] + re[col].to_numpy()
        out[name] = frame
    return out


def fixef_with_dropped(res: ModelFit, name_style: str | None = None) -> pd.Series:
    """lme4's ``fixef(m, add.dropped = TRUE)``: NaN for columns dropped as redundant.

    The columns come in the order of the full fixed-effects model matrix, so a dropped
    column sits where lme4 puts it.
    """
    d = res.design
    style = name_style or res.name_style
    dropped = set(d.dropped_columns)
    spec = d.fixed_spec
    full = list(spec.column_names) if spec is not None else list(d.fixed_names)
    if not dropped.issubset(full):  # the spec does not list the dropped columns
        full = list(d.fixed_names) + [c for c in d.dropped_columns if c not in d.fixed_names]
    beta = dict(zip(d.fixed_names, res.solution.beta))
    values = [beta.get(c, np.nan) if c not in dropped else np.nan for c in full]
    index = [r_style_name(c) for c in full] if style == "r" else full
    return pd.Series(values, index=index, name="fe_params", dtype=float)


class FixedEffects(pd.Series):
    """The fixed-effects estimates, also callable as lme4's ``fixef``.

    ``fit.fixef`` is a pandas Series of β̂; ``fit.fixef()`` returns the same values and
    ``fit.fixef(add_dropped=True)`` adds the columns dropped as redundant, as NaN, in
    the order of the full fixed-effects model matrix (lme4's
    ``fixef(m, add.dropped = TRUE)``). Arithmetic on it gives plain Series.
    """

    _metadata = ["with_dropped"]

    @property
    def _constructor(self):
        return pd.Series

    @classmethod
    def of(cls, res: ModelFit) -> FixedEffects:
        out = cls(res.fe_params)
        out.with_dropped = fixef_with_dropped(res)
        return out

    def __call__(self, add_dropped: bool = False) -> pd.Series:
        """The estimates (a plain Series); ``add_dropped``: with NaN for dropped columns."""
        if not isinstance(add_dropped, (bool, np.bool_)):
            raise TypeError(f"add_dropped must be True or False, not {add_dropped!r}")
        return (self.with_dropped if add_dropped else pd.Series(self)).copy()
