"""The one coder: learned on data in memory (or on a first pass's levels), it codes any
frame the same way, with the global levels."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import sparselme as sl
from sparselme import errors
from sparselme.data.coder import Coder, VariableCoding
from sparselme.data.formula import parse_formula


@pytest.fixture
def data() -> pd.DataFrame:
    rng = np.random.default_rng(4)
    n = 200
    return pd.DataFrame(
        {
            "y": rng.normal(size=n),
            "x": rng.normal(size=n),
            "f": pd.Categorical(rng.choice(["lo", "mid", "hi"], n), ["lo", "mid", "hi"]),
            "g": rng.choice(["a", "b", "c", "d"], n),
            "h": rng.integers(0, 3, n),
        }
    )


def test_coding_the_data_again_gives_what_learning_gave(data):
    parsed = parse_formula("y ~ x + f + (1 + x | g) + (1 | g:h)")
    coder, chunk, rhs = Coder.learn(parsed, data)
    again = coder.code(data)
    np.testing.assert_array_equal(again.X, chunk.X)
    np.testing.assert_array_equal(again.y, chunk.y)
    for a, b in zip(again.codes, chunk.codes):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(again.models, chunk.models):
        np.testing.assert_array_equal(a, b)
    assert list(rhs.columns) == coder.fixed_names == ["Intercept", "x", "f[T.mid]", "f[T.hi]"]


def test_a_chunk_without_some_levels_keeps_every_column(data):
    parsed = parse_formula("y ~ x + f + (1 | g)")
    coder, chunk, _ = Coder.learn(parsed, data)
    part = data[(data["f"] == "lo") & (data["g"] == "c")]
    coded = coder.code(part)
    assert coded.X.shape == (len(part), 4)
    assert np.all(coded.X[:, 2:] == 0)
    assert set(coded.codes[0]) == {2}  # g's global level "c"
    with pytest.raises(errors.DataError, match="did not see"):
        coder.code(data.assign(g="zz"))


def test_stateful_transforms_learn_from_the_data_in_memory_only(data):
    parsed = parse_formula("y ~ center(x) + (1 | g)")
    coder, chunk, _ = Coder.learn(parsed, data)
    np.testing.assert_allclose(chunk.X[:, 1], data["x"] - data["x"].mean())
    shifted = coder.code(data.iloc[:10])  # new rows: the training mean, not their own
    np.testing.assert_allclose(shifted.X[:, 1], data["x"].iloc[:10] - data["x"].mean())
    with pytest.raises(errors.StatefulTransformError, match="center"):
        Coder.from_levels(
            parsed,
            {"x": VariableCoding()},
            {"g": pd.Index(["a", "b"])},
            {"x": np.array([0.0, 1.0])},
            {},
        )


def test_the_fit_keeps_its_coder(data):
    res = sl.lmer("y ~ x + f + (1 | g)", data)
    assert res.design.coder is not None
    assert res.design.term_specs == res.design.coder.term_specs
