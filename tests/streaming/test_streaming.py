"""Streamed fits (Parquet in chunks, Dask partitions on a 2-worker cluster) = in-memory fits.

Two fits whose cross-products differ only by rounding (as chunked sums do, or the same data
with its rows shuffled) follow the optimizer to the same optimum within its tolerance; the
comparisons to 1e-8 therefore use tight optimizer tolerances on both sides. At a fixed θ the
objective is compared directly.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import sparselme as sl
from sparselme.results import MixedLMResults
from sparselme.streaming import StreamedColumn, streamed_design

pa = pytest.importorskip("pyarrow")
ds = pytest.importorskip("pyarrow.dataset")
dd = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")

FORMULA = "y ~ x + z + f + o + s + (1 + x | a) + (1 | b) + (1 | b:s)"
TIGHT = {"ftol_abs": 1e-14, "xtol_abs": 1e-12}
REL = 1e-8


def make_data(n: int = 4000, seed: int = 7) -> pd.DataFrame:
    """Crossed and nested groupings; a categorical with its own level order, an ordered
    one (polynomial contrasts), strings, an integer grouping variable; fixed effects O(1)."""
    rng = np.random.default_rng(seed)
    La, Lb = 150, 25
    a, b = rng.integers(0, La, n), rng.integers(0, Lb, n)
    x, z = rng.normal(size=n), rng.uniform(-1, 1, n)
    f = rng.choice(["lo", "mid", "hi"], n)
    o = rng.choice(["small", "medium", "large"], n)
    s = rng.choice(["p", "q", "r"], n)
    si = pd.Series(s).map({"p": 0, "q": 1, "r": 2}).to_numpy()
    ua = rng.normal(size=(La, 2)) * [1.0, 0.5]
    ub, ubs = rng.normal(size=Lb) * 0.7, rng.normal(size=(Lb, 3)) * 0.5
    effects = (
        pd.Series(f).map({"lo": 0.0, "mid": 1.0, "hi": -0.8}).to_numpy()
        + pd.Series(o).map({"small": 0.0, "medium": 0.6, "large": 1.5}).to_numpy()
        + pd.Series(s).map({"p": 0.0, "q": 0.9, "r": -1.2}).to_numpy()
    )
    y = 2.0 + 1.5 * x - 0.9 * z + effects + ua[a, 0] + ua[a, 1] * x + ub[b] + ubs[b, si]
    a_levels = [f"a{i:03d}" for i in range(La)]
    return pd.DataFrame(
        {
            "y": y + rng.normal(size=n),
            "x": x,
            "z": z,
            "f": pd.Categorical(f, categories=["lo", "mid", "hi"]),
            "o": pd.Categorical(o, categories=["small", "medium", "large"], ordered=True),
            "s": s,
            "a": pd.Categorical(
                [a_levels[i] for i in a], categories=[a_levels[i] for i in rng.permutation(La)]
            ),
            "b": (b * 7 + 3).astype(np.int64),
            "w": rng.uniform(0.5, 2.0, n),
            "off": rng.normal(size=n) * 0.1,
        }
    )


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    return make_data()


@pytest.fixture(scope="module")
def folder(data, tmp_path_factory) -> Path:
    """The data as a folder of 4 Parquet files with row groups of 300 rows."""
    out = tmp_path_factory.mktemp("parquet")
    for i in range(4):
        part = data.iloc[i * 1000 : (i + 1) * 1000]
        part.to_parquet(out / f"part-{i}.parquet", row_group_size=300, write_page_checksum=True)
    return out


@pytest.fixture(scope="module")
def client():
    """One 2-worker LocalCluster with processes for the whole module."""
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
    )
    cl = distributed.Client(cluster)
    yield cl
    cl.close()
    cluster.close()


_REFS: dict = {}


def in_memory(data: pd.DataFrame, formula: str = FORMULA, **kw) -> sl.MixedLMResults:
    key = (formula, tuple(sorted(kw.items())))
    if key not in _REFS:
        _REFS[key] = sl.lmer(formula, data, **TIGHT, **kw)
    return _REFS[key]


def assert_same_fit(res, ref) -> None:
    assert res.nobs == ref.nobs
    assert res.llf == pytest.approx(ref.llf, rel=REL)
    assert list(res.fe_params.index) == list(ref.fe_params.index)
    np.testing.assert_allclose(res.fe_params.to_numpy(), ref.fe_params.to_numpy(), rtol=REL)
    np.testing.assert_allclose(res.theta, ref.theta, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(res.bse_fe.to_numpy(), ref.bse_fe.to_numpy(), rtol=1e-6)
    assert res.ngroups == ref.ngroups
    for name, frame in ref.ranef(condvar=False).items():
        mine = res.ranef(condvar=False)[name]
        assert list(mine.index) == list(frame.index)
        assert list(mine.columns) == list(frame.columns)


# ---- Parquet -------------------------------------------------------------------------------


def test_parquet_folder_equals_in_memory(data, folder):
    res = sl.lmer(FORMULA, folder, **TIGHT)
    assert type(res) is MixedLMResults  # the same results as for a DataFrame
    assert_same_fit(res, in_memory(data))


def test_chunks_far_smaller_than_the_data_give_the_same_answer(data, folder):
    res = sl.lmer(FORMULA, str(folder), chunk_size=37, **TIGHT)  # 109 chunks, most levels absent
    assert_same_fit(res, in_memory(data))


def test_structured_terms_stream_like_in_memory(data, folder):
    """A covariance structure is part of the term, whatever reads the rows."""
    formula = "y ~ x + z + cs(0 + f | a) + (1 | b)"
    design, cp = streamed_design(formula, folder, chunk_size=500)
    assert [t.label() for t in design.terms] == ["cs(0 + f | a)", "(1 | b)"]
    streamed = sl.LinearMixedModel(design, cp=cp)
    model = sl.LinearMixedModel.from_formula(formula, data)
    for theta in (np.array([0.8, 0.5, 1.1, 0.4, 0.6]), model.pls.initial_theta):
        for reml in (True, False):
            assert streamed.objective(theta, reml) == pytest.approx(
                model.objective(theta, reml), rel=1e-12
            )
    res = sl.lmer(formula, folder, **TIGHT)
    assert res.llf == pytest.approx(in_memory(data, formula).llf, rel=1e-8)


def test_objective_at_fixed_theta_equals_in_memory(data, folder):
    design, cp = streamed_design(FORMULA, folder, chunk_size=500)
    streamed = sl.LinearMixedModel(design, cp=cp)
    model = sl.LinearMixedModel.from_formula(FORMULA, data)
    theta = in_memory(data).theta
    for reml in (True, False):
        assert streamed.objective(theta, reml) == pytest.approx(
            model.objective(theta, reml), rel=1e-12
        )
    X = model.design.X  # in memory the cross-products hold the centred, scaled X̃
    np.testing.assert_allclose(streamed.cp.XtX, X.T @ X, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(streamed.cp.diag[0], model.cp.diag[0], rtol=1e-12)


def test_weights_offset_and_ml(data, folder):
    kw = {"weights": "w", "offset": "off", "REML": False}
    res = sl.lmer(FORMULA, folder, chunk_size=333, **TIGHT, **kw)
    assert_same_fit(res, in_memory(data, **kw))


def test_pyarrow_dataset_table_and_single_file(data, folder, tmp_path):
    ref = in_memory(data, "y ~ x + f + (1 | a)")
    one = tmp_path / "one.parquet"
    data.to_parquet(one, write_page_checksum=True)
    for source in (ds.dataset(folder), pa.Table.from_pandas(data), one):
        assert_same_fit(sl.lmer("y ~ x + f + (1 | a)", source, **TIGHT), ref)


def test_residuals_are_computed_per_chunk_on_request(data, folder):
    res = sl.lmer(FORMULA, folder, chunk_size=1000, **TIGHT)
    ref = in_memory(data)
    resid, fitted = res.resid, res.fittedvalues
    assert isinstance(resid, StreamedColumn) and len(resid) == len(data)
    chunks = list(resid.iter_chunks())
    assert len(chunks) > 1
    np.testing.assert_allclose(np.concatenate(chunks), ref.resid, atol=1e-6)
    np.testing.assert_allclose(np.asarray(fitted) + np.asarray(resid), data["y"], atol=1e-10)
    np.testing.assert_allclose(resid.head(3), ref.resid[:3], atol=1e-6)
    assert np.quantile(resid / res.sigma, 0.5) == pytest.approx(
        np.quantile(ref.resid / ref.sigma, 0.5), abs=1e-6
    )
    assert "Scaled residuals" in res.summary()


def test_missing_values_raise_or_drop_like_in_memory(data, tmp_path):
    bad = data.copy()
    bad.loc[[3, 10, 2500], "x"] = np.nan
    bad.loc[[7], "s"] = None
    path = tmp_path / "bad"
    path.mkdir()
    bad.iloc[:2000].to_parquet(path / "0.parquet", write_page_checksum=True)
    bad.iloc[2000:].to_parquet(path / "1.parquet", write_page_checksum=True)
    formula = "y ~ x + s + (1 | a)"
    with pytest.raises(sl.errors.MissingDataError) as streamed:
        sl.lmer(formula, path)
    with pytest.raises(sl.errors.MissingDataError) as memory:
        sl.lmer(formula, bad)
    assert str(streamed.value) == str(memory.value)
    with pytest.warns(UserWarning, match="dropped 4 of 4000 rows"):
        res = sl.lmer(formula, path, missing="drop", chunk_size=700, **TIGHT)
    with pytest.warns(UserWarning, match="dropped 4 of 4000 rows"):
        ref = sl.lmer(formula, bad, missing="drop", **TIGHT)
    assert_same_fit(res, ref)
    assert len(res.resid.to_numpy()) == 3996


def test_redundant_columns_are_dropped_like_in_memory(data, folder):
    formula = "y ~ x + f + I(2 * x) + (1 | a)"
    with pytest.warns(sl.errors.RankDeficiencyWarning, match=r"I\(2 \* x\)") as w_mem:
        ref = sl.lmer(formula, data, **TIGHT)
    with pytest.warns(sl.errors.RankDeficiencyWarning) as w_str:
        res = sl.lmer(formula, folder, chunk_size=800, **TIGHT)
    assert str(w_str[0].message) == str(w_mem[0].message)
    assert_same_fit(res, ref)
    np.testing.assert_allclose(res.resid.to_numpy(), ref.resid, atol=1e-6)


def test_bad_inputs_get_clear_errors(folder):
    with pytest.raises(sl.errors.UnknownColumnError, match="did you mean 'x'"):
        sl.lmer("y ~ xx + (1 | a)", folder)
    with pytest.raises(sl.errors.DataError, match="stateful transforms"):
        sl.lmer("y ~ center(x) + (1 | a)", folder)
    with pytest.raises(sl.errors.DataError, match="column name"):
        sl.lmer("y ~ x + (1 | a)", folder, weights=np.ones(4000))
    with pytest.raises(FileNotFoundError):
        sl.lmer("y ~ x + (1 | a)", folder / "nope")
    with pytest.raises(ValueError, match="chunk_size"):
        sl.lmer("y ~ x + (1 | a)", folder, chunk_size=0)


def test_mixedlm_streams_statsmodels_spelling(data, folder):
    ref = sl.mixedlm("y ~ x + z", data, groups="a", re_formula="~x").fit(**TIGHT)
    res = sl.mixedlm("y ~ x + z", folder, groups="a", re_formula="~x").fit(**TIGHT)
    assert res.llf == pytest.approx(ref.llf, rel=REL)
    np.testing.assert_allclose(res.fe_params.to_numpy(), ref.fe_params.to_numpy(), rtol=REL)
    assert list(res.fe_params.index) == ["Intercept", "x", "z"]
    # a vc_formula without re_formula: no random intercept for the groups, as in statsmodels
    ref_vc = sl.mixedlm("y ~ x", data, groups="b", vc_formula={"s": "0 + C(s)"})
    ref_vc = ref_vc.fit(reml=False, **TIGHT)
    res_vc = sl.mixedlm("y ~ x", folder, groups="b", vc_formula={"s": "0 + C(s)"})
    res_vc = res_vc.fit(reml=False, **TIGHT)
    assert res_vc.llf == pytest.approx(ref_vc.llf, rel=REL)


# ---- Dask ------------------------------------------------------------------------------------


def test_dask_on_a_two_worker_cluster_equals_in_memory(data, client):
    assert len(client.scheduler_info()["workers"]) == 2
    ddf = dd.from_pandas(data, npartitions=6)
    res = sl.lmer(FORMULA, ddf, **TIGHT)
    assert_same_fit(res, in_memory(data))
    fitted = res.fittedvalues.to_dask()  # lazy, one task per partition
    assert isinstance(fitted, dd.Series) and fitted.npartitions == 6
    np.testing.assert_allclose(fitted.compute().to_numpy(), in_memory(data).fittedvalues, atol=1e-6)


def test_dask_partitions_sliced_into_small_chunks(data, client):
    ddf = dd.from_pandas(data, npartitions=3)
    res = sl.lmer(FORMULA, ddf, chunk_size=101, weights="w", offset="off", REML=False, **TIGHT)
    assert_same_fit(res, in_memory(data, weights="w", offset="off", REML=False))


def test_dask_read_parquet_on_the_cluster(data, folder, client):
    res = sl.lmer(FORMULA, dd.read_parquet(str(folder)), **TIGHT)
    assert_same_fit(res, in_memory(data))


def test_dask_mixedlm(data, client):
    ddf = dd.from_pandas(data, npartitions=4)
    ref = sl.mixedlm("y ~ x + z", data, groups="a", re_formula="~x").fit(**TIGHT)
    res = sl.mixedlm("y ~ x + z", ddf, groups="a", re_formula="~x").fit(**TIGHT)
    assert res.llf == pytest.approx(ref.llf, rel=REL)


def test_dask_local_scheduler_without_a_client(data):
    import dask

    ddf = dd.from_pandas(data, npartitions=3)
    with dask.config.set(scheduler="sync"), warnings.catch_warnings():
        warnings.simplefilter("error", sl.errors.ConvergenceWarning)
        res = sl.lmer("y ~ x + f + (1 | a)", ddf, **TIGHT)
    assert_same_fit(res, in_memory(data, "y ~ x + f + (1 | a)"))


def test_statsmodels_spelling_compiles_to_lme4_terms():
    from sparselme.statsmodels_compat.streamed import mixedlm_formula
    from sparselme.streaming import is_streamable

    def cat(v):
        return v == "s"

    assert mixedlm_formula("y ~ x", "g", None, None, cat) == "y ~ x + (1 | g)"
    assert mixedlm_formula("y ~ x", "g", "~x", None, cat) == "y ~ x + (x | g)"
    vc = {"s": "0 + s", "c": "0 + C(c)", "z": "0 + z"}
    assert mixedlm_formula("y ~ x", "g", "1", vc, cat) == (
        "y ~ x + (1 | g) + (1 | g:c) + (1 | g:s) + (0 + z | g)"
    )
    with pytest.raises(NotImplementedError, match="0 \\+ C\\(var\\)"):
        mixedlm_formula("y ~ x", "g", None, {"s": "1 + s"}, cat)
    assert is_streamable("folder") and is_streamable(Path("x.parquet"))
    assert not is_streamable(pd.DataFrame({"a": [1]}))
