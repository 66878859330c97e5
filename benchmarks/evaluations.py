"""How many deviance evaluations the optimizer needs, for BOBYQA's first-step factor.

Run from the repository root::

    .venv/bin/python -m benchmarks.evaluations                      # factors ¼, ½, 1/√2, 1
    .venv/bin/python -m benchmarks.evaluations --factors 0.5 1.0

Each factor c sets BOBYQA's first steps to c/√L of a term's θ (L levels, clipped to
2–20 %; :func:`sparselme.start.initial_steps`). Every lme4 reference model frozen in
``tests/reference/lme4`` is fitted with each factor; the table gives the evaluations per
model, their total and the largest excess of the criterion over lme4's (negative: below
lme4's). Evaluations are counted, not timed, so a busy machine does not change them.
Writes ``benchmarks/out/evaluations.md``.

``--optimizers`` compares, over the same models and from the fit's own start, BOBYQA with
gradient-based optimizers on the analytic gradient (`sparselme.engine.gradient`):
L-BFGS-B, and a hybrid (BOBYQA to a looser tolerance, then Newton steps on the analytic
gradient with a Hessian from its differences). It counts deviance and gradient
evaluations, times each minimization (median of ``--reps``) and reports how far each
ends above lme4's criterion::

    .venv/bin/python -m benchmarks.evaluations --optimizers
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np

import sparselme as sl
from sparselme.engine import start

REPO = Path(__file__).resolve().parents[1]
REFERENCES = REPO / "tests" / "reference" / "lme4"


def reference_models(only: list[str] | None = None) -> list[dict]:
    """The frozen lme4 fits that name a bundled dataset and a formula, by file name."""
    models = []
    for path in sorted(REFERENCES.glob("*.json")):
        ref = json.loads(path.read_text())
        if "formula" in ref and "data" in ref and (not only or path.stem in only):
            models.append({"name": path.stem, **ref})
    return models


def count(models: list[dict], factor: float) -> tuple[list[int], float]:
    """(evaluations per model, largest criterion − lme4's) with the given step factor."""
    saved = start.INITIAL_STEP_FACTOR
    start.INITIAL_STEP_FACTOR = factor
    try:
        evals, excess = [], -float("inf")
        for ref in models:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # singular fits are part of the set
                res = sl.lmer(ref["formula"], sl.datasets.load(ref["data"]), REML=ref["REML"])
            evals.append(int(res.optsum.feval))
            lme4 = ref["REMLcrit"] if ref["REML"] else ref["deviance"]
            excess = max(excess, float(res.optsum.fmin) - lme4)
        return evals, excess
    finally:
        start.INITIAL_STEP_FACTOR = saved


def table(models: list[dict], factors: list[float]) -> str:
    rows = {f: count(models, f) for f in factors}
    head = "| model | " + " | ".join(f"c = {f:g}" for f in factors) + " |"
    lines = [head, "| --- |" + " ---: |" * len(factors)]
    for i, ref in enumerate(models):
        lines.append(f"| {ref['name']} | " + " | ".join(str(rows[f][0][i]) for f in factors) + " |")
    lines.append("| **total** | " + " | ".join(f"**{sum(rows[f][0])}**" for f in factors) + " |")
    lines.append(
        "| criterion − lme4's, largest | " + " | ".join(f"{rows[f][1]:.1e}" for f in factors) + " |"
    )
    return "\n".join(lines) + "\n"


# ---- gradient-based optimizers against BOBYQA ------------------------------------------
def _problem(ref: dict):
    """(model, objective, gradient, start, first steps) of a reference fit."""
    from sparselme.engine.gradient import profiled_gradient

    model = sl.LinearMixedModel.from_formula(ref["formula"], sl.datasets.load(ref["data"]))
    reml = bool(ref["REML"])
    x0, steps = model.start_values()
    counts = {"f": 0, "g": 0}

    def f(x):
        counts["f"] += 1
        return model.objective(x, reml)

    def g(x):
        counts["g"] += 1
        return profiled_gradient(model.pls, x, reml)

    return model, f, g, x0, steps, counts


def _bobyqa(f, g, x0, lower, steps):
    from sparselme.engine.optimize import minimize_bobyqa

    res = minimize_bobyqa(f, x0, lower, initial_step=steps)
    return res.final, res.fmin


def _lbfgsb(f, g, x0, lower, steps):
    from scipy.optimize import minimize

    def fg(x):
        grad = g(x)  # leaves the factor current at x: f(x) below does not refactor
        return f(x), grad

    bounds = [(lo if np.isfinite(lo) else None, None) for lo in lower]
    res = minimize(
        fg,
        x0,
        jac=True,
        method="L-BFGS-B",
        bounds=bounds,
        options={"ftol": 1e-15, "gtol": 1e-6, "maxiter": 500},
    )
    return res.x, float(res.fun)


def _hybrid(f, g, x0, lower, steps):
    """BOBYQA to ftol 1e-4, then Newton steps −H⁻¹g (H from differences of the analytic
    gradient) while they lower the criterion; θ's at a zero bound stay there."""
    from sparselme.engine.optimize import minimize_bobyqa

    res = minimize_bobyqa(f, x0, lower, initial_step=steps, ftol_abs=1e-4, xtol_abs=1e-6)
    x, fx = res.final, res.fmin
    for _ in range(3):
        free = ~((lower == 0) & (x < 1e-4))
        if not free.any():
            break
        gx = g(x)
        h = 1e-5 * np.maximum(np.abs(x), 1.0)
        H = np.zeros((len(x), len(x)))
        for i in np.flatnonzero(free):
            e = np.zeros(len(x))
            e[i] = h[i]
            H[:, i] = (g(x + e) - gx) / h[i]
        Hf = 0.5 * (H + H.T)[np.ix_(free, free)]
        try:
            step = np.zeros(len(x))
            step[free] = np.linalg.solve(Hf, gx[free])
        except np.linalg.LinAlgError:
            break
        trial = np.maximum(x - step, lower)
        ft = f(trial)
        if not ft < fx:
            break
        x, fx = trial, ft
        if np.max(np.abs(step)) < 1e-7:
            break
    return x, fx


OPTIMIZERS = {"bobyqa": _bobyqa, "lbfgsb": _lbfgsb, "hybrid": _hybrid}


def compare_optimizers(models: list[dict], names: list[str], reps: int) -> str:
    """Markdown: per model and optimizer, deviance + gradient evaluations, the median
    seconds of the minimization, and the criterion reached − lme4's."""
    head = "| model | " + " | ".join(names) + " |"
    lines = [
        "Cells: evaluations f + gradients g, median ms of the minimization, criterion − lme4's.",
        "",
        head,
        "| --- |" + " ---: |" * len(names),
    ]
    totals = {n: 0.0 for n in names}
    for ref in models:
        lme4 = ref["REMLcrit"] if ref["REML"] else ref["deviance"]
        cells = []
        for name in names:
            times = []
            for _ in range(reps):
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    model, f, g, x0, steps, counts = _problem(ref)
                    lower = model.lower_bounds
                    start_t = time.perf_counter()
                    _, fmin = OPTIMIZERS[name](f, g, x0, lower, steps)
                    times.append(time.perf_counter() - start_t)
            ms = 1e3 * float(np.median(times))
            totals[name] += ms
            cells.append(f"{counts['f']} + {counts['g']}g, {ms:.1f} ms, {fmin - lme4:+.1e}")
        lines.append(f"| {ref['name']} | " + " | ".join(cells) + " |")
    lines.append("| **total ms** | " + " | ".join(f"**{totals[n]:.0f}**" for n in names) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.evaluations")
    ap.add_argument("--factors", type=float, nargs="+", default=[0.25, 0.5, 2**-0.5, 1.0])
    ap.add_argument("--only", nargs="+", help="reference files (stems) to fit; default all")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "out")
    ap.add_argument(
        "--optimizers",
        nargs="*",
        choices=list(OPTIMIZERS),
        help="compare these optimizers instead (default with no names: all)",
    )
    ap.add_argument("--reps", type=int, default=5, help="timing repetitions (--optimizers)")
    args = ap.parse_args(argv)
    if args.optimizers is not None:
        text = compare_optimizers(
            reference_models(args.only), args.optimizers or list(OPTIMIZERS), args.reps
        )
        print(text, end="")
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "optimizers.md").write_text(text)
        return 0
    text = table(reference_models(args.only), args.factors)
    print(text, end="")
    args.out.mkdir(parents=True, exist_ok=True)
    intro = (
        "Deviance evaluations per lme4 reference fit, for BOBYQA's first steps c/√L "
        f"(`python -m benchmarks.evaluations`; default c = {start.INITIAL_STEP_FACTOR:g}).\n\n"
    )
    (args.out / "evaluations.md").write_text(intro + text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
