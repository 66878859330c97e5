"""Printouts as objects: summary text unchanged, HTML and LaTeX renderings, print(res),
notebook displays of fits, ranef(), varcorr, anova tables and profiles."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pandas as pd
import pytest

import sparselme as sl
from sparselme.results.report import Summary
from sparselme.results.summary import lme4_summary


@pytest.fixture(scope="module")
def sleep() -> pd.DataFrame:
    return sl.datasets.load("sleepstudy")


@pytest.fixture(scope="module")
def fit(sleep):
    return sl.lmer("Reaction ~ Days + (Days | Subject)", sleep)


def cells(html: str) -> list[str]:
    """The text of every table cell of an HTML fragment."""
    return [c.strip() for c in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", html, flags=re.S)]


def test_summary_is_an_object_whose_text_is_lme4s(fit):
    s = fit.summary()
    assert isinstance(s, Summary) and not isinstance(s, str)
    assert str(s) == s.as_text() == repr(s) == lme4_summary(fit)
    assert "REML criterion at convergence: 1743.6283" in s


def test_summary_html_has_the_tables_of_the_text(fit):
    html = fit.summary()._repr_html_()
    assert html == fit.summary().as_html()
    got = cells(html)
    # the random-effects block: group, names, variances, standard deviations, correlation
    for value in ("Subject", "(Intercept)", "Days", "Residual", "612.1", "24.74", "0.07"):
        assert value in got
    # the fixed effects as in the text (5 significant digits)
    for name, est in fit.fe_params.items():
        assert name in got and f"{est:.5g}" in got
    assert "Scaled residuals:" in html and "Number of obs: 180" in html


def test_summary_latex_is_a_tabular_per_table(fit):
    tex = fit.summary().as_latex()
    assert tex.count(r"\begin{tabular}") == 3  # residuals, random effects, fixed effects
    assert r"Reaction \textasciitilde{} Days" in tex
    assert re.search(r"Days & 10\.467 & 1\.5458 & 6\.7715 \\\\", tex)


def test_ml_summary_shows_the_information_criteria(sleep):
    res = sl.lmer("Reaction ~ Days + (1 | Subject)", sleep, REML=False)
    got = cells(res.summary().as_html())
    assert f"{res.AIC:.1f}" in got and f"{res.deviance:.1f}" in got
    assert str(res.summary()) == lme4_summary(res)


def test_print_shows_lme4s_short_overview(fit):
    text = str(fit)
    lines = text.splitlines()
    assert lines[0] == "Linear mixed model fit by REML"
    assert "REML criterion at convergence: 1743.6283" in lines
    assert any(re.fullmatch(r" Subject\s+\(Intercept\)\s+24\.74", x) for x in lines)
    assert any(re.fullmatch(r"\s+Days\s+5\.922\s+0\.07", x) for x in lines)
    assert re.search(r"251\.41\s+10\.467$", text)
    assert "Scaled residuals" not in text  # the short form
    assert repr(fit).startswith("<MixedLMResults REML nobs=180")
    assert "24.74" in cells(fit._repr_html_())


def test_residual_structure_summary(sleep):
    data = sleep.assign(half=np.where(sleep["Days"] >= 5, "late", "early"))
    res = sl.lmer("Reaction ~ Days + (1 | Subject)", data, residual=sl.VarIdent("half"))
    s = res.summary()
    assert "Residual structure: VarIdent by half" in s
    got = cells(s.as_html())
    assert "(fixed)" in got and f"{res.residual_params['late']:.5g}" in got
    assert s.as_latex().count(r"\begin{tabular}") == 4


def test_statsmodels_varident_summary_rules_fit_the_frame(sleep):
    data = sleep.assign(half=np.where(sleep["Days"] >= 5, "late", "early"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = sl.mixedlm("Reaction ~ Days", data, groups="Subject", residual=sl.VarIdent("half"))
        text = res.fit().summary().as_text()
    rules = [line for line in text.splitlines() if set(line) <= {"-", "="} and line]
    assert len(rules) >= 5 and len({len(r) for r in rules}) == 1


def test_ranef_displays_each_factor(fit):
    re_ = fit.ranef()
    html = re_._repr_html_()
    assert "<strong>Subject</strong> (18 levels)" in html and "308" in cells(html)
    assert repr(re_).startswith("$Subject\n")


@pytest.mark.parametrize(
    "formula", ["Reaction ~ Days + (1 | Subject)", "Reaction ~ (Days | Subject)"]
)
def test_varcorr_marks_what_is_absent_with_nan(sleep, formula):
    vc = sl.lmer(formula, sleep).varcorr
    for col in ("var1", "var2"):
        assert vc[col].dtype == object
        assert not any(v is None for v in vc[col])
    assert vc["var2"].isna().sum() == len(vc) - int((vc["var2"].notna()).sum())
    assert pd.isna(vc.loc[vc["grp"] == "Residual", "var1"]).all()
    assert "<table" in vc._repr_html_()


def test_anova_tables_and_profiles_display(fit, sleep):
    small = sl.lmer("Reaction ~ Days + (1 | Subject)", sleep)
    assert "Pr(&gt;Chisq)" in fit.anova(small)._repr_html_()
    assert "Pr(&gt;F)" in fit.anova()._repr_html_()
    prof = small.profile()
    table = prof.table()
    assert list(table.index) == prof.parameters
    assert (table["lowest zeta"] < 0).all() and (table["highest zeta"] > 0).all()
    ml = sl.lmer("Reaction ~ Days + (1 | Subject)", sleep, REML=False)
    assert table.loc["sigma", "estimate"] == pytest.approx(ml.sigma, rel=1e-6)
    assert (table["lowest"] < table["estimate"]).all()
    assert (table["estimate"] < table["highest"]).all()
    html = prof._repr_html_()
    assert "Profile" in html and "sigma" in cells(html)


def test_lmer_refuses_statsmodels_reml_spelling(sleep):
    with pytest.raises(TypeError, match="REML=False"):
        sl.lmer("Reaction ~ Days + (1 | Subject)", sleep, reml=False)
