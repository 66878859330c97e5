"""Printouts of a fit as objects: text for terminals, HTML for notebooks, LaTeX for papers.

`Summary` is what ``res.summary()`` returns: ``str()`` (and `Summary.as_text`) is lme4's
text (`sparselme.results.summary.lme4_summary`), `Summary.as_html` and
`Summary.as_latex` give the same sections as tables, and Jupyter shows the HTML.
`overview_text` and `overview_html` are the short printout of ``print(res)`` and of a
fit displayed in a notebook (lme4's ``print(m)``: criterion, standard deviations,
fixed-effect estimates).
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..model.results import ModelFit
from .summary import correlation_lines, scaled_residuals

__all__ = ["Summary", "Section", "lme4_sections", "random_effects_table", "overview_text"]


@dataclass
class Section:
    """One part of a printout: a heading, then lines of text or a table of strings."""

    heading: str
    table: pd.DataFrame | None = None
    lines: Sequence[str] = ()
    index: bool = True  # whether the table's row labels are shown


class Summary:
    """A fit's printout: ``str()`` is the text, with HTML and LaTeX renderings of it.

    Parameters
    ----------
    text : the printout as text (what ``print()`` shows).
    sections : a function returning the printout's `Section` list, called the first
        time HTML or LaTeX is asked for.
    title : the title of the HTML and LaTeX renderings.
    """

    def __init__(self, text: str, sections: Callable[[], list[Section]], title: str = ""):
        self._text = text
        self._make_sections = sections
        self._sections: list[Section] | None = None
        self.title = title

    @property
    def sections(self) -> list[Section]:
        if self._sections is None:
            self._sections = self._make_sections()
        return self._sections

    def as_text(self) -> str:
        """The printout as text."""
        return self._text

    def _render(self, title, heading, lines, table) -> list[str]:
        """The parts of a rendering: ``title(text)``, then per section ``heading(text)``,
        ``lines(list of text)`` and ``table(frame, index)`` where it has them."""
        parts = [title(self.title)] if self.title else []
        for s in self.sections:
            parts += [heading(s.heading)] if s.heading else []
            parts += [lines(s.lines)] if s.lines else []
            parts += [table(s.table, s.index)] if s.table is not None else []
        return parts

    def as_html(self) -> str:
        """The printout as an HTML fragment: a heading and a table per section."""
        parts = self._render(
            lambda t: f"<h4>{html.escape(t)}</h4>",
            lambda t: f"<p><strong>{html.escape(t)}</strong></p>",
            lambda ls: "<p>" + "<br>".join(html.escape(x) for x in ls) + "</p>",
            lambda frame, index: frame.to_html(index=index, border=0, na_rep=""),
        )
        return "\n".join(['<div class="sparselme-summary">', *parts, "</div>"])

    def as_latex(self) -> str:
        """The printout as LaTeX: a ``tabular`` per table (needs no extra package)."""
        parts = self._render(
            lambda t: f"\\section*{{{_tex(t)}}}",
            lambda t: f"\\paragraph{{{_tex(t)}}}",
            lambda ls: " \\\\\n".join(_tex(x) for x in ls),
            _latex_tabular,
        )
        return "\n\n".join(parts) + "\n"

    def _repr_html_(self) -> str:
        return self.as_html()

    def __str__(self) -> str:
        return self._text

    def __repr__(self) -> str:
        return self._text

    def __contains__(self, text: str) -> bool:
        return text in self._text

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Summary):
            return self._text == other._text
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]


_TEX = {c: "\\" + c for c in "&%$#_{}"}
_TEX.update({"~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "\\": r"\textbackslash{}"})


def _tex(text: str) -> str:
    return "".join(_TEX.get(c, c) for c in str(text))


# columns of labels, aligned left (numbers are aligned right)
_LEFT = ("Groups", "Name")


def _latex_tabular(table: pd.DataFrame, index: bool) -> str:
    cols = ([table.index.name or ""] if index else []) + [str(c) for c in table.columns]
    align = ("l" if index else "") + "".join("l" if c in _LEFT else "r" for c in table.columns)
    rows = [" & ".join(_tex(c) for c in cols) + r" \\", r"\hline"]
    for label, row in zip(table.index, table.itertuples(index=False)):
        cells = ([str(label)] if index else []) + ["" if pd.isna(v) else str(v) for v in row]
        rows.append(" & ".join(_tex(c) for c in cells) + r" \\")
    body = "\n".join(rows)
    return f"\\begin{{tabular}}{{{align}}}\n\\hline\n{body}\n\\hline\n\\end{{tabular}}"


# ---- the sections of lme4's summary ---------------------------------------------------------
def random_effects_table(res: ModelFit, variance: bool = True) -> pd.DataFrame:
    """lme4's random-effects block as strings: Groups, Name, Variance, Std.Dev., Corr.

    A correlated term's rows show its correlations with the earlier columns (Corr); the
    group name appears on the term's first row only. ``variance=False`` leaves out the
    Variance column (lme4's ``print(m)``).
    """
    vc = res.varcorr
    sd_rows = vc[vc["var2"].isna()]
    corr: dict[tuple[str, str], list[str]] = {}
    for row in vc[vc["var2"].notna()].itertuples():
        corr.setdefault((row.grp, row.var2), []).append(f"{row.sdcor:.2f}")
    rows, last = [], None
    for row in sd_rows.itertuples():
        name = "" if pd.isna(row.var1) else str(row.var1)
        rows.append(
            {
                "Groups": "" if row.grp == last else str(row.grp),
                "Name": name,
                "Variance": f"{row.vcov:.4g}",
                "Std.Dev.": f"{row.sdcor:.4g}",
                "Corr": " ".join(corr.get((row.grp, name), [])),
            }
        )
        last = row.grp
    table = pd.DataFrame(rows, columns=["Groups", "Name", "Variance", "Std.Dev.", "Corr"])
    if not variance:
        table = table.drop(columns="Variance")
    if not table["Corr"].str.len().any():
        table = table.drop(columns="Corr")
    return table


def _criterion(res: ModelFit) -> Section:
    if res.reml:
        return Section("", lines=[f"REML criterion at convergence: {res.reml_criterion:.4f}"])
    values = [res.AIC, res.BIC, res.llf, res.deviance]
    table = pd.DataFrame(
        [[f"{v:.1f}" for v in values]], columns=["AIC", "BIC", "logLik", "deviance"]
    )
    return Section("", table=table, index=False)


def _heading(res: ModelFit) -> Section:
    d = res.design
    formula = d.parsed.text if d.parsed is not None else ""
    how = "REML" if res.reml else "maximum likelihood"
    return Section(f"Linear mixed model fit by {how}", lines=[f"Formula: {formula}"])


def _groups_line(res: ModelFit) -> str:
    ng = "; ".join(f"{k}, {v}" for k, v in res.ngroups.items())
    return f"Number of obs: {res.nobs}, groups:  {ng}"


def lme4_sections(
    res: ModelFit, extra: Sequence[Section] = (), correlation: bool | None = None
) -> list[Section]:
    """The sections of lme4's ``summary(m)``; ``extra`` goes before the fixed effects,
    ``correlation`` as in `sparselme.results.summary.lme4_summary`."""
    q = np.quantile(scaled_residuals(res), [0, 0.25, 0.5, 0.75, 1])
    quantiles = pd.DataFrame(
        [[f"{v:.4f}" for v in q]], columns=["Min", "1Q", "Median", "3Q", "Max"]
    )
    fe = pd.DataFrame(
        {
            "Estimate": res.fe_params.map(lambda v: f"{v:.5g}"),
            "Std. Error": res.bse_fe.map(lambda v: f"{v:.5g}"),
            "t value": (res.fe_params / res.bse_fe).map(lambda v: f"{v:.5g}"),
        }
    )
    notes = ["boundary (singular) fit: see help('isSingular')"] * res.is_singular
    notes += [f"note: {m}" for m in res.optsum.messages]
    return [
        _heading(res),
        _criterion(res),
        Section("Scaled residuals:", table=quantiles, index=False),
        Section("Random effects:", table=random_effects_table(res), index=False),
        Section("", lines=[_groups_line(res)]),
        *extra,
        Section("Fixed effects:", table=fe),
        *([Section("", lines=cor[1:])] if (cor := correlation_lines(res, correlation)) else []),
        *([Section("", lines=notes)] if notes else []),
    ]


# ---- print(res) ----------------------------------------------------------------------------
def _overview_sections(res: ModelFit) -> list[Section]:
    fe = res.fe_params.map(lambda v: f"{v:.5g}").to_frame().T
    return [
        _heading(res),
        _criterion(res),
        Section("Random effects:", table=random_effects_table(res, variance=False), index=False),
        Section("", lines=[_groups_line(res)]),
        Section("Fixed effects:", table=fe, index=False),
    ]


def overview_text(res: ModelFit) -> str:
    """lme4's ``print(m)``: the criterion, the standard deviations, the fixed effects."""
    lines: list[str] = []
    for s in _overview_sections(res):
        if s.heading:
            lines.append(s.heading)
        lines.extend(s.lines)
        if s.table is not None:
            lines.extend(_text_table(s.table))
    if res.is_singular:
        lines.append("boundary (singular) fit: see help('isSingular')")
    return "\n".join(lines)


def _text_table(table: pd.DataFrame) -> list[str]:
    """Lines of a table of strings (no row labels): labels left, numbers right."""
    cols = [[str(c)] + [str(v) for v in table[c]] for c in table.columns]
    widths = [max(len(v) for v in col) for col in cols]
    lines = []
    for i in range(len(table) + 1):
        cells = [
            col[i].ljust(w) if name in _LEFT else col[i].rjust(w)
            for name, col, w in zip(table.columns, cols, widths)
        ]
        lines.append((" " + "  ".join(cells)).rstrip())
    return lines


def overview(res: ModelFit) -> Summary:
    """`overview_text` with its HTML and LaTeX renderings."""
    return Summary(overview_text(res), lambda: _overview_sections(res))
