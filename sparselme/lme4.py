"""The lme4-style front end: ``lmer()`` and the model classes whose ``fit()`` users call.

``lmer`` sends each input down the one spine: a DataFrame to `LinearMixedModel`
(or `ResidualModel` with ``residual=``), a Parquet path, pyarrow dataset or Dask
frame to the streamed cross-products (`sparselme.streaming`); every path ends in
the same `sparselme.results.MixedLMResults`.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
import pandas as pd

from .data import validation
from .data.design import build_design
from .data.formula import parse_formula
from .engine.fit import FitOptions
from .errors import EstimatorChoiceWarning, EstimatorError, ProblemTooLargeError
from .model.mixed_model import MixedModel
from .residual_covariance import model as residual_model
from .results import MixedLMResults, ResidualMixedLMResults, storage

__all__ = ["lmer", "LinearMixedModel", "ResidualModel", "fit_model"]


class _LmerFit:
    """lme4's ``fit`` arguments on a model of the engine; returns the users' results."""

    results_class: type[MixedLMResults] = MixedLMResults

    def fit(
        self,
        REML: bool = True,  # noqa: N803 - lme4's argument name
        start: np.ndarray | None = None,
        *,
        fixed_theta: np.ndarray | None = None,
        maxeval: int = 100_000,
        ftol_abs: float = 1e-8,
        xtol_abs: float = 1e-8,
        check_derivatives: bool | None = None,
        max_restarts: int = 2,
        polish: bool = True,
        keep_log: bool = False,
        r_names: bool = True,
        verbose: bool | None = None,
        callback: Callable[[int, np.ndarray, float], None] | None = None,
    ) -> MixedLMResults:
        """Minimize the profiled deviance with BOBYQA and return the results.

        Parameters
        ----------
        REML : REML (default) or maximum likelihood.
        start : (n_theta,) starting θ, or all parameters; default: moment estimates.
        fixed_theta : (n_theta,) θ entries to hold fixed, NaN for free ones.
        maxeval, ftol_abs, xtol_abs : BOBYQA's evaluation budget and tolerances.
        check_derivatives : lme4's finite-difference gradient check (default: below
            10,000 observations), with up to ``max_restarts`` BOBYQA restarts when it
            fails and Newton steps on those derivatives (``polish``).
        keep_log : keep every evaluated (θ, criterion) in ``optsum.fitlog``.
        r_names : fixed effects named as R does (``(Intercept)``) or as formulaic does.
        verbose : progress on stderr (None: when slow and stderr is a terminal).
        callback : ``callback(evaluation, x, value)`` after every evaluation.
        """
        options = FitOptions(
            maxeval=maxeval,
            ftol_abs=ftol_abs,
            xtol_abs=xtol_abs,
            check_derivatives=check_derivatives,
            max_restarts=max_restarts,
            polish=polish,
            keep_log=keep_log,
        )
        res = fit_model(
            self,
            self.results_class,
            REML,
            start,
            fixed=fixed_theta,
            options=options,
            callback=callback,
            verbose=verbose,
            name_style="r" if r_names else "formulaic",
        )
        res.na_action = getattr(self, "na_action", "omit")
        return res

    def restore_optsum(
        self,
        source,
        REML: bool | None = None,  # noqa: N803 - lme4's argument name
        *,
        r_names: bool = True,
    ) -> MixedLMResults:
        """The fit recorded by ``res.save_optsum``, restored without optimizing
        (MixedModels.jl's ``restoreoptsum!``).

        Parameters
        ----------
        source : str, os.PathLike, text file object or dict
            The JSON record (or its contents).
        REML : bool, optional
            The criterion expected; default: the record's.
        r_names : bool, default True
            Fixed effects named as R does (``(Intercept)``) or as formulaic does.

        Returns
        -------
        MixedLMResults
            The results at the recorded parameters, with the recorded ``optsum``.

        Raises
        ------
        sparselme.errors.DataError
            The record was made on other data or another model (what differs is named).
        """
        fit = storage.restore_optsum(self, source, REML)
        return self.results_class.from_fit(fit, name_style="r" if r_names else "formulaic")


def fit_model(
    model: MixedModel,
    results_class: type[MixedLMResults],
    REML: bool = True,  # noqa: N803 - lme4's argument name
    start: np.ndarray | None = None,
    *,
    name_style: str = "r",
    **fit_args,
) -> MixedLMResults:
    """Fit a model of the engine (`MixedModel.optimize`); return the users' results."""
    fit = model.optimize(REML, start, **fit_args)
    return results_class.from_fit(fit, name_style=name_style)


class LinearMixedModel(_LmerFit, MixedModel):
    """A linear mixed model y = Xβ + Zb + ε on one global sparse Z (lme4-style ``fit``).

    Build it from a `sparselme.data.design.Design` or with `from_formula`.
    """

    @classmethod
    def from_formula(
        cls,
        formula: str,
        data: pd.DataFrame,
        weights: np.ndarray | str | None = None,
        offset: np.ndarray | str | None = None,
        missing: str = "raise",
        **engine,
    ) -> LinearMixedModel:
        """Parse an lme4 formula and materialize it on ``data``.

        ``engine`` options (``ordering``, ``factorization``) go to the PLS objective.
        """
        parsed = parse_formula(formula)
        validation.check_has_random_terms(parsed.bars, formula)
        rows, na_action = _na_action(missing)
        design = build_design(parsed, data, weights=weights, offset=offset, missing=rows)
        model = cls(design, **engine)
        model.na_action = na_action
        # how the model was built, for update() (the data are referenced, not copied)
        model.call = dict(
            formula=formula, data=data, weights=weights, offset=offset, missing=missing,
            engine=engine,
        )
        return model


def _na_action(missing: str) -> tuple[str, str]:
    """(the design's ``missing``, the results' ``na_action``): ``"exclude"`` is R's
    na.exclude, rows dropped as with ``"drop"`` and NaN-padded in the row outputs."""
    return ("drop", "exclude") if missing == "exclude" else (missing, "omit")


class ResidualModel(_LmerFit, residual_model.ResidualModel):
    """A model with a residual structure (``sl.VarIdent``, ``sl.AR1``); lme4-style ``fit``.

    ``fit(start=...)`` takes θ or (θ, ρ); ``fit(residual_start=ρ)`` sets where ρ (δ's or
    φ) starts, by default at its current value (initially δ = 1, φ = 0).
    """

    results_class = ResidualMixedLMResults

    def fit(self, REML: bool = True, start=None, *, residual_start=None, **fit_kwargs):  # noqa: N803
        """lme4-style fit (see `LinearMixedModel.fit`) with ``residual_start``."""
        if residual_start is not None:
            self.set_residual(residual_start)
        return _LmerFit.fit(self, REML, start, **fit_kwargs)


def lmer(
    formula: str,
    data: pd.DataFrame,
    REML: bool = True,  # noqa: N803 - lme4's argument name
    weights: np.ndarray | str | None = None,
    offset: np.ndarray | str | None = None,
    missing: str = "raise",
    residual=None,
    optsum=None,
    estimator: str = "exact",
    **fit_kwargs,
) -> MixedLMResults:
    """Fit a linear mixed model written in lme4's formula language; returns the results.

    lme4's ``lmer(formula, data, REML = TRUE)``: the profiled deviance is minimized over
    the relative covariance factor θ with BOBYQA, with lme4's boundary and gradient checks.

    Parameters
    ----------
    formula : str
        Response, fixed effects and bar terms, e.g. ``"Reaction ~ Days + (Days | Subject)"``:
        ``(expr | g)`` correlated, ``(expr || g)`` independent, ``(1 | a/b)`` nested,
        ``(1 | a) + (1 | b)`` crossed random effects; a covariance structure around a bar
        term: ``us``, ``diag``, ``homdiag``, ``cs``, ``homcs``, ``ar1(0 + t | g)``,
        ``toep(0 + t | g)``, ``rr(x | g, d = 2)`` (see the Covariance structures page).
    data : DataFrame (pandas, polars, pyarrow ...), dict of columns, path, Dask data
        The n rows. Other libraries' frames (and anything with the Arrow PyCapsule or
        dataframe interchange protocol) are converted to pandas, a CSV file up to 256 MB
        is read. A Parquet file or folder, a larger CSV file, a
        ``pyarrow.dataset.Dataset`` or a ``dask.dataframe.DataFrame`` is read in chunks
        and never held in memory.
    REML : bool, default True
        Restricted maximum likelihood; False fits by maximum likelihood. (statsmodels'
        spelling ``reml=`` is refused with a message that points here.)
    weights : array_like of shape (n,) or str, optional
        Prior weights, or the name of their column (a column name for streamed data).
    offset : array_like of shape (n,) or str, optional
        A known term added to the linear predictor, or the name of its column.
    missing : {"raise", "drop", "exclude"}, default "raise"
        Rows with missing values in the model's columns raise
        `sparselme.errors.MissingDataError` (R's na.fail), or are dropped with a warning:
        with "drop" (R's na.omit) ``fittedvalues`` and ``resid`` have the kept rows, with
        "exclude" (R's na.exclude) they have every row given, NaN where a row was dropped
        (``res.na_action`` switches between the two afterwards).
    residual : VarIdent or AR1, optional
        A residual variance structure, ``sl.VarIdent(...)`` or ``sl.AR1(...)`` (see
        `sparselme.residual`); data in memory only.
    optsum : str, os.PathLike, text file object or dict, optional
        A record written by ``res.save_optsum(path)``: the fit is restored from it on
        these data without optimizing (`LinearMixedModel.restore_optsum`); data that do
        not match the record's raise `sparselme.errors.DataError`.
    estimator : {"exact", "moments", "auto"}, default "exact"
        "exact" minimizes the REML (or ML) criterion. "moments" fits crossed random
        intercepts ``(1 | a) + (1 | b) (+ (1 | a:b))`` by the method of moments and GLS in
        time linear in the rows (`sparselme.results.moments.MomentsResults`: no
        likelihood; see the Very large crossed designs page); its settings are
        ``variance_reps``, ``seed``, ``solver``, ``tol``, ``max_iter``, ``cell_budget``,
        ``chunk_size``. "auto" fits exactly unless the exact fit's estimate of its memory
        or time refuses it (`sparselme.errors.ProblemTooLargeError`), then by moments with
        an `sparselme.errors.EstimatorChoiceWarning`; ``res.estimator`` and
        ``res.estimator_reason`` say which.
    **fit_kwargs
        Settings of the fit (`LinearMixedModel.fit`):

        - ``verbose`` (bool or None): progress on stderr. None (default) reports only on a
          terminal once the fit has run about two seconds; True always; False never.
        - ``maxeval`` (int, default 100,000): the most deviance evaluations.
        - ``ftol_abs``, ``xtol_abs`` (float, default 1e-8): BOBYQA stops when the deviance,
          or every θ, changes by less.
        - ``start`` (array of shape (n_theta,)): the starting θ, instead of moment estimates.
        - ``check_derivatives`` (bool): the finite-difference gradient and Hessian check
          (default: below 10,000 observations, as lme4), ``max_restarts`` (int, default 2)
          BOBYQA restarts when it fails, ``polish`` (bool, default True) Newton steps after it.
        - ``keep_log`` (bool, default False): keep every evaluation in ``res.optsum``.
        - ``callback`` (callable): ``callback(evaluation, x, value)`` after every evaluation.
        - ``chunk_size`` (int): rows per chunk, for streamed data only.

    Returns
    -------
    MixedLMResults
        The fit (`ResidualMixedLMResults` with a residual structure); streamed data give the
        same results, whose fitted values and residuals are computed chunk by chunk.

    Raises
    ------
    sparselme.errors.FormulaError
        The formula cannot be parsed, or has no random-effects term.
    sparselme.errors.UnknownColumnError
        A variable of the formula is not a column of ``data``.
    sparselme.errors.DataError
        The data cannot be used as given (missing values, a random-effects structure the
        data cannot estimate...); the message says what to change.
    sparselme.errors.ProblemTooLargeError
        The exact fit would not fit in memory or would take over an hour per evaluation
        (the message names ``estimator="moments"``).
    sparselme.errors.EstimatorError
        ``estimator="moments"`` was asked for a model it does not fit (random slopes,
        weights, offsets, residual structures, ``REML=False``).

    Examples
    --------
    >>> import sparselme as sl
    >>> sleep = sl.datasets.load("sleepstudy")
    >>> res = sl.lmer("Reaction ~ Days + (Days | Subject)", sleep)
    >>> res.fe_params.round(2)
    (Intercept)    251.41
    Days            10.47
    Name: fe_params, dtype: float64
    """
    if "reml" in fit_kwargs:
        raise TypeError(
            "lmer() has no argument 'reml': lme4 spells it REML (REML=False fits by maximum "
            "likelihood); reml= is the statsmodels API's spelling, sl.mixedlm(...).fit(reml=...)"
        )
    if estimator not in ("exact", "moments", "auto"):
        raise ValueError(f"estimator must be 'exact', 'moments' or 'auto', not {estimator!r}")
    if estimator != "exact":
        return _lmer_by_estimator(
            estimator, formula, data, REML, weights, offset, missing, residual, optsum,
            fit_kwargs,
        )
    model = _exact_model(formula, data, weights, offset, missing, residual, fit_kwargs)
    if optsum is None:
        return model.fit(REML=REML, **fit_kwargs)
    unused = sorted(set(fit_kwargs) - {"r_names", "verbose"})
    if unused:
        raise TypeError(
            f"lmer(optsum=...) restores a fit without optimizing: {unused} do not apply"
        )
    return model.restore_optsum(optsum, REML, r_names=fit_kwargs.get("r_names", True))


def _exact_model(formula, data, weights, offset, missing, residual, fit_kwargs: dict):
    """The exact model of lmer's input (pops the engine and chunk settings from
    ``fit_kwargs``); raises ProblemTooLargeError where the exact fit cannot run."""
    if residual is not None:
        if validation.is_streamable(data):
            raise NotImplementedError(
                f"residual structures ({residual}) need the data in memory (a DataFrame); "
                "streamed and Dask data are not supported"
            )
        rows, na_action = _na_action(missing)
        model = ResidualModel.from_formula(
            formula, data, residual, weights=weights, offset=offset, missing=rows
        )
        model.na_action = na_action
    elif validation.is_streamable(data):  # a Parquet path, pyarrow Dataset or Dask DataFrame
        missing = _na_action(missing)[0]  # streamed outputs are computed chunk by chunk
        engine = {k: fit_kwargs.pop(k) for k in ("ordering", "factorization") if k in fit_kwargs}
        chunk_size = fit_kwargs.pop("chunk_size", None)
        from .streaming import streamed_design  # the distributed code only for such inputs

        design, cp = streamed_design(
            formula, data, weights, offset, missing, chunk_size,
            factorization=engine.get("factorization", "auto"),
        )
        model = LinearMixedModel(design, cp=cp, **engine)
    else:
        model = LinearMixedModel.from_formula(
            formula, data, weights=weights, offset=offset, missing=missing
        )
    return model


def _lmer_by_estimator(
    estimator, formula, data, REML, weights, offset, missing, residual, optsum,  # noqa: N803
    fit_kwargs: dict,
) -> MixedLMResults:
    """lmer with ``estimator="moments"`` or ``"auto"`` (see `lmer`)."""
    from .data.formula import parse_formula as parse
    from .streaming.moments import MOMENTS_OPTIONS, check_moments_formula

    reasons = []
    if residual is not None:
        reasons.append("a residual structure (residual=)")
    if weights is not None:
        reasons.append("weights")
    if offset is not None:
        reasons.append("an offset")
    if optsum is not None:
        reasons.append("optsum= (a record of the exact optimizer)")
    if not REML:
        reasons.append("REML=False (maximum likelihood)")
    if estimator == "moments":
        if reasons:
            raise EstimatorError(
                f'estimator="moments" cannot take {", ".join(reasons)}: use estimator="exact"'
            )
        return _moments_results(formula, data, missing, fit_kwargs)
    exact_args = {k: v for k, v in fit_kwargs.items() if k not in MOMENTS_OPTIONS}
    moments_args = {k: v for k, v in fit_kwargs.items() if k in MOMENTS_OPTIONS}
    for shared in ("chunk_size", "r_names"):
        if shared in fit_kwargs:
            moments_args[shared] = fit_kwargs[shared]
    try:
        check_moments_formula(parse(formula), formula)
        moments_ok = not reasons
    except EstimatorError as exc:
        moments_ok, reasons = False, [str(exc)]
    try:
        model = _exact_model(formula, data, weights, offset, missing, residual, exact_args)
    except ProblemTooLargeError as exc:
        if not moments_ok:
            raise
        why = f'estimator="auto" chose "moments": {exc}'
        warnings.warn(why, EstimatorChoiceWarning, stacklevel=3)
        res = _moments_results(formula, data, missing, moments_args)
        res.estimator_reason = why
        return res
    if optsum is None:
        res = model.fit(REML=REML, **exact_args)
    else:
        res = model.restore_optsum(optsum, REML, r_names=exact_args.get("r_names", True))
    res.estimator_reason = 'estimator="auto" chose "exact": the exact fit is feasible'
    return res


def _moments_results(formula, data, missing, fit_kwargs: dict) -> MixedLMResults:
    from .results.moments import MomentsResults
    from .streaming.moments import fit_formula_moments

    args = dict(fit_kwargs)
    args.pop("verbose", None)
    name_style = "r" if args.pop("r_names", True) else "formulaic"
    chunk_size = args.pop("chunk_size", None)
    engine = fit_formula_moments(formula, data, missing, chunk_size, **args)
    return MomentsResults(engine, name_style=name_style)
