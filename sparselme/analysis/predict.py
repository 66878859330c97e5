"""Predictions with random effects and simulation from a fitted model (lme4's semantics).

* `predict`: conditional predictions Xβ + Zb (+ offset) for the fitted rows or for
  new data coded like the training data (`.coding`); ``re_form`` picks the random
  effects to include; levels that were not in the data contribute 0 with
  ``allow_new_levels=True``.
* `simulate`: responses drawn from the fitted model: new random effects and
  residuals, except for the random effects that ``re_form`` conditions on (or all of
  them with ``use_u=True``), which stay at their conditional modes.

``re_form`` works as lme4's ``re.form``: None means every random effect, ``"~0"`` (or
NaN, ``"NA"``) none, and a formula of bar terms such as ``"~(1 | Subject)"`` the columns
that each bar's left-hand side has (by lme4's column names) among the random effects of
its grouping factor. On ``(Days | Subject)``, ``"~(1 | Subject)"`` keeps the random
intercepts and ``"~(0 + Days | Subject)"`` the random slopes.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..data.coding import check_columns, column_names, fixed_rows, formula_offset, term_rows
from ..data.formula import parse_re_form
from ..data.frames import level_labels, to_pandas
from ..errors import DataError, FormulaError
from ..model.results import ModelFit

if TYPE_CHECKING:
    from ..engine.terms import RandomEffectsTerm

__all__ = ["predict", "simulate", "simulate_responses", "select_columns", "select_terms"]


# ======================================================================================
# Which random effects
# ======================================================================================


def _is_population(re_form) -> bool:
    if re_form is None:
        return False
    if isinstance(re_form, float) and math.isnan(re_form):
        return True
    if re_form is False:
        return True
    text = str(re_form).replace(" ", "")
    return text in ("~0", "0", "NA", "~-1", "-1", "~1", "1", "")


def select_columns(res: ModelFit, re_form) -> list[np.ndarray]:
    """Per term of the model, a (k,) bool mask of the random effects ``re_form`` keeps.

    Each bar ``(lhs | g)`` of ``re_form`` keeps the columns of ``lhs`` (R's names, in
    this fit's coding) among the random effects of ``g``; a column that ``g`` does not
    have raises a `sparselme.errors.FormulaError`.
    """
    terms = res.terms
    if re_form is None:
        return [np.ones(t.k, dtype=bool) for t in terms]
    masks = [np.zeros(t.k, dtype=bool) for t in terms]
    if _is_population(re_form):
        return masks
    text = str(re_form).strip()
    bars = parse_re_form(text)
    if not bars:
        raise FormulaError("re_form has no random-effects terms; use '~0' for none", text)
    for bar in bars:
        on = [i for i, t in enumerate(terms) if t.name == bar.group_name]
        label = f"({bar.lhs} | {bar.group_name})"
        if not on:
            have = ", ".join(f"({t.lhs} | {t.name})" for t in terms)
            raise FormulaError(
                f"re_form term {label} is not a term of the model: {bar.group_name!r} is not "
                f"one of its grouping factors (terms: {have})",
                text,
            )
        same = [i for i in on if terms[i].lhs.replace(" ", "") == bar.lhs.replace(" ", "")]
        wanted = terms[same[0]].columns if same else column_names(res.design, bar.lhs)
        found = {(i, j) for i in on for j, c in enumerate(terms[i].columns) if c in wanted}
        unknown = [c for c in wanted if not any(terms[i].columns[j] == c for i, j in found)]
        if unknown:
            have = ", ".join(c for i in on for c in terms[i].columns)
            raise FormulaError(
                f"re_form term {label} is not a term of the model: it has the column(s) "
                f"{', '.join(unknown)}, but the random effects of {bar.group_name!r} are "
                f"{have}",
                text,
            )
        for i, j in found:
            masks[i][j] = True
    return masks


def select_terms(res: ModelFit, re_form) -> list[int]:
    """Indices of the terms of which ``re_form`` keeps at least one random effect."""
    return [i for i, m in enumerate(select_columns(res, re_form)) if m.any()]


# ======================================================================================
# Prediction
# ======================================================================================


def _as_frame(newdata) -> pd.DataFrame:
    if isinstance(newdata, dict):
        newdata = pd.DataFrame(newdata)
    frame = to_pandas(newdata, "newdata")  # polars, pyarrow ... as pandas
    if frame is None:
        raise TypeError("newdata must be a DataFrame (pandas, polars ...) or a dict of columns")
    return frame


def _group_index(term: RandomEffectsTerm, newdata: pd.DataFrame) -> np.ndarray:
    """(m,) level index of each new row in the term's levels; −1 for unseen or missing."""
    check_columns(newdata, set(term.group_vars))
    parts = []
    missing = np.zeros(len(newdata), dtype=bool)
    for var in term.group_vars:
        col = newdata[var]
        missing |= col.isna().to_numpy()
        parts.append(level_labels(col))  # as the fit labelled its levels
    keys = parts[0]
    for part in parts[1:]:
        keys = keys + ":" + part
    idx = pd.Index(term.levels.astype(str)).get_indexer(keys)
    idx[missing] = -1
    return idx


def _check_new_levels(term: RandomEffectsTerm, newdata, idx, allow_new_levels: bool) -> None:
    new = idx < 0
    if new.any() and not allow_new_levels:
        keys = newdata.loc[new, list(term.group_vars)].astype(str).agg(":".join, axis=1)
        shown = ", ".join(repr(k) for k in pd.unique(keys)[:5])
        raise DataError(
            f"new level(s) {shown} of grouping factor {term.name!r}; "
            "pass allow_new_levels=True to predict them at the population level"
        )


def _offset(res: ModelFit, newdata: pd.DataFrame, offset) -> np.ndarray | float:
    """The offset of new rows: the formula's offset() terms plus the ``offset`` given."""
    design = res.design
    in_formula = formula_offset(design, newdata)
    if design.offset is not None and getattr(design, "offset_argument", True) and offset is None:
        raise ValueError("the model has an offset: pass offset= (array or column) for newdata")
    if offset is None:
        return in_formula
    given = newdata[offset].to_numpy(float) if isinstance(offset, str) else np.asarray(offset)
    return in_formula + given


def predict(
    res: ModelFit,
    newdata: pd.DataFrame | None = None,
    re_form=None,
    allow_new_levels: bool = False,
    offset: np.ndarray | str | None = None,
) -> pd.Series:
    """Predictions Xβ + Zb (+ offset), as lme4's ``predict(m, newdata, re.form, ...)``.

    ``re_form``: None (all random effects), ``"~0"`` (none: population level) or a formula
    of bar terms naming some of the random effects (see the module docstring). New levels
    of a grouping factor raise a `sparselme.errors.DataError` unless
    ``allow_new_levels`` (they then get the population prediction of that term). Models
    with an offset need ``offset`` (an array or a column of newdata) for new data.
    Returns a Series indexed like the rows.
    """
    masks = select_columns(res, re_form)
    design = res.design
    blocks = res.b_blocks()
    if newdata is None:
        eta = res.solution.fixed_fit(design.X)
        for rows, mask, B in zip(design.rows, masks, blocks):
            if mask.any():
                eta = eta + np.einsum("nk,nk->n", rows.model[:, mask], B[rows.codes][:, mask])
        if design.offset is not None:
            eta = eta + design.offset
        return pd.Series(eta, index=design.row_index, name="predicted")
    newdata = _as_frame(newdata)
    X, missing = fixed_rows(design, newdata)
    eta = np.where(missing, np.nan, res.solution.fixed_fit(X))
    for term, mask, B in zip(res.terms, masks, blocks):
        if not mask.any():
            continue
        idx = _group_index(term, newdata)
        _check_new_levels(term, newdata, idx, allow_new_levels)
        M = term_rows(design, term, newdata)[:, mask]
        Bx = np.vstack([B[:, mask], np.zeros((1, int(mask.sum())))])  # row −1: new, b = 0
        eta = eta + np.where(idx < 0, 0.0, np.einsum("mk,mk->m", M, Bx[idx]))
    eta = eta + _offset(res, newdata, offset)
    return pd.Series(eta, index=newdata.index, name="predicted")


# ======================================================================================
# Simulation
# ======================================================================================


def _drawn_effects(
    Sigma: np.ndarray, keep: np.ndarray, b_kept: np.ndarray, u: np.ndarray
) -> np.ndarray:
    """(L, k_free, nsim) draws of a term's free random effects given the kept ones.

    Per level, b_free ~ N(Σ_fk Σ_kk⁺ b_kept, Σ_ff − Σ_fk Σ_kk⁺ Σ_kf) with Σ (k, k) the
    covariance of one level's effects, b_kept (L, k_kept) and u (L, k_free, nsim)
    standard normal.
    """
    free = ~keep
    S_ff = Sigma[np.ix_(free, free)]
    S_fk = Sigma[np.ix_(free, keep)]
    G = S_fk @ np.linalg.pinv(Sigma[np.ix_(keep, keep)], hermitian=True) if keep.any() else None
    cond = S_ff if G is None else S_ff - G @ S_fk.T
    vals, vecs = np.linalg.eigh((cond + cond.T) / 2)
    F = vecs * np.sqrt(np.clip(vals, 0.0, None))  # F Fᵀ = conditional covariance
    draws = np.einsum("ij,ljs->lis", F, u)
    if G is not None:
        draws += (b_kept @ G.T)[:, :, None]
    return draws


def _random_part(
    res: ModelFit,
    rng: np.random.Generator,
    nsim: int,
    keep: list[np.ndarray],
    rows: list[tuple[np.ndarray, np.ndarray, int]],
) -> np.ndarray:
    """(m, nsim) Σ over terms of the rows' random effects: kept ones at their conditional
    modes, the others drawn. ``rows``: per term, (model rows (m, k), level index (m,),
    number of levels L); indices ≥ the fitted levels are new levels (kept effects 0)."""
    T = res.engine.pls.templates(res.theta)
    sigma = res.sigma
    out = np.zeros((len(rows[0][1]) if rows else 0, nsim))
    for term, Ts, B, mask, (M, idx, L) in zip(res.terms, T, res.b_blocks(), keep, rows):
        b_hat = np.zeros((L, term.k))
        b_hat[: term.nlevels] = B
        if mask.all():
            out += np.einsum("nk,nk->n", M, b_hat[idx])[:, None]
            continue
        if not mask.any():  # all drawn: b = σ T u, u drawn first (as lme4)
            u = rng.standard_normal((L, term.k, nsim))
            b = sigma * np.einsum("ij,ljs->lis", Ts, u)
        else:
            u = rng.standard_normal((L, int((~mask).sum()), nsim))
            b = np.repeat(b_hat[:, :, None], nsim, axis=2)
            Sigma = sigma**2 * Ts @ Ts.T
            b[:, ~mask] = _drawn_effects(Sigma, mask, b_hat[:, mask], u)
        out += np.einsum("nk,nks->ns", M, b[idx])
    return out


def simulate_responses(
    res: ModelFit,
    rng: np.random.Generator,
    nsim: int = 1,
    use_u: bool = False,
    keep: list[np.ndarray] | None = None,
) -> np.ndarray:
    """(n, nsim) responses drawn from the fitted model, for its rows.

    y* = Xβ + offset + Zb* + σε*/√w with ε* standard normal; b* = σΛu* with u* standard
    normal (drawn first, as lme4 does), except for the random effects in ``keep`` (per
    term a (k,) bool mask; all of them with ``use_u``), which stay at their conditional
    modes (the others of the same term are drawn given them).
    """
    design = res.design
    n = design.nobs
    eta = res.solution.fixed_fit(design.X)
    if design.offset is not None:
        eta = eta + design.offset
    if use_u or keep is None:
        keep = [np.full(t.k, bool(use_u)) for t in res.terms]
    rows = [(r.model, r.codes, r.nlevels) for r in design.rows]
    out = eta[:, None] + _random_part(res, rng, nsim, keep, rows)
    eps = rng.standard_normal((n, nsim))
    if design.weights is not None:
        eps /= np.sqrt(design.weights)[:, None]
    return out + res.sigma * eps


def _new_rows(res: ModelFit, newdata: pd.DataFrame, allow_new_levels: bool) -> list:
    """Per term, (model rows, level index, L) of newdata; new levels numbered after the
    fitted ones (a row with a missing grouping value is a new level of its own)."""
    rows = []
    m = len(newdata)
    for term in res.terms:
        idx = _group_index(term, newdata)
        _check_new_levels(term, newdata, idx, allow_new_levels)
        groups = newdata[list(term.group_vars)]
        keys = groups.astype(str).agg(":".join, axis=1).to_numpy(dtype=object)
        alone = np.array([f"\0{i}" for i in range(m)], dtype=object)
        keys = np.where(groups.isna().any(axis=1).to_numpy(), alone, keys)
        new = idx < 0
        codes, uniques = pd.factorize(keys[new])
        idx[new] = term.nlevels + codes
        rows.append((term_rows(res.design, term, newdata), idx, term.nlevels + len(uniques)))
    return rows


def simulate(
    res: ModelFit,
    nsim: int = 1,
    seed=None,
    use_u: bool = False,
    re_form="~0",
    newdata: pd.DataFrame | None = None,
    allow_new_levels: bool = False,
    offset: np.ndarray | str | None = None,
) -> pd.DataFrame:
    """``nsim`` simulated responses as columns sim_1, sim_2, ... (lme4's ``simulate``).

    ``seed``: an int, a `numpy.random.Generator` or None. ``re_form``: the random
    effects to condition on, as in lme4: ``"~0"`` (the default, lme4's NA) draws them
    all anew, None keeps them all at their conditional modes (same as ``use_u=True``),
    and a formula of bar terms keeps the random effects it names (see
    `select_columns`) and draws the others given them. ``newdata``: simulate for
    other rows, coded like the training data; new levels of a grouping factor
    (``allow_new_levels``) have no conditional modes, so their kept effects are 0.
    Unlike lme4, prior weights scale the residual variance of the draws (σ²/w; rows of
    ``newdata`` have weight 1).
    """
    if nsim < 1:
        raise ValueError("nsim must be at least 1")
    if use_u and re_form is not None and not _is_population(re_form):
        raise ValueError("use_u=True conditions on every random effect: leave re_form unset")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    keep = select_columns(res, None if use_u else re_form)
    columns = [f"sim_{i + 1}" for i in range(nsim)]
    if newdata is None:
        Y = simulate_responses(res, rng, int(nsim), keep=keep)
        return pd.DataFrame(Y, index=res.design.row_index, columns=columns)
    newdata = _as_frame(newdata)
    X, missing = fixed_rows(res.design, newdata)
    eta = np.where(missing, np.nan, res.solution.fixed_fit(X)) + _offset(res, newdata, offset)
    rows = _new_rows(res, newdata, allow_new_levels)
    Y = eta[:, None] + _random_part(res, rng, int(nsim), keep, rows)
    Y += res.sigma * rng.standard_normal((len(newdata), int(nsim)))
    return pd.DataFrame(Y, index=newdata.index, columns=columns)
