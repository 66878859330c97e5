"""Where statsmodels' parameters sit among the engine's terms, and their names."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..data.design import Design, bar_covariance, coded_term
from ..data.formula import BarTerm
from ..engine.rows import TermRows
from ..engine.terms import RandomEffectsTerm


@dataclasses.dataclass
class VCInfo:
    """A variance component: its engine term and, per group, its column names."""

    name: str
    term: RandomEffectsTerm
    rows: TermRows | None  # None for streamed data
    colnames: dict[int, list[str]]  # group index → names of its columns, in b order
    level_group: np.ndarray | None  # (L,) group of each term level (None: not nested)


@dataclasses.dataclass
class Layout:
    """The terms of one model in statsmodels' order: re term, vc terms, bar terms."""

    fe_names: list[str]
    re_names: list[str]  # statsmodels' names of the exog_re columns
    vc: list[VCInfo]
    extra: list[tuple[str, RandomEffectsTerm, TermRows]]  # bar terms with k > 1
    group_labels: list[Any]
    group_codes: np.ndarray | None  # (n,); None for streamed data (rows not held)
    group_name: str
    re_term: RandomEffectsTerm | None
    re_rows: TermRows | None = None
    group_sizes: np.ndarray | None = None  # (G,) rows per group, when the codes are not held

    def sizes(self) -> np.ndarray:
        """(G,) the number of rows in each group."""
        if self.group_codes is None:
            return np.asarray(self.group_sizes)
        return np.bincount(self.group_codes, minlength=len(self.group_labels))

    @property
    def k_re(self) -> int:
        return len(self.re_names)

    @property
    def k_vc(self) -> int:
        return len(self.vc)

    def terms(self) -> list[RandomEffectsTerm]:
        """The terms in Z's order: the re term, the variance components, the bar terms."""
        out = [] if self.re_term is None else [self.re_term]
        return out + [v.term for v in self.vc] + [t for _, t, _ in self.extra]

    def rows(self) -> list[TermRows]:
        """Their rows, in the same order."""
        out = [] if self.re_rows is None else [self.re_rows]
        return out + [v.rows for v in self.vc] + [r for _, _, r in self.extra]

    def param_specs(self) -> list[tuple[int, int, int]]:
        """Per variance parameter (term index, a, b): the entry (a, b) of Ψ/σ²."""
        specs: list[tuple[int, int, int]] = []
        s = 0
        if self.re_term is not None:
            specs += [(0, a, b) for a, b in zip(*np.tril_indices(self.k_re))]
            s = 1
        for _ in self.vc:
            specs.append((s, 0, 0))
            s += 1
        for _, t, _ in self.extra:
            specs += [(s, a, b) for a, b in zip(*np.tril_indices(t.k))]
            s += 1
        return specs

    def param_names(self) -> list[str]:
        names = list(self.fe_names) + _cov_names(self.re_names)
        names += [f"{v.name} Var" for v in self.vc]
        for label, t, _ in self.extra:
            names += _cov_names([column_label(label, c) for c in t.columns])
        return names

    def block_of_levels(self) -> list[np.ndarray] | None:
        """Per term, the group of each level; None when some term crosses the groups."""
        out = []
        for t in self.terms():
            if t is self.re_term:
                out.append(np.arange(t.nlevels))
                continue
            info = next((v for v in self.vc if v.term is t), None)
            if info is None or info.level_group is None:
                return None
            out.append(info.level_group)
        return out


def _cov_names(cols: Sequence[str]) -> list[str]:
    """statsmodels' names of a covariance's lower triangle, row by row."""
    out = []
    for i in range(len(cols)):
        for j in range(i + 1):
            out.append(f"{cols[i]} Var" if i == j else f"{cols[j]} x {cols[i]} Cov")
    return out


def column_label(group: str, column: str) -> str:
    """Label of a bar-term column: the group for an intercept, else ``column|group``."""
    return group if column == "(Intercept)" else f"{column}|{group}"


def make_layout(
    design: Design,
    gcodes: np.ndarray,
    labels: list[Any],
    gname: str,
    Zre: np.ndarray | None,
    re_names: list[str] | None,
    r_names: list[str] | None,
    vcs: list[VCInfo],
    bars: list[tuple[RandomEffectsTerm, TermRows]],
    re_structure: BarTerm | None = None,
) -> Layout:
    """Assemble the terms: the re term (Zre (n, k)), the vc terms, then bar terms.

    Bar terms with one column join the variance components; the others are ``extra``.
    ``re_structure``: a bar term whose covariance structure the re term takes (default
    unstructured).
    """
    re_term = re_rows = None
    if Zre is not None and Zre.shape[1] > 0:
        structure = re_structure or BarTerm("1", (gname,))
        re_term, re_rows = coded_term(
            gname,
            tuple(r_names or re_names or ()),
            pd.Index([str(g) for g in labels], name=gname),
            gcodes,
            Zre,
            covariance=bar_covariance(structure, Zre.shape[1]),
            group_vars=(gname,),
        )
    vcs = list(vcs)
    extra: list[tuple[str, RandomEffectsTerm, TermRows]] = []
    taken = {v.name for v in vcs}
    for t, r in bars:
        label = t.name if t.k > 1 else column_label(t.name, t.columns[0])
        while label in taken:
            label += "'"
        taken.add(label)
        if t.k == 1:
            vcs.append(VCInfo(label, t, r, {}, None))
        else:
            extra.append((t.name, t, r))
    return Layout(
        fe_names=list(design.fixed_names),
        re_names=list(re_names or []),
        vc=vcs,
        extra=extra,
        group_labels=list(labels),
        group_codes=gcodes,
        group_name=gname,
        re_term=re_term,
        re_rows=re_rows,
    )
