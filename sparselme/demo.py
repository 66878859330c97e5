"""``python -m sparselme.demo``: fit the seed examples and print their summaries.

The dietox examples are written as in statsmodels' documentation (``mixedlm`` with
``groups`` and ``re_formula``) and print statsmodels' summary layout; InstEval's crossed
design is written in lme4's language and prints lme4's layout.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from . import datasets
from .lme4 import lmer
from .statsmodels_compat import mixedlm


def _examples() -> list[tuple[str, str, Callable]]:
    return [
        ("dietox: random intercept (statsmodels API)", "dietox",
         lambda d: mixedlm("Weight ~ Time", d, groups=d["Pig"]).fit()),
        ("dietox: random intercept and slope (statsmodels API)", "dietox",
         lambda d: mixedlm("Weight ~ Time", d, groups=d["Pig"], re_formula="~Time").fit()),
        ("InstEval: crossed students and lecturers (lme4 formula)", "InstEval",
         lambda d: lmer("y ~ service * dept + (1 | s) + (1 | d)", d)),
    ]


def main() -> None:
    for title, name, fit in _examples():
        data = datasets.load(name)
        start = time.perf_counter()
        res = fit(data)
        elapsed = time.perf_counter() - start
        print("=" * 78)
        print(f"{title}\n{len(data):,} rows, fitted in {elapsed:.2f} s "
              f"({res.optsum.feval} evaluations)")
        print("=" * 78)
        print(res.summary())
        print()


if __name__ == "__main__":
    main()
