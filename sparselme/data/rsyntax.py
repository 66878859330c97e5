"""lme4's (R's) spellings that the formula parser accepts beyond its core grammar.

Token-level helpers of `sparselme.data.formula`: how a name is handed to formulaic
(``Petal.Width`` backquoted, ``splines::bs`` through a namespace object, ``TRUE`` as
Python's constant), a bar outside parentheses (``y ~ x | g``), and ``offset(expr)`` terms.
They work on the parser's token list (items with ``kind`` and ``text``) and on any parser
object with ``toks``, ``match``, ``top(lo, hi)`` and ``error(message, index)``.
"""

from __future__ import annotations

import keyword
from collections.abc import Sequence
from typing import Any

__all__ = ["name_for_formulaic", "unparenthesized_bar", "is_offset", "quoted"]

R_CONSTANTS = {"TRUE": "True", "FALSE": "False", "NULL": "None"}
PYTHON_MODULES = {"np", "numpy", "math"}  # dotted names under these are Python attributes
_BARS = ("|", "||")


def name_for_formulaic(toks: Sequence[Any], k: int, code: bool) -> str:
    """How the name token ``toks[k]`` is passed to formulaic (``code``: inside a call).

    ``splines::bs`` → ``splines.bs`` (the namespace is in the formula context); a dotted
    R name that is not called (``Petal.Width``) is backquoted; in Python code a dotted
    keyword (``Boundary.knots =``) becomes ``Boundary_knots`` and ``TRUE``/``FALSE``/
    ``NULL`` Python's constants.
    """
    text = toks[k].text
    nxt = toks[k + 1].text if k + 1 < len(toks) else None
    prev = toks[k - 1] if k else None
    if "::" in text:
        namespace, _, function = text.partition("::")
        return f"{namespace}.{function.lstrip(':')}"
    if code and text in R_CONSTANTS and nxt not in ("(", "="):
        return R_CONSTANTS[text]
    if "." not in text or text == "." or nxt in ("(", "["):
        return text
    if prev is not None and prev.kind == "close" and text[0] == ".":
        return text  # an attribute of a call result: f(x).T
    if code and nxt == "=" and prev is not None and prev.text in ("(", ","):
        return text.replace(".", "_")
    if text.split(".")[0] in PYTHON_MODULES:
        return text
    return f"`{text}`"


def unparenthesized_bar(p, lo: int, hi: int) -> int | None:
    """The index of a bar outside all brackets in [lo, hi) (``y ~ x | g``), if any."""
    bars = [k for k in p.top(lo, hi) if p.toks[k].text in _BARS]
    if len(bars) > 1:
        raise p.error("more than one '|' outside parentheses; write (expr | group) terms", bars[1])
    if bars and bars[0] == hi - 1:
        raise p.error("missing the grouping factor of a random-effects term", bars[0])
    return bars[0] if bars else None


def is_offset(p, term) -> bool:
    """Whether the term (``sign``, ``lo``, ``hi``, ``sign_at``) is ``offset(expr)``, R's
    offset term; a subtracted one raises."""
    lo, hi = term.lo, term.hi
    whole = hi - lo > 2 and p.toks[lo].text == "offset" and p.toks[lo + 1].text == "("
    if not (whole and p.match[lo + 1] == hi - 1):
        return False
    if term.sign == "-":
        raise p.error("an offset() term cannot be subtracted", term.sign_at or lo)
    if hi - lo == 3:
        raise p.error("offset() needs an expression", lo)
    return True


def quoted(name: str) -> str:
    """A column name as formulaic reads it: backquoted unless a plain identifier."""
    return name if name.isidentifier() and not keyword.iskeyword(name) else f"`{name}`"
