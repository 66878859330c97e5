"""The results object users hold: a fit's estimates with analysis and display methods.

`MixedLMResults` is a `sparselme.model.results.ModelFit` (the computed
estimates and the engine handle) with the methods that call the analysis layer
(`sparselme.analysis`) and the plots (`sparselme.plotting`): ``confint``,
``profile``, ``bootstrap``, ``predict``, ``simulate``, ``coef_table``, ``anova``,
``summary``, ``plot_diagnostics``, ``plot_ranef``.
"""

from __future__ import annotations

import pandas as pd

from ..model.results import ModelFit
from .summary import lme4_summary

__all__ = ["MixedLMResults"]


class MixedLMResults(ModelFit):
    """Results of a linear mixed-model fit (see `sparselme.model.results.ModelFit`)."""

    # ---- printing -------------------------------------------------------------------------
    def summary(self) -> str:
        """An lme4-style printout of the fit.

        Returns
        -------
        str
            lme4's ``summary(m)`` layout: the criterion, scaled residuals, the variance
            components, the number of observations and groups, the fixed effects.
        """
        return lme4_summary(self)

    def __repr__(self) -> str:
        return f"<MixedLMResults {self.method} nobs={self.nobs} logLik={self.llf:.4f}>"

    # ---- plots (matplotlib, the optional extra ``plot``) --------------------------------
    def plot_diagnostics(self, **kwargs):
        """Residuals against fitted values and normal QQ plots (needs matplotlib).

        Parameters
        ----------
        **kwargs
            Passed to `sparselme.plotting.plot_diagnostics` (``fig``: draw on this figure).

        Returns
        -------
        matplotlib.figure.Figure
            Three panels: residuals vs fitted, QQ plot of the standardized residuals, QQ
            plots of the standardized conditional modes.
        """
        from .. import plotting

        return plotting.plot_diagnostics(self, **kwargs)

    def plot_ranef(self, **kwargs):
        """Caterpillar plot of the conditional modes (lme4's ``dotplot(ranef(m))``).

        Parameters
        ----------
        **kwargs
            Passed to `sparselme.plotting.plot_ranef`: ``level`` (default 0.95) of the
            prediction intervals, ``groups`` (the grouping factors to draw), ``fig``.

        Returns
        -------
        matplotlib.figure.Figure
            One row of panels per grouping factor, one panel per random-effect column.
        """
        from .. import plotting

        return plotting.plot_ranef(self, **kwargs)

    # ---- inference and prediction -----------------------------------------------------------
    def coef_table(self, ddf: str = "Satterthwaite") -> pd.DataFrame:
        """t tests of the fixed effects (lmerTest's ``summary(m)`` coefficient table).

        Parameters
        ----------
        ddf : {"Satterthwaite", "Kenward-Roger", "normal"}, default "Satterthwaite"
            Denominator degrees of freedom; Kenward-Roger also adjusts the standard errors
            (REML fits only); "normal" gives z tests.

        Returns
        -------
        pandas.DataFrame
            One row per fixed effect: Estimate, Std. Error, df, t value, Pr(>|t|).
        """
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
        likelihood-ratio table (``names``, ``refit``); see `sparselme.analysis.inference`."""
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
        """Confidence intervals in lme4's layout (lme4's ``confint(m)``).

        Parameters
        ----------
        parm : str or list of str, optional
            Parameter names, or ``"theta_"`` (the variance parameters) or ``"beta_"``
            (the fixed effects). Default: all.
        level : float, default 0.95
            Confidence level.
        method : {"profile", "wald", "boot"}, default "profile"
            Likelihood-profile intervals (ML deviance; REML fits are refit by ML), Wald
            intervals (fixed effects only, NaN for the variance parameters), or parametric
            bootstrap percentiles.
        **kwargs
            For ``"boot"``: ``nsim`` (default 500), ``seed`` and the other keywords of
            `bootstrap`.

        Returns
        -------
        pandas.DataFrame
            Rows sd_/cor_ of each term, sigma, then the fixed effects; columns the lower
            and upper limits (``"2.5 %"``, ``"97.5 %"`` at level 0.95).
        """
        from ..analysis import profile

        return profile.confint(self, parm, level=level, method=method, **kwargs)

    def profile(self, which=None, **kwargs):
        """Likelihood profiles of the ML deviance (lme4's ``profile(m)``).

        Parameters
        ----------
        which : str or list of str, optional
            Parameter names, or ``"theta_"`` / ``"beta_"``. Default: all.
        **kwargs
            ``alphamax`` (default 0.01): each trace steps out until |ζ| exceeds the square
            root of the 1 − alphamax quantile of χ² with npar degrees of freedom;
            ``maxpts`` (default 100): at most that many points on each side.

        Returns
        -------
        Profile
            ``trace`` (one row per point: parameter, value, ζ and every parameter),
            ``confint(level)`` and ``plot()``.
        """
        from ..analysis import profile

        return profile.profile(self, which, **kwargs)

    def bootstrap(self, nsim: int = 500, func=None, seed=None, **kwargs):
        """Parametric bootstrap (lme4's ``bootMer``): simulate from the fit, refit.

        Parameters
        ----------
        nsim : int, default 500
            Number of replicates.
        func : callable, optional
            Maps a fit to a number, array or named Series. Default: the estimates in
            lme4's parametrization (sd_/cor_, sigma, fixed effects).
        seed : int, optional
            Makes the replicates reproducible, whatever ``n_jobs``.
        **kwargs
            ``use_u`` (keep the conditional modes), ``n_jobs`` (processes; -1 for all
            cores), ``verbose`` (progress bar).

        Returns
        -------
        BootstrapResult
            The replicates ``t`` and ``confint()``, ``summary()``.
        """
        from ..analysis import resampling

        return resampling.bootstrap(self, nsim, func, seed, **kwargs)

    def predict(
        self, newdata=None, re_form=None, allow_new_levels: bool = False, offset=None
    ) -> pd.Series:
        """lme4's predictions with random effects (``predict.predict``)."""
        from ..analysis import predict

        return predict.predict(self, newdata, re_form, allow_new_levels, offset)

    def simulate(
        self,
        nsim: int = 1,
        seed=None,
        use_u: bool = False,
        re_form="~0",
        newdata=None,
        allow_new_levels: bool = False,
        offset=None,
    ) -> pd.DataFrame:
        """Responses simulated from the fit (columns sim_1...; ``predict.simulate``).

        ``re_form``, ``newdata``, ``allow_new_levels`` and ``offset`` as in lme4.
        """
        from ..analysis import predict

        return predict.simulate(
            self, nsim, seed, use_u, re_form, newdata, allow_new_levels, offset
        )
