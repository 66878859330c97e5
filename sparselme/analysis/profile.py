"""Likelihood profiles and confidence intervals (lme4's ``profile`` and ``confint``).

Parameters are lme4's: per random-effects term its standard deviations and correlations
(``sd_(Intercept)|Subject``, ``cor_Days.(Intercept)|Subject``, ...), then ``sigma``, then
the fixed effects. As in lme4, profiles are of the ML deviance (REML fits are refit with
ML first): for each value of one parameter the deviance is minimized over the others and
ζ = sign(value − estimate)·√(deviance − minimum). Profiles of a variance parameter
minimize over the remaining standard deviations, correlations and σ (β profiled out);
profiles of β_j refit θ with column j moved into the offset, which changes only the
response's cross-products, so no pass over the data is needed.

Traces are stepped out as lme4 does; the interval limits are the exact crossings
ζ = ±z (root-finding on the profile between trace points), where lme4 interpolates a
spline through the trace.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape as html_escape

import nlopt
import numpy as np
import pandas as pd
from scipy import optimize, stats

from ..engine.optimize import minimize_bobyqa
from ..engine.start import theta_scales
from ..engine.threads import blas_threads
from ..errors import NumericalError
from ..model.results import ModelFit
from ..plotting import plot_profile
from ..progress import ProgressBar
from .inference import refit_ml, with_theta
from .parameters import (
    parameter_names,
    parameter_vector,
    sdcor_bounds,
    sdcor_to_theta,
    theta_to_sdcor,
)
from .resampling import bootstrap
from .tables import Table, as_table

__all__ = [
    "Profile",
    "profile",
    "confint",
    "wald_confint",
    "parameter_names",
    "parameter_vector",
]

# ======================================================================================
# Deviance profiles
# ======================================================================================


def _bobyqa(
    f, x0: np.ndarray, lower: np.ndarray, upper: np.ndarray, scale: np.ndarray | None = None
) -> tuple[np.ndarray, float]:
    """Minimize f over lower ≤ x ≤ upper with BOBYQA; (x, f(x)).

    ``scale`` (n,) > 0: BOBYQA searches scale·x, so parameters far from unit size (the sd
    of a column of size 1e9) get steps of their own size.
    """
    n = len(x0)
    if n == 0:
        return x0, float(f(x0))
    if scale is not None and not np.all(scale == 1):
        z, fz = _bobyqa(lambda z: f(z / scale), x0 * scale, lower * scale, upper * scale)
        return z / scale, fz
    x0 = np.clip(x0, lower, upper)
    opt = nlopt.opt(nlopt.LN_BOBYQA, n)
    opt.set_lower_bounds(lower)
    opt.set_upper_bounds(upper)
    best = [np.inf, x0.copy()]

    def obj(x, grad):
        v = float(f(x))
        if v < best[0]:
            best[0], best[1] = v, x.copy()
        return v if np.isfinite(v) else 1e300

    opt.set_min_objective(obj)
    opt.set_ftol_abs(1e-10)
    opt.set_xtol_rel(1e-8)
    opt.set_maxeval(20_000)
    step = np.minimum(np.maximum(0.05 * np.abs(x0), 0.01), 0.25 * (upper - lower))
    opt.set_initial_step(step)
    try:
        opt.optimize(x0)
    except nlopt.RoundoffLimited:
        pass
    return best[1], best[0]


class _Profiler:
    """ζ functions of one ML fit, for each parameter in lme4's parametrization."""

    def __init__(self, res: ModelFit):
        self.fit = refit_ml(res)
        self.model = self.fit.engine
        self.terms = self.fit.terms
        self.offsets = self.model.pls.theta_offsets
        self.names = parameter_names(res)  # the caller's naming (lme4 or statsmodels)
        self.opt = parameter_vector(self.fit).to_numpy()
        self.nvp = len(self.opt) - self.fit.k_fe
        self.base = self.fit.deviance
        self.lower, self.upper = sdcor_bounds(self.terms, self.fit.k_fe)
        se = np.sqrt(np.diag(self.fit.cov_fe))
        self.stderr = se
        # the optimizer's θ scales (1 unless a random-effects column is far from unit size)
        self.theta_scale = theta_scales(self.terms, self.model.cp)
        kinds = [k for t in self.terms for k, _, _ in t.covariance.natural_parameters()]
        sds = np.array([kind == "sd" for kind in kinds], dtype=bool)
        self.varpar_scale = np.r_[np.where(sds, self.theta_scale, 1.0), 1.0]

    # ---- variance parameters ---------------------------------------------------------
    def deviance(self, pars: np.ndarray) -> float:
        """ML deviance at the sd/cor/σ vector (β profiled out)."""
        theta = sdcor_to_theta(self.terms, pars)
        sigma2 = pars[-1] ** 2
        if theta is None or sigma2 <= 0:
            return math.inf
        try:
            sol = self.model.solve(with_theta(self.fit, theta))
        except NumericalError:  # far out of scale: the search backs off
            return math.inf
        return self.model.deviance_of(sol, reml=False, sigma2=sigma2)

    def zeta_varpar(self, w: int, x: float, start: np.ndarray) -> np.ndarray:
        """(1 + npar,) [ζ, parameters] with parameter w held at x; start: all varpars."""
        keep = np.arange(self.nvp) != w
        full = start[: self.nvp].copy()

        def f(others: np.ndarray) -> float:
            full[keep] = others
            full[w] = x
            return self.deviance(full)

        vp = slice(0, self.nvp)
        others, dev = _bobyqa(
            f,
            start[vp][keep],
            self.lower[vp][keep],
            self.upper[vp][keep],
            self.varpar_scale[vp][keep],
        )
        full[keep], full[w] = others, x
        theta = sdcor_to_theta(self.terms, full)
        beta = (
            self.model.solve(with_theta(self.fit, theta)).beta
            if theta is not None
            else np.full(self.fit.k_fe, np.nan)
        )
        zeta = math.copysign(math.sqrt(max(dev - self.base, 0.0)), x - self.opt[w])
        return np.r_[zeta, full, beta]

    # ---- fixed effects ------------------------------------------------------------------
    def _fixed_deviance(self, theta: np.ndarray, j: int, x: float):
        """ML deviance at θ with β_j = x and the other β's profiled out; (dev, r², β).

        The penalized residual sum of squares is quadratic in β:
        r²(β) = r²(β̂) + ‖R_X(β − β̂)‖², so holding β_j at x costs (x − β̂_j)²/K_jj,
        K = (R_XᵀR_X)⁻¹, and the other β's move by K[:, j](x − β̂_j)/K_jj.
        """
        sol = self.model.solve(with_theta(self.fit, theta))
        kj = sol.unscaled_cov()[:, j]  # K[:, j]
        shift = (x - sol.beta[j]) / kj[j]
        r2 = sol.pwrss + shift * (x - sol.beta[j])
        dev = self.model.deviance_of(sol, reml=False, pwrss=r2)
        return dev, r2, sol.beta + shift * kj

    def zeta_fixed(self, j: int, x: float, start: np.ndarray) -> np.ndarray:
        """(1 + npar,) [ζ, parameters] with β_j held at x; θ refit from start's varpars."""
        theta0 = sdcor_to_theta(self.terms, start[: self.nvp])
        if theta0 is None:
            theta0 = self.fit.theta
        d = self.theta_scale  # BOBYQA searches d·θ

        def f(z: np.ndarray) -> float:
            try:
                return self._fixed_deviance(z / d, j, x)[0]
            except NumericalError:  # far out of scale: the search backs off
                return math.inf

        optsum = minimize_bobyqa(
            f,
            theta0 * d,
            self.model.pls.lower_bounds,
            ftol_abs=1e-10,
            initial_step=np.maximum(0.05 * np.abs(theta0 * d), 0.01),
        )
        optsum.unscale(d)
        dev, r2, beta = self._fixed_deviance(optsum.final, j, x)
        sigma = math.sqrt(r2 / self.model.cp.nobs)
        zeta = math.copysign(math.sqrt(max(dev - self.base, 0.0)), x - self.opt[self.nvp + j])
        return np.r_[zeta, theta_to_sdcor(self.terms, self.offsets, optsum.final, sigma), beta]

    def unit(self, w: int) -> float:
        """The size below which parameter w's absolute tolerances shrink (1 if ordinary):
        1/scale of a variance parameter, the SE of a fixed effect with one below 1."""
        if w < self.nvp:
            return min(1.0, 1.0 / float(self.varpar_scale[w]))
        return min(1.0, float(self.stderr[w - self.nvp]))

    def zeta(self, w: int, x: float, start: np.ndarray) -> np.ndarray:
        if w < self.nvp:
            return self.zeta_varpar(w, x, start)
        return self.zeta_fixed(w - self.nvp, x, start)

    # ---- traces -------------------------------------------------------------------------
    def trace(self, w: int, cutoff: float, delta: float, maxpts: int, maxmult: float = 10):
        """Rows [ζ, parameters] stepped out on both sides as lme4's ``profile`` does."""
        opt_row = np.r_[0.0, self.opt]
        pw = self.opt[w]
        lowcut, upcut = self.lower[w], self.upper[w]
        if w < self.nvp:
            first = 0.001 if pw == 0 else pw * 1.01
        else:
            first = pw + delta * self.stderr[w - self.nvp]
        r1 = self.zeta(w, first, self.opt)
        rows = [opt_row, r1]
        for prev in ([opt_row, r1], [r1, opt_row]):
            if prev[1] is opt_row and not pw > lowcut:
                continue
            side = list(prev)
            while len(side) < maxpts:
                a, b = side[-2], side[-1]
                if not (lowcut < b[1 + w] < upcut) or abs(b[0]) > cutoff or np.isnan(b[0]):
                    break
                num = b[1 + w] - a[1 + w]
                den = b[0] - a[0]
                if den == 0 or np.isnan(den):
                    step = 1e-6
                else:
                    step = delta * num / den
                    if step < 0:
                        step = 1e-6
                    elif len(side) > 2 and abs(step) > abs(maxmult * num):
                        step = abs(maxmult * num)
                x = min(upcut, max(lowcut, b[1 + w] + math.copysign(step, num)))
                side.append(self.zeta(w, x, b[1:]))
            rows.extend(side[2:])
        rows = np.unique(np.array(rows), axis=0)
        return rows[np.argsort(rows[:, 1 + w])]


class Profile:
    """Profile traces of a fit: ``trace`` (long DataFrame), ``confint()``, ``plot()``.

    ``trace`` has one row per profile point: ``parameter`` (the one held fixed), its
    ``value``, ``zeta``, and the values of every parameter at that point.
    """

    def __init__(self, profiler: _Profiler, traces: dict[str, np.ndarray]):
        self._profiler = profiler
        self._traces = traces
        names = profiler.names
        frames = []
        for name, rows in traces.items():
            w = names.index(name)
            df = pd.DataFrame(rows[:, 1:], columns=names)
            df.insert(0, "zeta", rows[:, 0])
            df.insert(0, "value", rows[:, 1 + w])
            df.insert(0, "parameter", name)
            frames.append(df)
        self.trace = Table(pd.concat(frames, ignore_index=True) if frames else pd.DataFrame())

    @property
    def parameters(self) -> list[str]:
        return list(self._traces)

    def confint(self, level: float = 0.95) -> pd.DataFrame:
        """Profile intervals: the values where ζ = ±z_{(1+level)/2} (lme4's confint)."""
        a = (1 - level) / 2
        z = stats.norm.ppf(1 - a)
        prof = self._profiler
        out = {}
        with blas_threads(prof.model.pls.chol.blas_threads):
            for name, rows in self._traces.items():
                w = prof.names.index(name)
                lo = self._crossing(w, rows, -z, prof.lower[w])
                hi = self._crossing(w, rows, z, prof.upper[w])
                out[name] = (lo, hi)
        return Table.from_dict(out, orient="index", columns=_percent_labels(a))

    def _crossing(self, w: int, rows: np.ndarray, target: float, bound: float) -> float:
        zeta, vals = rows[:, 0], rows[:, 1 + w]
        ok = ~np.isnan(zeta)
        zeta, vals = zeta[ok], vals[ok]
        if target < 0:
            if zeta.min() > target:  # never reached: the bound (or an incomplete profile)
                return bound if np.isclose(vals.min(), bound) else np.nan
            k = np.flatnonzero(zeta <= target)[-1]
            a, b = vals[k], vals[k + 1]
        else:
            if zeta.max() < target:
                return bound if np.isclose(vals.max(), bound) else np.nan
            k = np.flatnonzero(zeta >= target)[0]
            a, b = vals[k - 1], vals[k]
        prof = self._profiler
        near = rows[ok][k]

        def g(x: float) -> float:
            return prof.zeta(w, x, near[1:])[0] - target

        try:
            unit = prof.unit(w)  # 1 for parameters of ordinary size
            xtol = 1e-9 * max(unit, abs(a))
            return float(optimize.brentq(g, a, b, xtol=xtol, rtol=1e-8))
        except ValueError:  # not bracketed after re-optimization: interpolate the trace
            return float(
                np.interp(target, [zeta[k - (target > 0)], zeta[k + (target < 0)]], [a, b])
            )

    def plot(self, **kwargs):
        """ζ against each parameter (see `sparselme.plotting.plot_profile`)."""
        return plot_profile(self.trace[["parameter", "value", "zeta"]], **kwargs)

    def table(self) -> pd.DataFrame:
        """Per profiled parameter: its estimate, the number of points and the range of
        values and of ζ that the trace covers."""
        rows = {}
        for name, rows_w in self._traces.items():
            w = self._profiler.names.index(name)
            values, zeta = rows_w[:, 1 + w], rows_w[:, 0]
            rows[name] = (
                self._profiler.opt[w],
                len(rows_w),
                *np.nanmin([values, zeta], axis=1),
                *np.nanmax([values, zeta], axis=1),
            )
        cols = ["estimate", "points", "lowest", "lowest zeta", "highest", "highest zeta"]
        table = pd.DataFrame.from_dict(rows, orient="index", columns=cols)
        return table[["estimate", "points", "lowest", "highest", "lowest zeta", "highest zeta"]]

    def __repr__(self) -> str:
        """The whole trace, under a line that says what it holds."""
        head = f"Profile of {len(self._traces)} parameters, {len(self.trace)} points:"
        return "\n".join([head, self.trace.to_string()])

    def _repr_html_(self) -> str:
        head = f"<p><strong>Profile</strong> of the ML deviance: {html_escape(repr(self))}</p>"
        return head + self.table()._repr_html_()


def _which(names: list[str], nvp: int, parm) -> list[str]:
    if parm is None:
        return list(names)
    if isinstance(parm, str):
        if parm == "theta_":
            return names[:nvp]
        if parm == "beta_":
            return names[nvp:]
        parm = [parm]
    out = []
    for p in parm:
        name = names[p] if isinstance(p, (int, np.integer)) else p
        if name not in names:
            raise KeyError(f"unknown parameter {name!r}; parameters: {', '.join(names)}")
        out.append(name)
    return out


def profile(
    res: ModelFit,
    which: str | Sequence[str] | None = None,
    alphamax: float = 0.01,
    maxpts: int = 100,
    delta_cutoff: float = 1 / 8,
    verbose: bool | None = None,
) -> Profile:
    """Profile the ML deviance over each parameter (lme4's ``profile(m)``).

    ``which``: parameter names (default all), or ``"theta_"`` / ``"beta_"``. Traces step
    out until |ζ| exceeds √χ²_{1−alphamax}(npar). ``verbose``: a progress bar over the
    parameters (None: when someone watches and it takes more than a couple of seconds;
    see `sparselme.progress`).
    """
    prof = _Profiler(res)
    cutoff = math.sqrt(stats.chi2.ppf(1 - alphamax, len(prof.opt)))
    names = _which(prof.names, prof.nvp, which)
    return _profile(prof, names, cutoff, cutoff * delta_cutoff, maxpts, verbose)


def _profile(
    prof: _Profiler,
    names: list[str],
    cutoff: float,
    delta: float,
    maxpts: int,
    verbose: bool | None = None,
) -> Profile:
    traces = {}
    with (
        blas_threads(prof.model.pls.chol.blas_threads),
        ProgressBar(len(names), "profile", verbose=verbose) as bar,
    ):
        for name in names:
            bar.note(name)
            traces[name] = prof.trace(prof.names.index(name), cutoff, delta, maxpts)
            bar.update()
    return Profile(prof, traces)


# ======================================================================================
# Confidence intervals
# ======================================================================================


def _percent_labels(a: float) -> list[str]:
    return [f"{100 * q:.3g} %" for q in (a, 1 - a)]


def wald_confint(res: ModelFit, level: float = 0.95) -> pd.DataFrame:
    """β̂ ± z·se; NaN rows for the variance parameters, as lme4's ``method="Wald"``."""
    a = (1 - level) / 2
    z = stats.norm.ppf(1 - a)
    names = parameter_names(res)
    nvp = len(names) - res.k_fe
    beta = res.solution.beta
    se = np.sqrt(np.diag(res.cov_fe))
    lo = np.r_[np.full(nvp, np.nan), beta - z * se]
    hi = np.r_[np.full(nvp, np.nan), beta + z * se]
    return Table(np.column_stack([lo, hi]), index=names, columns=_percent_labels(a))


def confint(
    res: ModelFit,
    parm: str | Sequence[str] | None = None,
    level: float = 0.95,
    method: str = "profile",
    nsim: int | None = None,
    seed: int | None = None,
    verbose: bool | None = None,
    **boot_kwargs,
) -> pd.DataFrame:
    """Confidence intervals in lme4's layout: rows sd_/cor_..., sigma, fixed effects.

    ``method``: "profile" (likelihood profile, ML), "wald" (fixed effects only) or "boot"
    (parametric bootstrap percentiles; ``nsim`` (default 500), ``seed`` and the further
    keywords of `sparselme.analysis.resampling.bootstrap` apply to it only). ``verbose``:
    progress of the profile or the bootstrap (`sparselme.progress`).
    """
    m = method.lower()
    boot_only = ["nsim"] * (nsim is not None) + ["seed"] * (seed is not None) + list(boot_kwargs)
    if boot_only and m not in ("boot", "bootstrap"):
        raise TypeError(f"confint(): {', '.join(boot_only)} apply to method='boot' only")
    if m == "wald":
        table = wald_confint(res, level)
    elif m == "profile":
        # trace only a little beyond the limits, then find the crossings exactly
        z = stats.norm.ppf(0.5 + level / 2)
        prof = _Profiler(res)
        names = _which(prof.names, prof.nvp, parm)
        table = _profile(prof, names, 1.05 * z, z / 3, 100, verbose).confint(level)
    elif m in ("boot", "bootstrap"):
        nsim = 500 if nsim is None else nsim
        boot = bootstrap(res, nsim=nsim, seed=seed, verbose=verbose, **boot_kwargs)
        table = boot.confint(level)
    else:
        raise ValueError(f"method must be 'profile', 'wald' or 'boot', not {method!r}")
    if parm is not None:
        names = parameter_names(res)
        table = table.loc[_which(names, len(names) - res.k_fe, parm)]
    return as_table(table)
