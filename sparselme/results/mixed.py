"""The results object users hold: a fit's estimates with analysis and display methods.

:class:`MixedLMResults` is a :class:`~sparselme.model.results.ModelFit` (the computed
estimates and the engine handle) with the methods that call the analysis layer
(:mod:`sparselme.analysis`) and the plots (:mod:`sparselme.plotting`): ``confint``,
``profile``, ``bootstrap``, ``predict``, ``simulate``, ``coef_table``, ``anova``,
``summary``, ``plot_diagnostics``, ``plot_ranef``.
"""

from __future__ import annotations

import pandas as pd

from ..model.results import ModelFit
from .summary import lme4_summary

__all__ = ["MixedLMResults"]


class MixedLMResults(ModelFit):
    """Results of a linear mixed-model fit (see :class:`~sparselme.model.results.ModelFit`)."""

    # ---- printing -------------------------------------------------------------------------
    def summary(self) -> str:
        """An lme4-style printout of the fit."""
        return lme4_summary(self)

    def __repr__(self) -> str:
        return f"<MixedLMResults {self.method} nobs={self.nobs} logLik={self.llf:.4f}>"

    # ---- plots (matplotlib, the optional extra ``plot``) --------------------------------
    def plot_diagnostics(self, **kwargs):
        """Residuals vs fitted, QQ plots; see :func:`sparselme.plotting.plot_diagnostics`."""
        from .. import plotting

        return plotting.plot_diagnostics(self, **kwargs)

    def plot_ranef(self, **kwargs):
        """Caterpillar plot of the random effects; see :func:`sparselme.plotting.plot_ranef`."""
        from .. import plotting

        return plotting.plot_ranef(self, **kwargs)

    # ---- inference and prediction -----------------------------------------------------------
    def coef_table(self, ddf: str = "Satterthwaite") -> pd.DataFrame:
        """t tests of the fixed effects with lmerTest's df (``inference.coef_table``)."""
        from ..analysis import inference

        return inference.coef_table(self, ddf)

    def anova(
        self,
        *others,
        type: int | str | None = None,  # noqa: A002
        ddf: str | None = None,
        names=None,
        refit: bool | None = None,
    ):
        """F tests of the fixed-effect terms (``type``, ``ddf``), or with other fits the
        likelihood-ratio table (``names``, ``refit``); see :mod:`sparselme.analysis.inference`."""
        from ..analysis import inference

        if others:
            if type is not None or ddf is not None:
                raise TypeError("anova(): type and ddf apply to the F tests of a single fit")
            refit = True if refit is None else refit
            return inference.anova(self, *others, names=names, refit=refit)
        if names is not None or refit is not None:
            raise TypeError("anova(): names and refit apply to comparisons with other fits")
        return inference.f_tests(self, 3 if type is None else type, ddf or "Satterthwaite")

    def confint(self, parm=None, level: float = 0.95, method: str = "profile", **kwargs):
        """Profile, Wald or bootstrap intervals in lme4's layout (``profile.confint``)."""
        from ..analysis import profile

        return profile.confint(self, parm, level=level, method=method, **kwargs)

    def profile(self, which=None, **kwargs):
        """Likelihood profiles (traces, ``confint()``, ``plot()``; ``profile.profile``)."""
        from ..analysis import profile

        return profile.profile(self, which, **kwargs)

    def bootstrap(self, nsim: int = 500, func=None, seed=None, **kwargs):
        """Parametric bootstrap (``resampling.bootstrap``)."""
        from ..analysis import resampling

        return resampling.bootstrap(self, nsim, func, seed, **kwargs)

    def predict(
        self, newdata=None, re_form=None, allow_new_levels: bool = False, offset=None
    ) -> pd.Series:
        """lme4's predictions with random effects (``predict.predict``)."""
        from ..analysis import predict

        return predict.predict(self, newdata, re_form, allow_new_levels, offset)

    def simulate(self, nsim: int = 1, seed=None, use_u: bool = False) -> pd.DataFrame:
        """Responses simulated from the fit (columns sim_1...; ``predict.simulate``)."""
        from ..analysis import predict

        return predict.simulate(self, nsim, seed, use_u)
