"""Any data frame in: polars, pyarrow, the Arrow PyCapsule and interchange protocols, CSV."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import sparselme as sl
from sparselme.data import frames, validation
from sparselme.errors import DataError, DataTypeError, DroppedRowsWarning

pl = pytest.importorskip("polars")
pa = pytest.importorskip("pyarrow")

FORMULA = "Reaction ~ Days + (Days | Subject)"


@pytest.fixture(scope="module")
def sleep() -> pd.DataFrame:
    return sl.datasets.load("sleepstudy")


@pytest.fixture(scope="module")
def reference(sleep):
    return sl.lmer(FORMULA, sleep)


def assert_same(res, ref) -> None:
    assert res.nobs == ref.nobs and res.ngroups == ref.ngroups
    np.testing.assert_allclose(res.fe_params, ref.fe_params, rtol=1e-10)
    np.testing.assert_allclose(res.theta, ref.theta, rtol=1e-8)
    assert list(res.ranef()["Subject"].index) == list(ref.ranef()["Subject"].index)


class ArrowStream:
    """Speaks only the Arrow PyCapsule interface."""

    def __init__(self, table):
        self._table = table

    def __arrow_c_stream__(self, requested_schema=None):
        return self._table.__arrow_c_stream__(requested_schema)


class Interchange:
    """Speaks only the dataframe interchange protocol."""

    def __init__(self, frame: pd.DataFrame):
        self._frame = frame

    def __dataframe__(self, nan_as_null: bool = False, allow_copy: bool = True):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return self._frame.__dataframe__(nan_as_null, allow_copy)


def foreign_frames(sleep: pd.DataFrame) -> dict[str, object]:
    table = pa.Table.from_pandas(sleep)
    return {
        "polars": pl.from_pandas(sleep),
        "polars lazy": pl.from_pandas(sleep).lazy(),
        "pyarrow Table": table,
        "pyarrow RecordBatch": table.combine_chunks().to_batches()[0],
        "PyCapsule": ArrowStream(table),
        "interchange": Interchange(sleep),
    }


def test_every_kind_of_frame_fits_as_pandas_does(sleep, reference):
    for kind, frame in foreign_frames(sleep).items():
        converted = validation.as_data_frame(frame)
        assert isinstance(converted, pd.DataFrame), kind
        assert list(converted.columns) == list(sleep.columns), kind
        assert_same(sl.lmer(FORMULA, frame), reference)


def test_categorical_level_order_survives_conversion(sleep):
    order = list(sleep["Subject"].cat.categories[::-1])
    data = sleep.assign(Subject=sleep["Subject"].cat.reorder_categories(order))
    enum = pl.from_pandas(data).with_columns(pl.col("Subject").cast(pl.Enum(order)))
    for frame in (enum, pa.Table.from_pandas(data)):
        res = sl.lmer(FORMULA, frame)
        assert list(res.ranef()["Subject"].index) == order


def test_statsmodels_api_takes_polars(sleep):
    ref = sl.mixedlm("Reaction ~ Days", sleep, groups="Subject").fit()
    res = sl.mixedlm("Reaction ~ Days", pl.from_pandas(sleep), groups="Subject").fit()
    np.testing.assert_allclose(res.fe_params, ref.fe_params, rtol=1e-10)
    assert res.llf == pytest.approx(ref.llf, rel=1e-12)


def test_a_table_is_converted_and_a_dataset_streams(sleep):
    ds = pytest.importorskip("pyarrow.dataset")
    table = pa.Table.from_pandas(sleep)
    assert not validation.is_streamable(table)
    assert not validation.is_streamable(table.to_batches()[0])
    assert validation.is_streamable(ds.dataset(table))


def test_unknown_inputs_say_what_is_accepted():
    with pytest.raises(DataTypeError, match="polars, pyarrow.*not list"):
        validation.as_data_frame([1, 2, 3])
    assert frames.to_pandas(object()) is None


def test_small_csv_is_read_into_memory(sleep, reference, tmp_path):
    path = tmp_path / "sleep.csv"
    sleep.to_csv(path, index=False)
    assert not validation.is_streamable(path) and not validation.is_streamable(str(path))
    res = sl.lmer(FORMULA, str(path))
    assert_same(res, reference)
    assert isinstance(res.resid, pd.Series)  # in memory: residuals per row, on the index
    tsv = tmp_path / "sleep.tsv.gz"
    sleep.to_csv(tsv, sep="\t", index=False)
    assert_same(sl.lmer(FORMULA, tsv), reference)
    ref = sl.mixedlm("Reaction ~ Days", sleep, groups="Subject").fit()
    res = sl.mixedlm("Reaction ~ Days", path, groups="Subject").fit()
    np.testing.assert_allclose(res.fe_params, ref.fe_params, rtol=1e-10)


def test_large_csv_streams_in_chunks(sleep, reference, tmp_path, monkeypatch):
    from sparselme.streaming import StreamedColumn

    path = tmp_path / "sleep.csv"
    data = sleep.assign(Subject=sleep["Subject"].astype(int))
    data.to_csv(path, index=False)
    monkeypatch.setattr(frames, "IN_MEMORY_CSV_BYTES", 100)
    assert validation.is_streamable(path)
    res = sl.lmer(FORMULA, path, chunk_size=37)
    assert isinstance(res.resid, StreamedColumn)
    np.testing.assert_allclose(res.fe_params, reference.fe_params, rtol=1e-6)
    assert res.llf == pytest.approx(reference.llf, rel=1e-9)
    # integer labels read as float64 in chunks are still labelled 308, ...
    assert list(res.ranef()["Subject"].index) == list(reference.ranef()["Subject"].index)


def test_a_csv_whose_types_change_midway_names_the_file(tmp_path, monkeypatch):
    path = tmp_path / "bad.csv"
    rows = [f"{i % 7},{i % 5},{i % 3}" for i in range(200_000)] + ["oops,1,2"]
    path.write_text("y,x,g\n" + "\n".join(rows) + "\n")
    monkeypatch.setattr(frames, "IN_MEMORY_CSV_BYTES", 100)
    with pytest.raises(DataError, match="bad.csv.*in chunks"):
        sl.lmer("y ~ x + (1 | g)", path)


def test_missing_csv_file_is_reported(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such CSV file"):
        sl.lmer(FORMULA, tmp_path / "none.csv")


def test_integer_labels_stay_integers(sleep):
    data = sleep.assign(Subject=sleep["Subject"].astype(int).astype(float))
    data.loc[0, "Reaction"] = np.nan
    with pytest.warns(DroppedRowsWarning, match="dropped 1 of 180"):
        res = sl.lmer(FORMULA, data, missing="drop")
    assert list(res.ranef()["Subject"].index[:2]) == ["308", "309"]
    # predictions on the same float column find those levels
    kept = data.dropna()
    np.testing.assert_allclose(res.predict(kept), res.fittedvalues, rtol=1e-10)
    labels = frames.level_labels(pd.Index([308.0, 308.5, np.nan]))
    assert list(labels) == ["308", "308.5", "nan"]
    cat = pd.Series(pd.Categorical([2.0, np.nan, 1.0]))
    assert list(frames.level_labels(cat)) == ["2", "nan", "1"]
