"""Where an evaluation's time goes, under the process-wide thread settings.

``python -m benchmarks.evaluation_parts [--problem insteval] [--fits 5] [--rounds 3]
[--settings default,...]``
fits a block-path problem in fresh worker processes (one untimed fit first), each under
one setting of the environment, alternating setting by setting:

* ``default``: sparselme's own (``sparselme.runtime``);
* ``long BLAS spin``: ``OPENBLAS_THREAD_TIMEOUT=28``, OpenBLAS's default: its workers spin
  ~0.1 s after each call (the Schur kernels then stay on one thread);
* ``spinning OpenMP``: ``OMP_WAIT_POLICY=ACTIVE``: idle OpenMP threads spin.

It times each call, inside the fits, of the profiled deviance, of the factorization's
update within it and of the update's parts: the −L₂₁L₂₁ᵀ kernel, the [X y] rows kernel
(the general kernels or the count layout's) and LAPACK's ``dpotrf``. In the same process
it times one ``dpotrf`` alone of the order factored (the Schur complement with [X y]
appended), the better of one thread and the default, as ``make bench`` does. Prints per
setting the medians, the deviance's and the update's multiples of that floor and the
median fit time.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from .trees import run_worker

SETTINGS = {
    "default": {},
    "long BLAS spin": {"OPENBLAS_THREAD_TIMEOUT": "28"},
    "spinning OpenMP": {"OMP_WAIT_POLICY": "ACTIVE"},
}

_WORKER = """
import sys, time, warnings
problem, fits = sys.argv[1], int(sys.argv[2])
import sparselme
from sparselme.engine import block_cholesky as bc
sys.path.append({repo!r})
from benchmarks.adapters.sparselme import cholesky_seconds
from benchmarks.problems import get
parts = {{}}
def timed(name, owner, attr):
    original = getattr(owner, attr)
    def call(*args, **kwargs):
        start = time.perf_counter()
        out = original(*args, **kwargs)
        parts.setdefault(name, []).append(time.perf_counter() - start)
        return out
    setattr(owner, attr, call)
p = get(problem)
data = p.make_data()
warnings.simplefilter("ignore")
res = sparselme.lmer(p.formula, data, REML=p.reml)
order = int(res.model.pls.chol.order)
floor = cholesky_seconds(order)
from sparselme.engine.objective import PenalizedLeastSquares
timed("deviance", PenalizedLeastSquares, "deviance")
timed("update", bc.BlockCholesky, "update")
timed("L21 L21'", bc._gram, "negative_lower_gram")
if hasattr(bc._gram, "negative_lower_gram_counts"):  # the count kernel (scalar indicators)
    timed("L21 L21'", bc._gram, "negative_lower_gram_counts")
timed("[X y] rows", bc._gram, "sparse_times_dense")
if hasattr(bc._gram, "sparse_times_dense_counts"):
    timed("[X y] rows", bc._gram, "sparse_times_dense_counts")
timed("dpotrf", bc.lapack, "dpotrf")
fit_s = []
for _ in range(fits):
    start = time.perf_counter()
    sparselme.lmer(p.formula, data, REML=p.reml)
    fit_s.append(time.perf_counter() - start)
print(repr((parts, fit_s, floor, order, sparselme.__file__)))
"""


def run_setting(tree: Path, env: dict, problem: str, fits: int) -> tuple:
    """One worker: ({part: seconds of each call}, fit seconds, floor seconds, order)."""
    code = _WORKER.format(repo=str(Path(__file__).resolve().parents[1]))
    return run_worker(tree, code, [problem, str(fits)], env)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.evaluation_parts", description=__doc__)
    ap.add_argument("--problem", default="insteval")
    ap.add_argument("--fits", type=int, default=5, help="timed fits per worker")
    ap.add_argument("--rounds", type=int, default=3, help="workers per setting, alternating")
    ap.add_argument("--tree", type=Path, default=Path(__file__).resolve().parents[1])
    ap.add_argument("--settings", default=",".join(SETTINGS), help="comma-separated")
    args = ap.parse_args(argv)
    chosen = {name: SETTINGS[name] for name in args.settings.split(",")}
    tree = args.tree.resolve()
    collected: dict = {name: {"parts": {}, "fits": [], "floor": []} for name in chosen}
    order = 0
    for _ in range(args.rounds):
        for name, env in chosen.items():
            parts, fit_s, floor, order = run_setting(tree, env, args.problem, args.fits)
            record = collected[name]
            for part, times in parts.items():
                record["parts"].setdefault(part, []).extend(times)
            record["fits"].extend(fit_s)
            record["floor"].append(floor)
    for name, record in collected.items():
        med = {part: 1e3 * statistics.median(t) for part, t in record["parts"].items()}
        floor = 1e3 * statistics.median(record["floor"])
        shown = ", ".join(f"{part} {ms:.2f}" for part, ms in med.items())
        print(
            f"{name}: {shown} ms (medians); dpotrf({order}) alone {floor:.2f} ms: deviance "
            f"{med['deviance'] / floor:.2f}×, update {med['update'] / floor:.2f}×; fit median "
            f"{statistics.median(record['fits']):.3f} s",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
