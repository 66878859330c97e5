"""Progress through tqdm: silent by default off a terminal and when short, on request always."""

from __future__ import annotations

import io

import pytest

import sparselme as sl
from sparselme import progress as progress_module
from sparselme.progress import FitProgress, ProgressBar, progress


class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_fit_progress_is_silent_off_a_terminal_and_when_short():
    quiet = io.StringIO()
    with FitProgress("deviance", stream=quiet, delay=0.0) as p:
        p(1, None, 3.0)
    assert quiet.getvalue() == ""
    short = FakeTTY()
    with FitProgress("deviance", stream=short) as p:  # default 2 s delay
        p(1, None, 3.0)
    assert short.getvalue() == ""
    off = FakeTTY()
    with FitProgress("deviance", verbose=False, stream=off, delay=0.0) as p:
        p(1, None, 3.0)
    assert off.getvalue() == ""


def test_fit_progress_rewrites_one_line_on_a_terminal():
    tty = FakeTTY()
    with FitProgress("REML criterion", stream=tty, delay=0.0) as p:
        for i in range(3):
            p(i + 1, None, 10.0 - i)
    out = tty.getvalue()
    assert out.startswith("\rfitting: 0 evaluations")
    assert out.endswith("\n") and out.count("\n") == 1  # one line, rewritten in place
    last = out.rstrip("\n").split("\r")[-1]
    assert last.startswith("fitting: 3 evaluations, REML criterion 8.000000 [00:0")
    assert p.evaluations == 3 and p.best == 8.0


def test_lmer_verbose_reports_and_default_is_silent(capsys):
    sleep = sl.datasets.load("sleepstudy")
    sl.lmer("Reaction ~ Days + (Days | Subject)", sleep)
    assert capsys.readouterr().err == ""
    res = sl.lmer("Reaction ~ Days + (Days | Subject)", sleep, verbose=True)
    err = capsys.readouterr().err
    assert err.startswith("\rfitting: 0 evaluations")
    last = err.rstrip("\n").split("\r")[-1]
    assert last.startswith("fitting: ") and f"REML criterion {res.optsum.fmin:.6f}" in last


def test_progress_bar_counts_and_finishes():
    out = io.StringIO()
    with ProgressBar(4, "bootstrap", verbose=True, stream=out) as bar:
        for i in range(4):
            bar.note(f"step {i}")
            bar.update()
    states = out.getvalue().rstrip("\n").split("\r")[1:]
    assert states[0].startswith("bootstrap:   0%|") and "0/4" in states[0]
    assert states[-1].startswith("bootstrap: 100%|") and "4/4" in states[-1]
    assert states[-1].endswith("step 3]") and bar.n == 4


@pytest.mark.parametrize("verbose", [None, False])
def test_progress_iterator_yields_everything_quietly(verbose, capsys):
    assert list(progress(range(5), "profile", verbose=verbose)) == list(range(5))
    assert capsys.readouterr().err == ""


def test_jupyter_counts_as_watched(monkeypatch):
    monkeypatch.setattr(progress_module, "_in_jupyter", lambda: True)
    assert progress_module.watched()
    assert not progress_module.watched(io.StringIO())  # an explicit stream: its own tty


def test_profile_reports_each_parameter(capsys):
    sleep = sl.datasets.load("sleepstudy")
    res = sl.lmer("Reaction ~ Days + (1 | Subject)", sleep)
    prof = res.profile(verbose=True)
    err = capsys.readouterr().err
    states = err.rstrip("\n").split("\r")[1:]
    n = len(prof.parameters)
    assert states[0].startswith("profile:   0%|") and f"0/{n}" in states[0]
    assert states[-1].startswith("profile: 100%|") and f"{n}/{n}" in states[-1]
    assert states[-1].endswith(f"{prof.parameters[-1]}]")
    res.profile(which="sigma")  # the default: silent off a terminal
    assert capsys.readouterr().err == ""
