"""sparselme: linear mixed-effects models on one global sparse random-effects matrix.

lme4's formula language and statsmodels' ``MixedLM`` API on an engine that factors the
penalized system with CHOLMOD.
"""

from . import datasets, errors
from .analysis.inference import anova
from .analysis.resampling import bootstrap
from .model.mixed_model import LinearMixedModel, lmer
from .model.results import MixedLMResults
from .residual_covariance import AR1, VarIdent
from .statsmodels_compat import MixedLM, MixedLMParams, mixedlm

__version__ = "0.1.0"

__all__ = ["lmer", "LinearMixedModel", "MixedLMResults", "datasets", "errors", "__version__"]
__all__ += ["mixedlm", "MixedLM", "MixedLMParams", "anova", "bootstrap", "VarIdent", "AR1"]
