"""Drop-in for ``import statsmodels.formula.api as smf``: ``smf.mixedlm``.

    import sparselme.formula.api as smf    # was: import statsmodels.formula.api as smf
    md = smf.mixedlm("Weight ~ Time", data, groups=data["Pig"], re_formula="~Time")

The formula may also hold lme4 bar terms, e.g. ``"y ~ x + (1 | a) + (1 | b)"``.
"""

from __future__ import annotations

from ..api import datasets
from ..statsmodels_compat import MixedLM, MixedLMParams, mixedlm

__all__ = ["mixedlm", "MixedLM", "MixedLMParams", "datasets"]
