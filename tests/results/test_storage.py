"""Saving fits: pickles of every results type, and the JSON record of the optimizer's
summary that restores a fit on the same data without optimizing (and refuses other data)."""

from __future__ import annotations

import io
import json
import warnings

import numpy as np
import pandas as pd
import pytest

import sparselme as sl
from sparselme.errors import DataError
from sparselme.results import storage

FORMULA = "Reaction ~ Days + (Days | Subject)"


@pytest.fixture(scope="module")
def sleep() -> pd.DataFrame:
    data = sl.datasets.load("sleepstudy")
    return data.assign(half=np.where(data["Days"] >= 5, "late", "early"))


def fingerprint(res) -> tuple:
    return (
        type(res).__name__,
        res.llf,
        tuple(np.asarray(res.fe_params)),
        tuple(res.theta),
        str(res.summary()),
    )


def all_results(sleep, tmp_path) -> dict[str, object]:
    folder = tmp_path / "parquet"
    folder.mkdir()
    sleep.to_parquet(folder / "part.parquet")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {
            "lmer": sl.lmer(FORMULA, sleep),
            "lmer ML": sl.lmer(FORMULA, sleep, REML=False),
            "lmer VarIdent": sl.lmer(
                "Reaction ~ Days + (1 | Subject)", sleep, residual=sl.VarIdent("half")
            ),
            "streamed": sl.lmer(FORMULA, folder),
            "mixedlm": sl.mixedlm("Reaction ~ Days", sleep, groups="Subject").fit(),
            "mixedlm VarIdent": sl.mixedlm(
                "Reaction ~ Days", sleep, groups="Subject", residual=sl.VarIdent("half")
            ).fit(),
        }


def test_every_results_type_round_trips_through_save_and_load(sleep, tmp_path):
    for kind, res in all_results(sleep, tmp_path).items():
        path = tmp_path / f"{kind}.pickle"
        res.save(path)
        back = sl.load(path)
        assert type(back) is type(res), kind
        assert fingerprint(back) == fingerprint(res), kind
        np.testing.assert_allclose(np.asarray(back.resid), np.asarray(res.resid), err_msg=kind)
        # the model still evaluates (the engine came along)
        params = res.params_all
        assert back.engine.objective(params, res.reml) == res.engine.objective(params, res.reml)
    buffer = io.BytesIO()
    res.save(buffer)
    buffer.seek(0)
    assert fingerprint(type(res).load(buffer)) == fingerprint(res)


def test_optsum_record_is_plain_json_with_the_estimates(sleep):
    res = sl.lmer(FORMULA, sleep, keep_log=True)
    text = io.StringIO()
    res.save_optsum(text)
    record = json.loads(text.getvalue())  # strict JSON: no NaN or Infinity literals
    json.loads(text.getvalue(), parse_constant=lambda c: pytest.fail(f"non-JSON {c}"))
    assert record["format"] == "sparselme.optsum" and record["model"]["REML"] is True
    assert record["versions"]["sparselme"] == sl.__version__
    assert {"numpy", "python"} <= set(record["versions"])
    np.testing.assert_array_equal(record["estimates"]["theta"], res.theta)
    assert record["estimates"]["beta"]["Intercept"] == res.fe_params["(Intercept)"]
    assert record["estimates"]["sigma"] == res.sigma
    assert record["optsum"]["fmin"] == res.optsum.fmin
    assert record["optsum"]["lower"][1] == "-Infinity"  # the correlation's θ is unbounded
    assert len(record["optsum"]["fitlog"]) == res.optsum.feval > 0
    assert len(record["model"]["probes"]) == 2


@pytest.mark.parametrize("reml", [True, False])
def test_restore_gives_the_same_fit_without_optimizing(sleep, tmp_path, reml):
    res = sl.lmer(FORMULA, sleep, REML=reml, keep_log=True)
    path = tmp_path / "fit.json"
    res.save_optsum(path)
    calls = []
    model = sl.LinearMixedModel.from_formula(FORMULA, sleep)
    objective = model.objective
    model.objective = lambda *a, **k: calls.append(1) or objective(*a, **k)
    back = model.restore_optsum(path)
    assert len(calls) == 3  # the criterion is checked at 3 points, nothing is optimized
    assert fingerprint(back) == fingerprint(res)
    assert back.optsum.feval == res.optsum.feval and back.optsum.fmin == res.optsum.fmin
    for (x1, v1), (x2, v2) in zip(back.optsum.fitlog, res.optsum.fitlog):
        np.testing.assert_array_equal(x1, x2)
        assert v1 == v2
    np.testing.assert_allclose(back.ranef()["Subject"], res.ranef()["Subject"], rtol=1e-12)
    again = sl.lmer(FORMULA, sleep, REML=reml, optsum=path)
    assert fingerprint(again) == fingerprint(res)


def test_restore_with_a_residual_structure_and_streamed_data(sleep, tmp_path):
    fits = all_results(sleep, tmp_path)
    res = fits["lmer VarIdent"]
    record = storage.optsum_record(res)
    back = sl.lmer(
        "Reaction ~ Days + (1 | Subject)", sleep, residual=sl.VarIdent("half"), optsum=record
    )
    assert fingerprint(back) == fingerprint(res)
    # a record of the in-memory fit restores on the same rows streamed from Parquet
    memory = storage.optsum_record(fits["lmer"])
    streamed = sl.lmer(FORMULA, tmp_path / "parquet", optsum=memory)
    np.testing.assert_allclose(streamed.fe_params, fits["lmer"].fe_params, rtol=1e-10)


def test_restore_refuses_other_data_or_models(sleep):
    record = storage.optsum_record(sl.lmer(FORMULA, sleep))
    changed = sleep.copy()
    changed.loc[0, "Reaction"] += 0.01
    with pytest.raises(DataError, match="not reproduced on these data"):
        sl.lmer(FORMULA, changed, optsum=record)
    with pytest.raises(DataError, match="levels"):
        sl.lmer(FORMULA, sleep[sleep["Subject"] != "308"], optsum=record)
    relabelled = sleep.assign(Subject=sleep["Subject"].cat.rename_categories(lambda s: "S" + s))
    with pytest.raises(DataError, match="labels_sha256"):
        sl.lmer(FORMULA, relabelled, optsum=record)
    with pytest.raises(DataError, match="parameters"):
        sl.lmer("Reaction ~ Days + (1 | Subject)", sleep, optsum=record)
    with pytest.raises(DataError, match="pass REML=True"):
        sl.lmer(FORMULA, sleep, REML=False, optsum=record)
    with pytest.raises(TypeError, match="maxeval"):
        sl.lmer(FORMULA, sleep, optsum=record, maxeval=10)
    tampered = json.loads(json.dumps(record))
    tampered["optsum"]["fmin"] += 1.0
    with pytest.raises(DataError, match="not reproduced"):
        sl.lmer(FORMULA, sleep, optsum=tampered)
    with pytest.raises(DataError, match="not an optimizer summary"):
        sl.lmer(FORMULA, sleep, optsum={"theta": [1.0]})
