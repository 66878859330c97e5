"""sparselme: linear mixed-effects models on one global sparse random-effects matrix.

lme4's formula language and statsmodels' ``MixedLM`` API on an engine that factors the
penalized system with CHOLMOD. The public names below are imported on first use, so
``import sparselme`` stays quick.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# first: thread settings that OpenMP and OpenBLAS read once, when they load
from . import runtime as _runtime  # noqa: F401

__version__ = "0.1.0"

# public name → the module that defines it (all below this package's front ends)
_EXPORTS = {
    "lmer": "sparselme.lme4",
    "LinearMixedModel": "sparselme.lme4",
    "MixedLMResults": "sparselme.results",
    "load": "sparselme.results.storage",
    "anova": "sparselme.analysis.inference",
    "bootstrap": "sparselme.analysis.resampling",
    "VarIdent": "sparselme.residual_covariance",
    "AR1": "sparselme.residual_covariance",
    "mixedlm": "sparselme.statsmodels_compat",
    "MixedLM": "sparselme.statsmodels_compat",
    "MixedLMParams": "sparselme.statsmodels_compat",
}
_SUBMODULES = {"datasets", "errors"}

__all__ = [
    "lmer",
    "LinearMixedModel",
    "MixedLMResults",
    "load",
    "anova",
    "bootstrap",
    "VarIdent",
    "AR1",
    "mixedlm",
    "MixedLM",
    "MixedLMParams",
    "datasets",
    "errors",
    "__version__",
]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f"sparselme.{name}")
    else:
        raise AttributeError(f"module 'sparselme' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # for type checkers and IDEs: the same names, imported eagerly
    from . import datasets, errors
    from .analysis.inference import anova
    from .analysis.resampling import bootstrap
    from .lme4 import LinearMixedModel, lmer
    from .residual_covariance import AR1, VarIdent
    from .results import MixedLMResults
    from .results.storage import load
    from .statsmodels_compat import MixedLM, MixedLMParams, mixedlm
