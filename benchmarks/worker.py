"""One (problem, library) run in a fresh process, so that its peak RSS is its own.

``python -m benchmarks.worker PROBLEM LIBRARY RESULT.json [--tiny]`` builds the data, prints
``READY`` (the runner's time limit starts there), fits once and writes the measurement with
the peak RSS as JSON to RESULT.json.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import traceback
from dataclasses import asdict

from . import adapters
from .problems import get


def peak_rss_mb(of_children: bool) -> float:
    who = resource.RUSAGE_CHILDREN if of_children else resource.RUSAGE_SELF
    return resource.getrusage(who).ru_maxrss / 1024.0  # Linux reports KiB


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
