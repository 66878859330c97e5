"""The docs page of a benchmark run: ``docs/benchmarks.md`` and one plot per workload.

Drawn from the run's `Row`s (``benchmarks.report``): a table of all workloads at a glance,
then per workload a plot and a narrow table of the libraries, with the run's notes as a
list under it, the per-evaluation cost as the rows double, and how it was measured.
"""

from __future__ import annotations

from pathlib import Path

from .adapters import LIBRARIES
from .problems import PROBLEMS
from .report import Row, find, flat_pairs, fmt_mb, fmt_ratio, fmt_s

COLORS = {"sparselme": "#1b9e77", "statsmodels": "#d95f02", "lme4": "#7570b3", "glmmTMB": "#e7298a"}
LME4_MARK = " †"  # lme4's time per evaluation is measured after the fit (see the page)


def _ms(ms: float) -> str:
    return f"{ms / 1e3:.3g} s" if ms >= 1000 else f"{ms:.3g} ms"


def _span(lo: float, hi: float) -> str:
    """``373 – 474 ms``, or ``0.9 s – 1.1 s`` when the units differ."""
    a, b = fmt_s(lo), fmt_s(hi)
    if a.split()[-1] == b.split()[-1]:
        return f"{a.rsplit(' ', 1)[0]} – {b}"
    return f"{a} – {b}"


def _skip_reason(r: Row) -> str:
    return "; ".join(n.removeprefix("hopeless: ") for n in r.notes) or "not attempted"


class _Footnotes:
    """Numbered reasons why a library was not run, shared by all tables of the page."""

    def __init__(self):
        self.reasons: list[str] = []

    def mark(self, reason: str) -> str:
        if reason not in self.reasons:
            self.reasons.append(reason)
        return "¹²³⁴⁵⁶⁷⁸⁹"[self.reasons.index(reason) % 9]

    def lines(self) -> list[str]:
        """One paragraph per reason."""
        return [line for r in self.reasons for line in (f"{self.mark(r)} Not attempted: {r}.", "")]


def _time_cell(r: Row | None, notes: _Footnotes, ref: Row | None = None) -> str:
    """Median fit time (with the ratio to sparselme), or why there is none."""
    if r is None:
        return "–"
    if r.median_s is None:
        if r.limit_s is not None:
            return f"did not finish in {r.limit_s:g} s"
        if r.failure == "skipped":
            return f"not attempted{notes.mark(_skip_reason(r))}"
        return f"failed ({r.failure})" if r.failure else "–"
    text = fmt_s(r.median_s)
    if ref is not None and ref is not r and ref.median_s:
        text += f" ({fmt_ratio(r.median_s / ref.median_s)})"
    return text


def glance_table(rows: list[Row], notes: _Footnotes) -> list[str]:
    libs = [lib for lib in LIBRARIES if any(r.library == lib for r in rows)]
    lines = [
        "| workload | rows | " + " | ".join(libs) + " |",
        "| --- | ---: | " + " | ".join("---:" for _ in libs) + " |",
    ]
    for problem in dict.fromkeys(r.problem for r in rows):
        ref = find(rows, problem, "sparselme")
        nobs = next((r.nobs for r in rows if r.problem == problem and r.nobs), None)
        title = PROBLEMS[problem].title or problem
        cells = [f"[{title}](#{problem})", f"{nobs:,}" if nobs else ""]
        for lib in libs:
            cell = _time_cell(find(rows, problem, lib), notes, ref)
            cells.append(f"**{cell}**" if lib == "sparselme" and ref and ref.median_s else cell)
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def workload_section(
    problem: str, rows: list[Row], plot: str | None, notes: _Footnotes, separate: dict
):
    p = PROBLEMS[problem]
    ref = find(rows, problem, "sparselme")
    lines = [f"### {p.title or problem} {{#{problem}}}", "", f"{p.description}.", ""]
    run = separate.get(problem)
    if run:  # an optional workload, measured on its own and merged into the record
        commit = run.get("machine", {}).get("commit", "?")
        lines += [
            f"Measured in a separate run, `{run.get('command', '?')}`, started "
            f"{run.get('started', '?')} at sparselme commit {commit}.",
            "",
        ]
    if plot:
        lines += [f"![Fit times of each library on {problem}]({plot})", ""]
    lines += [
        "| library | fit time (min – max) | × sparselme | evaluations | per evaluation "
        "| peak memory |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    remarks = []
    for lib in LIBRARIES:
        r = find(rows, problem, lib)
        if r is None:
            continue
        if r.median_s is None:
            lines.append(f"| {lib} | {_time_cell(r, notes)} | | | | |")
            if r.limit_s is None and r.failure != "skipped" and r.notes:
                remarks.append(f"- **{lib}**: {'; '.join(r.notes)}.")
            continue
        time = fmt_s(r.median_s)
        if r.reps > 1 and r.max_s > r.min_s:
            time += f" ({_span(r.min_s, r.max_s)})"
        ratio = "" if ref is None or not ref.median_s else fmt_ratio(r.median_s / ref.median_s)
        ratio = "1×" if r is ref else ratio
        per_eval = ""
        if r.ms_per_eval:
            per_eval = _ms(r.ms_per_eval) + (LME4_MARK if lib == "lme4" else "")
        evals = f"{r.evals:.0f}" if r.evals is not None else ""
        rss = fmt_mb(r.peak_rss_mb) if r.peak_rss_mb else ""
        lines.append(f"| {lib} | {time} | {ratio} | {evals} | {per_eval} | {rss} |")
        said = list(r.notes) + _spread(r, rows)
        if r is not ref and r.loglik is not None and ref and ref.loglik is not None:
            if abs(r.loglik - ref.loglik) > 0.01:
                said.append(f"log-likelihood {r.loglik:.2f}, sparselme's {ref.loglik:.2f}")
        if said:
            remarks.append(f"- **{lib}**: {'; '.join(said)}.")
    return lines + ([""] + remarks if remarks else []) + [""]


def _spread(r: Row, rows: list[Row]) -> list[str]:
    """sparselme's figures beyond the table: the fits' spread, the evaluations' spread and
    their floor, and the ratio to the quiet run for a workload beside a competing process."""
    if r.library != "sparselme" or r.median_s is None:
        return []
    out = []
    if r.p90_s is not None and r.reps >= 5:
        out.append(
            f"p90 of the {r.reps} fit times {fmt_s(r.p90_s)}, {r.p90_s / r.median_s:.2f}× "
            "the median"
        )
    if r.eval_median_ms is not None and r.eval_max_ms is not None:
        out.append(f"evaluations {_ms(r.eval_median_ms)} (median), slowest {_ms(r.eval_max_ms)}")
    if r.cholesky_ms and r.ms_per_eval and r.schur_order:
        out.append(
            "one LAPACK Cholesky of the order factored at each evaluation (the dense Schur "
            f"complement with [X y] appended, {r.schur_order:,}) "
            f"took {_ms(r.cholesky_ms)} in the same process: an evaluation costs "
            f"{r.ms_per_eval / r.cholesky_ms:.2f} of them"
        )
    p = PROBLEMS[r.problem]
    if p.competitor:
        quiet = next(
            (
                q
                for q in rows
                if q.library == "sparselme"
                and q.median_s
                and not PROBLEMS[q.problem].competitor
                and PROBLEMS[q.problem].formula == p.formula
            ),
            None,
        )
        if quiet is not None:
            out.append(
                f"beside one CPU-bound process: {r.median_s / quiet.median_s:.2f}× the median "
                f"of `{quiet.problem}` without it"
            )
    return out


def flat_section(rows: list[Row]) -> list[str]:
    lines = []
    for small, large, libs in flat_pairs(rows):
        n_small, n_large = (libs[0][1].nobs, libs[0][2].nobs)
        lines += [
            f"The workloads `{small}` and `{large}` have the same levels (the same random "
            f"effects) and {n_small:,} and {n_large:,} rows. Once the cross-products are "
            "formed, the cost of one evaluation of the likelihood should not depend on the "
            "number of rows:",
            "",
            f"| library | {n_small:,} rows | {n_large:,} rows | change |",
            "| --- | ---: | ---: | ---: |",
        ]
        for lib, a, b in libs:
            mark = LME4_MARK if lib == "lme4" else ""
            change = b.ms_per_eval / a.ms_per_eval
            lines.append(
                f"| {lib} | {_ms(a.ms_per_eval)}{mark} | {_ms(b.ms_per_eval)}{mark} "
                f"| ×{change:.2g} |"
            )
        lines.append("")
    return lines or ["(the pair of workloads was not run)", ""]


def _machine(meta: dict, rows: list[Row]) -> list[str]:
    m = meta.get("machine", {})
    version = {
        lib: next((r.version for r in rows if r.library == lib and r.version), "")
        for lib in LIBRARIES
    }
    lme4_version, _, r_blas = version["lme4"].partition(", BLAS ")
    return [
        '??? info "Machine and versions"',
        "",
        f"    - **Machine:** {m.get('cpu', '?')}, {m.get('cores', '?')} cores "
        f"({m.get('cores_usable', '?')} usable), {m.get('memory', '?')} RAM; "
        f"`{m.get('os', '?')}`",
        f"    - **BLAS:** numpy: {m.get('blas_numpy', '?')}; CHOLMOD (scikit-sparse): "
        + ", ".join(f"`{b.strip()}`" for b in str(m.get("blas_cholmod", "?")).split(","))
        + (f"; R: `{r_blas}`" if r_blas else ""),
        f"    - **Versions:** Python {m.get('python', '?')}, numpy {m.get('numpy', '?')}, "
        f"scipy {m.get('scipy', '?')}, sparselme {version['sparselme'] or '?'}, "
        f"statsmodels {version['statsmodels'] or 'not run'}, lme4 {lme4_version or 'not run'}"
        + (f", glmmTMB {version['glmmTMB'].partition(', BLAS ')[0]}" if version["glmmTMB"] else ""),
        "",
    ]


def _warm_sentence() -> str:
    warm = [p.title or p.name for p in PROBLEMS.values() if p.warm and not p.competitor]
    return (
        "The fits of " + ", ".join(warm) + " are timed in a warm process: after one untimed "
        "fit of the same model (lme4 too, in its R process); the others include first-call "
        "overheads."
    )


def _import_line(meta: dict) -> list[str]:
    imp = meta.get("import_s")
    if imp is None:
        return []
    return [
        f"- `import sparselme` took {fmt_s(imp)} (median of five fresh interpreters, "
        "interpreter start-up excluded); its modules load on first use."
    ]


def markdown(rows: list[Row], meta: dict, plots: dict[str, str]) -> str:
    m = meta.get("machine", {})
    wall = ""
    if meta.get("wall_s"):
        w = meta["wall_s"]
        wall = f", {w / 60:.0f} minutes in all" if w >= 120 else f", {w} s in all"
    notes = _Footnotes()
    glance = glance_table(rows, notes)
    sections = [
        line
        for problem in dict.fromkeys(r.problem for r in rows)
        for line in workload_section(
            problem, rows, plots.get(problem), notes, meta.get("separate_runs", {})
        )
    ]
    limit = meta.get("statsmodels_limit_s", 300)
    lines = [
        "# Performance",
        "",
        "How long sparselme, lme4 and statsmodels take to fit the same models on the same "
        f"machine ({m.get('cores', '?')} cores, shared with other work): one run of "
        f"`{meta.get('command', 'python -m benchmarks')}` (`make bench`), started "
        f"{meta.get('started', '?')} at sparselme commit {m.get('commit', '?')}{wall}. "
        "A time is the median over repeated fits, each in a fresh process with the data "
        "already in memory; in parentheses, how many times sparselme's time it is. The "
        "numbers are also in [benchmarks.json](benchmarks.json)."
        + (
            " (That record was rebuilt from the page drawn after the run, so its values are "
            "rounded as printed there.)"
            if meta.get("transcribed")
            else ""
        ),
        "",
        *([meta["conditions"], ""] if meta.get("conditions") else []),
        *_machine(meta, rows),
        "## At a glance",
        "",
        *glance,
        "",
        *notes.lines(),
        "## The workloads",
        "",
        *sections,
        "## Cost of one evaluation as the rows double",
        "",
        *flat_section(rows),
        "## How it is measured",
        "",
        "- Every fit runs in a fresh process (`python -m benchmarks.worker`); for each "
        "workload the libraries take turns (repetition 1: sparselme, statsmodels, lme4; "
        "repetition 2: ...), because the machine is shared. "
        + _warm_sentence()
        + " A workload marked as beside a CPU-bound process has one busy loop (another "
        "Python) running during the timed fit.",
        *_import_line(meta),
        "- **Fit time** is the wall clock of the fit call with the data already in memory: "
        "`sparselme.lmer(...)`; `MixedLM.from_formula(...).fit()`; `system.time(lmer(...))` "
        "in R, with the CSV read excluded. The streamed workload is the exception: "
        "`sparselme.lmer(formula, folder)` reads the Parquet files twice in 1,000,000-row "
        "batches within the timed call.",
        "- **Evaluations:** sparselme `optsum.feval`; lme4 `optinfo$feval`; statsmodels, the "
        "calls of `MixedLM.loglike` (its gradient is computed on top).",
        "- **Per evaluation:** sparselme `optsum.time_per_evaluation` (mean over the "
        "optimization); †: lme4's deviance function re-evaluated at the optimum after the "
        "fit (about a second of calls); statsmodels does not report it.",
        "- **Peak memory** is the peak resident set size of the worker process (Python, data "
        "included) or, for lme4, of the R process (reading the CSV included).",
        f"- Time limits: {limit:g} s for statsmodels, {meta.get('limit_s', 1800):g} s for "
        "the others, counted once the data are built; a library that does not finish once is "
        "not repeated on that workload. statsmodels is not attempted on crossed designs "
        "(one all-rows group with `vc_formula` works with dense n × q blocks; on InstEval it "
        "did not finish in 20 minutes); `python -m benchmarks --try-hopeless` attempts them.",
        "- `make bench` writes every fit to `benchmarks/out/results.csv` and redraws this page.",
        "",
    ]
    return "\n".join(lines)


def plot_workload(rows: list[Row], problem: str, png: Path) -> None:
    """Horizontal bars of the median fit times (min – max as a line), one per library."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    libs = [r for lib in LIBRARIES if (r := find(rows, problem, lib)) is not None]
    ref = find(rows, problem, "sparselme")
    top = max([r.max_s or r.median_s or r.limit_s or 0 for r in libs] + [1e-3])
    fig, ax = plt.subplots(figsize=(7.0, 0.42 * len(libs) + 0.75))
    for y, r in enumerate(libs):
        color = COLORS[r.library]
        if r.median_s is not None:
            ax.barh(y, r.median_s, height=0.6, color=color)
            if r.reps > 1 and r.max_s > r.min_s:
                ax.plot([r.min_s, r.max_s], [y, y], color="0.15", lw=1.2)
            label = fmt_s(r.median_s)
            if ref is not None and r is not ref and ref.median_s:
                label += f"  ({fmt_ratio(r.median_s / ref.median_s)})"
            end = max(r.median_s, r.max_s or 0)
        elif r.limit_s is not None:
            ax.barh(y, r.limit_s, height=0.6, color=color, alpha=0.25, hatch="//")
            label, end = f"did not finish in {r.limit_s:g} s", r.limit_s
        else:
            label, end = ("not attempted" if r.failure == "skipped" else "no result"), 0
        ax.annotate(
            label, (end, y), xytext=(5, 0), textcoords="offset points", va="center", fontsize=9
        )
    ax.set_yticks(range(len(libs)), [r.library for r in libs])
    ax.set_ylim(len(libs) - 0.5, -0.5)  # top to bottom, rows without a bar included
    ax.set_xlim(0, top * 1.3)
    ax.set_xlabel("fit time, seconds (bar: median; line: min – max)", fontsize=9)
    ax.spines[["top", "right"]].set_visible(False)
    ax.tick_params(labelsize=9)
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=100, metadata={"Software": None})
    plt.close(fig)


def write(rows: list[Row], meta: dict, docs_dir: Path) -> tuple[Path, list[Path]]:
    """``docs_dir/benchmarks.md`` and ``docs_dir/img/benchmarks/<workload>.png``."""
    plots: dict[str, str] = {}
    pngs = []
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        pass
    else:
        for problem in dict.fromkeys(r.problem for r in rows):
            png = docs_dir / "img" / "benchmarks" / f"{problem}.png"
            plot_workload(rows, problem, png)
            plots[problem] = png.relative_to(docs_dir).as_posix()
            pngs.append(png)
    md = docs_dir / "benchmarks.md"
    md.write_text(markdown(rows, meta, plots), encoding="utf-8")
    return md, pngs
