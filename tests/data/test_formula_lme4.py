"""lme4's spellings in the parser: bars without parentheses, re.form, offset() terms, the
``.`` shorthand, R names and constants, package namespaces."""

import pytest

from sparselme.data.formula import expand_dot, parse_formula, parse_re_form
from sparselme.errors import FormulaError


def bars(parsed):
    return [(b.lhs, b.group) for b in parsed.bars]


@pytest.mark.parametrize(
    ("formula", "response", "expected"),
    [
        ("y ~ 1 | g", "y", [("1", ("g",))]),
        ("log(y) ~ x | z", "log(y)", [("x", ("z",))]),
        ("y ~ (x1 + x2) | ff", "y", [("(x1 + x2)", ("ff",))]),
        ("y ~ x + z | g/h", "y", [("x + z", ("g",)), ("x + z", ("h", "g"))]),
        ("y ~ x || g", "y", [("1", ("g",)), ("0 + x", ("g",))]),
    ],
)
def test_a_bar_outside_parentheses_takes_the_whole_right_hand_side(formula, response, expected):
    parsed = parse_formula(formula)
    assert parsed.response == response
    assert parsed.fixed == "1"
    assert bars(parsed) == expected


@pytest.mark.parametrize(
    ("re_form", "expected"),
    [
        ("~1|recipe", [("1", ("recipe",))]),
        ("~(1|h/f)", [("1", ("h",)), ("1", ("f", "h"))]),
        ("(~1|sample)", [("1", ("sample",))]),
        ("(1 | g)", [("1", ("g",))]),
        ("~(1 | g) + (0 + x | g)", [("1", ("g",)), ("0 + x", ("g",))]),
    ],
)
def test_re_form_spellings(re_form, expected):
    assert [(b.lhs, b.group) for b in parse_re_form(re_form)] == expected


def test_offset_terms_are_kept_apart_from_the_fixed_part():
    parsed = parse_formula("y ~ x + offset(log(n)) + offset(2 * z) + (1 | g)")
    assert parsed.fixed == "x"
    assert parsed.offsets == ("log(n)", "2*z")
    assert parse_formula("y ~ offset(o) + (1|g)").fixed == "1"


@pytest.mark.parametrize(
    ("formula", "fixed"),
    [
        ("y ~ . - g + (1|g)", "a + `b.c` + g + `d e` - g"),
        ("y ~ x:. + (1|g)", "x:(a + `b.c` + g + `d e`)"),
        ("y ~ x + (1|g)", "x"),
    ],
)
def test_dot_stands_for_the_other_columns(formula, fixed):
    parsed = expand_dot(parse_formula(formula), ["y", "a", "b.c", "g", "d e"], {"y"})
    assert parsed.fixed == fixed


def test_dot_without_other_columns_is_an_error():
    with pytest.raises(FormulaError, match="no column"):
        expand_dot(parse_formula("y ~ . + (1|g)"), ["y"], {"y"})


@pytest.mark.parametrize(
    ("formula", "fixed"),
    [
        ("y ~ Petal.Width + x.1", "`Petal.Width` + `x.1`"),
        ("y ~ log(Petal.Width) + np.log(x) + np.pi", "log(`Petal.Width`) + np.log(x) + np.pi"),
        ("y ~ poly(x, 2, raw = TRUE)", "poly(x, 2, raw=True)"),
        ("y ~ scale(x, center = FALSE, scale = TRUE)", "scale(x, center=False, scale=True)"),
        ("y ~ splines::ns(x, 3)", "splines.ns(x, 3)"),
        ("y ~ bs(x, Boundary.knots = c(0, 9))", "bs(x, Boundary_knots=c(0, 9))"),
        ("y ~ TRUE + x", "TRUE + x"),  # outside a call TRUE is a column name
    ],
)
def test_r_names_and_constants_are_spelled_for_formulaic(formula, fixed):
    assert parse_formula(formula).fixed == fixed


def test_dotted_response_and_grouping_names():
    parsed = parse_formula("Petal.Width ~ x + (1 | my.group)")
    assert parsed.response == "`Petal.Width`"
    assert parsed.bars[0].group == ("my.group",)


@pytest.mark.parametrize(
    ("formula", "words"),
    [
        ("y ~ x |", "grouping factor"),
        ("y ~ | g", "left-hand side"),
        ("y ~ x | g | h", "more than one '|'"),
        ("y ~ x + (1 | g) | h", "nested random-effects terms"),
        ("y ~ x - offset(z)", "cannot be subtracted"),
    ],
)
def test_malformed_lme4_spellings_raise(formula, words):
    with pytest.raises(FormulaError, match=words):
        parse_formula(formula)
