"""The default thread setting against every fixed one, quiet and beside a busy process.

``python -m benchmarks.threads [--problems ...] [--reps N] [--rounds N]`` fits each
problem in fresh worker processes (one untimed fit, then ``--reps`` timed ones) under
each setting: the default (no thread variables), and every BLAS/OpenMP thread count from
one to the machine's cores fixed through ``OPENBLAS_NUM_THREADS``, ``OMP_NUM_THREADS``
and ``MKL_NUM_THREADS``. Settings alternate worker by worker, ``--rounds`` times, first on
a quiet machine and then with one CPU-bound process running beside the fit. Prints the
median seconds per setting and the default's ratio to the best fixed setting (the target
is ≤ 1.10), and writes the raw times as JSON (``--out``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
from pathlib import Path

from . import problems
from .trees import problem_data_file, time_tree
from .worker import competing_process

DEFAULT_PROBLEMS = ("insteval", "flat_200k", "slopes_100k")
TARGET_RATIO = 1.10
_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def settings(cores: int) -> dict[str, dict[str, str] | None]:
    """The default (None: no variables set) and each fixed thread count."""
    out: dict[str, dict[str, str] | None] = {"default": None}
    for n in range(1, cores + 1):
        out[f"{n} thread{'s' if n > 1 else ''}"] = {v: str(n) for v in _VARIABLES}
    return out


def _clean_environment() -> None:
    """The default setting means none of the thread variables: drop inherited ones."""
    for v in _VARIABLES:
        os.environ.pop(v, None)


def measure(names: list[str], reps: int, rounds: int, busy: bool) -> dict:
    """Per problem and setting, every timed fit (quiet, or beside one busy process)."""
    tree = Path(__file__).resolve().parents[1]
    cores = len(os.sched_getaffinity(0))
    out: dict = {}
    with tempfile.TemporaryDirectory(prefix="bench-threads-") as tmp:
        for name in names:
            problem = problems.get(name)
            data_file = problem_data_file(Path(tmp), problem)
            record: dict[str, list[float]] = {s: [] for s in settings(cores)}
            for _ in range(rounds):
                for label, env in settings(cores).items():
                    with competing_process(busy):
                        got = time_tree(tree, data_file, problem, reps, env)
                    record[label] += got["times"]
            out[name] = record
            medians = {s: statistics.median(t) for s, t in record.items()}
            best = min(v for s, v in medians.items() if s != "default")
            cells = "  ".join(f"{s} {m:.3f} s" for s, m in medians.items())
            ratio = medians["default"] / best
            verdict = "ok" if ratio <= TARGET_RATIO else f"over {TARGET_RATIO:.2f}"
            state = "busy " if busy else "quiet"
            print(f"{state} {name:12s} {cells}  default/best {ratio:.2f} ({verdict})", flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.threads", description=__doc__)
    ap.add_argument("--problems", default=",".join(DEFAULT_PROBLEMS))
    ap.add_argument("--reps", type=int, default=3, help="timed fits per worker")
    ap.add_argument("--rounds", type=int, default=3, help="workers per setting, alternating")
    ap.add_argument("--out", type=Path, help="write the raw times here (JSON)")
    args = ap.parse_args(argv)
    _clean_environment()
    names = args.problems.split(",")
    result = {
        "quiet": measure(names, args.reps, args.rounds, busy=False),
        "busy": measure(names, args.reps, args.rounds, busy=True),
    }
    if args.out:
        args.out.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
