"""Selected inversion (Takahashi) against dense inverses and CHOLMOD's batched solves."""

from __future__ import annotations

import time
import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import sparselme as sl
from sparselme.engine.selinv import inverse_diagonal_blocks, lookup, selected_inverse


def test_selected_inverse_matches_dense_on_the_pattern():
    B = sp.random(60, 60, density=0.05, random_state=1) + sp.eye(60) * 3
    A = (B @ B.T).toarray()
    L = np.linalg.cholesky(A)
    Ls = sp.csc_matrix(np.where(np.abs(L) > 0, L, 0.0))
    Z = selected_inverse(Ls)
    inv = np.linalg.inv(A)
    r, c = Ls.nonzero()
    np.testing.assert_allclose(lookup(Z, r, c), inv[r, c], rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(lookup(Z, c, r), inv[r, c], rtol=1e-10, atol=1e-14)
    with pytest.raises(ValueError, match="pattern"):
        missing = np.argwhere(Ls.toarray() == 0)
        lower = missing[missing[:, 0] > missing[:, 1]][:1]
        lookup(Z, lower[:, 0], lower[:, 1])


@pytest.mark.parametrize(
    "formula,name",
    [
        ("strength ~ 1 + (1 | batch/cask)", "Pastes"),
        ("Weight ~ Time + (Time | Pig) + (1 | Litter)", "dietox"),
        ("diameter ~ 1 + (1 | plate) + (1 | sample)", "Penicillin"),
    ],
)
def test_blocks_match_cholmod_solves(formula, name):
    model = sl.LinearMixedModel.from_formula(
        formula, sl.datasets.load(name), factorization="sparse"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = model.fit()
    chol = model.pls.chol
    want = model.pls.inverse_diagonal_blocks(res.theta)
    got = inverse_diagonal_blocks(
        chol.factor, [t.k for t in res.terms], [t.nlevels for t in res.terms]
    )
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-9, atol=1e-13)


def test_nested_100k_levels_in_seconds():
    rng = np.random.default_rng(2)
    outer, inner, per = 20_000, 5, 4
    a = np.repeat(np.arange(outer), inner * per)
    b = np.tile(np.repeat(np.arange(inner), per), outer)
    y = (
        rng.normal(size=len(a))
        + rng.normal(size=outer)[a]
        + rng.normal(size=outer * inner)[a * inner + b]
    )
    frame = pd.DataFrame({"a": a.astype(str), "b": b.astype(str), "y": y})
    model = sl.LinearMixedModel.from_formula("y ~ 1 + (1 | a/b)", frame, factorization="sparse")
    res = model.fit()
    model.pls.solve(res.theta)
    start = time.perf_counter()
    blocks = inverse_diagonal_blocks(
        model.pls.chol.factor, [t.k for t in res.terms], [t.nlevels for t in res.terms]
    )
    assert time.perf_counter() - start < 30
    assert sum(bl.shape[0] for bl in blocks) == outer * inner + outer
    assert np.all(np.concatenate([bl.ravel() for bl in blocks]) > 0)
