"""The model: a design, its cross-products and the penalized least-squares objective.

``LinearMixedModel`` is kept apart from its results: ``fit()`` runs the optimizer over θ
and returns a :class:`~sparselme.results.MixedLMResults`. ``lmer()`` is the lme4-style
entry point.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from sksparse.cholmod import CholmodNotPositiveDefiniteError

from ..data import validation
from ..engine.cholesky import blas_threads
from ..engine.crossprod import compute_crossproducts
from ..data.design import Design, build_design
from ..errors import ConvergenceWarning, NumericalError, SingularFitWarning
from ..data.fixed_scaling import FixedScaling
from ..data.formula import parse_formula
from ..engine.optimize import SINGULAR_TOL, OptSummary, optimize_checked
from ..engine.objective import PenalizedLeastSquares
from ..progress import FitProgress
from .results import MixedLMResults
from ..engine.start import initial_steps, moment_start, theta_scales

__all__ = ["LinearMixedModel", "lmer"]

# lme4 computes derivatives for its convergence check only below this many observations.
_DERIVS_MAX_NOBS = 10_000


class LinearMixedModel:
    """A linear mixed model y = Xβ + Zb + ε on one global sparse Z.

    Build it from a :class:`~sparselme.design.Design` or with :meth:`from_formula`.
    """

    def __init__(self, design: Design, ordering: str = "default", factorization: str = "auto"):
        self.design = design
        fixed = FixedScaling.of(design.X, design.y_centered)  # X̃ = XA, well scaled
        self.cp = compute_crossproducts(
            design.terms, fixed.apply(design.X), fixed.apply_y(design.y_centered), design.weights
        )
        self.pls = PenalizedLeastSquares(
            design.terms, self.cp, ordering=ordering, factorization=factorization, fixed=fixed
        )

    @property
    def fixed(self) -> FixedScaling:
        """The engine's reparametrization X̃ = X A of the fixed effects."""
        return self.pls.fixed

    def engine_X(self) -> np.ndarray:
        """(n, p) X̃ = X A, the fixed-effects columns the cross-products hold."""
        return self.fixed.apply(self.design.X)

    def engine_y(self, y: np.ndarray | None = None) -> np.ndarray:
        """(n,) ỹ: the response net of any offset (or ``y``), centred as in the cross-products."""
        return self.fixed.apply_y(self.design.y_centered if y is None else y)

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
            except (np.linalg.LinAlgError, CholmodNotPositiveDefiniteError, NumericalError):
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
        stderr (see :mod:`.progress`).
        """
        REML = validation.check_flag(REML, "REML")
        maxeval = validation.check_maxeval(maxeval)
        n_theta = len(self.lower_bounds)
        free = np.ones(n_theta, bool) if fixed_theta is None else np.isnan(fixed_theta)
        options = dict(maxeval=maxeval, ftol_abs=ftol_abs, xtol_abs=xtol_abs, keep_log=keep_log)
        d = theta_scales(self.design.terms, self.cp)  # BOBYQA searches d·θ (d = 1: as is)
        if start is None:
            x0, estimated = moment_start(self.design.terms, self.cp, self.pls.theta_offsets)
            if estimated[free].all():  # a good start deserves a smaller first trust region
                steps = initial_steps(self.design.terms, x0 * d, self.pls.theta_offsets)
                options["initial_step"] = steps[free]
        else:
            x0 = validation.check_start(start, self.lower_bounds)
        if fixed_theta is not None:
            x0[~free] = fixed_theta[~free]
        if check_derivatives is None:
            check_derivatives = self.design.nobs < _DERIVS_MAX_NOBS

        def f(x: np.ndarray) -> float:
            theta = x0.copy()
            theta[free] = x / d[free]
            return self.objective(theta, REML)

        progress = FitProgress("REML criterion" if REML else "deviance", verbose=verbose)
        lower = self.lower_bounds[free]
        with blas_threads(self.pls.chol.blas_threads), progress:
            optsum = optimize_checked(
                f,
                x0[free] * d[free],
                lower,
                check_derivatives=check_derivatives,
                max_restarts=max_restarts,
                polish=polish,
                callback=progress,
                **options,
            )
            optsum.unscale(d[free])
            optsum.expand(x0, free, self.lower_bounds)
            optsum.theta_scale = None if np.all(d == 1) else d
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
    if np.any(optsum.scaled_final()[lower == 0] < SINGULAR_TOL):
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

    ``residual``: a residual structure, ``sl.VarIdent(...)`` or ``sl.AR1(...)`` (see
    :mod:`sparselme.residual`).

    >>> res = lmer("Reaction ~ Days + (Days | Subject)", sleepstudy)  # doctest: +SKIP
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
