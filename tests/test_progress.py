"""Progress output: silent by default off a terminal, in-place lines on one."""

from __future__ import annotations

import io

import pytest

import sparselme as sl
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
    assert out.startswith("\rfitting: 1 evaluations, REML criterion 10.000000")
    assert out.endswith(" done\n") and out.count("\n") == 1
    assert "3 evaluations, REML criterion 8.000000" in out


def test_lmer_verbose_reports_and_default_is_silent(capsys):
    sleep = sl.datasets.load("sleepstudy")
    sl.lmer("Reaction ~ Days + (Days | Subject)", sleep)
    assert capsys.readouterr().err == ""
    res = sl.lmer("Reaction ~ Days + (Days | Subject)", sleep, verbose=True)
    err = capsys.readouterr().err
    assert err.startswith("fitting: 1 evaluations, REML criterion")
    assert f"{res.optsum.fmin:.6f}" in err.splitlines()[-1]


def test_progress_bar_counts_and_finishes():
    out = io.StringIO()
    with ProgressBar(4, "bootstrap", verbose=True, stream=out) as bar:
        for _ in range(4):
            bar.update()
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("bootstrap: [#######")
    assert lines[-1].startswith("bootstrap: [" + "#" * 30 + "] 4/4")
    assert len(lines) == 2  # first update, then the final state once


@pytest.mark.parametrize("verbose", [None, False])
def test_progress_iterator_yields_everything_quietly(verbose, capsys):
    assert list(progress(range(5), "profile", verbose=verbose)) == list(range(5))
    assert capsys.readouterr().err == ""
