"""Faults a user's storage or cluster produces: the fit reads exactly the data, or stops.

* a corrupted page of a Parquet file written with checksums → `CorruptDataError` naming it;
* a file replaced, appended, added or deleted between the passes → `DataChangedError`
  listing what changed, before any number is computed from mixed data (Parquet folders,
  pyarrow datasets, Dask frames read from Parquet);
* a Dask worker killed during the cross-product reduction → the same fit (no partition is
  lost or counted twice).
"""

from __future__ import annotations

import os
import signal
import threading
import time

import numpy as np
import pandas as pd
import pytest

import sparselme as sl
from sparselme import errors
from sparselme.streaming import levels

pytest.importorskip("pyarrow")
ds = pytest.importorskip("pyarrow.dataset")
dd = pytest.importorskip("dask.dataframe")
dask = pytest.importorskip("dask")
distributed = pytest.importorskip("distributed")

FORMULA = "Reaction ~ Days + (Days | Subject)"


@pytest.fixture
def sleep() -> pd.DataFrame:
    return sl.datasets.load("sleepstudy")


def write_parts(df: pd.DataFrame, folder, parts: int = 3) -> list:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, rows in enumerate(np.array_split(np.arange(len(df)), parts)):
        path = folder / f"part-{i}.parquet"
        df.iloc[rows].to_parquet(path, write_page_checksum=True)
        paths.append(path)
    return paths


def test_a_corrupted_page_raises_naming_the_file(sleep, tmp_path):
    paths = write_parts(sleep, tmp_path / "data")
    raw = bytearray(paths[1].read_bytes())
    raw[100:400] = bytes(300)  # 300 bytes zeroed in the first column's pages
    paths[1].write_bytes(bytes(raw))
    with pytest.raises(errors.CorruptDataError, match="part-1.parquet") as err:
        sl.lmer(FORMULA, tmp_path / "data")
    assert "checksum" in str(err.value) and err.value.path.endswith("part-1.parquet")
    with pytest.raises(errors.CorruptDataError, match="part-1.parquet"):
        sl.lmer(FORMULA, ds.dataset(str(tmp_path / "data"), format="parquet"))
    with pytest.raises(errors.CorruptDataError):
        sl.mixedlm("Reaction ~ Days", tmp_path / "data", groups="Subject")


def change_after_first_pass(monkeypatch, change) -> None:
    """Run ``change()`` between the two passes (after the levels are summed up)."""
    original = levels.coder_of

    def coder_then_change(parsed, summary):
        coder = original(parsed, summary)
        change()
        return coder

    monkeypatch.setattr("sparselme.streaming.passes.coder_of", coder_then_change)


@pytest.mark.parametrize("how", ["replaced", "appended", "deleted", "added"])
def test_a_file_changed_between_passes_raises(sleep, tmp_path, monkeypatch, how):
    folder = tmp_path / "data"
    paths = write_parts(sleep, folder)

    def change():
        if how == "replaced":  # same rows, other values: a new version of the file
            part = pd.read_parquet(paths[0]).assign(Reaction=lambda d: d["Reaction"] + 1)
            time.sleep(0.01)
            part.to_parquet(paths[0], write_page_checksum=True)
        elif how == "appended":
            both = pd.concat([pd.read_parquet(paths[0]), sleep.iloc[:5]])
            both.to_parquet(paths[0], write_page_checksum=True)
        elif how == "deleted":
            paths[2].unlink()
        else:
            sleep.iloc[:7].to_parquet(folder / "late.parquet", write_page_checksum=True)

    change_after_first_pass(monkeypatch, change)
    with pytest.raises(errors.DataChangedError) as err:
        sl.lmer(FORMULA, folder)
    text = str(err.value)
    if how == "deleted":
        assert "part-2.parquet was deleted" in text
    elif how == "added":
        assert "late.parquet was added" in text
    else:
        assert "part-0.parquet changed" in text
    if how == "appended":
        assert "rows 60 → 65" in text


def test_a_dask_frame_read_from_parquet_is_fingerprinted(sleep, tmp_path, monkeypatch):
    paths = write_parts(sleep, tmp_path / "data")
    ddf = dd.read_parquet(str(tmp_path / "data"))

    def change():
        pd.concat([pd.read_parquet(paths[1]), sleep.iloc[:3]]).to_parquet(
            paths[1], write_page_checksum=True
        )

    change_after_first_pass(monkeypatch, change)
    with dask.config.set(scheduler="sync"), pytest.raises(errors.DataChangedError, match="part-1"):
        sl.lmer(FORMULA, ddf)


def test_unchanged_data_read_three_times_is_fine(sleep, tmp_path):
    res = sl.lmer(FORMULA, write_parts(sleep, tmp_path / "data")[0].parent)
    assert len(res.resid.to_numpy()) == 180  # a third pass over the same files


# ---- a worker lost during the reduction ------------------------------------------------------


def many_rows(n: int = 60_000, seed: int = 5) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g = rng.integers(0, 300, n)
    x = rng.normal(size=n)
    y = 1 + 0.5 * x + rng.normal(size=300)[g] + rng.normal(size=n)
    return pd.DataFrame({"y": y, "x": x, "g": g})


def kill_a_worker_in_pass_two(client, killed: dict, stop: threading.Event) -> None:
    """SIGKILL the worker holding a partition's pass-2 summary, once, as soon as one exists."""
    pids = client.run(os.getpid)

    def held(dask_scheduler):
        args = [k for k in dask_scheduler.tasks if str(k).startswith("sparselme-arg-")]
        return len(args), [
            (str(ts.key), ws.address)
            for ws in dask_scheduler.workers.values()
            for ts in ws.has_what
            if str(ts.key).startswith("_reduce_partition")
        ]

    while not stop.is_set():
        n_args, found = client.run_on_scheduler(held)
        if n_args >= 2 and found:  # pass 2 ships the coder and the missing-rows flag
            os.kill(pids[found[0][1]], signal.SIGKILL)
            killed["key"], killed["worker"] = found[0]
            return
        time.sleep(0.005)


@pytest.mark.slow
def test_a_worker_killed_during_the_reduction_changes_nothing():
    data = many_rows()
    ref = sl.lmer("y ~ x + (1 | g)", data)
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
    )
    client = distributed.Client(cluster)
    try:
        ddf = dd.from_pandas(data, npartitions=60).persist()
        distributed.wait(ddf)
        killed: dict = {}
        stop = threading.Event()
        watcher = threading.Thread(target=kill_a_worker_in_pass_two, args=(client, killed, stop))
        watcher.start()
        try:
            res = sl.lmer("y ~ x + (1 | g)", ddf, chunk_size=250)
        finally:
            stop.set()
            watcher.join()
        assert killed, "no worker was killed during the reduction"
        assert res.nobs == ref.nobs == len(data)
        assert res.llf == pytest.approx(ref.llf, rel=1e-9)
        np.testing.assert_allclose(res.fe_params, ref.fe_params, rtol=1e-6)
    finally:
        client.close()
        cluster.close()


def test_a_large_csv_file_changed_between_passes_raises(sleep, tmp_path, monkeypatch):
    from sparselme.data import frames

    path = tmp_path / "sleep.csv"
    sleep.to_csv(path, index=False)
    monkeypatch.setattr(frames, "IN_MEMORY_CSV_BYTES", 100)  # streamed, not read whole

    def change():
        sleep.iloc[:5].to_csv(path, mode="a", header=False, index=False)

    change_after_first_pass(monkeypatch, change)
    with pytest.raises(errors.DataChangedError, match="sleep.csv changed"):
        sl.lmer(FORMULA, path, chunk_size=50)
