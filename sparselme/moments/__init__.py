"""Crossed random-intercept models in linear time: moments, then GLS by backfitting/CG.

For ``y ~ X + (1|f_1) + ... + (1|f_K)`` (an interaction ``(1|f:h)`` is one more factor)
on data too large for exact REML:

* variance components by the method of moments: Gao & Owen's U-statistics (EJS 2017;
  Statistica Sinica 2020) as a pilot, then an efficient combination of level-weighted
  within/between-level statistics by generalized least squares on their estimated
  covariance (``.components``); every expectation is exact (``.quadratic``), the
  covariance of the estimates is estimated (``.sampling``);
* β by GLS given those components, solved by backfitting (Ghosh, Hastie & Owen 2022) or
  preconditioned conjugate gradients with a coarse correction (``.gls``), with its
  covariance (XᵀV⁻¹X)⁻¹ and the conditional modes of the random effects.

Every pass is a sum over chunks of rows (``.source``), so the same code runs in memory,
over Parquet and on Dask (``.adapters``). Plain functions and small dataclasses;
numpy and scipy only.
"""

from .cells import CellSample
from .fit import MomentsFit, fit_moments
from .source import Block, Layout, Reduce, Sums, in_memory, layout_for, read_block

__all__ = [
    "fit_moments",
    "MomentsFit",
    "Layout",
    "layout_for",
    "Reduce",
    "Sums",
    "Block",
    "read_block",
    "in_memory",
    "CellSample",
]
