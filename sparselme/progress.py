"""Progress of long work (optimizer fits, bootstraps, profiles), shown by tqdm.

Every reporter follows one rule: ``verbose=False`` is silent, ``verbose=True`` always
reports, and ``verbose=None`` (the default) reports only where someone is watching (stderr
is a terminal, or the code runs in a Jupyter kernel) and once the work has run longer than
``delay`` seconds. Short fits, pipes, log files and test runs therefore see nothing. In
Jupyter the bar is tqdm's notebook widget (``tqdm.auto``; plain text without ipywidgets).

* `FitProgress` is the optimizer callback ``callback(evaluation, x, value)``: the number
  of evaluations and the best criterion so far.
* `ProgressBar` is a bar for a known number of steps (bootstrap replicates, profiled
  parameters); `progress` wraps an iterable in one.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterable, Iterator
from typing import Any, TextIO, TypeVar

__all__ = ["FitProgress", "ProgressBar", "progress", "DEFAULT_DELAY", "watched"]

# Work that finishes within this many seconds prints nothing.
DEFAULT_DELAY = 2.0
# At most one update per interval (seconds).
_INTERVAL = 0.2

T = TypeVar("T")


def _isatty(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # closed or replaced streams
        return False


def _in_jupyter() -> bool:
    """True inside a Jupyter kernel (where stderr is no terminal but a person watches)."""
    shell = getattr(sys.modules.get("IPython"), "get_ipython", lambda: None)()
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})


def watched(stream: TextIO | None = None) -> bool:
    """Whether progress written to ``stream`` (default stderr) is seen as it happens."""
    if stream is None or stream is sys.stderr:
        return _isatty(sys.stderr) or _in_jupyter()
    return _isatty(stream)


def _bar(verbose: bool | None, delay: float, stream: TextIO | None, **kwargs: Any):
    """A tqdm bar under the module's rule; ``tqdm.auto`` (a notebook widget) on stderr."""
    enabled = verbose is True or (verbose is None and watched(stream))
    if stream is None:
        from tqdm.auto import tqdm
    else:  # an explicit stream is written to as text
        from tqdm import tqdm
    return tqdm(
        disable=not enabled,
        delay=0.0 if verbose is True else delay,
        file=stream,
        mininterval=_INTERVAL,
        dynamic_ncols=True,
        **kwargs,
    )


class FitProgress:
    """Optimizer callback that reports the evaluation count and the best criterion.

    Pass it as ``callback`` to the optimizer and close it (or use it as a context manager)
    when the fit is done:

        with FitProgress("REML criterion") as progress:
            minimize_bobyqa(f, x0, lower, callback=progress)

    The line reads ``fitting: 412 evaluations, REML criterion 1743.628067 [00:03]``.
    """

    def __init__(
        self,
        criterion: str = "criterion",
        verbose: bool | None = None,
        delay: float = DEFAULT_DELAY,
        stream: TextIO | None = None,
    ):
        self.criterion = criterion
        self.evaluations = 0
        self.best = math.inf
        self.bar = _bar(
            verbose,
            delay,
            stream,
            desc="fitting",
            bar_format="{desc}: {n} evaluations{postfix} [{elapsed}]",
        )

    def __call__(self, evaluation: int, x: object, value: float) -> None:
        self.evaluations += 1  # counted here: restarts reset the optimizer's own count
        if value < self.best:
            self.best = value
            self.bar.postfix = f"{self.criterion} {self.best:.6f}"
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()

    def __enter__(self) -> FitProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ProgressBar:
    """A progress bar for ``total`` steps of long work (bootstraps, profiles).

    For example:

        with ProgressBar(nsim, "bootstrap") as bar:
            for i in range(nsim):
                ...
                bar.update()

    ``update(n)`` advances by n steps (call it from the process that owns the bar, e.g.
    as results of parallel workers come back); ``note(text)`` shows what is being done
    (the parameter being profiled). The bar shows steps done, elapsed time and an estimate
    of the time left; it is silent under the rule in the module docstring.
    """

    def __init__(
        self,
        total: int,
        desc: str = "",
        verbose: bool | None = None,
        delay: float = DEFAULT_DELAY,
        stream: TextIO | None = None,
    ):
        self.total = max(int(total), 0)
        self.n = 0  # steps done (counted here: a silent tqdm counts nothing)
        self.bar = _bar(verbose, delay, stream, total=self.total or None, desc=desc or None)

    def update(self, n: int = 1) -> None:
        self.n += n
        self.bar.update(n)

    def note(self, text: str) -> None:
        """Show ``text`` after the bar (what the current step is)."""
        self.bar.set_postfix_str(text, refresh=False)

    def close(self) -> None:
        self.bar.close()

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def progress(
    iterable: Iterable[T],
    desc: str = "",
    total: int | None = None,
    verbose: bool | None = None,
    delay: float = DEFAULT_DELAY,
) -> Iterator[T]:
    """Iterate over ``iterable`` with a `ProgressBar` (total from ``len()``)."""
    if total is None:
        total = len(iterable) if hasattr(iterable, "__len__") else 0  # type: ignore[arg-type]
    with ProgressBar(total, desc, verbose=verbose, delay=delay) as bar:
        for item in iterable:
            yield item
            bar.update()
