"""Parse lme4 model formulas (text only) into a fixed-effects part and random-effects terms.

``Reaction ~ Days + (Days | Subject)`` becomes a `ParsedFormula` whose fixed part
``"Days"`` is handed to formulaic and whose bar terms ``(Days | Subject)`` describe the
random effects.  ``||`` and nested groupings ``a/b`` are expanded the way lme4 1.1 does;
covariance structures ``ar1(0 + t | g)`` ... are read by `.formula_structures`.
No data are touched here.  Every malformed string raises `FormulaError`.

Operators keep lme4's (R's) meaning where Python's differs:

* ``^`` inside a function call, a subscript or ``{...}`` (Python code, e.g. ``I(x^2)``,
  ``log(x^2)``) is a power, as in R: it is passed on as ``**`` (never Python's XOR).
  Between terms it is R's crossing to a degree: ``(a + b + c)^2``.
* ``a %in% b`` is R's nesting term, the interaction ``a:b`` (formulaic's ``%in%``
  would add ``b``'s main effect).
* ``0``, ``1`` and ``-1`` add or remove the intercept at the top level of the formula or
  of a random-effects term; inside parentheses R and formulaic disagree, so they raise.
* A response that is an expression (``Reaction^2``, ``y/10``, ``y - 3``) is evaluated
  as arithmetic, as R does: it becomes ``I(...)``.
* A bar outside parentheses takes the whole right-hand side, as R's precedence does:
  ``y ~ x | g`` is ``y ~ (x | g)`` (fixed part: the intercept).
* ``offset(expr)`` terms are kept apart (`ParsedFormula.offsets`); ``.`` (every other
  column) is expanded by `expand_dot` once the data's columns are known.
* R's names: ``Petal.Width`` and ``x.1`` are column names (backquoted for formulaic),
  ``splines::bs`` a function of a namespace, ``TRUE``/``FALSE``/``NULL`` constants.

Over 500 lines because it is one recursive-descent parser over one token stream (the
lexer, the term splitter and the bar expansion share its state); R's spellings that need
no parser state live in `.rsyntax`, the structure keywords in `.formula_structures`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import NamedTuple

from ..errors import FormulaError
from .formula_structures import is_structure_call, structured_bar_terms
from .rsyntax import is_offset, name_for_formulaic, quoted, unparenthesized_bar

__all__ = [
    "BarTerm",
    "ParsedFormula",
    "parse_formula",
    "parse_re_formula",
    "parse_one_sided",
    "parse_re_form",
    "expand_dot",
]


@dataclass(frozen=True)
class BarTerm:
    """One random-effects term ``(lhs | group)`` after ``||`` and ``/`` expansion.

    ``covariance``: the structure keyword of ``ar1(lhs | group)`` and the like (None: a
    plain bar, unstructured); ``options``: the structure's (``(("rank", 2),)`` of rr).
    """

    lhs: str
    group: tuple[str, ...]
    covariance: str | None = None
    options: tuple[tuple[str, int], ...] = ()

    @property
    def group_name(self) -> str:
        """The grouping factor as lme4 names it, e.g. ``"cask:batch"``."""
        return ":".join(self.group)

    @property
    def has_intercept(self) -> bool:
        """Whether ``lhs`` has an intercept (implicit unless ``0`` or ``-1`` removes it)."""
        p = _Parser(self.lhs)
        return _intercept(p, p.split_terms(0, len(p.toks)))


@dataclass(frozen=True)
class ParsedFormula:
    """A parsed mixed-model formula."""

    text: str
    response: str | None
    fixed: str
    bars: tuple[BarTerm, ...]
    offsets: tuple[str, ...] = ()  # Python code of each offset(...) term, e.g. "Days * 2"

    def fixed_formula(self) -> str:
        """The fixed-effects formula, ``"response ~ fixed"`` (or ``"~ fixed"``)."""
        return f"~ {self.fixed}" if self.response is None else f"{self.response} ~ {self.fixed}"


def parse_formula(text: str) -> ParsedFormula:
    """Parse an lme4 formula such as ``"y ~ x + (1 + x | g)"``."""
    p = _Parser(text)
    n = len(p.toks)
    if n == 0:
        raise FormulaError("empty formula", text, None)
    tilde = p.tilde()
    if tilde is None:
        raise FormulaError("missing '~' between response and predictors", text, None)
    response = None if tilde == 0 else p.response(tilde)
    if tilde == n - 1:
        raise p.error("missing right-hand side after '~'", tilde)
    whole = unparenthesized_bar(p, tilde + 1, n)
    if whole is not None:  # y ~ x | g: the whole right-hand side is one bar term (R's precedence)
        bars = p.bar_terms(_Term("+", tilde + 1, n, None), tilde + 1, n, whole)
        return ParsedFormula(text, response, "1", tuple(bars))
    fixed: list[_Term] = []
    bars = []
    offsets: list[str] = []
    for term in p.split_terms(tilde + 1, n):
        structured = structured_bar_terms(p, term)  # ar1(0 + t | g), rr(x | g, d = 2) ...
        if structured is not None:
            bars.extend(structured)
            continue
        bar = p.find_bar(term.lo, term.hi)
        if bar is not None:
            bars.extend(p.bar_terms(term, *bar))
        elif is_offset(p, term):
            offsets.append(p.render(term.lo + 2, term.hi - 1, python=True))
        else:
            p.check_term(term.lo, term.hi)
            fixed.append(term)
    return ParsedFormula(text, response, p.render_terms(fixed) or "1", tuple(bars), tuple(offsets))


def parse_re_form(text: str) -> tuple[BarTerm, ...]:
    """The bar terms of lme4's ``re.form``: ``"~(1 | g)"``, ``"~1 | g"``, ``"(~1 | g)"``,
    ``"(1 | g)"`` (nesting ``a/b`` expanded)."""
    p = _Parser(text)
    if p.toks and p.toks[0].text == "(" and p.match[0] == len(p.toks) - 1:
        inner = text[p.toks[0].pos + 1 : p.toks[-1].pos]
        if inner.lstrip().startswith("~"):  # (~1 | g): R's parenthesized formula
            text = inner
    return parse_formula(text if "~" in text else "~" + text).bars


def expand_dot(parsed: ParsedFormula, columns, exclude: set[str]) -> ParsedFormula:
    """R's ``.`` in the fixed part: every column of the data but the response's variables
    (``exclude``), in the data's order. Other terms (``- g``) apply after it, as in R."""
    p = _Parser(parsed.fixed)
    dots = [k for k in p.top(0, len(p.toks)) if p.toks[k].text == "."]
    if not dots:
        return parsed
    names = [quoted(str(c)) for c in columns if str(c) not in exclude]
    if not names:
        raise FormulaError("'.' stands for no column: the data have only the response", parsed.text)
    out, at = [], 0
    sum_of_names = " + ".join(names)
    for k in dots:
        alone = (k == 0 or p.toks[k - 1].text in "+-~") and (
            k + 1 == len(p.toks) or p.toks[k + 1].text in "+-"
        )
        out += [parsed.fixed[at : p.toks[k].pos], sum_of_names if alone else f"({sum_of_names})"]
        at = p.toks[k].pos + 1
    return replace(parsed, fixed="".join(out) + parsed.fixed[at:])


def parse_re_formula(text: str) -> str:
    """Normalize statsmodels' one-sided ``re_formula``: ``"~Time"`` -> ``"1 + Time"``."""
    rhs, explicit = _one_sided(text, "re_formula")
    return rhs if explicit else f"1 + {rhs}"


def parse_one_sided(text: str, what: str = "formula") -> str:
    """The right-hand side of a one-sided formula (``re_formula``, a ``vc_formula``
    entry) in formulaic's spelling of R's operators: ``"~ I(x^2)"`` -> ``"I(x**2)"``."""
    return _one_sided(text, what)[0]


def _one_sided(text: str, what: str) -> tuple[str, bool]:
    """(rendered right-hand side, whether it has an explicit 0 or 1 term)."""
    p = _Parser(text)
    n = len(p.toks)
    tilde = p.tilde()
    if tilde is not None and tilde > 0:
        raise p.error(f"{what} must be one-sided, e.g. '~ 1 + x'", tilde)
    lo = 0 if tilde is None else 1
    if lo == n:
        raise FormulaError(f"empty {what}", text, None if tilde is None else p.toks[0].pos)
    terms = p.split_terms(lo, n)
    for term in terms:
        p.check_term(term.lo, term.hi)
    explicit = any(p.render(t.lo, t.hi) in ("0", "1") for t in terms)
    return p.render_terms(terms), explicit


# --------------------------------------------------------------------------- internals


_TOKEN_RE = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<str>[rRbBuUfF]{0,2}(?:'(?:[^'\\\n]|\\.)*'|"(?:[^"\\\n]|\\.)*"))
  | (?P<num>(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9][0-9_]*)(?:[eE][+-]?[0-9]+)?[jJ]?)
  | (?P<name>(?:[^\W\d]|\.)[\w.]*(?::::?(?:[^\W\d]|\.)[\w.]*)?)
  | (?P<bq>`[^`\n]+`)
  | (?P<op>%in%|\|\||\*\*|//|==|!=|<=|>=|<<|>>|[~+\-*/:|^,=<>&%@!])
  | (?P<open>[(\[{])
  | (?P<close>[)\]}])
    """,
    re.VERBOSE,
)
_PAIRS = {"(": ")", "[": "]", "{": "}"}
_BARS = ("|", "||")
_FORMULA_OPS = {"*", "/", ":", "**", "^", "%in%"}  # binary operators inside one term
_WORDS = {"name", "num", "str", "bq"}
_SPACED = {"+", "-", "~", "|", "||", "==", "!=", "<=", ">=", "<", ">", "&", "%in%"}
_MAX_DEPTH = 64
_BAR_HINT = "'|' is only allowed in a random-effects term written as (expr | group)"


class _Tok(NamedTuple):
    kind: str  # name, num, str, bq, op, open, close
    text: str
    pos: int


class _Term(NamedTuple):
    sign: str  # "+" or "-"
    lo: int  # token range [lo, hi) of the term without its sign
    hi: int
    sign_at: int | None  # index of the sign token, if any


def _tokenize(text: str) -> list[_Tok]:
    toks: list[_Tok] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN_RE.match(text, pos)
        if m is None:
            ch = text[pos]
            what = {
                "'": "unterminated string",
                '"': "unterminated string",
                "`": "unterminated or empty backquoted name",
            }.get(ch, f"unexpected character {ch!r}")
            raise FormulaError(what, text, pos)
        kind = m.lastgroup or ""
        if kind != "ws":
            toks.append(_Tok(kind, m.group(), pos))
        pos = m.end()
    return toks


def _intercept(p: _Parser, terms: list[_Term]) -> bool:
    """lme4/R rule: implicit intercept; ``0``/``-1`` remove it, ``1`` restores it (last wins)."""
    result = True
    for t in terms:
        text = p.render(t.lo, t.hi)
        if text in ("0", "1"):
            result = (text == "1") == (t.sign == "+")
    return result


class _Parser:
    """Token list of one formula plus the helpers that walk it."""

    def __init__(self, text: str):
        if not isinstance(text, str):
            raise TypeError(f"formula must be a str, not {type(text).__name__}")
        self.text = text
        self.toks = _tokenize(text)
        self.match: dict[int, int] = {}
        stack: list[int] = []
        for i, t in enumerate(self.toks):
            if t.kind == "open":
                stack.append(i)
                if len(stack) > _MAX_DEPTH:
                    raise self.error("brackets nested too deeply", i)
            elif t.kind == "close":
                if not stack:
                    raise self.error(f"unmatched {t.text!r}", i)
                j = stack.pop()
                if _PAIRS[self.toks[j].text] != t.text:
                    raise self.error(f"{t.text!r} does not close {self.toks[j].text!r}", i)
                self.match[j] = i
        if stack:
            raise self.error(f"unclosed {self.toks[stack[-1]].text!r}", stack[-1])
        self.python = self._python_tokens()

    def _python_tokens(self) -> set[int]:
        """Indices of the tokens inside a call, a subscript or ``{...}``: Python code."""
        inside: set[int] = set()
        calls: set[int] = set()  # opening brackets of calls and subscripts
        for j, t in enumerate(self.toks):
            if j in inside or t.kind != "open":
                continue
            prev = self.toks[j - 1] if j else None
            call = prev is not None and t.text in "([" and (
                prev.kind == "name" or (prev.kind == "close" and self._opener(j - 1) in calls)
            )
            if call and is_structure_call(self, j):  # ar1(0 + t | g): formula syntax inside
                call = False
            if call or t.text == "{":
                calls.add(j)
                inside.update(range(j + 1, self.match[j]))
        return inside

    def _opener(self, close: int) -> int:
        return next(j for j, end in self.match.items() if end == close)

    def response(self, tilde: int) -> str:
        """The response, tokens [0, tilde): a name or call as written, else arithmetic."""
        for k in range(tilde):
            if self.toks[k].text in _BARS:
                raise self.error(_BAR_HINT, k)
        if self.toks[0].kind != "op" and self.operand(0, tilde) == tilde:  # name, call...
            return self.render(0, tilde)
        for k in self.top(0, tilde):
            if self.toks[k].text in (":", "%in%"):
                raise self.error(f"{self.toks[k].text!r} has no meaning in a response", k)
        for term in self.split_terms(0, tilde):
            self.check_term(term.lo, term.hi)
        return f"I({self.render(0, tilde, python=True)})"

    def error(self, message: str, index: int) -> FormulaError:
        return FormulaError(message, self.text, self.toks[index].pos)

    def top(self, lo: int, hi: int) -> Iterator[int]:
        """Indices of the tokens in [lo, hi) outside brackets (an opening bracket included)."""
        i = lo
        while i < hi:
            yield i
            i = self.match[i] + 1 if self.toks[i].kind == "open" else i + 1

    def tilde(self) -> int | None:
        tops = set(self.top(0, len(self.toks)))
        tildes = [i for i, t in enumerate(self.toks) if t.text == "~"]
        for i in tildes:
            if i not in tops:
                raise self.error("unexpected '~' inside brackets", i)
        if len(tildes) > 1:
            raise self.error("more than one '~' in formula", tildes[1])
        return tildes[0] if tildes else None

    def split_terms(self, lo: int, hi: int) -> list[_Term]:
        """Split [lo, hi) at top-level ``+``/``-``; a single leading sign is allowed."""
        terms: list[_Term] = []
        sign, sign_at, start = "+", None, lo
        for i in self.top(lo, hi):
            t = self.toks[i]
            if t.kind != "op" or t.text not in ("+", "-"):
                continue
            if i == start and (terms or sign_at is not None):
                raise self.error(f"unexpected {t.text!r}", i)
            if i > start:
                terms.append(_Term(sign, start, i, sign_at))
            sign, sign_at, start = t.text, i, i + 1
        if start < hi:
            terms.append(_Term(sign, start, hi, sign_at))
        elif sign_at is not None:
            raise self.error(f"expected a term after {self.toks[sign_at].text!r}", sign_at)
        return terms

    def check_term(self, lo: int, hi: int) -> None:
        """Validate one term: operands joined by ``* / : ** ^ %in%``."""
        expect_operand = True
        i = lo
        while i < hi:
            t = self.toks[i]
            if expect_operand:
                i = self.operand(i, hi)
                expect_operand = False
            elif t.kind == "op" and t.text in _FORMULA_OPS:
                expect_operand, i = True, i + 1
            else:
                hint = _BAR_HINT if t.text in _BARS else f"unexpected {t.text!r}"
                raise self.error(hint, i)
        if expect_operand:
            raise self.error(f"expected a term after {self.toks[hi - 1].text!r}", hi - 1)

    def operand(self, i: int, hi: int) -> int:
        """Check the operand starting at token i (< hi) and return the index just after it."""
        t = self.toks[i]
        if t.kind in ("num", "bq"):
            return i + 1
        if t.kind == "name":  # a variable, or a call/subscript: f(x), np.log(x), x[0]
            i += 1
            while i < hi:
                nxt = self.toks[i]
                if nxt.text in ("(", "["):
                    self.check_python(i + 1, self.match[i])
                    i = self.match[i] + 1
                elif nxt.kind == "name" and nxt.text[0] == "." and self.toks[i - 1].kind == "close":
                    i += 1  # attribute of a call result: f(x).T
                else:
                    break
            return i
        if t.text == "{":  # formulaic's {python expression}
            end = self.match[i]
            if end == i + 1:
                raise self.error("empty '{}'", i)
            self.check_python(i + 1, end)
            return end + 1
        if t.text == "(":
            end = self.match[i]
            if end == i + 1:
                raise self.error("empty parentheses", i)
            for k in self.top(i + 1, end):
                if self.toks[k].text in _BARS:
                    raise self.error(
                        "a random-effects term (expr | group) must be a separate top-level term"
                        " (nested or combined with an operator)",
                        k,
                    )
            for term in self.split_terms(i + 1, end):
                if self.render(term.lo, term.hi) in ("0", "1"):
                    raise self.error(
                        "an intercept term (0, 1, -1) inside parentheses: R and formulaic "
                        "read it differently; write it at the top level, e.g. 'y ~ 0 + a + b'",
                        term.lo,
                    )
                self.check_term(term.lo, term.hi)
            return end + 1
        raise self.error(_BAR_HINT if t.text in _BARS else f"unexpected {t.text!r}", i)

    def check_python(self, lo: int, hi: int) -> None:
        """Python code inside a call or braces: only reject formula bars."""
        for k in range(lo, hi):
            if self.toks[k].text in _BARS:
                raise self.error(_BAR_HINT, k)

    def find_bar(self, lo: int, hi: int) -> tuple[int, int, int] | None:
        """If [lo, hi) is ``(expr | group)`` (extra parentheses allowed): (inner lo, hi, bar)."""
        while self.toks[lo].text == "(" and self.match[lo] == hi - 1 and hi - lo > 2:
            lo, hi = lo + 1, hi - 1
            bars = [k for k in self.top(lo, hi) if self.toks[k].text in _BARS]
            if len(bars) > 1:
                raise self.error("more than one '|' in a random-effects term", bars[1])
            if bars:
                return lo, hi, bars[0]
        return None

    def bar_terms(self, term: _Term, lo: int, hi: int, bar: int) -> list[BarTerm]:
        """Expand ``(expr | g)`` / ``(expr || g)`` with nested ``g`` into BarTerms."""
        if term.sign == "-":
            raise self.error("a random-effects term cannot be subtracted", term.sign_at or lo)
        for k in range(lo, hi):
            if k != bar and self.toks[k].text in _BARS:
                raise self.error("nested random-effects terms are not allowed", k)
        if bar == lo:
            raise self.error("missing the left-hand side of a random-effects term", bar)
        if bar == hi - 1:
            raise self.error("missing the grouping factor of a random-effects term", hi)
        lhs = self.split_terms(lo, bar)
        for t in lhs:
            self.check_term(t.lo, t.hi)
        groups = self.groups(bar + 1, hi)
        if self.toks[bar].text == "|":
            only_intercept = all(self.render(t.lo, t.hi) in ("0", "1") for t in lhs)
            if _intercept(self, lhs) or not only_intercept:
                return [BarTerm(self.render_terms(lhs), g) for g in groups]
        else:
            intercept, labels = self.double_bar(lhs)
            lhs_texts = ["1"] * intercept + [f"0 + {label}" for label in labels]
            if lhs_texts:
                return [BarTerm(text, g) for text in lhs_texts for g in groups]
        raise self.error("random-effects term has no intercept and no other terms", bar)

    def groups(self, lo: int, hi: int) -> list[tuple[str, ...]]:
        """Parse ``a``, ``a:b``, ``a/b/c``; nesting gives lme4's a, b:a, c:b:a."""
        segments: list[tuple[str, ...]] = []
        current: list[str] = []
        expect_name = True
        for i in range(lo, hi):
            t = self.toks[i]
            if expect_name:
                if t.kind == "name" and t.text.strip("."):
                    current.append(t.text)
                elif t.kind == "bq":
                    current.append(t.text[1:-1])
                else:
                    raise self.error(f"invalid grouping factor {t.text!r}: expected a name", i)
                expect_name = False
            elif t.text in (":", "/"):
                expect_name = True
                if t.text == "/":
                    segments.append(tuple(current))
                    current = []
            else:
                raise self.error(f"invalid grouping expression: unexpected {t.text!r}", i)
        if expect_name:
            raise self.error(f"expected a grouping factor after {self.toks[hi - 1].text!r}", hi - 1)
        segments.append(tuple(current))
        groups: list[tuple[str, ...]] = []
        outer: tuple[str, ...] = ()
        for seg in segments:
            outer = seg + outer
            groups.append(outer)
        return groups

    def double_bar(self, lhs: list[_Term]) -> tuple[bool, list[str]]:
        """R's ``terms()`` for ``expr`` of ``(expr || g)``: intercept and term labels.

        Handles ``+``, ``-``, ``*`` and ``:``; labels are sorted by order (main effects
        first) and their variables by first appearance, as R does.
        """
        variables: list[str] = []
        keys: dict[frozenset[str], None] = {}
        for t in lhs:
            if self.render(t.lo, t.hi) in ("0", "1"):
                continue
            for label in self.crossings(t.lo, t.hi):
                variables.extend(v for v in label if v not in variables)
                if t.sign == "+":
                    keys.setdefault(frozenset(label))
                else:
                    keys.pop(frozenset(label), None)
        labels = [":".join(sorted(k, key=variables.index)) for k in sorted(keys, key=len)]
        return _intercept(self, lhs), labels

    def crossings(self, lo: int, hi: int) -> list[tuple[str, ...]]:
        """Expand a term made of ``*`` and ``:`` into R's term labels (as tuples)."""
        labels: list[tuple[str, ...]] = [()]
        factor: list[str] = []
        start = lo
        for i in [*self.top(lo, hi), hi]:
            if i < hi and self.toks[i].kind != "op":
                continue
            if self.toks[start].text == "(":
                raise self.error("parentheses are not supported in '||' terms", start)
            factor.append(self.render(start, i))
            start = i + 1
            op = self.toks[i].text if i < hi else "*"
            op = ":" if op == "%in%" else op
            if op == "*":
                labels += [label + tuple(factor) for label in labels]
                factor = []
            elif op != ":":
                raise self.error(f"{op!r} is not supported in '||' terms; write the terms out", i)
        return labels[1:]

    def render(self, lo: int, hi: int, python: bool = False) -> str:
        """Canonical text of tokens [lo, hi): spacing normalized, strings untouched.

        R's operators become formulaic's: ``^`` in Python code (or everywhere with
        ``python``) is ``**``; ``%in%`` between terms is ``:``.
        """
        out: list[str] = []
        prev: _Tok | None = None
        prev_spaced = False  # prev was a binary operator written with spaces around it
        for k in range(lo, hi):
            t = self.toks[k]
            code = python or k in self.python
            if t.text == "^" and code:
                t = t._replace(text="**")
            elif t.text == "%in%" and not code:
                t = t._replace(text=":")
            elif t.kind == "name":
                nxt = self.toks[k + 1].text if k + 1 < len(self.toks) else None
                if "::" in t.text and nxt != "(":
                    raise self.error(
                        f"'{t.text}' names an object of a package; only a package's "
                        "functions can be used in a formula, as in splines::bs(x)",
                        k,
                    )
                t = t._replace(text=name_for_formulaic(self.toks, k, code))
            after_operand = prev is not None and prev.kind in (*_WORDS, "close")
            spaced = t.kind == "op" and t.text in _SPACED
            spaced = spaced and (after_operand or t.text not in ("+", "-"))
            if prev is None or t.kind == "close" or prev.kind == "open" or t.text == ",":
                space = False
            elif spaced or prev_spaced or prev.text == ",":
                space = True
            elif t.kind in _WORDS:  # not after an operator, nor before an attribute
                space = prev.kind != "op" and not (prev.kind == "close" and t.text[0] == ".")
            else:
                space = False
            out.extend([" ", t.text] if space else [t.text])
            prev, prev_spaced = t, spaced
        return "".join(out)

    def render_terms(self, terms: list[_Term]) -> str:
        parts = []
        for k, t in enumerate(terms):
            body = self.render(t.lo, t.hi)
            if k == 0:
                parts.append(f"-{body}" if t.sign == "-" else body)
            else:
                parts.append(f" {t.sign} {body}")
        return "".join(parts)
