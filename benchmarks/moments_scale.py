"""``python -m benchmarks.moments_scale``: time and memory of the moment fit's passes.

* ``memory --rows N --levels-a A --levels-b B``: a power-law design
  (:mod:`benchmarks.crossed_powerlaw`) held in memory, fitted with
  :func:`sparselme.moments.fit_moments` in chunks of ``--chunk-rows``; reports the time
  of every pass by kind (counts, residual sums, corrections + first Monte Carlo pass,
  second Monte Carlo pass, GLS products), the number of passes, the wall time and the
  peak RSS of the fit (the data's own memory excluded: RSS before the fit is reported).
* ``parquet --rows N ...``: the same design written once as a Parquet folder under
  ``--data`` (reused when present), then fitted streaming from it in a fresh process
  (:func:`sparselme.moments.adapters.parquet_reducer`): wall time and peak RSS. This is
  the issue's scale target at ``--rows 30000000 --levels-a 200000 --levels-b 80000``
  (≤ 600 s, ≤ 8 GB); run it on a quiet machine.
* ``lmer --rows N ...``: the same Parquet folder fitted through the formula front end,
  ``sl.lmer("y ~ x1 + x2 + x3 + (1|a) + (1|b)", folder, estimator="moments")`` (pass 1
  codes the levels, every pass codes its chunks with the formula), in a fresh process.
* ``refuse --rows N ...``: the exact fit on that folder, ``sl.lmer(formula, folder)``,
  timed until it raises ProblemTooLargeError, in a fresh process; reports the seconds,
  the peak RSS, the message and, apart, the seconds of the level pass, of the check on a
  subset of the rows before the cross-products pass (`refuse_from_subset`) and of
  choosing the factorization after it (where the first check did not refuse).

``make bench-large`` runs ``lmer`` and ``refuse`` at the issue's scale (optional: the
folder, about 1.2 GB, is generated under the temporary directory on first use and reused).

Output: one JSON line per run on stdout and in ``benchmarks/out/moments_scale.jsonl``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from . import crossed_powerlaw as cp

OUT = Path(__file__).resolve().parent / "out"
KINDS = ["counts", "residuals", "corrections+draws", "cross", "gls"]


def _rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def _layout(levels_a: int, levels_b: int):
    from sparselme.moments import Layout

    return Layout(factors=("a", "b"), levels=(levels_a, levels_b), x=("x1", "x2", "x3"))


def _report(fit, wall: float, extra: dict) -> dict:
    secs = fit.diagnostics["pass_seconds"]
    by_kind = dict(zip(KINDS[:4], secs[:4]))
    gls = secs[4:]
    by_kind["gls (mean per pass)"] = float(np.mean(gls)) if gls else 0.0
    return {
        **extra,
        "wall_s": wall,
        "passes": fit.passes,
        "gls_iterations": fit.iterations,
        "pass_seconds": by_kind,
        "sigma2": fit.sigma2.tolist(),
        "sigma2_se": None if fit.sigma2_se is None else fit.sigma2_se.tolist(),
        "beta": fit.beta.tolist(),
        "bse": fit.bse.tolist(),
        "peak_rss_gb": _rss_gb(),
    }


def _about(args, mode: str, **more) -> dict:
    return {
        "mode": mode,
        "rows": args.rows,
        "levels": [args.levels_a, args.levels_b],
        "chunk_rows": args.chunk_rows,
        "reps": args.reps,
        "solver": args.solver,
        "load_avg_1min": os.getloadavg()[0],
        **more,
    }


def run_memory(args) -> dict:
    from sparselme.moments import fit_moments, in_memory

    t0 = time.perf_counter()
    cols = cp.design(args.rows, args.levels_a, args.levels_b)
    cols["y"] = cp.response(cols, args.levels_a, args.levels_b, seed=1)
    gen = time.perf_counter() - t0
    rss_data = _rss_gb()
    t0 = time.perf_counter()
    fit = fit_moments(
        in_memory(cols, args.chunk_rows),
        _layout(args.levels_a, args.levels_b),
        variance_reps=args.reps,
        solver=args.solver,
    )
    wall = time.perf_counter() - t0
    return _report(fit, wall, _about(args, "memory", generate_s=gen, rss_before_fit_gb=rss_data))


def run_parquet_fit(args) -> dict:
    """In this process: the streamed fit only (the data were written before)."""
    from sparselme.moments import fit_moments
    from sparselme.moments.adapters import parquet_reducer

    lay = _layout(args.levels_a, args.levels_b)
    t0 = time.perf_counter()
    fit = fit_moments(
        parquet_reducer(args.data, lay.columns, args.chunk_rows),
        lay,
        variance_reps=args.reps,
        solver=args.solver,
    )
    wall = time.perf_counter() - t0
    return _report(fit, wall, _about(args, "parquet", data=str(args.data)))


FORMULA = "y ~ x1 + x2 + x3 + (1|a) + (1|b)"


def run_lmer_fit(args) -> dict:
    """In this process: the formula front end's moments fit, streamed from the folder."""
    import sparselme as sl

    t0 = time.perf_counter()
    res = sl.lmer(
        FORMULA, str(args.data), estimator="moments", variance_reps=args.reps,
        solver=args.solver, chunk_size=args.chunk_rows,
    )
    wall = time.perf_counter() - t0
    return _report(res.moments, wall, _about(args, "lmer", data=str(args.data)))


def run_refuse_fit(args) -> dict:
    """In this process: the exact fit until it refuses (ProblemTooLargeError)."""
    import faulthandler

    import sparselme as sl
    from sparselme.engine import objective
    from sparselme.errors import ProblemTooLargeError
    from sparselme.streaming import passes

    faulthandler.dump_traceback_later(120, repeat=True)  # where the time goes, on stderr
    spent = {"level_pass": 0.0, "refuse_from_subset": 0.0, "choose_factorization": 0.0}

    def timed(module, name: str) -> None:  # the checks vs the passes around them
        fn = getattr(module, name)

        def run(*a, **kw):
            start = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                spent[name] += time.perf_counter() - start

        setattr(module, name, run)

    timed(passes, "level_pass")
    timed(passes, "refuse_from_subset")
    timed(objective, "choose_factorization")
    t0 = time.perf_counter()
    try:
        sl.lmer(FORMULA, str(args.data), chunk_size=args.chunk_rows)
        message = "not refused"
    except ProblemTooLargeError as exc:
        message = str(exc)
    wall = time.perf_counter() - t0
    return {**_about(args, "refuse", data=str(args.data)), "wall_s": wall,
            **{f"{name}_s": s for name, s in spent.items()}, "message": message,
            "peak_rss_gb": _rss_gb()}


def run_parquet(args, fit_mode: str = "parquet-fit") -> dict:
    folder = Path(args.data)
    stamp = folder / "_complete.json"
    meta = {"rows": args.rows, "levels_a": args.levels_a, "levels_b": args.levels_b}
    if not (stamp.exists() and json.loads(stamp.read_text()) == meta):
        t0 = time.perf_counter()
        cp.write_parquet(folder, args.rows, args.levels_a, args.levels_b, files=args.files)
        stamp.write_text(json.dumps(meta))
        print(f"wrote {folder} in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    cmd = [sys.executable, "-m", "benchmarks.moments_scale", fit_mode, *sys.argv[2:]]
    # the fit's warnings and tracebacks go to this process's stderr as they come
    out = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, cwd=OUT.parent.parent)
    out.check_returncode()
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "mode",
        choices=["memory", "parquet", "parquet-fit", "lmer", "lmer-fit", "refuse", "refuse-fit"],
    )
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--levels-a", type=int, default=50_000)
    ap.add_argument("--levels-b", type=int, default=5_000)
    ap.add_argument("--chunk-rows", type=int, default=1_000_000)
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--files", type=int, default=30)
    ap.add_argument("--solver", choices=["cg", "backfitting"], default="cg")
    ap.add_argument("--data", type=Path, default=None)
    args = ap.parse_args(argv)
    if args.data is None:
        name = f"sparselme-moments-{args.rows}-{args.levels_a}-{args.levels_b}"
        args.data = Path(tempfile.gettempdir()) / name
    run = {
        "memory": run_memory,
        "parquet": run_parquet,
        "parquet-fit": run_parquet_fit,
        "lmer": lambda a: run_parquet(a, "lmer-fit"),
        "lmer-fit": run_lmer_fit,
        "refuse": lambda a: run_parquet(a, "refuse-fit"),
        "refuse-fit": run_refuse_fit,
    }
    result = run[args.mode](args)
    line = json.dumps(result)
    if not args.mode.endswith("-fit"):
        OUT.mkdir(exist_ok=True)
        with open(OUT / "moments_scale.jsonl", "a") as fh:
            fh.write(line + "\n")
    print(line)


if __name__ == "__main__":
    main()
