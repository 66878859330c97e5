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
"""

from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path

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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.evaluations")
    ap.add_argument("--factors", type=float, nargs="+", default=[0.25, 0.5, 2**-0.5, 1.0])
    ap.add_argument("--only", nargs="+", help="reference files (stems) to fit; default all")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "out")
    args = ap.parse_args(argv)
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
