"""Process-wide thread settings made when sparselme is imported."""


def test_openmp_wait_policy_is_set_before_any_submodule_loads_the_runtime():
    # a kernel module imported first must still find the policy set (the runtime reads it
    # once, at load); a value the user set is kept
    import os
    import subprocess
    import sys

    code = (
        "import os\n"
        "import sparselme.engine._gram\n"
        "maps = open('/proc/self/maps').read()\n"
        "print(os.environ.get('OMP_WAIT_POLICY'), 'gomp' in maps)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.split() == ["PASSIVE", "True"], out.stderr
    env["OMP_WAIT_POLICY"] = "ACTIVE"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.split()[0] == "ACTIVE", out.stderr


def test_blas_sleeps_promptly_only_for_a_library_loaded_under_the_timeout(monkeypatch, tmp_path):
    import os

    from sparselme import runtime

    early, late = (os.path.realpath(tmp_path / name) for name in ("early.so", "late.so"))
    monkeypatch.setattr(runtime, "PRELOADED_BLAS", frozenset({early}))
    monkeypatch.setenv("OPENBLAS_THREAD_TIMEOUT", str(runtime.BLAS_THREAD_TIMEOUT))
    assert runtime.blas_sleeps_promptly(late)
    assert not runtime.blas_sleeps_promptly(early)
    assert not runtime.blas_sleeps_promptly(None)
    monkeypatch.setenv("OPENBLAS_THREAD_TIMEOUT", "28")  # the user's longer spin wins
    assert not runtime.blas_sleeps_promptly(late)
    monkeypatch.setattr(runtime, "PRELOADED_BLAS", None)  # no /proc: unknown
    monkeypatch.setenv("OPENBLAS_THREAD_TIMEOUT", "21")
    assert not runtime.blas_sleeps_promptly(late)
