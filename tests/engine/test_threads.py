"""The thread policy: idle cores from /proc, one thread for small dense work, one BLAS
library for the dense work and one setting per fit."""

import sys

import numpy as np
import pytest

import sparselme.engine.cholesky  # noqa: F401 - all the engine's BLAS libraries are loaded
from sparselme.engine import threads


@pytest.mark.parametrize(
    ("others", "cores", "want"),
    [(0, 2, None), (1, 2, 1), (5, 2, 1), (0, 8, None), (3, 8, 5), (None, 2, None)],
)
def test_idle_core_limit(monkeypatch, others, cores, want):
    monkeypatch.setattr(threads, "_runnable_elsewhere", lambda: others)
    monkeypatch.setattr(threads, "available_cores", lambda: cores)
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
    first = threads._controller()
    assert threads._controller() is first
    monkeypatch.setitem(sys.modules, "_sparselme_fake_extension", object())
    assert threads._controller() is not first


def test_needed_libraries_of_scipys_lapack_name_a_loaded_blas():
    from scipy.linalg import _flapack

    needed = threads._needed_libraries(_flapack.__file__)
    assert needed  # an ELF shared object with dependencies
    found = threads.dense_library()
    if found is not None:  # the wheel's or the system's BLAS, as threadpoolctl lists it
        assert any(found.endswith(name) for name in needed)


def test_needed_libraries_of_a_non_elf_file(tmp_path):
    path = tmp_path / "not-elf.so"
    path.write_bytes(b"MZ" + bytes(100))
    assert threads._needed_libraries(str(path)) == []


def _blas_counts() -> dict[str, int]:
    from threadpoolctl import threadpool_info

    return {p["filepath"]: p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"}


def test_fit_threads_holds_other_libraries_at_one_and_keeps_one_setting():
    dense = threads.dense_library()
    before = _blas_counts()
    with threads.fit_threads(2):
        inside = _blas_counts()
        for path, n in inside.items():
            assert n == (2 if dense is None or path == dense else 1)
        with threads.fit_threads(1):  # an evaluation seeing a busier machine
            pass
        # the new count stays until the fit ends: no switching back after each call
        assert _blas_counts()[dense or next(iter(inside))] == 1
        with threads.fit_threads(1):
            assert _blas_counts() == {p: 1 for p in inside}
    assert _blas_counts() == before


@pytest.mark.parametrize(
    ("text", "want"),
    [("max 100000\n", None), ("150000 100000\n", 1.5), ("50000 100000\n", 0.5)],
)
def test_cgroup_quota(tmp_path, text, want):
    (tmp_path / "cpu.max").write_text(text)
    assert threads._cgroup_cpus(str(tmp_path)) == want


def test_available_cores_is_capped_by_the_quota(monkeypatch):
    monkeypatch.setattr(threads, "_cgroup_cpus", lambda: 1.5)
    assert threads.available_cores() == 1
    monkeypatch.setattr(threads, "_cgroup_cpus", lambda: None)
    assert threads.available_cores() >= 1


def test_fit_threads_never_raises_a_limit_the_user_set():
    dense = threads.dense_library()
    with threads.blas_threads(1):  # as OPENBLAS_NUM_THREADS=1 or a threadpoolctl limit
        with threads.fit_threads(2):
            assert set(_blas_counts().values()) == {1}
    before = _blas_counts()
    key = dense or next(iter(before))
    with threads.fit_threads(None):  # all cores, as far as the library's own setting goes
        assert _blas_counts()[key] == min(threads.available_cores(), before[key])


def test_a_new_fit_looks_at_the_load_again(monkeypatch):
    others = [0]
    monkeypatch.setattr(threads, "_runnable_elsewhere", lambda: others[0])
    monkeypatch.setattr(threads, "available_cores", lambda: 2)
    threads.look_again()
    assert threads.idle_core_limit() is None
    others[0] = 1  # a CPU-bound process starts
    assert threads.idle_core_limit() is None  # within a fit: the answer of a few seconds ago
    threads.look_again()  # the next fit
    assert threads.idle_core_limit() == 1


def test_kernels_share_the_cores_only_where_blas_workers_sleep_promptly(monkeypatch):
    # mid-sized kernels get two threads beside a BLAS whose workers sleep within a
    # millisecond, one beside a BLAS that loaded before the settings (still spinning)
    mid = threads.KERNEL_PARALLEL_MIN_PAIRS + 1
    big = threads.KERNEL_BESIDE_SPINNING_MIN_PAIRS + 1
    monkeypatch.setattr(threads, "available_cores", lambda: 2)
    monkeypatch.setitem(threads._IDLE_CHECK, "cores", None)  # no earlier look at the load
    monkeypatch.setattr(threads, "blas_sleeps_promptly", lambda path: True)
    assert threads.kernel_threads(mid, None) == 2
    monkeypatch.setattr(threads, "blas_sleeps_promptly", lambda path: False)
    assert threads.kernel_threads(mid, None) == 1
    assert threads.kernel_threads(big, None) == 2
