"""Diagnostic, caterpillar and profile plots (matplotlib, the optional extra ``plot``).

matplotlib is imported inside each function, so ``import sparselme`` never needs it.
Every function returns the `matplotlib.figure.Figure` it drew on; pass ``fig``
to draw on one you made.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy import stats

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from .model.results import ModelFit

__all__ = ["plot_diagnostics", "plot_ranef", "plot_profile", "normal_quantiles"]

# Caterpillar panels label every level up to this many levels.
_MAX_LABELLED_LEVELS = 40


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("plots need matplotlib: pip install 'sparselme[plot]'") from exc
    return plt


def _figure(fig: Figure | None, figsize: tuple[float, float]) -> Figure:
    if fig is not None:
        fig.clear()
        return fig
    return _pyplot().figure(figsize=figsize, layout="constrained")


def normal_quantiles(n: int) -> np.ndarray:
    """Expected standard normal order statistics for a QQ plot (R's ``qqnorm`` positions)."""
    a = 3.0 / 8.0 if n <= 10 else 0.5
    return stats.norm.ppf((np.arange(1, n + 1) - a) / (n + 1 - 2 * a))


def _qq(ax, values: np.ndarray, **style: Any) -> None:
    """Sorted values against normal quantiles, with the line through the quartiles."""
    values = np.sort(np.asarray(values, dtype=float))
    theo = normal_quantiles(len(values))
    ax.plot(theo, values, linestyle="none", marker="o", markersize=3, alpha=0.7, **style)
    q1, q3 = np.quantile(values, [0.25, 0.75])
    t1, t3 = stats.norm.ppf([0.25, 0.75])
    slope = (q3 - q1) / (t3 - t1)
    color = style.get("color", "0.3")
    ax.axline((t1, q1), slope=slope if slope > 0 else 1.0, color=color, lw=1, alpha=0.8)


def plot_diagnostics(res: ModelFit, fig: Figure | None = None) -> Figure:
    """Three panels: residuals vs fitted, a normal QQ plot of the residuals, and normal QQ
    plots of the random effects (each column of each grouping factor, standardized)."""
    fig = _figure(fig, (12, 4))
    ax_rf, ax_qq, ax_re = fig.subplots(1, 3)
    fitted = np.asarray(res.fittedvalues, dtype=float)
    resid = np.asarray(res.resid, dtype=float)
    ax_rf.scatter(fitted, resid, s=8, alpha=0.5, edgecolors="none")
    ax_rf.axhline(0.0, color="0.3", lw=1)
    ax_rf.set(xlabel="fitted values", ylabel="residuals", title="Residuals vs fitted")

    _qq(ax_qq, resid / res.sigma, color="C0")
    ax_qq.set(
        xlabel="standard normal quantiles",
        ylabel="standardized residuals",
        title="Normal QQ: residuals",
    )

    ranef = res.ranef(condvar=False)
    i = 0
    for group, frame in ranef.items():
        for column in frame.columns:
            values = frame[column].to_numpy(dtype=float)
            sd = values.std()
            if len(values) < 2 or sd == 0:  # a zero variance: nothing to plot
                continue
            _qq(ax_re, values / sd, color=f"C{i % 10}", label=f"{column} | {group}")
            i += 1
    ax_re.set(
        xlabel="standard normal quantiles",
        ylabel="standardized conditional modes",
        title="Normal QQ: random effects",
    )
    if i:
        ax_re.legend(fontsize="small", loc="upper left")
    return fig


def _interval_panels(
    res: ModelFit, level: float, groups: Sequence[str] | None
) -> list[tuple[str, pd.DataFrame, np.ndarray]]:
    ranef = res.ranef(condvar=True)
    names = list(ranef) if groups is None else list(groups)
    out = []
    for name in names:
        if name not in ranef:
            raise KeyError(f"no random effects for {name!r}; grouping factors: {list(ranef)}")
        frame = ranef[name]
        var = np.diagonal(ranef.condvar[name], axis1=1, axis2=2)
        half = stats.norm.ppf(0.5 + level / 2) * np.sqrt(np.maximum(var, 0.0))
        out.append((name, frame, half))
    return out


def plot_ranef(
    res: ModelFit,
    level: float = 0.95,
    groups: Sequence[str] | None = None,
    fig: Figure | None = None,
) -> Figure:
    """Caterpillar plot: conditional modes with ``level`` prediction intervals.

    One row of panels per grouping factor (``groups`` picks and orders them), one panel
    per random-effect column; levels are sorted by the first column. The intervals are
    ±z·√(conditional variance) from ``res.ranef().condvar``, as lme4's ``dotplot``.
    """
    panels = _interval_panels(res, level, groups)
    ncols = max(frame.shape[1] for _, frame, _ in panels)
    heights = [min(max(2.0, 0.16 * len(frame)), 8.0) for _, frame, _ in panels]
    fig = _figure(fig, (3.6 * ncols + 1.0, sum(heights) + 0.6))
    grid = fig.add_gridspec(len(panels), ncols, height_ratios=heights)
    for row, (name, frame, half) in enumerate(panels):
        order = np.argsort(frame.iloc[:, 0].to_numpy(), kind="stable")
        ypos = np.arange(len(frame))
        labelled = len(frame) <= _MAX_LABELLED_LEVELS
        first = None
        for j, column in enumerate(frame.columns):
            ax = fig.add_subplot(grid[row, j], sharey=first)
            first = first or ax
            est = frame[column].to_numpy(dtype=float)[order]
            err = half[order, j]
            ax.axvline(0.0, color="0.6", lw=1)
            ax.errorbar(
                est,
                ypos,
                xerr=err,
                fmt="o",
                markersize=3 if labelled else 1.5,
                elinewidth=1 if labelled else 0.4,
                color="C0",
                ecolor="C0" if labelled else "0.6",
            )
            ax.set_title(f"{column} | {name}", fontsize="medium")
            ax.set_ylim(-1, len(frame))
            if j == 0 and labelled:
                ax.set_yticks(ypos, [str(v) for v in frame.index[order]], fontsize="small")
            elif j == 0:
                ax.set_yticks([])
                ax.set_ylabel(f"{len(frame)} levels")
            else:
                ax.tick_params(labelleft=False)
    return fig


def _profile_frames(profiles: Mapping[str, pd.DataFrame] | pd.DataFrame) -> dict:
    if isinstance(profiles, pd.DataFrame):
        if "parameter" not in profiles:
            raise ValueError(
                "a single profile table needs a 'parameter' column; "
                "otherwise pass a dict {parameter: DataFrame(value, zeta)}"
            )
        profiles = {k: g for k, g in profiles.groupby("parameter", sort=False)}
    out = {}
    for name, frame in profiles.items():
        missing = {"value", "zeta"} - set(frame.columns)
        if missing:
            raise ValueError(f"profile of {name!r} lacks column(s) {sorted(missing)}")
        out[name] = frame.dropna(subset=["value", "zeta"]).sort_values("value")
    if not out:
        raise ValueError("no profiles to plot")
    return out


def plot_profile(
    profiles: Mapping[str, pd.DataFrame] | pd.DataFrame,
    levels: Sequence[float] = (0.5, 0.8, 0.9, 0.95, 0.99),
    absolute: bool = False,
    ncols: int | None = None,
    fig: Figure | None = None,
) -> Figure:
    """Profile traces ζ(value), one panel per parameter, as lme4's ``xyplot(profile)``.

    ``profiles`` maps a parameter name to a DataFrame with columns ``value`` (the
    parameter held fixed) and ``zeta`` (the signed square root of the change in
    deviance, ``sign(value − estimate)·√(dev(value) − dev_min)``); a single DataFrame
    with a ``parameter`` column works too. Horizontal lines mark ±z at ``levels``, and
    the vertical lines under them the profile confidence limits. ``absolute=True`` plots
    |ζ|, lme4's ``absVal``.
    """
    frames = _profile_frames(profiles)
    n = len(frames)
    ncols = ncols or min(n, 3)
    nrows = -(-n // ncols)
    fig = _figure(fig, (3.6 * ncols, 3.2 * nrows))
    axes = np.atleast_1d(fig.subplots(nrows, ncols, sharey=True, squeeze=False)).ravel()
    cuts = stats.norm.ppf(0.5 + np.asarray(levels) / 2)
    for ax, (name, frame) in zip(axes, frames.items()):
        value = frame["value"].to_numpy(dtype=float)
        zeta = frame["zeta"].to_numpy(dtype=float)
        ax.plot(value, np.abs(zeta) if absolute else zeta, color="C0", lw=1.5)
        for z in cuts:
            for sign in (-1, 1):
                y = z if absolute else sign * z
                ax.axhline(y, color="0.85", lw=0.8, zorder=0)
                limit = _crossing(value, zeta, sign * z)
                if limit is not None:  # the profile confidence limit at this level
                    ax.plot([limit, limit], [0.0, y], color="0.6", lw=0.8)
        ax.axhline(0.0, color="0.6", lw=0.8, zorder=0)
        ax.set_title(str(name), fontsize="medium")
        ax.set_xlabel("value")
    for ax in axes[n:]:
        ax.set_visible(False)
    for ax in axes[::ncols]:
        ax.set_ylabel("|ζ|" if absolute else "ζ")
    return fig


def _crossing(value: np.ndarray, zeta: np.ndarray, target: float) -> float | None:
    """Where the (monotone) profile trace crosses ζ = target, by linear interpolation."""
    side = zeta > 0 if target > 0 else zeta < 0
    v, z = value[side], zeta[side]
    if len(v) < 2 or not (z.min() <= target <= z.max()):
        return None
    order = np.argsort(z)
    return float(np.interp(target, z[order], v[order]))
