"""The whole fit: chunked, Parquet and Dask passes give the in-memory results."""

import numpy as np
import pandas as pd
import pytest

from sparselme.errors import DataError, MissingDataError, UnknownColumnError
from sparselme.moments import Layout, fit_moments, in_memory, layout_for, read_block

from .dense import small_design

FACTORS, X = ["f0", "f1"], ["x1", "x2"]


@pytest.fixture(scope="module")
def data():
    return small_design(31, n=300, levels=(30, 12), p_extra=2)


def _fit(reduce, lay, **kw):
    return fit_moments(reduce, lay, variance_reps=20, seed=1, tol=1e-10, **kw)


def _same(a, b, rtol=1e-8):
    np.testing.assert_allclose(a.sigma2_raw, b.sigma2_raw, rtol=rtol)
    np.testing.assert_allclose(a.sigma2_cov, b.sigma2_cov, rtol=1e-6)
    np.testing.assert_allclose(a.beta, b.beta, rtol=rtol)
    np.testing.assert_allclose(a.beta_cov, b.beta_cov, rtol=1e-7)
    for x, y in zip(a.modes, b.modes):
        np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-8)


def test_chunk_sizes_agree(data):
    lay = layout_for(data, FACTORS, x=X)
    one = _fit(in_memory(data), lay)
    assert one.passes == 4 + one.iterations  # counts, residuals, two variance passes, CG
    for rows in (1, 37, 128):
        _same(_fit(in_memory(data, rows), lay), one)


def test_dataframe_with_categoricals(data):
    df = pd.DataFrame(data)
    for f in FACTORS:
        df[f] = pd.Categorical.from_codes(
            df[f], categories=[f"L{i}" for i in range(df[f].max() + 1)]
        )
    lay = layout_for(df, FACTORS, x=X)
    _same(_fit(in_memory(df, 50), lay), _fit(in_memory(data), layout_for(data, FACTORS, x=X)))


def test_parquet_and_dask(data, tmp_path):
    pytest.importorskip("pyarrow")
    from sparselme.moments.adapters import dask_reducer, parquet_reducer

    lay = layout_for(data, FACTORS, x=X)
    want = _fit(in_memory(data), lay)
    df = pd.DataFrame(data)
    for i, part in enumerate(np.array_split(np.arange(len(df)), 3)):
        df.iloc[part].to_parquet(tmp_path / f"part-{i}.parquet", index=False)
    _same(_fit(parquet_reducer(tmp_path, lay.columns, chunk_rows=41), lay), want)
    dd = pytest.importorskip("dask.dataframe")
    ddf = dd.from_pandas(df, npartitions=4)
    import dask

    with dask.config.set(scheduler="synchronous"):
        _same(_fit(dask_reducer(ddf, lay.columns, chunk_rows=29), lay), want)


def test_backfitting_matches_cg(data):
    lay = layout_for(data, FACTORS, x=X)
    cg = fit_moments(in_memory(data), lay, variance_reps=0, tol=1e-11)
    bf = fit_moments(in_memory(data), lay, variance_reps=0, tol=1e-11, solver="backfitting")
    np.testing.assert_allclose(bf.beta, cg.beta, rtol=1e-8)
    np.testing.assert_allclose(bf.beta_cov, cg.beta_cov, rtol=1e-8)


def test_bad_chunks_raise(data):
    lay = Layout(factors=("f0", "f1"), levels=(30, 12), x=("x1",))
    chunk = dict(data)
    with pytest.raises(UnknownColumnError):
        read_block({k: v for k, v in chunk.items() if k != "x1"}, lay)
    bad = dict(chunk, f0=np.where(np.arange(300) == 5, -1, chunk["f0"]))
    with pytest.raises(MissingDataError, match="f0"):
        read_block(bad, lay)
    with pytest.raises(DataError, match="levels"):
        read_block(chunk, Layout(factors=("f0", "f1"), levels=(30, 5), x=("x1",)))
    with pytest.raises(MissingDataError):
        read_block(dict(chunk, y=np.where(np.arange(300) == 3, np.nan, chunk["y"])), lay)
    with pytest.raises(DataError, match="integer"):
        read_block(dict(chunk, f1=chunk["f1"].astype(float)), lay)


def test_summary_lists_components_and_effects(data):
    fit = _fit(in_memory(data), layout_for(data, FACTORS, x=X))
    text = fit.summary()
    for name in (*FACTORS, "Residual", "(Intercept)", *X):
        assert name in text
    assert f"{fit.beta[1]:12.6g}".strip() in text
    assert f"{fit.sigma2[0]:12.6g}".strip() in text


def test_sampled_cells_are_chunking_invariant_and_close(data):
    """With a cell budget below the number of (f0, f1) cells, the repeated-cell counts are
    sampled: the fit still does not depend on the chunking and stays near the exact one."""
    lay = layout_for(data, FACTORS, x=X)
    exact = _fit(in_memory(data), lay)
    one = _fit(in_memory(data), lay, cell_budget=40)
    assert one.diagnostics["cell_fraction"][(0, 1)] < 1
    assert np.any(one.diagnostics["expectation_se"] > 0)
    _same(_fit(in_memory(data, 23), lay, cell_budget=40), one)
    np.testing.assert_allclose(one.sigma2, exact.sigma2, rtol=0.2)
