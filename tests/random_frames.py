"""Small random data frames for checking the engine against dense brute force."""

from __future__ import annotations

import numpy as np
import pandas as pd


def random_frame(rng: np.random.Generator, n: int, n1: int, n2: int) -> pd.DataFrame:
    g1 = np.concatenate([np.arange(n1), rng.integers(0, n1, n - n1)])  # every level used
    g2 = np.concatenate([np.arange(n2), rng.integers(0, n2, n - n2)])
    rng.shuffle(g2)
    return pd.DataFrame(
        {
            "y": rng.normal(size=n) * 3 + 10,
            "x": rng.normal(size=n),
            "g1": pd.Categorical(g1),
            "g2": g2,  # numeric codes: grouping variables are always categorical
            "g3": pd.Categorical(rng.integers(0, 2, n)),
            "f": pd.Categorical(rng.choice(["a", "b"], n)),
        }
    )
