"""``python -m sparselme.demo``: fit the seed examples and print their summaries."""

from __future__ import annotations

import time

from . import datasets
from .model import lmer

EXAMPLES = [
    ("dietox: random intercept", "dietox", "Weight ~ Time + (1 | Pig)"),
    ("dietox: random intercept and slope", "dietox", "Weight ~ Time + (Time | Pig)"),
    (
        "InstEval: crossed students and lecturers",
        "InstEval",
        "y ~ service * dept + (1 | s) + (1 | d)",
    ),
]


def main() -> None:
    for title, name, formula in EXAMPLES:
        data = datasets.load(name)
        start = time.perf_counter()
        res = lmer(formula, data)
        elapsed = time.perf_counter() - start
        print("=" * 78)
        print(
            f"{title}   ({len(data):,} rows, fitted in {elapsed:.2f} s, "
            f"{res.optsum.feval} evaluations)"
        )
        print("=" * 78)
        print(res.summary())
        print()


if __name__ == "__main__":
    main()
