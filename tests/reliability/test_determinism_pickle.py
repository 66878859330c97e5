"""The same input gives bit-identical output (in one process and in a fresh one); results pickle."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

import sparselme as sl
import sparselme.formula.api as slf
from sparselme.lme4 import LinearMixedModel

CASES = {
    "sleepstudy": ("sleepstudy", "Reaction ~ Days + (Days|Subject)"),
    "pastes": ("Pastes", "strength ~ 1 + (1|batch/cask)"),
    "penicillin": ("Penicillin", "diameter ~ 1 + (1|plate) + (1|sample)"),
}


def fingerprint(res) -> dict[str, str]:
    """Hex bytes of everything a fit reports, for exact comparison."""
    arrays = {
        "theta": res.theta,
        "beta": res.fe_params.to_numpy(),
        "fmin": np.array([res.optsum.fmin]),
        "sigma": np.array([res.sigma]),
        "bse": res.bse_fe.to_numpy(),
        "fitted": np.asarray(res.fittedvalues),
        "ranef": np.concatenate([f.to_numpy().ravel() for f in res.ranef().values()]),
    }
    return {k: np.ascontiguousarray(v, dtype=float).tobytes().hex() for k, v in arrays.items()}


def fit(case: str, factorization: str = "auto"):
    dataset, formula = CASES[case]
    model = LinearMixedModel.from_formula(
        formula, sl.datasets.load(dataset), factorization=factorization
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return model.fit()


FRESH = [("sleepstudy", "auto"), ("pastes", "sparse"), ("penicillin", "block")]
_CHILD = """
import json, sys
sys.path.insert(0, {tests!r})
from test_determinism_pickle import FRESH, fingerprint, fit
print(json.dumps([fingerprint(fit(case, factorization)) for case, factorization in FRESH]))
"""


@pytest.mark.parametrize("factorization", ["block", "sparse"])
@pytest.mark.parametrize("case", list(CASES))
def test_two_fits_in_one_process_are_bit_identical(case, factorization):
    assert fingerprint(fit(case, factorization)) == fingerprint(fit(case, factorization))


def test_a_fresh_process_gives_bit_identical_results():
    code = _CHILD.format(tests=str(Path(__file__).parent))
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    child = json.loads(out.stdout.strip().splitlines()[-1])
    assert child == [fingerprint(fit(case, factorization)) for case, factorization in FRESH]


@pytest.mark.parametrize("factorization", ["block", "sparse"])
@pytest.mark.parametrize("case", list(CASES))
def test_results_pickle_and_keep_working(case, factorization):
    res = fit(case, factorization)
    before = fingerprint(res)
    back = pickle.loads(pickle.dumps(res))
    assert fingerprint(back) == before
    theta = res.theta * 1.1
    assert back.model.objective(theta) == res.model.objective(theta)
    assert "Random effects" in back.summary()
    refit = back.model.fit()
    np.testing.assert_array_equal(refit.theta, res.theta)


def test_pickled_model_before_any_fit_can_fit():
    model = LinearMixedModel.from_formula(
        "strength ~ 1 + (1|batch/cask)", sl.datasets.load("Pastes"), factorization="sparse"
    )
    back = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(back.fit().theta, model.fit().theta)


def test_statsmodels_api_results_pickle():
    dietox = sl.datasets.load("dietox")
    res = slf.mixedlm("Weight ~ Time", dietox, groups="Pig", re_formula="~Time").fit()
    back = pickle.loads(pickle.dumps(res))
    np.testing.assert_array_equal(np.asarray(back.params), np.asarray(res.params))
    np.testing.assert_array_equal(np.asarray(back.bse), np.asarray(res.bse))
    assert back.summary().as_text() == res.summary().as_text()
