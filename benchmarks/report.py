"""From results.csv to ``docs/benchmarks.md`` (tables) and ``docs/img/benchmarks.png`` (plot)."""

from __future__ import annotations

import csv
import json
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .adapters import LIBRARIES
from .problems import PROBLEMS

FLAT_TARGET = 1.10  # SPEC §4: doubling n (same q) changes the cost of an evaluation by < 10%


@dataclass
class Summary:
    """All runs of one (problem, library) pair."""

    problem: str
    library: str
    times: list[float] = field(default_factory=list)
    evals: list[int] = field(default_factory=list)
    per_eval: list[float] = field(default_factory=list)
    logliks: list[float] = field(default_factory=list)
    rss_mb: list[float] = field(default_factory=list)
    nobs: int | None = None
    version: str = ""
    failure: str = ""  # status of the run that stopped this library: timeout, error, skipped
    notes: list[str] = field(default_factory=list)

    @property
    def median(self) -> float | None:
        return statistics.median(self.times) if self.times else None

    @property
    def loglik(self) -> float | None:
        return statistics.median(self.logliks) if self.logliks else None


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
            s.times.append(float(row["fit_s"]))
            s.nobs = int(row["nobs"])
            s.version = s.version or row["version"]
            for values, text in (
                (s.evals, row["evals"]),
                (s.per_eval, row["s_per_eval"]),
                (s.logliks, row["loglik"]),
                (s.rss_mb, row["peak_rss_mb"]),
            ):
                if (x := _num(text)) is not None:
                    values.append(x)
    return summaries


# ---------------------------------------------------------------------------- formatting


def fmt_s(x: float | None) -> str:
    if x is None:
        return "–"
    if x < 1:
        return f"{1e3 * x:.3g} ms"
    return f"{x:,.0f} s" if x >= 1000 else f"{x:.3g} s"


def fmt_ms(seconds: float) -> str:
    ms = 1e3 * seconds
    return f"{ms:,.0f}" if ms >= 1000 else f"{ms:.3g}"


def fmt_ratio(r: float) -> str:
    return f"{r:.0f}×" if r >= 10 else f"{r:.2f}×"


def fmt_mb(x: float) -> str:
    return f"{x / 1024:.2f} GB" if x >= 1024 else f"{x:.0f} MB"


def _ordered(summaries: dict[tuple[str, str], Summary]) -> list[Summary]:
    problems = [p for p in PROBLEMS if any(k[0] == p for k in summaries)]
    return [summaries[(p, lib)] for p in problems for lib in LIBRARIES if (p, lib) in summaries]


def _table_row(s: Summary, ref: Summary | None, limit_note: str) -> str:
    notes = list(s.notes)
    ratio = ""
    if s.times and ref is not None and ref.median:
        ratio = "1 (ref)" if s is ref else fmt_ratio(s.median / ref.median)
    elif s.failure == "timeout" and ref is not None and ref.median:
        limit = _limit_from(s.notes)
        ratio = f"> {fmt_ratio(limit / ref.median)}" if limit else ""
    if s.loglik is not None and ref is not None and ref.loglik is not None and s is not ref:
        if abs(s.loglik - ref.loglik) > 0.01:
            notes.append(f"logLik {s.loglik:.2f} vs sparselme {ref.loglik:.2f}")
    if s.failure == "skipped" and not s.times:
        notes = [f"skipped: {n}" for n in notes]
    per_eval = ""
    if s.per_eval:
        per_eval = fmt_ms(statistics.median(s.per_eval))
        if s.library == "lme4":
            per_eval += limit_note
    minmax = f"{fmt_s(min(s.times))} – {fmt_s(max(s.times))}" if len(s.times) > 1 else ""
    cells = [
        s.problem,
        s.library,
        fmt_s(s.median) if s.times else "–",
        minmax,
        ratio,
        f"{statistics.median(s.evals):.0f}" if s.evals else "",
        per_eval,
        fmt_mb(max(s.rss_mb)) if s.rss_mb else "",
        "; ".join(notes).replace("|", "\\|"),
    ]
    return "| " + " | ".join(cells) + " |"


def _limit_from(notes: list[str]) -> float | None:
    for note in notes:
        if note.startswith("did not finish in "):
            return float(note.split()[4])
    return None


def results_table(summaries: dict[tuple[str, str], Summary]) -> list[str]:
    lines = [
        "| problem | library | median | min – max | ratio to sparselme | evaluations "
        "| ms per evaluation | peak RSS | notes |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for s in _ordered(summaries):
        if PROBLEMS[s.problem].pending:  # one row for all libraries
            if s.library == LIBRARIES[0]:
                lines.append(f"| {s.problem} | all | – | | | | | | {'; '.join(s.notes)} |")
            continue
        ref = summaries.get((s.problem, "sparselme"))
        lines.append(_table_row(s, ref, " †"))
    return lines


def flat_table(summaries: dict[tuple[str, str], Summary]) -> list[str]:
    """Time per θ evaluation at n and 2n (same levels) for each pair of problems."""
    lines: list[str] = []
    pairs: dict[str, list[str]] = {}
    for p in PROBLEMS.values():
        if p.pair:
            pairs.setdefault(p.pair, []).append(p.name)
    for members in pairs.values():
        if len(members) != 2:
            continue
        small, large = members
        if not any((small, lib) in summaries for lib in LIBRARIES):
            continue
        lines += [
            f"| library | ms per evaluation, {small} | ms per evaluation, {large} "
            f"| ratio (target < {FLAT_TARGET:.2f}) |",
            "| --- | ---: | ---: | ---: |",
        ]
        for lib in LIBRARIES:
            a, b = summaries.get((small, lib)), summaries.get((large, lib))
            if not (a and b and a.per_eval and b.per_eval):
                continue
            ta, tb = statistics.median(a.per_eval), statistics.median(b.per_eval)
            verdict = "met" if tb / ta < FLAT_TARGET else "not met"
            mark = " †" if lib == "lme4" else ""
            lines.append(
                f"| {lib} | {fmt_ms(ta)}{mark} (n = {a.nobs:,}) | {fmt_ms(tb)}{mark} "
                f"(n = {b.nobs:,}) | {tb / ta:.2f} ({verdict}) |"
            )
    return lines


def _target(
    summaries: dict[tuple[str, str], Summary], problem: str, check: Callable[[Summary], str]
) -> str:
    s = summaries.get((problem, "sparselme"))
    if s is None:
        return "not run"
    if not s.times:
        return s.notes[0] if s.notes else "no result"
    return check(s)


def targets_table(summaries: dict[tuple[str, str], Summary]) -> list[str]:
    def met(ok: bool) -> str:
        return "met" if ok else "**not met**"

    def insteval(s: Summary) -> str:
        text = f"{fmt_s(s.median)}: {met(s.median <= 1.0)}"
        lme4 = summaries.get(("insteval", "lme4"))
        if lme4 and lme4.median:
            r = lme4.median / s.median
            text += f"; lme4/sparselme {r:.1f}: {met(r >= 12)}"
        else:
            text += "; lme4 not measured"
        return text

    def flat(pair: tuple[str, str]) -> str:
        a, b = (summaries.get((p, "sparselme")) for p in pair)
        if not (a and b and a.per_eval and b.per_eval):
            return "not run"
        r = statistics.median(b.per_eval) / statistics.median(a.per_eval)
        return f"ratio {r:.2f}: {met(r < FLAT_TARGET)}"

    def time_and_rss(limit_s: float, limit_gb: float) -> Callable[[Summary], str]:
        def check(s: Summary) -> str:
            gb = max(s.rss_mb) / 1024 if s.rss_mb else float("nan")
            return (
                f"{fmt_s(s.median)}: {met(s.median <= limit_s)}; "
                f"peak RSS {gb:.2f} GB: {met(gb <= limit_gb)}"
            )

        return check

    rows = [
        (
            "InstEval REML: ≤ 1.0 s, ≥ 12× faster than lme4",
            _target(summaries, "insteval", insteval),
        ),
        ("flat in n: per-evaluation ratio at 2n / n < 1.10", flat(("flat_200k", "flat_400k"))),
        (
            "random slopes, 100,000 groups × 10: ≤ 5 s",
            _target(summaries, "slopes_100k", lambda s: f"{fmt_s(s.median)}: {met(s.median <= 5)}"),
        ),
        (
            "crossed, 1M rows, 50,000 × 5,000: ≤ 20 s, ≤ 4 GB",
            _target(summaries, "crossed_1m", time_and_rss(20, 4)),
        ),
        (
            "10M rows from Parquet: ≤ 200 s, ≤ 8 GB",
            _target(summaries, "parquet_10m", time_and_rss(200, 8)),
        ),
    ]
    return ["| SPEC §4 target | sparselme, this run |", "| --- | --- |"] + [
        f"| {label} | {value} |" for label, value in rows
    ]


# ---------------------------------------------------------------------------- plot

COLORS = {"sparselme": "#1b9e77", "statsmodels": "#d95f02", "lme4": "#7570b3"}


def plot(summaries: dict[tuple[str, str], Summary], png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [s for s in _ordered(summaries) if s.times or s.failure == "timeout"]
    problems = list(dict.fromkeys(s.problem for s in shown))
    fig, ax = plt.subplots(figsize=(8, 0.6 * len(problems) + 1.4))
    offsets = {lib: 0.22 * (i - 1) for i, lib in enumerate(LIBRARIES)}
    for s in shown:
        y = problems.index(s.problem) + offsets[s.library]
        color = COLORS[s.library]
        if s.times:
            ax.hlines(y, min(s.times), max(s.times), color=color, lw=2)
            ax.plot(s.median, y, "o", color=color)
        elif (limit := _limit_from(s.notes)) is not None:
            ax.plot(limit, y, ">", color=color, mfc="none")
            ax.annotate(
                f"did not finish in {limit:g} s",
                (limit, y),
                xytext=(-6, 0),
                textcoords="offset points",
                ha="right",
                va="center",
                fontsize=7,
                color=color,
            )
    ax.set_xscale("log")
    ax.set_yticks(range(len(problems)), problems)
    ax.invert_yaxis()
    ax.set_xlabel("fit time, seconds (log scale; dot = median, bar = min – max)")
    ax.grid(axis="x", which="both", alpha=0.3)
    handles = [
        plt.Line2D([], [], marker="o", ls="", color=COLORS[lib], label=lib)
        for lib in LIBRARIES
        if any(s.library == lib for s in shown)
    ]
    ax.legend(handles=handles, loc="upper left", fontsize=8)
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=120)
    plt.close(fig)


# ---------------------------------------------------------------------------- markdown


def markdown(summaries: dict[tuple[str, str], Summary], meta: dict, png_rel: str | None) -> str:
    m = meta.get("machine", {})
    versions = {
        lib: next((s.version for s in _ordered(summaries) if s.library == lib and s.version), "")
        for lib in LIBRARIES
    }
    lme4_version, _, r_blas = versions["lme4"].partition(", BLAS ")
    run_problems = list(dict.fromkeys(s.problem for s in _ordered(summaries)))
    wall = ""
    if "wall_s" in meta:
        w = meta["wall_s"]
        wall = f"; wall time {w / 60:.0f} min" if w >= 120 else f"; wall time {w} s"
    lines = [
        "# Benchmarks",
        "",
        "sparselme, statsmodels and lme4 fitting the same models side by side, in one run of",
        "",
        f"    {meta.get('command', 'python -m benchmarks')}",
        "",
        f"started {meta.get('started', '?')} (sparselme commit {m.get('commit', '?')}{wall}).",
        f"Regenerate with `make bench`; it writes every run to `{meta.get('csv', 'results.csv')}` "
        "(not kept in git).",
        "",
        f"- **Machine:** {m.get('cpu', '?')}, {m.get('cores', '?')} cores "
        f"({m.get('cores_usable', '?')} usable), {m.get('memory', '?')} RAM; {m.get('os', '?')}",
        f"- **BLAS:** numpy: {m.get('blas_numpy', '?')}; CHOLMOD (scikit-sparse): "
        f"{m.get('blas_cholmod', '?')}" + (f"; R: {r_blas}" if r_blas else ""),
        f"- **Versions:** Python {m.get('python', '?')}, numpy {m.get('numpy', '?')}, "
        f"scipy {m.get('scipy', '?')}, sparselme {versions['sparselme'] or '?'}, "
        f"statsmodels {versions['statsmodels'] or 'not run'}, "
        f"lme4 {lme4_version or 'not run'}",
        "",
        "## Fit times",
        "",
        *results_table(summaries),
        "",
        f"![fit times]({png_rel})" if png_rel else "(no plot: matplotlib is not installed)",
        "",
        "## Time per θ evaluation, flat in n",
        "",
        "The same levels (q) at n and 2n rows: the cost of one evaluation should not grow with n.",
        "",
        *(flat_table(summaries) or ["(the flat-in-n pair was not run)"]),
        "",
        "## Targets",
        "",
        *targets_table(summaries),
        "",
        "## Problems",
        "",
        *[f"- `{p}`: {PROBLEMS[p].description}" for p in run_problems],
        "",
        "## How it is measured",
        "",
        "- Every run is a fresh process (`python -m benchmarks.worker`); for each problem the "
        "libraries are interleaved (repetition 1: sparselme, statsmodels, lme4; repetition 2: "
        "...), because the machine is shared. First-call overheads are included: they dominate "
        "the small problems.",
        "- **Fit time** is the wall clock of the fit call with the data already in memory: "
        "`sparselme.lmer(...)`; `MixedLM.from_formula(...).fit()`; "
        "`system.time(lmer(...))` in R, with the CSV read excluded. A streamed problem "
        "(`parquet_10m`) is the exception: `sparselme.lmer(formula, folder)` reads the Parquet "
        "files twice in 1,000,000-row batches within the timed call, and its peak RSS is that "
        "of the reading process (`python -m benchmarks.streaming` also runs it through Dask).",
        "- **Evaluations:** sparselme `optsum.feval`; lme4 `optinfo$feval`; statsmodels, the "
        "calls of `MixedLM.loglike` (its gradient is computed on top).",
        "- **ms per evaluation:** sparselme `optsum.time_per_evaluation` (mean over the "
        "optimization); † lme4, the deviance function re-evaluated at the optimum after the fit "
        "(about a second of calls); statsmodels does not report it.",
        "- **Peak RSS** is `ru_maxrss` of the worker process (Python, data included) or, for "
        "lme4, of the R process (reading the CSV included).",
        f"- Time limits: {meta.get('statsmodels_limit_s', 300):g} s for statsmodels, "
        f"{meta.get('limit_s', 1800):g} s for the others, counted once the data are built; "
        "a library that does not finish once "
        "is not repeated on that problem. statsmodels is not attempted on crossed designs "
        "(one all-rows group with `vc_formula` works with dense n × q blocks; on InstEval it "
        "did not finish in 20 minutes, issue 5); "
        "`--try-hopeless` attempts them anyway.",
        '- "ratio to sparselme" is median / sparselme\'s median from the same run.',
        "",
    ]
    return "\n".join(lines)


def write(csv_path: Path, meta_path: Path, docs_dir: Path) -> tuple[Path, Path | None]:
    """Write benchmarks.md and img/benchmarks.png (the plot only where matplotlib is installed)."""
    summaries = load(csv_path)
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    md, png = docs_dir / "benchmarks.md", docs_dir / "img" / "benchmarks.png"
    try:
        plot(summaries, png)
    except ImportError:
        png = None
    docs_dir.mkdir(parents=True, exist_ok=True)
    md.write_text(markdown(summaries, meta, png.relative_to(docs_dir).as_posix() if png else None))
    return md, png
