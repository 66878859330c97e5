"""Hypothesis matrices of the F tests (lmerTest's type 1 and type 3)."""

import numpy as np
import pytest

import sparselme as sl
from sparselme.analysis.contrasts import (
    doolittle,
    term_columns,
    type1_contrasts,
    type3_contrasts,
    zapsmall,
)
from sparselme.data.design import build_design
from sparselme.data.formula import parse_formula


def _design(formula: str, name: str):
    return build_design(parse_formula(formula), sl.datasets.load(name))


def test_doolittle_is_a_unit_lower_times_upper_factorization():
    rng = np.random.default_rng(0)
    M = rng.normal(size=(5, 5))
    S = M @ M.T + np.eye(5)
    L, U = doolittle(S)
    np.testing.assert_allclose(L @ U, S, atol=1e-5)
    np.testing.assert_allclose(np.diag(L), 1.0)
    assert np.allclose(np.triu(L, 1), 0) and np.allclose(np.tril(U, -1), 0)


def test_term_columns_and_intercept():
    d = _design("angle ~ recipe * temperature + (1 | recipe:replicate)", "cake")
    cols, intercept = term_columns(d)
    assert intercept
    assert list(cols) == ["recipe", "temperature", "recipe:temperature"]
    assert [len(c) for c in cols.values()] == [2, 5, 10]
    assert sorted(j for c in cols.values() for j in c) == list(range(1, 18))


def test_type1_hypotheses_test_each_term_after_the_earlier_ones():
    d = _design("angle ~ recipe * temperature + (1 | recipe:replicate)", "cake")
    hyps = type1_contrasts(d)
    X = d.X
    for L in hyps.values():
        assert L.shape[1] == X.shape[1] and np.linalg.matrix_rank(L) == L.shape[0]
    # sequential: the first term's hypotheses do not involve later terms' columns
    cols, _ = term_columns(d)
    later = cols["temperature"] + cols["recipe:temperature"]
    first = hyps["recipe"]
    # Lβ for β of the later columns only is unaffected up to the design's correlation:
    # L = U rows: zero on the columns before the term
    assert np.allclose(first[:, 0], 0.0)
    assert np.allclose(hyps["recipe:temperature"][:, : min(later)], 0.0)


def test_type3_hypotheses_are_estimable_and_do_not_involve_the_intercept():
    d = _design("angle ~ recipe * temperature + (1 | recipe:replicate)", "cake")
    hyps = type3_contrasts(d)
    assert list(hyps) == ["recipe", "temperature", "recipe:temperature"]
    X = d.X
    for term, L in hyps.items():
        assert np.allclose(L[:, 0], 0.0), term
        # estimable: each row lies in the row space of X
        proj = L @ np.linalg.pinv(X) @ X
        np.testing.assert_allclose(proj, L, atol=1e-8)
    assert [h.shape[0] for h in hyps.values()] == [2, 5, 10]


def test_zapsmall_like_r():
    np.testing.assert_array_equal(zapsmall(np.array([1.0, 1e-12, 123.456789])),
                                  [1.0, 0.0, 123.4568])  # fmt: skip
    assert zapsmall(np.zeros(2)).tolist() == [0.0, 0.0]


def test_no_term_structure_without_a_formula():
    d = _design("Reaction ~ Days + (1 | Subject)", "sleepstudy")
    from dataclasses import replace

    with pytest.raises(ValueError, match="formula"):
        term_columns(replace(d, fixed_spec=None))
