"""distinct: np.unique's values by sorting."""

import numpy as np
import pytest

from sparselme.engine.arrays import distinct


@pytest.mark.parametrize(
    "values",
    [
        np.array([], dtype=np.intp),
        np.array([3]),
        np.random.default_rng(0).integers(-5, 40, 1000),
        np.random.default_rng(1).normal(size=50).round(1),
        np.array(["b", "a", "b", "c"]),
    ],
)
def test_distinct_equals_numpy_unique(values):
    got = distinct(values)
    np.testing.assert_array_equal(got, np.unique(values))
    assert got.dtype == values.dtype
