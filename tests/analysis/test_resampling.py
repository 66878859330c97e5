"""The parametric bootstrap and refits to a new response."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from dense_reference import dense_condvar
from lme4_cases import (
    data,
    fit,
)

import sparselme as sl
from sparselme.analysis import profile
from sparselme.analysis.resampling import bootstrap, refit

# ======================================================================================
# Parametric bootstrap
# ======================================================================================


@pytest.fixture(scope="module")
def dyestuff_boot():
    res = fit("Yield ~ 1 + (1 | Batch)", "Dyestuff")
    return res, bootstrap(res, nsim=200, seed=2024, verbose=False)


def test_bootstrap_covers_profile_centres(dyestuff_boot):
    res, boot = dyestuff_boot
    ci = boot.confint()
    prof = profile.confint(res)
    assert list(ci.index) == list(prof.index) == ["sd_(Intercept)|Batch", "sigma", "(Intercept)"]
    centre = prof.mean(axis=1)
    assert np.all((ci["2.5 %"] <= centre) & (centre <= ci["97.5 %"]))
    assert boot.n_failed == 0


def test_bootstrap_is_reproducible(dyestuff_boot):
    res, boot = dyestuff_boot
    again = res.bootstrap(nsim=200, seed=2024, verbose=False)
    pd.testing.assert_frame_equal(boot.t, again.t)
    other = res.bootstrap(nsim=200, seed=7, verbose=False)
    assert not np.allclose(other.t.to_numpy(), boot.t.to_numpy())


def test_bootstrap_in_processes_gives_the_same_replicates(dyestuff_boot):
    res, boot = dyestuff_boot
    par = bootstrap(res, nsim=40, seed=2024, n_jobs=2, verbose=False)
    pd.testing.assert_frame_equal(par.t, boot.t.iloc[:40])


def test_bootstrap_progress_bar_and_custom_statistic(capsys):
    res = fit("Yield ~ 1 + (1 | Batch)", "Dyestuff")
    boot = sl.bootstrap(res, 20, lambda r: r.sigma, seed=1, verbose=True)
    err = capsys.readouterr().err
    assert "bootstrap" in err and "20/20" in err
    assert list(boot.t.columns) == ["t1"] and boot.t.shape == (20, 1)
    assert boot.t0.iloc[0] == pytest.approx(res.sigma)
    assert set(boot.summary().columns) == {"original", "bias", "std. error", "median"}
    ci = res.confint(method="boot", nsim=30, seed=3, verbose=False)
    assert list(ci.index) == profile.parameter_names(res)


def test_refit_reuses_the_factorization_and_matches_a_fresh_fit():
    res = fit("diameter ~ 1 + (1 | plate) + (1 | sample)", "Penicillin")
    y = res.simulate(1, seed=11)["sim_1"].to_numpy()
    chol = res.model.pls.chol
    again = refit(res, y)
    assert again.model.pls.chol is chol  # the same symbolic factorization
    frame = data("Penicillin").assign(diameter=y)
    fresh = sl.lmer("diameter ~ 1 + (1 | plate) + (1 | sample)", frame)
    assert again.llf == pytest.approx(fresh.llf, abs=1e-6)
    np.testing.assert_allclose(again.fe_params, fresh.fe_params, rtol=1e-6)
    # the original fit still evaluates correctly on the shared factor
    assert res.model.objective(res.theta, True) == pytest.approx(res.optsum.fmin, abs=1e-9)
    cv = res.ranef().condvar["plate"][0, 0, 0]
    assert cv == pytest.approx(dense_condvar(res)[0][0, 0, 0], rel=1e-8)


