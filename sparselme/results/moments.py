"""Results of a fit by the method of moments (``lmer(..., estimator="moments")``).

`MomentsResults` is a `MixedLMResults`: the same names give the estimates
(``fe_params``/``fixef``, ``bse_fe``, ``vcov()``, ``varcorr``, ``theta``, ``sigma``,
``ranef()`` (conditional modes), ``fittedvalues``, ``resid``, ``predict()``,
``coef_table(ddf="normal")``, ``confint(method="wald")``, ``summary()``). The variance
components are moment estimates, β̂ the GLS estimate given them, its covariance
(XᵀV̂⁻¹X)⁻¹ and the conditional modes the BLUPs at those components
(`sparselme.moments`). There is no likelihood: everything that needs one — logLik,
deviance, AIC/BIC, likelihood-ratio tests, profiles, Satterthwaite or Kenward–Roger
degrees of freedom, conditional variances, the parametric bootstrap, refits — raises
`sparselme.errors.NoLikelihoodError` (or `sparselme.errors.EstimatorError` for what
needs the rows or the exact engine), never a number from another method.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import EstimatorError, NoLikelihoodError
from ..model.results import RandomEffects
from .mixed import MixedLMResults
from .report import Section, Summary, _text_table, random_effects_table

__all__ = ["MomentsResults", "ESTIMATOR_DESCRIPTION"]

#: what the summary says produced the fit
ESTIMATOR_DESCRIPTION = "method of moments + GLS; no likelihood"

_NO_LIKELIHOOD = (
    "a fit by estimator='moments' has no likelihood (method of moments + GLS), so it has "
    "no {what}; refit with estimator='exact' where that is feasible"
)


def _no_likelihood(what: str) -> NoLikelihoodError:
    return NoLikelihoodError(_NO_LIKELIHOOD.format(what=what))


def _unavailable(what: str) -> EstimatorError:
    return EstimatorError(
        f"{what} is not available for a fit by estimator='moments' (it needs the exact "
        "engine); refit with estimator='exact' where that is feasible"
    )


@dataclass(frozen=True)
class MomentsSolution:
    """What the analysis layer reads from a solution: β̂ (p,) and θ (K,)."""

    beta: np.ndarray
    theta: np.ndarray


class MomentsResults(MixedLMResults):
    """A crossed random-intercepts fit by moments + GLS (see the module docstring).

    Attributes beyond `MixedLMResults`'s: ``estimator`` ("moments"), ``moments`` (the
    `sparselme.moments.MomentsFit`: standard errors of the components ``sigma2_se``,
    the OLS comparison ``bse_ols``, passes, GLS iterations, diagnostics).
    """

    estimator = "moments"
    ddf = "normal"  # z tests: no Satterthwaite / Kenward-Roger without a likelihood

    def __init__(self, engine, name_style: str = "r"):
        fit = engine.fit
        K = len(engine.design.terms)
        s2 = np.asarray(fit.sigma2, dtype=float)
        self.engine = engine
        self.moments = fit
        self.reml = False
        self.optsum = None
        self.name_style = name_style
        theta = np.sqrt(s2[:K] / s2[K])
        self.params_all = theta
        self.solution = MomentsSolution(np.asarray(fit.beta, dtype=float), theta)
        self.cache = {}

    # ---- what produced the fit -----------------------------------------------------------
    @property
    def method(self) -> str:
        return "moments"

    @property
    def scale(self) -> float:
        """Residual variance σ² (its moment estimate)."""
        return float(self.moments.sigma2[-1])

    @property
    def sigma(self) -> float:
        return math.sqrt(self.scale)

    @property
    def npar(self) -> int:
        return self.k_fe + len(self.theta) + 1

    @property
    def block_params(self) -> pd.Series:
        """No parameter blocks beyond θ (an empty Series)."""
        return pd.Series([], dtype=float)

    def term_thetas(self) -> list[np.ndarray]:
        return [self.theta[i : i + 1] for i in range(len(self.terms))]

    @property
    def is_singular(self) -> bool:
        """A variance component estimated as 0 (a negative moment solution set to 0)."""
        return bool(np.any(self.moments.sigma2[:-1] <= 0))

    @property
    def converged(self) -> bool:
        """Whether the GLS solve met its tolerance."""
        return bool(self.moments.converged)

    @property
    def varcorr_se(self) -> pd.Series:
        """Estimated standard errors of the variance components (Residual last)."""
        se = self.moments.sigma2_se
        names = [t.name for t in self.terms] + ["Residual"]
        values = np.full(len(names), np.nan) if se is None else se
        return pd.Series(values, index=names, name="vcov_se")

    # ---- fixed effects -----------------------------------------------------------------
    @property
    def cov_fe(self) -> np.ndarray:
        """(p, p) (XᵀV̂⁻¹X)⁻¹ at the moment estimates of the components."""
        return np.asarray(self.moments.beta_cov, dtype=float)

    @property
    def bse_ols(self) -> pd.Series:
        """Naive OLS standard errors (random effects ignored), for comparison only."""
        return pd.Series(self.moments.bse_ols, index=self.exog_names, name="bse_ols")

    def coef_table(self, ddf: str = "normal") -> pd.DataFrame:
        """z tests of the fixed effects (``ddf="normal"``; other ddf need a likelihood)."""
        if ddf.lower() != "normal":
            raise _no_likelihood(f"{ddf} denominator degrees of freedom (use ddf='normal')")
        return super().coef_table("normal")

    # ---- random effects and rows ----------------------------------------------------------
    def b_blocks(self) -> list[np.ndarray]:
        return [np.asarray(m, dtype=float).reshape(-1, 1) for m in self.moments.modes]

    @property
    def condvar_blocks(self):
        raise _no_likelihood("conditional variances of the random effects (condvar)")

    def ranef(self, condvar: bool = False) -> RandomEffects:
        """Conditional modes (BLUPs at the moment estimates); ``condvar=True`` raises
        NoLikelihoodError."""
        if condvar:
            raise _no_likelihood("conditional variances of the random effects (condvar)")
        return super().ranef(condvar=False)

    def _rows(self, what: str):
        key = f"rows_{what}"
        if key not in self.cache:
            col = self.engine.fitted_values(self.solution.beta, self.b_blocks())
            if what == "resid":
                col = self.engine.response() - col
            if self.engine.in_memory:  # a Series on the data's index, as the exact fit's
                parts = list(col.iter_chunks())
                col = pd.concat(parts) if parts else pd.Series(dtype=float)
                col.name = "fittedvalues" if what == "fitted" else "resid"
            self.cache[key] = col
        return self.cache[key]

    @property
    def fittedvalues(self):
        """Xβ̂ + Zb̂ of the fitted rows (computed chunk by chunk; a Series for data in
        memory, a `sparselme.streaming.StreamedColumn` for streamed data)."""
        return self._rows("fitted")

    @property
    def resid(self):
        """Response residuals y − fitted (see `fittedvalues`)."""
        return self._rows("resid")

    def residuals(self, type: str = "response", scaled: bool = False):  # noqa: A002
        """Residuals ("response"/"working" or, without weights the same, "pearson"/
        "deviance"), over σ if ``scaled``."""
        if type not in ("response", "working", "pearson", "deviance"):
            raise ValueError(f"type must be response, working, pearson or deviance, not {type!r}")
        r = self.resid
        return r / self.sigma if scaled else r

    def predict(self, newdata=None, re_form=None, allow_new_levels: bool = False, offset=None,
                **kwargs):
        """Fitted values of the fitted rows (``newdata=None``; ``re_form=None`` with the
        random effects). Predictions for new data and their intervals need the exact fit."""
        if newdata is not None or re_form is not None or offset is not None or kwargs:
            raise _unavailable("predict() with newdata, re_form, offset or intervals")
        return self.fittedvalues

    # ---- printing -----------------------------------------------------------------------
    def _sections(self, correlation: bool | None = None) -> list[Section]:
        d = self.design
        fit = self.moments
        formula = d.parsed.text if d.parsed is not None else ""
        re = random_effects_table(self)
        se = self.varcorr_se
        re["Var.Std.Err"] = [f"{v:.3g}" for v in se.to_numpy()]
        coef = self.coef_table()
        fe = pd.DataFrame(
            {
                "Estimate": coef["Estimate"].map(lambda v: f"{v:.5g}"),
                "Std. Error": coef["Std. Error"].map(lambda v: f"{v:.5g}"),
                "z value": coef["t value"].map(lambda v: f"{v:.5g}"),
                "Pr(>|z|)": coef["Pr(>|t|)"].map(lambda v: f"{v:.3g}"),
                "OLS s.e.": self.bse_ols.map(lambda v: f"{v:.3g}"),
            }
        )
        ng = "; ".join(f"{k}, {v}" for k, v in self.ngroups.items())
        notes = [
            f"{fit.passes} passes over the data; GLS solve: {fit.iterations} iterations"
            + ("" if fit.converged else " (did not converge)"),
            "No likelihood: no logLik, AIC/BIC, likelihood-ratio tests, profiles or "
            "conditional variances; z tests and Wald intervals.",
        ]
        if fit.diagnostics.get("clipped"):
            notes.append(
                "negative moment estimates set to 0: " + ", ".join(fit.diagnostics["clipped"])
            )
        return [
            Section(f"Linear mixed model fit by {ESTIMATOR_DESCRIPTION}", lines=[
                f"Formula: {formula}",
                f"Variance components: moment estimates ({fit.method}); fixed effects: "
                "GLS given them",
            ]),
            Section("Random effects:", table=re, index=False),
            Section("", lines=[f"Number of obs: {self.nobs}, groups:  {ng}"]),
            Section("Fixed effects:", table=fe),
            Section("", lines=notes),
        ]

    def summary(self, correlation: bool | None = None) -> Summary:
        """The fit's printout: which estimator produced it, the variance components (with
        their standard errors), the fixed effects (z tests; OLS standard errors beside
        them for comparison)."""
        sections = self._sections(correlation)
        return Summary(_text(sections), lambda: sections)

    def __str__(self) -> str:
        return str(self.summary())

    def _repr_html_(self) -> str:
        return self.summary().as_html()

    def __repr__(self) -> str:
        return f"<MomentsResults moments nobs={self.nobs} sigma={self.sigma:.4g}>"

    # ---- intervals ------------------------------------------------------------------------
    def confint(self, parm=None, level: float = 0.95, method: str = "profile", **kwargs):
        """Wald intervals of the fixed effects (``method="wald"``); the profile and the
        bootstrap need a likelihood (NoLikelihoodError)."""
        if method.lower() != "wald":
            raise _no_likelihood(f"{method} confidence intervals (use method='wald')")
        return super().confint(parm, level=level, method="wald", **kwargs)

    # ---- what needs a likelihood ----------------------------------------------------------
    @property
    def llf(self):
        raise _no_likelihood("log-likelihood")

    @property
    def deviance(self):
        raise _no_likelihood("deviance")

    @property
    def reml_criterion(self):
        raise _no_likelihood("REML criterion")

    @property
    def AIC(self):  # noqa: N802 - lme4's name
        raise _no_likelihood("AIC")

    @property
    def BIC(self):  # noqa: N802 - lme4's name
        raise _no_likelihood("BIC")

    @property
    def aic(self):
        raise _no_likelihood("AIC")

    @property
    def bic(self):
        raise _no_likelihood("BIC")

    def anova(self, *others, **kwargs):
        raise _no_likelihood("likelihood-ratio or F tests with estimated degrees of freedom")

    def profile(self, which=None, **kwargs):
        raise _no_likelihood("likelihood profile")

    def bootstrap(self, nsim: int = 500, func=None, seed=None, **kwargs):
        raise _no_likelihood("parametric bootstrap (it refits by likelihood)")

    def drop1(self, test: str = "F", ddf: str = "Satterthwaite"):
        raise _no_likelihood("single-term deletion tests")

    def ranova(self):
        raise _no_likelihood("likelihood-ratio tests of the random effects")

    def save_optsum(self, fname) -> None:
        raise _no_likelihood("optimizer record")

    def simulate(self, *args, **kwargs):
        raise _unavailable("simulate()")

    def hatvalues(self):
        raise _unavailable("hatvalues()")

    def cooks_distance(self):
        raise _unavailable("cooks_distance()")

    def rstudent(self):
        raise _unavailable("rstudent()")

    def influence(self, *args, **kwargs):
        raise _unavailable("influence()")

    def update(self, *args, **kwargs):
        raise _unavailable("update()")

    def refit(self, newresp):
        raise _unavailable("refit()")

    def plot_diagnostics(self, **kwargs):
        raise _unavailable("plot_diagnostics()")

    def plot_ranef(self, **kwargs):
        raise _no_likelihood("conditional variances for the caterpillar plot")


def _text(sections: list[Section]) -> str:
    lines: list[str] = []
    for s in sections:
        if s.heading:
            lines.append(s.heading)
        lines.extend(s.lines)
        if s.table is not None:
            table = s.table if not s.index else s.table.reset_index(names="")
            lines.extend(_text_table(table))
        lines.append("")
    return "\n".join(lines).rstrip()
