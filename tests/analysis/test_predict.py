"""predict() with random effects and simulate(), against frozen lme4 predictions."""

from __future__ import annotations

import json
import warnings
from functools import cache

import numpy as np
import pandas as pd
import pytest
from references import REFERENCE  # noqa: E402

import sparselme as sl
from sparselme.errors import DataError, FormulaError, UnknownColumnError

REF = REFERENCE
PUBLIC = json.loads((REF / "lme4" / "inference_public.json").read_text())["predict_sleepstudy"]
LMERTEST = json.loads((REF / "lmertest" / "inference.json").read_text())


@cache
def fit(formula: str, name: str, reml: bool = True):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sl.errors.SingularFitWarning)
        return sl.lmer(formula, sl.datasets.load(name), REML=reml)


def sleepstudy():
    return fit("Reaction ~ Days + (Days | Subject)", "sleepstudy")


# ---- against lme4 -------------------------------------------------------------------------


def test_sleepstudy_public_predictions():
    res = sleepstudy()
    new = pd.DataFrame(PUBLIC["newdata"])
    assert "999" not in set(sl.datasets.load("sleepstudy")["Subject"])
    cond = res.predict(new, allow_new_levels=True)
    assert isinstance(cond, pd.Series) and list(cond.index) == list(new.index)
    np.testing.assert_allclose(cond, PUBLIC["conditional"], rtol=1e-6)
    pop = res.predict(new, re_form="~0")
    np.testing.assert_allclose(pop, PUBLIC["population"], rtol=1e-6)
    # the unseen Subject gets the population prediction
    assert cond.iloc[2] == pytest.approx(pop.iloc[2], rel=1e-12)
    for re_form in ["~ 0", "NA", np.nan]:
        np.testing.assert_allclose(res.predict(new, re_form=re_form), pop)


@pytest.mark.parametrize("case", ["predict_penicillin", "predict_dietox", "predict_cake"])
def test_predictions_match_lme4(case):
    ref = LMERTEST[case]
    res = fit(ref["formula"], ref["data"])
    new = pd.DataFrame(ref["newdata"])
    np.testing.assert_allclose(
        res.predict(new, allow_new_levels=True), ref["conditional"], rtol=1e-6
    )
    np.testing.assert_allclose(res.predict(new, re_form="~0"), ref["population"], rtol=1e-6)
    if "plate_only" in ref:
        got = res.predict(new, re_form="~(1 | plate)", allow_new_levels=True)
        np.testing.assert_allclose(got, ref["plate_only"], rtol=1e-6)


# ---- semantics ----------------------------------------------------------------------------


def test_without_newdata_predictions_are_the_fitted_values():
    res = sleepstudy()
    np.testing.assert_allclose(res.predict(), res.fittedvalues, rtol=1e-12)
    np.testing.assert_allclose(res.predict(re_form="~0"), res.design.X @ res.solution.beta)


def test_new_levels_need_allow_new_levels():
    res = sleepstudy()
    new = pd.DataFrame({"Days": [1, 2], "Subject": ["308", "999"]})
    with pytest.raises(DataError, match=r"'999'.*'Subject'.*allow_new_levels"):
        res.predict(new)
    # population-level predictions do not look at the grouping factor at all
    res.predict(new.drop(columns="Subject"), re_form="~0")


def test_missing_columns_are_named():
    res = sleepstudy()
    with pytest.raises(UnknownColumnError, match="'Days' not found in newdata"):
        res.predict(pd.DataFrame({"Day": [1], "Subject": ["308"]}))
    with pytest.raises(KeyError, match="Subject"):
        res.predict(pd.DataFrame({"Days": [1]}))


def test_new_level_of_a_fixed_effect_factor_is_an_error():
    ref = LMERTEST["predict_dietox"]
    res = fit(ref["formula"], ref["data"])
    new = pd.DataFrame(ref["newdata"]).assign(Cu=["Cu999", "Cu000", "Cu035", "Cu175"])
    with pytest.raises(DataError, match="'Cu'.*'Cu999'"):
        res.predict(new, allow_new_levels=True)


def test_missing_values_give_nan_predictions():
    res = sleepstudy()
    new = pd.DataFrame({"Days": [1.0, np.nan], "Subject": ["308", "308"]})
    pred = res.predict(new)
    assert np.isfinite(pred.iloc[0]) and np.isnan(pred.iloc[1])


def test_re_form_must_name_terms_of_the_model():
    res = fit("diameter ~ 1 + (1 | plate) + (1 | sample)", "Penicillin")
    with pytest.raises(ValueError, match="not a term of the model"):
        res.predict(re_form="~(1 | batch)")
    both = res.predict(re_form="~(1 | plate) + (1 | sample)")
    np.testing.assert_allclose(both, res.predict())


def test_categorical_newdata_in_any_dtype():
    res = fit("angle ~ recipe * temperature + (1 | recipe:replicate)", "cake")
    ref = LMERTEST["predict_cake"]
    new = pd.DataFrame(ref["newdata"])
    as_cat = new.assign(recipe=pd.Categorical(new["recipe"]), temperature=new["temperature"])
    np.testing.assert_allclose(
        res.predict(as_cat, allow_new_levels=True), ref["conditional"], rtol=1e-6
    )


def test_offset_is_required_for_new_data():
    frame = sl.datasets.load("sleepstudy").assign(off=lambda d: 0.1 * d["Days"])
    res = sl.lmer("Reaction ~ Days + (1 | Subject)", frame, offset="off")
    np.testing.assert_allclose(res.predict(), res.fittedvalues)
    new = frame.head(3)
    with pytest.raises(ValueError, match="offset"):
        res.predict(new)
    np.testing.assert_allclose(res.predict(new, offset="off"), res.fittedvalues[:3])


def test_statsmodels_api_keeps_predict_exog():
    frame = sl.datasets.load("sleepstudy")
    mdf = sl.mixedlm("Reaction ~ Days", frame, groups="Subject").fit()
    X = np.column_stack([np.ones(3), [0.0, 1.0, 2.0]])
    np.testing.assert_allclose(mdf.predict(X), X @ mdf.fe_params.to_numpy())
    lme = fit("Reaction ~ Days + (1 | Subject)", "sleepstudy")
    assert not np.allclose(lme.predict(frame.head(3)), lme.predict(frame.head(3), re_form="~0"))


# ---- simulate -----------------------------------------------------------------------------


def test_simulate_layout_and_seed():
    res = sleepstudy()
    sims = res.simulate(nsim=3, seed=1)
    assert list(sims.columns) == ["sim_1", "sim_2", "sim_3"] and len(sims) == res.nobs
    pd.testing.assert_frame_equal(sims, res.simulate(nsim=3, seed=1))
    assert not np.allclose(sims, res.simulate(nsim=3, seed=2))
    with pytest.raises(ValueError, match="nsim"):
        res.simulate(0)


def test_simulate_moments():
    """Unconditional draws: mean Xβ, covariance σ²(ZΛΛᵀZᵀ + I) (here per row)."""
    res = sleepstudy()
    sims = res.simulate(nsim=4000, seed=3).to_numpy()
    np.testing.assert_allclose(sims.mean(axis=1), res.predict(re_form="~0"), atol=3.0)
    cov = res.term_covariances()[0]
    days = res.design.X[:, 1]
    var = cov[0, 0] + 2 * days * cov[0, 1] + days**2 * cov[1, 1] + res.scale
    np.testing.assert_allclose(sims.var(axis=1), var, rtol=0.12)


def test_simulate_with_use_u_is_centred_on_the_fitted_values():
    res = sleepstudy()
    sims = res.simulate(nsim=4000, seed=4, use_u=True).to_numpy()
    np.testing.assert_allclose(sims.mean(axis=1), res.fittedvalues, atol=1.5)
    np.testing.assert_allclose(sims.var(axis=1), res.scale, rtol=0.12)


# ---- re_form keeps the named columns of a term (lme4's re.form) ----------------------------

PREDICT = json.loads((REF / "lme4_predict" / "reference.json").read_text())


@pytest.mark.parametrize("case", sorted(PREDICT["re_form"]))
def test_re_form_subsets_match_lme4(case):
    ref = PREDICT["re_form"][case]
    res = fit(ref["formula"], ref["data"])
    for re_form, expected in ref["predictions"].items():
        got = res.predict(re_form=re_form).to_numpy()[: len(expected)]
        np.testing.assert_allclose(got, expected, rtol=1e-6, err_msg=re_form)
        new = sl.datasets.load(ref["data"]).head(len(expected))
        np.testing.assert_allclose(res.predict(new, re_form=re_form), expected, rtol=1e-6)


def test_re_form_partial_term_keeps_only_those_columns():
    res = sleepstudy()
    b = res.ranef(condvar=False)["Subject"]
    days = res.design.X[:, 1]
    codes = res.design.rows[0].codes
    fixed = res.predict(re_form="~0").to_numpy()
    intercepts = res.predict(re_form="~(1 | Subject)").to_numpy()
    slopes = res.predict(re_form="~(0 + Days | Subject)").to_numpy()
    np.testing.assert_allclose(intercepts, fixed + b["(Intercept)"].to_numpy()[codes])
    np.testing.assert_allclose(slopes, fixed + days * b["Days"].to_numpy()[codes])
    both = res.predict(re_form="~(0 + Days | Subject) + (1 | Subject)")
    np.testing.assert_allclose(both, res.predict(), rtol=1e-12)


def test_re_form_with_columns_not_in_the_model_is_an_error():
    res = fit("Reaction ~ Days + (1 | Subject)", "sleepstudy")
    with pytest.raises(FormulaError, match=r"column\(s\) Days.*\(Intercept\)"):
        res.predict(re_form="~(0 + Days | Subject)")
    with pytest.raises(FormulaError, match="Foo"):
        sleepstudy().predict(re_form="~(Foo | Subject)")
    with pytest.raises(FormulaError, match="'Foo' is not one of its grouping factors"):
        sleepstudy().predict(re_form="~(1 | Foo)")


# ---- transformed terms on new data, coded by the stored formulaic specs --------------------


@pytest.mark.parametrize("case", sorted(PREDICT["newdata"]["cases"]))
def test_transformed_terms_predict_like_lme4(case):
    ref = PREDICT["newdata"]["cases"][case]
    res = fit(ref["formula"], ref["data"])
    new = pd.DataFrame(PREDICT["newdata"]["newdata"])
    # optimizer tolerance: two optima of a random-slope model agree to ~1e-6
    np.testing.assert_allclose(res.predict(new), ref["conditional"], rtol=5e-6)
    np.testing.assert_allclose(res.predict(new, re_form="~0"), ref["population"], rtol=5e-6)
    if case not in ("poly", "bs"):  # the same X as R's: the same REML criterion
        assert res.llf == pytest.approx(ref["logLik"], abs=1e-5)
    # the fitted rows coded again as new data give the fitted values
    frame = sl.datasets.load(ref["data"])
    np.testing.assert_allclose(res.predict(frame), res.fittedvalues, rtol=1e-10)


def test_stateful_transforms_keep_the_training_state():
    """center/scale on two new rows use the training mean and SD, not the rows' own."""
    res = fit("Reaction ~ scale(Days) + (center(Days) | Subject)", "sleepstudy")
    frame = sl.datasets.load("sleepstudy")
    new = frame.iloc[[3, 40]]
    np.testing.assert_allclose(res.predict(new), res.fittedvalues[[3, 40]], rtol=1e-10)
    np.testing.assert_allclose(
        res.predict(new, re_form="~0"), res.predict(re_form="~0").iloc[[3, 40]], rtol=1e-10
    )


def test_statsmodels_api_predict_codes_transforms_like_training():
    frame = sl.datasets.load("sleepstudy")
    mdf = sl.mixedlm("Reaction ~ I(Days**2) + np.log(Days + 1)", frame, groups="Subject").fit()
    new = frame.iloc[[5, 17, 90]]
    expected = mdf.predict()[[5, 17, 90]]
    np.testing.assert_allclose(mdf.predict(new), expected, rtol=1e-10)


# ---- simulate with re_form and newdata ---------------------------------------------------------


def test_simulate_re_form_conditions_on_whole_terms():
    res = fit("diameter ~ 1 + (1 | plate) + (1 | sample)", "Penicillin")
    sims = res.simulate(nsim=4000, seed=5, re_form="~(1 | plate)").to_numpy()
    np.testing.assert_allclose(sims.mean(axis=1), res.predict(re_form="~(1 | plate)"), atol=0.15)
    # the sample effects and the residual are drawn: Var = σ²_sample + σ²
    var = res.term_covariances()[1][0, 0] + res.scale
    np.testing.assert_allclose(sims.var(axis=1), var, rtol=0.12)
    conditioned = res.simulate(2, seed=1, re_form=None)
    pd.testing.assert_frame_equal(conditioned, res.simulate(2, seed=1, use_u=True))


def test_simulate_re_form_partial_term_draws_the_rest_given_the_kept_columns():
    """Kept intercepts at their modes; slopes drawn from their distribution given them."""
    res = sleepstudy()
    sims = res.simulate(nsim=6000, seed=6, re_form="~(1 | Subject)").to_numpy()
    cov = res.term_covariances()[0]
    b = res.ranef(condvar=False)["Subject"].to_numpy()[res.design.rows[0].codes]
    slope_mean = cov[1, 0] / cov[0, 0] * b[:, 0]
    slope_var = cov[1, 1] - cov[1, 0] ** 2 / cov[0, 0]
    days = res.design.X[:, 1]
    mean = res.predict(re_form="~(1 | Subject)").to_numpy() + days * slope_mean
    np.testing.assert_allclose(sims.mean(axis=1), mean, atol=1.5)
    np.testing.assert_allclose(sims.var(axis=1), days**2 * slope_var + res.scale, rtol=0.12)
    # rows of one subject share its drawn slope: their differences have no random intercept
    d = sims[9] - sims[0]  # subject 308, day 9 minus day 0
    assert d.var() == pytest.approx(81 * slope_var + 2 * res.scale, rel=0.12)


def test_simulate_newdata_is_coded_like_the_training_data():
    res = fit("Reaction ~ Days + I(Days**2) + (1 | Subject)", "sleepstudy")
    new = pd.DataFrame({"Days": [0.0, 9.0, 9.0], "Subject": ["308", "308", "999"]})
    # conditioned on the modes; the new level has none: population level (as lme4)
    sims = res.simulate(nsim=4000, seed=7, newdata=new, re_form=None, allow_new_levels=True)
    np.testing.assert_allclose(sims.mean(axis=1), res.predict(new, allow_new_levels=True), atol=1.5)
    np.testing.assert_allclose(sims.var(axis=1), res.scale, rtol=0.12)
    # drawn anew: every row gets σ²_Subject, rows of one subject share their draw
    sims = res.simulate(nsim=4000, seed=8, newdata=new, allow_new_levels=True).to_numpy()
    np.testing.assert_allclose(sims.mean(axis=1), res.predict(new, re_form="~0"), atol=2.0)
    var = res.scale + res.term_covariances()[0][0, 0]
    np.testing.assert_allclose(sims.var(axis=1), var, rtol=0.12)
    assert np.var(sims[1] - sims[0]) == pytest.approx(2 * res.scale, rel=0.12)
    with pytest.raises(DataError, match="'999'"):
        res.simulate(newdata=new)


def test_statsmodels_api_predict_rejects_a_new_factor_level():
    """It used to code an unseen level as the reference level, without a word."""
    d = sl.datasets.load("dietox")
    mdf = sl.mixedlm("Weight ~ Time + Cu", d, groups="Pig").fit()
    new = d.head(3).assign(Cu=["Cu999", "Cu000", "Cu035"])
    with pytest.raises(DataError, match="'Cu999'"):
        mdf.predict(new)
    as_text = d.head(3).astype({"Cu": str})  # known levels in any dtype
    np.testing.assert_allclose(mdf.predict(as_text), mdf.predict(d.head(3)))
