"""Progress output for long work: optimizer fits, bootstraps and profiles.

Both reporters write to stderr and follow one rule: ``verbose=False`` is silent,
``verbose=True`` always reports, and ``verbose=None`` (the default) reports only when
stderr is a terminal and the work has already run longer than ``delay`` seconds. Short
fits, pipes, log files and test runs therefore see nothing.

* `FitProgress` is the optimizer callback ``callback(feval, x, value)``: the
  number of evaluations and the best criterion so far, rewritten in place.
* `ProgressBar` is a bar for a known number of steps (bootstrap replicates,
  profile points); `progress` wraps an iterable in one.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Iterable, Iterator
from typing import TextIO, TypeVar

__all__ = ["FitProgress", "ProgressBar", "progress", "DEFAULT_DELAY"]

# Work that finishes within this many seconds prints nothing.
DEFAULT_DELAY = 2.0
# At most one update per interval (seconds) on a terminal, and per 10 intervals elsewhere.
_INTERVAL = 0.2

T = TypeVar("T")


def _isatty(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # closed or replaced streams
        return False


class _Reporter:
    """Shared timing, throttling and line handling."""

    def __init__(self, verbose: bool | None, delay: float, stream: TextIO | None):
        self.stream = sys.stderr if stream is None else stream
        self.tty = _isatty(self.stream)
        self.enabled = verbose is True or (verbose is None and self.tty)
        self.delay = 0.0 if verbose is True else delay
        self.start = time.perf_counter()
        self._last = -math.inf
        self._shown = False
        self._width = 0
        self._text = ""

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def _due(self, force: bool = False) -> bool:
        if not self.enabled:
            return False
        now = time.perf_counter()
        if now - self.start < self.delay:
            return False
        interval = _INTERVAL if self.tty else 10 * _INTERVAL
        if not force and now - self._last < interval:
            return False
        self._last = now
        return True

    def _write(self, text: str) -> None:
        if self.tty:  # rewrite the line in place
            pad = " " * max(0, self._width - len(text))
            self.stream.write("\r" + text + pad)
            self._width = len(text)
        else:
            self.stream.write(text + "\n")
        self.stream.flush()
        self._shown = True
        self._text = text

    def _finish(self, text: str) -> None:
        """Final state of a line that was shown; nothing if it never was."""
        if not self._shown:
            return
        if self.tty or text != self._text:
            self._write(text)
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()
        self._shown = False


class FitProgress(_Reporter):
    """Optimizer callback that reports the evaluation count and the criterion.

    Pass it as ``callback`` to `minimize_bobyqa` and call
    `close` (or use it as a context manager) when the fit is done:

        with FitProgress("REML criterion") as progress:
            minimize_bobyqa(f, x0, lower, callback=progress)
    """

    def __init__(
        self,
        criterion: str = "criterion",
        verbose: bool | None = None,
        delay: float = DEFAULT_DELAY,
        stream: TextIO | None = None,
    ):
        super().__init__(verbose, delay, stream)
        self.criterion = criterion
        self.evaluations = 0
        self.best = math.inf

    def __call__(self, feval: int, x: object, value: float) -> None:
        self.evaluations += 1  # counted here: restarts reset the optimizer's own count
        if value < self.best:
            self.best = value
        if self._due():
            self._write(self._line())

    def _line(self) -> str:
        return (
            f"fitting: {self.evaluations} evaluations, {self.criterion} {self.best:.6f} "
            f"({self.elapsed:.1f} s)"
        )

    def close(self) -> None:
        self._finish(self._line() + " done" if self.tty else self._line())

    def __enter__(self) -> FitProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ProgressBar(_Reporter):
    """A text progress bar for ``total`` steps of long work (bootstraps, profiles).

    For example:

        with ProgressBar(nsim, "bootstrap") as bar:
            for i in range(nsim):
                ...
                bar.update()

    ``update(n)`` advances by n steps (call it from the process that owns the bar, e.g.
    as results of parallel workers come back). The bar shows steps done, elapsed time
    and an estimate of the time left; it is silent under the rule in the module
    docstring.
    """

    def __init__(
        self,
        total: int,
        desc: str = "",
        verbose: bool | None = None,
        delay: float = DEFAULT_DELAY,
        stream: TextIO | None = None,
        width: int = 30,
    ):
        super().__init__(verbose, delay, stream)
        self.total = max(int(total), 0)
        self.desc = desc
        self.width = width
        self.n = 0

    def update(self, n: int = 1) -> None:
        self.n = min(self.n + n, self.total) if self.total else self.n + n
        if self._due(force=self.total > 0 and self.n == self.total):
            self._write(self._line())

    def _line(self) -> str:
        elapsed = self.elapsed
        label = f"{self.desc}: " if self.desc else ""
        if not self.total:
            return f"{label}{self.n} done ({elapsed:.1f} s)"
        frac = self.n / self.total
        filled = int(round(frac * self.width))
        bar = "#" * filled + "." * (self.width - filled)
        left = elapsed * (1 - frac) / frac if frac > 0 else math.nan
        eta = f", {left:.0f} s left" if self.n < self.total and math.isfinite(left) else ""
        return f"{label}[{bar}] {self.n}/{self.total} ({elapsed:.1f} s{eta})"

    def close(self) -> None:
        self._finish(self._line())

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
