"""Bundled public datasets with R's column types and factor level orders restored.

``load(name)`` returns a DataFrame whose factors are pandas Categoricals in the level
order R used (ordered where R's factor was ordered), so that treatment and polynomial
contrasts code them exactly as lme4 does.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources

import pandas as pd

__all__ = ["load", "names", "meta"]

_DATA = resources.files(__package__) / "data"


def names() -> list[str]:
    """Names of the bundled datasets."""
    return sorted(
        p.name[: -len(".meta.json")] for p in _DATA.iterdir() if p.name.endswith(".meta.json")
    )


def _resolve(name: str) -> str:
    lookup = {n.lower(): n for n in names()}
    try:
        return lookup[name.lower()]
    except KeyError:
        raise KeyError(
            f"unknown dataset {name!r}; bundled datasets: {', '.join(names())}"
        ) from None


@cache
def meta(name: str) -> dict:
    """The dataset's column description: type per column and R's factor levels."""
    name = _resolve(name)
    return json.loads((_DATA / f"{name}.meta.json").read_text())


def load(name: str) -> pd.DataFrame:
    """Load a bundled dataset (case-insensitive name), e.g. ``load("sleepstudy")``."""
    name = _resolve(name)
    info = meta(name)
    dtypes = {c["name"]: str for c in info["columns"] if c["type"] in ("factor", "ordered")}
    with (_DATA / f"{name}.csv.gz").open("rb") as fh:
        df = pd.read_csv(fh, compression="gzip", dtype=dtypes)
    for col in info["columns"]:
        if col["type"] in ("factor", "ordered"):
            df[col["name"]] = pd.Categorical(
                df[col["name"]], categories=col["levels"], ordered=col["type"] == "ordered"
            )
    return df
