"""What the numbers were measured on: CPU, cores, memory, BLAS, versions, git commit."""

from __future__ import annotations

import os
import platform
import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def cpu_model() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or "unknown CPU"
    found = re.search(r"^model name\s*:\s*(.+)$", text, re.MULTILINE)
    return found.group(1).strip() if found else "unknown CPU"


def memory_gib() -> float | None:
    try:
        text = Path("/proc/meminfo").read_text()
    except OSError:
        return None
    found = re.search(r"^MemTotal:\s*(\d+) kB", text, re.MULTILINE)
    return int(found.group(1)) / 2**20 if found else None


def numpy_blas() -> str:
    """The BLAS numpy was built with, e.g. "scipy-openblas 0.3.29"."""
    import numpy

    try:
        blas = numpy.show_config(mode="dicts")["Build Dependencies"]["blas"]
        return f"{blas['name']} {blas['version']}"
    except Exception:  # numpy < 1.26 has no dict mode
        return "unknown"


def system_blas() -> str:
    """BLAS/LAPACK libraries loaded from outside site-packages once CHOLMOD is imported."""
    try:
        import sksparse.cholmod  # noqa: F401
    except ImportError:
        return "CHOLMOD not importable"
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        return "unknown"
    paths = {line.split()[-1] for line in maps.splitlines() if line.count(" ") >= 5}
    found = sorted(
        p
        for p in paths
        if "site-packages" not in p and re.search(r"(blas|lapack|mkl)[^/]*\.so", p, re.I)
    )
    return ", ".join(found) or "unknown"


def git_commit() -> str:
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=REPO, capture_output=True, text=True, check=False
        ).stdout.strip()

    commit = git("rev-parse", "--short", "HEAD")
    if not commit:
        return "unknown"
    dirty = git("status", "--porcelain", "--untracked-files=no", "--", "sparselme")
    return f"{commit} + uncommitted changes in sparselme/" if dirty else commit


def describe() -> dict[str, str]:
    import numpy
    import scipy

    mem = memory_gib()
    return {
        "cpu": cpu_model(),
        "cores": str(os.cpu_count()),
        "cores_usable": str(len(os.sched_getaffinity(0))),
        "memory": f"{mem:.1f} GiB" if mem else "unknown",
        "os": platform.platform(),
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "scipy": scipy.__version__,
        "blas_numpy": numpy_blas(),
        "blas_cholmod": system_blas(),
        "commit": git_commit(),
    }
