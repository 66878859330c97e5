"""The results object users hold: a fit's estimates with analysis and display methods.

`MixedLMResults` is a `sparselme.model.results.ModelFit` (the computed
estimates and the engine handle) with the methods that call the analysis layer
(`sparselme.analysis`) and the plots (`sparselme.plotting`): ``confint``,
``profile``, ``bootstrap``, ``predict``, ``simulate``, ``coef_table``, ``anova``,
``summary``, ``plot_diagnostics``, ``plot_ranef``.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..model.results import ModelFit
from . import storage
from .report import Summary, lme4_sections, overview, overview_text
from .summary import lme4_summary

if TYPE_CHECKING:
    from ..analysis import diagnostics

__all__ = ["MixedLMResults"]


class MixedLMResults(ModelFit):
    """Results of a linear mixed-model fit (see `sparselme.model.results.ModelFit`).

    Besides lme4's names, the fixed effects have statsmodels' ``params``, ``bse``,
    ``tvalues`` and ``pvalues`` (t tests with ``ddf`` degrees of freedom, Satterthwaite's
    by default, as lmerTest). Row outputs (``fittedvalues``, ``resid``) are Series on the
    data's index; ``na_action`` says how rows dropped before the fit appear in them.
    """

    #: denominator degrees of freedom of ``pvalues``: "Satterthwaite", "Kenward-Roger" or
    #: "normal" (see `coef_table`)
    ddf = "Satterthwaite"
    #: rows dropped before the fit (``missing="drop"``): "omit" leaves them out of
    #: ``fittedvalues``/``resid`` (R's na.omit); "exclude" gives NaN there (R's na.exclude)
    na_action = "omit"
    #: what produced the estimates: "exact" (REML/ML) here, "moments" in
    #: `sparselme.results.moments.MomentsResults`
    estimator = "exact"
    #: with ``estimator="auto"``: why that estimator was chosen (None otherwise)
    estimator_reason: str | None = None

    # ---- printing -------------------------------------------------------------------------
    def summary(self, correlation: bool | None = None) -> Summary:
        """An lme4-style printout of the fit.

        Parameters
        ----------
        correlation : bool, optional
            Print the "Correlation of Fixed Effects" block; by default when there are at
            most 12 fixed effects, as lme4 does.

        Returns
        -------
        Summary
            lme4's ``summary(m)`` layout: the criterion, scaled residuals, the variance
            components, the number of observations and groups, the fixed effects and
            their correlations (``correlation``: None shows them for at most 12 fixed effects).
            ``print()`` and ``str()`` give the text; ``as_html()``, ``as_latex()`` the same
            tables in HTML and LaTeX (Jupyter shows the HTML).
        """
        return Summary(
            lme4_summary(self, correlation), lambda: lme4_sections(self, correlation=correlation)
        )

    # ---- statsmodels' names for the fixed effects ---------------------------------------
    @property
    def params(self) -> pd.Series:
        """The fixed-effects estimates (lme4's ``fixef``)."""
        return self.fe_params.rename("params")

    def _coef_table(self) -> pd.DataFrame:
        from ..analysis import inference

        key = ("coef_table", self.ddf)
        if key not in self.cache:
            self.cache[key] = inference.coef_table(self, self.ddf)
        return self.cache[key]

    @property
    def bse(self) -> pd.Series:
        """Standard errors of the fixed effects (Kenward-Roger's adjusted ones when ``ddf``
        is "Kenward-Roger")."""
        if self.ddf == "Kenward-Roger":
            return self._coef_table()["Std. Error"].rename("bse")
        return self.bse_fe.rename("bse")

    @property
    def tvalues(self) -> pd.Series:
        """t statistics of the fixed effects, ``params / bse``."""
        return (self.params / self.bse).rename("tvalues")

    @property
    def pvalues(self) -> pd.Series:
        """Two-sided p-values of the fixed effects' t tests with ``ddf`` degrees of freedom
        (lmerTest's ``Pr(>|t|)``)."""
        return self._coef_table()["Pr(>|t|)"].rename("pvalues")

    # ---- row outputs ----------------------------------------------------------------------
    def rows_series(self, values, name: str | None = None):
        """An (n,) output for the fitted rows as a Series on the data's index; with
        ``na_action == "exclude"`` NaN-padded to every row given (R's ``naresid``).
        Streamed fits (no rows held) get ``values`` back."""
        d = self.design
        if d.row_index is None or not isinstance(values, (np.ndarray, pd.Series)):
            return values
        out = pd.Series(np.asarray(values, dtype=float), index=d.row_index, name=name)
        if self.na_action == "exclude" and d.data_index is not None:
            out = out.reindex(d.data_index)
        elif self.na_action not in ("omit", "exclude"):
            raise ValueError(f"na_action must be 'omit' or 'exclude', not {self.na_action!r}")
        return out

    def _fitted_array(self):
        if "fitted_rows" not in self.cache:
            self.cache["fitted_rows"] = ModelFit.fittedvalues.func(self)
        return self.cache["fitted_rows"]

    @property
    def fittedvalues(self):
        """Xβ + Zb (+ offset) of the fitted rows (see ``na_action``)."""
        return self.rows_series(self._fitted_array(), "fittedvalues")

    @property
    def resid(self):
        """Response residuals y − fitted (see ``na_action``)."""
        fitted = self._fitted_array()
        if self.design.row_index is None:  # streamed: computed chunk by chunk
            return self.engine.response() - fitted
        return self.rows_series(self.engine.response() - fitted, "resid")

    def __repr__(self) -> str:
        return f"<MixedLMResults {self.method} nobs={self.nobs} logLik={self.llf:.4f}>"

    # ---- saving ----------------------------------------------------------------------------
    def save(self, fname) -> None:
        """Pickle the results to ``fname`` (a path or a binary file), statsmodels' ``save``.

        `sparselme.load` (or ``MixedLMResults.load``) reads them back; a pickle needs a
        compatible version of sparselme. `save_optsum` writes a portable record instead.
        """
        storage.save(self, fname)

    @classmethod
    def load(cls, fname):
        """Results saved with `save` (unpickled: load only files you trust)."""
        return storage.load(fname)

    def save_optsum(self, fname) -> None:
        """Write the optimizer's summary as JSON (MixedModels.jl's ``saveoptsum``).

        Parameters
        ----------
        fname : str, os.PathLike or text file object
            Where to write. The record holds θ (and any further parameters), β, σ, the
            criterion, the evaluation count and log (``keep_log=True``), the settings and
            the versions, and what identifies the data; no data and no code.

        Notes
        -----
        ``sl.lmer(formula, data, optsum=fname)`` or ``model.restore_optsum(fname)`` give
        the fit back on the same data without optimizing; other data are refused.
        """
        storage.save_optsum(self, fname)

    def __str__(self) -> str:
        """lme4's ``print(m)``: the criterion, standard deviations and fixed effects."""
        return overview_text(self)

    def _repr_html_(self) -> str:
        return overview(self).as_html()

    @property
    def sdcor(self) -> pd.Series:
        """The variance parameters as ``confint`` and ``profile`` name them, then σ.

        Per term its standard deviations and correlations in lme4's parametrization, or
        a covariance structure's own parameters (the AR(1) ``rho_``, the compound-symmetry
        ``cor_``, the Toeplitz band ``cor_lag1_``..., the loadings ``load1_``... of ``rr``).
        """
        from ..analysis import profile

        values = profile.parameter_vector(self)
        return values.iloc[: len(values) - self.k_fe]

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
        **named,
    ):
        """F tests of the fixed-effect terms (``type``, ``ddf``), or with other fits the
        likelihood-ratio table (``names``, ``refit``; other fits by keyword name their
        rows); see `sparselme.analysis.inference`."""
        from ..analysis import inference

        if others or named:
            if type is not None or ddf is not None:
                raise TypeError("anova(): type and ddf apply to the F tests of a single fit")
            refit = True if refit is None else refit
            if names is None:
                names = inference.caller_names((self, *others), sys._getframe(1)) + list(named)
            return inference.anova(self, *others, names=names, refit=refit, **named)
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
            ``maxpts`` (default 100): at most that many points on each side; ``verbose``:
            a progress bar over the parameters (None: only when someone watches and it
            takes more than a couple of seconds; see `sparselme.progress`).

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
        self,
        newdata=None,
        re_form=None,
        allow_new_levels: bool = False,
        offset=None,
        *,
        random_only: bool = False,
        se_fit: bool = False,
        interval: str | None = None,
        level: float = 0.95,
    ) -> pd.Series | pd.DataFrame:
        """lme4's predictions with random effects (``predict.predict``), and their exact
        standard errors and intervals given θ (``intervals.predict``).

        ``random_only``: Zb alone (lme4's ``random.only``). ``se_fit``, ``interval``
        ("confidence" or "prediction") and ``level`` return a DataFrame with columns
        fit, se_fit, lwr, upr.
        """
        from ..analysis import intervals

        return intervals.predict(
            self, newdata, re_form, allow_new_levels, offset,
            random_only=random_only, se_fit=se_fit, interval=interval, level=level,
        )

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

    # ---- diagnostics (lme4's methods; ``sparselme.analysis.diagnostics``) ---------------
    @property
    def fixef(self) -> diagnostics.FixedEffects:
        """β̂ as a Series; ``fixef(add_dropped=True)`` adds redundant columns as NaN."""
        from ..analysis import diagnostics

        return diagnostics.FixedEffects.of(self)

    @property
    def df_resid(self) -> int:
        """lme4's ``df.residual``: nobs − the number of parameters."""
        from ..analysis import diagnostics

        return diagnostics.df_resid(self)

    def residuals(self, type: str = "response", scaled: bool = False) -> pd.Series:  # noqa: A002
        """Residuals: "response" (= "working") or "pearson" (= "deviance"), over σ if
        ``scaled`` (lme4's ``residuals(m, type, scaled)``)."""
        from ..analysis import diagnostics

        return diagnostics.residuals(self, type, scaled)

    def hatvalues(self) -> pd.Series:
        """Leverages: the diagonal of the hat matrix of the fitted values (lme4's)."""
        from ..analysis import diagnostics

        return diagnostics.hatvalues(self)

    def cooks_distance(self) -> pd.Series:
        """lme4's ``cooks.distance(m)`` (one-step; see `influence` for exact deletions)."""
        from ..analysis import diagnostics

        return diagnostics.cooks_distance(self)

    def rstudent(self) -> pd.Series:
        """lme4's ``rstudent(m)``: Pearson residuals over σ√(1 − h)."""
        from ..analysis import diagnostics

        return diagnostics.rstudent(self)

    def influence(
        self, groups=None, maxeval: int = 1000, verbose: bool | None = None, units=None
    ):
        """Refits without each case or group (lme4's ``influence(m, groups)``); ``units``
        deletes only some. Returns an `sparselme.analysis.influence.Influence`
        (``dfbeta()``, ``dfbetas()``, ``cooks_distance()``)."""
        from ..analysis import influence as deletion

        return deletion.influence(self, groups, maxeval=maxeval, verbose=verbose, units=units)

    def coef(self) -> dict[str, pd.DataFrame]:
        """lme4's ``coef(m)``: per grouping factor, fixed plus random effects by level."""
        from ..analysis import diagnostics

        return diagnostics.coef(self)

    # ---- refits and tests of terms ------------------------------------------------------
    def update(self, formula: str | None = None, data=None, REML: bool | None = None):  # noqa: N803
        """Refit with an updated formula (lme4's ``update(m, . ~ . - x)``); see
        `sparselme.analysis.refits.update`."""
        from ..analysis import refits

        return refits.update(self, formula, data=data, REML=REML)

    def refit(self, newresp):
        """The same model fitted to a new response (lme4's ``refit(m, newresp)``)."""
        from ..analysis import refits

        return refits.refit(self, newresp)

    def drop1(self, test: str = "F", ddf: str = "Satterthwaite") -> pd.DataFrame:
        """Single-term deletions of the fixed effects: lmerTest's F tests (``test="F"``)
        or lme4's likelihood-ratio tests (``test="Chisq"``) or AIC (``"none"``)."""
        from ..analysis import terms_tests

        return terms_tests.drop1(self, test, ddf)

    def ranova(self) -> pd.DataFrame:
        """lmerTest's ``ranova(m)``: likelihood-ratio tests of the random-effects terms."""
        from ..analysis import terms_tests

        return terms_tests.ranova(self)
