"""Where the frozen reference numbers live, and a loader for them."""

from __future__ import annotations

import json
from pathlib import Path

REFERENCE = Path(__file__).resolve().parent / "reference"


def load(source: str, name: str) -> dict:
    """``tests/reference/<source>/<name>.json`` as a dict."""
    return json.loads((REFERENCE / source / f"{name}.json").read_text())
