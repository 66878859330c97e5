"""The one fit driver: BOBYQA over blocks of parameters, with lme4's checks.

The optimizer sees one vector x, the concatenation of parameter blocks: θ (the terms'
covariance parameters) always first, then any further block a model variant plugs in —
a residual structure's ρ, say. Each block maps its natural values to the optimizer's
scale and back (ρ = tanh η for a correlation) and gives bounds and first steps there.
`fit_blocks` starts from given natural values, holds fixed entries where asked,
runs `.optimize.optimize_checked` (BOBYQA, boundary snapping, the gradient check
with restarts, the Newton polish) and returns the record over the whole vector.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..errors import ConvergenceWarning, NumericalError, SingularFitWarning
from .optimize import OptSummary, on_bound, optimize_checked

__all__ = [
    "ParameterBlock",
    "FitOptions",
    "fit_blocks",
    "check_flag",
    "check_maxeval",
    "check_start",
    "DERIVATIVES_MAX_NOBS",
]

# lme4 computes derivatives for its convergence check only below this many observations.
DERIVATIVES_MAX_NOBS = 10_000


def _identity(x: np.ndarray) -> np.ndarray:
    return np.asarray(x, dtype=float)


@dataclass(frozen=True)
class ParameterBlock:
    """One block of the optimizer's parameters.

    ``to_free``/``from_free`` map natural values to the free scale and back; ``lower``/
    ``upper`` (size,) are on the free scale. The optimizer searches ``scale``·free
    (parameters of moderate size for its steps and boundary checks); ``step`` (size,) is
    its first step on that scale.
    """

    name: str
    lower: np.ndarray
    upper: np.ndarray
    to_free: Callable[[np.ndarray], np.ndarray] = _identity
    from_free: Callable[[np.ndarray], np.ndarray] = _identity
    step: np.ndarray | None = None
    scale: np.ndarray | None = None  # (size,) > 0; None: 1

    @property
    def size(self) -> int:
        return len(self.lower)


@dataclass
class FitOptions:
    """The optimizer's settings (lme4's defaults)."""

    maxeval: int = 100_000
    ftol_abs: float = 1e-8
    xtol_abs: float = 1e-8
    check_derivatives: bool | None = None  # None: below DERIVATIVES_MAX_NOBS observations
    max_restarts: int = 2
    polish: bool = True
    keep_log: bool = False
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.maxeval = check_maxeval(self.maxeval)


def fit_blocks(
    objective: Callable[[np.ndarray], float],
    blocks: Sequence[ParameterBlock],
    start: np.ndarray,
    *,
    fixed: np.ndarray | None = None,
    options: FitOptions | None = None,
    nobs: int = 0,
    callback: Callable[[int, np.ndarray, float], None] | None = None,
) -> OptSummary:
    """Minimize ``objective`` (of the natural values of all blocks, concatenated).

    ``start`` (m,) natural values; ``fixed`` (m,) values to hold, NaN where free. Returns
    the record with ``initial``/``final`` over all m parameters on the free scale (see
    `natural_values`) and ``theta_scale`` the blocks' scales.
    ``callback(evaluation, params, value)`` after each evaluation (natural values).
    """
    options = options or FitOptions()
    d = np.concatenate([np.ones(b.size) if b.scale is None else b.scale for b in blocks])
    lower = np.concatenate([b.lower for b in blocks]) * d
    upper = np.concatenate([b.upper for b in blocks]) * d
    x0 = to_free(blocks, start) * d
    free = np.ones(len(x0), bool) if fixed is None else np.isnan(fixed)
    if fixed is not None:
        x0[~free] = (to_free(blocks, np.where(free, start, fixed)) * d)[~free]
    steps = [b.step for b in blocks]
    settings = dict(
        maxeval=options.maxeval,
        ftol_abs=options.ftol_abs,
        xtol_abs=options.xtol_abs,
        keep_log=options.keep_log,
        upper=upper[free],
    )
    if all(s is not None for s in steps):
        settings["initial_step"] = np.concatenate(steps)[free]
    check = options.check_derivatives
    if check is None:
        check = nobs < DERIVATIVES_MAX_NOBS

    def natural(x: np.ndarray) -> np.ndarray:
        full = x0.copy()
        full[free] = x
        return natural_values(blocks, full / d)

    def report(evaluation: int, x: np.ndarray, value: float) -> None:
        callback(evaluation, natural(x), value)

    optsum = optimize_checked(
        lambda x: objective(natural(x)),
        np.clip(x0[free], lower[free], upper[free]),
        lower[free],
        check_derivatives=check,
        max_restarts=options.max_restarts,
        polish=options.polish,
        callback=None if callback is None else report,
        **settings,
    )
    optsum.unscale(d[free])
    optsum.expand(x0 / d, free, lower / d)
    optsum.theta_scale = None if np.all(d == 1) else d
    if not np.isfinite(optsum.fmin):
        raise NumericalError(
            "the criterion could not be evaluated at any parameter value tried (last "
            f"{np.array2string(optsum.final, precision=3)}): the penalized system is not "
            "positive definite in double precision. Rescale the variables (and weights)."
        )
    return optsum


def _blockwise(blocks: Sequence[ParameterBlock], values: np.ndarray, free: bool) -> np.ndarray:
    """Each block's slice of ``values`` mapped to the optimizer's scale (``free``) or back."""
    out, at = [], 0
    for b in blocks:
        convert = b.to_free if free else b.from_free
        out.append(np.asarray(convert(values[at : at + b.size]), dtype=float))
        at += b.size
    return np.concatenate(out) if out else np.zeros(0)


def to_free(blocks: Sequence[ParameterBlock], values: np.ndarray) -> np.ndarray:
    """Natural values of all blocks (concatenated) → the optimizer's scale."""
    return _blockwise(blocks, values, free=True)


def natural_values(blocks: Sequence[ParameterBlock], x: np.ndarray) -> np.ndarray:
    """The optimizer's vector → natural values of all blocks (concatenated)."""
    return _blockwise(blocks, x, free=False)


def warn_about(
    optsum: OptSummary,
    lower: np.ndarray,
    stacklevel: int = 3,
    upper: np.ndarray | None = None,
) -> None:
    """ConvergenceWarning at maxeval or failed checks; SingularFitWarning on the boundary
    (a θ at a zero lower bound, or at another finite bound of θ: a correlation of ±1)."""
    if optsum.returnvalue == "NLOPT_MAXEVAL_REACHED":
        g = optsum.gradient
        grad = "" if g is None else f"; gradient {np.array2string(g, precision=4)}"
        warnings.warn(
            f"optimizer stopped after {optsum.feval} evaluations (maxeval) before converging{grad}",
            ConvergenceWarning,
            stacklevel=stacklevel + 1,
        )
    for m in optsum.messages:
        warnings.warn(
            f"model may not have converged: {m}", ConvergenceWarning, stacklevel=stacklevel + 1
        )
    n = len(lower)
    if np.any(on_bound(optsum.scaled_final()[:n], lower, upper)):
        warnings.warn(
            "boundary (singular) fit: a variance component is estimated as zero (or a "
            "correlation at a bound of its range)",
            SingularFitWarning,
            stacklevel=stacklevel + 1,
        )


# ---- the optimizer's arguments ---------------------------------------------------------------
def check_flag(value: object, name: str) -> bool:
    """A bool argument; a string such as 'FALSE' would otherwise count as True."""
    if isinstance(value, (bool, np.bool_, int, np.integer)) and value in (0, 1):
        return bool(value)
    raise TypeError(f"{name} must be True or False, not {value!r}")


def check_maxeval(maxeval: object) -> int:
    """A positive evaluation budget (nlopt reads 0 or less as no limit at all)."""
    if isinstance(maxeval, (bool, np.bool_)) or not isinstance(maxeval, (int, np.integer)):
        raise TypeError(f"maxeval must be a positive integer, not {maxeval!r}")
    if maxeval < 1:
        raise ValueError(f"maxeval must be a positive integer, not {maxeval}")
    return int(maxeval)


def check_start(start: object, lower: np.ndarray) -> np.ndarray:
    """A starting θ: finite numbers, one per variance parameter (clipped to the bounds)."""
    try:
        x0 = np.array(start, dtype=float).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"start must be an array of numbers, not {start!r}") from exc
    if x0.shape != lower.shape:
        raise ValueError(f"start has {x0.size} values, but the model has {lower.size} θ's")
    if not np.all(np.isfinite(x0)):
        raise ValueError(f"start must hold finite numbers, not {x0}")
    return np.maximum(x0, lower)
