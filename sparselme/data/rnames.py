"""Column names as R writes them: formulaic's Python expressions deparsed as R would.

formulaic names a column after its factor's Python code (``I(x ** 2)``,
``log(`x.1` + 10)``, ``poly(Days, 2, raw=True)[1]``); R names it after the deparsed
term label (``I(x^2)``, ``log(x.1 + 10)``, ``poly(Days, 2, raw = TRUE)1``). `r_label`
maps one to the other: interactions split at ``:``, a level or column suffix in
brackets appended as R appends it, each factor's code printed with R's operators,
spacing and constants (``TRUE``, ``"B"``, ``splines::bs``), and names that are not
syntactic in R backquoted (`` `x 2` ``).
"""

from __future__ import annotations

import ast
import re

__all__ = ["r_label", "r_deparse"]

_SYNTACTIC = re.compile(r"^(?:[A-Za-z]|\.(?![0-9]))[A-Za-z0-9._]*$|^\.$")
_R_RESERVED = {"if", "else", "repeat", "while", "function", "for", "next", "break", "TRUE",
               "FALSE", "NULL", "Inf", "NaN", "NA", "in"}  # fmt: skip
_NAMESPACES = {"splines", "stats", "base", "lme4"}
_KEYWORDS = {"Boundary_knots": "Boundary.knots"}
# R's operator precedence (higher binds tighter) and how deparse spaces the operator
_BINARY = {
    ast.Pow: ("^", 14, False),
    ast.Mod: ("%%", 11, False),
    ast.FloorDiv: ("%/%", 11, False),
    ast.Mult: ("*", 10, True),
    ast.Div: ("/", 10, False),
    ast.Add: ("+", 9, True),
    ast.Sub: ("-", 9, True),
}
_COMPARE = {ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.Eq: "==", ast.NotEq: "!="}


def r_label(name: str) -> str:
    """formulaic column name → R's (``Intercept`` aside): ``f[T.b]:I(x ** 2)`` →
    ``fb:I(x^2)``."""
    return ":".join(_part(p) for p in _split_top(name, ":"))


def _part(part: str) -> str:
    base, suffix = part, ""
    if part.endswith("]"):
        depth = 0
        for i in range(len(part) - 1, -1, -1):
            depth += {"]": 1, "[": -1}.get(part[i], 0)
            if depth == 0:
                base, suffix = part[:i], part[i + 1 : -1]
                break
        suffix = suffix[2:] if suffix.startswith("T.") else suffix
    return r_deparse(base) + suffix if base else part


def _split_top(text: str, sep: str) -> list[str]:
    """Split at ``sep`` outside brackets, quotes and backquotes."""
    parts, depth, quote, start = [], 0, None, 0
    for i, ch in enumerate(text):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"`":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == sep and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts


def r_deparse(code: str) -> str:
    """One factor's Python code as R deparses it; a name that is not R syntax is
    backquoted; code that is not Python is returned as it is."""
    if _SYNTACTIC.match(code) and code not in _R_RESERVED:
        return code
    aliases: dict[str, str] = {}

    def alias(m: re.Match) -> str:
        key = f"_bq{len(aliases)}_"
        aliases[key] = m.group(1)
        return key

    try:
        tree = ast.parse(re.sub(r"`([^`]+)`", alias, code), mode="eval").body
    except SyntaxError:
        return f"`{code}`" if "(" not in code else code
    if isinstance(tree, ast.Name) and tree.id not in aliases:
        return f"`{code}`"
    try:
        return _Deparser(aliases).expr(tree)
    except _Unsupported:
        return code


class _Unsupported(Exception):
    pass


class _Deparser:
    def __init__(self, aliases: dict[str, str]):
        self.aliases = aliases

    def expr(self, node: ast.AST, outer: int = 0) -> str:
        text, prec = self.node(node)
        return f"({text})" if prec < outer else text

    def node(self, node: ast.AST) -> tuple[str, int]:  # noqa: PLR0911 - one case per node kind
        if isinstance(node, ast.Name):
            return self.name(node.id), 99
        if isinstance(node, ast.Constant):
            return self.constant(node.value), 99
        if isinstance(node, ast.Attribute):
            if isinstance(node.value, ast.Name) and node.value.id in _NAMESPACES:
                return f"{node.value.id}::{node.attr}", 99
            return f"{self.expr(node.value, 99)}.{node.attr}", 99
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            op, prec, spaced = _BINARY[type(node.op)]
            right_assoc = isinstance(node.op, ast.Pow)
            left = self.expr(node.left, prec + right_assoc)
            right = self.expr(node.right, prec + (not right_assoc))
            return (f"{left} {op} {right}" if spaced else f"{left}{op}{right}"), prec
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd, ast.Not)):
            op = {ast.USub: "-", ast.UAdd: "+", ast.Not: "!"}[type(node.op)]
            prec = 7 if op == "!" else 13
            return f"{op}{self.expr(node.operand, prec)}", prec
        if isinstance(node, ast.Compare) and len(node.ops) == 1 and type(node.ops[0]) in _COMPARE:
            op = _COMPARE[type(node.ops[0])]
            return f"{self.expr(node.left, 9)} {op} {self.expr(node.comparators[0], 9)}", 8
        if isinstance(node, ast.BoolOp):
            op, prec = ("&", 6) if isinstance(node.op, ast.And) else ("|", 5)
            return f" {op} ".join(self.expr(v, prec + 1) for v in node.values), prec
        if isinstance(node, ast.Call):
            args = [self.expr(a) for a in node.args]
            args += [f"{_KEYWORDS.get(k.arg, k.arg)} = {self.expr(k.value)}" for k in node.keywords]
            return f"{self.expr(node.func, 99)}({', '.join(args)})", 99
        if isinstance(node, (ast.List, ast.Tuple)):
            return f"c({', '.join(self.expr(e) for e in node.elts)})", 99
        if isinstance(node, ast.Subscript):
            return f"{self.expr(node.value, 99)}[{self.expr(node.slice)}]", 99
        raise _Unsupported

    def name(self, identifier: str) -> str:
        name = self.aliases.get(identifier, identifier)
        return name if _SYNTACTIC.match(name) and name not in _R_RESERVED else f"`{name}`"

    @staticmethod
    def constant(value) -> str:
        if value is True or value is False:
            return "TRUE" if value else "FALSE"
        if value is None:
            return "NULL"
        if isinstance(value, str):
            return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
        if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        if isinstance(value, float):
            return format(value, ".15g")
        if isinstance(value, (int, complex)):
            return str(value)
        raise _Unsupported
