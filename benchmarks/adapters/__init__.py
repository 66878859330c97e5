"""One adapter per library. Each module defines

- ``LIBRARY``: the library's name in the results;
- ``skip_reason(problem, force=False) -> str``: why the library does not run this problem
  ("" to run it). Called in the runner's process, so it must be cheap;
- ``run(problem, data) -> Measurement``: fit once and measure. Called in a fresh worker
  process per run (see ``benchmarks.worker``); for a problem measured warm, after one
  untimed fit in the same process (``warm_up(problem, data)``, where the adapter has it).
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import ModuleType

LIBRARIES = ("sparselme", "statsmodels", "lme4")
COMPETITOR_SKIP = "measured beside a competing process for sparselme only"


@dataclass
class Measurement:
    fit_s: float  # wall-clock seconds of the fit call alone (data already in memory)
    evals: int | None = None  # objective evaluations
    s_per_eval: float | None = None  # mean seconds per evaluation, where the library reports it
    loglik: float | None = None  # REML or ML log-likelihood, to check all fit the same model
    version: str = ""
    note: str = ""
    rss_of_child: bool = False  # peak RSS is that of a child process (R), not of the worker
    # sparselme: the evaluations' spread and the floor they are compared with
    eval_median_s: float | None = None  # median seconds of one evaluation in this fit
    eval_max_s: float | None = None  # the slowest evaluation
    schur_order: int | None = None  # order of the dense Schur complement factored
    cholesky_s: float | None = None  # median seconds of one LAPACK Cholesky of that order


def load(library: str) -> ModuleType:
    if library not in LIBRARIES:
        raise KeyError(f"unknown library {library!r}; known: {', '.join(LIBRARIES)}")
    return importlib.import_module(f"{__name__}.{library}")


@contextmanager
def recorded_warnings() -> Iterator[list[warnings.WarningMessage]]:
    """Collect warnings instead of printing them; see :func:`summarize`."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield caught


def summarize(messages: list[str]) -> str:
    """A one-line note from warning messages: the first one, and how many others."""
    messages = list(dict.fromkeys(" ".join(m.split()) for m in messages))
    if not messages:
        return ""
    more = f" (+{len(messages) - 1} more)" if len(messages) > 1 else ""
    return f"warning: {messages[0][:120]}{more}"
