"""Group-level predictions of the statsmodels API: ``results.predict(new, groups=...)``.

statsmodels has no group-level prediction for new rows, so the references are
``sl.lmer(...).predict(newdata)`` on the same model (the same estimates up to the
optimizer's tolerance) and a hand computation Xβ + z_new·b_g from ``random_effects``
(exact).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from seed_data import students_data

import sparselme as sl
import sparselme.formula.api as slf
from sparselme.errors import DataError, NewLevelsWarning

FIT_RTOL = 1e-6  # the statsmodels-API and lme4-API fits of one model agree to this


@pytest.fixture(scope="module")
def sleep() -> pd.DataFrame:
    return sl.datasets.load("sleepstudy")


@pytest.fixture(scope="module")
def slopes(sleep):
    return slf.mixedlm("Reaction ~ Days", sleep, groups="Subject", re_formula="~Days").fit()


@pytest.fixture(scope="module")
def students() -> pd.DataFrame:
    return students_data()


@pytest.fixture(scope="module")
def school_fits(students):
    """(statsmodels API, lme4 API): school slopes and a classroom variance component."""
    compat = slf.mixedlm(
        "score ~ hours",
        students,
        groups="school",
        re_formula="~hours",
        vc_formula={"classroom": "0 + C(classroom)"},
    ).fit()
    lme4 = sl.lmer("score ~ hours + (hours | school) + (1 | school:classroom)", students)
    assert compat.llf == pytest.approx(lme4.llf, abs=1e-6)
    return compat, lme4


NEW_SLEEP = pd.DataFrame(
    {"Days": [0, 1, 2, 5, 9], "Subject": ["308", "308", "309", "330", "372"]},
    index=[10, 11, 12, 13, 14],
)
NEW_STUDENTS = pd.DataFrame(
    {
        "school": ["S00", "S03", "S07", "S19", "S19"],
        "classroom": [1, 4, 2, 3, 1],
        "hours": [0.0, 2.5, 7.0, 10.0, 4.0],
    }
)


def by_hand_sleep(res, new: pd.DataFrame) -> np.ndarray:
    fe = res.fe_params
    out = []
    for day, subject in zip(new["Days"], new["Subject"]):
        b = res.random_effects[subject]
        out.append(fe["Intercept"] + fe["Days"] * day + b["Subject"] + b["Days"] * day)
    return np.array(out)


def by_hand_students(res, new: pd.DataFrame) -> np.ndarray:
    fe = res.fe_params
    out = []
    for school, room, hours in zip(new["school"], new["classroom"], new["hours"]):
        b = res.random_effects[school]
        vc = b.get(f"classroom[C(classroom)[{room}]]", 0.0)
        out.append(fe["Intercept"] + fe["hours"] * hours + b["school"] + b["hours"] * hours + vc)
    return np.array(out)


# ---- population level (statsmodels) and known groups --------------------------------------------


def test_without_groups_the_prediction_is_population_level(slopes):
    pop = slopes.predict(NEW_SLEEP.iloc[:3].assign(Days=[0, 1, 2]))
    np.testing.assert_allclose(pop, [251.41, 261.87, 272.34], atol=0.01)
    fe = slopes.fe_params
    np.testing.assert_allclose(
        slopes.predict(NEW_SLEEP), fe["Intercept"] + fe["Days"] * NEW_SLEEP["Days"], rtol=1e-12
    )


def test_known_groups_add_their_random_intercepts_and_slopes(slopes, sleep):
    got = slopes.predict(NEW_SLEEP, groups="Subject")
    assert isinstance(got, pd.Series) and list(got.index) == list(NEW_SLEEP.index)
    np.testing.assert_allclose(got, by_hand_sleep(slopes, NEW_SLEEP), rtol=1e-12)
    assert not np.allclose(got, slopes.predict(NEW_SLEEP), atol=1.0)
    lme4 = sl.lmer("Reaction ~ Days + (Days | Subject)", sleep)
    np.testing.assert_allclose(got, lme4.predict(NEW_SLEEP), rtol=FIT_RTOL)


def test_fitted_rows_reproduce_fittedvalues(slopes, sleep):
    got = slopes.predict(sleep, groups=sleep["Subject"])
    np.testing.assert_allclose(got, slopes.fittedvalues, rtol=1e-12)


def test_groups_as_column_series_array_or_list(slopes):
    ref = slopes.predict(NEW_SLEEP, groups="Subject")
    for groups in (
        NEW_SLEEP["Subject"],
        NEW_SLEEP["Subject"].to_numpy(),
        list(NEW_SLEEP["Subject"]),
        pd.Categorical(NEW_SLEEP["Subject"]),
    ):
        np.testing.assert_array_equal(slopes.predict(NEW_SLEEP, groups=groups), ref)
    as_dict = slopes.predict(NEW_SLEEP.to_dict("list"), groups="Subject")
    np.testing.assert_array_equal(as_dict, ref.to_numpy())


def test_random_slopes_and_variance_components_agree_with_lmer(school_fits):
    compat, lme4 = school_fits
    got = compat.predict(NEW_STUDENTS, groups="school")
    np.testing.assert_allclose(got, by_hand_students(compat, NEW_STUDENTS), rtol=1e-12)
    np.testing.assert_allclose(got, lme4.predict(NEW_STUDENTS), rtol=FIT_RTOL)
    without_vc = compat.predict(NEW_STUDENTS, groups="school", exog_vc={"classroom": np.zeros(5)})
    assert np.abs(got - without_vc).min() > 1e-3  # the classroom modes were added


def test_vc_formula_with_an_intercept_is_coded_within_each_group():
    pastes = sl.datasets.load("Pastes")
    res = slf.mixedlm("strength ~ 1", pastes, groups="batch", vc_formula={"cask": "1 + C(cask)"})
    res = res.fit()
    new = pd.DataFrame({"batch": ["A", "A", "C"], "cask": ["a", "b", "c"]})
    b = res.random_effects
    hand = res.fe_params["Intercept"] + np.array(
        [
            b["A"]["cask[Intercept]"],
            b["A"]["cask[Intercept]"] + b["A"]["cask[C(cask)[T.b]]"],
            b["C"]["cask[Intercept]"] + b["C"]["cask[C(cask)[T.c]]"],
        ]
    )
    np.testing.assert_allclose(res.predict(new, groups="batch"), hand, rtol=1e-12)


# ---- unseen groups and levels -------------------------------------------------------------------


def test_unseen_groups_get_the_population_value_with_a_warning(slopes, sleep):
    new = NEW_SLEEP.assign(Subject=["308", "999", "309", "998", "372"])
    pop = slopes.predict(new)
    with pytest.warns(NewLevelsWarning, match="'999', '998' not in the fitted data"):
        got = slopes.predict(new, groups="Subject")
    np.testing.assert_allclose(got.iloc[[1, 3]], pop.iloc[[1, 3]], rtol=1e-12)
    np.testing.assert_allclose(got.iloc[[0, 2, 4]], by_hand_sleep(slopes, new.iloc[[0, 2, 4]]))
    lme4 = sl.lmer("Reaction ~ Days + (Days | Subject)", sleep)
    np.testing.assert_allclose(got, lme4.predict(new, allow_new_levels=True), rtol=FIT_RTOL)
    with warnings.catch_warnings():
        warnings.simplefilter("error", NewLevelsWarning)
        np.testing.assert_array_equal(
            slopes.predict(new, groups="Subject", allow_new_levels=True), got
        )
    with pytest.raises(DataError, match="'999', '998' not in the fitted data"):
        slopes.predict(new, groups="Subject", allow_new_levels=False)


def test_unseen_levels_of_a_variance_component(school_fits):
    compat, lme4 = school_fits
    new = pd.DataFrame({"school": ["S01", "S01"], "classroom": [2, 9], "hours": [3.0, 3.0]})
    with pytest.warns(NewLevelsWarning, match="classroom"):
        got = compat.predict(new, groups="school")
    b = compat.random_effects["S01"]
    fe = compat.fe_params
    school_only = fe["Intercept"] + 3 * fe["hours"] + b["school"] + 3 * b["hours"]
    assert got[1] == pytest.approx(school_only, rel=1e-12)
    assert got[0] == pytest.approx(school_only + b["classroom[C(classroom)[2]]"], rel=1e-12)
    np.testing.assert_allclose(got, lme4.predict(new, allow_new_levels=True), rtol=FIT_RTOL)
    with pytest.raises(DataError, match="classroom"):
        compat.predict(new, groups="school", allow_new_levels=False)


def test_group_labels_of_another_type_are_not_guessed(slopes):
    new = NEW_SLEEP.assign(Subject=[308, 308, 309, 330, 372])
    with pytest.raises(DataError, match="only as text"):
        slopes.predict(new, groups="Subject")


def test_missing_values_give_nan(school_fits):
    compat, _ = school_fits
    new = NEW_STUDENTS.astype({"classroom": float})
    new.loc[1, "hours"] = np.nan
    new.loc[2, "classroom"] = np.nan
    got = compat.predict(new, groups="school")
    assert np.isnan(got[[1, 2]]).all() and np.isfinite(got[[0, 3, 4]]).all()


# ---- models built from arrays -------------------------------------------------------------------


def _array_model(students: pd.DataFrame):
    """MixedLM(endog, exog, groups, exog_re, exog_vc) of the school_fits model."""
    X = np.column_stack([np.ones(len(students)), students["hours"]])
    labels = sorted(students["school"].unique())
    rooms = [f"c{k}" for k in range(1, 5)]
    mats = []
    for s in labels:
        rows = students[students["school"] == s]
        mats.append((rows["classroom"].to_numpy()[:, None] == np.arange(1, 5)).astype(float))
    vc = sl.api.VCSpec(["classroom"], [[rooms] * len(labels)], [mats])
    return sl.MixedLM(students["score"].to_numpy(), X, students["school"].to_numpy(), X, vc)


def test_array_built_model_with_ndarray_and_pandas_inputs(students, school_fits):
    compat, lme4 = school_fits
    res = _array_model(students).fit()
    assert res.llf == pytest.approx(compat.llf, abs=1e-6)
    new = NEW_STUDENTS
    X = np.column_stack([np.ones(len(new)), new["hours"]])
    rooms = (new["classroom"].to_numpy()[:, None] == np.arange(1, 5)).astype(float)
    groups = new["school"].to_numpy()
    got = res.predict(X, groups=groups, exog_re=X, exog_vc={"classroom": rooms})
    assert isinstance(got, np.ndarray)
    np.testing.assert_allclose(got, lme4.predict(new), rtol=FIT_RTOL)
    fe, b = res.fe_params, res.random_effects  # ndarray: the model was given arrays
    hand = [
        x @ fe + x @ b[s].iloc[:2].to_numpy() + b[s][f"classroom[c{r}]"]
        for x, s, r in zip(X, groups, new["classroom"])
    ]
    np.testing.assert_allclose(got, hand, rtol=1e-12)
    frame = pd.DataFrame(X, columns=["const", "x1"], index=new.index + 100)
    as_pandas = res.predict(
        frame,
        groups=pd.Series(groups, index=frame.index),
        exog_re=pd.DataFrame(X, columns=["x_re1", "x_re2"], index=frame.index),
        exog_vc={"classroom": pd.DataFrame(rooms, columns=[f"c{k}" for k in range(1, 5)])},
    )
    assert list(as_pandas.index) == list(frame.index)
    np.testing.assert_allclose(as_pandas, got, rtol=1e-12)


def test_array_built_model_needs_the_designs_of_the_new_rows(students):
    res = _array_model(students).fit()
    X = np.ones((2, 2))
    with pytest.raises(DataError, match="pass exog_re="):
        res.predict(X, groups=["S00", "S01"], exog_vc={"classroom": np.eye(2)})
    with pytest.raises(DataError, match="pass exog_vc="):
        res.predict(X, groups=["S00", "S01"], exog_re=X)
    with pytest.raises(DataError, match="columns"):
        res.predict(X, groups=["S00", "S01"], exog_re=pd.DataFrame(X, columns=["a", "b"]))


def test_random_intercept_of_an_array_model_needs_no_exog_re(students):
    X = np.column_stack([np.ones(len(students)), students["hours"]])
    res = sl.MixedLM(students["score"], X, students["school"]).fit()
    got = res.predict(X[:3], groups=students["school"].to_numpy()[:3])
    np.testing.assert_allclose(got, np.asarray(res.fittedvalues)[:3], rtol=1e-12)


# ---- exog_re is a design, never group labels ----------------------------------------------------


def test_group_id_column_as_exog_re_shows_the_right_call(students):
    res = slf.mixedlm("score ~ hours", students, groups=students["school"]).fit()
    new = NEW_STUDENTS
    right_call = 'groups=new_data["school"]'
    with pytest.raises(DataError, match="exog_re needs groups=") as err:
        res.predict(new, exog_re=new[["school"]])
    assert right_call in str(err.value)
    with pytest.raises(DataError) as err:
        res.predict(new, groups="school", exog_re=new[["school"]])
    assert right_call in str(err.value)
    codes = pd.factorize(new["school"])[0] + 1  # numeric ids, as an unnamed array
    with pytest.raises(DataError, match="random intercept") as err:
        res.predict(new, groups="school", exog_re=codes)
    assert right_call in str(err.value)
    with pytest.raises(DataError) as err:
        res.predict(new, groups="school", exog_re=pd.Series(codes, name="school_id"))
    assert 'groups=new_data["school_id"]' in str(err.value)


def test_exog_re_is_used_when_it_is_a_design(slopes):
    z = NEW_SLEEP[["Days"]].assign(one=1.0)[["one", "Days"]].to_numpy()
    doubled = slopes.predict(NEW_SLEEP, groups="Subject", exog_re=z * [1.0, 2.0])
    base = slopes.predict(NEW_SLEEP, groups="Subject")
    slope_modes = np.array([slopes.random_effects[s]["Days"] for s in NEW_SLEEP["Subject"]])
    np.testing.assert_allclose(doubled - base, slope_modes * NEW_SLEEP["Days"], atol=1e-9)
    named = pd.DataFrame(z[:, ::-1], columns=["Days", "Subject Intercept"])
    with pytest.raises(DataError, match="columns"):
        slopes.predict(NEW_SLEEP, groups="Subject", exog_re=named)
    reordered = pd.DataFrame(z[:, ::-1], columns=["Days", "(Intercept)"], index=NEW_SLEEP.index)
    np.testing.assert_allclose(
        slopes.predict(NEW_SLEEP, groups="Subject", exog_re=reordered), base, rtol=1e-12
    )


def test_designs_of_new_rows_need_exog(slopes):
    with pytest.raises(ValueError, match="fittedvalues"):
        slopes.predict(groups=NEW_SLEEP["Subject"])


# ---- lme4 bar terms through mixedlm -------------------------------------------------------------


def test_crossed_bar_terms_agree_with_lmer():
    pen = sl.datasets.load("Penicillin")
    bars = slf.mixedlm("diameter ~ 1 + (1 | plate) + (1 | sample)", pen).fit()
    vc = {"plate": "0 + C(plate)", "sample": "0 + C(sample)"}
    idiom = slf.mixedlm("diameter ~ 1", pen, groups=np.ones(len(pen)), vc_formula=vc).fit()
    lme4 = sl.lmer("diameter ~ 1 + (1 | plate) + (1 | sample)", pen)
    new = pd.DataFrame({"plate": ["a", "b", "x", "zz"], "sample": ["A", "F", "B", "C"]})
    expected = lme4.predict(new, allow_new_levels=True)
    with pytest.warns(NewLevelsWarning, match="'zz'"):
        got = bars.predict(new, groups=np.ones(len(new)))
    np.testing.assert_allclose(got, expected, rtol=FIT_RTOL)
    with pytest.warns(NewLevelsWarning, match="plate"):
        np.testing.assert_allclose(
            idiom.predict(new, groups=np.ones(len(new))), expected, rtol=FIT_RTOL
        )
    with pytest.raises(DataError, match="'zz'"):
        bars.predict(new, groups=np.ones(len(new)), allow_new_levels=False)


def test_groups_with_a_crossed_bar_term_agree_with_lmer(students):
    compat = slf.mixedlm("score ~ hours + (1 | classroom)", students, groups="school").fit()
    lme4 = sl.lmer("score ~ hours + (1 | school) + (1 | classroom)", students)
    got = compat.predict(NEW_STUDENTS, groups="school")
    np.testing.assert_allclose(got, lme4.predict(NEW_STUDENTS), rtol=FIT_RTOL)
    fe, b = compat.fe_params, compat.ranef(condvar=False)["classroom"]["(Intercept)"]
    hand = [
        fe["Intercept"] + fe["hours"] * h + compat.random_effects[s]["school"] + b[str(c)]
        for s, c, h in zip(NEW_STUDENTS["school"], NEW_STUDENTS["classroom"], NEW_STUDENTS["hours"])
    ]
    np.testing.assert_allclose(got, hand, rtol=1e-12)


@pytest.mark.filterwarnings("ignore::sparselme.errors.SingularFitWarning")
def test_fit_with_a_residual_structure_predicts_from_its_own_modes(sleep):
    res = slf.mixedlm(
        "Reaction ~ Days",
        sleep,
        groups="Subject",
        re_formula="~Days",
        residual=sl.AR1("Days", "Subject"),
    ).fit()
    np.testing.assert_allclose(
        res.predict(NEW_SLEEP, groups="Subject"), by_hand_sleep(res, NEW_SLEEP), rtol=1e-12
    )
