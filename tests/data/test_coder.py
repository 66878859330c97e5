"""The one coder: learned on data in memory (or on a first pass's levels), it codes any
frame the same way, with the global levels."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import sparselme as sl
from sparselme import errors
from sparselme.data.coder import Coder, VariableCoding, refuse_stateful_transforms
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


@pytest.mark.parametrize(
    "formula",
    ["y ~ poly(x, 2) + (1 | g)", "y ~ splines::bs(x, df = 4) + (1 | g)", "y ~ x + (scale(x) | g)"],
)
def test_r_stateful_transforms_are_refused_for_streamed_data(formula):
    with pytest.raises(errors.StatefulTransformError):
        refuse_stateful_transforms(parse_formula(formula))


def test_r_functions_without_state_and_the_callers_names_code_every_chunk(data):
    def double(v):
        return 2 * v

    parsed = parse_formula("y ~ double(x) + log(x + 10) + (1 | g)")
    refuse_stateful_transforms(parsed)  # nothing learned from the rows: streamable
    coder, chunk, _ = Coder.learn(parsed, data, env={"double": double})
    assert "double" not in coder.needed
    np.testing.assert_allclose(chunk.X[:, 1], 2 * data["x"])
    np.testing.assert_allclose(chunk.X[:, 2], np.log(data["x"] + 10))
    np.testing.assert_array_equal(coder.code(data.iloc[:7]).X, chunk.X[:7])


def test_terms_and_labels_are_lme4s_in_memory_and_from_levels(data):
    data = data.assign(k=data["h"].astype(float) + 307)  # integers stored as floats
    parsed = parse_formula("y ~ x + (1 | h) + (1 | k) + (1 | g)")
    coder, _, _ = Coder.learn(parsed, data)
    # 3, 3, 4 levels: most first, ties in reverse formula order (lme4's mkReTrms)
    assert [t.bar.group_name for t in coder.terms] == ["g", "k", "h"]
    assert list(coder.terms[1].levels) == ["307", "308", "309"]
    streamed = Coder.from_levels(
        parsed,
        {"y": VariableCoding(), "x": VariableCoding()},
        {v: pd.Index(sorted(data[v].unique())) for v in ("g", "h", "k")},
        {v: data[v].to_numpy()[:8] for v in ("y", "x")},
        {},
    )
    assert [t.bar.group_name for t in streamed.terms] == ["g", "k", "h"]
    assert list(streamed.terms[1].levels) == ["307", "308", "309"]
