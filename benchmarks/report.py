"""From a run's results to the published record and the docs page.

``results.csv`` (one line per fit, ``benchmarks/out/``, not kept in git) is summarized per
problem and library into `Row`s and kept as ``docs/benchmarks.json``: the published run.
``docs/benchmarks.md`` and its plots (``benchmarks.page``) are drawn from that record, so the
page can be redrawn without running the benchmarks again (``python -m benchmarks
--report-only``). The SPEC targets are checked for the console (`targets_lines`).
"""

from __future__ import annotations

import csv
import json
import statistics
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from .adapters import LIBRARIES
from .problems import PROBLEMS

FLAT_TARGET = 1.10  # SPEC §4: doubling n (same q) changes the cost of an evaluation by < 10%


MEASURED = (  # results.csv columns
    "fit_s",
    "evals",
    "s_per_eval",
    "loglik",
    "peak_rss_mb",
    "eval_median_s",
    "eval_max_s",
    "cholesky_s",
    "schur_order",
)


@dataclass
class Summary:
    """All runs of one (problem, library) pair: each measured column over the runs."""

    problem: str
    library: str
    values: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in MEASURED})
    nobs: int | None = None
    version: str = ""
    failure: str = ""  # status of the run that stopped this library: timeout, error, skipped
    notes: list[str] = field(default_factory=list)

    def median(self, column: str) -> float | None:
        return statistics.median(self.values[column]) if self.values[column] else None

    def quantile(self, column: str, q: float) -> float | None:
        """The q-quantile of a column over the runs (linear between order statistics)."""
        xs = sorted(self.values[column])
        if not xs:
            return None
        at = q * (len(xs) - 1)
        lo = int(at)
        return xs[lo] + (at - lo) * (xs[min(lo + 1, len(xs) - 1)] - xs[lo])


def _num(text: str) -> float | None:
    return float(text) if text not in ("", "None") else None


def load(csv_path: Path) -> dict[tuple[str, str], Summary]:
    summaries: dict[tuple[str, str], Summary] = {}
    with csv_path.open(newline="") as fh:
        for row in csv.DictReader(fh):
            key = (row["problem"], row["library"])
            s = summaries.setdefault(key, Summary(*key))
            if row["note"] and row["note"] not in s.notes:
                s.notes.append(row["note"])
            if row["status"] != "ok":
                s.failure = row["status"]
                continue
            s.nobs = int(row["nobs"])
            s.version = s.version or row["version"]
            for column in MEASURED:
                if (x := _num(row[column])) is not None:
                    s.values[column].append(x)
    return summaries


# ---------------------------------------------------------------------------- formatting


def fmt_s(x: float | None) -> str:
    if x is None:
        return "–"
    if x < 1:
        return f"{1e3 * x:.3g} ms"
    return f"{x:,.0f} s" if x >= 1000 else f"{x:.3g} s"


def fmt_ratio(r: float) -> str:
    return f"{r:.0f}×" if r >= 10 else f"{r:.1f}×"


def fmt_mb(x: float) -> str:
    return f"{x / 1024:.2f} GB" if x >= 1024 else f"{x:.0f} MB"


# ---------------------------------------------------------------------------- the record


@dataclass
class Row:
    """One (problem, library) of a run, summarized: what the page and the record show."""

    problem: str
    library: str
    median_s: float | None = None  # fit time over the repetitions that finished
    min_s: float | None = None
    max_s: float | None = None
    reps: int = 0
    evals: float | None = None  # median optimizer evaluations
    ms_per_eval: float | None = None  # median milliseconds per evaluation
    peak_rss_mb: float | None = None  # largest peak RSS
    loglik: float | None = None
    nobs: int | None = None
    version: str = ""
    failure: str = ""  # status of the run that stopped this library: timeout, error, skipped
    notes: list[str] = field(default_factory=list)
    p90_s: float | None = None  # 90th percentile of the fit times
    eval_median_ms: float | None = None  # median over the fits of each fit's median evaluation
    eval_max_ms: float | None = None  # the slowest evaluation of all fits
    schur_order: int | None = None  # order of the dense Schur complement (sparselme)
    cholesky_ms: float | None = None  # median ms of one LAPACK Cholesky of that order

    @property
    def limit_s(self) -> float | None:
        """The time limit it did not finish in (a timeout), else None."""
        return _limit_from(self.notes) if self.failure == "timeout" else None


def rows_from(summaries: dict[tuple[str, str], Summary]) -> list[Row]:
    """Rows in the registry's problem order and the libraries' order."""
    rows = []
    for p in PROBLEMS:
        for lib in LIBRARIES:
            s = summaries.get((p, lib))
            if s is None:
                continue
            times = s.values["fit_s"]
            per_eval = s.median("s_per_eval")

            def ms(x: float | None) -> float | None:
                return None if x is None else 1e3 * x

            order = s.median("schur_order")
            rows.append(
                Row(
                    s.problem,
                    s.library,
                    s.median("fit_s"),
                    min(times, default=None),
                    max(times, default=None),
                    len(times),
                    s.median("evals"),
                    None if per_eval is None else 1e3 * per_eval,
                    max(s.values["peak_rss_mb"], default=None),
                    s.median("loglik"),
                    s.nobs,
                    s.version,
                    s.failure,
                    list(s.notes),
                    s.quantile("fit_s", 0.9),
                    ms(s.median("eval_median_s")),
                    ms(max(s.values["eval_max_s"], default=None)),
                    None if order is None else int(order),
                    ms(s.median("cholesky_s")),
                )
            )
    return rows


def save_record(rows: list[Row], meta: dict, path: Path) -> None:
    record = {"meta": meta, "rows": [asdict(r) for r in rows]}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def load_record(path: Path) -> tuple[list[Row], dict]:
    record = json.loads(path.read_text(encoding="utf-8"))
    known = {f.name for f in fields(Row)}
    rows = [Row(**{k: v for k, v in r.items() if k in known}) for r in record["rows"]]
    return rows, record.get("meta", {})


def _limit_from(notes: list[str]) -> float | None:
    for note in notes:
        if note.startswith("did not finish in "):
            return float(note.split()[4])
    return None


def find(rows: list[Row], problem: str, library: str) -> Row | None:
    return next((r for r in rows if r.problem == problem and r.library == library), None)


def flat_pairs(rows: list[Row]) -> list[tuple[str, str, list[tuple[str, Row, Row]]]]:
    """(problem at n, problem at 2n, [(library, row at n, row at 2n)]) per pair that ran."""
    pairs: dict[str, list[str]] = {}
    for p in PROBLEMS.values():
        if p.pair:
            pairs.setdefault(p.pair, []).append(p.name)
    out = []
    for members in pairs.values():
        if len(members) != 2:
            continue
        small, large = members
        both = [(lib, find(rows, small, lib), find(rows, large, lib)) for lib in LIBRARIES]
        both = [(lib, a, b) for lib, a, b in both if a and b and a.ms_per_eval and b.ms_per_eval]
        if both:
            out.append((small, large, both))
    return out


# SPEC §4's targets
INSTEVAL_MAX_S = 0.25  # median fit time, default settings
LME4_MIN_RATIO = 10.0  # lme4's median over sparselme's, same run
P90_MAX_RATIO = 1.3  # p90 / median of the fit times
BUSY_MAX_RATIO = 1.5  # median beside a CPU-bound process / quiet median
FLOOR_MAX_RATIO = 1.5  # time per evaluation / one LAPACK Cholesky of the Schur order
IMPORT_MAX_S = 0.3  # import sparselme


def floor_ratio(r: Row) -> float | None:
    """Time per evaluation over one LAPACK Cholesky of the dense Schur order, same process."""
    if r.ms_per_eval and r.cholesky_ms:
        return r.ms_per_eval / r.cholesky_ms
    return None


def targets(rows: list[Row], meta: dict) -> list[tuple[str, str, bool | None]]:
    """(target, this run's figure, met — None where not measured) for SPEC §4."""
    out: list[tuple[str, str, bool | None]] = []

    def add(label: str, figure: str | None, ok: bool | None) -> None:
        out.append((label, figure if figure is not None else "not measured", ok))

    def sl(problem: str) -> Row | None:
        r = find(rows, problem, "sparselme")
        return r if r is not None and r.median_s is not None else None

    quiet, busy = sl("insteval"), sl("insteval_busy")
    lme4 = find(rows, "insteval", "lme4")
    if quiet is None:
        add(f"InstEval median <= {INSTEVAL_MAX_S} s", None, None)
    else:
        add(
            f"InstEval median <= {INSTEVAL_MAX_S} s",
            fmt_s(quiet.median_s),
            quiet.median_s <= INSTEVAL_MAX_S,
        )
        if lme4 is not None and lme4.median_s:
            ratio = lme4.median_s / quiet.median_s
            add(
                f"InstEval >= {LME4_MIN_RATIO:g}x lme4",
                f"{ratio:.1f}x (lme4 {fmt_s(lme4.median_s)})",
                ratio >= LME4_MIN_RATIO,
            )
        else:
            add(f"InstEval >= {LME4_MIN_RATIO:g}x lme4", None, None)
        if quiet.p90_s is not None:
            ratio = quiet.p90_s / quiet.median_s
            add(
                f"InstEval p90/median <= {P90_MAX_RATIO}",
                f"{ratio:.2f} ({quiet.reps} fits)",
                ratio <= P90_MAX_RATIO,
            )
        if busy is not None:
            ratio = busy.median_s / quiet.median_s
            add(
                f"InstEval beside a CPU-bound process <= {BUSY_MAX_RATIO}x quiet",
                f"{ratio:.2f}x ({fmt_s(busy.median_s)})",
                ratio <= BUSY_MAX_RATIO,
            )
        ratio = floor_ratio(quiet)
        add(
            f"per evaluation <= {FLOOR_MAX_RATIO}x one Cholesky of the Schur order",
            None
            if ratio is None
            else f"{ratio:.2f}x ({quiet.ms_per_eval:.1f} ms vs dpotrf("
            f"{quiet.schur_order}) {quiet.cholesky_ms:.1f} ms)",
            None if ratio is None else ratio <= FLOOR_MAX_RATIO,
        )
    imp = meta.get("import_s")
    add(
        f"import sparselme <= {IMPORT_MAX_S} s",
        None if imp is None else fmt_s(imp),
        None if imp is None else imp <= IMPORT_MAX_S,
    )
    flat = None
    for _, _, libs in flat_pairs(rows):
        for lib, a, b in libs:
            if lib == "sparselme":
                flat = b.ms_per_eval / a.ms_per_eval
    add(
        "flat in n: per-evaluation ratio at 2n / n < 1.10",
        None if flat is None else f"{flat:.2f}",
        None if flat is None else flat < FLAT_TARGET,
    )

    def timed(problem: str, label: str, limit_s: float, limit_gb: float | None = None) -> None:
        r = sl(problem)
        if r is None:
            add(label, None, None)
            return
        ok = r.median_s <= limit_s
        figure = fmt_s(r.median_s)
        if limit_gb is not None and r.peak_rss_mb:
            figure += f", peak RSS {r.peak_rss_mb / 1024:.2f} GB"
            ok = ok and r.peak_rss_mb / 1024 <= limit_gb
        add(label, figure, ok)

    timed("slopes_100k", "random slopes, 100,000 groups x 10: <= 5 s", 5)
    timed("crossed_1m", "crossed, 1M rows: <= 20 s, <= 4 GB", 20, 4)
    timed("parquet_10m", "10M rows from Parquet: <= 200 s, <= 8 GB", 200, 8)
    return out


def targets_lines(rows: list[Row], meta: dict | None = None) -> list[str]:
    """SPEC §4's targets against this run, for the console."""
    verdict = {True: "met", False: "NOT MET", None: ""}
    return [
        f"{label:<62} {figure}{': ' + verdict[ok] if ok is not None else ''}"
        for label, figure, ok in targets(rows, meta or {})
    ]


def write(csv_path: Path, meta_path: Path, docs_dir: Path) -> tuple[Path, list[Path]]:
    """Record the run of ``csv_path`` as ``docs_dir/benchmarks.json`` and draw the page from it.

    Without ``csv_path`` the page is redrawn from the record already there. Returns the
    page and its plots (none where matplotlib is not installed).
    """
    from . import page

    record = docs_dir / "benchmarks.json"
    if csv_path.exists():
        meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
        rows = rows_from(load(csv_path))
        save_record(rows, meta, record)
    elif record.exists():
        rows, meta = load_record(record)
    else:
        raise FileNotFoundError(f"neither {csv_path} nor {record} exists: run the benchmarks")
    return page.write(rows, meta, docs_dir)
