"""``MixedLMResults.profile_re``: statsmodels' profile likelihood of one variance parameter."""

from __future__ import annotations

import dataclasses
import math
import warnings
from typing import TYPE_CHECKING

import numpy as np

from ..engine.rows import TermRows
from ..errors import NeedsRowsError, SingularFitWarning, StructureError
from ..model.mixed_model import MixedModel
from .fit import fit_engine, fit_options
from .params import MixedLMParams, chol_or_diag

if TYPE_CHECKING:
    from .results import MixedLMCompatResults

__all__ = ["profile_re"]


def profile_re(
    res: MixedLMCompatResults,
    re_ix: int | str,
    vtype: str,
    num_low: int,
    dist_low: float,
    num_high: int,
    dist_high: float,
    fit_kwargs: dict,
) -> np.ndarray:
    """(num_low + 1 + num_high, 2): values of the parameter (user scale), maximized llf.

    See `MixedLMCompatResults.profile_re`.
    """
    opts = fit_options(fit_kwargs, "profile_re", lme4_spellings=False)[0]
    if res.design.rows is None:
        raise NeedsRowsError("profile_re", "use profile() (lme4's profile) instead")
    if vtype not in ("re", "vc"):
        raise ValueError("vtype must be 're' or 'vc'")
    if vtype == "re":
        terms, rows, free, cov_u = _re_first(res, int(re_ix))
        current, s_prof = cov_u[0, 0], 0
    else:
        terms, rows = list(res.terms), list(res.design.rows)
        free, cov_u = _free_copy(res), None
        j = [v.name for v in res.model.layout.vc].index(re_ix)
        current, s_prof = res._vcomp_unscaled[j], (1 if res.k_re else 0) + j
    values = _profile_grid(current, res.scale, num_low, dist_low, num_high, dist_high)
    engine = MixedModel(res.design.with_terms(terms, rows))
    o = engine.pls.theta_offsets
    fixed = res.model._fixed_theta(engine, free)
    fixed[o[s_prof]] = True
    dof = res.nobs - (res.k_fe if res.reml else 0)
    out = []
    for x in values:
        th0 = res.theta.copy()
        if cov_u is not None:
            cov_u[0, 0] = x
            th0[o[0] : o[1]] = terms[0].theta_from_template(chol_or_diag(cov_u))
        else:
            th0[o[s_prof]] = math.sqrt(x)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SingularFitWarning)
            fit = fit_engine(engine, res.reml, th0, fixed, True, opts)
        out.append([x * fit.solution.pwrss / dof, -0.5 * fit.optsum.fmin])
    return np.asarray(out)


def _free_copy(res: MixedLMCompatResults) -> MixedLMParams | None:
    return res.freepat.copy() if res.freepat is not None else None


def _re_first(
    res: MixedLMCompatResults, i: int
) -> tuple[list, list, MixedLMParams | None, np.ndarray]:
    """(terms, rows, free, Ψ/σ² (k, k)) with exog_re's column i swapped with the first."""
    ix = np.arange(res.k_re)
    ix[0], ix[i] = i, 0
    cov_u = res._cov_re_frame.to_numpy()[np.ix_(ix, ix)]
    terms, rows = list(res.terms), list(res.design.rows)
    t, r = terms[0], rows[0]
    if i != 0 and t.covariance.ordered:  # the profile reorders the columns
        raise StructureError(
            f"profile_re of column {i} of {t.label()}: the profile puts the column first, "
            "and the order of the columns is part of this structure; profile column 0, or "
            "use the results' profile() on the structure's parameters"
        )
    terms[0] = dataclasses.replace(t, columns=tuple(t.columns[j] for j in ix))
    rows[0] = TermRows(r.codes, r.model[:, ix], r.nlevels)
    free = _free_copy(res)
    if free is not None:
        free.cov_re = np.asarray(free.cov_re)[np.ix_(ix, ix)]
    return terms, rows, free, cov_u


def _profile_grid(current, scale, num_low, dist_low, num_high, dist_high) -> np.ndarray:
    """(num_low + 1 + num_high,) values around ``current``; ``dist_*`` on the user scale."""
    low = current - dist_low / scale
    high = current + dist_high / scale
    if low <= 0:
        raise ValueError(
            "dist_low is too large and would result in a negative variance. Try a smaller value."
        )
    return np.concatenate(
        [np.linspace(low, current, num_low + 1), np.linspace(current, high, num_high + 1)[1:]]
    )
