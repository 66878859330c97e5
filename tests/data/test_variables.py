"""The data variables of a formula, including those used only inside stateful transforms."""

import pytest

from sparselme.data.variables import formula_variables


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("y ~ poly(x, 2) + scale(z) + center(w) + bs(v, 3)", {"y", "x", "z", "w", "v"}),
        ("~ center(scale(u))", {"u"}),
        ("~ I(x**2) + np.log(z + 1) + {w**2}", {"x", "z", "w"}),
        ('~ C(f, contr.treatment("b")) + `a b` + Q("c d")', {"f", "a b", "c d"}),
        ("~ abs(x) + round(z)", {"x", "z"}),  # builtins are functions, not columns
        ("~ a.fillna(0)", {"a"}),
        ("~ x +", set()),  # formulaic reports a malformed formula itself
    ],
)
def test_formula_variables(text, expected):
    assert formula_variables(text) == expected
