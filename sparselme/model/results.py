"""The fitted model: estimates, variance components, conditional modes and summaries.

:class:`MixedLMResults` holds one fit. Names shared with statsmodels keep statsmodels'
meaning (``aic``/``bic`` are NaN under REML, ``scale`` is σ²); the lme4-style extras
(``theta``, ``sigma``, ``fixef``, ``ranef()``, ``varcorr``, ``AIC``, ``BIC``, ``deviance``,
``reml_criterion``, ``is_singular``, ``ngroups``) follow lme4.
"""

from __future__ import annotations

import math
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..engine.objective import PLSSolution
from ..engine.optimize import SINGULAR_TOL, OptSummary

if TYPE_CHECKING:
    from .mixed_model import LinearMixedModel

__all__ = ["MixedLMResults", "RandomEffects"]


class RandomEffects(dict):
    """``ranef()``: per grouping factor, a DataFrame of conditional modes (levels × columns).

    ``condvar[name]`` holds the conditional covariances, an array (L, k, k) that includes σ².
    """

    def __init__(self, frames: dict[str, pd.DataFrame], condvar: dict[str, np.ndarray]):
        super().__init__(frames)
        self.condvar = condvar


class MixedLMResults:
    """Results of a linear mixed-model fit (see module docstring for naming rules)."""

    def __init__(
        self,
        model: LinearMixedModel,
        solution: PLSSolution,
        optsum: OptSummary,
        reml: bool,
        r_names: bool = True,
    ):
        self.model = model
        self.solution = solution
        self.optsum = optsum
        self.reml = reml
        self._r_names = r_names

    # ---- sizes and bookkeeping ----------------------------------------------------------
    @property
    def design(self):
        return self.model.design

    @property
    def terms(self):
        return self.model.design.terms

    @property
    def nobs(self) -> int:
        return self.model.design.nobs

    @property
    def k_fe(self) -> int:
        return self.model.design.X.shape[1]

    @property
    def method(self) -> str:
        return "REML" if self.reml else "ML"

    @property
    def exog_names(self) -> list[str]:
        d = self.model.design
        return d.fixed_names_r if self._r_names else d.fixed_names

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
    def npar(self) -> int:
        """lme4's parameter count: fixed effects + θ + σ."""
        return self.k_fe + self.n_theta + 1

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

    def _term_thetas(self) -> list[np.ndarray]:
        o = self.model.pls.theta_offsets
        return [self.theta[o[i] : o[i + 1]] for i in range(len(self.terms))]

    def term_covariances(self) -> list[np.ndarray]:
        """Per term, the (k, k) covariance σ² T Tᵀ of one level's random effects."""
        return [
            t.covariance_matrix(th, self.scale) for t, th in zip(self.terms, self._term_thetas())
        ]

    @cached_property
    def varcorr(self) -> pd.DataFrame:
        """Variance components like R's ``as.data.frame(VarCorr(m))``.

        Columns grp, var1, var2, vcov, sdcor; for each term its variances, then its
        covariances (sdcor holds the correlation); the last row is the Residual.
        """
        rows = []
        seen: dict[str, int] = {}
        for t, cov in zip(self.terms, self.term_covariances()):
            count = seen.get(t.name, 0)
            seen[t.name] = count + 1
            grp = t.name if count == 0 else f"{t.name}.{count}"
            sd = np.sqrt(np.diag(cov))
            for i, c in enumerate(t.columns):
                rows.append((grp, c, None, cov[i, i], sd[i]))
            if t.covariance != "diagonal" and t.covariance != "scalar":
                for j in range(t.k):
                    for i in range(j + 1, t.k):
                        denom = sd[i] * sd[j]
                        corr = cov[i, j] / denom if denom > 0 else np.nan
                        rows.append((grp, t.columns[j], t.columns[i], cov[i, j], corr))
        rows.append(("Residual", None, None, self.scale, self.sigma))
        return pd.DataFrame(rows, columns=["grp", "var1", "var2", "vcov", "sdcor"])

    @property
    def is_singular(self) -> bool:
        """lme4's isSingular: a θ with a zero lower bound is below 1e-4."""
        lower = self.model.pls.lower_bounds
        scale = getattr(self.optsum, "theta_scale", None)  # columns the optimizer rescaled
        theta = self.theta if scale is None else self.theta * scale
        return bool(np.any(theta[lower == 0] < SINGULAR_TOL))

    # ---- fixed effects -------------------------------------------------------------------
    @property
    def fe_params(self) -> pd.Series:
        """Fixed-effects estimates β."""
        return pd.Series(self.solution.beta, index=self.exog_names, name="fe_params")

    fixef = fe_params

    @cached_property
    def _cov_fe(self) -> np.ndarray:
        """σ² (XᵀV⁻¹X)⁻¹, formed in the engine's well-scaled X̃ (:mod:`.fixed_scaling`)."""
        return self.scale * self.solution.unscaled_cov()

    def cov_params(self) -> pd.DataFrame:
        """(p, p) covariance of the fixed-effects estimates, σ² (R_XᵀR_X)⁻¹."""
        return pd.DataFrame(self._cov_fe, index=self.exog_names, columns=self.exog_names)

    def vcov(self) -> pd.DataFrame:
        """lme4's ``vcov()``: covariance of the fixed-effects estimates (p, p)."""
        return pd.DataFrame(self._cov_fe, index=self.exog_names, columns=self.exog_names)

    @property
    def bse_fe(self) -> pd.Series:
        """Standard errors of the fixed effects."""
        return pd.Series(np.sqrt(np.diag(self._cov_fe)), index=self.exog_names, name="bse_fe")

    # ---- likelihood ---------------------------------------------------------------------
    @property
    def llf(self) -> float:
        """Log-likelihood (restricted log-likelihood under REML)."""
        return -0.5 * self.optsum.fmin

    @cached_property
    def deviance(self) -> float:
        """−2 × the ML log-likelihood at these estimates."""
        return self.optsum.fmin if not self.reml else self.model.objective(self.theta, reml=False)

    @cached_property
    def reml_criterion(self) -> float:
        """The REML criterion (−2 restricted log-likelihood) at these estimates."""
        return self.optsum.fmin if self.reml else self.model.objective(self.theta, reml=True)

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
    def _b_blocks(self) -> list[np.ndarray]:
        o = self.model.pls.b_offsets
        b = self.solution.b
        return [b[o[i] : o[i + 1]].reshape(t.nlevels, t.k) for i, t in enumerate(self.terms)]

    @cached_property
    def _condvar_blocks(self) -> list[np.ndarray]:
        """Per term (L, k, k): σ² T [(ΛᵀZᵀWZΛ+I)⁻¹]_level Tᵀ."""
        inv = self.model.pls.inverse_diagonal_blocks(self.theta)
        T = self.model.pls.templates(self.theta)
        return [self.scale * np.einsum("ij,ljk,mk->lim", Ts, B, Ts) for Ts, B in zip(T, inv)]

    def ranef(self, condvar: bool = True) -> RandomEffects:
        """Conditional modes per grouping factor (terms on one factor are merged)."""
        frames: dict[str, pd.DataFrame] = {}
        cvars: dict[str, list[np.ndarray]] = {}
        blocks = self._condvar_blocks if condvar else [None] * len(self.terms)
        for t, B, V in zip(self.terms, self._b_blocks(), blocks):
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
                if len(parts) == 1:
                    merged[name] = parts[0]
                else:
                    L = parts[0].shape[0]
                    k = sum(p.shape[1] for p in parts)
                    out = np.zeros((L, k, k))
                    at = 0
                    for p in parts:
                        out[:, at : at + p.shape[1], at : at + p.shape[1]] = p
                        at += p.shape[1]
                    merged[name] = out
        return RandomEffects(frames, merged)

    @cached_property
    def fittedvalues(self) -> np.ndarray:
        """(n,) Xβ + Zb (+ offset)."""
        d = self.model.design
        fit = self.solution.fixed_fit(d.X)
        for t, B in zip(self.terms, self._b_blocks()):
            fit = fit + t.z_times(B.ravel())
        if d.offset is not None:
            fit = fit + d.offset
        return fit

    @property
    def resid(self) -> np.ndarray:
        """(n,) response residuals y − fitted."""
        return self.model.design.y - self.fittedvalues

    # ---- printing -------------------------------------------------------------------------
    def summary(self) -> str:
        """An lme4-style printout of the fit."""
        return lme4_summary(self)

    def __repr__(self) -> str:
        return f"<MixedLMResults {self.method} nobs={self.nobs} logLik={self.llf:.4f}>"

    # ---- plots (matplotlib, the optional extra ``plot``) --------------------------------
    def plot_diagnostics(self, **kwargs):
        """Residuals vs fitted, QQ plots; see :func:`sparselme.plotting.plot_diagnostics`."""
        from ..plotting import plot_diagnostics

        return plot_diagnostics(self, **kwargs)

    def plot_ranef(self, **kwargs):
        """Caterpillar plot of the random effects; see :func:`sparselme.plotting.plot_ranef`."""
        from ..plotting import plot_ranef

        return plot_ranef(self, **kwargs)

    # ---- inference and prediction (sparselme.inference, .profile, .resampling, .predict) ---
    def coef_table(self, ddf: str = "Satterthwaite") -> pd.DataFrame:
        """t tests of the fixed effects with lmerTest's df; see :func:`.inference.coef_table`."""
        from ..analysis.inference import coef_table

        return coef_table(self, ddf)

    def anova(self, *others, type: int | str = 3, ddf: str = "Satterthwaite", **kwargs):  # noqa: A002
        """F tests of the fixed-effect terms, or with other fits the likelihood-ratio table."""
        from ..analysis.inference import anova, f_tests

        return anova(self, *others, **kwargs) if others else f_tests(self, type, ddf)

    def confint(self, parm=None, level: float = 0.95, method: str = "profile", **kwargs):
        """Profile, Wald or bootstrap intervals in lme4's layout; see :func:`.profile.confint`."""
        from ..analysis.profile import confint

        return confint(self, parm, level=level, method=method, **kwargs)

    def profile(self, which=None, **kwargs):
        """Likelihood profiles (traces, ``confint()``, ``plot()``); see :func:`.profile.profile`."""
        from ..analysis.profile import profile

        return profile(self, which, **kwargs)

    def bootstrap(self, nsim: int = 500, func=None, seed=None, **kwargs):
        """Parametric bootstrap; see :func:`sparselme.resampling.bootstrap`."""
        from ..analysis.resampling import bootstrap

        return bootstrap(self, nsim, func, seed, **kwargs)

    def predict(self, newdata=None, re_form=None, allow_new_levels: bool = False, **kwargs):
        """lme4's predictions with random effects; see :func:`sparselme.predict.predict`."""
        from ..analysis.predict import predict

        return predict(self, newdata, re_form, allow_new_levels, **kwargs)

    def simulate(self, nsim: int = 1, seed=None, use_u: bool = False, **kwargs) -> pd.DataFrame:
        """Responses simulated from the fit (columns sim_1...); see :func:`.predict.simulate`.

        ``re_form``, ``newdata``, ``allow_new_levels`` and ``offset`` as in lme4.
        """
        from .predict import simulate

        return simulate(self, nsim, seed, use_u, **kwargs)


def lme4_summary(res: MixedLMResults) -> str:
    """Text in the layout of lme4's ``summary(lmer(...))``."""
    d = res.model.design
    formula = d.parsed.text if d.parsed is not None else ""
    crit = "REML criterion at convergence" if res.reml else "deviance"
    lines = [
        f"Linear mixed model fit by {'REML' if res.reml else 'maximum likelihood'}",
        f"Formula: {formula}",
        "",
    ]
    if res.reml:
        lines.append(f"{crit}: {res.reml_criterion:.4f}")
    else:
        lines.append(
            f"{'AIC':>10} {'BIC':>10} {'logLik':>10} {'deviance':>10}\n"
            f"{res.AIC:>10.1f} {res.BIC:>10.1f} {res.llf:>10.1f} {res.deviance:>10.1f}"
        )
    r = res.resid / res.sigma
    q = np.quantile(r, [0, 0.25, 0.5, 0.75, 1])
    lines += [
        "",
        "Scaled residuals:",
        "     Min       1Q   Median       3Q      Max ",
        " ".join(f"{v:8.4f}" for v in q),
        "",
        "Random effects:",
    ]
    vc = res.varcorr
    table = [("Groups", "Name", "Variance", "Std.Dev.", "Corr")]
    for _, row in vc[vc["var2"].isna()].iterrows():
        table.append(
            (
                str(row.grp),
                "" if pd.isna(row.var1) else str(row.var1),
                f"{row.vcov:.4g}",
                f"{row.sdcor:.4g}",
                "",
            )
        )
    for _, row in vc[vc["var2"].notna()].iterrows():
        for i, tr in enumerate(table):
            if tr[0] == row.grp and tr[1] == row.var2:
                table[i] = tr[:4] + ((tr[4] + f" {row.sdcor:5.2f}").strip(),)
    widths = [max(len(tr[i]) for tr in table) for i in range(5)]
    last = None
    for tr in table:
        grp = tr[0] if tr[0] != last else ""
        last = tr[0]
        lines.append(
            " "
            + "  ".join(
                (grp if i == 0 else tr[i]).ljust(widths[i]) if i < 2 else tr[i].rjust(widths[i])
                for i in range(5)
            ).rstrip()
        )
    ng = "; ".join(f"{k}, {v}" for k, v in res.ngroups.items())
    lines += [f"Number of obs: {res.nobs}, groups:  {ng}", "", "Fixed effects:"]
    fe = pd.DataFrame(
        {
            "Estimate": res.fe_params,
            "Std. Error": res.bse_fe,
            "t value": res.fe_params / res.bse_fe,
        }
    )
    lines.append(fe.to_string(float_format=lambda v: f"{v:.5g}"))
    if res.is_singular:
        lines += ["", "boundary (singular) fit: see help('isSingular')"]
    for m in res.optsum.messages:
        lines.append(f"note: {m}")
    return "\n".join(lines)
