"""Plots draw what they promise: panels, points and intervals (counted, not pixels)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

import sparselme as sl  # noqa: E402
from sparselme.plotting import normal_quantiles, plot_profile  # noqa: E402


@pytest.fixture(scope="module")
def sleep_fit():
    return sl.lmer("Reaction ~ Days + (Days | Subject)", sl.datasets.load("sleepstudy"))


@pytest.fixture(scope="module")
def penicillin_fit():
    return sl.lmer("diameter ~ 1 + (1 | plate) + (1 | sample)", sl.datasets.load("Penicillin"))


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_diagnostics_has_three_panels_with_every_point(sleep_fit):
    fig = sleep_fit.plot_diagnostics()
    ax_rf, ax_qq, ax_re = fig.axes
    assert len(fig.axes) == 3
    points = ax_rf.collections[0].get_offsets()
    assert points.shape == (sleep_fit.nobs, 2)
    np.testing.assert_allclose(points[:, 0], sleep_fit.fittedvalues)
    qq = [line for line in ax_qq.lines if line.get_linestyle() == "None"]
    assert len(qq) == 1 and len(qq[0].get_xdata()) == sleep_fit.nobs
    # one QQ series per random-effect column, 18 subjects each, with a legend
    re_series = [line for line in ax_re.lines if line.get_linestyle() == "None"]
    assert [len(line.get_xdata()) for line in re_series] == [18, 18]
    labels = [t.get_text() for t in ax_re.get_legend().get_texts()]
    assert labels == ["(Intercept) | Subject", "Days | Subject"]


def test_caterpillar_panels_and_intervals(sleep_fit, penicillin_fit):
    fig = sleep_fit.plot_ranef()
    assert [ax.get_title() for ax in fig.axes] == ["(Intercept) | Subject", "Days | Subject"]
    ranef = sleep_fit.ranef()
    for j, ax in enumerate(fig.axes):
        container = ax.containers[0]
        x = container.lines[0].get_xdata()
        np.testing.assert_allclose(np.sort(x), np.sort(ranef["Subject"].iloc[:, j]))
        # the error bar segments span ±1.96 conditional SDs
        segs = container.lines[2][0].get_segments()
        widths = np.sort([s[1, 0] - s[0, 0] for s in segs])
        sd = np.sqrt(ranef.condvar["Subject"][:, j, j])
        np.testing.assert_allclose(widths, np.sort(2 * 1.959964 * sd), rtol=1e-5)
    # levels sorted by the intercept; labels on the first panel only
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    order = ranef["Subject"]["(Intercept)"].sort_values(kind="stable").index
    assert labels == [str(v) for v in order]

    crossed = penicillin_fit.plot_ranef(groups=["sample"])
    assert [ax.get_title() for ax in crossed.axes] == ["(Intercept) | sample"]
    both = penicillin_fit.plot_ranef(level=0.5)
    assert len(both.axes) == 2
    with pytest.raises(KeyError, match="grouping factors"):
        penicillin_fit.plot_ranef(groups=["plates"])


def test_caterpillar_of_a_large_factor_drops_the_labels():
    inst = sl.datasets.load("InstEval")
    res = sl.lmer("y ~ service + (1 | d)", inst.iloc[:8000])
    fig = res.plot_ranef()
    assert fig.axes[0].get_yticklabels() == []
    assert "levels" in fig.axes[0].get_ylabel()


def test_profile_panels_and_confidence_limits():
    z = np.linspace(-3, 3, 13)
    profiles = {
        "sigma": pd.DataFrame({"value": 2.0 + z, "zeta": z}),
        "(Intercept)": pd.DataFrame({"value": 10 + 2 * z, "zeta": z}),
    }
    gap = pd.DataFrame({"value": [np.nan], "zeta": [np.nan]})  # a failed profile point
    fig = plot_profile({k: pd.concat([f, gap]) for k, f in profiles.items()}, levels=[0.95])
    assert [ax.get_title() for ax in fig.axes] == ["sigma", "(Intercept)"]
    ax = fig.axes[0]
    verticals = [line for line in ax.lines if np.ptp(line.get_xdata()) == 0]
    limits = sorted(line.get_xdata()[0] for line in verticals)
    np.testing.assert_allclose(limits, [2 - 1.959964, 2 + 1.959964], rtol=1e-5)
    # a long table with a parameter column, absolute values, a 2×2 grid with one hidden
    long = pd.concat([f.assign(parameter=k) for k, f in profiles.items()])
    long = pd.concat([long, profiles["sigma"].assign(parameter="other")])
    fig = plot_profile(long, absolute=True, ncols=2)
    assert len(fig.axes) == 4 and not fig.axes[3].get_visible()
    assert min(fig.axes[0].lines[0].get_ydata()) >= 0
    with pytest.raises(ValueError, match="zeta"):
        plot_profile({"sigma": pd.DataFrame({"value": [1.0]})})
    with pytest.raises(ValueError, match="parameter"):
        plot_profile(profiles["sigma"])


def test_normal_quantiles_match_r_ppoints():
    # R: qqnorm positions, qnorm(ppoints(5)) and qnorm(ppoints(20))[1]
    np.testing.assert_allclose(
        normal_quantiles(5), [-1.17976, -0.49720, 0.0, 0.49720, 1.17976], atol=1e-5
    )
    assert normal_quantiles(20)[0] == pytest.approx(-1.959964, abs=1e-6)


def test_plots_on_statsmodels_style_results():
    dietox = sl.datasets.load("dietox")
    res = sl.mixedlm("Weight ~ Time", dietox, groups="Pig").fit()
    fig = res.plot_diagnostics()
    assert len(fig.axes) == 3
    assert len(res.plot_ranef().axes) == 1
