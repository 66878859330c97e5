"""Compatibility names: residual variance structures now live in
`sparselme.residual_covariance` (the structures) and `sparselme.lme4`
(``ResidualModel`` with lme4-style ``fit``)."""

from ..lme4 import ResidualModel
from ..residual_covariance import AR1, ResidualStructureError, VarIdent
from ..results import ResidualMixedLMResults

__all__ = ["VarIdent", "AR1", "ResidualStructureError", "ResidualModel", "ResidualMixedLMResults"]
