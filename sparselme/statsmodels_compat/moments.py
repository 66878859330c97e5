"""``mixedlm(...).fit(estimator="moments" | "auto")``: the moments fit in statsmodels' names.

statsmodels spells crossed random intercepts as variance components of one group,
``mixedlm("y ~ x", data, groups=np.ones(n), vc_formula={"a": "0 + C(a)", "b": "0 + C(b)"})``,
and sparselme also takes lme4's bars, ``mixedlm("y ~ x + (1|a) + (1|b)", data)``. Both
compile to random-intercept terms ``(1 | a)``, ``(1 | b)`` (`sparselme.statsmodels_compat.build`);
when every term of the model is one, the model is the lme4 formula
``<fixed part> + (1|a) + (1|b)``, fitted by `sparselme.streaming.moments`.

`MomentsCompatResults` is the lme4 front end's `sparselme.results.moments.MomentsResults`
with statsmodels' names: ``params`` and ``bse`` (fixed effects, then each component's
variance over the scale, with a delta-method standard error from the estimated
covariance of the moment estimates), ``tvalues``/``pvalues`` (z tests), ``vcomp``,
``cov_re``, ``scale``. What needs a likelihood raises `sparselme.errors.NoLikelihoodError`.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy import stats

from ..data.formula import parse_formula
from ..errors import EstimatorChoiceWarning, EstimatorError, ProblemTooLargeError
from ..results.moments import MomentsResults
from ..streaming.moments import MOMENTS_OPTIONS, fit_formula_moments

__all__ = ["MomentsCompatResults", "moments_formula", "fit_by_estimator"]


def moments_formula(model) -> str:
    """The lme4 formula of a ``mixedlm`` model whose terms are all random intercepts on
    data columns; EstimatorError otherwise (naming the term)."""
    if model.formula is None:
        raise EstimatorError(
            'estimator="moments" needs a model from a formula (sl.mixedlm), not arrays'
        )
    columns = set(map(str, model.data_frame.columns))
    bars = []
    for t in model.layout.terms():
        if not (t.k == 1 and t.intercept_only):
            raise EstimatorError(
                f'estimator="moments" fits random intercepts only; {t.description()} has '
                f"columns {list(t.columns)}: use estimator='exact'"
            )
        if not t.group_vars or not set(t.group_vars) <= columns:
            raise EstimatorError(
                f"estimator=\"moments\" needs the grouping of {t.name!r} as columns of the "
                "data: pass groups= as a column name"
            )
        bars.append(f"(1 | {':'.join(t.group_vars)})")
    fixed = parse_formula(model.formula).fixed_formula()
    return " + ".join([fixed, *bars])


def fit_by_estimator(model, estimator: str, reml: bool, fit_kwargs: dict, exact):
    """``MixedLM.fit(estimator=...)``: "moments", or "auto" (``exact()`` unless it raises
    ProblemTooLargeError)."""
    if estimator not in ("moments", "auto"):
        raise ValueError(f"estimator must be 'exact', 'moments' or 'auto', not {estimator!r}")
    if estimator == "auto":
        try:
            res = exact()
        except ProblemTooLargeError as exc:
            why = f'estimator="auto" chose "moments": {exc}'
            try:
                formula = moments_formula(model)
            except EstimatorError:
                raise exc from None
            warnings.warn(why, EstimatorChoiceWarning, stacklevel=3)
            options = {k: v for k, v in fit_kwargs.items() if k in MOMENTS_OPTIONS}
            out = _fit(model, formula, options)
            out.estimator_reason = why
            return out
        res.estimator_reason = 'estimator="auto" chose "exact": the exact fit is feasible'
        return res
    if not reml or fit_kwargs.get("REML", True) is False:
        raise EstimatorError(
            'estimator="moments" is not maximum likelihood: drop reml=False, or use '
            'estimator="exact"'
        )
    if model.residual is not None:
        raise EstimatorError('estimator="moments" takes no residual structure')
    return _fit(model, moments_formula(model), dict(fit_kwargs))


def _fit(model, formula: str, options: dict) -> MomentsCompatResults:
    options.pop("verbose", None)
    # mixedlm dropped or refused rows with missing values already
    engine = fit_formula_moments(formula, model.data_frame, "raise", None, **options)
    return MomentsCompatResults(engine, name_style="formulaic")


class MomentsCompatResults(MomentsResults):
    """A moments fit with statsmodels' result names (see the module docstring)."""

    @property
    def vcomp(self) -> np.ndarray:
        """(K,) the variance components (not divided by the scale)."""
        return np.asarray(self.moments.sigma2[:-1], dtype=float)

    def _vc_names(self) -> list[str]:
        return [f"{t.name} Var" for t in self.terms]

    @property
    def params(self) -> pd.Series:
        """Fixed effects, then each component's variance over the scale (statsmodels')."""
        values = np.r_[self.fe_params.to_numpy(), self.vcomp / self.scale]
        return pd.Series(values, index=self.exog_names + self._vc_names(), name="params")

    @property
    def bse(self) -> pd.Series:
        """Standard errors of ``params``: the GLS ones for the fixed effects; for the
        variance ratios σ²_f/σ²_e the delta method on the moment estimates' covariance
        (NaN when ``variance_reps=0`` estimated none)."""
        s2, cov = self.moments.sigma2, self.moments.sigma2_cov
        K = len(s2) - 1
        if cov is None:
            vc = np.full(K, np.nan)
        else:
            se2 = s2[K]
            vc = np.empty(K)
            for f in range(K):
                g = np.zeros(K + 1)
                g[f], g[K] = 1.0 / se2, -s2[f] / se2**2
                vc[f] = np.sqrt(max(g @ cov @ g, 0.0))
        values = np.r_[self.bse_fe.to_numpy(), vc]
        return pd.Series(values, index=self.params.index, name="bse")

    @property
    def tvalues(self) -> pd.Series:
        return (self.params / self.bse).rename("tvalues")

    @property
    def pvalues(self) -> pd.Series:
        """Two-sided normal p-values of ``tvalues`` (statsmodels' z tests)."""
        return pd.Series(2 * stats.norm.sf(np.abs(self.tvalues)), index=self.params.index)

    @property
    def cov_re(self) -> pd.DataFrame:
        """statsmodels' within-group random-effects covariance: none here (every random
        intercept is a variance component), a 0 × 0 frame."""
        return pd.DataFrame(np.zeros((0, 0)))

    @property
    def random_effects(self):
        raise EstimatorError(
            "random_effects (per group) is not available for a fit by estimator='moments': "
            "ranef() gives the conditional modes per grouping factor"
        )
