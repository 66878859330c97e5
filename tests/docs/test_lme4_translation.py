"""Every row of the lme4 ↔ sparselme tables of docs/lme4.md runs.

The tables marked ``<!-- executed: ... -->`` hold one sparselme expression per row. The
page's ```python blocks before them define the objects the rows use (as a reader has them
after reading that far); each row is evaluated in that namespace. A row whose notes say
*planned* names a call that is not available yet: it must fail with AttributeError or
TypeError, and the test fails as soon as it runs, so the mark is removed then.
"""

from __future__ import annotations

import html
import importlib.util
import re
import sys
import warnings
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "lme4.md"
MARKER = "<!-- executed:"
PLANNED = "*planned*"
_CODE = re.compile(r"<code>(.*?)</code>|`([^`]+)`")


def _load_runner():
    path = ROOT / "docs" / "example_runner.py"
    spec = importlib.util.spec_from_file_location("sparselme_docs_example_runner", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def table_rows(text: str) -> list[tuple[str, str, str]]:
    """(lme4 cell, sparselme expression, notes) of every executed table's rows."""
    rows = []
    for part in text.split(MARKER)[1:]:
        lines = part.splitlines()[1:]
        body = []
        for line in lines[2:]:  # after the header and the --- line
            if not line.startswith("|"):
                break
            body.append(line)
        for line in body:
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            assert len(cells) == 3, f"a row of three cells: {line}"
            spans = _CODE.findall(cells[1])
            assert len(spans) == 1, f"one code span in the sparselme cell: {line}"
            code = html.unescape(spans[0][0] or spans[0][1])
            rows.append((cells[0], code, cells[2]))
    return rows


TEXT = PAGE.read_text(encoding="utf-8")
ROWS = table_rows(TEXT)


@cache
def namespace() -> dict:
    """The page's namespace after its blocks up to the last executed table."""
    runner = _load_runner()
    last_table = TEXT.rindex(MARKER)
    page = runner.PageRunner("lme4.md")
    for block in runner.python_blocks(TEXT):
        if block.start < last_table:
            page.run(block)
    return page.namespace


def test_tables_cover_issue_17():
    calls = " ".join(code for _, code, _ in ROWS)
    for needed in ["poly(", "raw = TRUE", "scale(", "center(", "splines::bs(", "splines::ns(",
                   "sqrt(", "I(Days^2)", "~ 1 | Subject", "re_form=\"~1 | Subject\"",
                   "re_form=\"(~1 | sample)\"", "batch/cask", "Petal.Width", "`x 2`",
                   "~ . - Subject", "offset(", "dummy(", "0 + Machine", "Machine - 1",
                   "hatvalues", "cooks_distance", "rstudent", "influence(", "groups=",
                   "type=\"pearson\"", "scaled=True", "df_resid", ".coef()", "add_dropped",
                   "random_only", "se_fit", "interval=", "update(", "refit(", "drop1(",
                   "ranova(", "correlation=True", ".params", ".pvalues", "missing=\"exclude\"",
                   "missing=\"drop\"", "names=[", "small=small", ".profile("]:  # fmt: skip
        assert needed in calls, f"no row of docs/lme4.md shows {needed!r}"


@pytest.mark.parametrize(("lme4", "code", "notes"), ROWS, ids=[code for _, code, _ in ROWS])
def test_row_runs(lme4, code, notes):
    ns = namespace()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if PLANNED in notes:
            try:
                eval(code, ns)  # noqa: S307 - the page's own example
            except (AttributeError, TypeError):
                return
            pytest.fail(f"{code} runs now: remove its '{PLANNED}' mark in docs/lme4.md")
        eval(code, ns)  # noqa: S307 - the page's own example
    if "matplotlib.pyplot" in sys.modules:
        sys.modules["matplotlib.pyplot"].close("all")
