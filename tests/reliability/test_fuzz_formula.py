"""Fuzzing the whole formula path: random text either fits or raises a sparselme ValueError.

The parser alone is fuzzed in tests/formula/test_parse.py; here the formula also goes
through formulaic, the data checks and the fit, on a frame with numeric, text and
categorical columns. Nothing but a :class:`~sparselme.errors.SparselmeError` that is a
ValueError (FormulaError, DataError, UnknownColumnError...) may come out, and whatever
fits must give a finite criterion.
"""

from __future__ import annotations

import warnings

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reliability_data import make_frame

import sparselme as sl
import sparselme.formula.api as slf
from sparselme.errors import SparselmeError

DATA = make_frame(60, seed=11)
DATA["k"] = np.arange(60) % 3  # a small numeric grouping factor
DATA["one"] = 1.0

_TOKENS = [
    *"y x g h f s k one zz ~ + - * : / | || ( ) 0 1 2 ** ^ , . I( C( log( np.exp( `".split(),
    "(1|g)",
    "(x|g)",
    "(1|h)",
    "(0+x|k)",
    "(1|g/h)",
    "(x||f)",
    "(1|s:g)",
    "(1|one)",
    "(y|g)",
]
_SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)


def fits_or_raises_a_value_error(text: str) -> None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = sl.lmer(text, DATA, maxeval=200)
    except SparselmeError as exc:
        assert isinstance(exc, ValueError), repr(exc)
        assert str(exc).strip(), repr(exc)
        return
    assert np.isfinite(res.optsum.fmin)
    assert np.all(np.isfinite(res.fe_params.to_numpy()))


@_SETTINGS
@given(st.lists(st.sampled_from(_TOKENS), min_size=1, max_size=12))
def test_fuzz_token_soup(tokens):
    fits_or_raises_a_value_error(" ".join(tokens))


@_SETTINGS
@given(
    st.sampled_from(["y", "log(y + 10)", "x", "g", "f", "s", "y + x", "I(y * 2)", "zz", "one"]),
    st.lists(
        st.sampled_from(
            [
                "x",
                "f",
                "s",
                "h",
                "x:f",
                "x*s",
                "C(h)",
                "0",
                "1",
                "-1",
                "zz",
                "I(x**2)",
                "log(x)",
                "g",
            ]
        ),
        max_size=4,
    ),
    st.lists(st.sampled_from(_TOKENS[-9:]), max_size=3),
)
def test_fuzz_well_formed_pieces(response, fixed, bars):
    rhs = " + ".join([*fixed, *bars]) or "1"
    fits_or_raises_a_value_error(f"{response} ~ {rhs}")


@settings(max_examples=100, deadline=None, derandomize=True)
@given(st.text(max_size=30))
def test_fuzz_arbitrary_text(text):
    fits_or_raises_a_value_error(text)


def mixedlm_fits_or_raises_a_value_error(formula: str, re_formula: str | None) -> None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = slf.mixedlm(formula, DATA, groups="g", re_formula=re_formula).fit(maxeval=200)
    except SparselmeError as exc:
        assert isinstance(exc, ValueError), repr(exc)
        return
    assert np.all(np.isfinite(np.asarray(res.fe_params)))


_RESPONSES = ["y", "log(y + 10)", "x", "g", "f", "s", "y + x", "I(y * 2)", "zz", "one"]
_FIXED = ["x", "f", "s", "h", "x:f", "x*s", "C(h)", "0", "1", "-1", "zz", "I(x**2)", "log(x)", "g"]
_RE = [None, "~1", "~0", "~x", "~0 + x", "~f", "~s", "~log(x)", "~zz", "~x + I(2*x)", "~one", "~h"]


@_SETTINGS
@given(
    st.one_of(
        st.lists(st.sampled_from(_TOKENS[:-9]), min_size=1, max_size=8).map(" ".join),
        st.tuples(st.sampled_from(_RESPONSES), st.lists(st.sampled_from(_FIXED), max_size=4)).map(
            lambda p: f"{p[0]} ~ {' + '.join(p[1]) or '1'}"
        ),
    ),
    st.sampled_from(_RE),
)
def test_fuzz_statsmodels_formulas(formula, re_formula):
    mixedlm_fits_or_raises_a_value_error(formula, re_formula)
