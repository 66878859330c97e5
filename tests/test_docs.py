"""Every ```python block in docs/*.md and README.md runs, so the docs never rot.

Blocks of one page share a namespace and run in order, in a temporary working directory,
with matplotlib on the Agg backend. A block preceded by ``<!-- skip -->`` is not run: use
it only for code that needs R or a cluster.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"]
PAGES = [p for p in PAGES if "```python" in p.read_text(encoding="utf-8")]

_BLOCK = re.compile(
    r"(?P<skip><!--\s*skip\s*-->[ \t]*\n(?:[ \t]*\n)*)?"  # an opt-out comment right before
    r"^(?P<indent>[ \t]*)```python[^\n]*\n(?P<code>.*?)^(?P=indent)```[ \t]*$",
    re.MULTILINE | re.DOTALL,
)


def python_blocks(text: str) -> list[tuple[int, str, bool]]:
    """(line number, code, skipped) for each ```python fence of a Markdown page."""
    blocks = []
    for m in _BLOCK.finditer(text):
        indent = m.group("indent")
        code = "\n".join(line[len(indent) :] for line in m.group("code").splitlines())
        line = text.count("\n", 0, m.start("code")) + 1
        blocks.append((line, code, m.group("skip") is not None))
    return blocks


def test_block_extraction():
    page = (
        "text\n\n```python\nx = 1\n```\n\n<!-- skip -->\n```python\nimport rpy2\n```\n"
        "\n- item\n\n    ```python\n    y = x + 1\n    ```\n```bash\nmake\n```\n"
    )
    assert python_blocks(page) == [
        (4, "x = 1", False),
        (9, "import rpy2", True),
        (15, "y = x + 1", False),
    ]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_examples_run(page: Path, tmp_path, monkeypatch):
    blocks = [b for b in python_blocks(page.read_text(encoding="utf-8")) if not b[2]]
    if not blocks:
        pytest.skip("no Python examples")
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "__docs__"}
    try:
        for line, code, _ in blocks:
            where = f"{page.relative_to(ROOT)}:{line}"
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # examples may show warnings on purpose
                try:
                    exec(compile(code, where, "exec"), namespace)
                except Exception as exc:
                    raise AssertionError(f"the example at {where} fails: {exc!r}") from exc
    finally:
        plt.close("all")


def test_site_builds_without_warnings(tmp_path):
    """``mkdocs build --strict``: no broken links, no docstring warnings, images drawn."""
    pytest.importorskip("mkdocs")
    pytest.importorskip("mkdocstrings")
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1", MPLBACKEND="Agg")
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "WARNING" not in done.stderr
    for name in ("diagnostics.png", "caterpillar.png", "sitka-profile.png"):
        assert (tmp_path / "img" / name).stat().st_size > 10_000
    assert (tmp_path / "api" / "index.html").exists()
