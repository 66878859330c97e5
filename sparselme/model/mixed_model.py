"""The model: a design, its cross-products and the penalized least-squares objective.

``LinearMixedModel`` is kept apart from its results: ``fit()`` runs the optimizer over θ
and returns a `MixedLMResults`. ``lmer()`` is the lme4-style
entry point.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from sksparse.cholmod import CholmodNotPositiveDefiniteError

from ..data import validation
from ..data.design import Design, build_design
from ..data.formula import parse_formula
from ..engine.cholesky import blas_threads
from ..engine.crossprod import compute_crossproducts
from ..engine.objective import PenalizedLeastSquares
from ..engine.optimize import SINGULAR_TOL, OptSummary, optimize_checked
from ..engine.start import initial_steps, moment_start
from ..errors import ConvergenceWarning, SingularFitWarning
from ..progress import FitProgress
from .results import MixedLMResults

__all__ = ["LinearMixedModel", "lmer"]

# lme4 computes derivatives for its convergence check only below this many observations.
_DERIVS_MAX_NOBS = 10_000


class LinearMixedModel:
    """A linear mixed model y = Xβ + Zb + ε on one global sparse Z.

    Build it from a `Design` or with `from_formula`.
    """

    def __init__(self, design: Design, ordering: str = "default", factorization: str = "auto"):
        self.design = design
        self.cp = compute_crossproducts(design.terms, design.X, design.y_centered, design.weights)
        self.pls = PenalizedLeastSquares(
            design.terms, self.cp, ordering=ordering, factorization=factorization
        )

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

    @property
    def lower_bounds(self) -> np.ndarray:
        return self.pls.lower_bounds

    def objective(self, theta: np.ndarray, reml: bool = True) -> float:
        """Profiled deviance (REML criterion or −2 log-likelihood) at θ.

        +inf where rounding makes the penalized system not positive definite (θ's far
        out of scale): the optimizer backs off from there instead of failing.
        """
        with blas_threads(self.pls.chol.blas_threads):
            try:
                return self.pls.deviance(theta, reml=reml)
            except (np.linalg.LinAlgError, CholmodNotPositiveDefiniteError):
                self.pls.chol.theta = None  # the factor is not that of any θ now
                return np.inf

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
    ) -> MixedLMResults:
        """Minimize the profiled deviance over θ with BOBYQA and return the results.

        ``fixed_theta`` (n_theta,) holds θ entries to keep fixed, NaN for free ones (used
        by constrained covariances and profiles). After BOBYQA: boundary snapping; below
        10,000 observations (as lme4, unless ``check_derivatives`` says otherwise) a
        finite-difference gradient check, BOBYQA restarts when it fails (badly scaled θ),
        and Newton steps on those derivatives (``polish``). ``verbose``: progress on
        stderr (see `sparselme.progress`).
        """
        REML = validation.check_flag(REML, "REML")
        maxeval = validation.check_maxeval(maxeval)
        n_theta = len(self.lower_bounds)
        free = np.ones(n_theta, bool) if fixed_theta is None else np.isnan(fixed_theta)
        options = dict(maxeval=maxeval, ftol_abs=ftol_abs, xtol_abs=xtol_abs, keep_log=keep_log)
        if start is None:
            x0, estimated = moment_start(self.design.terms, self.cp, self.pls.theta_offsets)
            if estimated[free].all():  # a good start deserves a smaller first trust region
                steps = initial_steps(self.design.terms, x0, self.pls.theta_offsets)
                options["initial_step"] = steps[free]
        else:
            x0 = validation.check_start(start, self.lower_bounds)
        if fixed_theta is not None:
            x0[~free] = fixed_theta[~free]
        if check_derivatives is None:
            check_derivatives = self.design.nobs < _DERIVS_MAX_NOBS

        def f(x: np.ndarray) -> float:
            theta = x0.copy()
            theta[free] = x
            return self.objective(theta, REML)

        progress = FitProgress("REML criterion" if REML else "deviance", verbose=verbose)
        lower = self.lower_bounds[free]
        with blas_threads(self.pls.chol.blas_threads), progress:
            optsum = optimize_checked(
                f,
                x0[free],
                lower,
                check_derivatives=check_derivatives,
                max_restarts=max_restarts,
                polish=polish,
                callback=progress,
                **options,
            )
            optsum.expand(x0, free, self.lower_bounds)
            validation.check_optimum(optsum.fmin, optsum.final)
            solution = self.pls.solve(optsum.final)
        _warn_about(optsum, self.lower_bounds)
        return MixedLMResults(self, solution, optsum, reml=REML, r_names=r_names)


def _warn_about(optsum: OptSummary, lower: np.ndarray) -> None:
    if optsum.returnvalue == "NLOPT_MAXEVAL_REACHED":
        g = optsum.gradient
        grad = "" if g is None else f"; gradient {np.array2string(g, precision=4)}"
        warnings.warn(
            f"optimizer stopped after {optsum.feval} evaluations (maxeval) before converging{grad}",
            ConvergenceWarning,
            stacklevel=3,
        )
    for m in optsum.messages:
        warnings.warn(f"model may not have converged: {m}", ConvergenceWarning, stacklevel=3)
    if np.any(optsum.final[lower == 0] < SINGULAR_TOL):
        warnings.warn(
            "boundary (singular) fit: a variance component is estimated as zero",
            SingularFitWarning,
            stacklevel=3,
        )


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

    lme4's ``lmer(formula, data, REML = TRUE)``: the profiled deviance is minimized over
    the relative covariance factor θ with BOBYQA, with lme4's boundary and gradient checks.

    Parameters
    ----------
    formula : str
        Response, fixed effects and bar terms, e.g. ``"Reaction ~ Days + (Days | Subject)"``:
        ``(expr | g)`` correlated, ``(expr || g)`` independent, ``(1 | a/b)`` nested,
        ``(1 | a) + (1 | b)`` crossed random effects.
    data : pandas.DataFrame, dict of columns, str or pathlib.Path, pyarrow or Dask data
        The n rows. A Parquet file or folder, a ``pyarrow.dataset.Dataset`` or ``Table``,
        or a ``dask.dataframe.DataFrame`` is read in chunks and never held in memory.
    REML : bool, default True
        Restricted maximum likelihood; False fits by maximum likelihood.
    weights : array_like of shape (n,) or str, optional
        Prior weights, or the name of their column (a column name for streamed data).
    offset : array_like of shape (n,) or str, optional
        A known term added to the linear predictor, or the name of its column.
    missing : {"raise", "drop"}, default "raise"
        Rows with missing values in the model's columns raise
        `sparselme.errors.MissingDataError`, or are dropped with a warning.
    residual : VarIdent or AR1, optional
        A residual variance structure, ``sl.VarIdent(...)`` or ``sl.AR1(...)`` (see
        `sparselme.residual`); data in memory only.
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
        - ``chunk_size`` (int): rows per chunk, for streamed data only.

    Returns
    -------
    MixedLMResults
        The fit (`ResidualMixedLMResults` with a residual structure, a streamed result for
        streamed data).

    Raises
    ------
    sparselme.errors.FormulaError
        The formula cannot be parsed, or has no random-effects term.
    sparselme.errors.UnknownColumnError
        A variable of the formula is not a column of ``data``.
    sparselme.errors.DataError
        The data cannot be used as given (missing values, a random-effects structure the
        data cannot estimate...); the message says what to change.

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
    if residual is not None:
        from ..residual_covariance import lmer_residual

        return lmer_residual(formula, data, residual, REML, weights, offset, missing, **fit_kwargs)
    if validation.is_streamable(data):  # a Parquet path, pyarrow Dataset or Dask DataFrame
        from ..distributed import lmer_streamed  # out of core

        return lmer_streamed(formula, data, REML, weights, offset, missing, **fit_kwargs)
    model = LinearMixedModel.from_formula(
        formula, data, weights=weights, offset=offset, missing=missing
    )
    return model.fit(REML=REML, **fit_kwargs)
