"""Deletion diagnostics: the fit refitted without each case or each group (lme4's
``influence(m, groups)``).

Each deleted unit (one row, or every row of one level of a grouping variable) is
refitted exactly, by the same criterion (REML or ML), warm-started at the full fit's θ
(lme4 does the same, with at most 1000 evaluations). The refit does not rebuild the
model: the deleted rows' cross-products are subtracted from the full ones and the
objective reuses the factorization's symbolic analysis (`sparselme.engine.deletion`),
so one refit costs O(rows deleted) plus its deviance evaluations.

The result holds lme4's pieces — the fixed effects and variance components with and
without each unit, the covariance matrices of β̂ — and derives ``dfbeta`` (lme4's
sign: estimate without the unit minus the full estimate), ``dfbetas`` and
``cooks_distance``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from ..engine.deletion import objective_without
from ..engine.fit import FitOptions
from ..errors import ConvergenceWarning, DataError, NumericalError
from ..model.results import ModelFit
from ..progress import ProgressBar
from .joint import require_iid_residuals, require_rows

__all__ = ["Influence", "influence", "fit_without", "variance_components"]


@dataclass
class Influence:
    """Estimates with and without each deleted unit (lme4's ``influence.merMod``).

    Attributes
    ----------
    groups : "case" or the grouping variable whose levels were deleted.
    deleted : the deleted units (row labels, or levels), in order of first appearance.
    fixed_effects : (p,) the full fit's β̂.
    fixed_effects_deleted : (units, p) β̂ without each unit (NaN where it could not be fit).
    var_cov_comps : σ² then each random-effects covariance's lower triangle (lme4's names:
        ``sigma^2``, ``v[(Intercept)]``, ``C[Days,(Intercept)]``, prefixed by the group
        when there are several).
    var_cov_comps_deleted : (units, ·) the same without each unit.
    vcov : (p, p) Var(β̂) of the full fit; vcov_deleted: (units, p, p) without each unit.
    converged : (units,) whether each refit converged; function_evals: its evaluations.
    n_units : the number of units of the grouping (all of them, also when only some
        were deleted).
    """

    groups: str
    deleted: pd.Index
    fixed_effects: pd.Series
    fixed_effects_deleted: pd.DataFrame
    var_cov_comps: pd.Series
    var_cov_comps_deleted: pd.DataFrame
    vcov: pd.DataFrame
    vcov_deleted: np.ndarray  # (units, p, p)
    converged: pd.Series
    function_evals: pd.Series
    n_units: int | None = None

    def dfbeta(self, which: str = "fixed") -> pd.DataFrame:
        """Estimate without each unit minus the full estimate (lme4's ``dfbeta``).

        ``which``: "fixed" (the fixed effects) or "var_cov" (the variance components).
        """
        if which == "fixed":
            return self.fixed_effects_deleted - self.fixed_effects
        if which == "var_cov":
            return self.var_cov_comps_deleted - self.var_cov_comps
        raise ValueError(f"which must be 'fixed' or 'var_cov', not {which!r}")

    def dfbetas(self) -> pd.DataFrame:
        """`dfbeta` over the standard errors of the refit without each unit."""
        se = np.sqrt(np.diagonal(self.vcov_deleted, axis1=1, axis2=2))
        return self.dfbeta() / se

    def cooks_distance(self) -> pd.Series:
        """lme4's ``cooks.distance(influence(m))``: dᵢ = Δᵢᵀ V⁻¹ Δᵢ (n − p)/(n p).

        Δᵢ = `dfbeta` row i, V = Var(β̂) of the full fit, n the number of units (cases or
        groups, as lme4 counts it) and p the number of fixed effects.
        """
        db = self.dfbeta().to_numpy()
        p = db.shape[1]
        n = self.n_units or db.shape[0]
        Vinv = np.linalg.inv(self.vcov.to_numpy())
        d = np.einsum("ip,pq,iq->i", db, Vinv, db) * (n - p) / (n * p)
        return pd.Series(d, index=self.deleted, name="cooks_distance")

    def __repr__(self) -> str:
        bad = int((~self.converged).sum())
        return f"<Influence groups={self.groups!r} deleted={len(self.deleted)} not converged={bad}>"


def variance_components(res: ModelFit) -> pd.Series:
    """σ² then each random-effects covariance's lower triangle, column by column
    (lme4's ``var.cov.comps``)."""
    vc = res.varcorr
    groups = list(dict.fromkeys(g for g in vc["grp"] if g != "Residual"))
    prefix = len(groups) > 1
    names, values = ["sigma^2"], [res.scale]
    for grp, t, cov in zip(_term_groups(res), res.terms, res.term_covariances()):
        for j in range(t.k):
            for i in range(j, t.k):
                label = f"v[{t.columns[i]}]" if i == j else f"C[{t.columns[i]},{t.columns[j]}]"
                names.append(f"{grp}:{label}" if prefix else label)
                values.append(cov[i, j])
    return pd.Series(values, index=names, name="var_cov_comps")


def _term_groups(res: ModelFit) -> list[str]:
    """Each term's group label as ``varcorr`` writes it (``Subject``, ``Subject.1``)."""
    seen: dict[str, int] = {}
    out = []
    for t in res.terms:
        count = seen.get(t.name, 0)
        seen[t.name] = count + 1
        out.append(t.name if count == 0 else f"{t.name}.{count}")
    return out


def _unit_labels(res: ModelFit, groups) -> tuple[str, np.ndarray]:
    """(name, (n,) label of each fitted row's unit)."""
    design = res.design
    n = design.nobs
    if groups is None:
        return "case", np.asarray(design.row_index, dtype=object)
    if isinstance(groups, str):
        for t, rows in zip(res.terms, design.rows):
            if t.name == groups:
                return groups, np.asarray(t.levels, dtype=object)[rows.codes]
        have = ", ".join(dict.fromkeys(t.name for t in res.terms))
        raise DataError(
            f"groups={groups!r} is not a grouping factor of the model ({have}); pass the "
            "labels of each row instead (an array or a Series indexed like the data)"
        )
    if isinstance(groups, pd.Series):
        labels = groups.reindex(design.row_index)
        name = str(groups.name) if groups.name is not None else "groups"
    else:
        labels = pd.Series(np.asarray(groups, dtype=object))
        name = "groups"
        if len(labels) != n:
            raise ValueError(f"groups has {len(labels)} labels, the fit has {n} rows")
    if labels.isna().any():
        raise DataError("groups has missing labels for some of the fitted rows")
    return name, labels.to_numpy(dtype=object)


def influence(
    res: ModelFit,
    groups=None,
    maxeval: int = 1000,
    verbose: bool | None = None,
    units=None,
) -> Influence:
    """Refit without each case or group (lme4's ``influence(m, groups)``).

    Parameters
    ----------
    res : the fit.
    groups : None (delete each row), the name of a grouping factor of the model (delete
        each of its levels), or (n,) labels of the fitted rows (an array, or a Series
        indexed like the data): all rows with one label are deleted together.
    maxeval : most deviance evaluations per refit (lme4's ``maxfun``, default 1000).
    verbose : progress bar on stderr (None: when slow and stderr is a terminal).
    units : only these units (row labels, or levels), e.g. the suspicious ones of a
        large fit; default all. Cook's distances still count all units in n.

    Returns
    -------
    Influence
    """
    require_rows(res, "influence()")
    require_iid_residuals(res, "influence()")
    name, labels = _unit_labels(res, groups)
    codes, all_units = pd.factorize(pd.Series(labels, dtype=object), sort=False)
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(len(all_units) + 1))
    chosen = np.arange(len(all_units))
    if units is not None:
        wanted = list(units) if np.ndim(units) else [units]
        chosen = pd.Index(all_units).get_indexer(pd.Index(wanted, dtype=object))
        if np.any(chosen < 0):
            unknown = [u for u, c in zip(wanted, chosen) if c < 0][:5]
            raise DataError(f"units {unknown} are not among the deleted units of {name!r}")
    beta0 = res.fe_params
    vc0 = variance_components(res)
    p, nvc, m = len(beta0), len(vc0), len(chosen)
    fixed = np.full((m, p), np.nan)
    comps = np.full((m, nvc), np.nan)
    covs = np.full((m, p, p), np.nan)
    converged = np.zeros(m, dtype=bool)
    fevals = np.zeros(m, dtype=int)
    with ProgressBar(m, "influence", verbose=verbose) as bar:
        for i, u in enumerate(chosen):
            out = fit_without(res, order[bounds[u] : bounds[u + 1]], maxeval)
            if out is not None:
                fit, converged[i] = out
                fixed[i], covs[i] = fit.solution.beta, fit.cov_fe
                comps[i] = variance_components(fit).to_numpy()
                fevals[i] = fit.optsum.feval
            bar.update(1)
    index = pd.Index(all_units[chosen], name=name)
    return Influence(
        groups=name,
        deleted=index,
        fixed_effects=beta0,
        fixed_effects_deleted=pd.DataFrame(fixed, index=index, columns=beta0.index),
        var_cov_comps=vc0,
        var_cov_comps_deleted=pd.DataFrame(comps, index=index, columns=vc0.index),
        vcov=res.cov_params(),
        vcov_deleted=covs,
        converged=pd.Series(converged, index=index, name="converged"),
        function_evals=pd.Series(fevals, index=index, name="function_evals"),
        n_units=len(all_units),
    )


def fit_without(
    res: ModelFit, rows: np.ndarray, maxeval: int = 1000
) -> tuple[ModelFit, bool] | None:
    """The fit refitted without some of its rows, warm-started at its θ.

    ``rows``: positions of the deleted rows. Returns (the fit, of a model sharing
    ``res``'s factorization pattern; whether the optimizer converged without warnings),
    or None where the remaining rows cannot be fit (no more rows than fixed effects,
    fixed-effect columns left collinear).
    """
    model = res.engine
    design = res.design
    idx = np.asarray(rows, dtype=np.intp)
    X, y, w = model.engine_X(), model.engine_y(), design.weights
    term_rows = [r.take(idx) for r in design.rows]
    pls = objective_without(model.pls, term_rows, X[idx], y[idx], None if w is None else w[idx])
    if pls.n <= pls.p:
        return None
    twin = object.__new__(type(model))
    twin.__dict__.update(model.__dict__)
    twin.cp, twin.pls = pls.cp, pls
    twin.design = replace(design, y=None, nrows=pls.n)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            fit = twin.optimize(
                REML=res.reml, start=res.params_all, options=FitOptions(maxeval=maxeval)
            )
        except (NumericalError, np.linalg.LinAlgError):
            return None
    if not np.all(np.isfinite(fit.solution.beta)):
        return None
    clean = fit.optsum.converged and not any(
        issubclass(c.category, ConvergenceWarning) for c in caught
    )
    return fit, clean
