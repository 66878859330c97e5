"""statsmodels' ``MixedLM`` API on the sparse engine: a drop-in replacement.

``mixedlm(formula, data, groups=..., re_formula=..., vc_formula=...)`` and
``MixedLM(endog, exog, groups, exog_re, exog_vc)`` compile statsmodels' group-based
random-effects specification to the engine's global-Z terms:

* ``re_formula`` (or ``exog_re``) → one unstructured term over the groups;
* each ``vc_formula`` entry (or ``exog_vc`` component) → one term with a single shared
  variance: an indicator design such as ``"0 + C(class)"`` becomes a ``(1 | group:class)``
  term, any other design a "scalar" term whose k columns are the component's columns
  within each group;
* lme4 bar terms in the formula are added as they are, so crossed designs go through the
  same call. With a single bar term and no ``groups``, the bar's grouping factor is the
  groups and its left-hand side the ``re_formula``; with several bar terms the whole data
  set is one group (statsmodels' idiom for crossed effects).

The results carry statsmodels' names with statsmodels' meaning: ``params`` and ``bse`` on
statsmodels' scale (variance parameters divided by ``scale``), standard errors from the
Hessian of statsmodels' profile log-likelihood in its parametrization, ``aic``/``bic`` NaN
under REML, and a summary in statsmodels' layout. The Hessian and the conditional
covariances are computed group by group in the random-effects space (no n×n matrix).

Modules: ``model`` (MixedLM, mixedlm, fit), ``build`` (groups, re_formula, vc_formula,
exog_vc → a Design and its Layout), ``components`` (variance components as terms),
``inputs`` (arrays, columns, groups, missing values), ``layout`` (statsmodels' parameters
among the terms), ``params`` (MixedLMParams, VCSpec), ``fit`` (fits with some θ fixed),
``algebra`` (the per-group Hessian and conditional covariances), ``results``,
``summary`` (statsmodels' table layout), ``hypotheses`` (t and Wald tests).
"""

from .hypotheses import ContrastResults
from .model import MixedLM, mixedlm
from .params import MixedLMParams, VCSpec
from .results import MixedLMCompatResults
from .summary import Summary as Summary

__all__ = [
    "MixedLM",
    "MixedLMParams",
    "MixedLMCompatResults",
    "VCSpec",
    "ContrastResults",
    "mixedlm",
]
