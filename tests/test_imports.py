"""What importing sparselme and fitting a first model load: the heavy optional modules
(statistics distributions, plotting, the distributed code) only when a feature needs them."""

from __future__ import annotations

import json
import subprocess
import sys

LATER = [
    "scipy.stats",
    "statsmodels",
    "matplotlib",
    "dask",
    "sparselme.streaming",
    "sparselme.plotting",
    "sparselme.analysis.inference",
]


def _loaded_after(code: str) -> set[str]:
    script = f"import json, sys\n{code}\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_import_loads_no_dependency_beyond_the_standard_library():
    loaded = _loaded_after("import sparselme")
    assert not {m for m in loaded if m.split(".")[0] in ("numpy", "scipy", "pandas")}


def test_a_first_fit_loads_no_statistics_plotting_or_distributed_code():
    loaded = _loaded_after(
        "import sparselme as sl\n"
        "res = sl.lmer('Reaction ~ Days + (Days|Subject)', sl.datasets.load('sleepstudy'))\n"
        "print(res.summary())"
    )
    assert "sparselme.engine.objective" in loaded  # it did fit
    assert not loaded & set(LATER)
