"""Data of the seed examples that are generated rather than bundled.

``income_data`` regenerates the seed's income example with its own generation code
(np.random.seed(42); 90 people in three majors, 1 to 4 yearly observations each: 239
rows). ``students_data`` simulates students in classrooms nested in schools.
"""

# ruff: noqa: NPY002 - the seed generates its data with the legacy global RNG; kept as is

from __future__ import annotations

import numpy as np
import pandas as pd

MAJORS = {"Juggling": (25_000, 800), "Magic": (20_000, 1500), "Dragon Taming": (30_000, 400)}


def income_data() -> pd.DataFrame:
    """Income by years of education and major, repeated measures per person (239 rows)."""
    np.random.seed(42)
    majors = list(MAJORS)
    n_people = 90
    years_per_person = np.random.randint(1, 5, size=n_people)
    person_ids = [f"P{i + 1:03d}" for i in range(n_people)]
    major_of = np.repeat(majors, n_people // len(majors))
    records = []
    for i, pid in enumerate(person_ids):
        major = major_of[i]
        years = np.sort(np.random.choice(np.arange(1, 21), size=years_per_person[i], replace=False))
        base_income, growth = MAJORS[major]
        personal_offset = np.random.normal(0, 5000)
        slope_offset = np.random.normal(0, 200)
        for y in years:
            income = (
                base_income
                + personal_offset
                + (growth + slope_offset) * y
                + np.random.normal(0, 3000)
            )
            records.append({"person": pid, "major": major, "years_education": y, "income": income})
    return pd.DataFrame(records)


def students_data(seed: int = 2024, schools: int = 20, classes: int = 4, pupils: int = 10):
    """Test scores of pupils in classrooms (labels reused across schools) within schools.

    score = 60 + 1.5·hours + school intercept + school slope·hours + classroom effect + ε.
    """
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(schools):
        a, b = rng.normal(0, 3.0), rng.normal(0, 0.4)
        for c in range(classes):
            u = rng.normal(0, 1.5)
            for _ in range(pupils):
                hours = rng.uniform(0, 10)
                score = 60 + 1.5 * hours + a + b * hours + u + rng.normal(0, 2.5)
                rows.append(
                    {"school": f"S{s:02d}", "classroom": c + 1, "hours": hours, "score": score}
                )
    return pd.DataFrame(rows)
