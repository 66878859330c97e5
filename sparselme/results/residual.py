"""Results of a fit with a residual structure: ρ with standard errors, summary block."""

from __future__ import annotations

from functools import cached_property

import numpy as np
import pandas as pd

from ..residual_covariance.model import ResidualModel, residual_covariance
from ..residual_covariance.structures import BoundVarIdent, ResidualSpec
from .mixed import MixedLMResults
from .report import Section, Summary, lme4_sections
from .summary import lme4_summary

__all__ = ["ResidualMixedLMResults"]


class ResidualMixedLMResults(MixedLMResults):
    """Results of a fit with a residual structure: ρ (δ's or φ) with standard errors.

    ``residual_params``, ``residual_bse``, ``residual_cov``, ``residual_table()``; ``npar``
    counts ρ. Every evaluation through the engine is at this fit's (θ, ρ), so several
    fits may share one model. Inference on θ (profiles, bootstrap, Kenward-Roger) is not
    available with a residual structure.
    """

    engine: ResidualModel

    @cached_property
    def residual_cov(self) -> np.ndarray:
        """(n_rho, n_rho) covariance of the residual parameters (finite-difference Hessian)."""
        return residual_covariance(self)

    @property
    def _rho(self) -> np.ndarray:
        return self.params_all[self.engine.n_theta :]

    @property
    def _structure(self):
        return self.engine.structure

    @property
    def residual(self) -> ResidualSpec:
        return self.engine.residual

    @property
    def residual_params(self) -> pd.Series:
        """Estimated δ's (stratum SD ratios to the first level) or φ."""
        return pd.Series(self._rho, index=self._structure.names, name="residual_params")

    @property
    def residual_bse(self) -> pd.Series:
        """Standard errors of `residual_params` (finite-difference Hessian)."""
        se = np.sqrt(np.diag(self.residual_cov))
        return pd.Series(se, index=self._structure.names, name="residual_bse")

    def residual_table(self, level: float = 0.95) -> pd.DataFrame:
        """Estimate, Std. Error and a Wald interval on the optimizer's scale mapped back."""
        s = self._structure
        est, se = self._rho, np.sqrt(np.diag(self.residual_cov))
        eta = s.to_free(est)
        h = 1e-6 * np.maximum(np.abs(eta), 1.0)
        slope = (s.from_free(eta + h) - s.from_free(eta - h)) / (2 * h)
        from scipy import stats

        z = stats.norm.ppf(0.5 + level / 2)
        lo, hi = s.from_free(eta - z * se / slope), s.from_free(eta + z * se / slope)
        a = 100 * (1 - level) / 2
        return pd.DataFrame(
            {"Estimate": est, "Std. Error": se, f"{a:g} %": lo, f"{100 - a:g} %": hi},
            index=s.names,
        )

    def summary(self, correlation: bool | None = None) -> Summary:
        """lme4's layout with a block for the residual structure before the fixed effects
        (``correlation`` as in `MixedLMResults.summary`)."""
        head, table = residual_frame(self)
        extra = [Section(head, table=table)]
        text = with_residual_block(lme4_summary(self, correlation), self)
        return Summary(text, lambda: lme4_sections(self, extra, correlation))

    def __repr__(self) -> str:
        rho = ", ".join(f"{k}={v:.4g}" for k, v in self.residual_params.items())
        head = f"<ResidualMixedLMResults {self.method} nobs={self.nobs}"
        return f"{head} logLik={self.llf:.4f} {rho}>"

    # ---- what assumes iid residuals -----------------------------------------------------
    def _unsupported(self, what: str):
        raise NotImplementedError(
            f"{what} is not available for fits with a residual structure ({self.residual})"
        )

    def simulate(self, *args, **kwargs):
        self._unsupported("simulate()")

    def bootstrap(self, *args, **kwargs):
        self._unsupported("bootstrap()")

    def profile(self, *args, **kwargs):
        self._unsupported("profile()")

    def confint(self, parm=None, level: float = 0.95, method: str = "profile", **kwargs):
        """Wald intervals of the fixed effects only (``method="wald"``)."""
        if str(method).lower() != "wald":
            self._unsupported(f"confint(method={method!r})")
        return super().confint(parm, level=level, method=method, **kwargs)

    def coef_table(self, ddf: str = "Satterthwaite"):
        """t tests of β; Satterthwaite's df hold ρ at its estimate."""
        if ddf == "Kenward-Roger":
            self._unsupported("Kenward-Roger")
        return super().coef_table(ddf)

    def anova(self, *others, type=None, ddf=None, names=None, refit=None):  # noqa: A002
        """F tests (Satterthwaite, ρ held at its estimate) or the likelihood-ratio table."""
        if ddf == "Kenward-Roger" and not others:
            self._unsupported("Kenward-Roger")
        return super().anova(*others, type=type, ddf=ddf, names=names, refit=refit)


def residual_frame(res: ResidualMixedLMResults) -> tuple[str, pd.DataFrame]:
    """(heading, table of strings) of the residual structure's estimates (the reference δ
    as 1)."""
    s = res._structure
    table = res.residual_table()
    cells = [[f"{v:.5g}" for v in row] for row in table.to_numpy()]
    names = list(table.index)
    if isinstance(s, BoundVarIdent):
        cells.insert(0, ["1", "(fixed)", "", ""])
        names.insert(0, s.levels[0])
    frame = pd.DataFrame(cells, index=names, columns=table.columns)
    return f"Residual structure: {s.describe()}", frame


def residual_block(res: ResidualMixedLMResults) -> list[str]:
    """Lines describing the residual structure and its estimates (the reference δ as 1)."""
    head, frame = residual_frame(res)
    return [head] + [" " + line for line in frame.to_string().splitlines()]


def with_residual_block(text: str, res: ResidualMixedLMResults) -> str:
    """lme4-style summary text with `residual_block` before "Fixed effects:"."""
    lines = text.splitlines()
    at = next((i for i, line in enumerate(lines) if line.startswith("Fixed effects:")), len(lines))
    return "\n".join(lines[:at] + residual_block(res) + [""] + lines[at:])
