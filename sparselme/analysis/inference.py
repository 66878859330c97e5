"""Tests for fixed effects: likelihood-ratio tests, Satterthwaite and Kenward-Roger t and F tests.

* `anova` compares fitted models by likelihood ratio, as ``anova(m1, m2)`` in lme4
  (REML fits are refit with ML first).
* `coef_table` and `f_tests` follow lmerTest: t tests per coefficient and F tests
  per fixed-effect term (type 1 or 3 hypotheses), with Satterthwaite's or Kenward-Roger's
  denominator degrees of freedom.

Satterthwaite's method needs the curvature of the deviance in the variance parameters
(θ, σ) and the derivatives of Var(β̂) = σ²(R_XᵀR_X)⁻¹ in them; both are Richardson-
extrapolated central differences (as numDeriv does for lmerTest), on the deviance that is
profiled over β only (lmerTest's ``devfun_vp``).
"""

from __future__ import annotations

import math
import sys
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from ..engine.threads import blas_threads
from ..errors import NoLikelihoodError, NumericalError
from ..model.results import ModelFit
from .contrasts import type1_contrasts, type3_contrasts
from .kenward_roger import kenward_roger
from .tables import Table, as_table

__all__ = [
    "anova",
    "coef_table",
    "f_tests",
    "contrast_test",
    "VarparDerivatives",
    "varpar_derivatives",
    "refit_ml",
    "with_theta",
    "caller_names",
]

_LOG_2PI = math.log(2 * math.pi)
DDF_METHODS = ("Satterthwaite", "Kenward-Roger", "normal")


# ======================================================================================
# Refits
# ======================================================================================


def refit_ml(res: ModelFit) -> ModelFit:
    """The same model fit by maximum likelihood (``res`` itself when it already is)."""
    if not res.reml:
        return res
    return res.engine.optimize(REML=False, start=res.params_all)


def with_theta(res: ModelFit, theta: np.ndarray) -> np.ndarray:
    """All parameters of ``res``'s model with θ replaced (other blocks at the estimates)."""
    return np.r_[theta, res.params_all[res.engine.n_theta :]]


# ======================================================================================
# Likelihood-ratio tests
# ======================================================================================


def anova(
    *models: ModelFit,
    names: Sequence[str] | None = None,
    refit: bool = True,
    **named: ModelFit,
) -> pd.DataFrame:
    """Likelihood-ratio tests of nested models, as lme4's ``anova(m1, m2, ...)``.

    Models come positionally, by keyword (``anova(small=m0, big=m1)``: the keywords name
    the rows) or both. Rows are named by ``names`` (lme4's ``model.names``), else by the
    keywords, else by the caller's variable bound to each model (as R deparses the
    arguments), else ``m1``, ``m2``... They are sorted by number of parameters (stable), as
    lme4 does. Returns a `Table` (printed whole, under the models' formulas) with columns
    npar, AIC, BIC, logLik, deviance, Chisq, Df, Pr(>Chisq). REML fits are refit with ML
    first (with a message on stderr), unless ``refit=False``. With a single model, the F
    tests of its fixed-effect terms are returned (`f_tests`).
    """
    for key, value in named.items():
        if not isinstance(value, ModelFit):
            raise TypeError(
                f"anova() got an unexpected keyword argument {key!r} (keyword arguments name "
                f"fitted models, not {type(value).__name__})"
            )
    models = (*models, *named.values())
    if any(getattr(m, "estimator", "exact") == "moments" for m in models):
        raise NoLikelihoodError(
            "anova() compares likelihoods or uses estimated degrees of freedom: a fit by "
            "estimator='moments' has no likelihood; refit with estimator='exact'"
        )
    if len(models) == 1:
        return f_tests(models[0])
    if not models:
        raise ValueError("anova() needs at least one fitted model")
    if names is None:
        names = [*caller_names(models[: len(models) - len(named)], sys._getframe(1)), *named]
    names = [str(n) for n in names]
    if len(names) != len(models):
        raise ValueError(f"{len(names)} names for {len(models)} models")
    if len(set(names)) != len(names):
        raise ValueError(f"model names must differ: {names}")
    nobs = {m.nobs for m in models}
    if len(nobs) > 1:
        raise ValueError(f"models were not all fitted to the same number of observations: {nobs}")
    y0 = models[0].design.y
    if any(not np.array_equal(m.design.y, y0) for m in models[1:]):
        raise ValueError("all models must be fitted to the same response data")
    fits = list(models)
    if refit and any(m.reml for m in fits):
        print("refitting model(s) with ML (instead of REML)", file=sys.stderr)
        fits = [refit_ml(m) for m in fits]
    elif any(m.reml for m in fits) and not all(m.reml for m in fits):
        warnings.warn("some models fit with REML = True, some not", UserWarning, stacklevel=2)
    order = sorted(range(len(fits)), key=lambda i: fits[i].npar)
    fits = [fits[i] for i in order]
    npar = np.array([m.npar for m in fits], dtype=float)
    llf = np.array([m.llf for m in fits])
    chisq = np.r_[np.nan, 2 * np.maximum(0.0, np.diff(llf))]
    df = np.r_[np.nan, np.diff(npar)]
    with np.errstate(invalid="ignore"):
        p = np.where(df == 0, np.nan, stats.chi2.sf(chisq, np.where(df > 0, df, np.nan)))
    table = pd.DataFrame(
        {
            "npar": npar.astype(int),
            "AIC": [m.AIC for m in fits],
            "BIC": [m.BIC for m in fits],
            "logLik": llf,
            "deviance": -2 * llf,
            "Chisq": chisq,
            "Df": df,
            "Pr(>Chisq)": p,
        },
        index=pd.Index([names[i] for i in order], name="model"),
    )
    formulas = {names[i]: _formula_text(models[i]) for i in order}
    table.attrs["formulas"] = formulas
    return as_table(table, ["Models:", *(f"{n}: {f}" for n, f in formulas.items())])


def caller_names(models: Sequence[ModelFit], frame) -> list[str]:
    """Per model, the one variable of ``frame`` (the caller's) bound to it, else m1, m2..."""
    out = []
    for i, m in enumerate(models):
        name = f"m{i + 1}"
        for scope in (frame.f_locals, frame.f_globals):  # locals first, as R's deparse
            found = [k for k, v in scope.items() if v is m and not k.startswith("_")]
            if found:
                name = found[0] if len(found) == 1 else name
                break
        out.append(name)
    return out if len(set(out)) == len(out) else [f"m{i + 1}" for i in range(len(models))]


def _formula_text(res: ModelFit) -> str:
    parsed = res.design.parsed
    return parsed.text if parsed is not None else ""


# ======================================================================================
# Derivatives in the variance parameters (θ, σ)
# ======================================================================================


def deviance_varpar(res: ModelFit, varpar: np.ndarray) -> float:
    """−2 log-likelihood at (θ, σ) with β profiled out (lmerTest's ``devfun_vp``)."""
    model = res.engine
    sol = model.solve(with_theta(res, varpar[:-1]))
    return model.deviance_of(sol, res.reml, sigma2=varpar[-1] ** 2)


def _unscaled_cov(res: ModelFit, theta: np.ndarray) -> np.ndarray:
    """(p, p) (R_XᵀR_X)⁻¹ at θ (formed in the engine's well-scaled X̃)."""
    return res.engine.solve(with_theta(res, theta)).unscaled_cov()


def _richardson(estimates: list, v: float = 2.0):
    """Richardson extrapolation of central differences with steps h, h/v, h/v², ..."""
    table = list(estimates)
    for m in range(1, len(table)):
        f = v ** (2 * m)
        table = [(f * table[k + 1] - table[k]) / (f - 1) for k in range(len(table) - 1)]
    return table[0]


def _steps(x: np.ndarray, d: float, eps: float = 1e-4) -> np.ndarray:
    zero_tol = math.sqrt(np.finfo(float).eps / 7e-7)
    return np.where(np.abs(x) < zero_tol, eps, d * np.abs(x))


def hessian(
    f: Callable[[np.ndarray], float], x: np.ndarray, d: float = 0.1, r: int = 4
) -> np.ndarray:
    """(n, n) Hessian of f at x by Richardson-extrapolated central differences (numDeriv's)."""
    x = np.asarray(x, dtype=float)
    n = len(x)
    h0 = _steps(x, d)
    f0 = f(x)
    H = np.zeros((n, n))
    for i in range(n):
        est = []
        for k in range(r):
            e = np.zeros(n)
            e[i] = h0[i] / 2**k
            est.append((f(x + e) - 2 * f0 + f(x - e)) / e[i] ** 2)
        H[i, i] = _richardson(est)
        for j in range(i):
            est = []
            for k in range(r):
                ei, ej = np.zeros(n), np.zeros(n)
                ei[i], ej[j] = h0[i] / 2**k, h0[j] / 2**k
                num = f(x + ei + ej) - f(x + ei - ej) - f(x - ei + ej) + f(x - ei - ej)
                est.append(num / (4 * ei[i] * ej[j]))
            H[i, j] = H[j, i] = _richardson(est)
    return H


def jacobian(
    f: Callable[[np.ndarray], np.ndarray], x: np.ndarray, d: float = 1e-4, r: int = 4
) -> list[np.ndarray]:
    """Derivatives ∂f/∂x_i (one array per coordinate), Richardson central differences."""
    x = np.asarray(x, dtype=float)
    h0 = _steps(x, d)
    out = []
    for i in range(len(x)):
        est = []
        for k in range(r):
            e = np.zeros(len(x))
            e[i] = h0[i] / 2**k
            est.append((f(x + e) - f(x - e)) / (2 * e[i]))
        out.append(_richardson(est))
    return out


@dataclass
class VarparDerivatives:
    """lmerTest's ingredients for Satterthwaite's method at the estimates.

    varpar: (m,) = (θ, σ); hessian: (m, m) of the deviance in varpar;
    vcov_varpar: (m, m) = 2 H⁻¹ (on H's positive eigenvalues); jacobian: m arrays (p, p),
    ∂Var(β̂)/∂varpar_i; vcov_beta: (p, p).
    """

    varpar: np.ndarray
    hessian: np.ndarray
    vcov_varpar: np.ndarray
    jacobian: list[np.ndarray]
    vcov_beta: np.ndarray


def varpar_derivatives(res: ModelFit, tol: float = 1e-8) -> VarparDerivatives:
    """The deviance Hessian and the Jacobian of Var(β̂) in (θ, σ), cached on ``res``."""
    cache = res.cache
    if "varpar" in cache:
        return cache["varpar"]
    varpar = np.r_[res.theta, res.sigma]
    with blas_threads(res.engine.pls.chol.blas_threads):
        H = hessian(lambda vp: deviance_varpar(res, vp), varpar)
        jac_theta = jacobian(lambda th: _unscaled_cov(res, th), res.theta)
        K = _unscaled_cov(res, res.theta)
    if not np.all(np.isfinite(H)):
        raise NumericalError(
            "the deviance could not be evaluated around the estimates to form its Hessian in "
            "(θ, σ) for Satterthwaite's degrees of freedom: rescale the variables, or use "
            "ddf='Kenward-Roger' or 'normal'"
        )
    evals, evecs = np.linalg.eigh(H)
    if np.any(evals < -tol):
        warnings.warn(
            f"deviance Hessian in (theta, sigma) has negative eigenvalues {evals[evals < -tol]}",
            UserWarning,
            stacklevel=3,
        )
    pos = evals > tol
    vcov_varpar = 2 * (evecs[:, pos] / evals[pos]) @ evecs[:, pos].T
    s2 = res.scale
    jac = [s2 * J for J in jac_theta] + [2 * res.sigma * K]
    out = VarparDerivatives(varpar, H, vcov_varpar, jac, s2 * K)
    cache["varpar"] = out
    return out


def satterthwaite_df(res: ModelFit, L: np.ndarray) -> tuple[float, float]:
    """(Var(Lβ̂), Satterthwaite df) of one contrast L (p,)."""
    der = varpar_derivatives(res)
    var = float(L @ der.vcov_beta @ L)
    grad = np.array([L @ J @ L for J in der.jacobian])
    denom = float(grad @ der.vcov_varpar @ grad)
    return var, 2 * var**2 / denom if denom > 0 else np.inf


# ======================================================================================
# t tests (coefficient table) and F tests
# ======================================================================================


def _check_ddf(ddf: str) -> str:
    for m in DDF_METHODS:
        if ddf.lower() == m.lower() or (m == "Kenward-Roger" and ddf.lower() in ("kr", "kenward")):
            return m
    if ddf.lower() in ("lme4", "none", "z"):
        return "normal"
    raise ValueError(f"ddf must be one of {', '.join(DDF_METHODS)}, not {ddf!r}")


def coef_table(res: ModelFit, ddf: str = "Satterthwaite") -> pd.DataFrame:
    """Fixed-effect t tests: Estimate, Std. Error, df, t value, Pr(>|t|) (lmerTest's).

    ``ddf``: "Satterthwaite", "Kenward-Roger" (REML fits; Std. Error from the adjusted
    covariance) or "normal" (z tests, df = inf).
    """
    ddf = _check_ddf(ddf)
    beta = res.solution.beta
    p = len(beta)
    if ddf == "Kenward-Roger":
        kr = kenward_roger(res)
        se = np.sqrt(np.diag(kr.vcov_adj))
        df = np.array([kr.ddf(np.eye(p)[[i]]) for i in range(p)])
    elif ddf == "Satterthwaite":
        pairs = [satterthwaite_df(res, np.eye(p)[i]) for i in range(p)]
        se = np.sqrt([v for v, _ in pairs])
        df = np.array([d for _, d in pairs])
    else:
        se = np.sqrt(np.diag(res.cov_fe))
        df = np.full(p, np.inf)
    t = beta / se
    return Table(
        {
            "Estimate": beta,
            "Std. Error": se,
            "df": df,
            "t value": t,
            "Pr(>|t|)": 2 * stats.t.sf(np.abs(t), df),
        },
        index=res.exog_names,
    )


def _fstat_ddf(nu: np.ndarray, tol: float = 1e-8) -> float:
    """lmerTest's ``get_Fstat_ddf``: the df of an F statistic from per-direction df."""
    if len(nu) == 1:
        return float(nu[0])
    if np.all(np.abs(np.diff(nu)) < tol):
        return float(np.mean(nu))
    if np.any(nu <= 2):
        return 2.0
    E = float(np.sum(nu / (nu - 2)))
    return 2 * E / (E - len(nu))


def contrast_test(
    res: ModelFit, L: np.ndarray, ddf: str = "Satterthwaite", eps: float = 1.49e-8
) -> dict[str, float]:
    """F test of Lβ = 0 (lmerTest's ``contestMD``): Sum Sq, Mean Sq, NumDF, DenDF, F, p."""
    ddf = _check_ddf(ddf)
    L = np.atleast_2d(np.asarray(L, dtype=float))
    beta = res.solution.beta
    sigma2 = res.scale
    if L.shape[0] == 0:
        return _ftable(np.nan, 0, np.nan, sigma2)
    if ddf == "Kenward-Roger":
        out = kenward_roger(res).f_test(L, beta)
        return _ftable(out["FstatU"], out["ndf"], out["ddf"], sigma2, out["F.scaling"])
    V = res.cov_fe
    d, P = np.linalg.eigh(L @ V @ L.T)
    d, P = d[::-1], P[:, ::-1]
    pos = d > max(eps * d[0], 0.0)
    q = int(pos.sum())
    if q == 0:
        return _ftable(np.nan, 0, np.nan, sigma2)
    PtL = (P.T @ L)[:q]
    t2 = (PtL @ beta) ** 2 / d[:q]
    F = float(np.sum(t2) / q)
    if ddf == "normal":
        return _ftable(F, q, np.inf, sigma2)
    nu = np.array([satterthwaite_df(res, PtL[m])[1] for m in range(q)])
    return _ftable(F, q, _fstat_ddf(nu), sigma2)


def _ftable(F: float, ndf: int, ddf: float, sigma2: float, scale: float = 1.0) -> dict:
    ms = F * sigma2
    Fs = F * scale
    p = stats.f.sf(Fs, ndf, ddf) if ndf > 0 and np.isfinite(Fs) else np.nan
    return {
        "Sum Sq": ms * ndf,
        "Mean Sq": ms,
        "NumDF": ndf,
        "DenDF": ddf,
        "F value": Fs,
        "Pr(>F)": p,
    }


def f_tests(res: ModelFit, type: int | str = 3, ddf: str = "Satterthwaite") -> pd.DataFrame:  # noqa: A002
    """F tests of the fixed-effect terms (lmerTest's ``anova(m, type, ddf)``).

    One row per term of the fixed-effects formula with columns Sum Sq, Mean Sq, NumDF,
    DenDF, F value, Pr(>F). ``type``: 3 (marginal, SAS-style type III hypotheses) or 1
    (sequential).
    """
    t = str(type).upper()
    t = {"I": "1", "III": "3"}.get(t, t)
    xtx = res.engine.cp.XtX if res.design.X is None else None  # streamed: X not held
    if t == "1":
        hyps = type1_contrasts(res.design, xtx)
    elif t == "3":
        hyps = type3_contrasts(res.design, xtx)
    else:
        raise ValueError(f"type must be 1 or 3, not {type!r}")
    rows = {term: contrast_test(res, L, ddf) for term, L in hyps.items()}
    cols = ["Sum Sq", "Mean Sq", "NumDF", "DenDF", "F value", "Pr(>F)"]
    table = pd.DataFrame.from_dict(rows, orient="index", columns=cols)
    table.attrs["heading"] = (
        f"Type {'I' * int(t)} Analysis of Variance Table with {_check_ddf(ddf)}'s method"
    )
    table.attrs["hypotheses"] = hyps
    return as_table(table)
