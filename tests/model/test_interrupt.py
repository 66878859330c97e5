"""A fit interrupted from its callback leaves the model usable: fitting again gives the
uninterrupted result, for every API that offers ``callback(evaluation, params, value)``
(lme4-style ``lmer`` / ``LinearMixedModel.fit``, statsmodels-style ``MixedLM.fit``) and for
data in memory and streamed from Parquet."""

from __future__ import annotations

import numpy as np
import pytest

import sparselme as sl
from sparselme.lme4 import LinearMixedModel
from sparselme.streaming import streamed_design

pytest.importorskip("pyarrow")

FORMULA = "Reaction ~ Days + (Days | Subject)"


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    sleep = sl.datasets.load("sleepstudy")
    out = tmp_path_factory.mktemp("sleep")
    sleep.iloc[:90].to_parquet(out / "a.parquet", write_page_checksum=True)
    sleep.iloc[90:].to_parquet(out / "b.parquet", write_page_checksum=True)
    return out


def streamed_model(folder) -> LinearMixedModel:
    design, cp = streamed_design(FORMULA, folder)
    return LinearMixedModel(design, cp=cp)


MODELS = {
    "lmer": lambda f: LinearMixedModel.from_formula(FORMULA, sl.datasets.load("sleepstudy")),
    "lmer streamed": lambda f: streamed_model(f),
    "mixedlm": lambda f: sl.mixedlm(
        "Reaction ~ Days", sl.datasets.load("sleepstudy"), groups="Subject", re_formula="~Days"
    ),
    "mixedlm streamed": lambda f: sl.mixedlm(
        "Reaction ~ Days", f, groups="Subject", re_formula="~Days"
    ),
}


def stop_at(n: int, seen: list):
    def callback(evaluation, params, value):
        seen.append((evaluation, np.array(params), value))
        if evaluation >= n:
            raise KeyboardInterrupt

    return callback


@pytest.mark.parametrize("name", list(MODELS))
def test_interrupted_fit_leaves_the_model_usable(folder, name):
    model = MODELS[name](folder)
    seen: list = []
    with pytest.raises(KeyboardInterrupt):
        model.fit(callback=stop_at(6, seen))
    assert [e for e, _, _ in seen] == list(range(1, 7))
    assert all(np.isfinite(v) for _, _, v in seen)
    again = model.fit()
    fresh = MODELS[name](folder).fit()
    assert again.llf == pytest.approx(fresh.llf, rel=1e-12)
    np.testing.assert_allclose(again.theta, fresh.theta, rtol=1e-10)
    np.testing.assert_allclose(np.asarray(again.fe_params), np.asarray(fresh.fe_params), rtol=1e-10)


def test_lmer_passes_the_callback_on(folder):
    seen: list = []
    res = sl.lmer(FORMULA, sl.datasets.load("sleepstudy"), callback=lambda *a: seen.append(a))
    assert len(seen) == res.optsum.feval and seen[-1][0] == res.optsum.feval
    with pytest.raises(KeyboardInterrupt):
        sl.lmer(FORMULA, folder, callback=stop_at(3, []))
