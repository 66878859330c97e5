"""Tests of the lme4 formula parser (text only, no data)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sparselme.data.formula import BarTerm, ParsedFormula, parse_formula, parse_re_formula
from sparselme.errors import FormulaError


def bars(formula: str) -> list[tuple[str, tuple[str, ...]]]:
    return [(b.lhs, b.group) for b in parse_formula(formula).bars]


# ------------------------------------------------------------------ well-formed formulas


def test_sleepstudy():
    p = parse_formula("Reaction ~ Days + (Days|Subject)")
    assert p == ParsedFormula(
        "Reaction ~ Days + (Days|Subject)", "Reaction", "Days", (BarTerm("Days", ("Subject",)),)
    )
    assert p.fixed_formula() == "Reaction ~ Days"
    assert p.bars[0].group_name == "Subject"
    assert p.bars[0].has_intercept


def test_crossed_design():
    p = parse_formula("y ~ service*dept + (1|s) + (1|d)")
    assert p.fixed == "service*dept"
    assert bars(p.text) == [("1", ("s",)), ("1", ("d",))]


def test_nested_pastes():
    p = parse_formula("strength ~ 1 + (1|batch/cask)")
    assert p.fixed == "1"
    assert bars(p.text) == [("1", ("batch",)), ("1", ("cask", "batch"))]
    assert [b.group_name for b in p.bars] == ["batch", "cask:batch"]


def test_three_level_nesting_and_interaction_outer():
    assert [g for _, g in bars("y ~ (1|a/b/c)")] == [("a",), ("b", "a"), ("c", "b", "a")]
    assert [g for _, g in bars("y ~ (1 | a:b/c)")] == [("a", "b"), ("c", "a", "b")]


def test_interaction_group():
    p = parse_formula("y ~ x + (1 | a:b)")
    assert bars(p.text) == [("1", ("a", "b"))]
    assert p.bars[0].group_name == "a:b"


def test_double_bar_pigs():
    p = parse_formula("Weight ~ Time + (Time||Pig)")
    assert p.fixed == "Time"
    assert bars(p.text) == [("1", ("Pig",)), ("0 + Time", ("Pig",))]
    assert [b.has_intercept for b in p.bars] == [True, False]


def test_double_bar_without_intercept_and_with_nesting():
    assert bars("y ~ (0 + x || g)") == [("0 + x", ("g",))]
    assert bars("y ~ (x - 1 || g)") == [("0 + x", ("g",))]
    assert bars("y ~ (1 + x + z || g)") == [("1", ("g",)), ("0 + x", ("g",)), ("0 + z", ("g",))]
    assert bars("y ~ (x || a/b)") == [
        ("1", ("a",)),
        ("1", ("b", "a")),
        ("0 + x", ("a",)),
        ("0 + x", ("b", "a")),
    ]


def test_double_bar_expands_crossings_like_r_terms():
    # R's terms(): main effects first, interactions after, variables in order of appearance
    assert bars("y ~ (a*b || g)") == [
        ("1", ("g",)),
        ("0 + a", ("g",)),
        ("0 + b", ("g",)),
        ("0 + a:b", ("g",)),
    ]
    assert bars("y ~ (0 + b + a:b || g)") == [("0 + b", ("g",)), ("0 + b:a", ("g",))]
    assert bars("y ~ (0 + a*b - a:b || g)") == [("0 + a", ("g",)), ("0 + b", ("g",))]


def test_no_intercept_bar():
    p = parse_formula("y ~ x + (0 + x | g)")
    assert bars(p.text) == [("0 + x", ("g",))]
    assert not p.bars[0].has_intercept


def test_minus_one_inside_a_term():
    p = parse_formula("y ~ x + (x - 1 | g) + (-1 + z | h)")
    assert bars(p.text) == [("x - 1", ("g",)), ("-1 + z", ("h",))]
    assert [b.has_intercept for b in p.bars] == [False, False]


@pytest.mark.parametrize(
    ("lhs", "expected"),
    [("1", True), ("x", True), ("1 + x", True), ("0 + x", False), ("x + 0", False),
     ("x - 1", False), ("-1 + x", False), ("0 + 1 + x", True), ("x - 0", True)],
)  # fmt: skip
def test_has_intercept_follows_lme4(lhs, expected):
    assert BarTerm(lhs, ("g",)).has_intercept is expected


def test_only_bars_gives_intercept_only_fixed_part():
    p = parse_formula("y ~ (1|g)")
    assert p.fixed == "1"
    assert p.fixed_formula() == "y ~ 1"


def test_intercept_removal_is_kept():
    assert parse_formula("y ~ 0 + x + (1|g)").fixed == "0 + x"
    assert parse_formula("y ~ x - 1 + (1|g)").fixed == "x - 1"
    assert parse_formula("y ~ -1 + x + (1|g)").fixed == "-1 + x"
    assert parse_formula("y ~ x + (1|g) - 1").fixed == "x - 1"
    assert parse_formula("y ~ (1|g) - 1").fixed == "-1"
    assert parse_formula("y ~ 0 + (1|g)").fixed == "0"


def test_function_calls_stay_in_fixed_part():
    p = parse_formula("np.log(y) ~ I(x**2) + C(f) + (1|g)")
    assert p.response == "np.log(y)"
    assert p.fixed == "I(x**2) + C(f)"
    p = parse_formula("y ~ C(f, Treatment('a b')) + poly(x, 2) + (a + b)**2 + a:b + (1|g)")
    assert p.fixed == "C(f, Treatment('a b')) + poly(x, 2) + (a + b)**2 + a:b"


def test_bar_terms_first_and_whitespace_insensitive():
    a = parse_formula("y ~ (1|g) + x")
    b = parse_formula("  y~( 1 |g )+x ")
    assert (a.response, a.fixed, a.bars) == (b.response, b.fixed, b.bars) == ("y", "x", a.bars)
    assert parse_formula("y ~ (1 + x|g)").bars == parse_formula("y ~ ( 1+x | g )").bars
    assert bars("y ~ ((1 | g))") == [("1", ("g",))]


def test_backquoted_names():
    p = parse_formula("`my y` ~ `a b` + (1 | `my group`/plot)")
    assert p.response == "`my y`"
    assert p.fixed == "`a b`"
    assert bars(p.text) == [("1", ("my group",)), ("1", ("plot", "my group"))]


def test_one_sided_formula():
    p = parse_formula("~ x + (1|g)")
    assert p.response is None
    assert p.fixed_formula() == "~ x"


def test_parse_re_formula():
    assert parse_re_formula("~Time") == "1 + Time"
    assert parse_re_formula("1") == "1"
    assert parse_re_formula("0") == "0"
    assert parse_re_formula("~0 + Time") == "0 + Time"
    assert parse_re_formula("~ Time - 1") == "Time - 1"
    assert parse_re_formula("Time") == "1 + Time"
    for bad in ["", "~", "y ~ x", "~ x +", "~ (1|g)", "~ x | g"]:
        with pytest.raises(FormulaError):
            parse_re_formula(bad)


# ------------------------------------------------------------------ R's operators


def test_caret_in_python_code_is_a_power():
    p = parse_formula("y ~ I(x^2) + log(x^2 + 1) + {x^3} + (I(z^2) | g)")
    assert p.fixed == "I(x**2) + log(x**2 + 1) + {x**3}"
    assert p.bars[0].lhs == "I(z**2)"
    assert parse_formula("y ~ I(-x^2) + I(2^-x)").fixed == "I(-x**2) + I(2**-x)"


def test_caret_between_terms_is_crossing():
    assert parse_formula("y ~ (a + b + c)^2 + (1|g)").fixed == "(a + b + c)^2"
    assert parse_formula("y ~ (a + b)**2").fixed == "(a + b)**2"


def test_in_is_the_interaction():
    assert parse_formula("y ~ a + b %in% a").fixed == "a + b:a"
    assert parse_formula("y ~ a %in% b*c").fixed == "a:b*c"
    assert bars("y ~ (x %in% z || g)") == [("1", ("g",)), ("0 + x:z", ("g",))]


@pytest.mark.parametrize(
    ("formula", "response"),
    [("Reaction^2 ~ x", "I(Reaction**2)"), ("y/10 ~ x", "I(y/10)"), ("y - 3 ~ x", "I(y - 3)"),
     ("-y ~ x", "I(-y)"), ("log(y^2) ~ x", "log(y**2)"), ("`my y` ~ x", "`my y`")],
)  # fmt: skip
def test_response_expressions_are_arithmetic(formula, response):
    assert parse_formula(formula).response == response


@pytest.mark.parametrize("formula", ["y ~ a + (0)", "y ~ (a + b - 1)", "y ~ a*(b - 1)"])
def test_intercept_inside_parentheses_is_an_error(formula):
    with pytest.raises(FormulaError, match="inside parentheses"):
        parse_formula(formula)


# ------------------------------------------------------------------ errors


@pytest.mark.parametrize(
    ("formula", "caret", "words"),
    [
        ("y ~ x +", "      ^", "expected a term"),
        ("y ~ (1|g", "    ^", "unclosed"),
        ("y ~ x)", "     ^", "unmatched"),
        ("y ~ ( | g)", "      ^", "left-hand side"),
        ("y ~ (1 | )", "         ^", "grouping factor"),
        ("y ~ x | g | h", "          ^", "more than one '|'"),
        ("y ~ offset(x) - offset(z)", "              ^", "cannot be subtracted"),
        ("y ~ (1 | g + h)", "           ^", "grouping"),
        ("y ~ (1 | 2)", "         ^", "grouping factor"),
        ("y ~ (1 | f(x))", "          ^", "grouping"),
        ("y ~ (1 | (1|h))", "           ^", "nested"),
        ("y ~ ((1|h) + x | g)", "       ^", "nested"),
        ("y ~ x:(1|g)", "        ^", "top-level"),
        ("y ~ x - (1|g)", "      ^", "subtracted"),
        ("y ~ (1 | g | h)", "           ^", "more than one '|'"),
        ("y ~", "  ^", "right-hand side"),
        ("y ~ x ~ z", "      ^", "more than one '~'"),
        ("y ~ x $ z", "      ^", "unexpected character"),
        ("y ~ (0 | g)", "       ^", "no intercept"),
        ("y ~ (x/z || g)", "      ^", "not supported"),
        ("y ~ a*(b - 1)", "           ^", "inside parentheses"),
        ("y:z ~ x", " ^", "no meaning in a response"),
        ("y | g ~ x", "  ^", "random-effects term"),
    ],
)
def test_errors_point_at_the_token(formula, caret, words):
    with pytest.raises(FormulaError) as info:
        parse_formula(formula)
    err = info.value
    assert isinstance(err, ValueError)
    assert err.formula == formula
    assert err.position == len(caret) - 1
    assert words in str(err)
    assert str(err).splitlines()[-2:] == ["    " + formula, "    " + caret]


@pytest.mark.parametrize("formula", ["", "   ", "y x"])
def test_errors_without_position(formula):
    with pytest.raises(FormulaError) as info:
        parse_formula(formula)
    assert info.value.position is None


def test_non_string_is_a_type_error():
    with pytest.raises(TypeError):
        parse_formula(None)  # type: ignore[arg-type]


# ------------------------------------------------------------------ fuzzing

_ALPHABET = "y~x+|()/:01 gab*-"


def _parse_or_formula_error(text: str) -> None:
    try:
        p = parse_formula(text)
    except FormulaError:
        return
    # whatever parses must be self-consistent: re-parsing the pieces works
    assert parse_formula(p.fixed_formula()).fixed == p.fixed
    for b in p.bars:
        assert isinstance(b.has_intercept, bool)
        assert b.group and all(b.group)


@settings(max_examples=600, deadline=None)
@given(st.text(alphabet=_ALPHABET, max_size=30))
def test_fuzz_formula_alphabet(text):
    _parse_or_formula_error(text)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40))
def test_fuzz_arbitrary_text(text):
    _parse_or_formula_error(text)
    try:
        parse_re_formula(text)
    except FormulaError:
        pass


_TOKENS = [*"y ~ x + - ( ) | || / : * 0 1 g h f( , ** 2 { } 's' [ ]".split(), "`a b`"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(_TOKENS), max_size=25))
def test_fuzz_token_soup(tokens):
    _parse_or_formula_error(" ".join(tokens))
    _parse_or_formula_error("".join(tokens))


def test_parse_one_sided_spells_r_operators_for_formulaic():
    from sparselme.data.formula import parse_one_sided

    assert parse_one_sided("~ I(x^2) + a %in% b") == "I(x**2) + a:b"
    assert parse_one_sided("0 + C(c)") == "0 + C(c)"
    with pytest.raises(FormulaError, match="one-sided"):
        parse_one_sided("y ~ x", "vc_formula")


@pytest.mark.parametrize("text", ["~a::a", "y ~ x::y + (1|g)", "y ~ (1 + a::b | g)"])
def test_a_package_object_that_is_not_called_raises(text):
    # found by the alphabet fuzz: `a::a` became the term a.a, which re-parses as `a.a`
    with pytest.raises(FormulaError, match="only a package's functions"):
        parse_formula(text)
