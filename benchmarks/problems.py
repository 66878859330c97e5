"""The benchmark problems: one registry, each problem with its data, lme4 formula and spellings.

Every data builder is deterministic (fixed seeds) and takes its sizes as keyword arguments,
so the smoke test can build the same problem at a tiny size (``Problem.make_data(tiny=True)``).
Factors are pandas Categoricals whose category order is the R level order; the lme4 adapter
hands R the same order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["Problem", "StatsmodelsSpec", "PROBLEMS", "get", "names"]


@dataclass(frozen=True)
class StatsmodelsSpec:
    """How ``statsmodels.MixedLM.from_formula`` spells the model."""

    formula: str
    groups: str  # a column name, or "" for one group spanning all rows (crossed designs)
    re_formula: str | None = None
    vc_formula: dict[str, str] | None = None


@dataclass(frozen=True)
class Problem:
    name: str
    description: str
    formula: str  # lme4 spelling, also what sparselme.lmer takes
    build: Callable[..., pd.DataFrame]
    params: dict = field(default_factory=dict)
    tiny_params: dict = field(default_factory=dict)
    reml: bool = True
    reps: int = 3
    statsmodels: StatsmodelsSpec | None = None
    statsmodels_skip: str = ""  # why statsmodels is not attempted (known hopeless / no spelling)
    pending: str = ""  # set when the problem cannot run yet; the runner skips it cleanly
    pair: str = ""  # problems sharing a pair name form the flat-in-n per-evaluation report
    streamed: bool = False  # the data are a Parquet folder, read in chunks (sparselme only)
    title: str = ""  # what the docs page calls the workload
    warm: bool = False  # timed after one untimed fit in the same process
    competitor: bool = False  # a CPU-bound process runs beside the timed fit (sparselme only)
    optional: bool = False  # too long for the default run: runs only when named (--problems)
    lme4_skip: str = ""  # why lme4 is not attempted (a model lme4 1.1 cannot write)
    glmmtmb: bool = False  # glmmTMB fits this formula too (structured covariances)

    def make_data(self, tiny: bool = False) -> pd.DataFrame | Path:
        if self.pending:
            raise RuntimeError(f"{self.name} is pending: {self.pending}")
        return self.build(**(self.tiny_params if tiny else self.params))


# ---------------------------------------------------------------------------- data builders


def bundled(name: str) -> pd.DataFrame:
    """A dataset shipped with sparselme (R's factor level order restored)."""
    from sparselme import datasets

    return datasets.load(name)


def _factor(codes: np.ndarray, nlevels: int, prefix: str) -> pd.Categorical:
    width = len(str(nlevels))
    categories = [f"{prefix}{i:0{width}d}" for i in range(1, nlevels + 1)]
    return pd.Categorical.from_codes(codes, categories=categories)


def _balanced_codes(rng: np.random.Generator, n: int, nlevels: int) -> np.ndarray:
    """Every level at least once (n >= nlevels), in random order."""
    return rng.permutation(np.arange(n) % nlevels).astype(np.int32)


def group_slopes(groups: int, per_group: int, seed: int = 20240501) -> pd.DataFrame:
    """``y ~ x + (x|g)``: ``groups`` groups of ``per_group`` rows, correlated intercept/slope."""
    rng = np.random.default_rng(seed)
    n = groups * per_group
    g = np.repeat(np.arange(groups, dtype=np.int32), per_group)
    x = rng.uniform(0.0, 10.0, n)
    cov = np.array([[4.0, 0.3], [0.3, 0.25]])
    b = rng.multivariate_normal([0.0, 0.0], cov, size=groups)
    y = 10.0 + 1.5 * x + b[g, 0] + b[g, 1] * x + rng.normal(0.0, 2.0, n)
    return pd.DataFrame({"y": y, "x": x, "g": _factor(g, groups, "g")})


def crossed(n: int, levels_a: int, levels_b: int, seed: int = 20240502) -> pd.DataFrame:
    """``y ~ x + (1|a) + (1|b)``: two crossed factors, every level present, random pairing."""
    rng = np.random.default_rng(seed)
    a = _balanced_codes(rng, n, levels_a)
    b = _balanced_codes(rng, n, levels_b)
    x = rng.normal(0.0, 1.0, n)
    ua = rng.normal(0.0, 1.0, levels_a)
    ub = rng.normal(0.0, 0.5, levels_b)
    y = 2.0 + 0.5 * x + ua[a] + ub[b] + rng.normal(0.0, 1.0, n)
    return pd.DataFrame(
        {"y": y, "x": x, "a": _factor(a, levels_a, "a"), "b": _factor(b, levels_b, "b")}
    )


def occasions_ar1(groups: int, occasions: int, seed: int = 20240520) -> pd.DataFrame:
    """``y ~ x + ar1(0 + occ | g)``: each group once at every occasion, an AR(1) group
    effect over the occasions (sd 1, ρ 0.6) and residual sd 0.5."""
    rng = np.random.default_rng(seed)
    rho = 0.6
    e = rng.normal(size=(groups, occasions))
    u = np.empty_like(e)
    u[:, 0] = e[:, 0]
    for t in range(1, occasions):
        u[:, t] = rho * u[:, t - 1] + np.sqrt(1 - rho**2) * e[:, t]
    n = groups * occasions
    g = np.repeat(np.arange(groups, dtype=np.int32), occasions)
    occ = np.tile(np.arange(occasions, dtype=np.int32), groups)
    x = rng.normal(0.0, 1.0, n)
    y = 2.0 + 0.5 * x + u.ravel() + rng.normal(0.0, 0.5, n)
    return pd.DataFrame(
        {"y": y, "x": x, "occ": _factor(occ, occasions, "t"), "g": _factor(g, groups, "g")}
    )


def parquet_crossed(rows: int, levels_a: int, levels_b: int, files: int) -> Path:
    """The streaming benchmark's Parquet folder (written once, then reused): its path."""
    import tempfile

    from .streaming import write_data

    folder = Path(tempfile.gettempdir()) / f"sparselme-streaming-{rows}-{levels_a}-{levels_b}"
    write_data(folder, rows, levels_a, levels_b, files)
    return folder


# ---------------------------------------------------------------------------- the registry

_CROSSED_SM_SKIP = "hopeless: crossed factors need one all-rows group (dense n × q blocks)"

_CROSSED_SM = StatsmodelsSpec("y ~ x", groups="", vc_formula={"a": "0 + C(a)", "b": "0 + C(b)"})

_FLAT_LEVELS = {"levels_a": 2_000, "levels_b": 500}
_FLAT_TINY = {"n": 2_000, "levels_a": 200, "levels_b": 50}

_INSTEVAL = Problem(
    name="insteval",
    title="InstEval: students rating lecturers, crossed",
    description="InstEval, y ~ service*dept + (1|s) + (1|d), REML (73,421 rows, q = 4,100)",
    formula="y ~ service*dept + (1|s) + (1|d)",
    build=bundled,
    params={"name": "InstEval"},
    tiny_params={"name": "InstEval"},
    reps=9,
    warm=True,
    statsmodels=StatsmodelsSpec(
        "y ~ service*dept", groups="", vc_formula={"s": "0 + C(s)", "d": "0 + C(d)"}
    ),
    statsmodels_skip=_CROSSED_SM_SKIP,
)

_REGISTRY: list[Problem] = [
    _INSTEVAL,
    replace(
        _INSTEVAL,
        name="insteval_busy",
        title="InstEval beside a CPU-bound process",
        description="InstEval as above, with one CPU-bound process running beside the fit",
        statsmodels=None,
        statsmodels_skip="",
        competitor=True,
    ),
    Problem(
        name="sleepstudy",
        title="sleepstudy: random intercept and slope, small",
        description="sleepstudy, Reaction ~ Days + (Days|Subject), REML (180 rows)",
        formula="Reaction ~ Days + (Days|Subject)",
        build=bundled,
        params={"name": "sleepstudy"},
        tiny_params={"name": "sleepstudy"},
        warm=True,
        statsmodels=StatsmodelsSpec("Reaction ~ Days", groups="Subject", re_formula="~Days"),
    ),
    Problem(
        name="dietox",
        title="dietox: random intercept and slope, small",
        description="dietox, Weight ~ Time + (Time|Pig), REML (861 rows)",
        formula="Weight ~ Time + (Time|Pig)",
        build=bundled,
        params={"name": "dietox"},
        tiny_params={"name": "dietox"},
        warm=True,
        statsmodels=StatsmodelsSpec("Weight ~ Time", groups="Pig", re_formula="~Time"),
    ),
    Problem(
        name="slopes_100k",
        title="Random slopes in 100,000 groups",
        description="simulated, y ~ x + (x|g), 100,000 groups x 10 rows, REML",
        formula="y ~ x + (x|g)",
        build=group_slopes,
        params={"groups": 100_000, "per_group": 10},
        tiny_params={"groups": 50, "per_group": 10},
        reps=1,
        statsmodels=StatsmodelsSpec("y ~ x", groups="g", re_formula="~x"),
    ),
    Problem(
        name="crossed_1m",
        title="Crossed factors, 1 million rows",
        description="simulated, y ~ x + (1|a) + (1|b), 1,000,000 rows, 50,000 x 5,000 levels, REML",
        formula="y ~ x + (1|a) + (1|b)",
        build=crossed,
        params={"n": 1_000_000, "levels_a": 50_000, "levels_b": 5_000},
        tiny_params={"n": 3_000, "levels_a": 300, "levels_b": 40},
        reps=1,
        statsmodels=_CROSSED_SM,
        statsmodels_skip=_CROSSED_SM_SKIP,
    ),
    Problem(
        name="flat_200k",
        title="Crossed factors, 200,000 rows",
        description="simulated, y ~ x + (1|a) + (1|b), 200,000 rows, 2,000 x 500 levels, REML",
        formula="y ~ x + (1|a) + (1|b)",
        build=crossed,
        params={"n": 200_000, **_FLAT_LEVELS},
        tiny_params=_FLAT_TINY,
        statsmodels=_CROSSED_SM,
        statsmodels_skip=_CROSSED_SM_SKIP,
        pair="flat",
    ),
    Problem(
        name="flat_400k",
        title="Crossed factors, 400,000 rows",
        description="simulated, y ~ x + (1|a) + (1|b), 400,000 rows, 2,000 x 500 levels, REML",
        formula="y ~ x + (1|a) + (1|b)",
        build=crossed,
        params={"n": 400_000, **_FLAT_LEVELS},
        tiny_params={**_FLAT_TINY, "n": 2 * _FLAT_TINY["n"]},
        statsmodels=_CROSSED_SM,
        statsmodels_skip=_CROSSED_SM_SKIP,
        pair="flat",
    ),
    Problem(
        name="parquet_10m",
        title="10 million rows streamed from Parquet",
        description="simulated, y ~ x1 + x2 + x3 + (1|a) + (1|b), 10,000,000 rows, "
        "100,000 x 10,000 levels, streamed from a Parquet folder, REML",
        formula="y ~ x1 + x2 + x3 + (1 | a) + (1 | b)",
        build=parquet_crossed,
        params={"rows": 10_000_000, "levels_a": 100_000, "levels_b": 10_000, "files": 10},
        tiny_params={"rows": 30_000, "levels_a": 1_000, "levels_b": 100, "files": 2},
        reps=1,
        streamed=True,
    ),
]

_REGISTRY.append(
    Problem(
        name="ar1_100k",
        title="AR(1) random effects in 100,000 groups",
        description="simulated, y ~ x + ar1(0 + occ | g), 100,000 groups x 5 occasions, "
        "REML (optional: python -m benchmarks --problems ar1_100k)",
        formula="y ~ x + ar1(0 + occ | g)",
        build=occasions_ar1,
        params={"groups": 100_000, "occasions": 5},
        tiny_params={"groups": 200, "occasions": 5},
        reps=1,
        statsmodels_skip="statsmodels' MixedLM has no covariance structures",
        lme4_skip="lme4 1.1 has no covariance structures (lme4 2.0 has)",
        glmmtmb=True,
        optional=True,
    )
)

PROBLEMS: dict[str, Problem] = {p.name: p for p in _REGISTRY}


def names() -> list[str]:
    return list(PROBLEMS)


def get(name: str) -> Problem:
    try:
        return PROBLEMS[name]
    except KeyError:
        raise KeyError(f"unknown problem {name!r}; known: {', '.join(PROBLEMS)}") from None
