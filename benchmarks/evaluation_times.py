"""The distribution of single evaluation times of a fit, before and after a change.

``python -m benchmarks.evaluation_times TREE [TREE ...] [--problem insteval] [--fits 4]
[--rounds 2]`` fits the problem in fresh worker processes importing sparselme from each
tree (alternating tree by tree, default settings, one untimed fit first) and times every
call of the penalized least-squares objective's ``deviance``. Prints per tree the
median, p90, p99 and largest evaluation time, how many evaluations took more than twice
the median (the spikes), and the median fit time.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from .trees import run_worker

# The objective's module in the tree (the package layout changed once).
_MODULES = ("sparselme.engine.objective", "sparselme.pls")

_WORKER = """
import importlib, sys, time, warnings
tree, problem, fits = sys.argv[1], sys.argv[2], int(sys.argv[3])
import sparselme
for name in {modules!r}:
    try:
        cls = importlib.import_module(name).PenalizedLeastSquares
        break
    except ImportError:
        continue
original, times = cls.deviance, []
def timed(self, theta, reml=True):
    start = time.perf_counter()
    value = original(self, theta, reml)
    times.append(time.perf_counter() - start)
    return value
cls.deviance = timed
sys.path.append({repo!r})
from benchmarks.problems import get
p = get(problem)
data = p.make_data()
warnings.simplefilter("ignore")
sparselme.lmer(p.formula, data, REML=p.reml)
times.clear()
fit_s = []
for _ in range(fits):
    start = time.perf_counter()
    sparselme.lmer(p.formula, data, REML=p.reml)
    fit_s.append(time.perf_counter() - start)
print(repr((times, fit_s, sparselme.__file__)))
"""


def run_tree(tree: Path, problem: str, fits: int) -> tuple[list[float], list[float]]:
    """One worker importing sparselme from ``tree``: (evaluation seconds, fit seconds)."""
    code = _WORKER.format(modules=_MODULES, repo=str(Path(__file__).resolve().parents[1]))
    evals, fit_s = run_worker(tree, code, [str(tree), problem, str(fits)])
    return evals, fit_s


def summary(evals: list[float], fit_s: list[float]) -> str:
    ms = sorted(1e3 * e for e in evals)
    med = statistics.median(ms)

    def q(p: float) -> float:
        return ms[int(p * (len(ms) - 1))]

    spikes = sum(e > 2 * med for e in ms)
    return (
        f"{len(ms)} evaluations: median {med:.1f} ms, p90 {q(0.9):.1f}, p99 {q(0.99):.1f}, "
        f"max {ms[-1]:.1f}; {spikes} over twice the median; fit median "
        f"{statistics.median(fit_s):.3f} s"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.evaluation_times", description=__doc__)
    ap.add_argument("trees", type=Path, nargs="+")
    ap.add_argument("--problem", default="insteval")
    ap.add_argument("--fits", type=int, default=4, help="timed fits per worker")
    ap.add_argument("--rounds", type=int, default=2, help="workers per tree, alternating")
    args = ap.parse_args(argv)
    trees = [t.resolve() for t in args.trees]
    collected = {t: ([], []) for t in trees}
    for _ in range(args.rounds):
        for tree in trees:
            evals, fit_s = run_tree(tree, args.problem, args.fits)
            collected[tree][0].extend(evals)
            collected[tree][1].extend(fit_s)
    for tree in trees:
        print(f"{tree}: {summary(*collected[tree])}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
