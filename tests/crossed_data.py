"""A simulated crossed random-intercepts design (unbalanced, Zipf-like level sizes)."""

from __future__ import annotations

import numpy as np
import pandas as pd

SD = {"a": 0.8, "b": 0.5, "ab": 0.4, "resid": 1.0}
BETA = (1.0, 0.5, -0.3)


def crossed_frame(
    n: int = 20_000, levels_a: int = 300, levels_b: int = 80, seed: int = 1,
    interaction: bool = False,
) -> pd.DataFrame:
    """y = 1 + 0.5 x + −0.3 z + a + b (+ a:b) + e with skewed level frequencies;
    a, b categorical; x a row covariate, z a covariate of b's levels."""
    rng = np.random.default_rng(seed)
    pa = 1.0 / np.arange(1, levels_a + 1) ** 0.6
    pb = 1.0 / np.arange(1, levels_b + 1) ** 0.6
    a = rng.choice(levels_a, n, p=pa / pa.sum())
    b = rng.choice(levels_b, n, p=pb / pb.sum())
    x = rng.standard_normal(n)
    zb = rng.standard_normal(levels_b)
    y = (
        BETA[0] + BETA[1] * x + BETA[2] * zb[b]
        + SD["a"] * rng.standard_normal(levels_a)[a]
        + SD["b"] * rng.standard_normal(levels_b)[b]
        + SD["resid"] * rng.standard_normal(n)
    )
    if interaction:
        cell = a * levels_b + b
        y = y + SD["ab"] * rng.standard_normal(levels_a * levels_b)[cell]
    return pd.DataFrame(
        {"y": y, "x": x, "z": zb[b], "a": pd.Categorical(a), "b": pd.Categorical(b)}
    )
