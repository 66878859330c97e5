"""The results users hold: estimates with analysis and display methods.

`MixedLMResults` (every lme4-style fit) and `ResidualMixedLMResults` (fits
with a residual structure) extend the computed estimates of
`sparselme.model.results.ModelFit`.
"""

from ..model.results import ModelFit, RandomEffects
from .mixed import MixedLMResults
from .residual import ResidualMixedLMResults
from .summary import lme4_summary

__all__ = ["MixedLMResults", "ResidualMixedLMResults", "RandomEffects", "ModelFit", "lme4_summary"]
