"""Simulated rating-like data: two crossed factors with power-law level frequencies.

``y = 2 + 0.5 x1 + 0.3 x2 − 0.2 x3 + a[user] + b[item] + ε`` with ``a ~ N(0, 1)``,
``b ~ N(0, 0.25)``, ``ε ~ N(0, 1)`` (the variances of the ``crossed`` benchmark problem).
``x1`` varies by row, ``x2`` is a user attribute (constant within a level of a) and ``x3``
an item attribute (constant within b), the covariates whose naive OLS standard errors are
far too small.

Level ℓ of a factor is drawn with probability ∝ (ℓ + 1)^(−α) (α_a = 0.5 for users,
α_b = 0.8 for items: Pareto-tailed degrees, a few very active users and very popular
items); every level occurs at least once, and, as in rating data, every (user, item)
cell at most once (``distinct=True``). Deterministic for a given seed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["design", "response", "frame", "write_parquet", "SIGMA2", "BETA"]

SIGMA2 = (1.0, 0.25, 1.0)  # users, items, residual
BETA = (2.0, 0.5, 0.3, -0.2)  # intercept, x1, x2 (user attribute), x3 (item attribute)


def _draw(rng: np.random.Generator, n: int, nlevels: int, alpha: float) -> np.ndarray:
    w = np.arange(1, nlevels + 1, dtype=np.float64) ** -alpha
    cdf = np.cumsum(w / w.sum())
    return np.searchsorted(cdf, rng.random(n), side="right").clip(0, nlevels - 1)


def _levels(rng: np.random.Generator, n: int, nlevels: int, alpha: float) -> np.ndarray:
    codes = _draw(rng, n, nlevels, alpha)
    codes[:nlevels] = rng.permutation(nlevels)  # every level at least once
    return codes


def design(
    n: int,
    levels_a: int,
    levels_b: int,
    alpha_a: float = 0.5,
    alpha_b: float = 0.8,
    seed: int = 20240601,
    distinct: bool = True,
) -> dict[str, np.ndarray]:
    """Codes a (int32), b (int32) and covariates x1, x2, x3 of ``n`` rows."""
    rng = np.random.default_rng(seed)
    a = _levels(rng, n, levels_a, alpha_a)
    b = _levels(rng, n, levels_b, alpha_b)
    if distinct:
        for _ in range(50):
            key = a.astype(np.int64) * levels_b + b
            order = np.argsort(key, kind="stable")  # first occurrences stay first
            repeat = np.zeros(n, dtype=bool)
            repeat[order[1:]] = key[order[1:]] == key[order[:-1]]
            dup = np.flatnonzero(repeat)
            if dup.size == 0:
                break
            a[dup] = _draw(rng, dup.size, levels_a, alpha_a)  # rows < levels_a never repeat
            b[dup] = _draw(rng, dup.size, levels_b, alpha_b)
    order = rng.permutation(n)  # rows in random order (the first ones cover all levels)
    a, b = a[order].astype(np.int32), b[order].astype(np.int32)
    x2 = rng.standard_normal(levels_a)[a]
    x3 = rng.standard_normal(levels_b)[b]
    return {"a": a, "b": b, "x1": rng.standard_normal(n), "x2": x2, "x3": x3}


def response(
    cols: dict[str, np.ndarray],
    levels_a: int,
    levels_b: int,
    seed: int,
    sigma2: tuple[float, float, float] = SIGMA2,
) -> np.ndarray:
    """A response on the design ``cols`` (new random effects and errors per seed)."""
    rng = np.random.default_rng(seed)
    ua = np.sqrt(sigma2[0]) * rng.standard_normal(levels_a)
    ub = np.sqrt(sigma2[1]) * rng.standard_normal(levels_b)
    n = cols["a"].shape[0]
    fixed = BETA[0] + BETA[1] * cols["x1"] + BETA[2] * cols["x2"] + BETA[3] * cols["x3"]
    return fixed + ua[cols["a"]] + ub[cols["b"]] + np.sqrt(sigma2[2]) * rng.standard_normal(n)


def frame(cols: dict[str, np.ndarray], levels_a: int, levels_b: int) -> pd.DataFrame:
    """The data as a DataFrame with categorical a and b (for ``sl.lmer``)."""
    df = pd.DataFrame(cols)
    df["a"] = pd.Categorical.from_codes(df["a"], categories=np.arange(levels_a))
    df["b"] = pd.Categorical.from_codes(df["b"], categories=np.arange(levels_b))
    return df


def write_parquet(
    folder: Path, n: int, levels_a: int, levels_b: int, files: int, seed: int = 7
) -> Path:
    """The design and a response written as ``files`` Parquet files (integer codes)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    cols = design(n, levels_a, levels_b, seed=seed)
    cols["y"] = response(cols, levels_a, levels_b, seed=seed + 1)
    folder.mkdir(parents=True, exist_ok=True)
    for k, idx in enumerate(np.array_split(np.arange(n), files)):
        table = pa.table({name: v[idx[0] : idx[-1] + 1] for name, v in cols.items()})
        pq.write_table(table, folder / f"part-{k:03d}.parquet", row_group_size=1_000_000)
    return folder
