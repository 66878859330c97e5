"""Linear hypotheses on the estimates: ``ContrastResults`` and constraints as text."""

from __future__ import annotations

import re

import numpy as np
from scipy import stats


class ContrastResults:
    """Result of `MixedLMCompatResults.t_test` or ``wald_test``."""

    def __init__(self, effect, sd, tvalue, pvalue, q, df, use_t):
        self.effect = np.asarray(effect)
        self.sd = np.asarray(sd)
        self.tvalue = self.statistic = np.asarray(tvalue)
        self.pvalue = np.asarray(pvalue)
        self.q = q
        self.df_denom = df
        self.distribution = "t" if use_t else "norm"

    @classmethod
    def wald(cls, stat: float, pvalue: float, df: int, scalar: bool | None) -> ContrastResults:
        out = cls.__new__(cls)
        out.statistic = stat if scalar else np.array([[stat]])
        out.pvalue = pvalue
        out.df_denom = df
        out.distribution = "chi2"
        out.effect = out.sd = out.tvalue = None
        return out

    def conf_int(self, alpha: float = 0.05) -> np.ndarray:
        dist = stats.t(self.df_denom) if self.distribution == "t" else stats.norm
        q = dist.ppf(1 - alpha / 2)
        return np.column_stack([self.effect - q * self.sd, self.effect + q * self.sd])

    def summary(self, alpha: float = 0.05) -> str:
        if self.distribution == "chi2":
            return repr(self)
        ci = self.conf_int(alpha)
        stat = "t" if self.distribution == "t" else "z"
        head = f"{'':<10}{'coef':>11}{'std err':>11}{stat:>11}{'P>|' + stat + '|':>11}"
        head += f"{'[' + str(alpha / 2):>12}{str(1 - alpha / 2) + ']':>12}"
        rows = [
            f"c{i:<9}{e:>11.4f}{s:>11.3f}{t:>11.3f}{p:>11.3f}{lo:>12.3f}{hi:>12.3f}"
            for i, (e, s, t, p, lo, hi) in enumerate(
                zip(self.effect, self.sd, self.tvalue, self.pvalue, ci[:, 0], ci[:, 1])
            )
        ]
        width = len(head)
        return "\n".join(
            ["Test for Constraints".center(width), "=" * width, head, "-" * width, *rows]
            + ["=" * width]
        )

    def __str__(self) -> str:
        return self.summary()

    def __repr__(self) -> str:
        if self.distribution == "chi2":
            return (
                f"<Wald test (chi2): statistic={np.squeeze(self.statistic)}, "
                f"p-value={self.pvalue}, df_denom={self.df_denom}>"
            )
        return "<ContrastResults>\n" + self.summary()


def constraints(r_matrix, names: list[str], k_all: int, k_default: int):
    """(R (m, k), q (m,)) from a matrix or text such as "x = 1, y - z = 0"."""
    if isinstance(r_matrix, str):
        R, q = _parse_constraints(r_matrix, names)
        return R, q
    if isinstance(r_matrix, tuple):
        R, q = r_matrix
        R = np.atleast_2d(np.asarray(R, dtype=float))
        return R, np.asarray(q, dtype=float).ravel() * np.ones(R.shape[0])
    R = np.atleast_2d(np.asarray(r_matrix, dtype=float))
    if R.shape[1] not in (len(names), k_default, k_all):
        raise ValueError(f"r_matrix should have {len(names)} columns")
    return R, np.zeros(R.shape[0])


_NUM = re.compile(r"\s*(\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)\s*")


def _parse_constraints(text: str, names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Linear constraints over parameter names: comma-separated ``lhs = rhs``."""
    by_len = sorted(names, key=len, reverse=True)
    rows, qs = [], []
    for part in [p for p in re.split(r",(?![^()]*\))", text) if p.strip()]:
        part = part.strip().strip("()")
        sides = part.split("=")
        if len(sides) > 2:
            raise ValueError(f"cannot parse constraint {part!r}")
        coef = np.zeros(len(names))
        const = 0.0
        for side, sign in zip(sides, (1.0, -1.0)):
            c, k = _linear_combination(side, names, by_len)
            coef += sign * c
            const -= sign * k
        rows.append(coef)
        qs.append(const)
    return np.array(rows), np.array(qs)


def _linear_combination(text: str, names: list[str], by_len: list[str]):
    coef, const, i, s = np.zeros(len(names)), 0.0, 0, text.strip()
    sign = 1.0
    while i < len(s):
        ch = s[i]
        if ch.isspace():
            i += 1
            continue
        if ch in "+-":
            sign = sign if ch == "+" else -sign
            i += 1
            continue
        factor = 1.0
        m = _NUM.match(s, i)
        if m:
            factor = float(m.group(1))
            i = m.end()
            if i < len(s) and s[i] == "*":
                i += 1
                while i < len(s) and s[i].isspace():
                    i += 1
            else:
                const += sign * factor
                sign = 1.0
                continue
        name = next((n for n in by_len if s.startswith(n, i)), None)
        if name is None:
            raise ValueError(f"unknown parameter in constraint {text!r} at {s[i:]!r}")
        coef[names.index(name)] += sign * factor
        i += len(name)
        sign = 1.0
    return coef, const
