"""The model and its fits: `MixedModel` (the engine handle) and `ModelFit`."""

from .mixed_model import MixedModel, ModelBlock
from .results import ModelFit, RandomEffects

__all__ = ["MixedModel", "ModelBlock", "ModelFit", "RandomEffects"]
