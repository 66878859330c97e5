"""Profile and Wald intervals against frozen lme4 numbers."""

from __future__ import annotations

import numpy as np
import pytest
from lme4_cases import (
    LMERTEST,
    PUBLIC,
    SIG3,
    fit,
    num,
    sleepstudy,
)

from sparselme.analysis import profile

# ======================================================================================
# Profile and Wald intervals
# ======================================================================================

CI_CASES = ["confint_dyestuff", "confint_penicillin", "confint_sleepstudy_ml",
            "confint_sleepstudy_indep"]  # fmt: skip


def _ci_fit(ref: dict):
    formula = ref["formula"].replace("((1 | Subject) + (0 + Days | Subject))", "(Days || Subject)")
    return fit(formula, ref["data"], ref["REML"])


def test_profile_and_wald_intervals_sleepstudy_public():
    ref = PUBLIC["confint_sleepstudy"]
    res = sleepstudy()
    prof = res.confint(method="profile")
    assert list(prof.index) == ref["names"]
    assert list(prof.columns) == ["2.5 %", "97.5 %"]
    np.testing.assert_allclose(prof["2.5 %"], ref["profile_lo"], rtol=SIG3)
    np.testing.assert_allclose(prof["97.5 %"], ref["profile_hi"], rtol=SIG3)
    wald = res.confint(method="wald")
    assert list(wald.index) == ref["names"] and list(wald.columns) == ["2.5 %", "97.5 %"]
    assert wald.iloc[:4].isna().all().all()  # variance parameters: NaN, as in lme4
    np.testing.assert_allclose(wald["2.5 %"], num(ref["wald_lo"]), rtol=SIG3)
    np.testing.assert_allclose(wald["97.5 %"], num(ref["wald_hi"]), rtol=SIG3)


@pytest.mark.parametrize("case", CI_CASES)
def test_profile_intervals_match_lme4(case):
    ref = LMERTEST[case]
    res = _ci_fit(ref)
    ci = profile.confint(res)
    assert list(ci.index) == ref["names"]
    np.testing.assert_allclose(ci["2.5 %"], num(ref["profile_lo"]), rtol=SIG3)
    np.testing.assert_allclose(ci["97.5 %"], num(ref["profile_hi"]), rtol=SIG3)
    wald = res.confint(method="Wald")
    np.testing.assert_allclose(wald["2.5 %"], num(ref["wald_lo"]), rtol=SIG3)


def test_confint_parm_and_level():
    res = fit("Yield ~ 1 + (1 | Batch)", "Dyestuff")
    ci = res.confint(parm=["sigma"], level=0.9)
    assert list(ci.index) == ["sigma"] and list(ci.columns) == ["5 %", "95 %"]
    assert list(res.confint(parm="beta_", method="wald").index) == ["(Intercept)"]
    with pytest.raises(KeyError, match="unknown parameter"):
        res.confint(parm=["tau"])
    with pytest.raises(ValueError, match="method"):
        res.confint(method="asymptotic")


def test_profile_traces():
    res = fit("Yield ~ 1 + (1 | Batch)", "Dyestuff")
    prof = res.profile()
    trace = prof.trace
    assert prof.parameters == ["sd_(Intercept)|Batch", "sigma", "(Intercept)"]
    assert {"parameter", "value", "zeta", "sigma", "(Intercept)"} <= set(trace.columns)
    for name, part in trace.groupby("parameter"):
        part = part.sort_values("value")
        assert np.all(np.diff(part["zeta"]) > 0), name  # monotone
        assert part["zeta"].abs().min() < 1e-8  # passes through the estimate
        assert part["zeta"].max() > 2.5 and part["zeta"].min() < -2.5 or name.startswith("sd_")
    ci = prof.confint()
    np.testing.assert_allclose(ci, profile.confint(res), rtol=1e-6)


def test_profile_plot():
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    prof = fit("Yield ~ 1 + (1 | Batch)", "Dyestuff").profile(which="theta_")
    fig = prof.plot()
    assert len([ax for ax in fig.axes if ax.get_visible()]) == 2


