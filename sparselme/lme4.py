"""The lme4-style front end: ``lmer()`` and the model classes whose ``fit()`` users call.

``lmer`` sends each input down the one spine: a DataFrame to :class:`LinearMixedModel`
(or :class:`ResidualModel` with ``residual=``), a Parquet path, pyarrow dataset or Dask
frame to the streamed cross-products (:mod:`sparselme.streaming`); every path ends in
the same :class:`~sparselme.results.MixedLMResults`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from .data import validation
from .data.design import build_design
from .data.formula import parse_formula
from .engine.fit import FitOptions
from .model.mixed_model import MixedModel
from .residual_covariance import model as residual_model
from .results import MixedLMResults, ResidualMixedLMResults

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
        return fit_model(
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


def fit_model(
    model: MixedModel,
    results_class: type[MixedLMResults],
    REML: bool = True,  # noqa: N803 - lme4's argument name
    start: np.ndarray | None = None,
    *,
    name_style: str = "r",
    **fit_args,
) -> MixedLMResults:
    """Fit a model of the engine (:meth:`MixedModel.optimize`); return the users' results."""
    fit = model.optimize(REML, start, **fit_args)
    return results_class.from_fit(fit, name_style=name_style)


class LinearMixedModel(_LmerFit, MixedModel):
    """A linear mixed model y = Xβ + Zb + ε on one global sparse Z (lme4-style ``fit``).

    Build it from a :class:`~sparselme.data.design.Design` or with :meth:`from_formula`.
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
        design = build_design(parsed, data, weights=weights, offset=offset, missing=missing)
        return cls(design, **engine)


class ResidualModel(_LmerFit, residual_model.ResidualModel):
    """A model with a residual structure (``sl.VarIdent``, ``sl.AR1``); lme4-style ``fit``.

    ``fit(start=...)`` takes θ or (θ, ρ); the residual parameters start at their initial
    values (δ = 1, φ = 0) unless given.
    """

    results_class = ResidualMixedLMResults


def lmer(
    formula: str,
    data: pd.DataFrame,
    REML: bool = True,  # noqa: N803 - lme4's argument name
    weights: np.ndarray | str | None = None,
    offset: np.ndarray | str | None = None,
    missing: str = "raise",
    residual=None,
    **fit_kwargs,
) -> MixedLMResults:
    """Fit a linear mixed model written in lme4's formula language; returns the results.

    Parameters
    ----------
    formula : lme4 formula, e.g. ``"Reaction ~ Days + (Days | Subject)"``.
    data : a pandas DataFrame; or a Parquet file/folder, pyarrow dataset or Dask
        DataFrame, fitted out of core from streamed cross-products.
    REML : REML (default) or maximum likelihood.
    weights, offset : prior weights and an offset: arrays or column names.
    missing : "raise" (default), "drop" or "none" for rows with missing values.
    residual : a residual structure, ``sl.VarIdent(...)`` or ``sl.AR1(...)``.
    **fit_kwargs : passed to :meth:`LinearMixedModel.fit` (``verbose``, ``maxeval``,
        ``start``, ``callback``, ...).

    Examples
    --------
    >>> res = lmer("Reaction ~ Days + (Days | Subject)", sleepstudy)  # doctest: +SKIP
    """
    if residual is not None:
        if validation.is_streamable(data):
            raise NotImplementedError(
                f"residual structures ({residual}) need the data in memory (a DataFrame); "
                "streamed and Dask data are not supported"
            )
        model = ResidualModel.from_formula(
            formula, data, residual, weights=weights, offset=offset, missing=missing
        )
        return model.fit(REML=REML, **fit_kwargs)
    if validation.is_streamable(data):  # a Parquet path, pyarrow Dataset or Dask DataFrame
        engine = {k: fit_kwargs.pop(k) for k in ("ordering", "factorization") if k in fit_kwargs}
        chunk_size = fit_kwargs.pop("chunk_size", None)
        from .streaming import streamed_design  # the distributed code only for such inputs

        design, cp = streamed_design(formula, data, weights, offset, missing, chunk_size)
        return LinearMixedModel(design, cp=cp, **engine).fit(REML=REML, **fit_kwargs)
    model = LinearMixedModel.from_formula(
        formula, data, weights=weights, offset=offset, missing=missing
    )
    return model.fit(REML=REML, **fit_kwargs)
