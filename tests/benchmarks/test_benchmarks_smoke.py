"""Keep the benchmark harness from rotting: tiny data builders, the sparselme adapter in
process, one worker subprocess, the R data hand-off and the report. No R needed."""

from __future__ import annotations

import csv
import os
import pickle
import re
import sys
import time
from dataclasses import asdict, fields
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # `pytest` (not `python -m pytest`) does not add the cwd
    sys.path.insert(0, str(REPO))

from benchmarks import adapters, report, runner  # noqa: E402
from benchmarks.adapters import lme4 as lme4_adapter  # noqa: E402
from benchmarks.adapters import statsmodels as sm_adapter  # noqa: E402
from benchmarks.problems import PROBLEMS, bundled  # noqa: E402
from sparselme.data.formula_structures import STRUCTURE_KEYWORDS  # noqa: E402

RUNNABLE = [name for name, p in PROBLEMS.items() if not p.pending and not p.streamed]


def _variables(formula: str) -> set[str]:
    return set(re.findall(r"[A-Za-z_][A-Za-z_0-9]*", formula)) - {"C", *STRUCTURE_KEYWORDS}


def test_registry_has_the_spec_problems():
    assert {"insteval", "sleepstudy", "dietox", "slopes_100k", "crossed_1m"} <= set(PROBLEMS)
    assert PROBLEMS["insteval"].reps == 9 and PROBLEMS["crossed_1m"].reps == 1
    assert PROBLEMS["insteval"].warm and not PROBLEMS["insteval"].competitor
    busy = PROBLEMS["insteval_busy"]
    assert busy.competitor and busy.formula == PROBLEMS["insteval"].formula
    pair = [p for p in PROBLEMS.values() if p.pair == "flat"]
    assert len(pair) == 2 and pair[0].params["n"] * 2 == pair[1].params["n"]
    assert {k: v for k, v in pair[0].params.items() if k != "n"} == {
        k: v for k, v in pair[1].params.items() if k != "n"
    }
    streamed = PROBLEMS["parquet_10m"]
    assert streamed.streamed and streamed.params["rows"] == 10_000_000


def test_streamed_problem_runs_from_its_parquet_folder():
    problem = PROBLEMS["parquet_10m"]
    folder = problem.make_data(tiny=True)
    assert Path(folder).is_dir()
    from benchmarks.worker import count_rows

    assert count_rows(folder) == problem.tiny_params["rows"]
    m = adapters.load("sparselme").run(problem, folder)
    assert m.evals > 0 and m.loglik < 0
    assert sm_adapter.skip_reason(problem) and lme4_adapter.skip_reason(problem)


@pytest.mark.parametrize("name", RUNNABLE)
def test_tiny_data_builders(name):
    problem = PROBLEMS[name]
    data = problem.make_data(tiny=True)
    assert len(data) > 0
    assert _variables(problem.formula) <= set(data.columns)
    for col in data.columns:
        if isinstance(data[col].dtype, pd.CategoricalDtype):  # every level used, none missing
            assert not data[col].isna().any()
            assert data[col].cat.codes.nunique() == len(data[col].cat.categories)
    if problem.build is not bundled:  # simulated data are seeded: the same frame every time
        pd.testing.assert_frame_equal(data, problem.make_data(tiny=True))
    if problem.statsmodels is not None:
        spec = problem.statsmodels
        assert _variables(spec.formula) <= set(data.columns)
        assert spec.groups == "" or spec.groups in data.columns


def test_statsmodels_skips_crossed_designs_with_a_reason():
    assert sm_adapter.skip_reason(PROBLEMS["sleepstudy"]) == ""
    assert "hopeless" in sm_adapter.skip_reason(PROBLEMS["crossed_1m"])
    assert sm_adapter.skip_reason(PROBLEMS["flat_200k"], force=True) == ""  # --try-hopeless
    assert sm_adapter.skip_reason(PROBLEMS["parquet_10m"], force=True)  # no spelling


def test_sparselme_adapter_on_sleepstudy():
    problem = PROBLEMS["sleepstudy"]
    m = adapters.load("sparselme").run(problem, problem.make_data())
    assert m.fit_s > 0 and m.evals and m.evals > 5
    assert m.s_per_eval and 0 < m.s_per_eval < m.fit_s
    assert m.loglik == pytest.approx(-871.8141, abs=1e-3)  # lme4's REML logLik


def test_structured_workload_is_optional_and_compared_with_glmmtmb():
    problem = PROBLEMS["ar1_100k"]
    assert problem.optional and problem.params["groups"] >= 100_000
    assert "ar1_100k" not in runner.parse_args([]).problems  # not in the default run
    assert "glmmTMB" not in runner.parse_args([]).libraries
    args = runner.parse_args(["--problems", "ar1_100k"])
    assert args.libraries == list(adapters.LIBRARIES)
    glmmtmb = adapters.load("glmmTMB")
    assert lme4_adapter.skip_reason(problem) == problem.lme4_skip
    assert sm_adapter.skip_reason(problem) == problem.statsmodels_skip
    assert glmmtmb.skip_reason(PROBLEMS["sleepstudy"])  # only the structured workloads
    m = adapters.load("sparselme").run(problem, problem.make_data(tiny=True))
    assert m.evals > 0 and m.loglik < 0


def test_merge_replaces_only_the_runs_problems():
    published = [
        report.Row("insteval", "sparselme", 0.4),
        report.Row("ar1_100k", "sparselme", 99.0),
    ]
    rows = [report.Row("ar1_100k", "glmmTMB", 400.0), report.Row("ar1_100k", "sparselme", 30.0)]
    merged, meta = report.merge_rows(published, {"command": "all"}, rows, {"command": "one"})
    assert [(r.problem, r.library, r.median_s) for r in merged] == [
        ("insteval", "sparselme", 0.4),
        ("ar1_100k", "sparselme", 30.0),
        ("ar1_100k", "glmmTMB", 400.0),
    ]
    assert meta["command"] == "all" and meta["separate_runs"]["ar1_100k"]["command"] == "one"


def test_worker_subprocess_reports_a_run():
    run = runner.run_one(PROBLEMS["sleepstudy"], "sparselme", 1, tiny=True, limit_s=120)
    assert run.status == "ok", run.note
    assert run.nobs == 180 and run.peak_rss_mb and run.peak_rss_mb > 10


def test_sparselme_adapter_records_evaluations_and_the_cholesky_floor():
    problem = PROBLEMS["flat_200k"]
    m = adapters.load("sparselme").run(problem, problem.make_data(tiny=True))
    # the tiny problem's second factor (50 levels) is a dense Schur complement, factored
    # with [X y] appended: y ~ x + (1|a) + (1|b) adds the intercept, x and y
    assert m.schur_order == 50 + 3
    assert m.cholesky_s and 0 < m.cholesky_s < m.fit_s
    assert 0 < m.eval_median_s <= m.eval_max_s < m.fit_s


def test_a_busy_problem_runs_beside_a_competitor_for_sparselme_only():
    busy = PROBLEMS["insteval_busy"]
    assert lme4_adapter.skip_reason(busy) == adapters.COMPETITOR_SKIP
    assert sm_adapter.skip_reason(busy) == adapters.COMPETITOR_SKIP
    from benchmarks.worker import competing_process

    with competing_process(True) as burner:
        assert burner.poll() is None  # running while the block runs
        before = sum(map(int, Path(f"/proc/{burner.pid}/stat").read_text().split()[13:15]))
        time.sleep(0.3)
        after = sum(map(int, Path(f"/proc/{burner.pid}/stat").read_text().split()[13:15]))
        assert after > before  # and using the CPU
    assert burner.returncode is not None  # gone after it


def test_worker_past_its_time_limit_is_killed_and_recorded():
    run = runner.run_one(PROBLEMS["flat_200k"], "sparselme", 1, tiny=True, limit_s=0.001)
    assert run.status == "timeout" and run.note == "did not finish in 0.001 s"


def test_lme4_hand_off_keeps_level_order(tmp_path):
    data = PROBLEMS["crossed_1m"].make_data(tiny=True)
    data["b"] = data["b"].cat.reorder_categories(data["b"].cat.categories[::-1])
    lme4_adapter.write_for_r(data, tmp_path)
    written = pd.read_csv(tmp_path / "data.csv")
    for col in ("a", "b"):
        levels = (tmp_path / f"{col}.levels").read_text().splitlines()
        assert levels == list(data[col].cat.categories)
        rebuilt = [levels[c - 1] for c in written[col]]
        assert rebuilt == list(data[col].astype(str))
    assert written["y"].tolist() == data["y"].tolist()  # floats round-trip exactly


def test_report_from_results(tmp_path):
    pytest.importorskip("matplotlib")
    rows = [
        runner.Run("insteval", "sparselme", 1, "ok", 73421, 0.9, 30, 0.02, -1.0, 200.0, "0.1"),
        runner.Run("insteval", "sparselme", 2, "ok", 73421, 1.1, 30, 0.03, -1.0, 210.0, "0.1"),
        runner.Run("insteval", "lme4", 1, "ok", 73421, 15.0, 31, 0.4, -1.0, 400.0, "1.1.31"),
        runner.Run("insteval", "statsmodels", 0, "skipped", note="hopeless"),
        runner.Run("slopes_100k", "sparselme", 1, "ok", 10**6, 4.0, 80, 0.05, -2.0, 900.0),
        runner.Run("slopes_100k", "statsmodels", 1, "timeout", note="did not finish in 300 s"),
        runner.Run("flat_200k", "sparselme", 1, "ok", 200_000, 1.0, 40, 0.020, -3.0, 150.0),
        runner.Run("flat_400k", "sparselme", 1, "ok", 400_000, 1.0, 40, 0.021, -4.0, 190.0),
    ]
    results = tmp_path / "results.csv"
    with results.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=[f.name for f in fields(runner.Run)])
        writer.writeheader()
        writer.writerows(asdict(r) for r in rows)
    docs = tmp_path / "docs"
    md, pngs = report.write(results, tmp_path / "missing.json", docs)
    text = md.read_text()
    glance = next(line for line in text.splitlines() if line.startswith("| [InstEval"))
    assert "**1 s**" in glance and "15 s (15×)" in glance and "not attempted¹" in glance
    assert "¹ Not attempted: hopeless." in text  # the skip reason, once, under the table
    assert "| lme4 | 15 s | 15× | 31 | 400 ms † | 400 MB |" in text
    assert "| sparselme | 1 s (900 ms – 1.1 s) | 1× | 30 | 25 ms | 210 MB |" in text
    assert "| statsmodels | did not finish in 300 s | | | | |" in text
    assert "| sparselme | 20 ms | 21 ms | ×1.1 |" in text  # flat in n
    for line in text.splitlines():  # narrow tables: no column of notes
        assert line.count(" | ") <= 6, line
    assert {p.name for p in pngs} == {
        "insteval.png",
        "slopes_100k.png",
        "flat_200k.png",
        "flat_400k.png",
    }
    assert all(p.stat().st_size > 1000 for p in pngs)

    # the record alone redraws the same page (no results.csv needed)
    rows, meta = report.load_record(docs / "benchmarks.json")
    assert report.find(rows, "insteval", "sparselme").min_s == 0.9
    md.unlink()
    again, _ = report.write(tmp_path / "no-results.csv", tmp_path / "missing.json", docs)
    assert again.read_text() == text
    assert any("15.0x (lme4 15 s): met" in line for line in report.targets_lines(rows))


def test_published_record_draws_the_docs_page(tmp_path):
    """docs/benchmarks.md is what the record docs/benchmarks.json draws."""
    pytest.importorskip("matplotlib")
    docs = REPO / "docs"
    rows, meta = report.load_record(docs / "benchmarks.json")
    assert {r.problem for r in rows} <= set(PROBLEMS)
    from benchmarks import page

    md, _ = page.write(rows, meta, tmp_path)
    assert md.read_text() == (docs / "benchmarks.md").read_text()


def test_evaluation_counts_per_step_factor(tmp_path, capsys):
    from benchmarks import evaluations
    from sparselme.engine import start

    before = start.INITIAL_STEP_FACTOR
    evaluations.main(
        ["--factors", "0.5", "1", "--only", "dyestuff", "sleepstudy_rs", "--out", str(tmp_path)]
    )
    assert start.INITIAL_STEP_FACTOR == before  # restored
    rows = {line.split("|")[1].strip(): line for line in capsys.readouterr().out.splitlines()[2:]}
    assert set(rows) == {"dyestuff", "sleepstudy_rs", "**total**", "criterion − lme4's, largest"}
    per_model = [[int(c) for c in rows[m].split("|")[2:4]] for m in ("dyestuff", "sleepstudy_rs")]
    totals = [int(c.strip(" *")) for c in rows["**total**"].split("|")[2:4]]
    assert totals == [per_model[0][0] + per_model[1][0], per_model[0][1] + per_model[1][1]]
    assert min(min(p) for p in per_model) > 0
    excess = [float(c) for c in rows["criterion − lme4's, largest"].split("|")[2:4]]
    assert max(excess) < 1e-6  # each fit reaches lme4's optimum
    assert (tmp_path / "evaluations.md").read_text().count("| dyestuff |") == 1


def test_spec_targets_and_page_figures_of_the_second_round():
    from benchmarks import page

    quiet = report.Row("insteval", "sparselme", 0.24, 0.22, 0.3, 9, 17, 9.0, 260, -1.0, 73421)
    quiet.p90_s, quiet.eval_median_ms, quiet.eval_max_ms = 0.26, 8.8, 12.0
    quiet.schur_order, quiet.cholesky_ms = 1128, 7.0
    busy = report.Row("insteval_busy", "sparselme", 0.33, 0.3, 0.4, 9, 17, 13.0, 260, -1.0, 73421)
    lme4 = report.Row("insteval", "lme4", 3.0, 2.9, 3.2, 9, 31, 90.0, 400, -1.0, 73421)
    rows = [quiet, lme4, busy]
    verdicts = {
        label: (figure, ok) for label, figure, ok in report.targets(rows, {"import_s": 0.05})
    }
    assert verdicts["InstEval median <= 0.25 s"] == ("240 ms", True)
    assert verdicts["InstEval >= 10x lme4"][1] is True
    assert verdicts["InstEval p90/median <= 1.3"] == ("1.08 (9 fits)", True)
    assert verdicts["InstEval beside a CPU-bound process <= 1.5x quiet"][0].startswith("1.38x")
    figure, ok = verdicts["per evaluation <= 1.5x one Cholesky of the Schur order"]
    assert figure.startswith("1.29x") and ok
    assert verdicts["import sparselme <= 0.3 s"] == ("50 ms", True)
    text = page.markdown(rows, {"import_s": 0.05}, {})
    assert "an evaluation costs 1.29 of them" in text
    assert "p90 of the 9 fit times 260 ms, 1.08× the median" in text
    assert "beside one CPU-bound process: 1.38× the median of `insteval` without it" in text
    assert "`import sparselme` took 50 ms" in text


def test_trees_times_each_tree_from_its_own_source(tmp_path, capsys):
    from benchmarks import trees

    out = trees.compare([REPO, REPO], ["sleepstudy"], reps=1, rounds=1)
    record = out["sleepstudy"][str(REPO)]
    assert len(record["times"]) == 2 and all(t > 0 for t in record["times"])
    assert record["llf"] == pytest.approx(-871.8141, abs=1e-3)
    assert "after/before" in capsys.readouterr().out
    # a tree without the package: the installed one would answer, which is refused
    data = tmp_path / "data.pkl"
    data.write_bytes(pickle.dumps(bundled("sleepstudy")))
    with pytest.raises(RuntimeError, match="imported from|No module"):
        trees.time_tree(tmp_path, data, PROBLEMS["sleepstudy"], 1)


def test_threads_times_the_default_and_each_fixed_setting(capsys):
    from benchmarks import threads

    labels = threads.settings(2)
    assert labels["default"] is None and labels["2 threads"]["OPENBLAS_NUM_THREADS"] == "2"
    out = threads.measure(["sleepstudy"], reps=1, rounds=1, busy=True)
    assert set(out["sleepstudy"]) == set(threads.settings(len(os.sched_getaffinity(0))))
    assert all(len(t) == 1 and t[0] > 0 for t in out["sleepstudy"].values())
    assert "default/best" in capsys.readouterr().out


def test_checksums_reads_a_folder_both_ways(tmp_path):
    from benchmarks import checksums
    from benchmarks.streaming import write_data

    write_data(tmp_path, 3_000, 30, 10, 2)
    assert checksums.read_pass(tmp_path, True) > 0
    assert checksums.read_pass(tmp_path, False) > 0
    assert checksums.fingerprint_seconds(tmp_path) > 0


def test_evaluation_times_of_one_tree():
    from benchmarks import evaluation_times

    evals, fit_s = evaluation_times.run_tree(REPO, "sleepstudy", 1)
    assert len(evals) > 5 and len(fit_s) == 1 and all(e > 0 for e in evals)
    assert "over twice the median" in evaluation_times.summary(evals, fit_s)
