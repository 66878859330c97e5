"""Where the frozen reference numbers live, and a loader for them."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

REFERENCE = Path(__file__).resolve().parent / "reference"


def load(source: str, name: str) -> dict:
    """``tests/reference/<source>/<name>.json`` as a dict."""
    return json.loads((REFERENCE / source / f"{name}.json").read_text())


@cache
def _parity_file(name: str) -> dict:
    return json.loads((REFERENCE / "lme4_parity" / f"{name}.json").read_text())["cases"]


def lme4_parity(key: str) -> dict:
    """A case of ``tests/reference/lme4_parity``: reference.json's, else methods.json's."""
    cases = _parity_file("reference")
    return cases[key] if key in cases else _parity_file("methods")[key]
