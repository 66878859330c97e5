"""A residual structure as a parameter block that re-weights the cross-products.

`ResidualBlock` is a `sparselme.model.mixed_model.ModelBlock`: for ρ it
writes Σⱼ cⱼ(ρ) Pⱼ into the model's cross-products in place (Pⱼ = [Z X y]ᵀWⱼ[Z X y],
formed once) and sets log|W(ρ)|; the one fit driver then fits θ and ρ jointly (ρ on the
optimizer's scale: log δ, atanh φ). `ResidualModel` is the model with that block.
"""

from __future__ import annotations

import warnings
from dataclasses import replace

import numpy as np
import pandas as pd

from ..data import validation
from ..data.design import Design, build_design
from ..data.formula import parse_formula
from ..engine.fit import ParameterBlock
from ..engine.optimize import finite_difference_derivatives, on_bound
from ..errors import MissingDataError, UnknownColumnError
from ..model.mixed_model import MixedModel
from ..model.results import ModelFit
from .products import CrossProductLayout
from .structures import AR1, ResidualSpec, VarIdent

__all__ = ["ResidualBlock", "ResidualModel", "residual_covariance", "residual_rows"]


class ResidualBlock:
    """The parameters ρ of a residual structure R(ρ): ε ~ N(0, σ²R(ρ))."""

    def __init__(self, model: MixedModel, residual: ResidualSpec, frame: pd.DataFrame):
        design = model.design
        self.residual = residual
        self.structure = residual.bind(frame, design)
        self.names = list(self.structure.names)
        self.initial = np.asarray(self.structure.initial, dtype=float)
        self.layout = CrossProductLayout(model.cp, design)
        w0 = np.ones(design.nobs) if design.weights is None else np.asarray(design.weights, float)
        self._prior_log_weights = float(np.sum(np.log(w0)))
        root = np.sqrt(w0)  # prior weights: W = W₀^½ R(ρ)⁻¹ W₀^½
        # the engine's centred and scaled X̃ and ỹ, as in the cross-products
        engine = replace(design, X=model.engine_X(), y=model.engine_y(), offset=None)
        pieces = []
        for p in self.structure.pieces:
            w = root[p.a] * root[p.a if p.b is None else p.b]
            pieces.append(self.layout.products(engine, p.a, p.b, w))
        self.pieces = np.stack(pieces)  # (J, size of the cross-products)

    def parameter_block(self) -> ParameterBlock:
        n = len(self.names)
        s = self.structure
        return ParameterBlock(
            "residual",
            np.full(n, -np.inf),
            np.full(n, np.inf),
            to_free=s.to_free,
            from_free=s.from_free,
            step=np.full(n, 0.3),
        )

    def valid(self, rho: np.ndarray) -> bool:
        return len(rho) == len(self.names) and self.structure.valid(np.asarray(rho, float))

    def apply(self, model: MixedModel, rho: np.ndarray) -> None:
        """Re-weight the model's cross-products for ρ (natural scale: δ's or φ)."""
        s = self.structure
        self.layout.write(s.coefficients(rho) @ self.pieces, model.cp)
        model.cp.sum_log_weights = self._prior_log_weights + s.logdet_precision(rho)
        model.pls.refresh()


class ResidualModel(MixedModel):
    """A linear mixed model with a residual structure R(ρ) (its parameters after θ).

    ``frame`` holds the structure's columns for the design's rows (same order).
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
        block = ResidualBlock(self, residual, frame)
        self.blocks = [block]
        self._block_values = [None]
        self._set_blocks([block.initial])

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
        data = residual_rows(data, residual, missing)
        parsed = parse_formula(formula)
        validation.check_has_random_terms(parsed.bars, formula)
        design = build_design(parsed, data, weights=weights, offset=offset, missing=missing)
        frame = data.loc[design.row_index, list(residual.columns)]
        return cls(design, residual, frame, **engine)

    @property
    def residual(self) -> ResidualSpec:
        return self.blocks[0].residual

    @property
    def structure(self):
        """The structure bound to the model's rows (names, scales, description)."""
        return self.blocks[0].structure

    @property
    def n_residual(self) -> int:
        return len(self.blocks[0].names)

    def set_residual(self, rho: np.ndarray) -> None:
        """Make the cross-products those of ρ (natural scale: δ's or φ)."""
        if not self._set_blocks([np.asarray(rho, dtype=float)]):
            raise ValueError(f"invalid residual parameters {rho!r} for {self.residual}")

    def objective_at(self, theta: np.ndarray, rho: np.ndarray, reml: bool = True) -> float:
        """Profiled deviance at (θ, ρ); +inf outside the parameter space."""
        return self.objective(np.r_[theta, rho], reml)


def residual_covariance(fit: ModelFit) -> np.ndarray:
    """(n_rho, n_rho) 2·[H⁻¹]_ρρ, H the Hessian of the profiled deviance in (θ, ρ).

    θ's on the boundary are held fixed; NaN where H is not positive definite.
    """
    model = fit.engine
    n_theta = model.n_theta
    theta, rho = fit.params_all[:n_theta], fit.params_all[n_theta:]
    d = model.theta_scale
    keep = ~on_bound(theta * d, model.lower_bounds * d, model.pls.upper_bounds * d)

    def f(z: np.ndarray) -> float:
        th = theta.copy()
        th[keep] = z[: keep.sum()]
        return model.objective(np.r_[th, z[keep.sum() :]], fit.reml)

    lower = np.r_[model.lower_bounds[keep], np.full(len(rho), -np.inf)]
    upper = np.r_[model.pls.upper_bounds[keep], np.full(len(rho), np.inf)]
    _, H = finite_difference_derivatives(f, np.r_[theta[keep], rho], lower, upper=upper)
    m = len(rho)
    try:
        if not np.all(np.isfinite(H)):
            raise np.linalg.LinAlgError("not finite")
        np.linalg.cholesky(H)
        return 2.0 * np.linalg.inv(H)[-m:, -m:]
    except np.linalg.LinAlgError:
        warnings.warn(
            "the Hessian of the deviance in the residual parameters is not positive "
            "definite; their standard errors are NaN",
            UserWarning,
            stacklevel=4,
        )
        return np.full((m, m), np.nan)


def residual_rows(data: pd.DataFrame, residual: ResidualSpec, missing: str) -> pd.DataFrame:
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
