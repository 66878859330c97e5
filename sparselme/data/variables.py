"""The data variables a formula text uses.

formulaic's ``Formula.required_variables`` leaves out the arguments of stateful
transforms (``poly(x, 2)``, ``scale(x)``, ``center(x)``, ``bs(x, 3)`` give no ``x``) and
reads an R name such as ``x.1`` as the attribute ``1`` of ``x``. Here every factor is read
on its own: a looked-up factor is one variable (its whole name); a Python factor uses each
name in it that is not a transform, a module (``np``, ``log``, ``poly``, ``splines``...) or
a Python builtin that is called (``abs(x)``, ``round(x)``); a backquoted name
(`` `x.1` ``, `` `a b` ``) is a variable as written.
"""

from __future__ import annotations

import builtins
import re

from formulaic import Formula
from formulaic.parser.types import Factor
from formulaic.transforms import TRANSFORMS
from formulaic.utils.variables import Variable, get_required_variables

from .transforms import R_TRANSFORMS

__all__ = ["formula_variables"]

_QUOTED = re.compile(r"`([^`]+)`")


def formula_variables(text: str) -> set[str]:
    """Names of the data variables that formula ``text`` (formulaic syntax) refers to.

    Empty when formulaic cannot parse the text (it reports the problem itself when the
    model matrix is built).
    """
    try:
        formula = Formula(text)
    except Exception:  # formulaic parse problems surface later with its message
        return set()
    parts = [formula.lhs, formula.rhs] if hasattr(formula, "lhs") else [formula]
    found: set[str] = set()
    for part in parts:
        for term in part:
            for factor in term.factors:
                found |= _factor_variables(factor)
    return found


def _factor_variables(factor: Factor) -> set[str]:
    if factor.eval_method is Factor.EvalMethod.LOOKUP:
        return {str(factor.expr)}
    if factor.eval_method is not Factor.EvalMethod.PYTHON:
        return set()
    quoted = set(_QUOTED.findall(factor.expr))
    try:
        variables = set(factor.required_variables) | get_required_variables(factor.expr, {})
    except Exception:  # not Python: formulaic reports it on evaluation
        return set()
    out: set[str] = set()
    for v in variables:
        name, root = str(v), str(v.root)
        if name in quoted:
            out.add(name)
        elif root in TRANSFORMS or root in R_TRANSFORMS:
            continue
        elif hasattr(builtins, root) and Variable.Role.VALUE not in v.roles:
            continue  # a builtin that is called: abs(x)
        else:
            out.add(root)
    return out
