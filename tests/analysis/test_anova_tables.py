"""anova() of fitted models: rows named and ordered as lme4 (keywords, model names, the
caller's variables), values against frozen lme4; result tables print whole."""

from __future__ import annotations

import json
import warnings
from functools import cache

import numpy as np
import pandas as pd
import pytest
from references import REFERENCE

import sparselme as sl
from sparselme.analysis.tables import Table, as_table

ANOVA = json.loads((REFERENCE / "lme4_parity" / "reference.json").read_text())["cases"][
    "anova_model_names"
]
COLUMNS = ["npar", "AIC", "BIC", "logLik", "deviance", "Chisq", "Df", "Pr(>Chisq)"]


@cache
def fits():
    sleep = sl.datasets.load("sleepstudy")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        small = sl.lmer(ANOVA["models"]["small"], sleep)
        big = sl.lmer(ANOVA["models"]["big"], sleep)
    return small, big


def check_table(table, ref):
    assert list(table.index) == ref["rownames"]
    assert list(table.columns) == COLUMNS
    for col in COLUMNS:
        expected = np.array(ref[col], dtype=float)
        np.testing.assert_allclose(table[col], expected, rtol=2e-6, equal_nan=True)


def test_keyword_names_and_npar_order():
    small, big = fits()
    table = sl.anova(big=big, small=small)  # given out of order: sorted by npar
    assert list(table.index) == ["small", "big"]
    ref = ANOVA["model_names_argument"]["table"]
    check_table(table, ref)
    assert table.heading == ["Models:", *ref["heading"][2:]]


def test_model_names_argument_as_lmes():
    small, big = fits()
    table = sl.anova(big, small, names=["big", "small"])
    check_table(table, ANOVA["model_names_argument"]["table"])


def test_rows_named_after_the_callers_variables_as_r_deparses():
    m_small, m_big = fits()
    check_table(sl.anova(m_big, m_small), ANOVA["symbols"]["table"])
    check_table(m_big.anova(m_small), ANOVA["symbols"]["table"])
    assert list(m_big.anova(small=m_small).index) == ["small", "m_big"]

    def inner(a, b):  # the caller's locals come first
        return sl.anova(a, b)

    assert list(inner(m_small, m_big).index) == ["a", "b"]
    assert list(unnamed().index) == ["m1", "m2"]


def unnamed():
    return sl.anova(*fits())  # no variable names the models here: by position


def test_names_must_be_distinct_and_one_per_model():
    small, big = fits()
    with pytest.raises(ValueError, match="2 names for 3 models"):
        sl.anova(small, big, small, names=["a", "b"])
    with pytest.raises(ValueError, match="must differ"):
        sl.anova(small, big, names=["a", "a"])


def test_tables_print_whole_whatever_the_display_options():
    small, big = fits()
    table = sl.anova(small=small, big=big)
    with pd.option_context("display.max_columns", 3, "display.width", 30, "display.max_rows", 2):
        text = repr(table)
        assert "..." not in text and "…" not in text
        assert all(c in text for c in COLUMNS)
        assert text.splitlines()[:3] == table.heading
        coefs = big.coef_table()
        assert isinstance(coefs, Table) and "..." not in str(coefs)
        wide = as_table(pd.DataFrame(np.arange(300.0).reshape(20, 15)))
        assert len(str(wide).splitlines()) == 21 and "..." not in str(wide)
        assert "..." not in wide._repr_html_()


def test_profile_prints_its_whole_trace():
    small, _ = fits()
    prof = small.profile(which="theta_")
    with pd.option_context("display.max_rows", 4, "display.max_columns", 2):
        text = repr(prof)
    assert len(text.splitlines()) == 2 + len(prof.trace)
    assert "..." not in text
