"""Crossed random-intercept models in linear time: moments, then backfitting GLS.

For ``y ~ X + (1|f_1) + ... + (1|f_K)`` (an interaction ``(1|f:h)`` is one more factor)
on data too large for exact REML: variance components by the method of moments
(U-statistics in two passes, Gao & Owen 2017, 2020) with their estimated sampling
covariance, then β by GLS given those components, solved by backfitting / preconditioned
conjugate gradients (Ghosh, Hastie & Owen 2022), its covariance (XᵀV⁻¹X)⁻¹ and the
conditional modes of the random effects. Every pass is a sum over chunks of rows
(:mod:`.source`), so the same code runs in memory, over Parquet and on Dask.

Plain functions and small dataclasses; numpy and scipy only.
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
