"""The input checks are the same for a DataFrame, a Parquet folder and a Dask DataFrame.

Every case runs through `sl.lmer` (and, where statsmodels' spelling applies, `sl.mixedlm`)
on the three kinds of input and must raise the same error with the same message, or warn
the same warning with the same message. Dask runs on its local synchronous scheduler here
(the cluster is exercised in test_streaming.py).
"""

from __future__ import annotations

import re
import warnings

import numpy as np
import pandas as pd
import pytest

import sparselme as sl
from sparselme import errors

pytest.importorskip("pyarrow")
dd = pytest.importorskip("dask.dataframe")
dask = pytest.importorskip("dask")

KINDS = ["frame", "parquet", "dask"]


def base_data(n: int = 240, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g = rng.integers(0, 12, n)
    h = rng.integers(0, 5, n)
    x = rng.normal(size=n)
    y = 1.0 + 0.5 * x + rng.normal(size=12)[g] + rng.normal(size=n)
    return pd.DataFrame(
        {
            "y": y,
            "x": x,
            "z": rng.uniform(-1, 1, n),
            "f": rng.choice(["lo", "mid", "hi"], n),
            "g": [f"g{i:02d}" for i in g],
            "h": h,
            "w": rng.uniform(0.5, 2.0, n),
        }
    )


def as_input(kind: str, df: pd.DataFrame, tmp_path):
    """``df`` as the given kind of input: itself, a folder of 3 Parquet files, a Dask frame."""
    if kind == "frame":
        return df
    if kind == "dask":
        return dd.from_pandas(df, npartitions=3)
    folder = tmp_path / "data"
    folder.mkdir(parents=True, exist_ok=True)
    for i, part in enumerate(np.array_split(np.arange(len(df)), 3)):
        df.iloc[part].to_parquet(folder / f"part-{i}.parquet", write_page_checksum=True)
    return folder


@pytest.fixture(autouse=True)
def _local_dask():
    with dask.config.set(scheduler="sync"):
        yield


def outcome(fn):
    """(exception type, message) or (None, [(warning class, message), ...]) of fn()."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            fn()
        except errors.SparselmeError as exc:  # the dtype's name depends on the reader
            return type(exc), re.sub(r" \(dtype [^)]*\)", "", str(exc))
    shown = [
        (w.category, str(w.message))
        for w in caught
        if issubclass(
            w.category,
            (errors.DroppedRowsWarning, errors.RankDeficiencyWarning, errors.ScaleWarning),
        )
    ]
    return None, shown


def same_everywhere(tmp_path, df, fit, expect):
    """fit(data) gives the same outcome for the three kinds, and it is ``expect``."""
    results = {}
    for kind in KINDS:
        data = as_input(kind, df, tmp_path / kind)
        results[kind] = outcome(lambda d=data: fit(d))
    assert results["parquet"] == results["frame"], results
    assert results["dask"] == results["frame"], results
    kind, detail = results["frame"]
    if isinstance(expect, type) and issubclass(expect, Exception):
        assert kind is expect, results["frame"]
    else:
        assert kind is None, results["frame"]
        assert [c for c, _ in detail] == expect, detail
    return results["frame"]


def lmer(formula, **kw):
    return lambda d: sl.lmer(formula, d, **kw)


def test_unknown_column(tmp_path):
    kind, msg = same_everywhere(
        tmp_path, base_data(), lmer("y ~ xx + (1 | g)"), errors.UnknownColumnError
    )
    assert "did you mean 'x'" in msg


def test_text_response_and_date_predictor(tmp_path):
    df = base_data()
    same_everywhere(tmp_path, df, lmer("f ~ x + (1 | g)"), errors.DataError)
    df["d"] = pd.Timestamp("2024-01-01") + pd.to_timedelta(np.arange(len(df)), unit="D")
    kind, msg = same_everywhere(tmp_path, df, lmer("y ~ d + (1 | g)"), errors.DataError)
    assert "dates or times" in msg


def test_missing_values_raise_and_drop_with_counts(tmp_path):
    df = base_data()
    df.loc[[3, 50, 100], "x"] = np.nan
    df.loc[[7], "g"] = None
    kind, msg = same_everywhere(tmp_path, df, lmer("y ~ x + (1 | g)"), errors.MissingDataError)
    assert "4 of 240 rows" in msg and "x (3)" in msg and "g (1)" in msg
    _, shown = same_everywhere(
        tmp_path, df, lmer("y ~ x + (1 | g)", missing="drop"), [errors.DroppedRowsWarning]
    )
    assert "dropped 4 of 240 rows" in shown[0][1]


def test_mixedlm_missing_values(tmp_path):
    df = base_data()
    df.loc[[3, 50], "x"] = np.nan

    def fit(d, missing="none"):
        return sl.mixedlm("y ~ x", d, groups="g", missing=missing).fit()

    same_everywhere(tmp_path, df, fit, errors.MissingDataError)
    same_everywhere(tmp_path, df, lambda d: fit(d, "drop"), [errors.DroppedRowsWarning])


def test_weights_negative_and_zero(tmp_path):
    df = base_data()
    df.loc[5, "w"] = -1.0
    kind, msg = same_everywhere(
        tmp_path, df, lmer("y ~ x + (1 | g)", weights="w"), errors.DataError
    )
    assert "non-negative" in msg
    df.loc[5, "w"] = 0.0
    df.loc[9, "w"] = 0.0
    _, shown = same_everywhere(
        tmp_path, df, lmer("y ~ x + (1 | g)", weights="w"), [errors.DroppedRowsWarning]
    )
    assert "dropped 2 of 240 rows with weight 0" in shown[0][1]


def test_magnitudes(tmp_path):
    df = base_data()
    df["x"] = df["x"] * 1e200
    kind, msg = same_everywhere(tmp_path, df, lmer("y ~ x + (1 | g)"), errors.DataError)
    assert "magnitude" in msg


def test_redundant_fixed_columns_and_offsets(tmp_path):
    df = base_data()
    df["x2"] = 2 * df["x"]
    df["big"] = df["x"] + 1e9  # not a constant: centred, it varies
    _, shown = same_everywhere(
        tmp_path, df, lmer("y ~ x + x2 + big + (1 | g)"), [errors.RankDeficiencyWarning]
    )
    assert "dropping 2 columns: x2, big" in shown[0][1]


def test_exact_fit(tmp_path):
    df = base_data()
    df["y"] = 2 + 3 * df["x"]
    kind, msg = same_everywhere(tmp_path, df, lmer("y ~ x + (1 | g)"), errors.DataError)
    assert "fitted exactly" in msg


def test_one_level_and_too_many_levels(tmp_path):
    df = base_data()
    df["one"] = "only"
    same_everywhere(tmp_path, df, lmer("y ~ x + (1 | one)"), errors.IdentifiabilityError)
    same_everywhere(
        tmp_path,
        df,
        lambda d: sl.mixedlm("y ~ x", d, groups="one").fit(),
        errors.IdentifiabilityError,
    )
    df["row"] = np.arange(len(df))
    kind, msg = same_everywhere(
        tmp_path, df, lmer("y ~ x + (1 | row)"), errors.IdentifiabilityError
    )
    assert "number of observations" in msg


def test_random_effects_columns(tmp_path):
    df = base_data()
    df["x2"] = 2 * df["x"]
    same_everywhere(tmp_path, df, lmer("y ~ x + (x + x2 | g)"), errors.IdentifiabilityError)
    df["wide"] = df["z"] * 1e5
    _, shown = same_everywhere(
        tmp_path, df, lmer("y ~ x + (1 | g) + (0 + wide | g)"), [errors.ScaleWarning]
    )
    assert "'wide'" in shown[0][1]


def test_terms_that_cannot_be_told_apart(tmp_path):
    kind, msg = same_everywhere(
        tmp_path, base_data(), lmer("y ~ x + (1 | g) + (1 | g)"), errors.IdentifiabilityError
    )
    assert "appears twice" in msg


def test_non_finite_after_evaluating_the_formula(tmp_path):
    df = base_data()
    df.loc[[4, 8], "z"] = -1.0
    same_everywhere(tmp_path, df, lmer("y ~ np.log(z + 1) + (1 | g)"), errors.MissingDataError)


@pytest.mark.parametrize("kind", ["parquet", "dask"])
def test_stateful_transforms_are_refused_when_streamed(tmp_path, kind):
    data = as_input(kind, base_data(), tmp_path)
    with pytest.raises(errors.StatefulTransformError, match="center"):
        sl.lmer("y ~ center(x) + (1 | g)", data)
    sl.lmer("y ~ center(x) + (1 | g)", base_data())  # learned from the data in memory


@pytest.mark.parametrize("kind", ["parquet", "dask"])
def test_r_transforms_and_formula_offsets_when_streamed(tmp_path, kind):
    data = as_input(kind, base_data(), tmp_path)
    with pytest.raises(errors.StatefulTransformError, match="poly"):
        sl.lmer("y ~ poly(x, 2) + (1 | g)", data)  # R's basis, learned from all rows
    with pytest.raises(errors.DataError, match="offset as a column"):
        sl.lmer("y ~ x + offset(z) + (1 | g)", data)
    # R's functions without state stream, and give the in-memory fit
    ref = sl.lmer("y ~ log(x + 5) + (1 | g)", base_data())
    res = sl.lmer("y ~ log(x + 5) + (1 | g)", data)
    np.testing.assert_allclose(res.fe_params, ref.fe_params, rtol=1e-8)
