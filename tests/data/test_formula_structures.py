"""Covariance-structure terms in formulas: ``ar1(0 + t | g)``, ``rr(x | g, d = 2)`` ..."""

from __future__ import annotations

import pytest

from sparselme.data.formula import BarTerm, parse_formula
from sparselme.data.formula_structures import STRUCTURE_KEYWORDS
from sparselme.errors import FormulaError


def structured(formula: str) -> list[tuple[str, tuple[str, ...], str | None, tuple]]:
    return [(b.lhs, b.group, b.covariance, b.options) for b in parse_formula(formula).bars]


@pytest.mark.parametrize("keyword", [k for k in STRUCTURE_KEYWORDS if k != "rr"])
def test_every_keyword_wraps_a_bar_term(keyword):
    p = parse_formula(f"y ~ x + {keyword}(0 + t | g)")
    assert p.fixed == "x"
    assert p.bars == (BarTerm("0 + t", ("g",), covariance=keyword),)


def test_structured_terms_next_to_plain_ones():
    assert structured("y ~ x + ar1(0 + occ | subj) + (1 | item)") == [
        ("0 + occ", ("subj",), "ar1", ()),
        ("1", ("item",), None, ()),
    ]
    assert structured("y ~ us(x|g) + diag( x | g )") == [
        ("x", ("g",), "us", ()),
        ("x", ("g",), "diag", ()),
    ]


def test_nested_and_interaction_groupings_keep_the_structure():
    assert structured("y ~ cs(0 + f | a/b)") == [
        ("0 + f", ("a",), "cs", ()),
        ("0 + f", ("b", "a"), "cs", ()),
    ]
    assert structured("y ~ toep(0 + f | a:b)") == [("0 + f", ("a", "b"), "toep", ())]


def test_reduced_rank_takes_its_rank():
    assert structured("y ~ rr(x | g, d = 1)")[0][3] == (("rank", 1),)
    assert structured("y ~ rr(x | g, 3)")[0][3] == (("rank", 3),)
    assert structured("y ~ rr(x | g)")[0][3] == (("rank", 2),)  # glmmTMB's default


def test_the_left_hand_side_is_formula_syntax():
    """Inside a structure the bar's left-hand side is read as in a plain bar term."""
    assert structured("y ~ cs(0 + a*b | g)")[0][0] == "0 + a*b"
    assert structured("y ~ homcs(0 + I(x^2) + f | g)")[0][0] == "0 + I(x**2) + f"
    assert parse_formula("y ~ diag(x) + (1 | g)").fixed == "diag(x)"  # a call, no bar


@pytest.mark.parametrize(
    "formula, message",
    [
        ("y ~ ar1(t | g)", r"without an intercept: write ar1\(0 \+ time \| group\)"),
        ("y ~ toep(1 + t | g)", "without an intercept"),
        ("y ~ ou(x | g)", "needs coordinates"),
        ("y ~ cs(x || g)", r"write diag\(x \| g\)"),
        ("y ~ cs(x | g, 2)", "takes one argument"),
        ("y ~ rr(x | g, d = 0)", "at least 1"),
        ("y ~ rr(x | g, d = 1.5)", "whole number"),
        ("y ~ rr(x | g, 1, 2)", "the rank d"),
        ("y ~ x * ar1(0 + t | g)", "random-effects term"),
        ("y ~ -cs(0 + t | g)", "cannot be subtracted"),
        ("y ~ ar1(0 + t | g | h)", "more than one|nested"),
    ],
)
def test_malformed_structures_raise(formula, message):
    with pytest.raises(FormulaError, match=message):
        parse_formula(formula)
