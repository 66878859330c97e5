"""Parametric bootstrap (lme4's ``bootMer``) and refits to a new response.

Each replicate draws y* from the fitted model (`sparselme.predict.simulate_responses`)
and refits it. A new response changes only the cross-products with y — ZᵀWy, XᵀWy, yᵀWy,
one O(n) pass — so every refit reuses the model's factorization: the symbolic analysis,
the cross-products of Z and X, and the fill-reducing ordering.

Replicate i draws from its own stream ``SeedSequence(seed).spawn(nsim)[i]``, so results
are the same whether the replicates run in one process or in ``n_jobs`` forked ones.
"""

from __future__ import annotations

import multiprocessing
import os
import warnings
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from ..engine.fit import FitOptions
from ..engine.threads import blas_threads
from ..errors import ConvergenceWarning, SingularFitWarning
from ..model.results import ModelFit
from ..progress import ProgressBar
from .parameters import parameter_vector
from .predict import simulate_responses

__all__ = ["bootstrap", "BootstrapResult", "refit"]


# ======================================================================================
# Refitting to a new response on the same factorization
# ======================================================================================


def refit(res: ModelFit, newresp: np.ndarray, **fit_kwargs) -> ModelFit:
    """Refit ``res``'s model to a new response (lme4's ``refit``), reusing its factorization.

    Starts from ``res``'s estimates; ``fit_kwargs`` are `FitOptions` fields
    (``maxeval``, ``check_derivatives``...) or ``start``. Returns a fit of ``res``'s class.
    """
    model = res.engine
    y = np.asarray(newresp, dtype=float)
    if y.shape != (model.design.nobs,):
        raise ValueError(f"newresp has shape {y.shape}, the model has {model.design.nobs} rows")
    offset = model.design.offset
    twin = model.with_response(y if offset is None else y - offset)
    start = fit_kwargs.pop("start", res.params_all)
    fit = twin.optimize(REML=res.reml, start=start, options=FitOptions(**fit_kwargs))
    return res.with_values(fit)


# ======================================================================================
# The bootstrap
# ======================================================================================


@dataclass
class BootstrapResult:
    """Replicates of a statistic: ``t0`` (on the fit), ``t`` (nsim rows; NaN if failed)."""

    t0: pd.Series
    t: pd.DataFrame
    seed: int | None = None
    messages: dict[str, int] = field(default_factory=dict)

    @property
    def nsim(self) -> int:
        return len(self.t)

    @property
    def n_failed(self) -> int:
        return int(self.t.isna().all(axis=1).sum())

    def confint(self, level: float = 0.95, type: str = "perc") -> pd.DataFrame:  # noqa: A002
        """Intervals per statistic: "perc" (percentile), "basic" or "norm"."""
        a = (1 - level) / 2
        labels = [f"{100 * q:.3g} %" for q in (a, 1 - a)]
        t = self.t.to_numpy(dtype=float)
        t0 = self.t0.to_numpy(dtype=float)
        if type == "perc":
            lo, hi = np.nanquantile(t, [a, 1 - a], axis=0)
        elif type == "basic":
            qlo, qhi = np.nanquantile(t, [a, 1 - a], axis=0)
            lo, hi = 2 * t0 - qhi, 2 * t0 - qlo
        elif type == "norm":
            bias = np.nanmean(t, axis=0) - t0
            sd = np.nanstd(t, axis=0, ddof=1)
            z = stats.norm.ppf(1 - a)
            lo, hi = t0 - bias - z * sd, t0 - bias + z * sd
        else:
            raise ValueError(f"type must be 'perc', 'basic' or 'norm', not {type!r}")
        return pd.DataFrame(np.column_stack([lo, hi]), index=self.t0.index, columns=labels)

    def summary(self) -> pd.DataFrame:
        """original, bias, std. error and median of each statistic."""
        t = self.t
        return pd.DataFrame(
            {
                "original": self.t0,
                "bias": t.mean() - self.t0,
                "std. error": t.std(ddof=1),
                "median": t.median(),
            }
        )

    def __repr__(self) -> str:
        notes = "".join(f", {v} {k}" for k, v in self.messages.items() if v)
        return f"<BootstrapResult nsim={self.nsim}, failed={self.n_failed}{notes}>"


@dataclass
class _Job:
    res: ModelFit
    func: Callable
    seeds: list
    use_u: bool


_JOB: _Job | None = None  # inherited by forked workers


def _statistic(value) -> tuple[np.ndarray, list[str] | None]:
    if isinstance(value, pd.Series):
        return value.to_numpy(dtype=float), [str(i) for i in value.index]
    return np.atleast_1d(np.asarray(value, dtype=float)).ravel(), None


def _replicate(job: _Job, i: int) -> tuple[np.ndarray | None, list[str]]:
    rng = np.random.default_rng(job.seeds[i])
    y = simulate_responses(job.res, rng, 1, job.use_u)[:, 0]
    notes = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            value = _statistic(job.func(refit(job.res, y, check_derivatives=False)))[0]
        except Exception as e:  # a failed replicate is NaN, as in bootMer
            notes.append(f"error: {type(e).__name__}")
            value = None
    for w in caught:
        if issubclass(w.category, SingularFitWarning):
            notes.append("singular fits")
        elif issubclass(w.category, ConvergenceWarning):
            notes.append("convergence warnings")
    return value, notes


def _run_chunk(indices: list[int]) -> list[tuple[int, np.ndarray | None, list[str]]]:
    assert _JOB is not None
    with blas_threads(1):
        return [(i, *_replicate(_JOB, i)) for i in indices]


def bootstrap(
    res: ModelFit,
    nsim: int = 500,
    func: Callable[[ModelFit], object] | None = None,
    seed: int | None = None,
    use_u: bool = False,
    n_jobs: int = 1,
    verbose: bool | None = None,
) -> BootstrapResult:
    """Parametric bootstrap of ``func`` (lme4's ``bootMer``).

    ``func(fit)`` maps a fit to a number, array or named Series (default: the estimates
    in lme4's parametrization, see `.parameters.parameter_vector`). ``seed``
    makes the replicates reproducible (independently of ``n_jobs``); ``n_jobs > 1`` (or
    -1: all cores) refits in forked processes; ``verbose``: progress bar on stderr (None:
    when stderr is a terminal and the work takes more than a couple of seconds).
    """
    global _JOB
    if func is None:
        func = parameter_vector
    t0, names = _statistic(func(res))
    seeds = np.random.SeedSequence(seed).spawn(int(nsim))
    job = _Job(res, func, seeds, use_u)
    values: list[np.ndarray | None] = [None] * nsim
    counts: dict[str, int] = {}
    n_jobs = (os.cpu_count() or 1) if n_jobs == -1 else max(1, int(n_jobs))
    with ProgressBar(nsim, "bootstrap", verbose=verbose) as bar:

        def collect(chunk):
            for i, value, notes in chunk:
                values[i] = value
                for note in set(notes):
                    counts[note] = counts.get(note, 0) + 1
            bar.update(len(chunk))

        if n_jobs == 1 or nsim < 2:
            with blas_threads(res.engine.pls.chol.blas_threads):
                for i in range(nsim):
                    collect([(i, *_replicate(job, i))])
        else:
            size = max(1, min(25, nsim // (4 * n_jobs)))
            chunks = [list(range(a, min(a + size, nsim))) for a in range(0, nsim, size)]
            _JOB = job
            try:
                ctx = multiprocessing.get_context("fork")
                with ProcessPoolExecutor(n_jobs, mp_context=ctx) as pool:
                    for chunk in pool.map(_run_chunk, chunks):
                        collect(chunk)
            finally:
                _JOB = None
    m = len(t0)
    t = np.full((nsim, m), np.nan)
    for i, v in enumerate(values):
        if v is not None and len(v) == m:
            t[i] = v
    index = names if names is not None else [f"t{j + 1}" for j in range(m)]
    return BootstrapResult(
        t0=pd.Series(t0, index=index),
        t=pd.DataFrame(t, columns=index),
        seed=seed,
        messages=counts,
    )
