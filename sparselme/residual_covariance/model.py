"""The model with a residual structure: joint BOBYQA over (θ, ρ), in-place re-weighting."""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pandas as pd

from ..data import validation
from ..data.design import Design, build_design
from ..data.formula import parse_formula
from ..engine.cholesky import blas_threads
from ..engine.optimize import SINGULAR_TOL, finite_difference_derivatives, optimize_checked
from ..engine.start import moment_start
from ..errors import MissingDataError, UnknownColumnError
from ..model.mixed_model import LinearMixedModel, _warn_about
from ..progress import FitProgress
from ..engine.start import moment_start, theta_scales
from .products import CrossProductLayout
from .results import ResidualMixedLMResults
from .structures import AR1, ResidualSpec, VarIdent

__all__ = ["ResidualModel", "lmer_residual"]

# lme4 computes derivatives for its convergence check only below this many observations.
_DERIVS_MAX_NOBS = 10_000


class ResidualModel(LinearMixedModel):
    """A linear mixed model with a residual structure R(ρ): ε ~ N(0, σ²R(ρ)).

    ``frame`` holds the structure's columns for the design's rows (same order). The
    engine's cross-products are re-weighted in place for each ρ (:meth:`set_residual`);
    ``objective(θ)`` evaluates at the current ρ, :meth:`objective_at` at a given one.
    """

    def __init__(
        self,
        design: Design,
        residual: ResidualSpec,
        frame: pd.DataFrame,
        ordering: str = "default",
        factorization: str = "auto",
    ):
        super().__init__(design, ordering=ordering, factorization=factorization)
        self.residual = residual
        self.structure = residual.bind(frame, design)
        self.layout = CrossProductLayout(self.cp, design)
        w0 = np.ones(design.nobs) if design.weights is None else np.asarray(design.weights, float)
        self._prior_log_weights = float(np.sum(np.log(w0)))
        root = np.sqrt(w0)  # prior weights: W = W₀^½ R(ρ)⁻¹ W₀^½
        pieces = []
        # the engine's centred and scaled X̃ and ỹ, as in the cross-products
        engine = dataclasses.replace(design, X=self.engine_X(), y=self.engine_y(), offset=None)
        for p in self.structure.pieces:
            w = root[p.a] * root[p.a if p.b is None else p.b]
            pieces.append(self.layout.products(engine, p.a, p.b, w))
        self.pieces = np.stack(pieces)  # (J, size of the cross-products)
        self.rho = np.full(len(self.structure.initial), np.nan)
        self.set_residual(self.structure.initial)

    @classmethod
    def from_formula(
        cls,
        formula: str,
        data: pd.DataFrame,
        residual: ResidualSpec | None = None,
        weights: np.ndarray | str | None = None,
        offset: np.ndarray | str | None = None,
        missing: str = "raise",
        **engine,
    ) -> ResidualModel:
        """Parse an lme4 formula, materialize it on ``data`` with the residual structure."""
        if not isinstance(residual, (VarIdent, AR1)):
            raise TypeError(
                f"residual must be sparselme.VarIdent(...) or sparselme.AR1(...), got {residual!r}"
            )
        data = validation.as_data_frame(data)
        data = _residual_rows(data, residual, missing)
        parsed = parse_formula(formula)
        validation.check_has_random_terms(parsed.bars, formula)
        design = build_design(parsed, data, weights=weights, offset=offset, missing=missing)
        frame = data.loc[design.row_index, list(residual.columns)]
        return cls(design, residual, frame, **engine)

    # ---- ρ ------------------------------------------------------------------------------
    @property
    def n_residual(self) -> int:
        return len(self.structure.initial)

    def set_residual(self, rho: np.ndarray) -> None:
        """Re-weight the engine's cross-products for ρ (natural scale: δ's or φ)."""
        rho = np.asarray(rho, dtype=float)
        if np.array_equal(rho, self.rho):
            return
        s = self.structure
        self.layout.write(s.coefficients(rho) @ self.pieces, self.cp)
        self.cp.sum_log_weights = self._prior_log_weights + s.logdet_precision(rho)
        self.pls.refresh()
        self.rho = rho.copy()

    def objective_at(self, theta: np.ndarray, rho: np.ndarray, reml: bool = True) -> float:
        """Profiled deviance at (θ, ρ); +inf outside the parameter space."""
        rho = np.asarray(rho, dtype=float)
        if not self.structure.valid(rho):
            return np.inf
        self.set_residual(rho)
        return self.objective(theta, reml)

    # ---- fitting ------------------------------------------------------------------------
    def fit(
        self,
        REML: bool = True,  # noqa: N803 - lme4's argument name
        start: np.ndarray | None = None,
        *,
        residual_start: np.ndarray | None = None,
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
    ) -> ResidualMixedLMResults:
        """Minimize the profiled deviance jointly over (θ, ρ) with BOBYQA.

        ``start``: θ (n_theta,) or (θ, ρ); ``residual_start``: ρ (δ's or φ) — by default
        the current ρ. ``fixed_theta``, the checks and ``polish`` are as in
        :meth:`LinearMixedModel.fit`; ρ is on the optimizer's scale η (log δ, atanh φ).
        """
        REML = validation.check_flag(REML, "REML")
        maxeval = validation.check_maxeval(maxeval)
        s, n_theta = self.structure, len(self.lower_bounds)
        rho0 = self.rho.copy() if residual_start is None else np.asarray(residual_start, float)
        if start is not None and len(start) == n_theta + self.n_residual:
            start, rho0 = np.asarray(start[:n_theta], float), np.asarray(start[n_theta:], float)
        if not s.valid(rho0) or len(rho0) != self.n_residual:
            raise ValueError(f"invalid residual start {rho0!r} for {self.residual}")
        self.set_residual(rho0)
        options = dict(maxeval=maxeval, ftol_abs=ftol_abs, xtol_abs=xtol_abs, keep_log=keep_log)
        d = np.r_[theta_scales(self.design.terms, self.cp), np.ones(self.n_residual)]
        dt = d[:n_theta]  # BOBYQA searches d·θ (d = 1 unless columns are far from unit size)
        if start is None:
            theta0, estimated = moment_start(self.design.terms, self.cp, self.pls.theta_offsets)
            step_theta = np.where(estimated, np.maximum(0.2 * theta0 * dt, 0.05), 0.5)
        else:
            theta0 = np.asarray(start, dtype=float).copy()
            step_theta = np.maximum(0.2 * np.abs(theta0 * dt), 0.05)
        x0 = np.r_[theta0, s.to_free(rho0)]
        free = np.ones(len(x0), bool)
        if fixed_theta is not None:
            free[:n_theta] = np.isnan(fixed_theta)
            x0[:n_theta][~free[:n_theta]] = fixed_theta[~free[:n_theta]]
        lower_all = np.r_[self.lower_bounds, np.full(self.n_residual, -np.inf)]
        options["initial_step"] = np.r_[step_theta, np.full(self.n_residual, 0.3)][free]
        if check_derivatives is None:
            check_derivatives = self.design.nobs < _DERIVS_MAX_NOBS

        def f(x: np.ndarray) -> float:  # x: d·(θ, η) of the free entries
            full = x0.copy()
            full[free] = x / d[free]
            return self.objective_at(full[:n_theta], s.from_free(full[n_theta:]), REML)

        progress = FitProgress("REML criterion" if REML else "deviance", verbose=verbose)
        lower = lower_all[free]
        with blas_threads(self.pls.chol.blas_threads), progress:
            optsum = optimize_checked(
                f, x0[free] * d[free], lower, check_derivatives=check_derivatives,
                max_restarts=max_restarts, polish=polish, callback=progress, **options,
            )
            optsum.unscale(d[free])
            optsum.expand(x0, free, lower_all)
            optsum.theta_scale = None if np.all(d == 1) else d
            theta, rho = optsum.final[:n_theta], s.from_free(optsum.final[n_theta:])
            self.set_residual(rho)
            solution = self.pls.solve(theta)
            cov_rho = self._residual_covariance(theta, rho, REML)
        _warn_about(optsum, lower_all)
        return ResidualMixedLMResults(
            self, solution, optsum, reml=REML, rho=rho, cov_rho=cov_rho, r_names=r_names
        )

    def _residual_covariance(self, theta: np.ndarray, rho: np.ndarray, reml: bool) -> np.ndarray:
        """(n_rho, n_rho) 2·[H⁻¹]_ρρ, H the Hessian of the profiled deviance in (θ, ρ).

        θ's on the boundary are held fixed; NaN where H is not positive definite.
        """
        keep = ~((self.lower_bounds == 0) & (theta < SINGULAR_TOL))
        x = np.r_[theta[keep], rho]

        def f(z: np.ndarray) -> float:
            th = theta.copy()
            th[keep] = z[: keep.sum()]
            return self.objective_at(th, z[keep.sum() :], reml)

        lower = np.r_[self.lower_bounds[keep], np.full(len(rho), -np.inf)]
        _, H = finite_difference_derivatives(f, x, lower)
        self.set_residual(rho)
        self.pls.solve(theta)  # leave the factor at the estimates
        m = len(rho)
        try:
            if not np.all(np.isfinite(H)):
                raise np.linalg.LinAlgError("not finite")
            np.linalg.cholesky(H)
            cov = 2.0 * np.linalg.inv(H)[-m:, -m:]
        except np.linalg.LinAlgError:
            warnings.warn(
                "the Hessian of the deviance in the residual parameters is not positive "
                "definite; their standard errors are NaN",
                UserWarning,
                stacklevel=4,
            )
            cov = np.full((m, m), np.nan)
        return cov


def _residual_rows(data: pd.DataFrame, residual: ResidualSpec, missing: str) -> pd.DataFrame:
    """Check the structure's columns; drop (missing="drop") or refuse rows missing them."""
    validation.check_missing_option(missing)
    for name in residual.columns:
        if name not in data.columns:
            raise UnknownColumnError(name, data.columns, note=f" (used by {residual})")
    if not data.index.is_unique:
        data = data.reset_index(drop=True)
    bad = np.zeros(len(data), bool)
    for name in residual.columns:
        bad |= data[name].isna().to_numpy()
    if bad.any():
        if missing != "drop":
            cols = ", ".join(residual.columns)
            raise MissingDataError(
                f"{int(bad.sum())} of {len(data)} rows have missing values in the residual "
                f"structure's columns ({cols}); drop them or pass missing='drop'"
            )
        validation.warn_dropped(
            int(bad.sum()), len(data), f"with missing values for {residual}", stacklevel=4
        )
        data = data.loc[~bad]
    return data


def lmer_residual(
    formula: str,
    data: pd.DataFrame,
    residual: ResidualSpec,
    REML: bool = True,  # noqa: N803 - lme4's argument name
    weights: np.ndarray | str | None = None,
    offset: np.ndarray | str | None = None,
    missing: str = "raise",
    engine: dict | None = None,
    **fit_kwargs,
) -> ResidualMixedLMResults:
    """``lmer(formula, data, residual=...)``: fit with a residual structure."""
    if validation.is_streamable(data):
        raise NotImplementedError(
            f"residual structures ({residual}) need the data in memory (a DataFrame); "
            "streamed and Dask data are not supported"
        )
    model = ResidualModel.from_formula(
        formula, data, residual, weights=weights, offset=offset, missing=missing, **(engine or {})
    )
    return model.fit(REML=REML, **fit_kwargs)
