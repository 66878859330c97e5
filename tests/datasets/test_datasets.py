"""Bundled datasets restore R's factor levels and orderedness."""

import pandas as pd
import pytest

from sparselme import datasets


def test_all_ten_datasets_are_bundled():
    assert set(datasets.names()) == {"Dyestuff", "Dyestuff2", "InstEval", "Machines", "Pastes",
                                     "Penicillin", "Sitka", "cake", "dietox", "sleepstudy"}


@pytest.mark.parametrize("name", datasets.names())
def test_columns_follow_their_meta(name):
    df = datasets.load(name)
    info = datasets.meta(name)
    assert len(df) == info["nrow"]
    assert list(df.columns) == [c["name"] for c in info["columns"]]
    for col in info["columns"]:
        s = df[col["name"]]
        if col["type"] in ("factor", "ordered"):
            assert isinstance(s.dtype, pd.CategoricalDtype)
            assert list(s.cat.categories) == col["levels"]
            assert s.cat.ordered == (col["type"] == "ordered")
            assert s.notna().all()
        else:
            assert pd.api.types.is_numeric_dtype(s)


def test_lookup_is_case_insensitive_and_unknown_names_are_reported():
    assert len(datasets.load("INSTEVAL")) == 73421
    with pytest.raises(KeyError, match="bundled datasets"):
        datasets.load("iris")
