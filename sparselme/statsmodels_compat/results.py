"""The results of a fit through the statsmodels API (statsmodels' names and meaning).

Over 500 lines because it is one class with statsmodels' MixedLMResults surface (about
sixty attributes and methods, each a short computed value or a delegation to `.summary`,
`.hypotheses`, `.prediction` and `.algebra`, where the logic lives).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from ..engine.fixed_scaling import FixedScaling
from ..errors import NonlinearStructureError
from ..model.results import ModelFit
from ..results import MixedLMResults
from ..results.summary import lme4_summary
from . import hypotheses
from .algebra import GroupAlgebra, spec_matrix
from .hypotheses import ContrastResults
from .layout import Layout, column_label
from .params import MixedLMParams
from .profile_re import profile_re
from .removal import check_has_data, load_pickle, remove_data, save_pickle
from .summary import summary_of


class MixedLMCompatResults(MixedLMResults):
    """A fit through the statsmodels API: statsmodels' attributes with its semantics.

    Everything of `sparselme.results.MixedLMResults` (lme4-style extras) is kept;
    statsmodels' names (``params``, ``bse``, ``bse_fe``, ``cov_params()``, ``summary()``,
    ``fittedvalues``...) follow statsmodels. ``summary_lme4()`` gives lme4's printout.
    ``model`` is the statsmodels-style `sparselme.statsmodels_compat.MixedLM`.
    """

    name_style = "formulaic"
    model_view = None  # the MixedLM (or its independent-effects view) that was fitted
    freepat: MixedLMParams | None = None
    hist: list | None = None
    use_sqrt: bool = True
    use_t: bool = False
    fixed_theta: np.ndarray | None = None  # (n_theta,) θ's that ``free`` held fixed

    @classmethod
    def of_model(cls, fit: ModelFit, view, free, use_sqrt: bool, fixed_theta, hist=None):
        """The results of ``fit`` of the statsmodels-style model ``view``.

        ``free``: statsmodels' ``free`` pattern (or None); ``fixed_theta`` (n_theta,) the
        θ's it held; ``hist``: the optimizer's record when ``full_output``.
        """
        res = cls.from_fit(fit)
        res.model_view, res.freepat, res.use_sqrt = view, free, use_sqrt
        res.fixed_theta, res.hist = fixed_theta, hist
        return res

    @property
    def model(self):
        """The statsmodels-style model that was fitted."""
        return self.model_view

    # ---- bookkeeping ---------------------------------------------------------------------
    @property
    def _layout(self) -> Layout:
        return self.model.layout

    @property
    def k_re(self) -> int:
        return self.model.k_re

    @property
    def k_re2(self) -> int:
        return self.model.k_re2

    @property
    def k_vc(self) -> int:
        return self.model.k_vc

    @property
    def converged(self) -> bool:
        return self.optsum.returnvalue != "NOT_OPTIMIZED" and self.optsum.converged

    _data_removed = False

    @cached_property
    def df_resid(self) -> int:
        if self.design.X is None:  # streamed: redundant columns were dropped already
            return self.nobs - self.k_fe
        return self.nobs - int(np.linalg.matrix_rank(self.design.X)) if self.k_fe else self.nobs

    @cached_property
    def _group_sizes(self) -> np.ndarray:
        """(n_groups,) rows per group (a streamed layout holds the counts, not the codes)."""
        return self.model.layout.sizes()

    def remove_data(self) -> None:
        """Drop the n-length arrays of the results and the model (statsmodels'): the model's
        endog/exog/exog_re/groups and fittedvalues/resid become None; summary() works."""
        remove_data(self)

    @property
    def npar(self) -> int:
        """lme4's parameter count (free θ only when ``free`` held some fixed)."""
        fixed = self.fixed_theta
        n_theta = self.n_theta - (int(fixed.sum()) if fixed is not None else 0)
        return self.k_fe + n_theta + 1

    def _term_theta(self, s: int) -> np.ndarray:
        o = self.engine.pls.theta_offsets
        return self.theta[o[s] : o[s + 1]]

    def _relcov(self, s: int) -> np.ndarray:
        """(k, k) Ψ/σ² of engine term s: T Tᵀ."""
        T = self.terms[s].template(self._term_theta(s))
        return T @ T.T

    # ---- statsmodels' parameters ----------------------------------------------------------
    def _wrap(self, value):
        """pandas for pandas input (a formula, pandas endog/exog), ndarray otherwise."""
        return self.model.data.wrap(value)

    @cached_property
    def _cov_re_frame(self) -> pd.DataFrame:
        """(k_re, k_re) Ψ/σ² with exog_re's names."""
        names = self.model.exog_re_names
        cov = self._relcov(0) if self.k_re else np.zeros((0, 0))
        return pd.DataFrame(cov, index=names, columns=names)

    @property
    def cov_re_unscaled(self):
        """Random-effects covariance of one group divided by ``scale``."""
        return self._wrap(self._cov_re_frame)

    @property
    def cov_re(self):
        """Random-effects covariance of one group (user scale)."""
        return self._wrap(self._cov_re_frame * self.scale)

    @cached_property
    def _vcomp_unscaled(self) -> np.ndarray:
        s0 = 1 if self.k_re else 0
        return np.array([self._relcov(s0 + j)[0, 0] for j in range(self.k_vc)])

    @property
    def vcomp(self) -> np.ndarray:
        """Variance components (user scale), in sorted-name order."""
        return self._vcomp_unscaled * self.scale

    @cached_property
    def params_object(self) -> MixedLMParams:
        return MixedLMParams.from_components(
            fe_params=self.solution.beta.copy(),
            cov_re=self._cov_re_frame.to_numpy(),
            vcomp=self._vcomp_unscaled.copy(),
        )

    @cached_property
    def _param_values(self) -> np.ndarray:
        vals = [self.solution.beta]
        for s, a, b in self._layout.param_specs():
            vals.append(np.array([self._relcov(s)[a, b]]))
        return np.concatenate(vals)

    @property
    def params(self):
        """Fixed effects, then variance parameters divided by ``scale`` (statsmodels)."""
        return self._wrap(pd.Series(self._param_values, index=self.model.param_names))

    @property
    def fe_params(self):
        """Fixed-effects estimates β (k_fe,)."""
        return self._wrap(ModelFit.fe_params.fget(self))

    @property
    def k_params(self) -> int:
        return len(self._param_values)

    # ---- statsmodels' covariance of the estimates ------------------------------------------
    def _engine_fixed(self) -> tuple[FixedScaling, np.ndarray, np.ndarray, np.ndarray]:
        """(A, X̃, R̃_X, β̃): the fixed effects as the engine fitted them (well scaled)."""
        sol = self.solution
        fixed = getattr(sol, "fixed", None)
        if fixed is None or sol.RX_engine is None:  # a solution without the scaling
            return FixedScaling.identity(self.k_fe), self.design.X, sol.RX, sol.beta
        X = None if self.design.X is None else fixed.apply(self.design.X)  # streamed: None
        return fixed, X, sol.RX_engine, sol.beta_engine

    @cached_property
    def _algebra(self) -> GroupAlgebra | None:
        d = self.design
        thetas = [self._term_theta(s) for s in range(len(self.terms))]
        blocks = self._layout.block_of_levels()
        try:
            if d.rows is None:  # streamed: the per-group blocks are in the cross-products
                cp, beta = self.engine.cp, self._engine_fixed()[3]
                return GroupAlgebra.from_crossproducts(list(self.terms), cp, thetas, blocks, beta)
            fixed, X, _, beta = self._engine_fixed()
            resid = fixed.apply_y(d.y_minus_offset) - X @ beta
            return GroupAlgebra(list(self.terms), list(d.rows), thetas, blocks, X, resid)
        except MemoryError as exc:
            warnings.warn(
                f"statsmodels-style standard errors of variance parameters are not "
                f"computed: {exc}; fixed-effect standard errors are lme4's",
                UserWarning,
                stacklevel=3,
            )
            return None

    @cached_property
    def _engine_hessian(self) -> np.ndarray | None:
        """statsmodels' Hessian in (β̃, variance parameters): the engine's scaled X̃."""
        alg = self._algebra
        if alg is None:
            return None
        specs = [(s, spec_matrix(self.terms[s], a, b)) for s, a, b in self._layout.param_specs()]
        RX = self._engine_fixed()[2]
        fac = self.nobs - (self.k_fe if self.reml else 0)
        return alg.hessian(specs, RX.T @ RX, self.solution.pwrss, fac, self.reml)

    def _beta_map(self, M: np.ndarray) -> np.ndarray:
        """J M Jᵀ, J = diag(A, I): a covariance of (β̃, ψ) as one of (β, ψ)."""
        A = self._engine_fixed()[0].A
        J = np.eye(M.shape[0])
        J[: self.k_fe, : self.k_fe] = A
        return J @ M @ J.T

    @cached_property
    def hessian(self) -> np.ndarray | None:
        """statsmodels' Hessian of the profile log-likelihood at the estimates.

        Raises `sparselme.errors.NonlinearStructureError` for a structured covariance
        (AR(1), compound symmetry ...): its parameters are not a linear covariance model.
        """
        H = self._engine_hessian
        if H is None:
            return None
        A_inv = self._engine_fixed()[0].A_inv
        J = np.eye(H.shape[0])
        J[: self.k_fe, : self.k_fe] = A_inv  # β̃ = A⁻¹(β − shift): ∂β̃/∂β = A⁻¹
        return J.T @ H @ J

    @cached_property
    def _cov_params(self) -> np.ndarray:
        k = self.k_params
        try:
            H = self._engine_hessian
        except NonlinearStructureError as exc:  # a structured term: no linear covariance model
            warnings.warn(
                f"statsmodels-style standard errors of the variance parameters are not "
                f"computed ({exc}); fixed-effect standard errors are lme4's",
                UserWarning,
                stacklevel=3,
            )
            H = None
        if H is None:
            out = np.full((k, k), np.nan)
            out[: self.k_fe, : self.k_fe] = self.cov_fe
            return out
        free = np.ones(k, dtype=bool)
        pat = self._free_packed()
        if pat is not None:
            free[: len(pat)] = pat
        engine = bool(free[: self.k_fe].all())  # β all free: invert in β̃, then map
        if not engine:
            H = self.hessian
        out = np.zeros((k, k))
        ii = np.flatnonzero(free)
        if len(ii):
            sub = -H[np.ix_(ii, ii)]
            try:
                out[np.ix_(ii, ii)] = np.linalg.inv(sub)
            except np.linalg.LinAlgError:
                out[np.ix_(ii, ii)] = np.linalg.pinv(sub)
        return self._beta_map(out) if engine else out

    def cov_params(self):
        """statsmodels' covariance of all parameters: inverse of minus its Hessian."""
        names = self.model.param_names
        return self._wrap(pd.DataFrame(self._cov_params, index=names, columns=names))

    @property
    def normalized_cov_params(self):
        """cov_params() / scale (statsmodels' stored form)."""
        names = self.model.param_names
        return self._wrap(pd.DataFrame(self._cov_params / self.scale, index=names, columns=names))

    @cached_property
    def _bse_values(self) -> np.ndarray:
        with np.errstate(invalid="ignore"):
            return np.sqrt(np.diag(self._cov_params))

    def _by_param(self, values: np.ndarray, start: int = 0, stop: int | None = None):
        names = self.model.param_names[start:stop]
        return self._wrap(pd.Series(values[start:stop], index=names))

    @property
    def bse(self):
        return self._by_param(self._bse_values)

    @property
    def bse_fe(self):
        return self._by_param(self._bse_values, 0, self.k_fe)

    @property
    def bse_re(self):
        """SEs of the variance parameters on the user scale, as statsmodels reports them."""
        return self._by_param(self._bse_values * math.sqrt(self.scale), self.k_fe)

    @property
    def _tvalues(self) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return self._param_values / self._bse_values

    @property
    def tvalues(self):
        return self._by_param(self._tvalues)

    @property
    def pvalues(self):
        return self._by_param(2 * stats.norm.sf(np.abs(self._tvalues)))

    def conf_int(self, alpha: float = 0.05, cols=None):
        """Wald intervals params ± z·bse for every parameter (statsmodels' ``conf_int``).

        Parameters
        ----------
        alpha : float, default 0.05
            One minus the confidence level.
        cols : sequence of int, optional
            Positions of the parameters to return. Default: all.

        Returns
        -------
        pandas.DataFrame
            Columns 0 (lower) and 1 (upper), one row per parameter of ``params`` (fixed
            effects, then the variance parameters divided by ``scale``).
        """
        q = stats.norm.ppf(1 - alpha / 2)
        p, se = self._param_values, self._bse_values
        out = pd.DataFrame({0: p - q * se, 1: p + q * se}, index=self.model.param_names)
        return self._wrap(out if cols is None else out.iloc[list(cols)])

    # ---- likelihood summaries ----------------------------------------------------------------
    @property
    def _df_modelwc(self) -> int:
        pat = self._free_packed()
        return (self.k_params if pat is None else int(np.sum(pat))) + 1

    def _free_packed(self) -> np.ndarray | None:
        """(k,) bool in packed order: the parameters ``free`` leaves free (None: all)."""
        if self.freepat is None:
            return None
        return self.freepat.get_packed(use_sqrt=False, has_fe=True) != 0

    @property
    def aic(self) -> float:
        """statsmodels' AIC: NaN under REML; parameters + 1 for the scale."""
        return float("nan") if self.reml else -2 * (self.llf - self._df_modelwc)

    @property
    def bic(self) -> float:
        return float("nan") if self.reml else -2 * self.llf + math.log(self.nobs) * self._df_modelwc

    # ---- random effects -------------------------------------------------------------------------
    def _group_effect_names(self, g: int) -> list[str]:
        names = list(self.model.exog_re_names)
        for v in self._layout.vc:
            if v.level_group is None:
                continue
            names += [f"{v.name}[{c}]" for c in v.colnames.get(g, [])]
        return names

    def _group_columns(self) -> list[list[tuple[int, int, int]]]:
        """Per group, its effects as (term, level, column) in statsmodels' order."""
        G = self.model.n_groups
        out: list[list[tuple[int, int, int]]] = [[] for _ in range(G)]
        s = 0
        if self.k_re:
            for g in range(G):
                out[g] += [(0, g, a) for a in range(self.k_re)]
            s = 1
        for j, v in enumerate(self._layout.vc):
            t = self.terms[s + j]
            if v.level_group is None:
                continue
            if t.k == 1:
                for lvl, g in enumerate(v.level_group):
                    out[int(g)].append((s + j, lvl, 0))
            else:
                for g in range(G):
                    out[g] += [(s + j, g, a) for a in range(len(v.colnames.get(g, [])))]
        return out

    def _single_group_bars(self) -> list[tuple[int, str]]:
        """Bar terms not nested in the groups: (term index, label) for the single group."""
        s0 = 1 if self.k_re else 0
        out = [(s0 + j, v.name) for j, v in enumerate(self._layout.vc) if v.level_group is None]
        s0 += len(self._layout.vc)
        out += [(s0 + j, label) for j, (label, _, _) in enumerate(self._layout.extra)]
        return out

    def _group_effects(self) -> list[tuple[int, Any, list[tuple[int, int, int]], list[str]]]:
        """Per group (index, label, its effects as (term, level, column), their names).

        With a single group, the bar terms not nested in it are its effects too.
        """
        bars = self._single_group_bars() if self.model.n_groups == 1 else []
        out = []
        for g, (label, cols) in enumerate(zip(self.model.group_labels, self._group_columns())):
            names = self._group_effect_names(g)
            for s, lab in bars:
                t = self.terms[s]
                for lvl, lv in enumerate(t.levels):
                    for a, c in enumerate(t.columns):
                        cols.append((s, lvl, a))
                        names.append(f"{column_label(lab, c) if t.k > 1 else lab}[{lv}]")
            out.append((g, label, cols, names))
        return out

    @property
    def _only_re(self) -> bool:
        """Only the re term (no variance components or bar terms), over several groups."""
        return self.k_re > 0 and len(self.terms) == 1 and self.model.n_groups > 1

    @cached_property
    def random_effects(self) -> dict[Any, pd.Series]:
        """Conditional means of each group's random effects (statsmodels' meaning).

        Returns
        -------
        dict
            Group label → pandas Series of that group's random effects: the ``exog_re``
            columns, then the variance components' columns present in the group.
        """
        blocks = self.b_blocks()
        if self._only_re:  # the common case, vectorized: one row of b per group
            index = pd.Index(self.model.exog_re_names)
            return {
                g: pd.Series(b, index=index) for g, b in zip(self.model.group_labels, blocks[0])
            }
        out = {}
        for _, label, cols, names in self._group_effects():
            vals = [blocks[s][lvl, a] for s, lvl, a in cols]
            out[label] = pd.Series(np.asarray(vals, dtype=float), index=names)
        return out

    @cached_property
    def random_effects_cov(self) -> dict[Any, pd.DataFrame]:
        """Conditional covariance of each group's random effects given the data."""
        alg = self._algebra
        if alg is None:
            raise MemoryError("the groups are too large for dense conditional covariances")
        if self._layout.block_of_levels() is None and self.model.n_groups > 1:
            raise NotImplementedError(
                "random_effects_cov with bar terms crossing the groups; use ranef()"
            )
        if self._only_re:
            index = pd.Index(self.model.exog_re_names)
            covs = self.scale * alg.P
            return {
                g: pd.DataFrame(c, index=index, columns=index)
                for g, c in zip(self.model.group_labels, covs)
            }
        out = {}
        for g, label, cols, names in self._group_effects():
            loc = [int(alg.pos[s][1][lvl] + a) for s, lvl, a in cols]
            cov = self.scale * alg.P[0 if alg.B == 1 else g][np.ix_(loc, loc)]
            out[label] = pd.DataFrame(cov, index=names, columns=names)
        return out

    # ---- fitted values and prediction ------------------------------------------------------------
    def _wrap_rows(self, values: np.ndarray):
        idx = self.design.row_index
        return values if idx is None else pd.Series(values, index=idx)

    @cached_property
    def fittedvalues(self):
        """Xβ + Zb: fixed effects plus predicted random effects."""
        return self._wrap_rows(ModelFit.fittedvalues.func(self))

    @property
    def resid(self):
        if self._data_removed:
            return None
        if self.design.y is None:  # streamed: computed chunk by chunk on request
            return ModelFit.resid.fget(self)
        return self._wrap_rows(self.design.y - np.asarray(self.fittedvalues))

    def predict(
        self,
        exog=None,
        transform: bool = True,
        *,
        groups=None,
        exog_re=None,
        exog_vc: Mapping | None = None,
        allow_new_levels: bool | None = None,
    ):
        """Predictions for new rows: Xβ (statsmodels), or with ``groups`` at group level.

        ``groups`` (a column name of exog, a Series or m labels) adds each known group's
        conditional modes: ``exog_re`` (m, k_re; default from re_formula) times its random
        effects, the variance components' columns (``exog_vc``: {name: (m, c)}; default
        from vc_formula) times their modes, and lme4 bar terms' effects. Unseen groups get
        Xβ, with a warning if ``allow_new_levels`` is None (False raises). See
        `sparselme.statsmodels_compat.prediction`.
        """
        from .prediction import predict

        return predict(self, exog, transform, groups, exog_re, exog_vc, allow_new_levels)

    # ---- tests ----------------------------------------------------------------------------------
    def t_test(self, r_matrix, use_t: bool | None = None) -> ContrastResults:
        """t (z) tests of R β = q for the fixed effects; R may be a string like "x = 1"."""
        return hypotheses.t_test(self, r_matrix, use_t)

    def wald_test(
        self, r_matrix, *, use_f: bool | None = None, scalar: bool | None = None
    ) -> ContrastResults:
        """Wald test of R θ = q over all parameters (or the fixed effects); χ² by default,
        F (statistic/rank on (rank, df_resid) degrees of freedom) with ``use_f=True``."""
        return hypotheses.wald_test(self, r_matrix, bool(use_f), scalar)

    def f_test(self, r_matrix) -> ContrastResults:
        """F test of R θ = q (``wald_test(r_matrix, use_f=True)``)."""
        return hypotheses.wald_test(self, r_matrix, True, None)

    def wald_test_terms(self, skip_single: bool = False, scalar: bool | None = None):
        """χ² Wald tests that all coefficients of each fixed-effects term are 0."""
        return hypotheses.wald_test_terms(self, skip_single, scalar)

    def t_test_pairwise(
        self, term_name: str, method: str = "hs", alpha: float = 0.05, factor_labels=None
    ):
        """Pairwise z tests between the levels of a categorical term, p-values adjusted
        for multiplicity (``method``: "hs" Holm–Šidák, "holm", "sidak", "bonferroni")."""
        return hypotheses.t_test_pairwise(self, term_name, method, alpha, factor_labels)

    # ---- profile likelihood -----------------------------------------------------------------
    def profile_re(
        self,
        re_ix: int | str,
        vtype: str,
        num_low: int = 5,
        dist_low: float = 1.0,
        num_high: int = 5,
        dist_high: float = 1.0,
        **fit_kwargs,
    ) -> np.ndarray:
        """Profile log-likelihood of one variance parameter (statsmodels' arguments).

        ``vtype="re"``: the variance of exog_re column ``re_ix``; ``"vc"``: the variance
        component named ``re_ix``. Returns (num_low + 1 + num_high, 2): the parameter on
        the user scale and the maximized log-likelihood with the parameter held there.
        """
        check_has_data(self, "profile_re")
        return profile_re(self, re_ix, vtype, num_low, dist_low, num_high, dist_high, fit_kwargs)

    # ---- saving ---------------------------------------------------------------------------
    def save(self, fname, remove_data: bool = False) -> None:
        """Pickle the results to ``fname`` (a path or a binary file), statsmodels' ``save``;
        ``remove_data`` first drops the n-length arrays (`remove_data`)."""
        if remove_data:
            self.remove_data()
        save_pickle(self, fname)

    @classmethod
    def load(cls, fname):
        """Results saved with `save` (unpickled: load only files you trust)."""
        return load_pickle(fname)

    # ---- printing ----------------------------------------------------------------------
    def summary(
        self,
        yname: str | None = None,
        xname_fe: list[str] | None = None,
        xname_re: list[str] | None = None,
        title: str | None = None,
        alpha: float = 0.05,
    ):
        """statsmodels' summary: an info block and one table of all parameters.

        Parameters
        ----------
        yname : str, optional
            Name of the response. Default: the model's.
        xname_fe, xname_re : list of str, optional
            Names of the fixed effects and of the random-effects columns.
        title : str, optional
            Title. Default: "Mixed Linear Model Regression Results".
        alpha : float, default 0.05
            One minus the level of the confidence intervals.

        Returns
        -------
        Summary
            statsmodels' own ``Summary`` where statsmodels is installed, else one of the
            same layout; ``print()`` shows it. `summary_lme4` gives lme4's printout.
        """
        return summary_of(self, yname, xname_fe, xname_re, title, alpha)

    def summary_lme4(self) -> str:
        """lme4's ``summary(lmer(...))`` printout of the same fit."""
        return lme4_summary(MixedLMResults.from_fit(self))

    def __repr__(self) -> str:
        return f"<sparselme MixedLMResults {self.method} nobs={self.nobs} llf={self.llf:.4f}>"
