"""One (problem, library) run in a fresh process, so that its peak RSS is its own.

``python -m benchmarks.worker PROBLEM LIBRARY RESULT.json [--tiny]`` builds the data, prints
``READY`` (the runner's time limit starts there), fits once and writes the measurement with
the peak RSS as JSON to RESULT.json. A problem measured warm is fitted once, untimed,
before (by the adapter; lme4 does it in its R process); a problem with a competitor has a
CPU-bound process (a busy loop in another Python) running during the timed fit.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict

from . import adapters
from .problems import get


def peak_rss_mb(of_children: bool) -> float:
    who = resource.RUSAGE_CHILDREN if of_children else resource.RUSAGE_SELF
    return resource.getrusage(who).ru_maxrss / 1024.0  # Linux reports KiB


@contextmanager
def competing_process(active: bool) -> Iterator[subprocess.Popen | None]:
    """A CPU-bound process (one busy thread) running for the duration of the block."""
    if not active:
        yield None
        return
    burner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)  # running before the fit starts
        yield burner
    finally:
        burner.kill()
        burner.wait()


def count_rows(data) -> int:
    """Rows of a DataFrame, or of a Parquet folder (from its metadata)."""
    if isinstance(data, (str, os.PathLike)):
        import pyarrow.dataset as ds

        return int(ds.dataset(str(data), format="parquet").count_rows())
    return len(data)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.worker")
    ap.add_argument("problem")
    ap.add_argument("library")
    ap.add_argument("result")
    ap.add_argument("--tiny", action="store_true")
    args = ap.parse_args(argv)

    problem = get(args.problem)
    adapter = adapters.load(args.library)
    data = problem.make_data(tiny=args.tiny)
    print("READY", flush=True)
    nobs = count_rows(data)
    try:
        if problem.warm and hasattr(adapter, "warm_up"):
            adapter.warm_up(problem, data)
        with competing_process(problem.competitor):
            m = adapter.run(problem, data)
        record = {"status": "ok", "nobs": nobs, **asdict(m)}
        record["peak_rss_mb"] = peak_rss_mb(of_children=m.rss_of_child)
    except Exception as exc:  # reported as a result row, not a crash of the whole benchmark
        traceback.print_exc()
        record = {"status": "error", "nobs": nobs, "note": f"{type(exc).__name__}: {exc}"}
    with open(args.result, "w") as fh:
        json.dump(record, fh)
    return 0


if __name__ == "__main__":
    sys.exit(main())
