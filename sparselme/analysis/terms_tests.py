"""Tests of single terms: ``drop1`` (fixed effects) and ``ranova`` (random effects).

* `drop1`: each marginal fixed-effect term (one no other term contains) is tested,
  by lmerTest's F test of its coefficients (Satterthwaite or Kenward-Roger denominator
  degrees of freedom, no refit), or by lme4's likelihood-ratio test: the model without
  the term is refitted by maximum likelihood, as is the full model when it was fitted by
  REML (lme4's ``extractAIC`` refits with ML too).
* `ranova`: lmerTest's likelihood-ratio table for the random-effects terms. Each term
  ``(lhs | g)`` whose left-hand side has terms is reduced by removing each of its
  marginal terms in turn (``(Days | g)`` becomes ``(1 | g)``; a left-hand side left
  with no term becomes ``1``), a term ``(1 | g)`` is removed; a reduced term that is
  already in the model is dropped, as R's formula simplification does. The reduced
  models keep the fit's criterion (REML likelihoods for REML fits); without random
  effects left, the linear model's (restricted) likelihood is used.

The reduced models are built from the fit's design — columns of X, or of a term's
model rows, left out — without re-reading the data.
"""

from __future__ import annotations

import math
import re
from dataclasses import replace

import numpy as np
import pandas as pd
import scipy.linalg as la
from scipy import stats

from ..data.design import Design, coded_term
from ..engine.rows import TermRows
from ..engine.terms import RandomEffectsTerm
from ..errors import FormulaError
from ..model.mixed_model import MixedModel
from ..model.results import ModelFit
from .contrasts import term_columns
from .inference import _check_ddf, contrast_test, refit_ml
from .joint import require_iid_residuals, require_rows

__all__ = ["drop1", "ranova", "r_term_label", "DROP1_TESTS"]

DROP1_TESTS = ("F", "Chisq", "none")
_LOG_2PI = math.log(2 * math.pi)


def r_term_label(label: str) -> str:
    """A term label in R's spelling: ``I(Days ** 2)`` → ``I(Days^2)``."""
    return re.sub(r"\s*\*\*\s*", "^", label)


def _marginal(labels: list[str], factors: dict[str, frozenset]) -> list[str]:
    """R's ``drop.scope``: the terms no other term contains."""
    return [t for t in labels if not any(factors[t] < factors[o] for o in labels if o != t)]


def _formula_text(res: ModelFit) -> str:
    parsed = res.design.parsed
    return parsed.text if parsed is not None else ""


# ======================================================================================
# drop1
# ======================================================================================


def drop1(res: ModelFit, test: str = "F", ddf: str = "Satterthwaite") -> pd.DataFrame:
    """Single-term deletions of the marginal fixed-effect terms (see the module).

    ``test``: "F" (lmerTest's ``drop1``: Sum Sq, Mean Sq, NumDF, DenDF, F value,
    Pr(>F); ``ddf`` "Satterthwaite" or "Kenward-Roger"), "Chisq" (lme4's
    ``drop1(m, test = "Chisq")``: npar, AIC, LRT, Pr(Chi), with a first row ``<none>``
    for the full model) or "none" (npar and AIC only).
    """
    if test not in DROP1_TESTS:
        raise ValueError(f"test must be one of {', '.join(DROP1_TESTS)}, not {test!r}")
    ddf = _check_ddf(ddf)
    design = res.design
    cols, _ = term_columns(design)
    factors = {str(t): frozenset(f.expr for f in t.factors) for t in design.fixed_spec.term_slices}
    scope = _marginal(list(cols), factors)
    heading = ["", "Model:", _formula_text(res)]
    if test == "F":
        if ddf == "normal":
            raise ValueError("drop1's F tests need ddf='Satterthwaite' or 'Kenward-Roger'")
        p = len(res.solution.beta)
        rows = {r_term_label(t): contrast_test(res, np.eye(p)[cols[t]], ddf) for t in scope}
        table = pd.DataFrame.from_dict(rows, orient="index")
        table.attrs["heading"] = [f"Single term deletions using {ddf}'s method:", *heading]
        return table
    require_rows(res, f"drop1(test={test!r})")
    require_iid_residuals(res, f"drop1(test={test!r})")
    full = refit_ml(res)
    fits = [full]
    for term in scope:
        keep = [j for j in range(design.X.shape[1]) if j not in set(cols[term])]
        reduced = replace(
            design,
            X=np.asfortranarray(design.X[:, keep]),
            fixed_names=[design.fixed_names[j] for j in keep],
            fixed_spec=None,
        )
        fits.append(MixedModel(reduced).optimize(REML=False, start=full.theta))
    npar = np.array([f.npar for f in fits], dtype=float)
    aic = np.array([f.AIC for f in fits])
    table = pd.DataFrame(
        {"npar": np.r_[np.nan, npar[0] - npar[1:]], "AIC": aic},
        index=["<none>", *(r_term_label(t) for t in scope)],
    )
    if test == "Chisq":
        dev = aic - 2 * npar
        lrt = np.r_[np.nan, dev[1:] - dev[0]]
        table["LRT"] = lrt
        with np.errstate(invalid="ignore"):
            table["Pr(Chi)"] = np.r_[np.nan, stats.chi2.sf(lrt[1:], npar[0] - npar[1:])]
    table.attrs["heading"] = ["Single term deletions", *heading]
    return table


# ======================================================================================
# ranova
# ======================================================================================


def _lhs_terms(res: ModelFit, term: RandomEffectsTerm) -> tuple[list[str], dict, dict, bool]:
    """(labels, factor sets, model-column indices per label, has intercept) of a term's lhs."""
    spec = res.design.term_specs.get(term.lhs)
    if spec is None:
        label = f"({term.lhs} | {term.name})"
        raise FormulaError(f"ranova(): the term {label} was not built from a formula", label)
    labels, factors, columns, intercept = [], {}, {}, False
    for t, sl in spec.term_slices.items():
        idx = list(range(sl.start, sl.stop))
        if str(t) == "1":
            intercept = bool(idx)
            continue
        labels.append(str(t))
        factors[str(t)] = frozenset(f.expr for f in t.factors)
        columns[str(t)] = idx
    return labels, factors, columns, intercept


def _reduced_terms(
    res: ModelFit, s: int
) -> list[tuple[str, RandomEffectsTerm | None, TermRows | None]]:
    """(row label, reduced term or None for removed, its rows) for term s."""
    term, rows = res.terms[s], res.design.rows[s]
    labels, factors, columns, intercept = _lhs_terms(res, term)
    form = f"{r_term_label(term.lhs)} | {term.name}"
    if not labels:
        return [(f"({form})", None, None)]
    out = []
    for scp in _marginal(labels, factors):
        if set(labels) == {scp}:  # the left-hand side becomes 1
            if intercept:
                keep = [j for j in range(term.k) if j not in set(columns[scp])]
                model, names = rows.model[:, keep], [term.columns[j] for j in keep]
            else:
                model, names = np.ones((rows.nobs, 1)), ["(Intercept)"]
            lhs = "1"
        else:
            keep = [j for j in range(term.k) if j not in set(columns[scp])]
            model, names = rows.model[:, keep], [term.columns[j] for j in keep]
            lhs = f"{term.lhs} - {scp}"
        new_term, new_rows = coded_term(
            term.name,
            names,
            term.levels,
            rows.codes,
            model,
            group_vars=term.group_vars,
            lhs=lhs,
        )
        out.append((f"{r_term_label(scp)} in ({form})", new_term, new_rows))
    return out


def _lm_loglik(design: Design, reml: bool) -> tuple[float, int]:
    """(log-likelihood, npar) of the linear model of the fixed part (R's ``logLik.lm``)."""
    X, y = design.X, design.y_minus_offset
    w = np.ones(len(y)) if design.weights is None else design.weights
    sw = np.sqrt(w)
    n, p = X.shape
    if p:
        Q, R = la.qr(X * sw[:, None], mode="economic")
        r = y * sw - Q @ (Q.T @ (y * sw))
        logdet = 2.0 * float(np.sum(np.log(np.abs(np.diag(R)))))
    else:
        r, logdet = y * sw, 0.0
    dof = n - p if reml else n
    rss = float(r @ r)
    ll = 0.5 * float(np.sum(np.log(w))) - 0.5 * dof * (_LOG_2PI + 1 + math.log(rss / dof))
    if reml:
        ll -= 0.5 * logdet
    return ll, p + 1


def ranova(res: ModelFit) -> pd.DataFrame:
    """lmerTest's ``ranova(m)``: likelihood-ratio tests of the random-effects terms.

    One row for the model (``<none>``), then one per reduced model (see the module):
    npar, logLik, AIC, LRT, Df, Pr(>Chisq). The likelihoods are of the fit's kind
    (restricted for REML fits).
    """
    require_rows(res, "ranova()")
    require_iid_residuals(res, "ranova()")
    design = res.design
    labels, lls, npars = ["<none>"], [res.llf], [res.npar]
    for s in range(len(res.terms)):
        for label, new_term, new_rows in _reduced_terms(res, s):
            terms = [t for i, t in enumerate(res.terms) if i != s]
            rows = [r for i, r in enumerate(design.rows) if i != s]
            if new_term is not None and not any(
                t.name == new_term.name and t.columns == new_term.columns for t in terms
            ):
                terms.append(new_term)
                rows.append(new_rows)
            labels.append(label)
            if not terms:
                ll, npar = _lm_loglik(design, res.reml)
            else:
                order = sorted(range(len(terms)), key=lambda i: -terms[i].nlevels)
                reduced = design.with_terms([terms[i] for i in order], [rows[i] for i in order])
                fit = MixedModel(reduced).optimize(REML=res.reml)
                ll, npar = fit.llf, fit.npar
            lls.append(ll)
            npars.append(npar)
    ll, npar = np.array(lls), np.array(npars, dtype=float)
    lrt = np.r_[np.nan, 2 * (ll[0] - ll[1:])]
    df = np.r_[np.nan, npar[0] - npar[1:]]
    with np.errstate(invalid="ignore"):
        p = np.r_[np.nan, stats.chi2.sf(lrt[1:], np.where(df[1:] > 0, df[1:], np.nan))]
    table = pd.DataFrame(
        {
            "npar": npar.astype(int),
            "logLik": ll,
            "AIC": -2 * ll + 2 * npar,
            "LRT": lrt,
            "Df": df,
            "Pr(>Chisq)": p,
        },
        index=labels,
    )
    table.attrs["heading"] = [
        "ANOVA-like table for random-effects: Single term deletions",
        "",
        "Model:",
        _formula_text(res),
    ]
    return table
