"""The data variables a formula text uses.

formulaic's ``Formula.required_variables`` leaves out the arguments of stateful
transforms (``poly(x, 2)``, ``scale(x)``, ``center(x)``, ``bs(x, 3)`` give no ``x``), so
those variables would never be taken from the data. Here every Python factor is also
read as plain code: each name it uses is a variable unless it is one of formulaic's
transforms or modules (``np``, ``log``, ``poly``...) or a Python builtin that is called
(``abs(x)``, ``round(x)``).
"""

from __future__ import annotations

import builtins

from formulaic import Formula
from formulaic.parser.types import Factor
from formulaic.transforms import TRANSFORMS
from formulaic.utils.variables import Variable, get_required_variables

__all__ = ["formula_variables"]


def formula_variables(text: str) -> set[str]:
    """Names of the data variables that formula ``text`` (formulaic syntax) refers to.

    Empty when formulaic cannot parse the text (it reports the problem itself when the
    model matrix is built).
    """
    try:
        formula = Formula(text)
        names = {str(v) for v in formula.required_variables}
    except Exception:  # formulaic parse problems surface later with its message
        return set()
    parts = [formula.lhs, formula.rhs] if hasattr(formula, "lhs") else [formula]
    called: set[str] = set()  # builtins used as functions
    values: set[str] = set()
    for part in parts:
        for term in part:
            for factor in term.factors:
                if factor.eval_method is not Factor.EvalMethod.PYTHON:
                    continue
                try:
                    found = get_required_variables(factor.expr, {})
                except Exception:  # not Python: formulaic reports it on evaluation
                    continue
                for v in found:
                    root = str(v.root)
                    if root in TRANSFORMS:
                        continue
                    if hasattr(builtins, root) and Variable.Role.VALUE not in v.roles:
                        called.add(root)
                    else:
                        values.add(root)
    return (names - called) | values
