"""The model: a design's term structures and cross-products behind one objective.

`MixedModel` is built from the two things every input path produces — the terms'
structure (in a `sparselme.data.design.Design`) and the cross-products
[Z X y]ᵀW[Z X y] — and from nothing else: in-memory, streamed and Dask data share all
that follows. Its parameters are θ and the values of any `ModelBlock` a variant
plugs in (a residual structure re-weights the cross-products, say); the objective is

    objective(params) = PLS deviance at θ after each block has set its values,

written once (`sparselme.engine.objective.deviance`) and minimized by the one fit
driver (`sparselme.engine.fit.fit_blocks`). ``optimize()`` returns a
`sparselme.model.results.ModelFit`: computed estimates plus this model as the
handle through which derived quantities are evaluated.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Protocol

import numpy as np
from sksparse.cholmod import CholmodNotPositiveDefiniteError

from ..data.design import Design
from ..engine.crossprod import CrossProducts, chunk_crossproducts
from ..engine.fit import (
    FitOptions,
    ParameterBlock,
    check_flag,
    check_start,
    fit_blocks,
    natural_values,
    warn_about,
)
from ..engine.fixed_scaling import FixedScaling
from ..engine.objective import PenalizedLeastSquares, PLSSolution, deviance
from ..engine.optimize import OptSummary
from ..engine.start import initial_steps, moment_start, theta_scales
from ..engine.threads import fit_threads, look_again
from ..errors import NumericalError
from ..progress import FitProgress
from .results import ModelFit

__all__ = ["MixedModel", "ModelBlock"]


class ModelBlock(Protocol):
    """A variant's parameters beyond θ (e.g. a residual structure's ρ).

    ``names`` and ``initial`` (natural scale) describe them; ``parameter_block()`` gives
    the optimizer's scale and bounds; ``apply(model, values)`` makes the model's
    cross-products those of these values; ``valid(values)`` says whether they are in the
    parameter space.
    """

    names: list[str]
    initial: np.ndarray

    def parameter_block(self) -> ParameterBlock: ...

    def apply(self, model: MixedModel, values: np.ndarray) -> None: ...

    def valid(self, values: np.ndarray) -> bool: ...


class MixedModel:
    """A linear mixed model y = Xβ + Zb + ε on one global sparse Z.

    Parameters
    ----------
    design : the terms' structure and (when in memory) the rows.
    cp : the cross-products; computed from the design's rows when None.
    ordering, factorization : engine options (see `PenalizedLeastSquares`).
    blocks : further parameter blocks (see `ModelBlock`).
    """

    def __init__(
        self,
        design: Design,
        ordering: str = "default",
        factorization: str = "auto",
        *,
        cp: CrossProducts | None = None,
        blocks: Sequence[ModelBlock] = (),
    ):
        self.design = design
        if cp is None:  # the rows in memory: X̃ = XA and ỹ, well scaled
            fixed = FixedScaling.of(design.X, design.y_minus_offset)
            X, y = fixed.apply(design.X), fixed.apply_y(design.y_minus_offset)
            cp = chunk_crossproducts(design.rows, X, y, design.weights)
        else:  # streamed cross-products hold X as it is
            fixed = FixedScaling.identity(cp.p)
        self.cp = cp
        self.pls = PenalizedLeastSquares(
            design.terms, cp, ordering=ordering, factorization=factorization, fixed=fixed
        )
        self.blocks = list(blocks)
        self._block_values: list[np.ndarray | None] = [None] * len(self.blocks)

    @property
    def fixed(self) -> FixedScaling:
        """The engine's reparametrization X̃ = X A of the fixed effects."""
        return self.pls.fixed

    def engine_X(self) -> np.ndarray:
        """(n, p) X̃ = X A, the fixed-effects columns the cross-products hold."""
        return self.fixed.apply(self.design.X)

    def engine_y(self, y: np.ndarray | None = None) -> np.ndarray:
        """(n,) ỹ: the response net of any offset (or ``y``), centred as in the cross-products."""
        return self.fixed.apply_y(self.design.y_minus_offset if y is None else y)

    @property
    def theta_scale(self) -> np.ndarray:
        """(n_theta,) d: the optimizer searches d·θ, θ of columns of moderate size."""
        return theta_scales(self.design.terms, self.cp)

    # ---- parameters ------------------------------------------------------------------
    @property
    def n_theta(self) -> int:
        return len(self.pls.lower_bounds)

    @property
    def lower_bounds(self) -> np.ndarray:
        """(n_theta,) lower bounds of θ."""
        return self.pls.lower_bounds

    @property
    def parameter_names(self) -> list[str]:
        """θ_1..θ_m, then the blocks' names."""
        names = [f"theta{i + 1}" for i in range(self.n_theta)]
        for block in self.blocks:
            names += list(block.names)
        return names

    def parameter_blocks(self, steps: np.ndarray | None = None) -> list[ParameterBlock]:
        """θ's block (with first steps ``steps``), then each variant block's."""
        theta = ParameterBlock(
            "theta",
            self.pls.lower_bounds,
            self.pls.upper_bounds,
            step=steps,
            scale=self.theta_scale,
        )
        return [theta] + [b.parameter_block() for b in self.blocks]

    def full_parameters(self, params: np.ndarray) -> np.ndarray:
        """θ alone completed by the blocks' current values (their initial ones if unset)."""
        params = np.asarray(params, dtype=float)
        if len(params) != self.n_theta or not self.blocks:
            return params
        current = [
            b.initial if v is None else v for b, v in zip(self.blocks, self._block_values)
        ]
        return np.concatenate([params, *current])

    def split(self, params: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        """(θ, the blocks' values) of a full parameter vector."""
        params = self.full_parameters(params)
        theta = params[: self.n_theta]
        out, at = [], self.n_theta
        for block in self.blocks:
            out.append(params[at : at + len(block.names)])
            at += len(block.names)
        if at != len(params):
            raise ValueError(f"{len(params)} parameters given, the model has {at}")
        return theta, out

    def _set_blocks(self, values: list[np.ndarray]) -> bool:
        """Make the cross-products those of the blocks' values; False if out of range."""
        for i, (block, v) in enumerate(zip(self.blocks, values)):
            if not block.valid(v):
                return False
            current = self._block_values[i]
            if current is None or not np.array_equal(current, v):
                self._block_values[i] = None  # until the update is complete
                block.apply(self, v)
                self._block_values[i] = np.array(v, dtype=float)
        return True

    # ---- the objective -----------------------------------------------------------------
    def objective(self, params: np.ndarray, reml: bool = True) -> float:
        """Profiled deviance (REML criterion or −2 log-likelihood) at the parameters.

        ``params``: θ (n_theta,) or θ followed by the blocks' values. +inf outside the
        parameter space and where rounding makes the penalized system not positive
        definite (θ's far out of scale): the optimizer backs off from there.
        """
        theta, values = self.split(params)
        if not self._set_blocks(values):
            return np.inf
        with fit_threads(self.pls.chol.blas_threads):
            try:
                return self.pls.deviance(theta, reml=reml)
            except (np.linalg.LinAlgError, CholmodNotPositiveDefiniteError, NumericalError):
                self.pls.chol.theta = None  # the factor is not that of any θ now
                return np.inf

    def solve(self, params: np.ndarray) -> PLSSolution:
        """β, the conditional modes and the deviance's pieces at the parameters."""
        theta, values = self.split(params)
        if not self._set_blocks(values):
            raise ValueError(f"parameters {params} are outside the parameter space")
        with fit_threads(self.pls.chol.blas_threads):
            return self.pls.solve(theta)

    def deviance_of(
        self,
        sol: PLSSolution,
        reml: bool,
        sigma2: float | None = None,
        pwrss: float | None = None,
    ) -> float:
        """The deviance of a solution: σ² profiled out (None) or given; ``pwrss`` replaces
        its r² (e.g. with a fixed effect held away from its estimate)."""
        r2 = sol.pwrss if pwrss is None else pwrss
        cp = self.cp
        return deviance(
            sol.logdet_L, sol.logdet_RX, r2, cp.nobs, cp.p, reml, cp.sum_log_weights, sigma2
        )

    def inverse_diagonal_blocks(self, params: np.ndarray) -> list[np.ndarray]:
        """Per term (L, k, k) diagonal blocks of (ΛᵀZᵀWZΛ + I)⁻¹ at the parameters."""
        theta, values = self.split(params)
        self._set_blocks(values)
        return self.pls.inverse_diagonal_blocks(theta)

    # ---- fitting -------------------------------------------------------------------------
    def start_values(
        self, start: np.ndarray | None = None, free: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """(natural start of all parameters, θ's first steps or None).

        Without ``start``, θ from moment estimates (`sparselme.engine.start`), with
        first steps as precise as they are when every free θ (``free`` (n_theta,) mask)
        was estimated; ``start`` may be θ or all parameters.
        """
        offsets = self.pls.theta_offsets
        if start is None:
            theta0, estimated = moment_start(self.design.terms, self.cp, offsets)
            free = np.ones(self.n_theta, bool) if free is None else free
            steps = None
            if estimated[free].all():
                steps = initial_steps(self.design.terms, theta0 * self.theta_scale, offsets)
            elif self.blocks:
                scaled = theta0 * self.theta_scale
                steps = np.where(estimated, np.maximum(0.2 * scaled, 0.05), 0.5)
            return self.full_parameters(theta0), steps
        start = np.asarray(start, dtype=float).reshape(-1)
        rest = None
        if self.blocks and len(start) > self.n_theta:
            theta, values = self.split(start)
            for block, v in zip(self.blocks, values):
                if not block.valid(v):
                    raise ValueError(f"invalid start {v!r} for the parameters {block.names}")
            rest = start[self.n_theta :]
        else:
            theta = start
        theta = check_start(theta, self.lower_bounds)
        steps = np.maximum(0.2 * np.abs(theta * self.theta_scale), 0.05) if self.blocks else None
        return (self.full_parameters(theta) if rest is None else np.r_[theta, rest]), steps

    def optimize(
        self,
        REML: bool = True,  # noqa: N803 - lme4's argument name
        start: np.ndarray | None = None,
        *,
        fixed: np.ndarray | None = None,
        options: FitOptions | None = None,
        callback: Callable[[int, np.ndarray, float], None] | None = None,
        verbose: bool | None = None,
    ) -> ModelFit:
        """Minimize the objective with the one fit driver and return the fit.

        ``start``: θ or all parameters (natural scale); ``fixed`` (all parameters) holds
        values to keep, NaN where free. ``callback(evaluation, x, value)`` is called after
        every evaluation; ``verbose`` shows progress (`sparselme.progress`).
        """
        reml = check_flag(REML, "REML")
        if fixed is not None and len(fixed) == self.n_theta and self.blocks:
            fixed = self.full_parameters(np.asarray(fixed, dtype=float)).copy()
            fixed[self.n_theta :] = np.nan
        free = None if fixed is None else np.isnan(np.asarray(fixed, float)[: self.n_theta])
        x0, steps = self.start_values(start, free)
        blocks = self.parameter_blocks(steps)
        progress = FitProgress("REML criterion" if reml else "deviance", verbose=verbose)

        def report(evaluation: int, x: np.ndarray, value: float) -> None:
            progress(evaluation, x, value)
            if callback is not None:
                callback(evaluation, x, value)

        look_again()  # a competing process may have started since the last fit
        with fit_threads(self.pls.chol.blas_threads), progress:
            optsum = fit_blocks(
                lambda params: self.objective(params, reml),
                blocks,
                x0,
                fixed=fixed,
                options=options,
                nobs=self.design.nobs,
                callback=report,
            )
        warn_about(optsum, self.lower_bounds, stacklevel=3)
        return self.fit_at(natural_values(blocks, optsum.final), optsum, reml)

    def fit_at(self, params: np.ndarray, optsum: OptSummary | None, reml: bool) -> ModelFit:
        """The fit at given parameters (``optsum`` None: evaluated there, not optimized)."""
        params = self.full_parameters(params)
        if optsum is None:
            optsum = OptSummary(initial=params, lower=self.lower_bounds, final=params.copy())
            optsum.fmin, optsum.feval = self.objective(params, reml), 1
            optsum.returnvalue = "NOT_OPTIMIZED"
            optsum.messages.append("not optimized")
        return ModelFit(self, params, self.solve(params), optsum, reml)

    # ---- the rows ------------------------------------------------------------------------
    def fitted_values(self, sol: PLSSolution, b_blocks: list[np.ndarray]) -> np.ndarray:
        """(n,) Xβ + Zb (+ offset) on the design's rows; b_blocks per term (L, k)."""
        d = self.design
        if d.source is not None:
            return d.source.fitted_values(d, sol.beta, b_blocks)
        fit = sol.fixed_fit(d.X)
        for rows, B in zip(d.rows, b_blocks):
            fit = fit + rows.z_times(B)
        return fit if d.offset is None else fit + d.offset

    def response(self) -> np.ndarray:
        """(n,) the response y."""
        d = self.design
        return d.y if d.source is None else d.source.response(d)

    def with_response(self, y: np.ndarray) -> MixedModel:
        """The same model for another response (net of any offset): lme4's ``refit``.

        Only the response's cross-products are recomputed (one pass over the rows); the
        factorization is shared.
        """
        d = self.design
        if d.rows is None:
            raise NotImplementedError(
                "refitting to a new response needs the rows in memory; this model was "
                "built from streamed cross-products"
            )
        y_engine = self.engine_y(y)
        w = d.weights
        wy = y_engine if w is None else w * y_engine
        Zty = [
            np.column_stack(
                [np.bincount(r.codes, r.model[:, a] * wy, minlength=r.nlevels) for a in range(r.k)]
            )
            for r in d.rows
        ]
        cp = replace(self.cp, Zty=Zty, Xty=self.engine_X().T @ wy, yty=float(y_engine @ wy))
        design = replace(d, y=y if d.offset is None else y + d.offset)
        twin = object.__new__(type(self))
        twin.__dict__.update(self.__dict__)
        twin.design, twin.cp = design, cp
        twin.pls = self.pls.with_crossproducts(cp)
        return twin
