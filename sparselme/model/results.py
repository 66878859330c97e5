"""One fit's estimates: computed values plus the engine that produced them.

`ModelFit` holds the parameters the optimizer found, the penalized least-squares
solution there and the optimizer's record. Everything else is derived from these values;
what needs the engine again (conditional variances, the criterion of the other kind) is
evaluated through ``engine`` at the stored parameters, so reading an attribute never
changes what a fit reports. Names shared with statsmodels keep statsmodels' meaning
(``aic``/``bic`` are NaN under REML, ``scale`` is σ²); the lme4-style extras (``theta``,
``sigma``, ``fixef``, ``ranef()``, ``varcorr``, ``AIC``, ``BIC``, ``deviance``,
``reml_criterion``, ``is_singular``, ``ngroups``) follow lme4.
"""

from __future__ import annotations

import math
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..data.design import Design, r_style_name
from ..engine.objective import PLSSolution
from ..engine.optimize import SINGULAR_TOL, OptSummary
from ..engine.terms import RandomEffectsTerm

if TYPE_CHECKING:
    from .mixed_model import MixedModel

__all__ = ["ModelFit", "RandomEffects"]


class RandomEffects(dict):
    """``ranef()``: per grouping factor, a DataFrame of conditional modes (levels × columns).

    ``condvar[name]`` holds the conditional covariances, an array (L, k, k) that includes σ².
    """

    def __init__(self, frames: dict[str, pd.DataFrame], condvar: dict[str, np.ndarray]):
        super().__init__(frames)
        self.condvar = condvar

    def __repr__(self) -> str:
        return "\n\n".join(f"${name}\n{frame}" for name, frame in self.items())

    def _repr_html_(self) -> str:
        """Each grouping factor's table (long ones shortened as pandas does)."""
        parts = [
            f"<p><strong>{name}</strong> ({len(frame)} levels)</p>{frame._repr_html_()}"
            for name, frame in self.items()
        ]
        return "\n".join(parts)


class ModelFit:
    """The estimates of one fit (see the module docstring for naming rules).

    Parameters
    ----------
    engine : the model that was fitted (the handle for derived quantities).
    params : (m,) all parameters at the optimum: θ, then any variant block's values.
    solution : the penalized least-squares solution there.
    optsum : the optimizer's record.
    reml : whether the criterion was REML.
    """

    #: fixed-effect names in R's style (``(Intercept)``) or formulaic's (``Intercept``)
    name_style = "r"

    def __init__(
        self,
        engine: MixedModel,
        params: np.ndarray,
        solution: PLSSolution,
        optsum: OptSummary,
        reml: bool,
    ):
        self.engine = engine
        self.params_all = np.asarray(params, dtype=float).copy()
        self.solution = solution
        self.optsum = optsum
        self.reml = bool(reml)
        self.cache: dict = {}  # quantities the analysis layer derived from these values

    @classmethod
    def from_fit(cls, fit: ModelFit, name_style: str | None = None) -> ModelFit:
        """This class's view of another fit's values (same estimates, same engine).

        ``name_style``: ``"r"`` or ``"formulaic"`` fixed-effect names (default: the class's).
        """
        out = cls.__new__(cls)
        out.__dict__.update(fit.__dict__)
        if name_style is not None:
            if name_style not in ("r", "formulaic"):
                raise ValueError(f"name_style must be 'r' or 'formulaic', not {name_style!r}")
            out.name_style = name_style
        return out

    def with_values(self, fit: ModelFit) -> ModelFit:
        """A fit like this one (same class and settings) holding ``fit``'s estimates."""
        out = object.__new__(type(self))
        cached = {n for n in dir(type(self)) if isinstance(getattr(type(self), n), cached_property)}
        out.__dict__.update({k: v for k, v in self.__dict__.items() if k not in cached})
        for name in ("engine", "params_all", "solution", "optsum", "reml"):
            out.__dict__[name] = fit.__dict__[name]
        out.cache = {}
        return out

    # ---- sizes and bookkeeping ----------------------------------------------------------
    @property
    def model(self):
        """The model that was fitted (the statsmodels API gives its own ``MixedLM``)."""
        return self.engine

    @property
    def design(self) -> Design:
        return self.engine.design

    @property
    def terms(self) -> list[RandomEffectsTerm]:
        return self.engine.design.terms

    @property
    def nobs(self) -> int:
        return self.engine.design.nobs

    @property
    def k_fe(self) -> int:
        return len(self.solution.beta)

    @property
    def method(self) -> str:
        return "REML" if self.reml else "ML"

    @property
    def exog_names(self) -> list[str]:
        names = self.design.fixed_names
        return [r_style_name(n) for n in names] if self.name_style == "r" else list(names)

    @property
    def ngroups(self) -> dict[str, int]:
        """Number of levels per grouping factor, in lme4's term order."""
        out: dict[str, int] = {}
        for t in self.terms:
            out.setdefault(t.name, t.nlevels)
        return out

    @property
    def n_theta(self) -> int:
        return len(self.theta)

    @property
    def block_params(self) -> pd.Series:
        """The values of the parameter blocks beyond θ (e.g. a residual structure's)."""
        names = self.engine.parameter_names[self.engine.n_theta :]
        return pd.Series(self.params_all[self.engine.n_theta :], index=names, dtype=float)

    @property
    def npar(self) -> int:
        """lme4's parameter count: fixed effects + θ + σ (+ any further block's)."""
        return self.k_fe + len(self.params_all) + 1

    # ---- variance parameters -----------------------------------------------------------
    @property
    def theta(self) -> np.ndarray:
        """(n_theta,) relative covariance parameters, lme4's order."""
        return self.solution.theta

    @property
    def scale(self) -> float:
        """Residual variance σ²."""
        dof = self.nobs - (self.k_fe if self.reml else 0)
        return self.solution.pwrss / dof

    @property
    def sigma(self) -> float:
        """Residual standard deviation σ."""
        return math.sqrt(self.scale)

    def term_thetas(self) -> list[np.ndarray]:
        """Per term, its slice of θ."""
        o = self.engine.pls.theta_offsets
        return [self.theta[o[i] : o[i + 1]] for i in range(len(self.terms))]

    def term_covariances(self) -> list[np.ndarray]:
        """Per term, the (k, k) covariance σ² T Tᵀ of one level's random effects."""
        pairs = zip(self.terms, self.term_thetas())
        return [t.covariance_matrix(th, self.scale) for t, th in pairs]

    @cached_property
    def varcorr(self) -> pd.DataFrame:
        """Variance components like R's ``as.data.frame(VarCorr(m))``.

        Returns
        -------
        pandas.DataFrame
            Columns grp, var1, var2, vcov, sdcor: for each term its variances (sdcor the
            standard deviation), then its covariances (sdcor the correlation); the last
            row is the residual variance σ² and σ.
        """
        rows = []
        seen: dict[str, int] = {}
        for t, cov in zip(self.terms, self.term_covariances()):
            count = seen.get(t.name, 0)
            seen[t.name] = count + 1
            grp = t.name if count == 0 else f"{t.name}.{count}"
            sd = np.sqrt(np.diag(cov))
            for i, c in enumerate(t.columns):
                rows.append((grp, c, np.nan, cov[i, i], sd[i]))
            if t.covariance.correlated:
                for j in range(t.k):
                    for i in range(j + 1, t.k):
                        denom = sd[i] * sd[j]
                        corr = cov[i, j] / denom if denom > 0 else np.nan
                        rows.append((grp, t.columns[j], t.columns[i], cov[i, j], corr))
        rows.append(("Residual", np.nan, np.nan, self.scale, self.sigma))
        table = pd.DataFrame(rows, columns=["grp", "var1", "var2", "vcov", "sdcor"])
        # one convention for what is absent, whatever the fit: NaN in object columns
        return table.astype({"grp": object, "var1": object, "var2": object})

    @property
    def is_singular(self) -> bool:
        """lme4's isSingular: a θ with a zero lower bound is below 1e-4."""
        lower = self.engine.lower_bounds
        scale = self.optsum.theta_scale  # the optimizer judged d·θ (columns rescaled)
        theta = self.theta if scale is None else self.theta * scale[: len(self.theta)]
        return bool(np.any(theta[lower == 0] < SINGULAR_TOL))

    # ---- fixed effects -------------------------------------------------------------------
    @property
    def fe_params(self) -> pd.Series:
        """Fixed-effects estimates β."""
        return pd.Series(self.solution.beta, index=self.exog_names, name="fe_params")

    fixef = fe_params

    @cached_property
    def cov_fe(self) -> np.ndarray:
        """(p, p) σ² (XᵀV⁻¹X)⁻¹, formed in the engine's well-scaled X̃ (``fixed_scaling``)."""
        return self.scale * self.solution.unscaled_cov()

    def cov_params(self) -> pd.DataFrame:
        """(p, p) covariance of the fixed-effects estimates, σ² (R_XᵀR_X)⁻¹."""
        return pd.DataFrame(self.cov_fe, index=self.exog_names, columns=self.exog_names)

    vcov = cov_params

    @property
    def bse_fe(self) -> pd.Series:
        """Standard errors of the fixed effects."""
        return pd.Series(np.sqrt(np.diag(self.cov_fe)), index=self.exog_names, name="bse_fe")

    # ---- likelihood ---------------------------------------------------------------------
    @property
    def llf(self) -> float:
        """Log-likelihood (restricted log-likelihood under REML)."""
        return -0.5 * self.optsum.fmin

    @cached_property
    def deviance(self) -> float:
        """−2 × the ML log-likelihood at these estimates."""
        if not self.reml:
            return self.optsum.fmin
        return self.engine.objective(self.params_all, reml=False)

    @cached_property
    def reml_criterion(self) -> float:
        """The REML criterion (−2 restricted log-likelihood) at these estimates."""
        if self.reml:
            return self.optsum.fmin
        return self.engine.objective(self.params_all, reml=True)

    @property
    def AIC(self) -> float:  # noqa: N802 - lme4's name
        """lme4's AIC: −2 logLik + 2 npar (the REML logLik for REML fits)."""
        return -2 * self.llf + 2 * self.npar

    @property
    def BIC(self) -> float:  # noqa: N802 - lme4's name
        """lme4's BIC: −2 logLik + log(n) npar."""
        return -2 * self.llf + math.log(self.nobs) * self.npar

    @property
    def aic(self) -> float:
        """statsmodels' AIC: NaN under REML; counts β, the variance parameters and σ."""
        return float("nan") if self.reml else self.AIC

    @property
    def bic(self) -> float:
        """statsmodels' BIC: NaN under REML."""
        return float("nan") if self.reml else self.BIC

    @property
    def converged(self) -> bool:
        return self.optsum.converged

    # ---- random effects and fitted values ------------------------------------------------
    def b_blocks(self) -> list[np.ndarray]:
        """Per term the (L, k) conditional modes."""
        o = self.engine.pls.b_offsets
        b = self.solution.b
        return [b[o[i] : o[i + 1]].reshape(t.nlevels, t.k) for i, t in enumerate(self.terms)]

    @cached_property
    def condvar_blocks(self) -> list[np.ndarray]:
        """Per term (L, k, k): σ² T [(ΛᵀZᵀWZΛ+I)⁻¹]_level Tᵀ."""
        inv = self.engine.inverse_diagonal_blocks(self.params_all)
        T = self.engine.pls.templates(self.theta)
        return [self.scale * np.einsum("ij,ljk,mk->lim", Ts, B, Ts) for Ts, B in zip(T, inv)]

    def ranef(self, condvar: bool = True) -> RandomEffects:
        """Conditional modes of the random effects (lme4's ``ranef(m, condVar = TRUE)``).

        Parameters
        ----------
        condvar : bool, default True
            Also compute the conditional covariances (from the diagonal blocks of the
            inverse of the penalized system; False skips that work).

        Returns
        -------
        RandomEffects
            A dict from grouping factor to a DataFrame (levels × random-effect columns);
            terms on the same factor are merged. ``.condvar[name]`` holds the (L, k, k)
            conditional covariances, σ² included.
        """
        frames: dict[str, pd.DataFrame] = {}
        cvars: dict[str, list[np.ndarray]] = {}
        blocks = self.condvar_blocks if condvar else [None] * len(self.terms)
        for t, B, V in zip(self.terms, self.b_blocks(), blocks):
            df = pd.DataFrame(B, index=t.levels, columns=list(t.columns))
            if t.name in frames:
                clash = df.columns.intersection(frames[t.name].columns)
                df = df.rename(columns={c: f"{c}.{len(cvars[t.name])}" for c in clash})
                frames[t.name] = pd.concat([frames[t.name], df], axis=1)
                cvars[t.name].append(V)
            else:
                frames[t.name] = df
                cvars[t.name] = [V]
        merged = {}
        if condvar:
            for name, parts in cvars.items():
                merged[name] = parts[0] if len(parts) == 1 else _block_diagonal(parts)
        return RandomEffects(frames, merged)

    @cached_property
    def fittedvalues(self):
        """(n,) Xβ + Zb (+ offset)."""
        return self.engine.fitted_values(self.solution, self.b_blocks())

    @property
    def resid(self):
        """(n,) response residuals y − fitted."""
        return self.engine.response() - self.fittedvalues

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.method} nobs={self.nobs} logLik={self.llf:.4f}>"


def _block_diagonal(parts: list[np.ndarray]) -> np.ndarray:
    """(L, Σk, Σk) from per-level blocks (L, k_i, k_i) placed along the diagonal."""
    L = parts[0].shape[0]
    k = sum(p.shape[1] for p in parts)
    out = np.zeros((L, k, k))
    at = 0
    for p in parts:
        out[:, at : at + p.shape[1], at : at + p.shape[1]] = p
        at += p.shape[1]
    return out
