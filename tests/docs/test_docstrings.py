"""The package's docstrings as the API page renders them (Markdown, numpydoc sections).

No Sphinx roles (``:class:`x```) or reST literal markers (``::``), which Markdown shows as
text, and every ``>>>`` example gives the output it shows.
"""

from __future__ import annotations

import ast
import doctest
import importlib
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "sparselme"
SOURCES = sorted(PACKAGE.rglob("*.py"))
SPHINX_ROLE = re.compile(r":(?:py:)?(?:class|mod|func|meth|attr|obj|data|exc|ref|term):`")


def _docstrings(path: Path):
    """(line, text) of every docstring of a module, its classes and functions."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            doc = ast.get_docstring(node, clean=False)
            if doc:
                yield getattr(node, "lineno", 1), doc


def test_no_sphinx_roles_or_rest_literal_markers():
    found = []
    for path in SOURCES:
        for line, doc in _docstrings(path):
            where = f"{path.relative_to(PACKAGE.parent)}:{line}"
            if SPHINX_ROLE.search(doc):
                found.append(f"{where}: {SPHINX_ROLE.search(doc).group(0)}")
            if re.search(r"::\s*$", doc, re.MULTILINE):
                found.append(f"{where}: a line ending in '::'")
    assert not found, "\n".join(found)


def _modules_with_examples() -> list[str]:
    names = []
    for path in SOURCES:
        if ">>>" in path.read_text(encoding="utf-8"):
            rel = path.relative_to(PACKAGE.parent).with_suffix("")
            names.append(".".join(rel.parts))
    return names


@pytest.mark.parametrize("module", _modules_with_examples())
def test_docstring_examples_show_what_they_print(module):
    tests = doctest.DocTestFinder().find(importlib.import_module(module))
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    for test in tests:
        runner.run(test)
    assert runner.failures == 0
    if module in ("sparselme.lme4", "sparselme.statsmodels_compat.model"):
        assert runner.tries > 0  # lmer, MixedLM and mixedlm have examples that run
