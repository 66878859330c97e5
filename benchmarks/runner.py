"""``python -m benchmarks``: run the problems with every library, interleaved, and report.

For each problem, repetition r runs sparselme, statsmodels and lme4 one after the other
(then r + 1 ...), so that a noisy phase of the shared machine hits all libraries alike.
Every run is a fresh ``benchmarks.worker`` process: its peak RSS is its own, and a run past
its time limit is killed with its children and recorded as "did not finish in N s".
A library that does not finish (or fails) once is not repeated on that problem.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, fields
from datetime import datetime, timezone
from pathlib import Path

from . import adapters, machine, report
from .problems import PROBLEMS, Problem

REPO = machine.REPO
DEFAULT_OUT = REPO / "benchmarks" / "out"
DEFAULT_DOCS = REPO / "docs"


@dataclass
class Run:
    problem: str
    library: str
    rep: int
    status: str  # ok | timeout | error | skipped
    nobs: int | None = None
    fit_s: float | None = None
    evals: int | None = None
    s_per_eval: float | None = None
    loglik: float | None = None
    peak_rss_mb: float | None = None
    version: str = ""
    note: str = ""
    eval_median_s: float | None = None
    eval_max_s: float | None = None
    schur_order: int | None = None
    cholesky_s: float | None = None


def run_one(problem: Problem, library: str, rep: int, tiny: bool, limit_s: float) -> Run:
    """One fit in a fresh worker process, killed (with its children) after ``limit_s``."""
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        result, stderr = Path(tmp) / "result.json", Path(tmp) / "stderr.txt"
        cmd = [sys.executable, "-m", "benchmarks.worker", problem.name, library, str(result)]
        with stderr.open("w") as err:
            proc = subprocess.Popen(
                cmd + (["--tiny"] if tiny else []),
                cwd=REPO,
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
                start_new_session=True,  # its own process group, so R dies with it on timeout
            )
            try:
                _wait_for_ready(proc)  # the time limit starts once the data are built
                proc.communicate(timeout=limit_s)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.communicate()
                note = f"did not finish in {limit_s:g} s"
                return Run(problem.name, library, rep, "timeout", note=note)
        if not result.exists():
            tail = stderr.read_text().strip().splitlines()[-1:] or [f"exit code {proc.returncode}"]
            return Run(problem.name, library, rep, "error", note=f"worker died: {tail[0]}")
        record = json.loads(result.read_text())
    keep = {f.name for f in fields(Run)}
    return Run(problem.name, library, rep, **{k: v for k, v in record.items() if k in keep})


def _wait_for_ready(proc: subprocess.Popen) -> None:
    """Block until the worker has built its data (it prints READY) or has exited."""
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.strip() == "READY":
            return


def import_seconds(reps: int = 5) -> float:
    """Median seconds of ``import sparselme`` in a fresh interpreter (start-up excluded)."""
    code = "import time; t = time.perf_counter(); import sparselme; print(time.perf_counter() - t)"
    times = []
    for _ in range(reps):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        times.append(float(out.stdout.strip().splitlines()[-1]))
    return statistics.median(times)


def run_all(args: argparse.Namespace, problems: list[Problem], csv_path: Path) -> list[Run]:
    runs: list[Run] = []
    with csv_path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=[f.name for f in fields(Run)])
        writer.writeheader()

        def record(run: Run) -> None:
            runs.append(run)
            writer.writerow(asdict(run))
            fh.flush()
            print(_progress_line(run), flush=True)

        for problem in problems:
            libraries = list(args.libraries)
            if problem.pending:
                for library in libraries:
                    record(
                        Run(problem.name, library, 0, "skipped", note=f"pending: {problem.pending}")
                    )
                continue
            for library in list(libraries):
                why = adapters.load(library).skip_reason(problem, force=args.try_hopeless)
                if why:
                    record(Run(problem.name, library, 0, "skipped", note=why))
                    libraries.remove(library)
            reps = args.reps or (1 if args.quick else problem.reps)
            for rep in range(1, reps + 1):
                for library in list(libraries):
                    limit = args.statsmodels_limit if library == "statsmodels" else args.limit
                    run = run_one(problem, library, rep, tiny=args.quick, limit_s=limit)
                    record(run)
                    if run.status != "ok":
                        libraries.remove(library)  # do not wait for it again
    return runs


def _progress_line(run: Run) -> str:
    head = f"{run.problem:<12} {run.library:<11} rep {run.rep}  "
    if run.status != "ok":
        return head + f"{run.status}: {run.note}"
    evals = f"{run.evals} evals" if run.evals is not None else ""
    rss = f"{run.peak_rss_mb:.0f} MB" if run.peak_rss_mb is not None else ""
    floor = ""
    if run.eval_median_s is not None:
        floor = f"evals {1e3 * run.eval_median_s:.1f}/{1e3 * (run.eval_max_s or 0):.1f} ms med/max"
    if run.cholesky_s is not None:
        floor += f", dpotrf({run.schur_order}) {1e3 * run.cholesky_s:.1f} ms"
    return head + f"{run.fit_s:9.3f} s  {evals:>10}  {rss:>8}  {floor}  {run.note}"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Benchmark sparselme against statsmodels and lme4 (SPEC section 4).",
    )
    ap.add_argument("--problems", help=f"comma-separated, default all: {','.join(PROBLEMS)}")
    ap.add_argument(
        "--libraries",
        default=",".join(adapters.LIBRARIES),
        help="comma-separated, default %(default)s",
    )
    ap.add_argument(
        "--reps",
        type=int,
        help="repetitions for every problem (default: 5 InstEval, 3 small, 1 big)",
    )
    ap.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: tiny data, 1 repetition, 60 s limits; reports go to the output "
        "directory, not docs/",
    )
    ap.add_argument("--limit", type=float, help="seconds per run (default 1800; --quick 60)")
    ap.add_argument(
        "--statsmodels-limit", type=float, help="seconds per statsmodels run (default 300)"
    )
    ap.add_argument(
        "--try-hopeless",
        action="store_true",
        help="run statsmodels also where it is known not to finish (crossed designs)",
    )
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="results.csv goes here")
    ap.add_argument("--docs", type=Path, default=DEFAULT_DOCS, help="benchmarks.md, img/ go here")
    ap.add_argument("--no-docs", action="store_true", help="write only the CSV")
    ap.add_argument(
        "--report-only",
        action="store_true",
        help="do not run: redraw the page from the output directory's results, or from the "
        "published record (docs/benchmarks.json) when there are none",
    )
    args = ap.parse_args(argv)

    names = args.problems.split(",") if args.problems else list(PROBLEMS)
    unknown = [n for n in names if n not in PROBLEMS]
    if unknown:
        ap.error(f"unknown problem(s) {', '.join(unknown)}; known: {', '.join(PROBLEMS)}")
    args.problems = names
    args.libraries = args.libraries.split(",")
    unknown = [lib for lib in args.libraries if lib not in adapters.LIBRARIES]
    if unknown:
        ap.error(
            f"unknown library(ies) {', '.join(unknown)}; known: {', '.join(adapters.LIBRARIES)}"
        )
    if args.limit is None:
        args.limit = 60.0 if args.quick else 1800.0
    if args.statsmodels_limit is None:
        args.statsmodels_limit = 60.0 if args.quick else 300.0
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    stem = "results-quick" if args.quick else "results"
    csv_path, meta_path = out / f"{stem}.csv", out / f"{stem}.json"
    docs_dir = out / "quick" if args.quick else args.docs

    if not args.report_only:
        cli = sys.argv[1:] if argv is None else argv
        meta = {
            "command": " ".join(["python -m benchmarks", shlex.join(cli)]).rstrip(),
            "started": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "csv": csv_path.relative_to(REPO).as_posix()
            if csv_path.is_relative_to(REPO)
            else str(csv_path),
            "quick": args.quick,
            "limit_s": args.limit,
            "statsmodels_limit_s": args.statsmodels_limit,
            "machine": machine.describe(),
            "import_s": import_seconds(),
        }
        meta_path.write_text(json.dumps(meta, indent=2))
        print(f"writing {csv_path}", flush=True)
        started = time.monotonic()
        run_all(args, [PROBLEMS[n] for n in args.problems], csv_path)
        meta["wall_s"] = round(time.monotonic() - started)
        meta_path.write_text(json.dumps(meta, indent=2))

    if not args.no_docs:
        md, pngs = report.write(csv_path, meta_path, docs_dir)
        plots = f" and {len(pngs)} plots" if pngs else " (no plots: matplotlib is missing)"
        print(f"wrote {md}{plots}")
        rows, meta = report.load_record(docs_dir / "benchmarks.json")
        print("SPEC section 4 targets, this run:", *report.targets_lines(rows, meta), sep="\n  ")
    return 0
