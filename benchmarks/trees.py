"""Before and after a change: sparselme from two source trees on the same problems.

``python -m benchmarks.trees BEFORE AFTER [--problems ...] [--reps N]`` times
``sparselme.lmer`` of each problem with the package imported from each tree (a checkout
with its compiled extension built), in fresh worker processes that alternate tree by tree,
so that the machine's load falls on both alike. Each worker fits once untimed (imports,
thread pools), then times ``--reps`` fits. The data come from this tree's problem registry
and reach both trees as the same pickled frame. Prints per problem and tree the median
seconds and the ratio after/before, and writes the raw times as JSON (``--out``).
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import pickle
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from . import problems

DEFAULT_PROBLEMS = ("insteval", "sleepstudy", "dietox", "slopes_100k", "flat_200k", "flat_400k")

_WORKER = """
import pickle, sys, time, warnings
import sparselme
path, formula, reml, reps = sys.argv[1], sys.argv[2], sys.argv[3] == "1", int(sys.argv[4])
with open(path, "rb") as fh:
    data = pickle.load(fh)
warnings.simplefilter("ignore")
sparselme.lmer(formula, data, REML=reml)
times = []
for _ in range(reps):
    start = time.perf_counter()
    res = sparselme.lmer(formula, data, REML=reml)
    times.append(time.perf_counter() - start)
print(repr((times, float(res.llf), sparselme.__file__)))
"""


def run_worker(tree: Path, code: str, args: list[str], env: dict | None = None) -> tuple:
    """Run ``code`` in a fresh interpreter importing sparselme from ``tree`` (with extra
    environment variables ``env``); it prints a tuple literal whose last item is
    ``sparselme.__file__``, which must lie in ``tree``. Returns the other items."""
    full_env = dict(os.environ, PYTHONPATH=str(tree), **(env or {}))
    proc = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, env=full_env, cwd=tree
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{tree}: {proc.stderr.strip()[-800:]}")
    *values, where = ast.literal_eval(proc.stdout.strip().splitlines()[-1])
    if not str(where).startswith(str(tree)):
        raise RuntimeError(f"{tree}: sparselme was imported from {where}")
    return tuple(values)


def problem_data_file(directory: Path, problem: problems.Problem) -> Path:
    """The problem's data pickled into ``directory`` (what every worker reads)."""
    data_file = Path(directory) / f"{problem.name}.pkl"
    with open(data_file, "wb") as fh:
        pickle.dump(problem.make_data(), fh)
    return data_file


def time_tree(
    tree: Path, data_file: Path, problem: problems.Problem, reps: int, env: dict | None = None
) -> dict:
    """One worker process importing sparselme from ``tree`` (with extra environment
    variables ``env``): its fit times and llf."""
    args = [str(data_file), problem.formula, "1" if problem.reml else "0", str(reps)]
    times, llf = run_worker(tree, _WORKER, args, env)
    return {"times": times, "llf": llf}


def compare(trees: list[Path], names: list[str], reps: int, rounds: int) -> dict:
    """Per problem and tree, every timed fit over ``rounds`` alternating workers."""
    out: dict = {}
    with tempfile.TemporaryDirectory(prefix="bench-trees-") as tmp:
        for name in names:
            problem = problems.get(name)
            data_file = problem_data_file(Path(tmp), problem)
            record = {str(t): {"times": [], "llf": None} for t in trees}
            for _ in range(rounds):
                for tree in trees:
                    got = time_tree(tree, data_file, problem, reps)
                    record[str(tree)]["times"] += got["times"]
                    record[str(tree)]["llf"] = got["llf"]
            out[name] = record
            before, after = (statistics.median(record[str(t)]["times"]) for t in trees)
            print(
                f"{name:12s} before {before:9.4f} s  after {after:9.4f} s  "
                f"after/before {after / before:5.2f}  "
                f"llf {record[str(trees[0])]['llf']:.6f} / {record[str(trees[1])]['llf']:.6f}",
                flush=True,
            )
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.trees", description=__doc__)
    ap.add_argument("before", type=Path, help="source tree imported as 'before'")
    ap.add_argument("after", type=Path, help="source tree imported as 'after'")
    ap.add_argument("--problems", default=",".join(DEFAULT_PROBLEMS))
    ap.add_argument("--reps", type=int, default=3, help="timed fits per worker")
    ap.add_argument("--rounds", type=int, default=3, help="workers per tree, alternating")
    ap.add_argument("--out", type=Path, help="write the raw times here (JSON)")
    args = ap.parse_args(argv)
    trees = [args.before.resolve(), args.after.resolve()]
    result = compare(trees, args.problems.split(","), args.reps, args.rounds)
    if args.out:
        args.out.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
