"""``mixedlm`` on streamed data (Parquet, pyarrow, Dask): the same MixedLM and results.

statsmodels' spelling (``groups``, ``re_formula``, ``vc_formula``) is compiled to lme4 bar
terms (`mixedlm_formula`) and streamed in two passes (`sparselme.streaming`); the terms are
then laid out as for data in memory (`streamed_layout`: the re term, the variance
components, further bar terms) and the cross-products put in that order, so ``MixedLM`` and
`MixedLMCompatResults` work on them unchanged. What needs the rows (``endog``, ``exog``,
``groups``, ``row_indices``...) raises `NeedsRowsError`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from ..data.design import Design
from ..data.formula import parse_formula
from ..engine.crossprod import CrossBlocks, CrossProducts
from ..errors import DataError
from ..streaming import DaskSource, ParquetSource, as_source
from ..streaming.passes import streamed_design
from .layout import Layout, VCInfo, column_label

__all__ = ["mixedlm_formula", "mixedlm_streamed", "streamed_layout", "reorder_crossproducts"]

_INDICATOR_VC = re.compile(r"^\s*~?\s*0\s*\+\s*(?:(C\(\s*(\w+)\s*\))|(\w+))\s*$")


def mixedlm_formula(
    formula: str,
    groups: str | None,
    re_formula: str | None,
    vc_formula: Mapping[str, str] | None,
    categorical: Callable[[str], bool],
) -> str:
    """statsmodels' spelling (groups, re_formula, vc_formula) as one lme4 formula.

    ``re_formula`` over ``groups`` is ``(re | groups)``; a vc entry ``"0 + C(c)"`` (or
    ``"0 + c"`` with c categorical) is ``(1 | groups:c)``, ``"0 + x"`` numeric is
    ``(0 + x | groups)``.
    """
    parsed = parse_formula(formula)
    if groups is None:
        if re_formula is not None or vc_formula:
            raise DataError("re_formula and vc_formula need groups=...")
        if not parsed.bars:
            raise DataError(
                "'groups' is required: pass groups=<column>, or write the random effects "
                "as lme4 bar terms such as (1 | g)"
            )
        return formula
    if not isinstance(groups, str):
        raise DataError("groups must be a column name for streamed data")
    extra = []
    if re_formula is None:
        if not vc_formula:
            extra.append(f"(1 | {groups})")
    else:
        re_text = re_formula.strip().lstrip("~").strip()
        if re_text not in ("0", "-1"):
            extra.append(f"({re_text} | {groups})")
    for name in sorted(vc_formula or {}):
        var, factor = _vc_variable(name, vc_formula[name], categorical)
        extra.append(f"(1 | {groups}:{var})" if factor else f"(0 + {var} | {groups})")
    return " + ".join([formula] + extra)


def _vc_variable(name: str, text: str, categorical: Callable[[str], bool]) -> tuple[str, bool]:
    """(variable, whether it is a factor) of a vc_formula entry ``0 + C(var)`` / ``0 + var``."""
    m = _INDICATOR_VC.match(text)
    if m is None:
        raise NotImplementedError(
            f"vc_formula {name!r}: {text!r} — streamed fits take variance "
            "components of the form '0 + C(var)'; write others as lme4 bar terms"
        )
    var = m.group(2) or m.group(3)
    return var, bool(m.group(1)) or categorical(var)


def mixedlm_streamed(
    formula: str,
    data: Any,
    re_formula: str | None = None,
    vc_formula: Mapping[str, str] | None = None,
    subset=None,
    missing: str = "none",
    groups=None,
    chunk_size: int | None = None,
) -> tuple[Design, CrossProducts, Layout]:
    """``mixedlm`` on streamed data: its design, cross-products and layout, in two passes."""
    if subset is not None:
        raise DataError("subset is not supported for streamed data: filter the source instead")
    source = as_source(data, chunk_size)

    def categorical(var: str) -> bool:
        return _is_categorical_column(source, var)

    text = mixedlm_formula(formula, groups, re_formula, vc_formula, categorical)
    parsed = parse_formula(text)
    design, cp = streamed_design(
        parsed, source, missing="drop" if missing == "drop" else "raise", stacklevel=5
    )
    vcs = {
        name: (*_vc_variable(name, vc_formula[name], categorical), vc_formula[name])
        for name in sorted(vc_formula or {})
    }
    if groups is None and len(parse_formula(formula).bars) == 1:  # (lhs | g): groups=g
        bar = parse_formula(formula).bars[0]
        groups, re_formula = bar.group_name, bar.lhs
    elif re_formula is None and not vcs and groups is not None:
        re_formula = "1"
    layout, order = streamed_layout(design, groups, re_formula, vcs)
    counts = design.source.level_counts
    rows = replace(design.source, level_counts=[counts[i] for i in order])
    layout.group_sizes = _group_sizes(layout, rows.level_counts)
    # as in memory, the design holds the formula's own bar terms; the engine gets the
    # layout's terms (re term, variance components, bar terms) in the cross-products' order
    bars = [t for _, t, _ in layout.extra] + [v.term for v in layout.vc if v.level_group is None]
    design = replace(design, terms=bars, source=rows)
    return design, reorder_crossproducts(cp, order), layout


def streamed_layout(
    design: Design,
    groups: str | None,
    re_formula: str | None,
    vcs: Mapping[str, tuple[str, bool, str]],
) -> tuple[Layout, list[int]]:
    """The statsmodels layout of a streamed design's terms, and the terms' new order.

    ``vcs``: vc name → (variable, is a factor, the entry as written).
    """
    terms = list(design.terms)
    taken: set[int] = set()

    def find(lhs: str, group: tuple[str, ...]) -> int:
        want = lhs.replace(" ", "")
        for i, t in enumerate(terms):
            if i not in taken and t.lhs.replace(" ", "") == want and tuple(t.group_vars) == group:
                taken.add(i)
                return i
        raise DataError(f"internal: no streamed term ({lhs} | {':'.join(group)})")

    order: list[int] = []
    re_term, re_names = None, []
    coder = design.coder
    if groups is not None and re_formula is not None:
        re_text = re_formula.strip().lstrip("~").strip()
        if re_text not in ("0", "-1"):
            i = find(re_text, tuple(groups.split(":")))
            order.append(i)
            re_term = terms[i]
            spec = coder.term_specs.get(re_term.lhs)
            cols = list(spec.column_names) if spec is not None else list(re_term.columns)
            re_names = [c.replace("Intercept", groups) for c in cols]
    if groups is None:
        labels: list = [1]
    elif groups in coder.group_levels:
        labels = _labels_of(coder.group_levels[groups])
    else:  # an a:b grouping given as a bar term
        labels = list(re_term.levels) if re_term is not None else [1]
    vc_infos = []
    for name, (var, factor, text) in vcs.items():
        i = find("1", (groups, var)) if factor else find(f"0 + {var}", (groups,))
        order.append(i)
        t = terms[i]
        if factor:
            keys = next(tc.keys for tc in coder.terms if tc.bar.group == (groups, var))
            level_group = (keys // len(coder.group_levels[var])).astype(np.intp)
            expr = text.strip().lstrip("~").split("+", 1)[1].strip()
            names = [f"{expr}[{lv}]" for lv in _labels_of(coder.group_levels[var])]
            pair = (keys % len(coder.group_levels[var])).astype(np.intp)
            colnames: dict[int, list[str]] = {}
            for g, j in zip(level_group, pair):
                colnames.setdefault(int(g), []).append(names[j])
        else:
            level_group = np.arange(t.nlevels, dtype=np.intp)
            colnames = {g: [var] for g in range(t.nlevels)}
        vc_infos.append(VCInfo(name, t, None, colnames, level_group))
    extra = []
    rest = [i for i in range(len(terms)) if i not in taken]
    bar_vcs = []
    used = {v.name for v in vc_infos}
    for i in rest:
        t = terms[i]
        label = t.name if t.k > 1 else column_label(t.name, t.columns[0])
        while label in used:
            label += "'"
        used.add(label)
        if t.k == 1:
            bar_vcs.append((i, VCInfo(label, t, None, {}, None)))
        else:
            extra.append((i, (t.name, t, None)))
    order += [i for i, _ in bar_vcs] + [i for i, _ in extra]
    layout = Layout(
        fe_names=list(design.fixed_names),
        re_names=re_names,
        vc=vc_infos + [v for _, v in bar_vcs],
        extra=[e for _, e in extra],
        group_labels=labels,
        group_codes=None,
        group_name=groups if groups is not None else "Group",
        re_term=re_term,
        re_rows=None,
    )
    return layout, order


def _labels_of(raw: pd.Index) -> list:
    return [v.item() if isinstance(v, np.generic) else v for v in raw]


def _group_sizes(layout: Layout, counts: Sequence[np.ndarray]) -> np.ndarray:
    """(G,) rows per group, from the level counts of a term nested in the groups."""
    G = len(layout.group_labels)
    if layout.re_term is not None:
        return np.asarray(counts[0])
    for j, v in enumerate(layout.vc):
        if v.level_group is not None:
            return np.bincount(v.level_group, weights=counts[j], minlength=G).astype(np.int64)
    return np.array([int(np.sum(counts[0]))] if G == 1 and len(counts) else [0] * G)


def reorder_crossproducts(cp: CrossProducts, order: Sequence[int]) -> CrossProducts:
    """The cross-products with the terms in a new order (``order[i]``: old index of term i)."""
    order = list(order)
    if order == list(range(len(order))):
        return cp
    new = {old: i for i, old in enumerate(order)}
    cross = {}
    for (s, t), blocks in cp.cross.items():
        a, b = new[s], new[t]
        if a > b:
            cross[(a, b)] = blocks
            continue
        keys = np.lexsort((blocks.rows, blocks.cols))  # sorted by (col, row): the new rows
        cross[(b, a)] = CrossBlocks(
            rows=blocks.cols[keys],
            cols=blocks.rows[keys],
            values=np.transpose(blocks.values[keys], (0, 2, 1)).copy(),
        )
    return replace(
        cp,
        diag=[cp.diag[i] for i in order],
        cross=cross,
        ZtX=[cp.ZtX[i] for i in order],
        Zty=[cp.Zty[i] for i in order],
    )


def _is_categorical_column(source: ParquetSource | DaskSource, name: str) -> bool:
    if isinstance(source, DaskSource):
        dtype = source.ddf.dtypes.get(name)
        return dtype is not None and not pd.api.types.is_numeric_dtype(dtype)
    import pyarrow as pa

    schema = source.dataset.schema
    if name not in schema.names:
        return False
    t = schema.field(name).type
    return not (pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t))
