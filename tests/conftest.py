"""Shared test helpers are importable from every test folder (tests/ is on sys.path).

``dense_reference`` (brute-force dense likelihoods), ``references`` (the frozen numbers
under tests/reference/) and the seed data generators live at the top of tests/.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
