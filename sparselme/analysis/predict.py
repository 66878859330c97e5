"""Predictions with random effects and simulation from a fitted model (lme4's semantics).

* :func:`predict`: conditional predictions Xβ + Zb (+ offset) for the fitted rows or for
  new data coded like the training data (the kept formulaic spec, the factors' levels);
  ``re_form`` picks the random-effects terms to include (``"~0"``: population level);
  levels that were not in the data contribute 0 with ``allow_new_levels=True``.
* :func:`simulate`: responses drawn from the fitted model, new random effects and
  residuals (or residuals only around the conditional modes with ``use_u=True``).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from formulaic import Formula, model_matrix
from formulaic.transforms.contrasts import C, PolyContrasts

from ..data.design import prepare_frame, r_style_name
from ..data.formula import parse_formula
from ..errors import DataError, UnknownColumnError
from ..model.results import ModelFit
from .contrasts import categorical_levels

if TYPE_CHECKING:
    from ..engine.terms import RandomEffectsTerm
    from ..model.results import ModelFit

__all__ = ["predict", "simulate", "simulate_responses", "select_terms"]


# ======================================================================================
# Which random-effects terms
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


def select_terms(res: ModelFit, re_form) -> list[int]:
    """Indices of the model's terms that ``re_form`` includes (lme4's ``re.form``).

    None: all terms; ``"~0"`` (or NaN, ``"NA"``): none; a formula of bar terms such as
    ``"~(1 | plate)"``: those terms, which must be terms of the model.
    """
    terms = res.terms
    if re_form is None:
        return list(range(len(terms)))
    if _is_population(re_form):
        return []
    text = str(re_form).strip()
    bars = parse_formula(text if "~" in text else "~" + text).bars
    if not bars:
        raise ValueError(f"re_form {re_form!r} has no random-effects terms; use '~0' for none")
    chosen: list[int] = []
    for bar in bars:
        same = [i for i, t in enumerate(terms) if t.name == bar.group_name]
        lhs = bar.lhs.replace(" ", "")
        exact = [i for i in same if terms[i].lhs.replace(" ", "") == lhs]
        pick = exact or (same if len(same) == 1 else [])
        if not pick:
            have = ", ".join(f"({t.lhs} | {t.name})" for t in terms)
            raise ValueError(
                f"re_form term ({bar.lhs} | {bar.group_name}) is not a term of the model: {have}"
            )
        chosen.extend(i for i in pick if i not in chosen)
    return sorted(chosen)


# ======================================================================================
# New data, coded like the training data
# ======================================================================================


def _spec_levels(spec) -> tuple[dict[str, list], set[str]]:
    """Categorical variables of the fixed part: their levels and which are poly-coded."""
    return categorical_levels(spec)


def _variables(text: str) -> set[str]:
    try:
        return {str(v) for v in Formula(text).required_variables}
    except Exception:  # let formulaic report it when the matrix is built
        return set()


def _coerce(newdata: pd.DataFrame, levels: dict[str, list], poly: set[str]) -> pd.DataFrame:
    """Categorical columns with the training levels (unseen levels raise)."""
    out = newdata.copy()
    for name, lev in levels.items():
        if name not in out.columns:
            continue
        vals = out[name].astype(object)
        if all(isinstance(v, str) for v in lev):
            vals = vals.where(vals.isna(), vals.astype(str))
        unseen = vals.notna().to_numpy() & ~vals.isin(lev).to_numpy()
        if unseen.any():
            new = ", ".join(repr(v) for v in pd.unique(vals[unseen])[:5])
            raise DataError(f"factor {name!r} has new level(s) {new} not in the fitted data")
        out[name] = pd.Categorical(vals, categories=lev, ordered=name in poly)
    return out


def _frame(
    newdata: pd.DataFrame, names: set[str], spec, keep_levels: bool = False
) -> tuple[pd.DataFrame, dict]:
    """Data and formulaic context for ``names`` of newdata, coded as in training."""
    levels, poly = _spec_levels(spec) if spec is not None else ({}, set())
    data = _coerce(newdata[sorted(names & set(newdata.columns))], levels, poly)
    if not keep_levels:
        return prepare_frame(data, names)
    context = {n: C(data[n], PolyContrasts()) for n in poly if n in data.columns}
    return data.drop(columns=list(context)), context


def _fixed_part(res: ModelFit, newdata: pd.DataFrame) -> np.ndarray:
    """(m,) Xβ for new data (NaN where a fixed-effect variable is missing)."""
    design = res.design
    spec = design.fixed_spec
    if spec is None:
        raise ValueError("this model was not built from a formula: pass exog to predict instead")
    by_source = spec.variables_by_source
    names = {str(v) for key, src in by_source.items() if key != "transforms" for v in src}
    names |= {str(v) for v in spec.required_variables}
    names -= set(design.formula_env)
    _check_columns(newdata, names)
    frame, context = _frame(newdata, names, spec)
    context.update(design.formula_env)
    mm = spec.get_model_matrix(frame, context=context, na_action="ignore")
    X = mm[design.fixed_names].to_numpy(dtype=float)
    fixed = X @ res.solution.beta
    missing = newdata[sorted(names)].isna().any(axis=1).to_numpy() if names else False
    return np.where(missing, np.nan, fixed)


def _check_columns(newdata: pd.DataFrame, names: set[str]) -> None:
    for name in sorted(names):
        if name not in newdata.columns:
            raise UnknownColumnError(name, newdata.columns, where="newdata")


def _group_index(term: RandomEffectsTerm, newdata: pd.DataFrame) -> np.ndarray:
    """(m,) level index of each new row in the term's levels; −1 for unseen or missing."""
    parts = []
    missing = np.zeros(len(newdata), dtype=bool)
    for var in term.group_vars:
        col = newdata[var]
        missing |= col.isna().to_numpy()
        parts.append(col.astype(object).map(str).to_numpy().astype(object))
    keys = parts[0]
    for part in parts[1:]:
        keys = keys + ":" + part
    idx = pd.Index(term.levels.astype(str)).get_indexer(keys)
    idx[missing] = -1
    return idx


def _term_rows(term: RandomEffectsTerm, newdata: pd.DataFrame, spec) -> np.ndarray:
    """(m, k) the term's model rows for new data, columns matched by name."""
    if term.lhs.replace(" ", "") == "1" and term.columns == ("(Intercept)",):
        return np.ones((len(newdata), 1))
    names = _variables("~" + term.lhs)
    _check_columns(newdata, names)
    frame, context = _frame(newdata, names, spec, keep_levels=True)
    mm = model_matrix(term.lhs, frame, context=context, na_action="ignore")
    got = {r_style_name(str(c)): i for i, c in enumerate(mm.columns)}
    missing = [c for c in term.columns if c not in got]
    if missing:
        raise ValueError(
            f"cannot code the columns {missing} of ({term.lhs} | {term.name}) on newdata "
            "(a factor in a random-effects term should also appear in the fixed part)"
        )
    return np.asarray(mm, dtype=float)[:, [got[c] for c in term.columns]]


def predict(
    res: ModelFit,
    newdata: pd.DataFrame | None = None,
    re_form=None,
    allow_new_levels: bool = False,
    offset: np.ndarray | str | None = None,
) -> pd.Series:
    """Predictions Xβ + Zb (+ offset), as lme4's ``predict(m, newdata, re.form, ...)``.

    ``re_form``: None (all random effects), ``"~0"`` (none: population level) or a formula
    of some of the model's bar terms. New levels of a grouping factor raise a
    :class:`~sparselme.errors.DataError` unless ``allow_new_levels`` (they then get the
    population prediction of that term). Models with an offset need ``offset`` (an array
    or a column of newdata) for new data. Returns a Series indexed like the rows.
    """
    chosen = select_terms(res, re_form)
    design = res.design
    beta = res.solution.beta
    blocks = res.b_blocks()
    if newdata is None:
        eta = design.X @ beta
        for i in chosen:
            eta = eta + design.rows[i].z_times(blocks[i])
        if design.offset is not None:
            eta = eta + design.offset
        index = design.row_index if design.row_index is not None else None
        return pd.Series(eta, index=index, name="predicted")
    if isinstance(newdata, dict):
        newdata = pd.DataFrame(newdata)
    if not isinstance(newdata, pd.DataFrame):
        raise TypeError("newdata must be a pandas DataFrame (or a dict of columns)")
    eta = _fixed_part(res, newdata)
    spec = design.fixed_spec
    for i in chosen:
        term = res.terms[i]
        _check_columns(newdata, set(term.group_vars))
        idx = _group_index(term, newdata)
        new = idx < 0
        if new.any() and not allow_new_levels:
            keys = newdata.loc[new, list(term.group_vars)].astype(str).agg(":".join, axis=1)
            shown = ", ".join(repr(k) for k in pd.unique(keys)[:5])
            raise DataError(
                f"new level(s) {shown} of grouping factor {term.name!r}; "
                "pass allow_new_levels=True to predict them at the population level"
            )
        M = _term_rows(term, newdata, spec)
        B = np.vstack([blocks[i], np.zeros((1, term.k))])  # row −1: a new level, b = 0
        contrib = np.einsum("mk,mk->m", M, B[idx])
        eta = eta + np.where(new, 0.0, contrib)
    if design.offset is not None:
        if offset is None:
            raise ValueError("the model has an offset: pass offset= (array or column) for newdata")
    if offset is not None:
        off = newdata[offset].to_numpy(float) if isinstance(offset, str) else np.asarray(offset)
        eta = eta + off
    return pd.Series(eta, index=newdata.index, name="predicted")


# ======================================================================================
# Simulation
# ======================================================================================


def simulate_responses(
    res: ModelFit, rng: np.random.Generator, nsim: int = 1, use_u: bool = False
) -> np.ndarray:
    """(n, nsim) responses drawn from the fitted model.

    y* = Xβ + offset + σ(ZΛu* + ε*/√w) with u*, ε* standard normal (u* drawn first, as
    lme4 does); with ``use_u`` the random effects stay at their conditional modes:
    y* = Xβ + Zb + offset + σε*/√w.
    """
    design = res.design
    n = design.nobs
    eta = design.X @ res.solution.beta
    if design.offset is not None:
        eta = eta + design.offset
    sigma = res.sigma
    out = np.repeat(eta[:, None], nsim, axis=1)
    T = res.engine.pls.templates(res.theta)
    blocks = res.b_blocks()
    for rows, Ts, B in zip(design.rows, T, blocks):
        if use_u:
            out += rows.z_times(B)[:, None]
        else:
            u = rng.standard_normal((rows.nlevels, rows.k, nsim))
            b = np.einsum("ij,ljs->lis", Ts, u)  # (L, k, nsim)
            out += sigma * np.einsum("nk,nks->ns", rows.model, b[rows.codes])
    eps = rng.standard_normal((n, nsim))
    if design.weights is not None:
        eps /= np.sqrt(design.weights)[:, None]
    return out + sigma * eps


def simulate(res: ModelFit, nsim: int = 1, seed=None, use_u: bool = False) -> pd.DataFrame:
    """``nsim`` simulated responses as columns sim_1, sim_2, ... (lme4's ``simulate``).

    ``seed``: an int, a :class:`numpy.random.Generator` or None. Unlike lme4, prior
    weights scale the residual variance of the draws (σ²/w).
    """
    if nsim < 1:
        raise ValueError("nsim must be at least 1")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    Y = simulate_responses(res, rng, int(nsim), use_u)
    index = res.design.row_index
    return pd.DataFrame(Y, index=index, columns=[f"sim_{i + 1}" for i in range(nsim)])
