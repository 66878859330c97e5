"""The optimizer: BOBYQA over θ, its record, and the post-fit checks lme4 makes.

After BOBYQA stops:

* **boundary**: θ's with a lower bound of 0 that ended within ``boundary_tol`` of it are
  set to 0 when that does not raise the objective (lme4's boundary.tol); parameters on
  any finite bound (a correlation of ±1, say) are left out of the checks below and
  finite differences there step to the feasible side only;
* **gradient**: a central finite-difference gradient and Hessian at the optimum; the
  fit is flagged when the scaled gradient ``R⁻¹g`` (H = RᵀR) exceeds ``grad_tol``
  (lme4's check) or H is not positive definite off the boundary.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import nlopt
import numpy as np

__all__ = [
    "OptSummary",
    "minimize_bobyqa",
    "restart_bobyqa",
    "snap_to_boundary",
    "check_convergence",
    "finite_difference_derivatives",
    "on_bound",
    "SINGULAR_TOL",
]

SINGULAR_TOL = 1e-4  # lme4's isSingular tolerance on θ's with a zero lower bound
_INFEASIBLE = 1e300  # what BOBYQA sees for +inf (it needs finite values)

_NLOPT_CODES = {
    1: "NLOPT_SUCCESS",
    2: "NLOPT_STOPVAL_REACHED",
    3: "NLOPT_FTOL_REACHED",
    4: "NLOPT_XTOL_REACHED",
    5: "NLOPT_MAXEVAL_REACHED",
    6: "NLOPT_MAXTIME_REACHED",
    -1: "NLOPT_FAILURE",
    -2: "NLOPT_INVALID_ARGS",
    -3: "NLOPT_OUT_OF_MEMORY",
    -4: "NLOPT_ROUNDOFF_LIMITED",
    -5: "NLOPT_FORCED_STOP",
}


def on_bound(
    x: np.ndarray, lower: np.ndarray, upper: np.ndarray | None, tol: float = SINGULAR_TOL
) -> np.ndarray:
    """(n,) which parameters are at a bound: a zero lower bound judged by x < tol (lme4's
    isSingular), any other finite bound by a distance below tol."""
    x, lower = np.asarray(x, dtype=float), np.asarray(lower, dtype=float)
    at = (lower == 0) & (x < tol)
    other = np.isfinite(lower) & (lower != 0)
    at |= other & (x - np.where(other, lower, 0.0) < tol)
    if upper is not None:
        upper = np.asarray(upper, dtype=float)
        finite = np.isfinite(upper)
        at |= finite & (np.where(finite, upper, 0.0) - x < tol)
    return at


@dataclass
class OptSummary:
    """The optimizer's record of a fit."""

    initial: np.ndarray
    lower: np.ndarray
    final: np.ndarray = field(default_factory=lambda: np.zeros(0))
    upper: np.ndarray | None = None  # None: no upper bounds
    fmin: float = np.nan
    feval: int = 0
    returnvalue: str = ""
    optimizer: str = "LN_BOBYQA"
    ftol_abs: float = 1e-8
    xtol_abs: float = 1e-8
    maxeval: int = 100_000
    elapsed: float = 0.0
    fitlog: list[tuple[np.ndarray, float]] = field(default_factory=list, repr=False)
    gradient: np.ndarray | None = None
    hessian: np.ndarray | None = None
    boundary_snapped: list[int] = field(default_factory=list)
    restarts: int = 0
    newton_steps: int = 0
    messages: list[str] = field(default_factory=list)
    theta_scale: np.ndarray | None = None  # d: the optimizer worked on d·θ (None: d = 1)

    @property
    def time_per_evaluation(self) -> float:
        """Mean wall-clock seconds per objective evaluation during optimization."""
        return self.elapsed / self.feval if self.feval else float("nan")

    @property
    def converged(self) -> bool:
        return self.returnvalue not in ("NLOPT_MAXEVAL_REACHED", "NLOPT_FAILURE") and not any(
            m.startswith("gradient") or m.startswith("Hessian") for m in self.messages
        )

    def scaled_final(self) -> np.ndarray:
        """d·θ at the optimum: the θ's the boundary checks judge (θ itself when d = 1)."""
        return self.final if self.theta_scale is None else self.final * self.theta_scale

    def unscale(self, d: np.ndarray) -> None:
        """Re-express a record of a search over d·x (d > 0) in x."""
        if np.all(d == 1):
            return
        self.initial, self.final = self.initial / d, self.final / d
        self.lower = self.lower / d
        if self.upper is not None:
            self.upper = self.upper / d
        self.fitlog = [(x / d, v) for x, v in self.fitlog]
        if self.gradient is not None:
            self.gradient = self.gradient * d
        if self.hessian is not None:
            self.hessian = self.hessian * np.outer(d, d)

    def expand(self, full: np.ndarray, free: np.ndarray, lower: np.ndarray) -> None:
        """Re-express a fit over the free entries of θ in the full θ (fixed ones from full)."""
        if free.all():
            return
        for name in ("initial", "final"):
            whole = np.asarray(full, dtype=float).copy()
            whole[free] = getattr(self, name)
            setattr(self, name, whole)
        self.lower = np.asarray(lower, dtype=float)
        if self.upper is not None:
            up = np.full(len(free), np.inf)
            up[free] = self.upper
            self.upper = up
        if self.gradient is not None:
            grad = np.zeros(len(free))
            grad[free] = self.gradient
            self.gradient = grad
            self.hessian = None
        self.boundary_snapped = [int(np.flatnonzero(free)[i]) for i in self.boundary_snapped]

    def __str__(self) -> str:
        return "\n".join(
            [
                f"Optimizer: {self.optimizer}  return: {self.returnvalue}",
                f"  initial θ: {np.array2string(self.initial, precision=6)}",
                f"  final θ:   {np.array2string(self.final, precision=6)}",
                f"  minimum:   {self.fmin:.6f}  evaluations: {self.feval}  "
                f"({1e3 * self.time_per_evaluation:.2f} ms each)",
                *[f"  note: {m}" for m in self.messages],
            ]
        )


def minimize_bobyqa(
    f: Callable[[np.ndarray], float],
    x0: np.ndarray,
    lower: np.ndarray,
    *,
    ftol_abs: float = 1e-8,
    xtol_abs: float = 1e-8,
    maxeval: int = 100_000,
    initial_step: np.ndarray | float | None = None,
    keep_log: bool = False,
    callback: Callable[[int, np.ndarray, float], None] | None = None,
    upper: np.ndarray | None = None,
) -> OptSummary:
    """Minimize f over lower ≤ x (≤ upper) with nlopt's LN_BOBYQA; return the record."""
    x0 = np.maximum(np.asarray(x0, dtype=float), lower)
    if upper is not None:
        upper = np.asarray(upper, dtype=float)
        x0 = np.minimum(x0, upper)
        if np.all(np.isinf(upper)):
            upper = None
    summary = OptSummary(
        initial=x0.copy(),
        lower=np.asarray(lower, float),
        upper=upper,
        ftol_abs=ftol_abs,
        xtol_abs=xtol_abs,
        maxeval=maxeval,
    )
    best = [np.inf, x0.copy()]

    def objective(x: np.ndarray, grad: np.ndarray) -> float:
        val = float(f(x))
        summary.feval += 1
        if keep_log:
            summary.fitlog.append((x.copy(), val))
        if val < best[0]:
            best[0], best[1] = val, x.copy()
        if callback is not None:
            callback(summary.feval, x, val)
        return val if np.isfinite(val) else _INFEASIBLE

    n = len(x0)
    start = time.perf_counter()
    if n == 0:
        summary.final, summary.fmin, summary.returnvalue = x0, float(f(x0)), "NLOPT_SUCCESS"
        summary.feval = 1
    else:
        opt = nlopt.opt(nlopt.LN_BOBYQA, n)
        opt.set_lower_bounds(np.asarray(lower, dtype=float))
        opt.set_upper_bounds(np.full(n, np.inf) if upper is None else upper)
        opt.set_min_objective(objective)
        opt.set_ftol_abs(ftol_abs)
        opt.set_xtol_abs(xtol_abs)
        opt.set_maxeval(maxeval)
        if initial_step is not None:
            opt.set_initial_step(np.broadcast_to(initial_step, (n,)).astype(float))
        xstart = x0
        try:
            xopt = opt.optimize(xstart)
            summary.final = np.asarray(xopt, dtype=float)
            summary.fmin = float(opt.last_optimum_value())
            summary.returnvalue = _NLOPT_CODES.get(opt.last_optimize_result(), "NLOPT_UNKNOWN")
        except nlopt.RoundoffLimited:
            summary.final, summary.fmin = best[1], best[0]
            summary.returnvalue = "NLOPT_ROUNDOFF_LIMITED"
        if best[0] < summary.fmin:
            summary.final, summary.fmin = best[1], best[0]
        if summary.fmin >= _INFEASIBLE:  # nlopt saw only the stand-in for +inf
            summary.fmin = np.inf
    summary.elapsed = time.perf_counter() - start
    return summary


def optimize_checked(
    f: Callable[[np.ndarray], float],
    x0: np.ndarray,
    lower: np.ndarray,
    *,
    check_derivatives: bool,
    max_restarts: int = 2,
    polish: bool = True,
    callback: Callable[[int, np.ndarray, float], None] | None = None,
    **options,
) -> OptSummary:
    """BOBYQA, then lme4's checks: boundary snapping, the finite-difference gradient check
    (BOBYQA restarted from where it stopped when it fails, as on badly scaled θ) and the
    Newton polish; at maxeval the reached gradient is recorded for the warning."""
    optsum = minimize_bobyqa(f, x0, lower, callback=callback, **options)
    if not np.isfinite(optsum.fmin):  # nowhere finite: nothing to check or polish
        return optsum
    for attempt in range(max_restarts + 1):
        snap_to_boundary(f, optsum)
        if not check_derivatives:
            break
        check_convergence(f, optsum)
        if not optsum.messages or attempt == max_restarts:
            break
        optsum = restart_bobyqa(f, optsum, callback=callback, **options)
    if polish and check_derivatives and not optsum.messages:
        newton_polish(f, optsum)
    if optsum.returnvalue == "NLOPT_MAXEVAL_REACHED" and optsum.gradient is None:
        optsum.gradient = finite_difference_derivatives(
            f, optsum.final, lower, upper=optsum.upper
        )[0]
    return optsum


def restart_bobyqa(f: Callable[[np.ndarray], float], previous: OptSummary, **options) -> OptSummary:
    """Run BOBYQA again from ``previous.final``; the record accumulates both runs."""
    options.setdefault("upper", previous.upper)
    again = minimize_bobyqa(f, previous.final, previous.lower, **options)
    again.initial = previous.initial
    again.feval += previous.feval
    again.elapsed += previous.elapsed
    again.fitlog = previous.fitlog + again.fitlog
    again.restarts = previous.restarts + 1
    if previous.fmin < again.fmin:
        again.final, again.fmin = previous.final, previous.fmin
    return again


def newton_polish(
    f: Callable[[np.ndarray], float], summary: OptSummary, max_steps: int = 2
) -> bool:
    """Newton steps from BOBYQA's stopping point on its finite-difference derivatives.

    BOBYQA stops when the objective changes by less than ftol_abs, which leaves θ good to
    about √ftol_abs. Newton steps −H⁻¹g in the interior coordinates (θ's on the boundary
    stay there), from the derivatives of the convergence check and with step halving, take
    θ the rest of the way; a step is kept only when it lowers the objective. Returns
    whether θ moved.
    """
    x, fx, lower = summary.final.copy(), summary.fmin, summary.lower
    g, H = summary.gradient, summary.hessian
    free = ~on_bound(x, lower, summary.upper)
    if g is None or H is None or free.sum() == 0 or free.sum() > 10:
        return False
    moved = False
    for step_no in range(max_steps):
        gf, Hf = g[free], H[np.ix_(free, free)]
        try:
            np.linalg.cholesky(Hf)
            step = np.zeros(len(x))
            step[free] = np.linalg.solve(Hf, gf)
        except np.linalg.LinAlgError:
            break
        decrement = float(gf @ step[free])
        if decrement < 1e-10:
            break
        t, accepted = 1.0, False
        while t > 1e-3 and not accepted:
            trial = x - t * step
            if np.all(trial >= lower) and (summary.upper is None or np.all(trial <= summary.upper)):
                ft = float(f(trial))
                accepted = ft < fx
            t /= 2
        if not accepted:
            break
        x, fx, moved = trial, ft, True
        summary.newton_steps = step_no + 1
        if decrement < 1e-6 or step_no + 1 == max_steps:
            break  # what is left is of the order of decrement²
        g, H = finite_difference_derivatives(f, x, lower, fx, upper=summary.upper)
    if moved:
        summary.final, summary.fmin = x, fx
    return moved


def snap_to_boundary(
    f: Callable[[np.ndarray], float], summary: OptSummary, boundary_tol: float = 1e-5
) -> None:
    """Set θ's within boundary_tol of a zero lower bound to 0 if that is no worse."""
    lower = summary.lower
    near = np.flatnonzero((lower == 0) & (summary.final > 0) & (summary.final < boundary_tol))
    if near.size == 0:
        return
    trial = summary.final.copy()
    trial[near] = 0.0
    val = float(f(trial))
    if val <= summary.fmin:
        summary.final, summary.fmin = trial, val
        summary.boundary_snapped = near.tolist()


def finite_difference_derivatives(
    f: Callable[[np.ndarray], float],
    x: np.ndarray,
    lower: np.ndarray,
    fx: float | None = None,
    h: float = 1e-4,
    upper: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Central-difference gradient (n,) and Hessian (n, n) of f at x.

    Steps are relative (h·max(|x|, 1)) and one-sided toward the feasible side where x
    sits on a bound (a step below ``lower`` goes forward, one above ``upper`` backward).
    """
    x = np.asarray(x, dtype=float)
    n = len(x)
    fx = float(f(x)) if fx is None else fx
    steps = h * np.maximum(np.abs(x), 1.0)
    forward_only = x - steps < lower
    if upper is not None:  # near an upper bound: step down instead (the formulas hold for −h)
        steps = np.where(~forward_only & (x + steps > upper), -steps, steps)
        forward_only |= steps < 0
    grad = np.zeros(n)
    hess = np.zeros((n, n))
    fp = np.zeros(n)
    fm = np.zeros(n)
    for i in range(n):
        e = np.zeros(n)
        e[i] = steps[i]
        fp[i] = f(x + e)
        if forward_only[i]:
            f2 = f(x + 2 * e)
            grad[i] = (-3 * fx + 4 * fp[i] - f2) / (2 * steps[i])
            hess[i, i] = (fx - 2 * fp[i] + f2) / steps[i] ** 2
            fm[i] = np.nan
        else:
            fm[i] = f(x - e)
            grad[i] = (fp[i] - fm[i]) / (2 * steps[i])
            hess[i, i] = (fp[i] - 2 * fx + fm[i]) / steps[i] ** 2
    for i in range(n):
        for j in range(i):
            ei = np.zeros(n)
            ej = np.zeros(n)
            ei[i], ej[j] = steps[i], steps[j]
            fpp = f(x + ei + ej)
            hess[i, j] = hess[j, i] = (fpp - fp[i] - fp[j] + fx) / (steps[i] * steps[j])
    return grad, hess


def check_convergence(
    f: Callable[[np.ndarray], float], summary: OptSummary, grad_tol: float = 2e-3
) -> None:
    """lme4's post-fit gradient and Hessian checks; notes go into summary.messages."""
    x = summary.final
    if len(x) == 0:
        return
    grad, hess = finite_difference_derivatives(
        f, x, summary.lower, summary.fmin, upper=summary.upper
    )
    summary.gradient, summary.hessian = grad, hess
    free = ~on_bound(x, summary.lower, summary.upper)
    if not free.any():
        return
    g, H = grad[free], hess[np.ix_(free, free)]
    try:
        L = np.linalg.cholesky(H)
        scaled = np.linalg.solve(L.T, g)  # R⁻¹g with H = RᵀR, as lme4 scales it
        size = float(np.max(np.minimum(np.abs(scaled), np.abs(g))))
        if size > grad_tol:
            summary.messages.append(
                f"gradient check: scaled gradient {size:.3g} exceeds {grad_tol:g} "
                f"(gradient {np.array2string(grad, precision=3)})"
            )
    except np.linalg.LinAlgError:
        if np.max(np.abs(g)) > grad_tol:
            summary.messages.append(
                "Hessian is not positive definite at the optimum; gradient "
                f"{np.array2string(grad, precision=3)}"
            )
