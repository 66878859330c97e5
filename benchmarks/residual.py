"""Residual structures without O(n) work per evaluation: time per evaluation at n and 2n.

Run from the repository root::

    .venv/bin/python -m benchmarks.residual             # default sizes
    .venv/bin/python -m benchmarks.residual --quick     # smaller, for a smoke run

Two workloads, each at n and 2n rows with the *same* random-effects levels (so q and the
pattern of the cross-products are the same):

* ``ar1``: ``y ~ t + (t | g)`` with ``AR1(time="t", group="g")``, G groups of m and 2m
  equally spaced times (some gaps);
* ``varident``: ``y ~ x + (1 | a) + (1 | b)``, a and b fully crossed, with
  ``VarIdent("s")`` over 4 strata.

One evaluation of the profiled deviance at (θ, ρ) combines the stored cross-product
pieces with the coefficients of ρ, refreshes and refactors; the (θ, ρ) cycle through a
set of points around the optimum so every evaluation re-weights. Sizes are timed
interleaved (n, 2n, n, 2n, ...) and the median batch is reported; the ratio 2n/n must
stay within 1.10. For contrast, the time to recompute the cross-products from the rows
(what an evaluation would cost if it touched the data) doubles with n.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import warnings

import numpy as np
import pandas as pd

import sparselme as sl
from sparselme.engine.crossprod import chunk_crossproducts
from sparselme.residual import ResidualModel

LIMIT = 1.10


def ar1_data(groups: int, per_group: int, seed: int = 0) -> pd.DataFrame:
    """G groups with times 1..m (every 7th step of a group dropped: gaps of 2), AR(1) errors."""
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(groups), per_group)
    t = np.tile(np.arange(1, per_group + 1), groups)
    keep = (t == 1) | ((g + t) % 7 != 0)
    g, t = g[keep], t[keep]
    b0, b1 = rng.normal(0, 2, groups), rng.normal(0, 0.3, groups)
    e = rng.normal(size=len(t))
    for i in range(1, len(e)):  # AR(1) within a group, φ = 0.6 (gaps ignored: fine here)
        if g[i] == g[i - 1]:
            e[i] = 0.6 * e[i - 1] + 0.8 * e[i]
    y = 10 + 0.5 * t + b0[g] + b1[g] * t + e
    return pd.DataFrame({"y": y, "t": t, "g": g.astype(str)})


def varident_data(na: int, nb: int, reps: int, seed: int = 1) -> pd.DataFrame:
    """a × b fully crossed, each cell ``reps`` times; residual SD by stratum s (4 levels)."""
    rng = np.random.default_rng(seed)
    a = np.repeat(np.arange(na), nb * reps)
    b = np.tile(np.repeat(np.arange(nb), reps), na)
    n = len(a)
    s = rng.integers(0, 4, n)
    x = rng.normal(size=n)
    y = 1 + x + rng.normal(0, 1, na)[a] + rng.normal(0, 0.5, nb)[b]
    y += rng.normal(size=n) * np.array([1.0, 1.5, 0.7, 2.0])[s]
    return pd.DataFrame(
        {"y": y, "x": x, "a": a.astype(str), "b": b.astype(str), "s": np.array(list("pqrs"))[s]}
    )


WORKLOADS = {
    "ar1": ("y ~ t + (t | g)", lambda: sl.AR1(time="t", group="g")),
    "varident": ("y ~ x + (1 | a) + (1 | b)", lambda: sl.VarIdent("s")),
}


def build(name: str, data: pd.DataFrame) -> tuple[ResidualModel, float]:
    formula, spec = WORKLOADS[name]
    start = time.perf_counter()
    model = ResidualModel.from_formula(formula, data, spec())
    return model, time.perf_counter() - start


def points(model: ResidualModel, count: int = 8, seed: int = 2) -> list[tuple]:
    """(θ, ρ) around a quick optimum: every evaluation changes ρ (real re-weighting)."""
    rng = np.random.default_rng(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = model.fit(check_derivatives=False, ftol_abs=1e-4, xtol_abs=1e-4)
    theta, rho = fit.theta, fit.residual_params.to_numpy()
    out = []
    for _ in range(count):
        th = theta * rng.uniform(0.9, 1.1, len(theta))
        r = rho * rng.uniform(0.95, 1.05, len(rho))
        out.append((th, np.clip(r, -0.99, None)))
    return out


def batch(model: ResidualModel, pts: list[tuple], evals: int) -> float:
    """Seconds per evaluation over ``evals`` evaluations cycling through ``pts``."""
    start = time.perf_counter()
    for i in range(evals):
        th, r = pts[i % len(pts)]
        model.objective_at(th, r, True)
    return (time.perf_counter() - start) / evals


def crossproduct_seconds(model: ResidualModel) -> float:
    """Seconds to recompute the cross-products from the n rows (the O(n) alternative)."""
    d = model.design
    start = time.perf_counter()
    chunk_crossproducts(d.rows, d.X, d.y_minus_offset, None)
    return time.perf_counter() - start


def run(name: str, small: pd.DataFrame, large: pd.DataFrame, evals: int, rounds: int) -> dict:
    models = {}
    for label, data in (("n", small), ("2n", large)):
        model, secs = build(name, data)
        models[label] = (model, points(model), secs)
    q = {k: int(m.pls.q) for k, (m, _, _) in models.items()}
    assert q["n"] == q["2n"], q
    assert models["n"][0].blocks[0].pieces.shape == models["2n"][0].blocks[0].pieces.shape
    times: dict[str, list[float]] = {"n": [], "2n": []}
    for _ in range(rounds):
        for label in ("n", "2n"):
            model, pts, _ = models[label]
            times[label].append(batch(model, pts, evals))
    per_eval = {k: statistics.median(v) for k, v in times.items()}
    return {
        "workload": name,
        "formula": WORKLOADS[name][0],
        "residual": str(WORKLOADS[name][1]()),
        "nobs": {k: m.design.nobs for k, (m, _, _) in models.items()},
        "q": q["n"],
        "pieces": {k: int(m.blocks[0].pieces.shape[0]) for k, (m, _, _) in models.items()},
        "setup_seconds": {k: s for k, (_, _, s) in models.items()},
        "ms_per_evaluation": {k: 1e3 * v for k, v in per_eval.items()},
        "ratio": per_eval["2n"] / per_eval["n"],
        "crossproducts_ms": {k: 1e3 * crossproduct_seconds(m) for k, (m, _, _) in models.items()},
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller sizes (smoke run)")
    ap.add_argument("--rounds", type=int, default=9, help="interleaved batches per size")
    ap.add_argument("--json", help="also write the results to this file")
    args = ap.parse_args(argv)
    if args.quick:
        groups, m, (na, nb, reps), evals = 2_000, 8, (300, 20, 2), 40
    else:
        groups, m, (na, nb, reps), evals = 20_000, 10, (2_000, 50, 2), 30
    rows = [
        run("ar1", ar1_data(groups, m), ar1_data(groups, 2 * m), evals, args.rounds),
        run(
            "varident",
            varident_data(na, nb, reps),
            varident_data(na, nb, 2 * reps),
            evals,
            args.rounds,
        ),
    ]
    print(
        f"{'workload':<10} {'n':>9} {'2n':>9} {'q':>7} {'J':>3} "
        f"{'ms/eval n':>10} {'ms/eval 2n':>11} {'ratio':>6}   {'XᵀWX from rows n → 2n (ms)':>28}"
    )
    ok = True
    for r in rows:
        e, c = r["ms_per_evaluation"], r["crossproducts_ms"]
        ok &= r["ratio"] <= LIMIT
        print(
            f"{r['workload']:<10} {r['nobs']['n']:>9,} {r['nobs']['2n']:>9,} {r['q']:>7,} "
            f"{r['pieces']['n']:>3} {e['n']:>10.2f} {e['2n']:>11.2f} {r['ratio']:>6.3f}   "
            f"{c['n']:>12.0f} → {c['2n']:.0f}"
        )
    print(f"time per evaluation at 2n within {LIMIT:.2f}× of n: {'PASS' if ok else 'FAIL'}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(rows, fh, indent=2)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
