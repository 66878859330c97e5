"""The ``sparselme`` command: fits, JSON output, datasets, one-line errors with exit code 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import sparselme as sl
from sparselme.cli import main

SLEEP = "Reaction ~ Days + (Days | Subject)"


@pytest.fixture(scope="module")
def sleep_csv(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("cli") / "sleep.csv"
    assert main(["datasets", "export", "sleepstudy", str(path)]) == 0
    return path


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_fit_lme4_formula_prints_the_summary(capsys, sleep_csv):
    code, out, err = run(capsys, "fit", str(sleep_csv), SLEEP)
    assert code == 0 and err == ""
    assert out.startswith("Linear mixed model fit by REML")
    assert "REML criterion at convergence: 1743.6283" in out


def test_fit_json_has_estimates_variances_and_convergence(capsys, sleep_csv):
    code, out, _ = run(capsys, "fit", str(sleep_csv), SLEEP, "--ml", "--format", "json")
    assert code == 0
    doc = json.loads(out)
    ref = sl.lmer(SLEEP, sl.datasets.load("sleepstudy"), REML=False)
    assert doc["method"] == "ML" and doc["nobs"] == 180 and doc["ngroups"] == {"Subject": 18}
    names = [fe["name"] for fe in doc["fixed_effects"]]
    assert names == ["(Intercept)", "Days"]
    assert doc["fixed_effects"][1]["estimate"] == pytest.approx(ref.fe_params["Days"], rel=1e-6)
    assert doc["fixed_effects"][1]["std_error"] == pytest.approx(ref.bse_fe["Days"], rel=1e-6)
    assert doc["loglik"] == pytest.approx(ref.llf, abs=1e-6)
    assert doc["deviance"] == pytest.approx(ref.deviance, abs=1e-6)
    assert doc["reml_criterion"] is None
    vc = pd.DataFrame(doc["variance_components"])
    assert list(vc["grp"]) == ["Subject", "Subject", "Subject", "Residual"]
    assert vc["vcov"].iloc[0] == pytest.approx(ref.varcorr["vcov"].iloc[0], rel=1e-6)
    assert doc["converged"] is True and doc["singular"] is False
    assert doc["optimizer"]["evaluations"] > 0 and doc["warnings"] == []


def test_fit_statsmodels_groups_and_variance_components(capsys, tmp_path):
    dietox = sl.datasets.load("dietox")
    path = tmp_path / "dietox.csv"
    dietox.to_csv(path, index=False)
    code, out, _ = run(
        capsys, "fit", str(path), "Weight ~ Time", "--groups", "Pig", "--re-formula", "~Time"
    )
    assert code == 0
    assert "Mixed Linear Model Regression Results" in out and "Pig x Time Cov" in out
    code, out, _ = run(
        capsys,
        "fit",
        str(path),
        "Weight ~ Time",
        "--groups",
        "Pig",
        "--vc",
        "litter=0 + C(Litter)",
        "--format",
        "json",
    )
    assert code == 0
    doc = json.loads(out)
    assert doc["groups"] == "Pig" and doc["method"] == "REML"
    assert [fe["name"] for fe in doc["fixed_effects"]] == ["Intercept", "Time"]


def test_fit_reads_parquet(capsys, tmp_path):
    pytest.importorskip("pyarrow")
    path = tmp_path / "sleep.parquet"
    assert main(["datasets", "export", "sleepstudy", str(path)]) == 0
    code, out, _ = run(capsys, "fit", str(path), SLEEP, "--format", "json")
    assert code == 0 and json.loads(out)["reml_criterion"] == pytest.approx(1743.6283, abs=1e-4)


def test_datasets_list_and_export_to_stdout(capsys):
    code, out, _ = run(capsys, "datasets")
    assert code == 0
    listed = [line.split()[0] for line in out.splitlines()]
    assert listed == sl.datasets.names()
    code, out, _ = run(capsys, "datasets", "export", "PASTES", "-")
    assert code == 0 and out.splitlines()[0] == "strength,batch,cask,sample"
    assert len(out.splitlines()) == 61


@pytest.mark.parametrize(
    "argv, message",
    [
        (["fit", "missing.csv", SLEEP], "no such file: missing.csv"),
        (["fit", "{sleep}", "Reaction ~ Days + (Days | Subject"], "malformed formula at character"),
        (["fit", "{sleep}", "Reaction ~ Dys + (1 | Subject)"], "did you mean 'Days'?"),
        (["fit", "{sleep}", "Reaction ~ Days", "--groups", "Subjct"], "'Subjct' not found"),
        (["fit", "{sleep}", "Reaction ~ Days", "--re-formula", "~Days"], "need --groups"),
        (["fit", "{sleep}", "Reaction ~ Days", "--groups", "Subject", "--vc", "x"], "NAME=FORMULA"),
        (["fit", "{here}", SLEEP], "expected a .csv"),
        (["datasets", "export", "nosuch"], "unknown dataset 'nosuch'"),
        (["datasets", "frobnicate"], "unknown datasets action"),
    ],
)
def test_bad_input_is_one_line_with_exit_code_2(capsys, sleep_csv, argv, message):
    argv = [a.format(sleep=sleep_csv, here=__file__) for a in argv]
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("sparselme: error: ")
    assert message in err


def test_the_installed_command_runs_in_a_subprocess(sleep_csv):
    script = Path(sys.executable).with_name("sparselme")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "sparselme.cli"]
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    done = subprocess.run(
        [*command, "fit", str(sleep_csv), "Reaction ~ x + (1|Subject)"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 2
    assert done.stderr == "sparselme: error: column 'x' not found in data\n"
    assert done.stdout == ""


def test_missing_values_are_reported_with_the_commands_option(capsys, tmp_path):
    data = sl.datasets.load("sleepstudy")
    data.loc[3, "Reaction"] = None
    path = tmp_path / "holes.csv"
    data.to_csv(path, index=False)
    code, _, err = run(capsys, "fit", str(path), SLEEP)
    assert code == 2 and "Pass --missing drop to drop these rows" in err
    assert "missing='drop'" not in err
    code, out, err = run(capsys, "fit", str(path), SLEEP, "--missing", "drop")
    assert code == 0 and "Number of obs: 179" in out and "dropped 1 of 180 rows" in err
