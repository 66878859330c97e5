"""Random-effects terms with a covariance structure: ``ar1(0 + t | g)``, ``rr(x | g, d = 2)``.

The spelling of glmmTMB and lme4 ≥ 2.0: a keyword around a bar term. `structured_bar_terms`
recognizes such a term in a formula being parsed (`.formula`) and returns its bar terms
with the structure attached; `is_structure_call` tells the parser that the brackets of
such a term hold formula syntax, not a Python call.

* ``us`` (unstructured, as a plain bar), ``diag``, ``homdiag``, ``cs``, ``homcs``,
  ``ar1``, ``toep``: one argument, the bar term;
* ``rr(x | g, d)`` or ``rr(x | g, d = 2)``: reduced rank d (default 2);
* ``ar1`` and ``toep`` are over the columns of a time factor in order: their left-hand
  side has no intercept (``ar1(0 + time | g)``);
* glmmTMB's spatial ``ou``, ``exp``, ``gau`` and ``mat`` (which need coordinates) raise.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .formula import BarTerm

__all__ = ["STRUCTURE_KEYWORDS", "structured_bar_terms", "is_structure_call"]

STRUCTURE_KEYWORDS = ("us", "diag", "homdiag", "cs", "homcs", "ar1", "toep", "rr")
_COORDINATES = ("ou", "exp", "gau", "mat")  # glmmTMB's, over coordinates: not available
_TIME_ORDERED = ("ar1", "toep")
_BARS = ("|", "||")
_DEFAULT_RANK = 2


def _bars(p: Any, lo: int, hi: int) -> list[int]:
    return [k for k in p.top(lo, hi) if p.toks[k].text in _BARS]


def is_structure_call(p: Any, opener: int) -> bool:
    """Whether the bracket at ``opener`` opens ``keyword(... | ...)``: a structured term."""
    if opener == 0 or p.toks[opener].text != "(":
        return False
    name = p.toks[opener - 1]
    if name.kind != "name" or name.text not in STRUCTURE_KEYWORDS + _COORDINATES:
        return False
    return bool(_bars(p, opener + 1, p.match[opener]))


def structured_bar_terms(p: Any, term: Any) -> list[BarTerm] | None:
    """The bar terms of ``keyword(lhs | group, ...)`` with their structure; None if the term
    [term.lo, term.hi) of parser ``p`` is not one."""
    lo, hi = term.lo, term.hi
    if hi - lo < 4 or p.toks[lo + 1].text != "(" or p.match[lo + 1] != hi - 1:
        return None
    if not is_structure_call(p, lo + 1):
        return None
    name = p.toks[lo].text
    if name in _COORDINATES:
        raise p.error(
            f"the covariance structure {name}() needs coordinates and is not available; "
            f"available: {', '.join(STRUCTURE_KEYWORDS)}",
            lo,
        )
    inner_lo, inner_hi = lo + 2, hi - 1
    commas = [k for k in p.top(inner_lo, inner_hi) if p.toks[k].text == ","]
    first_hi = commas[0] if commas else inner_hi
    bars = _bars(p, inner_lo, first_hi)
    if not bars:
        raise p.error(f"the first argument of {name}() must be a bar term 'x | group'", inner_lo)
    bar = bars[0]
    if p.toks[bar].text == "||":
        raise p.error(
            f"'||' inside {name}(): write diag(x | g) for independent random effects", bar
        )
    options = _options(p, name, commas, inner_hi)
    out = p.bar_terms(term, inner_lo, first_hi, bar)
    if name in _TIME_ORDERED and any(b.has_intercept for b in out):
        raise p.error(
            f"{name}() is over the levels of a time factor in order, without an intercept: "
            f"write {name}(0 + time | group)",
            inner_lo,
        )
    return [replace(b, covariance=name, options=options) for b in out]


def _options(p: Any, name: str, commas: list[int], hi: int) -> tuple[tuple[str, int], ...]:
    """``(("rank", d),)`` for rr; no options for the other structures."""
    if name != "rr":
        if commas:
            raise p.error(f"{name}() takes one argument, the bar term 'x | group'", commas[0])
        return ()
    if not commas:
        return (("rank", _DEFAULT_RANK),)
    if len(commas) > 1:
        raise p.error("rr() takes the bar term and the rank d: rr(x | g, d = 2)", commas[1])
    toks = [p.toks[k] for k in range(commas[0] + 1, hi)]
    if len(toks) == 3 and toks[0].text == "d" and toks[1].text == "=":
        toks = toks[2:]
    if len(toks) != 1 or toks[0].kind != "num" or not toks[0].text.isdigit():
        raise p.error("the rank of rr() must be a whole number: rr(x | g, d = 2)", commas[0] + 1)
    rank = int(toks[0].text)
    if rank < 1:
        raise p.error("the rank of rr() must be at least 1", commas[0] + 1)
    return (("rank", rank),)

