"""Run the ```python blocks of a Markdown page, the way a reader would, and keep their output.

The blocks of one page share a namespace and run in order, in a working directory of their
own (a temporary one unless given). Each block shows what a Python console 88 characters
wide would: what it prints on stdout and stderr (progress lines as they end on a terminal),
its warnings as ``Category: message``, the repr of a last line that is an expression (None
and matplotlib return values excepted), and the matplotlib figures it opened, as PNG bytes.

Used by ``docs/hooks.py`` at build time and by ``tests/docs`` for the README's blocks.
"""

from __future__ import annotations

import ast
import contextlib
import io
import os
import re
import tempfile
import traceback
import warnings
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Block", "Output", "ExampleError", "python_blocks", "PageRunner"]

# A ```python fence at the start of a line (not indented: inside lists or admonitions the
# output could not be placed next to it), up to the closing fence.
_FENCE = re.compile(r"^```python[ \t]*\n(?P<code>.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_QUIET = (DeprecationWarning, PendingDeprecationWarning)  # library internals, not the reader's


@dataclass
class Block:
    """One ```python fence: its span in the page text, its first code line and its code."""

    start: int
    end: int
    line: int
    code: str


@dataclass
class Output:
    """What a block showed: console text and the figures it drew (PNG bytes)."""

    text: str = ""
    figures: list[bytes] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.text and not self.figures


class ExampleError(Exception):
    """An example raised; the message holds its location and a traceback into the page."""


def python_blocks(text: str) -> list[Block]:
    """Every top-level ```python fence of a Markdown page, in order."""
    return [
        Block(m.start(), m.end(), text.count("\n", 0, m.start("code")) + 1, m.group("code"))
        for m in _FENCE.finditer(text)
    ]


def _terminal_text(raw: str) -> str:
    """Console text as a terminal leaves it: each line ends as its last ``\\r`` rewrite."""
    lines = []
    for line in _ANSI.sub("", raw).split("\n"):
        parts = [p for p in line.split("\r") if p.strip()]
        lines.append(parts[-1].rstrip() if parts else "")
    return "\n".join(lines).strip("\n")


def _shown(value: object) -> bool:
    module = type(value).__module__ or ""
    return value is not None and not module.startswith("matplotlib")


@contextlib.contextmanager
def _console_width():
    """pandas prints whole tables (wrapped, not elided) at 88 characters, the width of a page."""
    try:
        import pandas as pd
    except ImportError:
        yield
        return
    with pd.option_context("display.width", 88, "display.max_columns", 50):
        yield


@contextlib.contextmanager
def _working_directory(path: Path):
    before = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)


class PageRunner:
    """Runs one page's blocks in order in one namespace; ``workdir`` None: a temporary one."""

    def __init__(self, name: str, workdir: Path | None = None):
        self.name = name
        self.namespace: dict = {"__name__": "__docs__"}
        self._tmp = (
            tempfile.TemporaryDirectory(prefix="sparselme-docs-") if workdir is None else None
        )
        self.workdir = Path(self._tmp.name) if self._tmp else Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)

    def close(self) -> None:
        plt = _pyplot()
        if plt is not None:
            plt.close("all")
        if self._tmp is not None:
            self._tmp.cleanup()

    def __enter__(self) -> PageRunner:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def run(self, block: Block) -> Output:
        """Execute one block; raises `ExampleError` if it raises."""
        where = f"{self.name}:{block.line}"
        tree = ast.parse(block.code, filename=self.name)
        ast.increment_lineno(tree, block.line - 1)  # tracebacks point into the page
        last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
        buffer = io.StringIO()

        def show_warning(message, category, filename, lineno, file=None, line=None):
            buffer.write(f"{category.__name__}: {message}\n")

        plt = _pyplot()
        before = set(plt.get_fignums()) if plt else set()
        with (
            contextlib.redirect_stdout(buffer),
            contextlib.redirect_stderr(buffer),
            warnings.catch_warnings(),
            _console_width(),
            _working_directory(self.workdir),
        ):
            warnings.simplefilter("default")
            for category in _QUIET:
                warnings.simplefilter("ignore", category)
            warnings.showwarning = show_warning
            try:
                exec(compile(tree, self.name, "exec"), self.namespace)
                if last is not None:
                    expr = ast.Expression(last.value)
                    value = eval(compile(expr, self.name, "eval"), self.namespace)
                    if _shown(value):
                        print(repr(value))
            except Exception as exc:
                frames = traceback.format_exception(exc)
                raise ExampleError(f"the example at {where} fails:\n{''.join(frames)}") from exc
        figures = []
        if plt is not None:
            for num in sorted(set(plt.get_fignums()) - before):
                fig = plt.figure(num)
                png = io.BytesIO()
                fig.savefig(png, format="png", dpi=100, metadata={"Software": None})
                plt.close(fig)
                figures.append(png.getvalue())
        return Output(_terminal_text(buffer.getvalue()), figures)


def _pyplot():
    """matplotlib.pyplot on the Agg backend, or None where matplotlib is not installed."""
    try:
        import matplotlib
    except ImportError:
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
