"""The streamed exact fit refused between the passes, from the rows of a sample of the
leading term's levels (`sparselme.streaming.passes.refuse_from_subset`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import sparselme as sl
from sparselme.engine import cholesky, limits
from sparselme.errors import EstimatorChoiceWarning, ProblemTooLargeError
from sparselme.streaming import passes

pytest.importorskip("pyarrow")

FORMULA = "y ~ x + (1|a) + (1|b)"
N, LA, LB = 3000, 150, 60
A_LEVELS = pd.Index([f"a{i:03d}" for i in range(LA)])


@pytest.fixture
def no_memory(monkeypatch):
    """Complements over 40 levels are not factored densely, nothing dense fits in memory,
    and the subset is the rows of about half of a's levels."""
    monkeypatch.setattr(cholesky, "DENSE_SCHUR_MAX", 40)
    monkeypatch.setattr(limits, "available_memory", lambda: 1000.0)
    monkeypatch.setattr(passes, "SUBSET_ROWS", N // 2)


def _folder(tmp_path: Path, a: np.ndarray, b: np.ndarray, seed: int = 1) -> Path:
    """y ~ x + (1|a) + (1|b) on codes a (into A_LEVELS) and b, in three Parquet files."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=len(a))
    y = 1 + 0.5 * x + rng.normal(size=LA)[a] + 0.5 * rng.normal(size=LB)[b]
    df = pd.DataFrame({
        "y": y + rng.normal(size=len(a)), "x": x,
        "a": pd.Categorical.from_codes(a, categories=A_LEVELS),
        "b": pd.Categorical.from_codes(b, categories=[f"b{j:02d}" for j in range(LB)]),
    })
    folder = tmp_path / "data"
    folder.mkdir()
    for i, part in enumerate(np.array_split(np.arange(len(df)), 3)):
        df.iloc[part].to_parquet(folder / f"part-{i}.parquet")
    return folder


@pytest.fixture
def crossed(tmp_path) -> Path:
    """a and b crossed at random: the Schur complement of b's levels fills in."""
    rng = np.random.default_rng(2)
    return _folder(tmp_path, rng.integers(0, LA, N), rng.integers(0, LB, N))


def _no_pass_two(monkeypatch):
    def chunk_moments(*args):
        raise AssertionError("the cross-products pass ran")

    monkeypatch.setattr(passes, "chunk_moments", chunk_moments)


def test_refused_before_the_cross_products_pass(no_memory, crossed, monkeypatch):
    _no_pass_two(monkeypatch)
    with pytest.raises(ProblemTooLargeError, match='estimator="moments"') as err:
        sl.lmer(FORMULA, str(crossed))
    message = str(err.value)
    assert "eliminating term 'a' first" in message and "a lower bound for all rows" in message
    assert "of the 150 'a' levels" in message
    assert err.value.estimate.order == LB + 3  # b's levels and [1 x y], as after pass 2


def test_auto_falls_back_to_moments_with_the_reason(no_memory, crossed, monkeypatch):
    _no_pass_two(monkeypatch)
    with pytest.warns(EstimatorChoiceWarning, match="lower bound"):
        res = sl.lmer(FORMULA, str(crossed), estimator="auto")
    assert res.estimator == "moments" and "a lower bound for all rows" in res.estimator_reason


def test_sparse_factorization_and_moments_skip_it(no_memory, crossed, monkeypatch):
    def refuse_from_subset(*args):
        raise AssertionError("the subset was read")

    monkeypatch.setattr(passes, "refuse_from_subset", refuse_from_subset)
    with pytest.raises(ProblemTooLargeError) as err:  # after pass 2, from CHOLMOD's analysis
        sl.lmer(FORMULA, str(crossed), factorization="sparse")
    assert "sparse Cholesky" in str(err.value)
    assert sl.lmer(FORMULA, str(crossed), estimator="moments").estimator == "moments"


def test_a_sparse_subset_goes_on_to_the_check_on_all_rows(no_memory, tmp_path, monkeypatch):
    """The sampled levels of a are nested in b (their rows first), the others crossed with
    it: the subset's complement is diagonal, all rows' fills in. Pass 2 runs and the
    check on all rows refuses."""
    rng = np.random.default_rng(3)
    chosen = A_LEVELS.get_indexer(passes.subset_levels(A_LEVELS, N))
    others = np.setdiff1d(np.arange(LA), chosen)
    n1 = N // 2
    a = np.concatenate([chosen, rng.choice(chosen, n1 - len(chosen)), others,
                        rng.choice(others, N - n1 - len(others))])
    b = np.where(np.arange(N) < n1, a % LB, rng.integers(0, LB, N))
    folder = _folder(tmp_path, a, b)
    checked, passed = [], []
    check, moments = cholesky.check_dense_schur, passes.chunk_moments

    def spy_check(terms, cp, p, subset=""):
        checked.append((subset, cp.nobs))
        check(terms, cp, p, subset)

    def spy_moments(*args):
        passed.append(True)
        return moments(*args)

    monkeypatch.setattr(cholesky, "check_dense_schur", spy_check)
    monkeypatch.setattr(passes, "chunk_moments", spy_moments)
    with pytest.raises(ProblemTooLargeError) as err:
        sl.lmer(FORMULA, str(folder))
    assert "lower bound" not in str(err.value) and "eliminating term 'a' first" in str(err.value)
    # the subset (the nested rows) was checked first, without refusing; then all rows
    assert checked == [(f"the {n1:,} rows of {len(chosen)} of the 150 'a' levels", n1), ("", N)]
    assert passed
