"""MkDocs hooks: run every example, and link pages that exist.

* ``on_config``: pages in the nav whose file is not (yet) in docs/ are left out of the
  nav with an info message instead of failing ``mkdocs build --strict``.
* ``on_page_markdown``: runs the page's ```python blocks in order (``example_runner.py``)
  and puts what each one shows under it: its console output in a block titled "Output"
  and the figures it drew. An example that raises stops the build and names its line.
  The blocks run in a temporary directory per page, or in ``$SPARSELME_DOCS_WORKDIR/<page>``
  when that is set (kept, so a test can run them there a second time).
* ``on_post_build``: writes the figures to ``img/examples/`` in the built site.
"""

from __future__ import annotations

import html
import importlib.util
import logging
import os
import posixpath
import re
import sys
import time
from pathlib import Path

from mkdocs.exceptions import PluginError

log = logging.getLogger("mkdocs.hooks.sparselme")


def _load_runner():
    path = Path(__file__).with_name("example_runner.py")
    spec = importlib.util.spec_from_file_location("sparselme_docs_example_runner", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


runner = _load_runner()
FIGURES: dict[str, bytes] = {}  # site-relative path -> PNG, written after the build


# ---- navigation ------------------------------------------------------------------------------
def _prune(nav: list, docs_dir: Path) -> list:
    kept = []
    for item in nav:
        if isinstance(item, dict):
            ((title, target),) = item.items()
            if isinstance(target, list):
                target = _prune(target, docs_dir)
                if target:
                    kept.append({title: target})
            elif "://" in str(target) or (docs_dir / str(target)).exists():
                kept.append(item)
            else:
                log.info("nav: %s (%s) is not written yet; left out", title, target)
        elif isinstance(item, str) and not (docs_dir / item).exists():
            log.info("nav: %s is not written yet; left out", item)
        else:
            kept.append(item)
    return kept


def on_config(config):
    if config.nav:
        config.nav = _prune(config.nav, Path(config.docs_dir))
    return config


# ---- examples --------------------------------------------------------------------------------
def _fence(info: str, text: str) -> str:
    """A fenced block longer than any run of backticks in ``text``."""
    ticks = "`" * max(3, 1 + max((len(m) for m in re.findall(r"`+", text)), default=0))
    return f"{ticks} {info}\n{text}\n{ticks}"


def _figure(src: str, page_title: str) -> str:
    alt = html.escape(f"Figure drawn by the example above ({page_title})", quote=True)
    return f'<figure class="sl-figure"><img src="{src}" alt="{alt}"></figure>'


def on_pre_build(config):
    FIGURES.clear()


def on_page_markdown(markdown, page, config, files):
    blocks = runner.python_blocks(markdown)
    if not blocks:
        return markdown
    name = f"{Path(config.docs_dir).name}/{page.file.src_uri}"
    stem = Path(page.file.src_uri).with_suffix("").as_posix().replace("/", "-")
    keep = os.environ.get("SPARSELME_DOCS_WORKDIR")
    page_dir = posixpath.dirname(page.file.dest_uri)
    pieces, pos = [], 0
    started = time.perf_counter()
    with runner.PageRunner(name, Path(keep) / stem if keep else None) as run:
        for i, block in enumerate(blocks, start=1):
            try:
                out = run.run(block)
            except runner.ExampleError as err:
                raise PluginError(str(err)) from None
            pieces += [
                markdown[pos : block.start],
                _fence("{ .python .sl-source }", block.code.rstrip("\n")),
            ]
            if out.text:
                pieces.append("\n\n" + _fence('{ .text .sl-output title="Output" }', out.text))
            for k, png in enumerate(out.figures, start=1):
                target = f"img/examples/{stem}-{i}-{k}.png"
                FIGURES[target] = png
                src = posixpath.relpath(target, page_dir or ".")
                pieces.append("\n\n" + _figure(src, page.title or stem))
            pos = block.end
    log.info("ran %d examples of %s in %.1f s", len(blocks), name, time.perf_counter() - started)
    return "".join(pieces) + markdown[pos:]


def on_post_build(config):
    site = Path(config.site_dir)
    for target, png in FIGURES.items():
        path = site / target
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(png)
