"""Linear hypotheses on the estimates: t, Wald and F tests, per-term and pairwise tests.

``ContrastResults`` holds one test (statsmodels' attribute names), `constraints`
reads hypotheses given as a matrix, a tuple (R, q) or text such as "x = 1, y - z = 0".
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import stats

from ..analysis.contrasts import categorical_levels

if TYPE_CHECKING:
    from .results import MixedLMCompatResults


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

    @classmethod
    def f(cls, fvalue: float, pvalue: float, df_num: int, df_denom: int) -> ContrastResults:
        """An F test: ``fvalue`` on (df_num, df_denom) degrees of freedom."""
        out = cls.wald(fvalue, pvalue, df_denom, scalar=False)
        out.fvalue, out.df_num, out.distribution = out.statistic, df_num, "F"
        return out

    def conf_int(self, alpha: float = 0.05) -> np.ndarray:
        dist = stats.t(self.df_denom) if self.distribution == "t" else stats.norm
        q = dist.ppf(1 - alpha / 2)
        return np.column_stack([self.effect - q * self.sd, self.effect + q * self.sd])

    def summary(self, alpha: float = 0.05) -> str:
        if self.distribution in ("chi2", "F"):
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
        if self.distribution == "F":
            return (
                f"<F test: F={np.squeeze(self.fvalue)}, p={self.pvalue}, "
                f"df_denom={self.df_denom}, df_num={self.df_num}>"
            )
        if self.distribution == "chi2":
            return (
                f"<Wald test (chi2): statistic={np.squeeze(self.statistic)}, "
                f"p-value={self.pvalue}, df_denom={self.df_denom}>"
            )
        return "<ContrastResults>\n" + self.summary()


def constraints(r_matrix, names: list[str], k_all: int, k_default: int, what="r_matrix"):
    """(R (m, k), q (m,)) from a matrix, a tuple (R, q) or text such as "x = 1, y - z = 0".

    A matrix must have ``k_default`` or ``k_all`` columns (else ValueError naming ``what``).
    """
    if isinstance(r_matrix, str):
        R, q = _parse_constraints(r_matrix, names)
        return R, q
    q = None
    if isinstance(r_matrix, tuple):
        r_matrix, q = r_matrix
    R = np.atleast_2d(np.asarray(r_matrix, dtype=float))
    if R.shape[1] not in (k_default, k_all):
        raise ValueError(f"{what} should have {k_default:d} columns")
    q = np.zeros(R.shape[0]) if q is None else np.asarray(q, dtype=float).ravel()
    return R, q * np.ones(R.shape[0])


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


# ---- the tests of a fit --------------------------------------------------------------------------


def t_test(res: MixedLMCompatResults, r_matrix, use_t: bool | None) -> ContrastResults:
    """t (z) tests of R β = q over the fixed effects (R: k_fe columns, or text)."""
    names = list(res.model.exog_names)
    R, q = constraints(r_matrix, names, res.k_fe, res.k_fe, what="r_matrix for t-test")
    use_t = res.use_t if use_t is None else use_t
    V = res._cov_params[: res.k_fe, : res.k_fe]
    effect = R @ res.solution.beta
    sd = np.sqrt(np.einsum("ij,jk,ik->i", R, V, R))
    tval = (effect - q) / sd
    df = res.df_resid if use_t else None
    dist = stats.t(df) if use_t else stats.norm
    return ContrastResults(effect, sd, tval, 2 * dist.sf(np.abs(tval)), q, df, use_t)


def wald_test(res: MixedLMCompatResults, r_matrix, use_f: bool, scalar) -> ContrastResults:
    """χ² (or F) test of R θ = q; R has k_params columns, or k_fe (the fixed effects)."""
    k, p = res.k_params, res.k_fe
    R, q = constraints(r_matrix, list(res.model.param_names), k, p)
    if R.shape[1] == p:
        R = np.hstack([R, np.zeros((R.shape[0], k - p))])
    d = R @ res._param_values - q
    V = R @ res._cov_params @ R.T
    stat = float(d @ np.linalg.pinv(V, hermitian=True) @ d)  # dependent rows allowed
    df = int(np.linalg.matrix_rank(R))
    if use_f:
        F = stat / df
        return ContrastResults.f(F, float(stats.f.sf(F, df, res.df_resid)), df, res.df_resid)
    return ContrastResults.wald(stat, float(stats.chi2.sf(stat, df)), df, scalar)


def fixed_terms(res: MixedLMCompatResults) -> dict[str, list[int]]:
    """{term name: its columns in X}: the formula's terms, else one term per column."""
    names = list(res.model.exog_names)
    spec = res.model.design.fixed_spec
    if spec is None or res.model.formula is None:
        return {n: [i] for i, n in enumerate(names)}
    out: dict[str, list[int]] = {}
    for st in spec.structure:
        label = "Intercept" if str(st.term) == "1" else str(st.term)
        cols = [names.index(c) for c in st.columns if c in names]
        if cols:
            out[label] = cols
    return dict(sorted(out.items(), key=lambda kv: min(kv[1])))


class WaldTermsResults:
    """Per-term Wald tests: ``table`` (statistic, pvalue, df_constraint by term)."""

    def __init__(self, table: pd.DataFrame):
        self.table = table
        self.statistic = table["statistic"].to_numpy()
        self.pvalues = table["pvalue"].to_numpy()
        self.df_constraints = table["df_constraint"].to_numpy()
        self.distribution = "chi2"

    def summary_frame(self) -> pd.DataFrame:
        """The table with statsmodels' printed column names (chi2, P>chi2, df constraint)."""
        names = {"statistic": "chi2", "pvalue": "P>chi2", "df_constraint": "df constraint"}
        return self.table.rename(columns=names)

    def __str__(self) -> str:
        return str(self.summary_frame())

    __repr__ = __str__


def wald_test_terms(res: MixedLMCompatResults, skip_single: bool, scalar) -> WaldTermsResults:
    """χ² tests that each fixed-effects term's coefficients are 0 (``skip_single``: only
    terms with several columns)."""
    rows = {}
    for name, cols in fixed_terms(res).items():
        if skip_single and len(cols) == 1:
            continue
        R = np.zeros((len(cols), res.k_fe))
        R[np.arange(len(cols)), cols] = 1.0
        test = wald_test(res, R, False, True)
        rows[name] = (test.statistic, test.pvalue, test.df_denom)
    columns = ["statistic", "pvalue", "df_constraint"]
    table = pd.DataFrame.from_dict(rows, orient="index", columns=columns)
    return WaldTermsResults(table)


class PairwiseResults:
    """Pairwise comparisons of a term's levels: ``result_frame`` and the ``contrasts``."""

    def __init__(self, frame: pd.DataFrame, contrasts: np.ndarray, term_name, method, alpha):
        self.result_frame, self.contrasts = frame, contrasts
        self.term_name, self.method, self.alpha = term_name, method, alpha

    def __str__(self) -> str:
        return str(self.result_frame)

    __repr__ = __str__


def adjust_pvalues(p: np.ndarray, method: str) -> np.ndarray:
    """Family-wise adjusted p-values: "hs" (Holm–Šidák), "holm", "sidak", "bonferroni"."""
    p = np.asarray(p, dtype=float)
    m = len(p)
    if method == "bonferroni":
        return np.minimum(1.0, m * p)
    if method == "sidak":
        return 1.0 - (1.0 - p) ** m
    if method not in ("hs", "holm"):
        raise ValueError(f"method must be 'hs', 'holm', 'sidak' or 'bonferroni', not {method!r}")
    order = np.argsort(p)
    steps = m - np.arange(m)  # m, m-1, ..., 1 for the sorted p-values
    ps = p[order]
    adj = 1.0 - (1.0 - ps) ** steps if method == "hs" else np.minimum(1.0, steps * ps)
    out = np.empty(m)
    out[order] = np.minimum(1.0, np.maximum.accumulate(adj))
    return out


def _reference_level(res: MixedLMCompatResults, levels: list[str]) -> str:
    """The treatment coding's reference level of the factor whose other levels are given."""
    spec = res.model.design.fixed_spec
    for lev in categorical_levels(spec)[0].values() if spec is not None else []:
        rest = [str(v) for v in lev if str(v) not in levels]
        if len(lev) == len(levels) + 1 and len(rest) == 1:
            return rest[0]
    return "reference"


def t_test_pairwise(
    res: MixedLMCompatResults, term_name: str, method: str, alpha: float, factor_labels
) -> PairwiseResults:
    """z tests of all differences between the levels of a treatment-coded term."""
    terms = fixed_terms(res)
    if term_name not in terms:
        raise ValueError(f"{term_name!r} is not a term of the model: {list(terms)}")
    names = list(res.model.exog_names)
    cols = terms[term_name]
    levels = [re.sub(r"^.*\[T\.(.*)\]$", r"\1", names[c]) for c in cols]
    if any(not names[c].endswith("]") or "[T." not in names[c] for c in cols):
        raise ValueError(f"term {term_name!r} is not a treatment-coded categorical term")
    labels = [_reference_level(res, levels), *levels]
    labels = labels if factor_labels is None else list(factor_labels)
    if len(labels) != len(cols) + 1:
        raise ValueError(f"factor_labels needs {len(cols) + 1} labels (the reference first)")
    rows, index = [], []
    for j in range(len(labels)):
        for i in range(j):
            r = np.zeros(res.k_fe)
            r[cols[j - 1]] = 1.0
            if i:
                r[cols[i - 1]] = -1.0
            rows.append(r)
            index.append(f"{labels[j]}-{labels[i]}")
    R = np.array(rows)
    test = t_test(res, R, False)
    ci = test.conf_int(alpha)
    adj = adjust_pvalues(test.pvalue, method)
    frame = pd.DataFrame(
        {
            "coef": test.effect,
            "std err": test.sd,
            "z": test.tvalue,
            "P>|z|": test.pvalue,
            "Conf. Int. Low": ci[:, 0],
            "Conf. Int. Upp.": ci[:, 1],
            f"pvalue-{method}": adj,
            f"reject-{method}": adj <= alpha,
        },
        index=index,
    )
    return PairwiseResults(frame, R, term_name, method, alpha)
