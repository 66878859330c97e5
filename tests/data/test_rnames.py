"""formulaic column names written as R writes them (model.matrix's deparsed labels)."""

import pytest

from sparselme.data.design import r_style_name
from sparselme.data.rnames import r_deparse


@pytest.mark.parametrize(
    ("formulaic", "r"),
    [
        ("Intercept", "(Intercept)"),
        ("I(Days ** 2)", "I(Days^2)"),
        ("exp(Days / 10)", "exp(Days/10)"),
        ("log(Days + 1)", "log(Days + 1)"),
        ("I((x + 1) ** 2)", "I((x + 1)^2)"),
        ("I(x * (y - z))", "I(x * (y - z))"),
        ("I(x - (y - z))", "I(x - (y - z))"),
        ("I(-x ** 2)", "I(-x^2)"),
        ("I(x ** 2 ** 3)", "I(x^2^3)"),
        ("I((x ** 2) ** 3)", "I((x^2)^3)"),
        ("poly(Days, 2, raw=True)[1]", "poly(Days, 2, raw = TRUE)1"),
        ("scale(Days, scale=False)", "scale(Days, scale = FALSE)"),
        ("dummy(Machine, 'B')", 'dummy(Machine, "B")'),
        ("splines.bs(Days, 3)[2]", "splines::bs(Days, 3)2"),
        ("bs(x, Boundary_knots=c(0, 10))[1]", "bs(x, Boundary.knots = c(0, 10))1"),
        ("log(`x.1` + 10)", "log(x.1 + 10)"),
        ("I(`x 2` ** 2)", "I(`x 2`^2)"),
        ("x 2", "`x 2`"),
        ("x.1", "x.1"),
        ("recipe[T.B]:temperature[^4]", "recipeB:temperature^4"),
        ("I(x ** 2.5)", "I(x^2.5)"),
        ("np.log(x)", "np.log(x)"),
    ],
)
def test_r_style_names(formulaic, r):
    assert r_style_name(formulaic) == r


def test_code_that_is_not_python_is_left_as_it_is():
    assert r_deparse("f(x") == "f(x"
