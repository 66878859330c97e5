"""Predicted cost of an exact fit: the symbolic counts, the estimates against measured
memory, and the refusal of fits that would not fit or would take hours per evaluation."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import scipy.sparse as sp

import sparselme as sl
from sparselme.engine import _gram, limits
from sparselme.errors import ProblemTooLargeError


def _structural_counts(A: sp.csc_matrix) -> np.ndarray:
    """Column counts of L by eliminating the pattern densely (small matrices only)."""
    L = np.tril(A.toarray() != 0)
    for j in range(A.shape[0]):
        rows = np.flatnonzero(L[j + 1 :, j]) + j + 1
        for r in rows:
            L[rows[rows >= r], r] = True
    return L.sum(axis=0)


@pytest.mark.parametrize("seed", range(40))
def test_column_counts_equal_symbolic_elimination(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 70))
    M = sp.random(n, n, rng.uniform(0, 0.25), random_state=seed, format="csc")
    A = (M + M.T + sp.eye(n)).tocsc()
    A.sort_indices()
    got = _gram.cholesky_column_counts(A.indptr.astype(np.int64), A.indices.astype(np.int32))
    np.testing.assert_array_equal(got, _structural_counts(A))


def test_sparse_estimate_counts_the_factor_cholmod_makes():
    rng = np.random.default_rng(1)
    n = 3000
    a, b = rng.integers(0, 600, n), rng.integers(0, 90, n)
    import pandas as pd

    data = pd.DataFrame({"y": rng.normal(size=n), "a": pd.Categorical(a), "b": pd.Categorical(b)})
    model = sl.LinearMixedModel.from_formula("y ~ 1 + (1|a) + (1|b)", data, factorization="sparse")
    est = model.pls.chol.estimate(2)
    model.pls.deviance(model.pls.initial_theta)
    L = model.pls.chol.factor.L()
    # CHOLMOD's factor holds the structural entries plus explicit zeros of its supernodes
    assert est.entries <= L.nnz <= 1.5 * est.entries
    assert est.order == model.pls.q


def test_dense_estimate():
    est = limits.dense_estimate(1000, 3)
    assert est.memory_bytes == 8 * 1003**2
    assert est.flops == pytest.approx(1003**3 / 3)


# A crossed design in a fresh process: the peak RSS of the first factorization above the RSS
# before it (Linux's VmHWM, reset just before).
_MEASURE = textwrap.dedent(
    """
    import json, sys
    import numpy as np, pandas as pd
    import sparselme as sl
    n, la, lb, method = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    rng = np.random.default_rng(1)
    a, b = rng.integers(0, la, n), rng.integers(0, lb, n)
    data = pd.DataFrame({"y": rng.normal(size=n), "x": rng.normal(size=n),
                         "a": pd.Categorical(a), "b": pd.Categorical(b)})
    m = sl.LinearMixedModel.from_formula("y ~ x + (1|a) + (1|b)", data, factorization=method)
    est = m.pls.chol.estimate(m.pls.p + 1)
    def kib(field):
        with open("/proc/self/status") as fh:
            return next(int(x.split()[1]) for x in fh if x.startswith(field + ":"))
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")  # the peak (VmHWM) restarts from the current RSS
    before = kib("VmRSS")
    m.pls.deviance(m.pls.initial_theta)
    print(json.dumps({"estimate": est.memory_bytes, "measured": 1024 * (kib("VmHWM") - before)}))
    """
)


_RUNTIME_BYTES = 8e6


def _measure(n: int, la: int, lb: int, method: str) -> tuple[float, float]:
    out = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(n), str(la), str(lb), method],
        capture_output=True,
        text=True,
        check=True,
    )
    record = json.loads(out.stdout.strip().splitlines()[-1])
    return record["estimate"], record["measured"]


@pytest.mark.parametrize(
    "sizes",
    [
        (60_000, 12_000, 1_500, "block"),
        (120_000, 12_000, 3_000, "block"),
        pytest.param((200_000, 20_000, 8_000, "block"), marks=pytest.mark.slow),
    ],
)
def test_dense_estimate_against_measured_memory(sizes):
    estimate, measured = _measure(*sizes)
    # beyond the estimate: the BLAS and OpenMP runtimes' first-use buffers (a few MB)
    assert 0.85 * estimate <= measured <= 1.15 * estimate + _RUNTIME_BYTES


@pytest.mark.parametrize(
    "sizes",
    [
        (50_000, 10_000, 1_500, "sparse"),
        pytest.param((100_000, 20_000, 3_000, "sparse"), marks=pytest.mark.slow),
        pytest.param((200_000, 40_000, 6_000, "sparse"), marks=pytest.mark.slow),
    ],
)
def test_sparse_estimate_against_measured_memory(sizes):
    estimate, measured = _measure(*sizes)
    assert 0.6 * estimate <= measured <= 1.3 * estimate + _RUNTIME_BYTES


def test_a_fit_that_would_not_fit_in_memory_is_refused_before_factoring(monkeypatch):
    monkeypatch.setattr(limits, "available_memory", lambda: 16.0)  # 16 bytes left
    with pytest.raises(ProblemTooLargeError, match='estimator="moments"') as err:
        sl.lmer("Reaction ~ Days + (Days|Subject)", sl.datasets.load("sleepstudy"))
    assert err.value.estimate.memory_bytes > 16


def test_an_evaluation_of_hours_is_refused(monkeypatch):
    est = limits.dense_estimate(200_000, 3)  # ~2.7e15 flops
    monkeypatch.setattr(limits, "flop_rate", lambda: 1e11)
    with pytest.raises(ProblemTooLargeError, match="per evaluation"):
        limits.check_feasible(est, memory=1e15)
    limits.check_feasible(limits.dense_estimate(2_000, 3), memory=1e15)  # well within


def test_flop_rate_is_positive_and_cached():
    rate = limits.flop_rate()
    assert rate > 1e8
    assert limits.flop_rate() == rate
