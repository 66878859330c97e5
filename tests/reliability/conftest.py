"""The reliability tests import tests/dense_reference.py and the seed data generators."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from reliability_data import make_frame  # noqa: E402


@pytest.fixture
def frame() -> pd.DataFrame:
    return make_frame()
