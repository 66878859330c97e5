"""The docs site, built once into a temporary folder and checked as a reader opens it from disk.

The build runs every ```python block of every page (docs/hooks.py), so this module is what
keeps the examples working: a block that raises fails the build. The README is not part of
the site; its blocks run here with the same runner.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"


def _load_runner():
    path = DOCS / "example_runner.py"
    spec = importlib.util.spec_from_file_location("sparselme_docs_example_runner", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


runner = _load_runner()


class Page(HTMLParser):
    """What the checks need from one built page: links, ids, text, and the example blocks."""

    def __init__(self, path: Path):
        super().__init__(convert_charrefs=True)
        self.path = path
        self.links: list[str] = []
        self.ids: set[str] = set()
        self.text: list[str] = []
        self.examples: list[str] = []  # "source" / "output" / "figure" / "python", in order
        self._skip = 0  # inside <script> or <style>
        self.feed(path.read_text(encoding="utf-8"))

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag in ("script", "style"):
            self._skip += 1
        if "id" in attrs:
            self.ids.add(attrs["id"])
        for name in ("href", "src"):
            if attrs.get(name) and tag in ("a", "img", "link", "script"):
                self.links.append(attrs[name])
        classes = (attrs.get("class") or "").split()
        if tag == "div" and "sl-source" in classes:
            self.examples.append("source")
        elif tag == "div" and "sl-output" in classes:
            self.examples.append("output")
        elif tag == "figure" and "sl-figure" in classes:
            self.examples.append("figure")
        elif tag == "div" and "language-python" in classes:
            self.examples.append("python")

    def handle_endtag(self, tag):
        if tag in ("script", "style"):
            self._skip -= 1

    def handle_data(self, data):
        if not self._skip:
            self.text.append(data)


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> tuple[Path, Path]:
    """(built site, the examples' working folders); skips where the docs extra is missing."""
    pytest.importorskip("mkdocs")
    pytest.importorskip("mkdocstrings")
    pytest.importorskip("matplotlib")
    out = tmp_path_factory.mktemp("site")
    work = tmp_path_factory.mktemp("examples")
    env = dict(
        os.environ, NO_MKDOCS_2_WARNING="1", MPLBACKEND="Agg", SPARSELME_DOCS_WORKDIR=str(work)
    )
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-5000:]
    assert "WARNING" not in done.stderr, done.stderr[-5000:]
    return out, work


@pytest.fixture(scope="module")
def pages(site) -> dict[str, Page]:
    out, _ = site
    return {p.relative_to(out).as_posix(): Page(p) for p in sorted(out.rglob("*.html"))}


OUTPUTS = ("output", "figure")


def _markdown_pages() -> list[Path]:
    return sorted(DOCS.glob("*.md"))


def test_every_page_is_a_file_and_every_internal_link_resolves(site, pages):
    out, _ = site
    assert "getting-started.html" in pages and "api.html" in pages
    broken = []
    for name, page in pages.items():
        if name == "404.html":  # served by a web server at the site's root, never from disk
            continue
        for link in page.links:
            url = urlsplit(link)
            if url.scheme or link.startswith("//"):
                continue  # external, data: or mailto:
            target = (page.path.parent / unquote(url.path)).resolve() if url.path else page.path
            if target.is_dir():
                broken.append(f"{name}: {link} is a folder (a browser shows its listing)")
            elif not target.is_file():
                broken.append(f"{name}: {link} does not exist")
            elif url.fragment and target.suffix == ".html":
                ids = pages[target.relative_to(out).as_posix()].ids
                if unquote(url.fragment) not in ids:
                    broken.append(f"{name}: {link} has no anchor {url.fragment!r}")
    assert not broken, "\n".join(broken)


def test_search_index_covers_the_pages(site):
    """Search runs in a worker, which browsers allow over http (``make serve``) only."""
    out, _ = site
    index = json.loads((out / "search" / "search_index.json").read_text(encoding="utf-8"))
    located = {doc["location"].split("#")[0] for doc in index["docs"]}
    assert {"getting-started.html", "api.html", "benchmarks.html"} <= located


def test_no_escaped_bars_in_rendered_text(pages):
    found = [name for name, page in pages.items() if "\\|" in "".join(page.text)]
    assert not found, f"a literal \\| is shown on {found}"


SPHINX_ROLE = re.compile(r":(?:py:)?(?:class|mod|func|meth|attr|obj|data|exc|ref|term):`")


def test_no_sphinx_roles_in_rendered_text(pages):
    found = {
        name: SPHINX_ROLE.findall("".join(page.text))
        for name, page in pages.items()
        if SPHINX_ROLE.search("".join(page.text))
    }
    assert not found


@pytest.mark.parametrize("md", _markdown_pages(), ids=lambda p: p.name)
def test_every_example_ran_and_shows_its_output(md, pages):
    blocks = runner.python_blocks(md.read_text(encoding="utf-8"))
    kinds = pages[md.with_suffix(".html").name].examples
    sources = [j for j, kind in enumerate(kinds) if kind == "source"]
    assert len(sources) == len(blocks)
    if md.name != "api.md":  # the API page's code comes from docstrings
        assert "python" not in kinds, "a Python block that was not run"
    following = kinds + ["end"]
    silent = [b.line for b, j in zip(blocks, sources) if following[j + 1] not in OUTPUTS]
    assert not silent, f"{md.name}: the blocks at lines {silent} show no output"


def test_examples_run_a_second_time_where_they_left_files(site):
    """A reader runs a page twice: examples that write files must not fail on their own
    leftovers (e.g. ``mkdir`` of a folder that now exists)."""
    _, work = site
    rerun = []
    for folder in sorted(p for p in work.iterdir() if any(p.iterdir())):
        md = DOCS / f"{folder.name}.md"
        with runner.PageRunner(f"docs/{md.name}", folder) as again:
            for block in runner.python_blocks(md.read_text(encoding="utf-8")):
                again.run(block)
        rerun.append(md.name)
    assert "large-data.md" in rerun  # it writes a Parquet folder


def test_readme_examples_run():
    readme = ROOT / "README.md"
    blocks = runner.python_blocks(readme.read_text(encoding="utf-8"))
    assert blocks
    with runner.PageRunner("README.md") as run:
        outputs = [run.run(block) for block in blocks]
    assert all(not out.empty for out in outputs)


def test_block_extraction_and_console_output(tmp_path):
    page = (
        "text\n\n```python\nx = 1\nx + 1\n```\n\n```bash\nmake\n```\n"
        "```python\nimport sys\nprint('a', file=sys.stderr)\nprint('12%\\r100%')\nNone\n```\n"
    )
    blocks = runner.python_blocks(page)
    assert [(b.line, b.code) for b in blocks] == [
        (4, "x = 1\nx + 1\n"),
        (12, "import sys\nprint('a', file=sys.stderr)\nprint('12%\\r100%')\nNone\n"),
    ]
    with runner.PageRunner("page.md", tmp_path) as run:
        assert run.run(blocks[0]).text == "2"  # a last expression is shown, as in a console
        assert run.run(blocks[1]).text == "a\n100%"  # stderr too; \r rewrites the line
        with pytest.raises(runner.ExampleError, match=r'page\.md", line 2'):
            run.run(runner.Block(0, 0, 1, "x = 1\nraise ValueError('no')\n"))
