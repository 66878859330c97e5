"""The factorizations' dense-work helpers: thread policy, symmetric completion."""

import numpy as np
import pytest

from sparselme.engine import cholesky


@pytest.mark.parametrize(
    ("others", "cores", "want"),
    [(0, 2, None), (1, 2, 1), (5, 2, 1), (0, 8, None), (3, 8, 5), (None, 2, None)],
)
def test_idle_core_limit(monkeypatch, others, cores, want):
    monkeypatch.setattr(cholesky, "_runnable_elsewhere", lambda: others)
    monkeypatch.setattr(cholesky.os, "cpu_count", lambda: cores)
    monkeypatch.setattr(cholesky.os, "getloadavg", lambda: (0.2, 0.2, 0.2))  # the fallback
    monkeypatch.setitem(cholesky._IDLE_CHECK, "at", -1e9)  # no cached answer
    assert cholesky.idle_core_limit() == want


def test_idle_core_limit_is_cached(monkeypatch):
    calls = []
    monkeypatch.setattr(cholesky, "_runnable_elsewhere", lambda: calls.append(1) or 0)
    monkeypatch.setitem(cholesky._IDLE_CHECK, "at", -1e9)
    cholesky.idle_core_limit()
    cholesky.idle_core_limit()
    assert len(calls) == 3  # three snapshots once, then the cached answer


def test_runnable_elsewhere_counts_other_tasks_only():
    n = cholesky._runnable_elsewhere()
    assert n is None or n >= 0


@pytest.mark.parametrize("order", ["C", "F"])
def test_symmetric_from_upper_in_blocks(order):
    rng = np.random.default_rng(0)
    full = rng.normal(size=(50, 50))
    full = full + full.T
    M = np.array(np.triu(full) + np.tril(rng.normal(size=(50, 50)), -1), order=order)
    out = cholesky._symmetric_from_upper(M, block=16)  # several blocks and a partial one
    assert out.flags.c_contiguous
    np.testing.assert_array_equal(out, full)
