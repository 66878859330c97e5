"""``python -m benchmarks.moments_accuracy``: the moment fit against exact REML, and coverage.

**Accuracy** (``accuracy``): on crossed designs where exact REML is feasible (1,000,000
rows, 50,000 × 5,000 levels), fit ``y ~ x... + (1|a) + (1|b)`` by
:func:`sparselme.moments.fit_moments` and by ``sl.lmer`` (REML), on

* ``uniform``: the ``crossed_1m`` benchmark problem's generator (:mod:`benchmarks.problems`,
  every level equally likely, repeated cells possible), one covariate;
* ``powerlaw``: :mod:`benchmarks.crossed_powerlaw` (power-law level frequencies, distinct
  cells, a row, a user and an item covariate),

for several response seeds. Reported per fit: each variance component's relative
difference to REML, ``|β_moments − β_REML| / SE_REML``, the ratio of the standard errors
(moments / REML, and naive OLS / REML) and the times. Targets (issue 21): components
within 5 %, β within 0.2 SE, standard errors within 15 %.

**Coverage** (``coverage``): R replicates of a response on one smaller power-law design;
the share of 95 % intervals β̂ ± 1.96 SE that contain the true β, for the moment/GLS fit,
naive OLS and (``--reml``) REML, and of the intervals σ̂² ± 1.96 SE for the components.

Results go to ``benchmarks/out/moments_<what>.json`` and a markdown table on stdout.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np

from . import crossed_powerlaw as cp
from .problems import crossed

OUT = Path(__file__).resolve().parent / "out"
TARGETS = {"components": 0.05, "beta_in_se": 0.2, "se_ratio": 0.15}


def _uniform(n: int, la: int, lb: int, seed: int) -> tuple[dict, list[str]]:
    df = crossed(n, la, lb, seed=20240502 + seed)
    cols = {"a": df["a"].cat.codes.to_numpy(), "b": df["b"].cat.codes.to_numpy()}
    cols.update(x=df["x"].to_numpy(), y=df["y"].to_numpy())
    return cols, ["x"]


def _powerlaw(n: int, la: int, lb: int, seed: int, design_cache: dict) -> tuple[dict, list]:
    key = (n, la, lb)
    if key not in design_cache:
        design_cache[key] = cp.design(n, la, lb)
    cols = dict(design_cache[key])
    cols["y"] = cp.response(cols, la, lb, seed=seed)
    return cols, ["x1", "x2", "x3"]


def _moments(cols: dict, x: list[str], reps: int, **kw):
    from sparselme.moments import fit_moments, in_memory, layout_for

    lay = layout_for(cols, ["a", "b"], x=x)
    t0 = time.perf_counter()
    fit = fit_moments(in_memory(cols), lay, variance_reps=reps, **kw)
    return fit, time.perf_counter() - t0


def _reml(cols: dict, x: list[str], la: int, lb: int):
    import sparselme as sl

    df = cp.frame({k: cols[k] for k in ["a", "b", *x, "y"]}, la, lb)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = sl.lmer(f"y ~ {' + '.join(x)} + (1|a) + (1|b)", df)
    seconds = time.perf_counter() - t0
    vc = res.varcorr.set_index("grp")["vcov"]
    return {
        "sigma2": [float(vc["a"]), float(vc["b"]), float(vc["Residual"])],
        "beta": res.fe_params.to_numpy().tolist(),
        "se": res.bse_fe.to_numpy().tolist(),
        "seconds": seconds,
    }


def accuracy(args) -> list[dict]:
    rows = []
    cache: dict = {}
    n, la, lb = args.rows, args.levels_a, args.levels_b
    for design in args.designs:
        for seed in range(1, args.seeds + 1):
            if design == "uniform":
                cols, x = _uniform(n, la, lb, seed)
            else:
                cols, x = _powerlaw(n, la, lb, seed, cache)
            fit, secs = _moments(cols, x, args.reps, seed=seed)
            reml = _reml(cols, x, la, lb)
            s_r, b_r, se_r = (np.array(reml[k]) for k in ("sigma2", "beta", "se"))
            rows.append(
                {
                    "design": design,
                    "seed": seed,
                    "names": list(fit.x_names),
                    "sigma2_moments": fit.sigma2.tolist(),
                    "sigma2_se_moments": fit.sigma2_se.tolist(),
                    "sigma2_reml": s_r.tolist(),
                    "sigma2_rel_diff": (fit.sigma2 / s_r - 1).tolist(),
                    "gao_owen_rel_diff": (fit.sigma2_gao_owen / s_r - 1).tolist(),
                    "beta_diff_in_se": (np.abs(fit.beta - b_r) / se_r).tolist(),
                    "se_ratio": (fit.bse / se_r).tolist(),
                    "ols_se_ratio": (fit.bse_ols / se_r).tolist(),
                    "moments_seconds": secs,
                    "moments_passes": fit.passes,
                    "gls_iterations": fit.iterations,
                    "reml_seconds": reml["seconds"],
                }
            )
            print(json.dumps(rows[-1]), flush=True)
    return rows


def coverage(args) -> dict:
    n, la, lb = args.rows, args.levels_a, args.levels_b
    cols = cp.design(n, la, lb)
    truth_b = np.array(cp.BETA)
    truth_s = np.array(cp.SIGMA2)
    hits = {"moments": [], "ols": [], "reml": [], "sigma2": []}
    widths = {"moments": [], "ols": []}
    for rep in range(args.replicates):
        cols["y"] = cp.response(cols, la, lb, seed=10_000 + rep)
        fit, _ = _moments(cols, ["x1", "x2", "x3"], args.reps, seed=rep)
        hits["moments"].append(np.abs(fit.beta - truth_b) <= 1.96 * fit.bse)
        hits["ols"].append(np.abs(fit.beta_ols - truth_b) <= 1.96 * fit.bse_ols)
        hits["sigma2"].append(np.abs(fit.sigma2_raw - truth_s) <= 1.96 * fit.sigma2_se)
        widths["moments"].append(fit.bse)
        widths["ols"].append(fit.bse_ols)
        if args.reml:
            r = _reml(cols, ["x1", "x2", "x3"], la, lb)
            hits["reml"].append(np.abs(np.array(r["beta"]) - truth_b) <= 1.96 * np.array(r["se"]))
    out = {
        "design": {"rows": n, "levels_a": la, "levels_b": lb, "replicates": args.replicates},
        "names": ["(Intercept)", "x1", "x2 (user)", "x3 (item)"],
        "components": ["a", "b", "Residual"],
    }
    for k, v in hits.items():
        if v:
            out[f"coverage_{k}"] = np.mean(v, axis=0).tolist()
    for k, v in widths.items():
        out[f"mean_se_{k}"] = np.mean(v, axis=0).tolist()
    return out


def _table(rows: list[dict]) -> str:
    lines = [
        "| design | seed | Δσ²_a | Δσ²_b | Δσ²_e | Gao–Owen Δσ²_a, Δσ²_b, Δσ²_e | max Δβ/SE "
        "| SE ratio (min–max) | OLS SE ratio (min–max) | moments s | passes | REML s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        d = r["sigma2_rel_diff"]
        lines.append(
            f"| {r['design']} | {r['seed']} | {d[0]:+.2%} | {d[1]:+.2%} | {d[2]:+.2%} "
            f"| {', '.join(f'{v:+.2%}' for v in r['gao_owen_rel_diff'])} "
            f"| {max(r['beta_diff_in_se']):.3f} "
            f"| {min(r['se_ratio']):.3f}–{max(r['se_ratio']):.3f} "
            f"| {min(r['ols_se_ratio']):.3f}–{max(r['ols_se_ratio']):.3f} "
            f"| {r['moments_seconds']:.1f} | {r['moments_passes']} | {r['reml_seconds']:.1f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("what", choices=["accuracy", "coverage"])
    ap.add_argument("--rows", type=int, default=None)
    ap.add_argument("--levels-a", type=int, default=None)
    ap.add_argument("--levels-b", type=int, default=None)
    ap.add_argument("--designs", nargs="+", default=["uniform", "powerlaw"])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--reps", type=int, default=20, help="Monte Carlo draws for Cov(σ̂²)")
    ap.add_argument("--replicates", type=int, default=200)
    ap.add_argument("--reml", action="store_true", help="coverage: also fit REML")
    args = ap.parse_args(argv)
    big = args.what == "accuracy"
    args.rows = args.rows or (1_000_000 if big else 20_000)
    args.levels_a = args.levels_a or (50_000 if big else 2_000)
    args.levels_b = args.levels_b or (5_000 if big else 400)
    OUT.mkdir(exist_ok=True)
    if big:
        rows = accuracy(args)
        (OUT / "moments_accuracy.json").write_text(json.dumps(rows, indent=1))
        print(_table(rows))
    else:
        out = coverage(args)
        (OUT / "moments_coverage.json").write_text(json.dumps(out, indent=1))
        print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
