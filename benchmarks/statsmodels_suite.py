"""Time statsmodels' own test_lme.py on statsmodels and on sparselme, side by side.

    .venv/bin/python -m benchmarks.statsmodels_suite [--reps 3]

Runs pytest in a fresh process per repetition: once on the installed module as it is
(statsmodels), once through tests/statsmodels_compat/test_statsmodels_suite.py (the same
tests with sparselme's MixedLM), both with statsmodels' slow tests included and the tests
left out of the conformance run (private SMW functions, test_singular) deselected from
both. Prints each wall-clock time, the medians and their ratio.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LEFT_OUT = "not SMW and not test_singular"


def _run(args: list[str]) -> float:
    start = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    elapsed = time.perf_counter() - start
    if out.returncode != 0:
        raise RuntimeError(f"pytest failed:\n{out.stdout[-2000:]}")
    return elapsed


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reps", type=int, default=3)
    reps = parser.parse_args(argv).reps
    runs = {
        "statsmodels": ["--pyargs", "statsmodels.regression.tests.test_lme", "-k", LEFT_OUT],
        "sparselme": ["tests/statsmodels_compat/test_statsmodels_suite.py", "-k", LEFT_OUT],
    }
    times: dict[str, list[float]] = {k: [] for k in runs}
    for _ in range(reps):
        for name, args in runs.items():
            times[name].append(_run(args))
    for name, ts in times.items():
        print(
            f"{name:12s} "
            + " ".join(f"{t:6.1f}" for t in ts)
            + f"   median {statistics.median(ts):6.1f} s"
        )
    ratio = statistics.median(times["statsmodels"]) / statistics.median(times["sparselme"])
    print(f"statsmodels / sparselme: {ratio:.1f}x")


if __name__ == "__main__":
    main()
