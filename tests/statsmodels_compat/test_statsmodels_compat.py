"""The statsmodels-compatible API, run side by side with statsmodels itself.

Each seed example is fitted with statsmodels and with sparselme in the test; summaries
are compared table by table. Where statsmodels converges to the optimum the printed
text is identical; where it stops a little short, every printed number agrees to within
its distance from the optimum and sparselme's likelihood is at least as high.
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sm = pytest.importorskip("statsmodels.api")
smf = pytest.importorskip("statsmodels.formula.api")
from references import REFERENCE  # noqa: E402
from seed_data import income_data, students_data  # noqa: E402
from statsmodels.regression.mixed_linear_model import (  # noqa: E402
    MixedLMParams as SmMixedLMParams,
)

import sparselme as sl  # noqa: E402
import sparselme.api as slm  # noqa: E402
import sparselme.formula.api as slf  # noqa: E402
from sparselme import statsmodels_compat as compat  # noqa: E402
from sparselme.data.design import r_style_name  # noqa: E402
from sparselme.errors import MissingDataError, UnknownColumnError  # noqa: E402

REF = REFERENCE / "lme4"
SEED_REF = REFERENCE / "seed"


def lme4(name: str) -> dict:
    return json.loads((REF / f"{name}.json").read_text())


def sm_fit(model, **kw):
    """statsmodels' fit with its warnings silenced (they are checked where they matter)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return model.fit(**kw)


# ---- comparing summaries ------------------------------------------------------------------------


def _close(ours: str, theirs: str, rtol: float) -> bool:
    if ours == theirs:
        return True
    try:
        a, b = float(ours), float(theirs)
    except ValueError:
        return False
    decimals = len(theirs.split(".")[1]) if "." in theirs else 0
    return abs(a - b) <= rtol * abs(b) + 1.01 * 10.0**-decimals


def assert_summaries_match(ours, theirs, rtol: float = 0.0) -> None:
    """Same layout, row names and columns; numbers equal (rtol=0) or within rtol."""
    if rtol == 0:
        assert str(ours) == str(theirs)
        return
    assert ours.title == theirs.title
    info_a, info_b = (np.asarray(t.tables[0]).astype(str) for t in (ours, theirs))
    assert info_a.shape == info_b.shape
    for a, b in zip(info_a.ravel(), info_b.ravel()):
        assert _close(a.strip(), b.strip(), rtol), (a, b)
    pa, pb = ours.tables[1], theirs.tables[1]
    assert list(pa.index) == list(pb.index)
    assert list(pa.columns) == list(pb.columns)
    for (row, col), b in pb.stack().items():
        a = pa.loc[row, col]
        assert _close(a, b, rtol), (row, col, a, b)


# ---- data ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dietox() -> pd.DataFrame:
    return slm.datasets.get_rdataset("dietox", "geepack").data


@pytest.fixture(scope="module")
def sitka() -> pd.DataFrame:
    data = slm.datasets.get_rdataset("Sitka", "MASS").data
    data["Intercept"] = 1
    return data


@pytest.fixture(scope="module")
def income() -> pd.DataFrame:
    return income_data()


@pytest.fixture(scope="module")
def students() -> pd.DataFrame:
    return students_data()


@pytest.fixture(scope="module")
def penicillin() -> pd.DataFrame:
    return slm.datasets.get_rdataset("Penicillin", "lme4").data


_CACHE: dict = {}


def cached(key, make):
    if key not in _CACHE:
        _CACHE[key] = make()
    return _CACHE[key]


# ---- seeds 000/001: dietox random intercept -----------------------------------------------------


@pytest.mark.parametrize("reml", [True, False], ids=["REML", "ML"])
def test_seed_dietox_random_intercept_summary_is_identical(dietox, reml):
    ours = slf.mixedlm("Weight ~ Time", dietox, groups=dietox["Pig"]).fit(reml=reml)
    theirs = sm_fit(smf.mixedlm("Weight ~ Time", dietox, groups=dietox["Pig"]), reml=reml)
    assert_summaries_match(ours.summary(), theirs.summary())
    assert ours.llf == pytest.approx(theirs.llf, abs=1e-6)
    np.testing.assert_allclose(ours.params, theirs.params, rtol=1e-4)
    np.testing.assert_allclose(ours.bse, theirs.bse, rtol=1e-4)
    assert (
        list(ours.params.index) == list(theirs.params.index) == ["Intercept", "Time", "Group Var"]
    )
    if reml:
        assert np.isnan(ours.aic) and np.isnan(ours.bic)
        assert ours.llf == pytest.approx(lme4("dietox_ri")["logLik"], abs=1e-6)
    else:
        assert ours.aic == pytest.approx(theirs.aic, abs=1e-5)
        assert ours.bic == pytest.approx(theirs.bic, abs=1e-5)
        assert ours.llf == pytest.approx(lme4("dietox_ri_ml")["logLik"], abs=1e-6)


def test_one_line_import_switch_runs_the_statsmodels_script(dietox):
    """The seed's code with `sm`/`smf` bound to sparselme's modules."""
    for api, fapi in ((slm, slf), (sm, smf)):
        data = api.datasets.get_rdataset("dietox", "geepack").data if api is slm else dietox
        md = fapi.mixedlm("Weight ~ Time", data, groups=data["Pig"])
        mdf = sm_fit(md)
        assert "Mixed Linear Model Regression Results" in str(mdf.summary())
    assert slm.MixedLM is sl.MixedLM and slf.mixedlm == sl.mixedlm
    assert slm.regression.mixed_linear_model.MixedLMParams is sl.MixedLMParams


# ---- seed 002: random slopes, independent slopes, Sitka -----------------------------------------


def test_seed_dietox_random_slopes_equals_statsmodels_lbfgs(dietox):
    md = slf.mixedlm("Weight ~ Time", dietox, groups=dietox["Pig"], re_formula="~Time")
    with pytest.warns(FutureWarning, match="method not used"):
        ours = md.fit(method=["lbfgs"])
    theirs = sm_fit(
        smf.mixedlm("Weight ~ Time", dietox, groups=dietox["Pig"], re_formula="~Time"),
        method=["lbfgs"],
    )
    # lbfgs stops 4e-6 short in log-likelihood: numbers agree to 1e-3, ours is higher
    assert_summaries_match(ours.summary(), theirs.summary(), rtol=1e-3)
    assert ours.llf >= theirs.llf - 1e-9
    ref = lme4("dietox_rs")
    assert ours.llf == pytest.approx(ref["logLik"], abs=1e-6)
    np.testing.assert_allclose(
        ours.cov_re.to_numpy()[np.tril_indices(2)],
        np.array(ref["varcorr"]["vcov"])[[0, 2, 1]],
        rtol=1e-3,
    )
    assert list(ours.params.index) == [
        "Intercept",
        "Time",
        "Group Var",
        "Group x Time Cov",
        "Time Var",
    ]
    np.testing.assert_allclose(ours.bse, theirs.bse, rtol=2e-3)


def test_seed_independent_slopes_through_free(dietox):
    free = slm.regression.mixed_linear_model.MixedLMParams.from_components(np.ones(2), np.eye(2))
    md = slf.mixedlm("Weight ~ Time", dietox, groups=dietox["Pig"], re_formula="~Time")
    with pytest.warns(FutureWarning, match="method not used"):
        ours = md.fit(free=free, method=["lbfgs"])
    sm_free = SmMixedLMParams.from_components(np.ones(2), np.eye(2))
    theirs = sm_fit(
        smf.mixedlm("Weight ~ Time", dietox, groups=dietox["Pig"], re_formula="~Time"),
        free=sm_free,
        method=["lbfgs"],
    )
    assert_summaries_match(ours.summary(), theirs.summary(), rtol=1e-3)
    assert ours.params["Group x Time Cov"] == 0 and ours.bse["Group x Time Cov"] == 0
    assert ours.llf >= theirs.llf - 1e-9
    assert ours.llf == pytest.approx(lme4("dietox_rs_indep")["logLik"], abs=1e-6)
    # independent effects are the engine's diagonal structure: no correlation row
    assert ours.varcorr["var2"].isna().all()
    assert ours.aic is not None and np.isnan(ours.aic)
    ml = md.fit(free=free, reml=False)
    ml_sm = sm_fit(
        smf.mixedlm("Weight ~ Time", dietox, groups=dietox["Pig"], re_formula="~Time"),
        free=sm_free,
        reml=False,
        method=["lbfgs"],
    )
    assert ml.aic == pytest.approx(ml_sm.aic, abs=1e-3)  # counts the free parameters


def test_seed_sitka_array_api(sitka):
    exog = sitka[["Intercept", "Time"]]
    ours = slm.MixedLM(sitka["size"], exog, sitka["tree"], exog.iloc[:, 0]).fit()
    theirs = sm_fit(sm.MixedLM(sitka["size"], exog, sitka["tree"], exog.iloc[:, 0]))
    assert_summaries_match(ours.summary(), theirs.summary(), rtol=2e-3)
    assert list(ours.params.index) == ["Intercept", "Time", "Intercept Var"]
    assert list(ours.random_effects[1].index) == ["Intercept"]
    ref = lme4("sitka_ri")
    assert ours.llf == pytest.approx(ref["logLik"], abs=1e-6)
    assert ours.cov_re.iloc[0, 0] == pytest.approx(ref["varcorr"]["vcov"][0], rel=1e-5)
    # plain arrays: statsmodels' default names
    arr = slm.MixedLM(sitka["size"].to_numpy(), exog.to_numpy(), sitka["tree"].to_numpy()).fit()
    arr_sm = sm_fit(sm.MixedLM(sitka["size"].to_numpy(), exog.to_numpy(), sitka["tree"].to_numpy()))
    assert arr.model.exog_names == arr_sm.model.exog_names == ["const", "x1"]
    assert arr.model.endog_names == "y"
    assert list(arr.random_effects[1].index) == list(arr_sm.random_effects[1].index)
    np.testing.assert_allclose(arr.params, arr_sm.params, rtol=1e-3)


# ---- seed 003: income ---------------------------------------------------------------------------


def test_seed_income_fixture_regenerates_the_data(income):
    assert len(income) == 239
    assert income["person"].nunique() == 90
    assert sorted(income["major"].unique()) == ["Dragon Taming", "Juggling", "Magic"]


def test_seed_income_random_intercept_summary(income):
    ours = slf.mixedlm("income ~ years_education * major", income, groups=income["person"]).fit()
    theirs = sm_fit(
        smf.mixedlm("income ~ years_education * major", income, groups=income["person"])
    )
    # variances of 10⁷ print 11 digits; statsmodels stops within 1e-5 of the optimum
    assert_summaries_match(ours.summary(), theirs.summary(), rtol=2e-5)
    assert list(ours.params.index) == list(theirs.params.index)
    assert ours.llf >= theirs.llf - 1e-9


def test_seed_income_random_slopes_reaches_at_least_statsmodels(income):
    """Ours is at least statsmodels' likelihood, and equals lme4's frozen optimum.

    Whatever statsmodels reports about its own convergence (that varies with its
    version), only the likelihoods are compared.
    """
    ours = slf.mixedlm(
        "income ~ years_education * major",
        income,
        groups=income["person"],
        re_formula="~years_education",
    ).fit()
    theirs = sm_fit(
        smf.mixedlm(
            "income ~ years_education * major",
            income,
            groups=income["person"],
            re_formula="~years_education",
        )
    )
    ref = json.loads((SEED_REF / "income.json").read_text())["income_rs"]
    assert ours.converged
    assert ours.llf >= theirs.llf - 1e-6
    assert ours.llf >= ref["logLik"] - 1e-4
    assert ours.llf == pytest.approx(ref["logLik"], abs=1e-3)
    fixef = {r_style_name(k): v for k, v in ours.fe_params.items()}
    assert fixef == pytest.approx(ref["fixef"], rel=1e-4)
    assert list(ours.params.index) == list(theirs.params.index)


# ---- seed 004: students in classrooms in schools ------------------------------------------------

STUDENT_MODELS = {
    "intercept": {},
    "slopes": {"re_formula": "~hours"},
    "nested": {"re_formula": "1", "vc_formula": {"classroom": "0 + C(classroom)"}},
    "slopes+nested": {"re_formula": "~hours", "vc_formula": {"classroom": "0 + C(classroom)"}},
}


@pytest.mark.parametrize("name", list(STUDENT_MODELS))
def test_seed_students(students, name):
    kw = STUDENT_MODELS[name]
    ours = slf.mixedlm("score ~ hours", students, groups="school", **kw).fit()
    theirs = sm_fit(smf.mixedlm("score ~ hours", students, groups="school", **kw))
    assert list(ours.params.index) == list(theirs.params.index)
    assert ours.llf >= theirs.llf - 1e-9
    assert ours.llf == pytest.approx(theirs.llf, abs=1e-6)
    # statsmodels stops within ~1e-4 (relative) of the optimum on these data
    np.testing.assert_allclose(ours.params, theirs.params, rtol=1e-3, atol=1e-8)
    np.testing.assert_allclose(ours.bse, theirs.bse, rtol=1e-3)
    assert_summaries_match(ours.summary(), theirs.summary(), rtol=1e-3)
    for g in ("S00", "S07"):
        a, b = ours.random_effects[g], theirs.random_effects[g]
        assert list(a.index) == list(b.index)
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4)
        ca, cb = ours.random_effects_cov[g], theirs.random_effects_cov[g]
        assert list(ca.index) == list(cb.index)
        np.testing.assert_allclose(ca, cb, rtol=1e-3, atol=1e-5)
    np.testing.assert_allclose(ours.fittedvalues, theirs.fittedvalues, atol=1e-3)
    np.testing.assert_allclose(ours.resid, theirs.resid, atol=1e-3)
    new = pd.DataFrame({"hours": [0.0, 2.5, 9.0], "school": ["S00", "S03", "new"]})
    pred = ours.predict(new)
    assert isinstance(pred, pd.Series)
    np.testing.assert_allclose(pred, theirs.predict(new), rtol=1e-6)
    np.testing.assert_allclose(ours.predict(), theirs.predict(), rtol=1e-6)


def test_vc_formula_with_an_intercept_is_evaluated_group_by_group(students):
    kw = {"vc_formula": {"classroom": "C(classroom)"}}
    ours = slf.mixedlm("score ~ hours", students, groups="school", **kw).fit()
    theirs = sm_fit(smf.mixedlm("score ~ hours", students, groups="school", **kw))
    assert list(ours.random_effects["S00"].index) == list(theirs.random_effects["S00"].index)
    assert ours.llf == pytest.approx(theirs.llf, abs=1e-5)
    np.testing.assert_allclose(ours.params, theirs.params, rtol=1e-3)
    assert "school Var" not in ours.params.index  # vc_formula without re_formula: no intercept


def test_array_api_variance_components(students):
    groups = students["school"]
    classes = pd.get_dummies(students["classroom"], prefix="c").astype(float)
    labels = sorted(groups.unique())
    mats = [[classes[groups == g].to_numpy() for g in labels]]
    names = [[list(classes.columns)] * len(labels)]
    exog = sm.add_constant(students[["hours"]])
    ours = slm.MixedLM(
        students["score"], exog, groups, exog_vc=compat.VCSpec(["classroom"], names, mats)
    ).fit()
    from statsmodels.regression.mixed_linear_model import VCSpec

    theirs = sm_fit(
        sm.MixedLM(students["score"], exog, groups, exog_vc=VCSpec(["classroom"], names, mats))
    )
    assert list(ours.params.index) == list(theirs.params.index)
    assert ours.llf == pytest.approx(theirs.llf, abs=1e-5)
    np.testing.assert_allclose(ours.params, theirs.params, rtol=1e-3)
    assert list(ours.random_effects["S00"].index) == list(theirs.random_effects["S00"].index)
    # statsmodels' deprecated dict-of-dicts form
    vc = {"classroom": {g: classes[groups == g] for g in labels}}
    with pytest.warns(FutureWarning):
        again = slm.MixedLM(students["score"], exog, groups, exog_vc=vc).fit()
    assert again.llf == pytest.approx(ours.llf, abs=1e-8)


# ---- likelihoods at least statsmodels' -----------------------------------------------------------


def test_dietox_random_slopes_ml_reaches_lme4(dietox):
    """Ours is at least statsmodels' likelihood and reaches lme4's optimum."""
    ours = slf.mixedlm("Weight ~ Time", dietox, groups=dietox["Pig"], re_formula="~Time").fit(
        reml=False
    )
    md = smf.mixedlm("Weight ~ Time", dietox, groups=dietox["Pig"], re_formula="~Time")
    theirs = sm_fit(md, reml=False)
    assert ours.llf == pytest.approx(-2215.753, abs=5e-4)
    assert ours.llf >= theirs.llf - 1e-6
    assert ours.converged


# ---- crossed designs through mixedlm ------------------------------------------------------------


def test_penicillin_bar_terms_and_vc_idiom_both_equal_lme4(penicillin):
    ref = lme4("penicillin_crossed")
    bars = slf.mixedlm("diameter ~ 1 + (1 | plate) + (1 | sample)", penicillin).fit()
    idiom = slf.mixedlm(
        "diameter ~ 1",
        penicillin,
        groups=np.ones(len(penicillin)),
        vc_formula={"plate": "0 + C(plate)", "sample": "0 + C(sample)"},
    ).fit()
    vc_ref = dict(zip(ref["varcorr"]["grp"], ref["varcorr"]["vcov"]))
    for res in (bars, idiom):
        assert res.llf == pytest.approx(ref["logLik"], abs=1e-4)
        assert res.fe_params.iloc[0] == pytest.approx(ref["fixef"]["(Intercept)"], rel=1e-6)
        assert res.bse_fe.iloc[0] == pytest.approx(ref["se"]["(Intercept)"], rel=1e-3)
        np.testing.assert_allclose(res.vcomp, [vc_ref["plate"], vc_ref["sample"]], rtol=1e-3)
        assert res.scale == pytest.approx(vc_ref["Residual"], rel=1e-4)
        assert list(res.params.index) == ["Intercept", "plate Var", "sample Var"]
    assert_summaries_match(bars.summary(), idiom.summary(), rtol=1e-6)
    theirs = sm_fit(
        smf.mixedlm(
            "diameter ~ 1",
            penicillin,
            groups=np.ones(len(penicillin)),
            vc_formula={"plate": "0 + C(plate)", "sample": "0 + C(sample)"},
        )
    )
    assert_summaries_match(idiom.summary(), theirs.summary(), rtol=1e-3)
    key = list(theirs.random_effects)[0]
    assert list(idiom.random_effects[key].index) == list(theirs.random_effects[key].index)


def test_single_bar_term_is_groups_with_re_formula(dietox):
    bar = slf.mixedlm("Weight ~ Time + (Time | Pig)", dietox).fit()
    grp = slf.mixedlm("Weight ~ Time", dietox, groups="Pig", re_formula="~Time").fit()
    assert str(bar.summary()) == str(grp.summary())
    assert list(bar.params.index)[2:] == ["Pig Var", "Pig x Time Cov", "Time Var"]
    assert bar.random_effects[4601].index.tolist() == ["Pig", "Time"]


def test_crossed_bar_terms_with_groups(dietox):
    """A bar term crossing the groups goes into the same model (one dense block)."""
    res = slf.mixedlm("Weight ~ Time + (1 | Litter)", dietox, groups="Pig").fit()
    ref = sl.lmer("Weight ~ Time + (1 | Pig) + (1 | Litter)", sl.datasets.load("dietox"))
    assert res.llf == pytest.approx(ref.llf, abs=1e-6)
    assert list(res.params.index) == ["Intercept", "Time", "Pig Var", "Litter Var"]
    assert np.all(np.isfinite(res.bse))


# ---- statsmodels' attributes --------------------------------------------------------------------


@pytest.fixture(scope="module")
def slopes_pair(dietox):
    def make():
        kw = {"groups": "Pig", "re_formula": "~Time"}
        return (
            slf.mixedlm("Weight ~ Time", dietox, **kw).fit(),
            sm_fit(smf.mixedlm("Weight ~ Time", dietox, **kw), method=["lbfgs"]),
        )

    return cached("slopes", make)


def test_results_attributes_match_statsmodels(slopes_pair):
    ours, theirs = slopes_pair
    assert list(ours.params.index) == ["Intercept", "Time", "Pig Var", "Pig x Time Cov", "Time Var"]
    for name in ("k_fe", "k_re", "k_re2", "k_vc", "nobs", "method", "df_resid"):
        assert getattr(ours, name) == getattr(theirs, name), name
    np.testing.assert_allclose(ours.cov_re, theirs.cov_re, rtol=2e-3)
    assert list(ours.cov_re.index) == list(theirs.cov_re.index) == ["Pig", "Time"]
    np.testing.assert_allclose(ours.cov_re_unscaled, theirs.cov_re_unscaled, rtol=2e-3)
    np.testing.assert_allclose(ours.bse_re, theirs.bse_re, rtol=2e-3)
    np.testing.assert_allclose(ours.bse_fe, theirs.bse_fe, rtol=2e-3)
    np.testing.assert_allclose(ours.tvalues, theirs.tvalues, rtol=2e-3)
    np.testing.assert_allclose(ours.pvalues, theirs.pvalues, rtol=2e-2, atol=1e-12)
    np.testing.assert_allclose(ours.conf_int(), theirs.conf_int(), rtol=2e-3, atol=1e-4)
    np.testing.assert_allclose(np.diag(ours.cov_params()), np.diag(theirs.cov_params()), rtol=5e-3)
    np.testing.assert_allclose(ours.cov_params(), theirs.cov_params(), rtol=0.05, atol=1e-5)
    assert ours.vcomp.size == 0 and theirs.vcomp.size == 0
    assert isinstance(ours.fittedvalues, pd.Series)
    np.testing.assert_allclose(ours.fittedvalues, theirs.fittedvalues, atol=1e-3)
    assert set(ours.random_effects) == set(theirs.random_effects)
    assert all(isinstance(k, (int, np.integer)) for k in ours.random_effects)
    np.testing.assert_allclose(ours.random_effects[4601], theirs.random_effects[4601], rtol=1e-3)
    np.testing.assert_allclose(
        ours.random_effects_cov[4601], theirs.random_effects_cov[4601], rtol=1e-3
    )
    assert ours.params_object.k_re == 2
    assert ours.model.group_labels == theirs.model.group_labels
    assert ours.model.exog_names == theirs.model.exog_names
    assert ours.model.n_groups == theirs.model.n_groups


def test_tests_of_linear_hypotheses(slopes_pair):
    ours, theirs = slopes_pair
    R = np.array([[0.0, 1.0], [1.0, -1.0]])
    a, b = ours.t_test(R), theirs.t_test(R)
    np.testing.assert_allclose(a.effect, b.effect, rtol=1e-5)
    np.testing.assert_allclose(a.sd, np.ravel(b.sd), rtol=2e-3)
    np.testing.assert_allclose(a.tvalue, np.ravel(b.tvalue), rtol=2e-3)
    assert "Test for Constraints" in str(a)
    assert ours.t_test("Time = 7").tvalue[0] == pytest.approx(
        theirs.t_test(np.array([[0.0, 1.0]])).tvalue.item() - 7 / b.sd.ravel()[0], rel=2e-3
    )
    for text in ("Time = 7", "Time = 7, Intercept = 15", "2 * Time - Intercept = -1"):
        wa = ours.wald_test(text, scalar=True)
        wb = theirs.wald_test(text, scalar=True)
        assert wa.statistic == pytest.approx(wb.statistic, rel=5e-3)
        assert wa.df_denom == wb.df_denom
    full = np.zeros((1, 5))
    full[0, 1] = 1
    assert ours.wald_test(full, scalar=True).statistic == pytest.approx(
        theirs.wald_test(full, scalar=True).statistic, rel=5e-3
    )


def test_profile_re_matches_statsmodels(slopes_pair):
    ours, theirs = slopes_pair
    v = ours.cov_re.iloc[0, 0]
    a = ours.profile_re(0, "re", num_low=2, dist_low=0.1 * v, num_high=2, dist_high=0.1 * v)
    b = theirs.profile_re(0, "re", num_low=2, dist_low=0.1 * v, num_high=2, dist_high=0.1 * v)
    assert a.shape == b.shape == (5, 2)
    np.testing.assert_allclose(a[:, 0], b[:, 0], rtol=2e-3)
    np.testing.assert_allclose(a[:, 1], b[:, 1], atol=5e-3)
    assert a[2, 1] == pytest.approx(ours.llf, abs=1e-6)
    assert np.all(a[[0, 1, 3, 4], 1] < a[2, 1])
    second = ours.profile_re(1, "re", num_low=1, dist_low=0.01, num_high=1, dist_high=0.01)
    other = theirs.profile_re(1, "re", num_low=1, dist_low=0.01, num_high=1, dist_high=0.01)
    np.testing.assert_allclose(second, other, rtol=2e-3)
    with pytest.raises(ValueError, match="dist_low"):
        ours.profile_re(0, "re", dist_low=10 * v)


def test_profile_re_of_a_variance_component(students):
    kw = {"re_formula": "1", "vc_formula": {"classroom": "0 + C(classroom)"}}
    ours = slf.mixedlm("score ~ hours", students, groups="school", **kw).fit()
    prof = ours.profile_re("classroom", "vc", num_low=1, dist_low=0.5, num_high=1, dist_high=0.5)
    assert prof[1, 0] == pytest.approx(ours.vcomp[0], rel=1e-6)
    assert prof[1, 1] == pytest.approx(ours.llf, abs=1e-6)
    assert prof[0, 1] < prof[1, 1] and prof[2, 1] < prof[1, 1]


# ---- MixedLMParams ------------------------------------------------------------------------------


def test_mixedlm_params_pack_like_statsmodels():
    rng = np.random.default_rng(1)
    A = rng.normal(size=(3, 3))
    cov = A @ A.T + np.eye(3)
    fe, vc = np.array([1.0, -2.0]), np.array([0.5, 2.0])
    ours = sl.MixedLMParams.from_components(fe, cov, vcomp=vc)
    theirs = SmMixedLMParams.from_components(fe, cov, vcomp=vc)
    for use_sqrt in (True, False):
        for has_fe in (True, False):
            a = ours.get_packed(use_sqrt=use_sqrt, has_fe=has_fe)
            np.testing.assert_allclose(a, theirs.get_packed(use_sqrt=use_sqrt, has_fe=has_fe))
            back = sl.MixedLMParams.from_packed(a, 2, 3, use_sqrt, has_fe)
            np.testing.assert_allclose(back.cov_re, cov)
            np.testing.assert_allclose(back.vcomp, vc)
            assert back.k_vc == 2 and back.k_re2 == 6
    sq = sl.MixedLMParams.from_components(cov_re_sqrt=np.linalg.cholesky(cov))
    np.testing.assert_allclose(sq.cov_re, cov)
    cp = ours.copy()
    cp.cov_re[0, 0] = 99
    assert ours.cov_re[0, 0] != 99


def test_start_params_and_do_cg(dietox):
    md = slf.mixedlm("Weight ~ Time", dietox, groups="Pig")
    best = md.fit()
    again = md.fit(start_params=best.params_object)
    assert again.llf == pytest.approx(best.llf, abs=1e-7)
    packed = md.fit(start_params=best.params.to_numpy())
    assert packed.llf == pytest.approx(best.llf, abs=1e-7)
    at_start = md.fit(start_params=best.params_object, do_cg=False)
    assert at_start.llf == pytest.approx(best.llf, abs=1e-6) and not at_start.converged
    assert md.loglike(best.params_object) == pytest.approx(best.llf, abs=1e-8)


def test_fit_arguments(dietox):
    md = slf.mixedlm("Weight ~ Time", dietox, groups="Pig")
    # statsmodels' optimizer settings do not apply to BOBYQA: a FutureWarning names them
    with pytest.warns(FutureWarning, match="method, gtol, maxiter not used by MixedLM.fit"):
        a = md.fit(method="nm", maxiter=5, gtol=1e-3, full_output=True)
    assert a.converged and a.hist is not None
    assert a.llf == pytest.approx(md.fit().llf, abs=1e-9)  # the same fit
    with pytest.warns(FutureWarning, match="niter_sa"):
        md.fit(niter_sa=3)
    # any other keyword: statsmodels' warning (its fit warns and does not use it)
    with pytest.warns(FutureWarning, match="Argument frobnicate not used by MixedLM.fit"):
        md.fit(frobnicate=1)
    with pytest.raises(TypeError, match="penalty object"):
        md.fit(fe_pen=object())
    with pytest.raises(NotImplementedError, match="cov_pen"):
        md.fit(cov_pen=object())


# ---- summaries without statsmodels --------------------------------------------------------------


def test_summary_fallback_has_the_same_text(monkeypatch, dietox, income, penicillin):
    fits = [
        slf.mixedlm("Weight ~ Time", dietox, groups=dietox["Pig"]).fit(),
        slf.mixedlm("Weight ~ Time", dietox, groups="Pig", re_formula="~Time").fit(),
        slf.mixedlm("income ~ years_education * major", income, groups="person").fit(),
        slf.mixedlm("diameter ~ 1 + (1|plate) + (1|sample)", penicillin).fit(reml=False),
    ]
    with_sm = [str(f.summary()) for f in fits]
    monkeypatch.setitem(sys.modules, "statsmodels.iolib", None)
    without = [f.summary() for f in fits]
    assert all(isinstance(s, compat.Summary) for s in without)
    assert [str(s) for s in without] == with_sm
    custom = fits[0].summary(title="T", yname="w", xname_fe=["a", "b"], xname_re=["c"])
    assert "w" in str(custom) and list(custom.tables[1].index) == ["a", "b", "c"]


# ---- data handling ------------------------------------------------------------------------------


def test_get_rdataset_serves_bundled_data_without_network():
    d = slm.datasets.get_rdataset("dietox", "geepack").data
    assert d["Pig"].dtype == np.int64 and d["Evit"].dtype == object
    assert len(d) == 861
    s = slm.datasets.get_rdataset("Sitka", "MASS")
    assert s.package == "MASS" and "tree" in s.data
    with pytest.raises(KeyError, match="not bundled"):
        slm.datasets.get_rdataset("iris")


def test_groups_by_name_names_the_parameters(dietox):
    by_name = slf.mixedlm("Weight ~ Time", dietox, groups="Pig").fit()
    by_array = slf.mixedlm("Weight ~ Time", dietox, groups=dietox["Pig"].to_numpy()).fit()
    assert list(by_name.params.index)[-1] == "Pig Var"
    assert list(by_array.params.index)[-1] == "Group Var"
    assert by_name.llf == pytest.approx(by_array.llf, abs=1e-10)


def test_missing_values_subset_and_errors(dietox):
    with pytest.raises(MissingDataError, match="Feed"):
        slf.mixedlm("Weight ~ Feed", dietox, groups="Pig")
    with pytest.warns(UserWarning, match="dropped"):
        md = slf.mixedlm("Weight ~ Feed", dietox, groups="Pig", missing="drop")
    assert md.nobs == int(dietox["Feed"].notna().sum())
    sub = slf.mixedlm("Weight ~ Time", dietox, groups="Pig", subset=dietox["Time"] <= 6)
    assert sub.nobs == int((dietox["Time"] <= 6).sum())
    with pytest.raises(UnknownColumnError, match="Tme"):
        slf.mixedlm("Weight ~ Tme", dietox, groups="Pig")
    with pytest.raises(ValueError, match="groups"):
        slf.mixedlm("Weight ~ Time", dietox)


def test_lme4_extras_on_compat_results(slopes_pair, dietox):
    ours, _ = slopes_pair
    assert ours.theta.shape == (3,)
    assert "Linear mixed model fit by REML" in ours.summary_lme4()
    assert set(ours.ranef()) == {"Pig"}
    assert ours.varcorr.iloc[-1]["grp"] == "Residual"
    ri = slf.mixedlm("Weight ~ Time", dietox, groups="Pig").fit(reml=False)
    assert ri.AIC == pytest.approx(-2 * ri.llf + 2 * 4)  # lme4: β, θ, σ


def test_lme4_style_refit_through_results_model(dietox):
    reml = slf.mixedlm("Weight ~ Time", dietox, groups="Pig", re_formula="~Time").fit()
    ml = reml.model.fit(REML=False, start=reml.theta)  # as lme4-style helpers refit
    direct = reml.model.fit(reml=False)
    assert isinstance(ml, compat.MixedLMCompatResults) and ml.method == "ML"
    assert ml.llf == pytest.approx(direct.llf, abs=1e-6)
    assert reml.model.objective(reml.theta, True) == pytest.approx(-2 * reml.llf)


def test_large_groups_fall_back_to_lme4_standard_errors(monkeypatch, penicillin):
    monkeypatch.setattr(compat.algebra, "_MAX_BLOCK_ENTRIES", 10)
    res = slf.mixedlm("diameter ~ 1 + (1|plate) + (1|sample)", penicillin).fit()
    with pytest.warns(UserWarning, match="not computed"):
        bse = res.bse
    assert np.isnan(bse.iloc[1:]).all()
    assert bse.iloc[0] == pytest.approx(np.sqrt(res.cov_fe[0, 0]))


def test_docs_examples_run(capsys):
    text = (Path(__file__).resolve().parents[2] / "docs" / "statsmodels.md").read_text()
    blocks = [b.split("```", 1)[0] for b in text.split("```python\n")[1:]]
    assert len(blocks) >= 2
    namespace: dict = {}  # the blocks of a page run in order in one namespace (test_docs)
    for code in blocks:
        exec(compile(code, "docs/statsmodels.md", "exec"), namespace)
    assert "Mixed Linear Model Regression Results" in capsys.readouterr().out


def test_re_formula_and_vc_formula_caret_is_a_power_never_xor():
    frame = sl.datasets.load("sleepstudy")
    cases = [
        ({"re_formula": "~I(Days^2)"}, {"re_formula": "~I(Days**2)"}),
        ({"vc_formula": {"q": "0 + I(Days^2)"}}, {"vc_formula": {"q": "0 + I(Days**2)"}}),
    ]
    for caret_kw, power_kw in cases:
        caret = sl.mixedlm("Reaction ~ Days", frame, groups="Subject", **caret_kw).fit()
        power = sl.mixedlm("Reaction ~ Days", frame, groups="Subject", **power_kw).fit()
        assert caret.llf == power.llf
