"""Random-effects terms whose variances cannot be told apart raise, wherever terms are built."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import sparselme as sl
import sparselme.api as slm
from sparselme.data.design import coded_term, group_codes
from sparselme.data.overlap import check_distinct_terms
from sparselme.engine.crossprod import chunk_crossproducts
from sparselme.errors import IdentifiabilityError


@pytest.fixture(scope="module")
def sleep() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    data = sl.datasets.load("sleepstudy")
    return data.assign(
        half=np.where(data["Days"] < 5, "early", "late"),
        Subject2=data["Subject"].astype(str) + "x",  # the same grouping, other labels
        z=rng.normal(size=len(data)),
    )


@pytest.mark.parametrize(
    ("rhs", "named"),
    [
        ("(1 | Subject) + (1 | Subject)", r"\(1 \| Subject\) appears twice"),
        ("(1 | Subject) + (1 + Days | Subject)", r"share the column \(Intercept\)"),
        ("(Days | Subject) + (0 + Days | Subject)", "share the column Days"),
        ("(1 | Subject) + (0 + half | Subject)", "linear combinations"),  # indicators sum to 1
        ("(half || Subject)", "linear combinations"),  # lme4 expands it to the same
        ("(1 | Subject) + (1 | Subject2)", r"\(1 \| Subject\) and \(1 \| Subject2\)"),
        ("(z | Subject) + (1 | Subject) + (0 + Days | Subject)", r"\(z \| Subject\)"),
    ],
)
def test_lmer_rejects_confounded_terms(sleep, rhs, named):
    with pytest.raises(IdentifiabilityError, match=named):
        sl.lmer(f"Reaction ~ Days + {rhs}", sleep)


@pytest.mark.parametrize(
    "rhs",
    [
        "(Days || Subject)",  # (1 | Subject) + (0 + Days | Subject)
        "(1 | Subject) + (0 + Days | Subject) + (0 + z | Subject)",
        "(1 | Subject) + (1 | Subject:half)",  # nested: another grouping
    ],
)
def test_distinct_terms_are_accepted(sleep, rhs):
    res = sl.lmer(f"Reaction ~ Days + {rhs}", sleep)
    assert np.isfinite(res.llf)


def test_statsmodels_groups_with_the_same_bar_term(sleep):
    with pytest.raises(IdentifiabilityError, match=r"\(1 \| Subject\) appears twice"):
        sl.mixedlm("Reaction ~ Days + (1 | Subject)", sleep, groups="Subject")
    with pytest.raises(IdentifiabilityError, match=r"\(Intercept\)"):
        sl.mixedlm("Reaction ~ Days + (Days | Subject)", sleep, groups="Subject")
    with pytest.raises(IdentifiabilityError, match="Days"):
        sl.mixedlm("Reaction ~ Days", sleep, groups="Subject", re_formula="~Days",
                   vc_formula={"slope": "0 + Days"})  # fmt: skip
    with pytest.raises(IdentifiabilityError, match="variance component 'a'"):
        sl.mixedlm("Reaction ~ Days", sleep, groups="Subject", re_formula="1",
                   vc_formula={"a": "0 + C(Subject)"})  # fmt: skip
    with pytest.raises(IdentifiabilityError, match="'u' and variance component 'v'"):
        sl.mixedlm("Reaction ~ Days", sleep, groups="Subject",
                   vc_formula={"u": "0 + z", "v": "0 + z"})  # fmt: skip
    # statsmodels' usual spellings stay fine
    sl.mixedlm("Reaction ~ Days", sleep, groups="Subject", re_formula="~Days").fit()
    sl.mixedlm("Reaction ~ Days", sleep, groups="Subject", vc_formula={"s": "0 + Days"}).fit()


def test_array_api_with_a_variance_component_equal_to_the_random_intercept(sleep):
    groups = sleep["Subject"].astype(str)
    labels = sorted(groups.unique())
    mats = [[np.ones(((groups == g).sum(), 1)) for g in labels]]
    exog = np.column_stack([np.ones(len(sleep)), sleep["Days"]])
    vc = slm.VCSpec(["intercept"], [[["one"]] * len(labels)], mats)
    with pytest.raises(IdentifiabilityError, match="variance component 'intercept'"):
        slm.MixedLM(sleep["Reaction"], exog, groups, exog_re=np.ones(len(sleep)), exog_vc=vc)
    slm.MixedLM(sleep["Reaction"], exog, groups, exog_re=sleep[["Days"]], exog_vc=vc).fit()


def _term(name, columns, codes, levels, model):
    return coded_term(name, columns, levels, codes, model, group_vars=("Subject",))


@pytest.mark.parametrize(
    ("second", "ok"), [("slope", True), ("intercept_slope", False), ("halves", False)]
)
def test_the_same_check_on_cross_products(sleep, second, ok):
    """Streamed terms hold no rows: the same test reads the Gram matrices from cp."""
    codes, levels = group_codes(sleep, ["Subject"])
    days = sleep["Days"].to_numpy(float)
    early = (days < 5).astype(float)
    models = {
        "slope": (("Days",), days[:, None]),
        "intercept_slope": (("(Intercept)", "Days"), np.column_stack([np.ones_like(days), days])),
        "halves": (("halfearly", "halflate"), np.column_stack([early, 1 - early])),
    }
    ones = np.ones((len(days), 1))
    coded = [_term("Subject", ("(Intercept)",), codes, levels, ones),
             _term("Subject", *models[second][:1], codes, levels, models[second][1])]  # fmt: skip
    terms, rows = [t for t, _ in coded], [r for _, r in coded]
    cp = chunk_crossproducts(rows, ones, sleep["Reaction"].to_numpy())
    for args in [(terms, rows), (terms, None, cp)]:
        if ok:
            check_distinct_terms(*args)
        else:
            with pytest.raises(IdentifiabilityError):
                check_distinct_terms(*args)


def test_streamed_parquet_rejects_confounded_terms(sleep, tmp_path):
    pytest.importorskip("pyarrow")
    sleep.assign(Subject=sleep["Subject"].astype(str)).to_parquet(
        tmp_path / "sleep.parquet", write_page_checksum=True
    )
    with pytest.raises(IdentifiabilityError, match=r"share the column \(Intercept\)"):
        sl.lmer("Reaction ~ Days + (1 | Subject) + (Days | Subject)", tmp_path)
    with pytest.raises(IdentifiabilityError, match="appears twice"):
        sl.mixedlm("Reaction ~ Days + (1 | Subject)", tmp_path, groups="Subject")
    res = sl.lmer("Reaction ~ Days + (Days || Subject)", tmp_path)
    assert res.llf == pytest.approx(sl.lmer("Reaction ~ Days + (Days || Subject)", sleep).llf)
