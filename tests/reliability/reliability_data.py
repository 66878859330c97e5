"""Small data with every column type, and a guard that turns warnings into errors."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pandas as pd


def make_frame(n: int = 60, seed: int = 0, groups: int = 6) -> pd.DataFrame:
    """y, x, a grouping factor g (groups levels), a crossed factor h, a category f, text s."""
    rng = np.random.default_rng(seed)
    g = np.arange(n) % groups
    h = rng.integers(0, 5, n)
    x = rng.normal(size=n)
    y = 1.0 + 0.5 * x + rng.normal(size=groups)[g] + 0.5 * rng.normal(size=5)[h]
    y = y + rng.normal(scale=0.7, size=n)
    return pd.DataFrame(
        {
            "y": y,
            "x": x,
            "g": [f"g{i}" for i in g],
            "h": h,
            "f": pd.Categorical(rng.choice(["lo", "mid", "hi"], n), ["lo", "mid", "hi"]),
            "s": rng.choice(["u", "v"], n),
        }
    )


@contextmanager
def no_warnings() -> Iterator[None]:
    """Every warning inside becomes an error."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield
