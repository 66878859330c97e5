"""The thread policy: idle cores from /proc, one thread for small dense work."""

import sys

import numpy as np
import pytest

from sparselme.engine import threads


@pytest.mark.parametrize(
    ("others", "cores", "want"),
    [(0, 2, None), (1, 2, 1), (5, 2, 1), (0, 8, None), (3, 8, 5), (None, 2, None)],
)
def test_idle_core_limit(monkeypatch, others, cores, want):
    monkeypatch.setattr(threads, "_runnable_elsewhere", lambda: others)
    monkeypatch.setattr(threads.os, "cpu_count", lambda: cores)
    monkeypatch.setattr(threads.os, "getloadavg", lambda: (0.2, 0.2, 0.2))  # the fallback
    monkeypatch.setitem(threads._IDLE_CHECK, "at", -1e9)  # no cached answer
    assert threads.idle_core_limit() == want


def test_idle_core_limit_is_cached(monkeypatch):
    calls = []
    monkeypatch.setattr(threads, "_runnable_elsewhere", lambda: calls.append(1) or 0)
    monkeypatch.setitem(threads._IDLE_CHECK, "at", -1e9)
    threads.idle_core_limit()
    threads.idle_core_limit()
    assert len(calls) == 3  # three snapshots once, then the cached answer


def _fake_proc(tmp_path, running: int, states: list[str]):
    (tmp_path / "loadavg").write_text(f"0.50 0.40 0.30 {running}/300 12345\n")
    (tmp_path / "self" / "task").mkdir(parents=True)
    for i, state in enumerate(states):
        task = tmp_path / "self" / "task" / str(100 + i)
        task.mkdir()
        task.joinpath("stat").write_text(f"{100 + i} (python3 (x)) {state} 1 2 3\n")
    return str(tmp_path)


@pytest.mark.parametrize(
    ("running", "states", "want"),
    [(3, ["R", "S", "R"], 1), (2, ["R", "R"], 0), (1, ["S"], 1), (4, [], 4)],
)
def test_runnable_elsewhere_subtracts_our_running_threads(tmp_path, running, states, want):
    assert threads._runnable_elsewhere(_fake_proc(tmp_path, running, states)) == want


def test_runnable_elsewhere_without_proc(tmp_path):
    assert threads._runnable_elsewhere(str(tmp_path / "missing")) is None


def test_small_dense_work_stays_on_one_thread(monkeypatch):
    monkeypatch.setattr(threads, "idle_core_limit", lambda: None)
    assert threads.dense_blas_threads(threads.SINGLE_THREAD_MAX) == 1
    assert threads.dense_blas_threads(threads.SINGLE_THREAD_MAX + 1) is None
    assert threads.kernel_threads(threads.KERNEL_PARALLEL_MIN_PAIRS, None) == 1
    assert threads.kernel_threads(threads.KERNEL_PARALLEL_MIN_PAIRS + 1, 1) == 1


def test_blas_threads_limits_and_restores():
    from threadpoolctl import threadpool_info

    before = [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]
    with threads.blas_threads(1):
        inside = [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]
        assert all(n == 1 for n in inside)
    after = [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]
    assert after == before
    np.testing.assert_equal(threads.blas_threads(None).__enter__(), None)


def test_blas_controller_is_looked_up_again_after_an_import(monkeypatch):
    # a BLAS may load with a later import (scipy.linalg, an extension): it must be limited
    first = threads._blas_controller()
    assert threads._blas_controller() is first
    monkeypatch.setitem(sys.modules, "_sparselme_fake_extension", object())
    assert threads._blas_controller() is not first
