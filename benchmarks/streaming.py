"""``python -m benchmarks.streaming``: a 10M-row crossed fit streamed from Parquet, and via Dask.

The data (``y ~ x1 + x2 + x3 + (1|a) + (1|b)``, 10,000,000 rows, a: 100,000 levels,
b: 10,000 levels; a and b stored as dictionary columns) are written once, file by file, to
``--data`` (default ``$TMPDIR/sparselme-streaming-<rows>``), and reused on later runs.

Each repetition runs every mode in a fresh process, interleaved (parquet, dask, parquet,
dask, ...), so a noisy phase of a shared machine hits both alike:

* ``parquet``: ``sl.lmer(formula, folder, chunk_size=...)``: two passes over the files in
  record batches, then the fit on the driver;
* ``dask``: ``sl.lmer(formula, dd.read_parquet(folder))`` on a ``LocalCluster(2)`` (worker
  processes), the cross-products reduced on the cluster.

Reported per mode: median wall time of the whole call (and its parts: the two passes and
the optimizer), evaluations, seconds per evaluation, log-likelihood, and the peak RSS of the
process tree (driver + Dask workers, sampled every 0.1 s; the driver's own high-water mark
from getrusage too). Results go to ``benchmarks/out/streaming.json`` and a markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "benchmarks" / "out"
FORMULA = "y ~ x1 + x2 + x3 + (1 | a) + (1 | b)"
TARGET_S, TARGET_GB = 200.0, 8.0


# ---------------------------------------------------------------------------- the data


def write_data(folder: Path, rows: int, levels_a: int, levels_b: int, files: int, seed: int = 7):
    """Deterministic data, generated and written one file at a time (bounded memory)."""
    import pandas as pd

    done = folder / "_complete.json"
    meta = {"rows": rows, "levels_a": levels_a, "levels_b": levels_b, "files": files, "seed": seed}
    meta["page_checksums"] = True
    if done.exists() and json.loads(done.read_text()) == meta:
        return
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.parquet"):
        old.unlink()
    rng = np.random.default_rng(seed)
    ua = rng.normal(0.0, 1.0, levels_a)
    ub = rng.normal(0.0, 0.5, levels_b)
    cats_a = pd.Index([f"a{i:06d}" for i in range(levels_a)])
    cats_b = pd.Index([f"b{i:05d}" for i in range(levels_b)])
    per_file = -(-rows // files)
    for k in range(files):
        n = min(per_file, rows - k * per_file)
        if n <= 0:
            break
        # every level in the first file, then uniform: all levels occur
        if k == 0:
            a = rng.permutation(np.arange(n) % levels_a)
            b = rng.permutation(np.arange(n) % levels_b)
        else:
            a = rng.integers(0, levels_a, n)
            b = rng.integers(0, levels_b, n)
        X = rng.normal(size=(n, 3))
        y = 1.0 + X @ [0.5, -0.3, 0.2] + ua[a] + ub[b] + rng.normal(0.0, 1.0, n)
        df = pd.DataFrame(
            {
                "y": y,
                "x1": X[:, 0],
                "x2": X[:, 1],
                "x3": X[:, 2],
                "a": pd.Categorical.from_codes(a, categories=cats_a),
                "b": pd.Categorical.from_codes(b, categories=cats_b),
            }
        )
        df.to_parquet(
            folder / f"part-{k:03d}.parquet",
            row_group_size=250_000,
            index=False,
            write_page_checksum=True,  # pages carry CRCs, which the reader verifies
        )
    done.write_text(json.dumps(meta))


# ---------------------------------------------------------------------------- one run


class TreeRSS:
    """Peak of the summed RSS of this process and its descendants, sampled in a thread."""

    def __init__(self, interval: float = 0.1):
        import psutil

        self.proc = psutil.Process()
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> int:
        total = 0
        for p in [self.proc, *self.proc.children(recursive=True)]:
            try:
                total += p.memory_info().rss
            except Exception:  # a child that just exited
                pass
        return total

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self._sample())
            self._stop.wait(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._sample())


def run_once(mode: str, folder: Path, chunk_size: int, result: Path | None = None) -> dict:
    """The whole fit in this process; returns the measurement.

    A partial record (the passes, then the evaluations so far) is written to ``result`` as
    the fit goes, so a run stopped by the time limit still reports what it measured.
    """
    import resource
    import warnings

    import sparselme as sl
    from sparselme.lme4 import LinearMixedModel
    from sparselme.streaming import streamed_design

    record: dict = {"mode": mode}
    cluster = client = None
    with TreeRSS() as rss:
        if mode == "dask":
            import dask.dataframe as dd
            from distributed import Client, LocalCluster

            t = time.perf_counter()
            cluster = LocalCluster(
                n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
            )
            client = Client(cluster)
            record["cluster_start_s"] = time.perf_counter() - t
            data = dd.read_parquet(str(folder))
            record["partitions"] = int(data.npartitions)
        else:
            data = str(folder)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            start = time.perf_counter()
            design, cp = streamed_design(FORMULA, data, chunk_size=chunk_size)
            two_passes = time.perf_counter() - start
            model = LinearMixedModel(design, cp=cp)  # the engine's symbolic analysis
            passes = time.perf_counter() - start
            record.update(
                two_passes_s=two_passes,
                engine_setup_s=passes - two_passes,
                passes_s=passes,
                nobs=int(model.design.nobs),
                factorization=type(model.pls.chol).__name__,
                peak_rss_tree_gb=rss.peak / 2**30,
            )
            _checkpoint(record, result)
            evals: list[float] = []
            objective = model.objective

            def timed(theta, reml=True):
                t0 = time.perf_counter()
                value = objective(theta, reml)
                evals.append(time.perf_counter() - t0)
                record.update(evals_so_far=len(evals), s_per_eval_so_far=float(np.median(evals)))
                record["eval_s"] = [round(v, 3) for v in evals]
                record["peak_rss_tree_gb"] = rss.peak / 2**30
                _checkpoint(record, result)
                return value

            model.objective = timed
            res = model.fit(REML=True)
            total = time.perf_counter() - start
        record.update(
            passes_s=passes,
            fit_s=total - passes,
            total_s=total,
            nobs=int(res.nobs),
            evals=int(res.optsum.feval),
            s_per_eval=(total - passes) / max(int(res.optsum.feval), 1),
            loglik=float(res.llf),
            theta=[float(v) for v in res.theta],
            fixef=[float(v) for v in res.fe_params],
            factorization=type(model.pls.chol).__name__,
            warnings=sorted({str(w.message)[:120] for w in caught}),
            version=sl.__version__,
        )
        if client is not None:
            client.close()
            cluster.close()
    record["peak_rss_tree_gb"] = rss.peak / 2**30
    record["peak_rss_driver_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    return record


def _checkpoint(record: dict, result: Path | None) -> None:
    if result is not None:
        result.with_suffix(".partial").write_text(json.dumps(record))


# ---------------------------------------------------------------------------- driver


def _median(runs: list[dict], key: str):
    vals = [r[key] for r in runs if r.get(key) is not None]
    return statistics.median(vals) if vals else None


def _stopped_row(mode: str, r: dict) -> str:
    def num(key: str, fmt: str) -> str:
        return fmt.format(r[key]) if r.get(key) is not None else ""

    return (
        f"| {mode} | {r.get('note', 'failed')} | {num('two_passes_s', '{:.1f}')} | "
        f"{num('engine_setup_s', '{:.1f}')} | stopped | "
        f"{num('evals_so_far', '{:d}')} done | {num('s_per_eval_so_far', '{:.2f}')} | "
        f"{num('peak_rss_tree_gb', '{:.2f}')} | | |"
    )


def report(runs: list[dict], meta: dict) -> str:
    lines = [
        f"# Streaming benchmark: {meta['rows']:,} rows, a: {meta['levels_a']:,} x "
        f"b: {meta['levels_b']:,} levels",
        "",
        f"`{FORMULA}`, REML; {meta['cpu']}, {meta['cores']} cores, {meta['mem_gib']:.0f} GiB; "
        f"chunk_size={meta['chunk_size']:,}; {meta['reps']} repetition(s), medians "
        f"(min-max); load average at start {meta['loadavg']}.",
        "",
        "| mode | total s | two passes s | engine setup s | optimizer s | evals | s/eval "
        "| peak RSS GB (tree) | logLik | target |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for mode in ("parquet", "dask"):
        rs = [r for r in runs if r["mode"] == mode and r.get("status") == "ok"]
        if not rs:  # stopped runs: what they measured before the time limit
            for r in (r for r in runs if r["mode"] == mode):
                lines.append(_stopped_row(mode, r))
            continue

        def cell(key: str, fmt: str = "{:.1f}", rs: list[dict] = rs) -> str:
            vals = [r[key] for r in rs]
            med = fmt.format(statistics.median(vals))
            return (
                med
                if len(vals) == 1
                else f"{med} ({fmt.format(min(vals))}-{fmt.format(max(vals))})"
            )

        ok_t = statistics.median(r["total_s"] for r in rs) <= TARGET_S
        ok_m = statistics.median(r["peak_rss_tree_gb"] for r in rs) <= TARGET_GB
        target = (
            f"≤ {TARGET_S:.0f} s {'met' if ok_t else 'MISSED'}, "
            f"≤ {TARGET_GB:.0f} GB {'met' if ok_m else 'MISSED'}"
        )
        lines.append(
            f"| {mode} | {cell('total_s')} | {cell('two_passes_s')} | {cell('engine_setup_s')} | "
            f"{cell('fit_s')} | "
            f"{_median(rs, 'evals'):.0f} | {cell('s_per_eval', '{:.2f}')} | "
            f"{cell('peak_rss_tree_gb', '{:.2f}')} | {rs[0]['loglik']:.2f} | {target} |"
        )
    lines += [
        "",
        "Factorization: " + ", ".join(sorted({r.get("factorization", "?") for r in runs})),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.streaming", description=__doc__)
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--levels-a", type=int, default=100_000)
    ap.add_argument("--levels-b", type=int, default=10_000)
    ap.add_argument("--files", type=int, default=10)
    ap.add_argument("--chunk-size", type=int, default=1_000_000)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--modes", default="parquet,dask")
    ap.add_argument("--data", type=Path, default=None, help="Parquet folder (cached)")
    ap.add_argument("--out", type=Path, default=OUT / "streaming.json")
    ap.add_argument("--timeout", type=float, default=1800.0, help="per run, seconds")
    ap.add_argument("--worker", choices=["parquet", "dask"], help=argparse.SUPPRESS)
    ap.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    folder = args.data or Path(tempfile.gettempdir()) / (
        f"sparselme-streaming-{args.rows}-{args.levels_a}-{args.levels_b}"
    )
    if args.worker:  # one run in this (fresh) process
        record = run_once(args.worker, folder, args.chunk_size, args.result)
        args.result.write_text(json.dumps(record))
        return 0

    t = time.perf_counter()
    write_data(folder, args.rows, args.levels_a, args.levels_b, args.files)
    print(f"data in {folder} ({time.perf_counter() - t:.0f} s)", flush=True)
    from . import machine

    meta = {
        "rows": args.rows,
        "levels_a": args.levels_a,
        "levels_b": args.levels_b,
        "chunk_size": args.chunk_size,
        "reps": args.reps,
        "cpu": machine.cpu_model(),
        "cores": os.cpu_count(),
        "mem_gib": machine.memory_gib() or 0.0,
        "loadavg": " ".join(f"{v:.2f}" for v in os.getloadavg()),
        "command": "python -m benchmarks.streaming " + " ".join(argv or sys.argv[1:]),
    }
    runs: list[dict] = []
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    for rep in range(args.reps):
        for mode in modes:
            with tempfile.TemporaryDirectory() as tmp:
                result = Path(tmp) / "r.json"
                cmd = [sys.executable, "-m", "benchmarks.streaming", "--worker", mode]
                cmd += ["--result", str(result), "--data", str(folder)]
                cmd += ["--chunk-size", str(args.chunk_size)]
                t = time.perf_counter()
                try:
                    proc = subprocess.run(cmd, cwd=REPO, timeout=args.timeout, capture_output=True)
                    if result.exists():
                        record = {"status": "ok", **json.loads(result.read_text())}
                    else:
                        tail = proc.stderr.decode(errors="replace").strip().splitlines()[-1:]
                        record = {"mode": mode, "status": "error", "note": " ".join(tail)}
                except subprocess.TimeoutExpired:
                    partial = result.with_suffix(".partial")
                    record = json.loads(partial.read_text()) if partial.exists() else {}
                    record.update(mode=mode, status="timeout", note=f"> {args.timeout:g} s")
                record.update(rep=rep, wall_s=time.perf_counter() - t, loadavg=os.getloadavg()[0])
            runs.append(record)
            print(json.dumps({k: v for k, v in record.items() if k not in ("theta", "fixef")}))
            sys.stdout.flush()
    text = report(runs, meta)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"meta": meta, "runs": runs}, indent=1))
    args.out.with_suffix(".md").write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
