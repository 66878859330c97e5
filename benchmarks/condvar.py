"""Conditional variances at scale: ``ranef().condvar`` without a dense q×q inverse.

Run from the repository root::

    .venv/bin/python -m benchmarks.condvar            # InstEval + 100k-level factors
    .venv/bin/python -m benchmarks.condvar --dense    # also InstEval's dense inverse
    .venv/bin/python -m benchmarks.condvar --nested   # also (1|a/b), 20k/100k levels

For each model: the fit, then the conditional (co)variances of all random effects
(``res.ranef().condvar``, i.e. the diagonal blocks of σ²Λ(ΛᵀZᵀZΛ + I)⁻¹Λᵀ), timed under
the engine's BLAS thread setting (one thread for small dense Schur complements: on a
busy machine BLAS threads spinning at barriers can cost an order of magnitude).
``--dense`` inverts InstEval's 4,100 × 4,100 matrix densely for comparison (time and
largest relative difference).
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import pandas as pd
import scipy.linalg as la
import scipy.sparse as sp

import sparselme as sl
from sparselme.engine import selinv
from sparselme.engine.threads import blas_threads


def synthetic(levels: tuple[int, ...], n: int, seed: int = 0) -> pd.DataFrame:
    """y ~ x + (1|g1) + (1|g2) ... with the given numbers of levels (all observed)."""
    rng = np.random.default_rng(seed)
    frame = {"x": rng.normal(size=n)}
    y = 1 + 0.5 * frame["x"] + rng.normal(size=n)
    for i, L in enumerate(levels):
        codes = rng.integers(L, size=n)
        codes[:L] = rng.permutation(L)
        frame[f"g{i + 1}"] = codes.astype(str)
        y += rng.normal(0, 0.5, L)[codes]
    frame["y"] = y
    return pd.DataFrame(frame)


def nested(outer: int, inner: int, per_cell: int, seed: int = 1) -> pd.DataFrame:
    """y ~ x + (1 | a/b): a with `outer` levels, `inner` levels of b within each."""
    rng = np.random.default_rng(seed)
    a = np.repeat(np.arange(outer), inner * per_cell)
    b = np.tile(np.repeat(np.arange(inner), per_cell), outer)
    n = len(a)
    x = rng.normal(size=n)
    cell = a * inner + b
    y = x + rng.normal(0, 0.6, outer)[a] + rng.normal(0, 0.4, outer * inner)[cell]
    y += rng.normal(size=n)
    return pd.DataFrame({"a": a.astype(str), "b": b.astype(str), "x": x, "y": y})


def time_condvar(res) -> float:
    """Seconds for all conditional variances (``ranef()``), at the engine's BLAS setting."""
    res.__dict__.pop("_condvar_blocks", None)
    start = time.perf_counter()
    with blas_threads(res.model.pls.chol.blas_threads):
        res.ranef()
    return time.perf_counter() - start


def dense_check(res) -> tuple[float, float]:
    """(seconds, max relative difference) of the dense inverse route."""
    model = res.model
    start = time.perf_counter()
    Z = sp.hstack([r.z_matrix() for r in model.design.rows]).tocsc()
    T = model.pls.templates(res.theta)
    lam = np.concatenate([np.tile(np.diag(Ts), t.nlevels) for t, Ts in zip(res.terms, T)])
    ZL = Z @ sp.diags(lam)  # scalar terms: Λ is diagonal
    A = (ZL.T @ ZL).toarray() + np.eye(Z.shape[1])
    V = res.scale * lam**2 * np.diag(la.inv(A))
    seconds = time.perf_counter() - start
    got = np.concatenate([b.reshape(-1) for b in res._condvar_blocks])
    return seconds, float(np.max(np.abs(got - V) / V))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dense", action="store_true", help="also invert InstEval's matrix densely")
    ap.add_argument(
        "--nested", action="store_true", help="also a nested 20k/100k model (CHOLMOD path, slow)"
    )
    args = ap.parse_args(argv)
    cases = [
        ("InstEval y ~ service*dept + (1|s) + (1|d)", "y ~ service*dept + (1|s) + (1|d)",
         lambda: sl.datasets.load("InstEval")),
        ("100k levels, (1|g1)", "y ~ x + (1|g1)", lambda: synthetic((100_000,), 400_000)),
        ("100k x 1k crossed, (1|g1)+(1|g2)", "y ~ x + (1|g1) + (1|g2)",
         lambda: synthetic((100_000, 1_000), 400_000)),
    ]  # fmt: skip
    if args.nested:
        cases.append(("nested 20k/100k, (1|a/b)", "y ~ x + (1|a/b)", lambda: nested(20_000, 5, 4)))
    rows = []
    for label, formula, make in cases:
        frame = make()
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = sl.lmer(formula, frame)
        fit_s = time.perf_counter() - start
        q = sum(t.q for t in res.terms)
        row = {"model": label, "q": q, "factorization": type(res.model.pls.chol).__name__,
               "fit_s": fit_s, "condvar_s": time_condvar(res)}  # fmt: skip
        if hasattr(res.model.pls.chol, "factor"):  # CHOLMOD: also Takahashi's selected inverse
            start = time.perf_counter()
            selinv.inverse_diagonal_blocks(
                res.model.pls.chol.factor, [t.k for t in res.terms], [t.nlevels for t in res.terms]
            )
            row["selinv_s"] = time.perf_counter() - start
        if args.dense and label.startswith("InstEval"):
            with blas_threads(res.model.pls.chol.blas_threads):
                row["dense_inverse_s"], row["max_rel_diff"] = dense_check(res)
        rows.append(row)
        print(pd.DataFrame([row]).to_string(index=False, float_format="%.3g"), flush=True)
    print()
    print(pd.DataFrame(rows).to_string(index=False, float_format="%.3g"))


if __name__ == "__main__":
    main()
