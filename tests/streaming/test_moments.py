"""The moments fit of a formula is the same in memory, from Parquet and on Dask."""

from __future__ import annotations

import numpy as np
import pytest
from crossed_data import crossed_frame

import sparselme as sl
from sparselme.streaming.moments import FrameSource, fit_formula_moments

pytest.importorskip("pyarrow")
dd = pytest.importorskip("dask.dataframe")

FORMULA = "y ~ x + z + (1|a) + (1|b)"


@pytest.fixture(scope="module")
def frame():
    return crossed_frame(n=6_000, levels_a=150, levels_b=40, seed=5)


@pytest.fixture(scope="module")
def in_memory(frame):
    return sl.lmer(FORMULA, frame, estimator="moments", variance_reps=8)


def _same(res, ref):
    np.testing.assert_allclose(res.varcorr["vcov"], ref.varcorr["vcov"], rtol=1e-9)
    np.testing.assert_allclose(res.fe_params, ref.fe_params, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(res.vcov(), ref.vcov(), rtol=1e-8, atol=1e-14)
    for name in ("a", "b"):
        a, b = res.ranef()[name], ref.ranef()[name]
        assert list(a.index) == list(b.index)
        np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-10)
    assert res.moments.passes == ref.moments.passes


def test_parquet_folder_equals_in_memory(frame, in_memory, tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    for k, part in enumerate(np.array_split(np.arange(len(frame)), 3)):
        frame.iloc[part].to_parquet(folder / f"part-{k}.parquet")
    res = sl.lmer(FORMULA, folder, estimator="moments", variance_reps=8, chunk_size=1_000)
    _same(res, in_memory)
    fitted = np.asarray(res.fittedvalues)  # computed chunk by chunk
    np.testing.assert_allclose(fitted, in_memory.fittedvalues.to_numpy(), rtol=1e-9)


def test_dask_equals_in_memory(frame, in_memory):
    ddf = dd.from_pandas(frame, npartitions=4)
    res = sl.lmer(FORMULA, ddf, estimator="moments", variance_reps=8)
    _same(res, in_memory)


def test_chunking_does_not_change_the_fit(frame, in_memory):
    res = sl.lmer(FORMULA, frame, estimator="moments", variance_reps=8, chunk_size=777)
    _same(res, in_memory)


def test_frame_source_slices_every_row_once(frame):
    src = FrameSource(frame, chunk_size=1_000)
    sizes = list(src.map_chunks(len, ["y"]))
    assert sum(sizes) == len(frame) and max(sizes) == 1_000


def test_interaction_is_counted_exactly(frame):
    model = fit_formula_moments("y ~ x + (1|a) + (1|b) + (1|a:b)", frame, variance_reps=0)
    names = [t.name for t in model.design.terms]
    assert "a:b" in names
    k = names.index("a:b")
    parts = model.layout.interactions[f"g{k}"]
    assert {names[int(p[1:])] for p in parts} == {"a", "b"}
