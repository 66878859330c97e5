"""statsmodels' ``MixedLM`` (and ``mixedlm``) on the engine: construction, θ ↔ params, fit.

Over 500 lines because it is one class whose public surface is statsmodels' (about forty
methods and properties, most a few lines that translate to the engine); the pieces with
logic of their own live beside it (`.build`, `.derivatives`, `.regularized`,
`.distribution`, `.profile_re`, `.prediction`).
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from ..data import validation
from ..data.design import Design, build_design
from ..data.formula import parse_formula, parse_one_sided
from ..errors import NeedsRowsError
from ..model.mixed_model import MixedModel
from ..residual_covariance import ResidualModel
from . import derivatives, regularized
from .build import formula_groups, formula_layout, from_arrays, re_structure, used_columns
from .distribution import MixedLMDistribution
from .fit import fit_engine, split_fit_kwargs
from .inputs import (
    check_columns,
    external_names,
    formula_environment,
    group_rows,
    groups_to_codes,
    handle_missing,
)
from .layout import Layout
from .model_data import ModelData
from .params import MixedLMParams, VCSpec, check_free_pattern, chol_or_diag, is_independent
from .residual import fit_compat
from .results import MixedLMCompatResults


class MixedLM:
    """statsmodels' linear mixed model, fitted by the sparse engine.

    The array interface of statsmodels' ``MixedLM``; `from_formula` (``sl.mixedlm``)
    builds one from a formula.

    Parameters
    ----------
    endog : array_like of shape (n,)
        The response.
    exog : array_like of shape (n, p)
        The fixed-effects design (include a column of ones for an intercept).
    groups : array_like of shape (n,)
        The group label of each row.
    exog_re : array_like of shape (n,) or (n, k), optional
        The random-effects design within each group, with one correlated k-vector of
        random effects per group. Default: a random intercept per group.
    exog_vc : VCSpec or dict, optional
        Variance components within the groups: a ``VCSpec``, or statsmodels' deprecated
        dict ``{name: {group: (n_g, j) array}}``.
    use_sqrt : bool, default True
        statsmodels' parametrization of the packed covariance parameters (the Cholesky
        factor of ``cov_re`` and square roots of the variance components).
    missing : {"none", "drop", "raise"}, default "none"
        Rows with missing values raise (``"none"``, ``"raise"``, naming the columns) or
        are dropped (``"drop"``).

    Examples
    --------
    >>> import numpy as np
    >>> import sparselme as sl
    >>> sitka = sl.datasets.load("Sitka")
    >>> exog = np.column_stack([np.ones(len(sitka)), sitka["Time"]])
    >>> mdf = sl.MixedLM(sitka["size"], exog, groups=sitka["tree"]).fit()
    >>> mdf.fe_params.round(4).tolist()
    [2.2732, 0.0127]
    """

    residual = None  # a residual structure (sparselme.residual), set by from_formula
    _freepat: MixedLMParams | None = None  # the last fit's ``free`` pattern
    _data_removed = False  # remove_data() of a results object dropped the rows
    data_frame: pd.DataFrame | None = None  # the fitted rows of a formula model
    _re_formula: str | None = None  # re_formula and vc_formula of a formula model, for
    _vc_formula: dict[str, str] | None = None  # group-level predictions on new data
    _cp = None  # the cross-products of streamed data (their rows are not held)
    _engine_options: dict = {}  # ordering, factorization

    def __init__(
        self,
        endog,
        exog,
        groups,
        exog_re=None,
        exog_vc=None,
        use_sqrt: bool = True,
        missing: str = "none",
        *,
        _prebuilt: tuple | None = None,
    ):
        self.use_sqrt = use_sqrt
        self.reml = True
        pandas_in = isinstance(endog, (pd.Series, pd.DataFrame))
        pandas_in |= isinstance(exog, (pd.Series, pd.DataFrame))
        self.data = ModelData(self, pandas_in)
        if _prebuilt is not None:  # from_formula's design and layout
            self._init_from(*_prebuilt)
            return
        design, layout, re_display, exog_vc = from_arrays(
            endog, exog, groups, exog_re, exog_vc, missing
        )
        self._init_from(design, layout, None, re_display)
        self.exog_vc = exog_vc

    def _init_from(
        self, design: Design, layout: Layout, formula: str | None, re_display=None
    ) -> None:
        self._base_design = design
        self.layout = layout
        self.formula = formula
        self._re_display = list(layout.re_names if re_display is None else re_display)
        self._engines: dict[bool, MixedModel] = {}
        self._diagonal = False

    @classmethod
    def from_formula(
        cls,
        formula: str,
        data: pd.DataFrame,
        re_formula: str | None = None,
        vc_formula: Mapping[str, str] | None = None,
        subset=None,
        use_sparse: bool = False,
        missing: str = "none",
        *args,
        groups=None,
        residual=None,
        eval_env=None,
        cov_struct: str | None = None,
        **kwargs,
    ) -> MixedLM:
        """statsmodels' ``MixedLM.from_formula`` (``sl.mixedlm``); lme4 bar terms allowed.

        Parameters
        ----------
        formula : str
            The response and fixed effects, e.g. ``"Weight ~ Time"``. lme4 bar terms such
            as ``(1 | plate)`` may be added: they are random effects of their own, and with
            bar terms only ``groups`` is not needed (the data are then one group).
        data : pandas.DataFrame, dict of columns, str or pathlib.Path, pyarrow or Dask data
            The n rows. A Parquet file or folder, pyarrow data or a Dask DataFrame is read
            in chunks (see the Large data page).
        re_formula : str, optional
            The random-effects design within each group, e.g. ``"~Time"`` (a correlated
            intercept and slope). Default: a random intercept.
        vc_formula : dict of str, optional
            Variance components within each group, ``{name: formula}``, e.g.
            ``{"classroom": "0 + C(classroom)"}``: one variance per component.
        subset : array_like, optional
            A boolean mask or index labels of the rows to use, applied first.
        use_sparse : bool, default False
            Accepted for statsmodels' signature; the engine is always sparse.
        missing : {"none", "drop", "raise"}, default "none"
            Rows with missing values in the model's columns raise, naming the columns
            (``"none"``, ``"raise"``), or are dropped (``"drop"``).
        groups : str or array_like of shape (n,)
            The grouping column's name, or the group of each row.
        residual : VarIdent or AR1, optional
            A residual variance structure (see `sparselme.residual`); data in memory only.
        cov_struct : str, optional
            The structure of the ``re_formula`` covariance (``cov_re``): ``"us"``
            (unstructured, the default), ``"diag"``, ``"homdiag"``, ``"cs"``, ``"homcs"``,
            ``"ar1"``, ``"toep"`` or ``"rr(d)"``; see the Covariance structures page. A
            structure written in the formula (``ar1(0 + C(t) | g)``) is another spelling.
        **kwargs
            For streamed data: ``chunk_size`` (rows per chunk), the engine's ``ordering``
            and ``factorization``.

        Returns
        -------
        MixedLM
            The model; its `fit` returns the results.

        Examples
        --------
        >>> import sparselme as sl
        >>> dietox = sl.datasets.load("dietox")
        >>> md = sl.mixedlm("Weight ~ Time", dietox, groups="Pig", re_formula="~Time")
        >>> mdf = md.fit()
        >>> round(mdf.llf, 2)
        -2217.05
        """
        if args:
            raise TypeError("MixedLM.from_formula takes no further positional arguments")
        namespace = formula_environment(eval_env, depth=1)
        if residual is not None and validation.is_streamable(data):
            raise NotImplementedError("residual structures need the data in memory (a DataFrame)")
        if validation.is_streamable(data):  # a Parquet path, pyarrow Dataset or Dask DataFrame
            from .streamed import mixedlm_streamed  # loads the streaming code when needed

            engine = {k: kwargs.pop(k) for k in ("ordering", "factorization") if k in kwargs}
            design, cp, layout = mixedlm_streamed(
                formula, data, re_formula, vc_formula, subset, missing, groups=groups, **kwargs
            )
            model = cls(None, None, None, _prebuilt=(design, layout, formula))
            model._cp, model._engine_options = cp, engine
            model.data = ModelData(model, use_pandas=True)  # a formula model: pandas out
            model.exog_vc = VCSpec([v.name for v in layout.vc], [], [])
            model._re_formula, model._vc_formula = re_formula, dict(vc_formula or {})
            return model
        if kwargs:
            raise TypeError(
                f"MixedLM.from_formula() got an unexpected keyword argument {sorted(kwargs)[0]!r}"
            )
        data = validation.as_data_frame(data)
        parsed = parse_formula(formula)
        # R's operators as formulaic spells them (I(x^2) is a power, never XOR)
        if re_formula is not None:
            re_formula = "~" + parse_one_sided(re_formula, "re_formula")
        if vc_formula is not None:
            vc_formula = {k: parse_one_sided(v, "vc_formula") for k, v in vc_formula.items()}
        data, groups, garr, gname, re_formula, bars, re_bar = formula_groups(
            parsed, data, groups, re_formula, vc_formula, subset
        )
        structure = re_structure(cov_struct, re_bar, re_formula, gname)
        texts = [parsed.fixed_formula(), *("~" + b.lhs for b in parsed.bars)]
        one_sided = [re_formula or "1", *(vc_formula or {}).values()]
        texts += ["~" + f.strip().lstrip("~") for f in one_sided]
        env = external_names(texts, data, namespace)
        needed = used_columns(parsed, bars, re_formula, vc_formula, groups, env)
        needed |= set(residual.columns) if residual is not None else set()
        check_columns(data, needed)
        data, garr = handle_missing(data, needed, garr, missing)
        if isinstance(groups, str):
            garr = data[groups].to_numpy()
        if garr is None:
            garr = np.ones(len(data), dtype=np.int64)
        gcodes, labels = groups_to_codes(garr)
        design = build_design(
            dataclasses.replace(parsed, bars=tuple(bars)), data, missing="raise", env=env
        )
        no_default = bool(vc_formula) or (groups is None and bool(bars))
        design, layout, vcs = formula_layout(
            design, parsed, data, gcodes, labels, gname, re_formula, vc_formula, no_default,
            structure,
        )
        model = cls(None, None, None, _prebuilt=(design, layout, formula))
        model.exog_vc = VCSpec([v.name for v in vcs], [], [])
        model.data_frame = data
        model.data = ModelData(model, use_pandas=True)
        model._re_formula, model._vc_formula = re_formula, dict(vc_formula or {})
        if residual is not None:
            model.residual, model._residual_frame = residual, data[list(residual.columns)]
        return model

    # ---- statsmodels' model attributes --------------------------------------------------
    def _rows(self, what: str) -> None:
        """`NeedsRowsError` when the rows are not held (streamed data)."""
        if self._cp is not None:
            raise NeedsRowsError(f"MixedLM.{what}", "read the columns from the data source")

    @property
    def endog(self) -> np.ndarray | None:
        if self._data_removed:
            return None
        self._rows("endog")
        return self.design.y

    @property
    def exog(self) -> np.ndarray | None:
        if self._data_removed:
            return None
        self._rows("exog")
        return self.design.X

    @property
    def groups(self) -> np.ndarray | None:
        if self._data_removed:
            return None
        self._rows("groups")
        labels = np.asarray(self.layout.group_labels, dtype=object)
        return labels[self.layout.group_codes]

    @property
    def exog_re(self) -> np.ndarray | None:
        if self._data_removed:
            return None
        self._rows("exog_re")
        rows = self.layout.re_rows
        return None if rows is None else rows.model

    @property
    def exog_names(self) -> list[str]:
        return list(self.design.fixed_names)

    @property
    def endog_names(self) -> str:
        return self.design.response_name

    @property
    def exog_re_names(self) -> list[str]:
        return list(self._re_display)

    @property
    def param_names(self) -> list[str]:
        return self.layout.param_names()

    @property
    def group_labels(self) -> list[Any]:
        return list(self.layout.group_labels)

    @property
    def n_groups(self) -> int:
        return len(self.layout.group_labels)

    @property
    def row_indices(self) -> dict[Any, np.ndarray]:
        self._rows("row_indices")
        rows = group_rows(self.layout.group_codes, self.n_groups)
        return dict(zip(self.layout.group_labels, rows))

    @property
    def nobs(self) -> int:
        return self.design.nobs

    n_totobs = nobs

    @property
    def k_fe(self) -> int:
        return len(self.design.fixed_names)

    @property
    def k_re(self) -> int:
        return self.layout.k_re

    @property
    def k_re2(self) -> int:
        return self.k_re * (self.k_re + 1) // 2

    @property
    def k_vc(self) -> int:
        return self.layout.k_vc

    @property
    def k_params(self) -> int:
        return self.k_fe + self.k_re2

    # ---- the engine behind it -------------------------------------------------------------
    def _engine_for(self, diagonal: bool) -> MixedModel:
        """The engine model: the re term unstructured, or diagonal (independent effects)."""
        if diagonal not in self._engines:
            terms, rows = self.layout.terms(), self.layout.rows()
            if diagonal and self.layout.re_term is not None:
                t = self.layout.re_term
                terms = [t.with_covariance(t.covariance.diagonal())] + terms[1:]
            if self._cp is not None:  # streamed: the terms' rows stay with the source
                design = dataclasses.replace(self._base_design, terms=list(terms))
                engine = MixedModel(design, cp=self._cp, **self._engine_options)
            elif self.residual is not None:
                design = self._base_design.with_terms(terms, rows)
                engine = ResidualModel(design, self.residual, self._residual_frame)
            else:
                design = self._base_design.with_terms(terms, rows)
                engine = MixedModel(design)
            self._engines[diagonal] = engine
        return self._engines[diagonal]

    @property
    def _engine(self) -> MixedModel:
        return self._engine_for(self._diagonal)

    @property
    def design(self) -> Design:
        """The engine's design (X, y and the random-effects terms)."""
        return self._engine.design

    @property
    def lower_bounds(self) -> np.ndarray:
        return self._engine.lower_bounds

    def objective(self, theta: np.ndarray, reml: bool = True) -> float:
        """The engine's profiled deviance at θ (−2 × statsmodels' llf)."""
        return self._engine.objective(theta, reml)

    def _view(self, diagonal: bool) -> MixedLM:
        if diagonal == self._diagonal:
            return self
        view = copy.copy(self)
        view._diagonal = diagonal
        return view

    # ---- θ ↔ statsmodels' parameters -------------------------------------------------------
    def _theta_slices(self, engine: MixedModel) -> list[slice]:
        sizes = [t.n_theta for t in engine.design.terms]
        o = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
        return [slice(o[i], o[i + 1]) for i in range(len(sizes))]

    def _theta_from_params(
        self, engine: MixedModel, params: MixedLMParams | None
    ) -> np.ndarray:
        theta = engine.pls.initial_theta.copy()
        if params is None:
            return theta
        sl = self._theta_slices(engine)
        terms = engine.design.terms
        s = 0
        if self.k_re:
            L = chol_or_diag(np.asarray(params.cov_re, dtype=float))
            theta[sl[0]] = terms[0].theta_from_template(L)
            s = 1
        vc = np.asarray(params.vcomp, dtype=float)
        for j in range(min(self.k_vc, len(vc))):
            theta[sl[s + j]] = math.sqrt(max(vc[j], 0.0))
        return theta

    def _fixed_theta(self, engine: MixedModel, free: MixedLMParams | None) -> np.ndarray:
        """(n_theta,) True where ``free`` holds a θ at its starting value."""
        fixed = np.zeros(len(engine.pls.initial_theta), dtype=bool)
        if free is None:
            return fixed
        sl = self._theta_slices(engine)
        terms = engine.design.terms
        s = 0
        if self.k_re:
            mask = np.asarray(free.cov_re)
            fixed[sl[0]] = mask[terms[0].covariance.positions] == 0
            s = 1
        vc = np.asarray(free.vcomp)
        for j in range(min(self.k_vc, len(vc))):
            fixed[sl[s + j]] = vc[j] == 0
        return fixed

    def _as_params(self, start_params) -> MixedLMParams | None:
        if start_params is None or hasattr(start_params, "cov_re"):
            return start_params
        p = np.asarray(start_params, dtype=float)
        k_cov = self.k_re2 + self.k_vc
        if len(p) == self.k_fe + k_cov:
            return MixedLMParams.from_packed(p, self.k_fe, self.k_re, self.use_sqrt, has_fe=True)
        if len(p) == k_cov:
            return MixedLMParams.from_packed(p, self.k_fe, self.k_re, self.use_sqrt, has_fe=False)
        raise ValueError("invalid start_params")

    # ---- fitting ------------------------------------------------------------------------
    def fit(
        self,
        start_params=None,
        reml: bool = True,
        niter_sa: int = 0,
        do_cg: bool = True,
        fe_pen=None,
        cov_pen=None,
        free: MixedLMParams | None = None,
        full_output: bool = False,
        method=None,
        estimator: str = "exact",
        **fit_kwargs,
    ) -> MixedLMCompatResults:
        """Fit by REML (default) or ML with BOBYQA over θ (statsmodels' arguments).

        The optimizer is BOBYQA on the relative covariance factor, as in lme4, followed by
        Newton steps to the optimum; statsmodels' ``method`` and its optimizer settings
        (``maxiter``, ``gtol``, ...) are not used.

        Parameters
        ----------
        start_params : MixedLMParams or array_like, optional
            Starting values in statsmodels' parametrization (packed, with or without the
            fixed effects). Default: moment estimates.
        reml : bool, default True
            Restricted maximum likelihood; False fits by maximum likelihood.
        niter_sa : int, default 0
            statsmodels' alternating-optimization steps; not used.
        do_cg : bool, default True
            False evaluates the model at ``start_params`` without optimizing.
        fe_pen, cov_pen : None
            Penalized fits are not supported (NotImplementedError).
        free : MixedLMParams, optional
            Where an entry is 0, the corresponding entry of the covariance's Cholesky
            factor or variance component is held at its starting value (statsmodels'
            meaning). An identity ``cov_re`` fits independent random effects.
        full_output : bool, default False
            Keep the optimizer's record in ``hist``.
        method : str or list of str, optional
            statsmodels' optimizer choice; not used.
        estimator : {"exact", "moments", "auto"}, default "exact"
            "moments" fits crossed random intercepts by the method of moments + GLS (no
            likelihood; see the Very large crossed designs page), "auto" does so only where
            the exact fit is too large (`sparselme.statsmodels_compat.moments`).
        **fit_kwargs
            The engine's settings, as for `sparselme.lmer`: ``maxeval``, ``ftol_abs``,
            ``xtol_abs``, ``verbose``, ``check_derivatives``, ``max_restarts``, ``polish``,
            ``keep_log``, ``callback`` (``callback(evaluation, params, value)`` after every
            evaluation, as statsmodels' and scipy's fits call theirs; raising in it, e.g.
            KeyboardInterrupt, stops the fit and leaves the model usable); lme4's spellings
            ``REML`` and ``start`` (θ).

        Returns
        -------
        MixedLMCompatResults
            statsmodels' results: ``params``, ``bse``, ``summary()``... with the lme4-style
            extras of `MixedLMResults`.
        """
        if estimator != "exact":
            from .moments import MOMENTS_OPTIONS, fit_by_estimator

            exact_kwargs = {k: v for k, v in fit_kwargs.items() if k not in MOMENTS_OPTIONS}
            return fit_by_estimator(
                self, estimator, reml, fit_kwargs,
                lambda: self.fit(
                    start_params, reml, niter_sa, do_cg, fe_pen, cov_pen, free, full_output,
                    method, **exact_kwargs,
                ),
            )
        if cov_pen is not None:
            raise NotImplementedError("cov_pen (a penalty on cov_re) is not supported")
        reml, theta_start, engine_opts = split_fit_kwargs(fit_kwargs, reml, method, niter_sa)
        self.reml, self._freepat = bool(reml), free
        if fe_pen is not None:
            if start_params is not None or free is not None or theta_start is not None:
                raise NotImplementedError("fe_pen with start_params or free is not supported")
            return regularized.fit_penalized(self, fe_pen, reml, engine_opts)
        if self.residual is not None:
            options = dict(engine_opts, REML=reml)
            if theta_start is not None:
                options["start"] = theta_start
            res = fit_compat(self, start_params, reml, do_cg, free, options)
            res.hist = [dataclasses.asdict(res.optsum)] if full_output else None
            return res
        start = self._as_params(start_params)
        if free is not None and self.layout.re_term is not None:
            check_free_pattern(self.layout.re_term)
        diagonal = is_independent(free, start, self.k_re)
        view = self._view(diagonal)
        engine = view._engine
        theta0 = view._theta_from_params(engine, start)
        if theta_start is not None:
            theta0 = np.asarray(theta_start, dtype=float).copy()
        fixed = view._fixed_theta(engine, free)
        fit = fit_engine(
            engine,
            reml,
            theta0,
            fixed,
            do_cg,
            engine_opts,
            engine_start=start is None and theta_start is None,
        )
        hist = [dataclasses.asdict(fit.optsum)] if full_output else None
        return MixedLMCompatResults.of_model(fit, view, free, self.use_sqrt, fixed, hist)

    def fit_regularized(
        self,
        start_params=None,
        method="l1",
        alpha=0,
        ceps: float = 1e-4,
        ptol: float = 1e-6,
        maxit: int = 200,
        **fit_kwargs,
    ):
        """Penalized fixed effects (statsmodels' arguments); see `.regularized`.

        ``method="l1"``: the unpenalized fit's covariance, β by L1 coordinate descent with
        weights ``alpha`` (scalar or (k_fe,)), ``ceps``, ``ptol``, ``maxit``. A penalty
        object (statsmodels' ``L2``, ``PseudoHuber``, weights scaled by ``alpha``):
        ℓ(β, ψ) − pen(β) maximized over both. ``start_params`` and ``fit_kwargs`` go to
        `fit` (statsmodels does not use ``start_params``; the optimum is the same).
        """
        if start_params is not None:
            fit_kwargs = dict(fit_kwargs, start_params=start_params)
        return regularized.fit_regularized(self, method, alpha, ceps, ptol, maxit, fit_kwargs)

    # ---- other statsmodels model methods -------------------------------------------------
    def predict(self, params, exog=None) -> np.ndarray:
        """Xβ for ``params`` (a MixedLMParams or a vector starting with β)."""
        X = self.exog if exog is None else np.asarray(exog, dtype=float)  # streamed: exog needed
        beta = params.fe_params if hasattr(params, "fe_params") else np.asarray(params)
        return X @ np.asarray(beta, dtype=float)[: self.k_fe]

    def loglike(self, params, profile_fe: bool = True) -> float:
        """statsmodels' log-likelihood (scale profiled out) at ``params``.

        ``params``: a MixedLMParams or the packed covariance parameters (``use_sqrt``
        form). ``profile_fe``: β at its GLS estimate; False uses ``params.fe_params``.
        REML or ML as ``self.reml`` (set by the last ``fit``).
        """
        return derivatives.loglike(self, params, profile_fe)

    def score(self, params, profile_fe: bool = True) -> np.ndarray:
        """Gradient of `loglike` in the ``use_sqrt`` parametrization (statsmodels')."""
        return derivatives.score(self, params, profile_fe)

    def score_full(self, params, calc_fe: bool):
        """(score_fe, score_re, score_vc) in cov_re's and vcomp's own entries."""
        return derivatives.score_full(self, params, calc_fe)

    def score_sqrt(self, params, calc_fe: bool = True):
        """(score_fe, score_re, score_vc) in cov_re's Cholesky factor and sqrt(vcomp)."""
        return derivatives.score_sqrt(self, params, calc_fe)

    def hessian(self, params) -> tuple[np.ndarray, bool]:
        """(Hessian of ``loglike(profile_fe=False)`` in (β, cov_re, vcomp), singular?)."""
        return derivatives.hessian(self, params)

    def get_fe_params(self, cov_re, vcomp, tol: float = 1e-10) -> tuple[np.ndarray, bool]:
        """(GLS β at the covariance (profile scale), is cov_re singular?)."""
        params = MixedLMParams.from_components(cov_re=cov_re, vcomp=vcomp)
        point = derivatives.ParameterPoint.at(self, params, profile_fe=True)
        sing = bool(self.k_re and np.linalg.eigvalsh(np.asarray(cov_re, float)).min() < tol)
        return point.beta, sing

    def get_scale(self, fe_params, cov_re, vcomp) -> float:
        """σ̂² = Q(β)/(n − p) (REML) or Q(β)/n (ML) at the covariance (profile scale)."""
        params = MixedLMParams.from_components(fe_params, cov_re=cov_re, vcomp=vcomp)
        point = derivatives.ParameterPoint.at(self, params, profile_fe=False)
        return point.Q / point.fac

    def get_distribution(self, params, scale: float, exog=None) -> MixedLMDistribution:
        """The model's distribution at packed ``params`` (β, cov_re/scale, vcomp/scale).

        ``.rvs(n, rng=None)`` draws one response vector (``n`` is not used, as in
        statsmodels); ``exog`` (n, k_fe) replaces the model's fixed-effects design.
        """
        return MixedLMDistribution(self, params, scale, exog)

    def __repr__(self) -> str:
        return f"<sparselme MixedLM nobs={self.nobs} groups={self.n_groups}>"


mixedlm = MixedLM.from_formula
