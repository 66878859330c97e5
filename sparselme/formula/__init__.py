"""Formula handling: lme4's grammar parsed to terms (``parse``), statsmodels' ``mixedlm``."""

from ..data.formula import BarTerm, ParsedFormula, parse_formula, parse_re_formula

__all__ = ["BarTerm", "ParsedFormula", "parse_formula", "parse_re_formula"]
