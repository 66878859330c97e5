"""statsmodels' own MixedLM tests, run against sparselme.

The test module ``statsmodels/regression/tests/test_lme.py`` ships inside the statsmodels
wheel. Its test classes and functions are imported from the installed package (nothing
of it is copied here) and collected as part of this module; a module-scoped fixture
points the names they use — ``MixedLM`` and ``MixedLMParams`` of that module,
``statsmodels.formula.api.mixedlm`` (and ``statsmodels.api.MixedLM``) — at sparselme's
for the duration of this module. statsmodels' assertions and tolerances run unchanged.

Left out (``EXCLUDED``), for one of two reasons only: the test exercises a statsmodels-
private function, or statsmodels is demonstrably wrong there and lme4's frozen numbers
(tests/reference/statsmodels_suite/) prove it; for the latter, a test here checks
sparselme against those numbers instead. statsmodels' ``slow`` marks are lifted for these
tests (sparselme runs the whole file in seconds), and the closing summary of every run
prints "P passed of N applicable" (tests/statsmodels_compat/conftest.py); cases of
``test_r`` that return before asserting anything (independent random effects with a
single random effect) run but are not counted among the applicable ones.
"""

from __future__ import annotations

import pytest
from references import load

suite = pytest.importorskip("statsmodels.regression.tests.test_lme")
import statsmodels.api as sm_api  # noqa: E402
import statsmodels.formula.api as smf_api  # noqa: E402

import sparselme as sl  # noqa: E402

SUITE_MODULE = suite.__name__

EXCLUDED = {
    "TestSMWSolver": "tests statsmodels' private _smw_solver (Sherman-Morrison-Woodbury solves)",
    "TestSMWLogdet": "tests statsmodels' private _smw_logdet (Sherman-Morrison-Woodbury logdet)",
    "test_singular": (
        "expects a SingularMatrixWarning: statsmodels ends at a zero class variance "
        "(llf = +inf); lme4 1.1-31 finds variance 0.000569, llf -150.7394, isSingular "
        "FALSE (tests/reference/statsmodels_suite), as sparselme does "
        "(test_singular_case_matches_lme4)"
    ),
}

for _name, _obj in vars(suite).items():
    if _name.startswith(("test_", "Test")) and _name not in EXCLUDED:
        globals()[_name] = _obj


def is_vacuous(item: pytest.Item) -> bool:
    """statsmodels' ``do1`` returns before asserting for irf with data sets 0-5."""
    spec = getattr(item, "callspec", None)
    if item.originalname != "test_r" or spec is None:
        return False
    return bool(spec.params["irf"]) and int(spec.params["fname"][3:5]) < 6


@pytest.fixture(scope="module", autouse=True)
def sparselme_in_place_of_statsmodels():
    """statsmodels' MixedLM names, as its tests see them, are sparselme's."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(suite, "MixedLM", sl.MixedLM)
        mp.setattr(suite, "MixedLMParams", sl.MixedLMParams)
        mp.setattr(smf_api, "mixedlm", sl.mixedlm)
        mp.setattr(sm_api, "MixedLM", sl.MixedLM)
        yield


def test_singular_case_matches_lme4():
    """test_singular's data: sparselme's REML fit is lme4's (not on the boundary)."""
    import pandas as pd
    from references import REFERENCE

    ref = load("statsmodels_suite", "reference")["singular"]
    df = pd.read_csv(REFERENCE / "statsmodels_suite" / "singular.csv")
    res = sl.mixedlm("Y ~ X", df, groups=df["class"]).fit()
    assert res.llf == pytest.approx(ref["logLik"], abs=1e-4)
    assert res.cov_re.iloc[0, 0] == pytest.approx(ref["class_variance"], rel=1e-3)
    assert res.scale == pytest.approx(ref["residual_variance"], rel=1e-5)
    assert list(res.fe_params) == pytest.approx(list(ref["fixef"].values()), abs=1e-6)
    assert res.is_singular is ref["isSingular"]
