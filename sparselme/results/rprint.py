"""R's printing rules used by lme4's summary: ``abbreviate``, ``format`` of numbers,
``zapsmall``, and the two blocks built from them (scaled residuals, correlation of fixed
effects)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = [
    "abbreviate",
    "format_real",
    "zapsmall",
    "scaled_residuals_block",
    "correlation_block",
]


def _strip_chars(name: str, minlength: int) -> str:
    """R's C routine ``stripchars`` (``abbreviate``'s "left.kept" method)."""
    s = list(name.lstrip(" "))
    if len(s) < minlength:
        return "".join(s)

    def short_enough(spaces: int) -> bool:
        return len(s) - spaces <= minlength

    def first_char(i: int) -> bool:  # the first letter of a word is always kept
        return s[i - 1].isspace()

    spaces, trailing, done = 0, True, False
    for i in range(len(s) - 1, 0, -1):  # trailing spaces go, inner ones are counted
        if s[i].isspace():
            if trailing:
                del s[i]
            else:
                spaces += 1
        else:
            trailing = False
        if short_enough(spaces):
            done = True
            break
    steps = (
        lambda c, i: c in "aeiou" and not first_char(i),  # lower-case vowels
        lambda c, i: c.islower() and not first_char(i),  # lower-case letters
        lambda c, i: not first_char(i) and not c.isspace(),  # anything else
    )
    for drop in steps if not done else ():
        for i in range(len(s) - 1, 0, -1):
            if i < len(s) and drop(s[i], i):
                del s[i]
            if short_enough(spaces):
                done = True
                break
        if done:
            break
    if len(s) > minlength:
        s = [s[0]] + [c for c in s[1:] if not c.isspace()]
    return "".join(s)


def abbreviate(names: Sequence[str], minlength: int = 4) -> list[str]:
    """R's ``abbreviate(names, minlength)``: vowels, then lower-case letters, then other
    characters dropped from the right until ``minlength``; names whose abbreviations
    collide are abbreviated again one character longer."""
    names = [str(n).strip(" ") for n in names]
    unique = list(dict.fromkeys(names))
    out = {n: _strip_chars(n, minlength) for n in unique}
    length = minlength
    while True:
        seen: dict[str, list[str]] = {}
        for n in unique:
            seen.setdefault(out[n], []).append(n)
        clashes = [n for group in seen.values() if len(group) > 1 for n in group]
        if not clashes:
            break
        length += 1
        for n in clashes:
            out[n] = _strip_chars(n, length)
    return [out[n] for n in names]


def _sig_and_power(x: float, digits: int) -> tuple[int, int]:
    """(significant digits needed ≤ digits, decimal exponent) of x, as R's formatReal."""
    if x == 0 or not math.isfinite(x):
        return 1, 0
    power = math.floor(math.log10(abs(x)))
    mantissa = round(abs(x) / 10.0**power, digits - 1)
    if mantissa >= 10:
        power += 1
        mantissa /= 10
    text = f"{mantissa:.{digits - 1}f}".replace(".", "").rstrip("0")
    return max(1, len(text)), power


def format_real(values: Sequence[float], digits: int = 7, nsmall: int = 0) -> list[str]:
    """R's ``format(values, digits, nsmall)`` in fixed notation: one common number of
    decimals (the most any value needs for ``digits`` significant digits), one width."""
    vals = [float(v) + 0.0 for v in values]  # no negative zero
    decimals = nsmall
    for v in vals:
        sig, power = _sig_and_power(v, digits)
        decimals = max(decimals, sig - power - 1)
    texts = [f"{v:.{decimals}f}" if math.isfinite(v) else "NA" for v in vals]
    width = max(len(t) for t in texts)
    return [t.rjust(width) for t in texts]


def zapsmall(values: np.ndarray, digits: int) -> np.ndarray:
    """R's ``zapsmall(x, digits)``: rounded to digits − log10(max |x|) decimals."""
    mx = float(np.max(np.abs(values)))
    places = max(0.0, digits - math.log10(mx)) if mx > 0 else digits
    return np.round(values, int(math.floor(places + 0.5)))


def _named_vector(names: Sequence[str], texts: Sequence[str]) -> list[str]:
    """R's print of a named vector on one line: columns right-aligned, a space after each."""
    width = max(len(t) for t in [*names, *texts])
    return [
        "".join(f"{n:>{width}} " for n in names),
        "".join(f"{t:>{width}} " for t in texts),
    ]


def scaled_residuals_block(scaled: np.ndarray, digits: int = 4) -> list[str]:
    """lme4's "Scaled residuals:" lines: the quantiles (type 7) of the scaled residuals."""
    q = zapsmall(np.quantile(scaled[~np.isnan(scaled)], [0, 0.25, 0.5, 0.75, 1]), digits + 1)
    return ["Scaled residuals: ", *_named_vector(["Min", "1Q", "Median", "3Q", "Max"],
                                                 format_real(q, digits))]  # fmt: skip


def correlation_block(corr: np.ndarray, names: Sequence[str]) -> list[str]:
    """lme4's "Correlation of Fixed Effects:" lines (p ≥ 2): the lower triangle rounded
    to 3 decimals, rows named by ``abbreviate(names, 11)``, columns by ``abbreviate(names,
    6)``; entries and names left-aligned in columns, as R prints a character matrix."""
    p = len(names)
    cells = format_real(np.round(np.asarray(corr, dtype=float).ravel(), 3), nsmall=3)
    cells = np.array(cells, dtype=object).reshape(p, p)
    rows, cols = abbreviate(names, 11)[1:], abbreviate(names, 6)[:-1]
    table = [[cells[i, j] if j < i else "" for j in range(p - 1)] for i in range(1, p)]
    widths = [max(len(cols[j]), *(len(r[j]) for r in table)) for j in range(p - 1)]
    left = max(len(r) for r in rows)
    lines = ["Correlation of Fixed Effects:", " " * left + "".join(
        f" {c:<{w}}" for c, w in zip(cols, widths))]  # fmt: skip
    for name, row in zip(rows, table):
        lines.append(f"{name:<{left}}" + "".join(f" {c:<{w}}" for c, w in zip(row, widths)))
    return lines
