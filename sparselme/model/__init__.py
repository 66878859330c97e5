"""The model and its fits: :class:`MixedModel` (the engine handle) and :class:`ModelFit`."""

from .mixed_model import MixedModel, ModelBlock
from .results import ModelFit, RandomEffects

__all__ = ["MixedModel", "ModelBlock", "ModelFit", "RandomEffects"]
