"""The results of lmer: statsmodels' names for the fixed effects (lmerTest's Satterthwaite
p-values), row outputs as Series on the data's index, R's na.omit / na.exclude."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from references import REFERENCE

import sparselme as sl

PARITY = REFERENCE / "lme4_parity"
SUMMARIES = json.loads((PARITY / "reference.json").read_text())["cases"]
NA = json.loads((PARITY / "output_and_splines.json").read_text())["cases"]["na_action"]


def quiet_lmer(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return sl.lmer(*args, **kwargs)


@pytest.mark.parametrize(("key", "data"), [("summary_sleepstudy_rs", "sleepstudy"),
                                           ("summary_dietox_rs", "dietox")])  # fmt: skip
def test_params_bse_tvalues_pvalues_are_lmertests(key, data):
    case = SUMMARIES[key]
    ref = case["satterthwaite"]
    res = quiet_lmer(case["formula"], sl.datasets.load(data))
    for values in (res.params, res.bse, res.tvalues, res.pvalues):
        assert isinstance(values, pd.Series)
        assert list(values.index) == ref["names"]
    np.testing.assert_allclose(res.params, ref["estimate"], rtol=1e-6)
    np.testing.assert_allclose(res.params, res.fixef)
    np.testing.assert_allclose(res.bse, ref["se"], rtol=5e-5)  # θ to the optimizer tolerance
    np.testing.assert_allclose(res.tvalues, ref["t"], rtol=5e-5)
    np.testing.assert_allclose(np.log(res.pvalues), np.log(ref["p"]), rtol=1e-4)  # p ~ 1e-74
    vcov = np.asarray(case["vcov"])  # the near-zero covariance of dietox to its scale
    np.testing.assert_allclose(res.vcov(), vcov, rtol=5e-5, atol=1e-5 * np.abs(vcov).max())
    assert res.ddf == "Satterthwaite"


def test_pvalues_follow_ddf():
    res = quiet_lmer("Reaction ~ Days + (Days | Subject)", sl.datasets.load("sleepstudy"))
    satterthwaite = res.pvalues
    res.ddf = "normal"
    np.testing.assert_allclose(res.pvalues, res.coef_table("normal")["Pr(>|t|)"])
    assert (res.pvalues < satterthwaite).all()  # z tests: smaller p than t with 17 df
    res.ddf = "Kenward-Roger"
    np.testing.assert_allclose(res.bse, res.coef_table("Kenward-Roger")["Std. Error"])


def test_row_outputs_are_series_on_the_data_index():
    sleep = sl.datasets.load("sleepstudy")
    sleep.index = pd.Index([f"r{i}" for i in range(len(sleep))])
    res = quiet_lmer("Reaction ~ Days + (Days | Subject)", sleep)
    for values in (res.fittedvalues, res.resid):
        assert isinstance(values, pd.Series)
        assert values.index.equals(sleep.index)
    np.testing.assert_allclose(res.resid + res.fittedvalues, sleep["Reaction"])


def na_data() -> pd.DataFrame:
    sleep = sl.datasets.load("sleepstudy")
    rows = np.asarray(NA["missing_rows"]) - 1  # R's rows, 1-based
    sleep.loc[rows[rows != 6], "Reaction"] = np.nan
    sleep.loc[6, "Days"] = np.nan
    return sleep


def test_missing_drop_is_rs_na_omit():
    res = quiet_lmer(NA["formula"], na_data(), missing="drop")
    assert res.na_action == "omit"
    assert [str(i + 1) for i in res.fittedvalues.index] == NA["fitted_omit_names"]
    np.testing.assert_allclose(res.fittedvalues, NA["fitted_omit"], rtol=1e-5)
    assert res.llf == pytest.approx(NA["logLik"], abs=1e-6)


def test_missing_exclude_is_rs_na_exclude():
    data = na_data()
    res = quiet_lmer(NA["formula"], data, missing="exclude")
    assert res.na_action == "exclude"
    expected = np.array(NA["fitted_exclude"], dtype=float)  # null: R's NA
    for values, ref in ((res.fittedvalues, expected),
                        (res.resid, np.array(NA["residuals_exclude"], dtype=float))):  # fmt: skip
        assert values.index.equals(data.index)
        np.testing.assert_array_equal(values.isna(), np.isnan(ref))
        np.testing.assert_allclose(values.dropna(), ref[~np.isnan(ref)], rtol=1e-5, atol=1e-3)
    res.na_action = "omit"  # the same fit, the kept rows only
    assert len(res.fittedvalues) == 176
    with pytest.raises(ValueError, match="na_action"):
        res.na_action = "pad"
        res.fittedvalues  # noqa: B018
