"""Refits of a fit: another formula (lme4's ``update``) or another response (``refit``).

`update_formula` applies R's ``update.formula`` to lme4 formulas: in the new
formula ``.`` stands for the old response (left of ``~``) or the old right-hand side,
terms after ``+`` are added and terms after ``-`` removed, and the result is simplified
(``. ~ . - Days`` of ``Reaction ~ Days + (Days | Subject)`` is
``Reaction ~ (Days | Subject)``). Fixed-effect terms are expanded and simplified as
formulaic (R's rules) does — ``- a:b`` removes the interaction of ``a*b``, ``- 1`` the
intercept — and random-effects terms are added or removed whole (``||`` and ``a/b``
expanded first), duplicates dropped.

`update` fits the new formula to the data of the original fit (kept by ``sl.lmer`` and
``LinearMixedModel.from_formula``; as R re-evaluates the call's data, a DataFrame
changed since is seen as it is now) or to ``data``; `refit` refits the same model to a
new response on the same factorization (`sparselme.analysis.resampling.refit`).
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
from formulaic import Formula

from ..data import validation
from ..data.design import build_design
from ..data.formula import BarTerm, ParsedFormula, parse_formula
from ..engine.fit import check_flag
from ..errors import FormulaError
from ..model.mixed_model import MixedModel
from ..model.results import ModelFit
from . import resampling
from .joint import require_iid_residuals

__all__ = ["update", "update_formula", "refit", "CALL_ATTRIBUTE"]

#: the attribute of a model that records how it was built from data (a dict with
#: formula, data, weights, offset, missing), set by the lme4-style front end
CALL_ATTRIBUTE = "call"

_DOT = re.compile(r"(?<![\w.`])\.(?![\w.`])")


def _split_terms(text: str) -> list[tuple[str, str]]:
    """(sign, term) of one side of a formula split at + and − outside brackets/quotes."""
    out: list[tuple[str, str]] = []
    depth, sign, start, quoted = 0, "+", 0, False
    for i, ch in enumerate(text):
        if ch == "`":
            quoted = not quoted
        elif quoted:
            continue
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch in "+-" and depth == 0 and not _in_number(text, i):
            term = text[start:i].strip()
            if term:
                out.append((sign, term))
                sign = ch
            else:  # a sign after a sign, or at the start
                sign = "-" if (sign == "-") != (ch == "-") else "+"
            start = i + 1
    term = text[start:].strip()
    if term:
        out.append((sign, term))
    elif text.strip():
        raise FormulaError("the formula ends with an operator", text)
    return out


def _in_number(text: str, i: int) -> bool:
    """Whether the sign at i is an exponent's (``1e-3``)."""
    return i >= 2 and text[i - 1] in "eE" and text[i - 2].isdigit()


def _bar_key(bar: BarTerm) -> tuple[str, tuple[str, ...]]:
    return bar.lhs.replace(" ", ""), bar.group


def _unwrap(term: str) -> str:
    """The term without the parentheses around it (``(1 | g)`` → ``1 | g``)."""
    while term.startswith("(") and term.endswith(")") and _balanced(term[1:-1]):
        term = term[1:-1].strip()
    return term


def _balanced(text: str) -> bool:
    depth = 0
    for ch in text:
        depth += ch == "("
        depth -= ch == ")"
        if depth < 0:
            return False
    return depth == 0


def update_formula(old: ParsedFormula, new: str) -> str:
    """The formula R's ``update(old, new)`` gives, as lme4 formula text (see module)."""
    if not isinstance(new, str):
        raise TypeError(f"formula must be a string such as '. ~ . - x', not {new!r}")
    if old.response is None:
        raise FormulaError("the fitted formula has no response to update", old.text)
    lhs, sep, rhs = new.partition("~")
    if not sep:
        raise FormulaError("missing '~' in the update formula (write e.g. '. ~ . - x')", new)
    response = old.response.strip()
    lhs = lhs.strip() or "."
    simple = re.fullmatch(r"[\w.]+|`[^`]+`", response) is not None
    lhs = _DOT.sub(response if simple else f"({response})", lhs)
    fixed: list[str] = []
    bars: list[BarTerm] = []
    removed: set = set()
    for sign, term in _split_terms(rhs):
        if term == ".":
            if sign == "-":
                raise FormulaError("'- .' removes every term: write the new formula instead", new)
            fixed.append(f"+ ({old.fixed})")
            bars.extend(old.bars)
            continue
        inner = _unwrap(term)
        if "|" in inner:
            parsed = parse_formula(f"y ~ ({inner})").bars
            if sign == "+":
                bars.extend(parsed)
            else:
                removed |= {_bar_key(b) for b in parsed}
            continue
        fixed.append(f"{sign} {parse_formula(f'y ~ {term}').fixed}")
    kept: dict = {}
    for bar in bars:
        if _bar_key(bar) not in removed:
            kept.setdefault(_bar_key(bar), bar)
    fixed_text = _simplify_fixed(" ".join(fixed) if fixed else "1", new)
    parts = [f"({b.lhs} | {b.group_name})" for b in kept.values()]
    if fixed_text != "1" or not parts:
        parts.insert(0, fixed_text)
    return f"{lhs} ~ {' + '.join(parts)}"


def _simplify_fixed(text: str, new: str) -> str:
    """formulaic's expansion of the fixed terms, written back as a formula."""
    text = text.strip()
    if text.startswith("+"):
        text = text[1:].strip()
    elif text.startswith("-"):
        text = "1 " + text
    try:
        terms = [str(t) for t in Formula(text)]
    except Exception as exc:  # formulaic's own parse errors
        raise FormulaError(f"cannot read the fixed-effect terms: {exc}", new) from exc
    others = [t for t in terms if t != "1"]
    if "1" in terms:
        return " + ".join(others) if others else "1"
    return " + ".join(["0", *others])


def update(
    res: ModelFit,
    formula: str | None = None,
    data: pd.DataFrame | None = None,
    REML: bool | None = None,  # noqa: N803 - lme4's argument name
) -> ModelFit:
    """The fit of an updated formula (lme4's ``update(m, formula)``); see the module.

    ``formula``: R's update syntax (``". ~ . - Days"``, ``". ~ . + (1 | Item)"``) or a
    whole new formula; None keeps the formula. ``data``: fit to these data instead of
    the original fit's. ``REML``: None keeps the fit's criterion. Weights, offset and the
    handling of missing values are those of the original call. Returns a fit of the same
    class.
    """
    require_iid_residuals(res, "update()")
    call = getattr(res.engine, CALL_ATTRIBUTE, None)
    parsed = res.design.parsed
    if parsed is None or (call is None and data is None):
        raise NotImplementedError(
            "update() needs the formula and the data of the fit: pass data=..., or fit "
            "with sl.lmer(formula, data) on a DataFrame"
        )
    reml = res.reml if REML is None else check_flag(REML, "REML")
    text = parsed.text if formula is None else update_formula(parsed, formula)
    call = dict(call or {})
    if data is not None:
        call["data"] = data
    new_parsed = parse_formula(text)
    validation.check_has_random_terms(new_parsed.bars, text)
    design = build_design(
        new_parsed,
        call["data"],
        weights=call.get("weights"),
        offset=call.get("offset"),
        missing=call.get("missing", "raise"),
    )
    model_class = type(res.engine) if isinstance(res.engine, MixedModel) else MixedModel
    model = model_class(design, **call.get("engine", {}))
    setattr(model, CALL_ATTRIBUTE, {**call, "formula": text})
    return res.with_values(model.optimize(REML=reml))


def refit(res: ModelFit, newresp) -> ModelFit:
    """The same model fitted to a new response (lme4's ``refit(m, newresp)``).

    ``newresp``: (n,) values for the fitted rows (an array, or a Series indexed like
    them). Only the response's cross-products are recomputed; the fit starts at ``res``'s
    estimates and reuses its factorization. Returns a fit of ``res``'s class.
    """
    require_iid_residuals(res, "refit()")
    if isinstance(newresp, pd.Series) and res.design.row_index is not None:
        if not newresp.index.equals(res.design.row_index):
            newresp = newresp.reindex(res.design.row_index)
    y = np.asarray(newresp, dtype=float)
    if not np.all(np.isfinite(y)):
        raise ValueError("newresp has missing or non-finite values for some fitted rows")
    return resampling.refit(res, y)
