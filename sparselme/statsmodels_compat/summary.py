"""statsmodels' summary layout: the info block and the parameter table."""

from __future__ import annotations

import math
import textwrap
from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import stats

if TYPE_CHECKING:
    from .results import MixedLMCompatResults


def summary_of(res: MixedLMCompatResults, yname, xname_fe, xname_re, title, alpha):
    """statsmodels' ``MixedLMResults.summary()`` of a fit (see its arguments there)."""
    names = _param_names(res, xname_fe, xname_re)
    try:
        from statsmodels.iolib import summary2
    except ImportError:  # statsmodels is optional: the same layout, formatted here
        smry = Summary()
    else:
        smry = summary2.Summary()
    smry.add_dict(_info(res, yname))
    smry.add_title(title or "Mixed Linear Model Regression Results")
    smry.add_df(_table(res, names, alpha), align="r")
    return smry


def _param_names(res: MixedLMCompatResults, xname_fe, xname_re) -> list[str]:
    names = list(res.model.param_names)
    k_fe = res.k_fe
    if xname_fe is not None:
        if len(xname_fe) != k_fe:
            raise ValueError(f"xname_fe should be a list of length {k_fe}")
        names[:k_fe] = list(xname_fe)
    if xname_re is not None:
        if len(xname_re) != len(names) - k_fe:
            raise ValueError(f"xname_re should be a list of length {len(names) - k_fe}")
        names[k_fe:] = list(xname_re)
    return names


def _info(res: MixedLMCompatResults, yname) -> dict:
    """The info block: model, sizes, method, scale, log-likelihood."""
    sizes = res.model.layout.sizes()
    return {
        "Model:": "MixedLM",
        "No. Observations:": str(res.nobs),
        "No. Groups:": str(res.model.n_groups),
        "Min. group size:": f"{sizes.min():.0f}",
        "Max. group size:": f"{sizes.max():.0f}",
        "Mean group size:": f"{sizes.mean():.1f}",
        "Dependent Variable:": res.model.endog_names if yname is None else yname,
        "Method:": res.method,
        "Scale:": res.scale,
        "Log-Likelihood:": res.llf,
        "Converged:": "Yes" if res.converged else "No",
    }


def _table(res: MixedLMCompatResults, names: list[str], alpha: float) -> pd.DataFrame:
    """The parameter table: Wald columns for β, estimate and SE (user scale) for the rest."""
    k_fe = res.k_fe
    table = np.full((len(names), 6), np.nan)
    beta = res.solution.beta
    se = res.bse.to_numpy()
    table[:k_fe, 0] = beta
    table[:k_fe, 1] = se[:k_fe]
    with np.errstate(divide="ignore", invalid="ignore"):
        table[:k_fe, 2] = beta / se[:k_fe]
    table[:k_fe, 3] = 2 * stats.norm.cdf(-np.abs(table[:k_fe, 2]))
    q = -stats.norm.ppf(alpha / 2)
    table[:k_fe, 4] = beta - q * se[:k_fe]
    table[:k_fe, 5] = beta + q * se[:k_fe]
    table[k_fe:, 0] = res._param_values[k_fe:] * res.scale
    table[k_fe:, 1] = math.sqrt(res.scale) * se[k_fe:]
    cols = ["Coef.", "Std.Err.", "z", "P>|z|", f"[{alpha / 2}", f"{1 - alpha / 2}]"]
    return pd.DataFrame(
        [[f"{v:.3f}" if np.isfinite(v) else "" for v in row] for row in table],
        index=names,
        columns=cols,
    )


def _fmt(x, float_format: str = "%.4f") -> str:
    try:
        out = float_format % x
    except (ValueError, TypeError):
        out = str(x)
    return out.strip()


def _pad(s: str, width: int, align: str) -> str:
    return s.ljust(width) if align == "l" else s.rjust(width) if align == "r" else s.center(width)


class Summary:
    """statsmodels' ``summary2.Summary`` text layout, for when statsmodels is absent."""

    def __init__(self):
        self.tables: list[pd.DataFrame] = []
        self.settings: list[dict] = []
        self.extra_txt: list[str] = []
        self.title: str | None = None

    def add_dict(self, d: Mapping, ncols: int = 2, align: str = "l") -> None:
        cells = [[_fmt(k), _fmt(v)] for k, v in d.items()]
        while len(cells) % ncols:
            cells.append(["", ""])
        per = len(cells) // ncols
        rows = [sum((cells[c * per + r] for c in range(ncols)), []) for r in range(per)]
        self.tables.append(pd.DataFrame(rows))
        self.settings.append({"index": False, "header": False, "align": align})

    def add_df(self, df: pd.DataFrame, index: bool = True, header: bool = True, align="r"):
        self.tables.append(df)
        self.settings.append({"index": index, "header": header, "align": align})

    def add_title(self, title: str | None = None) -> None:
        self.title = title or ""

    def add_text(self, string: str) -> None:
        self.extra_txt.append(string)

    def _lines(self, i: int, pad_col: int = 0, pad_index: int = 0) -> list[str]:
        df, st = self.tables[i], self.settings[i]
        body = [[_fmt(v) for v in row] for row in df.itertuples(index=False)]
        rows: list[tuple[list[str], list[str], bool]] = []
        if st["index"]:
            stubs = [str(x) + " " * pad_index for x in df.index]
            if st["header"]:
                rows.append(([""] + [str(c) for c in df.columns], ["c"] * (df.shape[1] + 1), True))
            rows += [([s] + r, ["l"] + [st["align"]] * len(r), False) for s, r in zip(stubs, body)]
        else:
            body = [[r[0] + " " * pad_index] + r[1:] for r in body]
            if st["header"]:
                rows.append(([str(c) for c in df.columns], ["c"] * df.shape[1], True))
            rows += [(r, [st["align"]] * len(r), False) for r in body]
        widths = [max(len(r[0][j]) for r in rows) for j in range(len(rows[0][0]))]
        sep = " " * (pad_col + 1)
        lines = []
        for cells, aligns, dec in rows:
            line = sep.join(_pad(c, w, a) for c, w, a in zip(cells, widths, aligns))
            lines.append(line)
            if dec:
                lines.append("-" * len(line))
        return ["-" * len(lines[-1])] + lines

    def as_text(self) -> str:
        lengths = [len(self._lines(i)[0]) for i in range(len(self.tables))]
        widest = max(lengths)
        lines = []
        for i, df in enumerate(self.tables):
            nsep = max(df.shape[1] - 1, 1)
            pad = int((widest - lengths[i]) / nsep)
            lines += self._lines(i, pad, widest - (lengths[i] + nsep * pad))
        lines[0] = "=" * widest
        lines.append("=" * widest)
        title = self.title or ""
        if title and len(title) < widest:
            title = " " * int(widest / 2 - len(title) / 2) + title
        txt = "\n".join("\n".join(textwrap.wrap(x, widest)) for x in self.extra_txt)
        return f"{title}\n" + "\n".join(lines) + f"\n{txt}"

    def __str__(self) -> str:
        return self.as_text()

    def __repr__(self) -> str:
        return str(type(self)) + '\n"""\n' + self.as_text() + '\n"""'
