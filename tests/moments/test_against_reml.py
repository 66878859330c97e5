"""Slow: the moment fit against exact REML (sl.lmer) on a mid-size power-law design."""

import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

import sparselme as sl
from sparselme.moments import fit_moments, in_memory, layout_for

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from benchmarks import crossed_powerlaw as cp  # noqa: E402


@pytest.mark.slow
def test_power_law_design_close_to_reml():
    n, la, lb = 400_000, 20_000, 2_000
    cols = cp.design(n, la, lb)
    cols["y"] = cp.response(cols, la, lb, seed=4)
    fit = fit_moments(in_memory(cols, 150_000), layout_for(cols, ["a", "b"], x=["x1", "x2", "x3"]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = sl.lmer("y ~ x1 + x2 + x3 + (1|a) + (1|b)", cp.frame(cols, la, lb))
    vc = res.varcorr.set_index("grp")["vcov"]
    reml = np.array([vc["a"], vc["b"], vc["Residual"]])
    # components: within 4 of the moment estimator's own standard errors of REML's
    assert np.all(np.abs(fit.sigma2 - reml) < 4 * fit.sigma2_se)
    se = res.bse_fe.to_numpy()
    assert np.all(np.abs(fit.beta - res.fe_params.to_numpy()) < 0.2 * se)
    np.testing.assert_allclose(fit.bse, se, rtol=0.15)
    # naive OLS is far too confident for the user and item covariates
    assert np.all(fit.bse_ols[2:] < 0.5 * se[2:])


@pytest.mark.slow
def test_dask_local_cluster(tmp_path):
    distributed = pytest.importorskip("distributed")
    dd = pytest.importorskip("dask.dataframe")
    import pandas as pd

    from sparselme.moments.adapters import dask_reducer

    cols = cp.design(60_000, 3_000, 300)
    cols["y"] = cp.response(cols, 3_000, 300, seed=2)
    lay = layout_for(cols, ["a", "b"], x=["x1", "x2", "x3"])
    want = fit_moments(in_memory(cols), lay, variance_reps=10)
    ddf = dd.from_pandas(pd.DataFrame(cols), npartitions=6)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True) as cluster:
        with distributed.Client(cluster):
            got = fit_moments(dask_reducer(ddf, lay.columns, 7_000), lay, variance_reps=10)
    np.testing.assert_allclose(got.sigma2, want.sigma2, rtol=1e-8)
    np.testing.assert_allclose(got.beta, want.beta, rtol=1e-8)
    np.testing.assert_allclose(got.beta_cov, want.beta_cov, rtol=1e-7)
