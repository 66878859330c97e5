"""Through each API a streamed fit returns the in-memory results type, with the same values.

Parametrized over the three kinds of input (DataFrame, Parquet folder, Dask DataFrame on
dask's local scheduler): ``sl.mixedlm(...).fit()`` gives `MixedLMCompatResults` (params,
bse, cov_re, random_effects, random_effects_cov, statsmodels' summary...), ``sl.lmer``
gives `MixedLMResults`; what needs the rows raises `NeedsRowsError` for streamed data.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import sparselme as sl
from sparselme import errors
from sparselme.results import MixedLMResults
from sparselme.statsmodels_compat import MixedLMCompatResults

pytest.importorskip("pyarrow")
dd = pytest.importorskip("dask.dataframe")
dask = pytest.importorskip("dask")

KINDS = ["frame", "parquet", "dask"]
TIGHT = {"ftol_abs": 1e-14, "xtol_abs": 1e-12}


@pytest.fixture(scope="module")
def sleep() -> pd.DataFrame:
    df = sl.datasets.load("sleepstudy").copy()
    rng = np.random.default_rng(0)
    df["shift"] = rng.choice(["day", "night"], len(df))  # a factor within subjects
    return df


@pytest.fixture(scope="module")
def inputs(sleep, tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("sleep")
    for i, part in enumerate(np.array_split(np.arange(len(sleep)), 3)):
        sleep.iloc[part].to_parquet(folder / f"part-{i}.parquet", write_page_checksum=True)
    return {"frame": sleep, "parquet": folder, "dask": dd.from_pandas(sleep, npartitions=3)}


@pytest.fixture(autouse=True)
def _local_dask():
    with dask.config.set(scheduler="sync"):
        yield


_REF: dict = {}


def reference(sleep, key, fit):
    if key not in _REF:
        _REF[key] = fit(sleep)
    return _REF[key]


def fit_re(data):
    return sl.mixedlm("Reaction ~ Days", data, groups="Subject", re_formula="~Days").fit(**TIGHT)


def fit_vc(data):
    md = sl.mixedlm("Reaction ~ Days", data, groups="Subject", vc_formula={"shift": "0 + C(shift)"})
    return md.fit(reml=False, **TIGHT)


@pytest.mark.parametrize("kind", KINDS)
def test_mixedlm_returns_statsmodels_results(sleep, inputs, kind):
    res = fit_re(inputs[kind])
    ref = reference(sleep, "re", fit_re)
    assert isinstance(res, MixedLMCompatResults)
    assert list(res.params.index) == list(ref.params.index)
    np.testing.assert_allclose(res.fe_params, ref.fe_params, rtol=1e-6)
    # the variance parameters as cov_re below: the deviance's rounding (~1e-14 relative,
    # summed in another order over chunks) places the optimum only to ~1e-7 in θ
    np.testing.assert_allclose(res.params, ref.params, rtol=1e-5)
    np.testing.assert_allclose(res.bse, ref.bse, rtol=1e-5)
    np.testing.assert_allclose(res.cov_re, ref.cov_re, rtol=1e-5)
    assert list(res.cov_re.index) == ["Subject", "Days"]
    assert res.llf == pytest.approx(ref.llf, rel=1e-10)
    assert res.random_effects.keys() == ref.random_effects.keys()
    for g, b in ref.random_effects.items():
        np.testing.assert_allclose(res.random_effects[g], b, rtol=1e-5, atol=1e-4)
        assert list(res.random_effects[g].index) == list(b.index)
    for g, c in ref.random_effects_cov.items():
        np.testing.assert_allclose(res.random_effects_cov[g], c, rtol=1e-5)
    # (a bound near 0 is a difference of two numbers of size ~1: compared on their scale)
    np.testing.assert_allclose(res.conf_int(), ref.conf_int(), rtol=1e-5, atol=1e-6)
    assert res.df_resid == ref.df_resid and res.nobs == ref.nobs
    text = str(res.summary())
    assert type(res.summary()) is type(ref.summary())
    assert "Min. group size:" in text and "Subject Var" in text
    assert "Scaled residuals" in res.summary_lme4()
    np.testing.assert_allclose(
        np.asarray(res.fittedvalues), np.asarray(ref.fittedvalues), rtol=1e-6
    )
    np.testing.assert_allclose(np.asarray(res.resid), np.asarray(ref.resid), atol=1e-4)
    np.testing.assert_allclose(
        res.predict(pd.DataFrame({"Days": [0.0, 5.0]})),
        ref.predict(pd.DataFrame({"Days": [0.0, 5.0]})),
        rtol=1e-6,
    )


@pytest.mark.parametrize("kind", KINDS)
def test_group_level_predictions(sleep, inputs, kind):
    res = fit_re(inputs[kind])
    ref = reference(sleep, "re", fit_re)
    new = sleep.iloc[[0, 15, 40]][["Days", "Subject"]]
    np.testing.assert_allclose(
        res.predict(new, groups="Subject"), ref.predict(new, groups="Subject"), rtol=1e-6
    )


@pytest.mark.parametrize("kind", KINDS)
def test_mixedlm_variance_components(sleep, inputs, kind):
    res = fit_vc(inputs[kind])
    ref = reference(sleep, "vc", fit_vc)
    assert isinstance(res, MixedLMCompatResults)
    assert list(res.params.index) == list(ref.params.index)
    np.testing.assert_allclose(res.params, ref.params, rtol=1e-5)
    np.testing.assert_allclose(res.bse, ref.bse, rtol=1e-4)
    np.testing.assert_allclose(res.vcomp, ref.vcomp, rtol=1e-5)
    for g, b in ref.random_effects.items():
        assert list(res.random_effects[g].index) == list(b.index)
        np.testing.assert_allclose(res.random_effects[g], b, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("kind", KINDS)
def test_lmer_returns_lme4_results(sleep, inputs, kind):
    formula = "Reaction ~ Days + (Days | Subject)"
    res = sl.lmer(formula, inputs[kind], **TIGHT)
    ref = reference(sleep, "lmer", lambda d: sl.lmer(formula, d, **TIGHT))
    assert type(res) is MixedLMResults
    np.testing.assert_allclose(res.fe_params, ref.fe_params, rtol=1e-8)
    np.testing.assert_allclose(res.bse_fe, ref.bse_fe, rtol=1e-6)
    np.testing.assert_allclose(res.theta, ref.theta, rtol=1e-5)
    assert res.llf == pytest.approx(ref.llf, rel=1e-10)
    assert "Scaled residuals" in res.summary()


@pytest.mark.parametrize("kind", ["parquet", "dask"])
def test_what_needs_the_rows_says_so(inputs, kind):
    res = fit_re(inputs[kind])
    for what in ("endog", "exog", "groups", "exog_re", "row_indices"):
        with pytest.raises(errors.NeedsRowsError, match=f"MixedLM.{what} needs the rows"):
            getattr(res.model, what)
    with pytest.raises(errors.NeedsRowsError, match="profile_re"):
        res.profile_re(0, "re")
    assert res.model.k_fe == 2 and res.model.n_groups == 18


@pytest.mark.parametrize("kind", ["parquet", "dask"])
def test_lmer_tests_predictions_and_what_needs_rows(sleep, inputs, kind):
    formula = "Reaction ~ Days * shift + (Days | Subject)"
    res = sl.lmer(formula, inputs[kind], **TIGHT)
    ref = reference(sleep, "lmer shift", lambda d: sl.lmer(formula, d, **TIGHT))
    for type_ in (1, 3):
        mine, theirs = res.anova(type=type_), ref.anova(type=type_)
        assert list(mine.index) == list(theirs.index)
        np.testing.assert_allclose(mine["F value"], theirs["F value"], rtol=1e-5)
        np.testing.assert_allclose(mine["DenDF"], theirs["DenDF"], rtol=1e-4)
    np.testing.assert_allclose(np.asarray(res.predict()), np.asarray(ref.predict()), rtol=1e-6)
    new = sleep.iloc[[3, 50]]
    np.testing.assert_allclose(res.predict(new), ref.predict(new), rtol=1e-6)
    with pytest.raises(errors.NeedsRowsError, match="simulat"):
        res.simulate(nsim=2)
    with pytest.raises(errors.NeedsRowsError, match="simulat"):
        res.bootstrap(nsim=2)
