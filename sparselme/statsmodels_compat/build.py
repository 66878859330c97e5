"""statsmodels' model specification → a Design and the Layout of its terms.

Arrays (``endog``, ``exog``, ``groups``, ``exog_re``, ``exog_vc``) go through
`from_arrays`; a formula through `formula_groups`, `used_columns` and
`formula_layout` (``MixedLM.from_formula`` calls them in turn).
"""

from __future__ import annotations

import dataclasses
import re
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from formulaic import Formula

from ..data import checks, validation
from ..data.design import Design, group_codes, r_style_name
from ..data.formula import BarTerm, ParsedFormula
from ..data.formula_structures import STRUCTURE_KEYWORDS
from ..data.missing import bad_rows, report_missing
from ..data.moments import ColumnMoments
from ..data.overlap import check_distinct_terms
from ..errors import (
    DataError,
    DataTypeError,
    FormulaError,
    RankDeficiencyWarning,
)
from .components import convert_vc_dict, vc_from_formula, vc_from_spec
from .inputs import (
    as_matrix,
    check_columns,
    evaluate,
    exog_names,
    formula_vars,
    groups_to_codes,
    subset_mask,
)
from .layout import Layout, VCInfo, make_layout
from .params import VCSpec

# ---- the array API ---------------------------------------------------------------------


def from_arrays(
    endog, exog, groups, exog_re, exog_vc, missing: str
) -> tuple[Design, Layout, list[str], VCSpec]:
    """(design, layout, exog_re's display names, exog_vc as a VCSpec) of ``MixedLM(...)``."""
    validation.check_missing_option(missing)
    y, yname, X, xnames, g, Zre, re_names, index = _read_arrays(endog, exog, groups, exog_re)
    arrays = {"endog": y, "exog": X, "groups": g, "exog_re": Zre}
    bad, counts = bad_rows([(k, v) for k, v in arrays.items() if v is not None], len(y))
    report_missing(
        int(bad.sum()), len(y), counts, "raise" if exog_vc is not None else missing, 3, arrays
    )
    if bad.any():
        keep = ~bad
        y, X, g = y[keep], X[keep], g[keep]
        Zre = None if Zre is None else Zre[keep]
        index = None if index is None else index[keep]
    validation.check_not_empty(len(y), len(bad))
    gcodes, labels = groups_to_codes(g)
    if isinstance(exog_vc, Mapping):
        warnings.warn("Using deprecated variance components format", FutureWarning, stacklevel=3)
        exog_vc = convert_vc_dict(exog_vc, labels)
    vcs = vc_from_spec(exog_vc, gcodes, labels) if exog_vc is not None else []
    vcs = sorted(vcs, key=lambda v: v.name)
    gname = str(groups.name) if isinstance(groups, pd.Series) and groups.name else "Group"
    if Zre is None and not vcs:
        Zre, re_names, r_names = np.ones((len(y), 1)), ["Group Var"], ["(Intercept)"]
    else:
        if Zre is not None and re_names is None:
            re_names = [f"x_re{k + 1}" for k in range(Zre.shape[1])]
        r_names = list(re_names or [])
    re_display = list(re_names or [])
    design = Design(
        y=y,
        X=np.asfortranarray(X),
        terms=[],
        rows=[],
        fixed_names=list(xnames or exog_names(X)),
        response_name=yname[0] if yname else "y",
        row_index=index,
    )
    design = drop_redundant(design)
    layout = make_layout(design, gcodes, labels, gname, Zre, re_names, r_names, vcs, [])
    validation.check_has_random_terms(layout.terms())
    checks.check_random_terms(
        layout.terms(), len(y), rows=layout.rows(), stacklevel=3, nobs_vs_nre="warning"
    )
    if Zre is not None and re_names == ["Group Var"]:
        layout.re_names = ["Group"]  # parameter "Group Var", as statsmodels names it
    return design, layout, re_display, exog_vc if exog_vc is not None else VCSpec([], [], [])


def _read_arrays(endog, exog, groups, exog_re) -> tuple:
    """(y (n,), y's name, X (n, p), X's names, groups (n,), exog_re (n, k), its names, index)."""
    y, yname, index = as_matrix(endog, "endog")
    validation.check_not_empty(len(y), len(y))
    if y.shape[1] != 1:
        raise DataError(f"endog must be a single column, but has shape {np.shape(endog)}")
    X, xnames, xindex = as_matrix(exog, "exog")
    if groups is None:
        raise DataTypeError("groups is required: one label per row of endog")
    g = np.asarray(groups)
    Zre, re_names = (None, None) if exog_re is None else as_matrix(exog_re, "exog_re")[:2]
    validation.check_same_length(len(y), exog=X, groups=g, exog_re=Zre)
    validation.check_aligned(endog=endog, exog=exog, groups=groups, exog_re=exog_re)
    return y[:, 0], yname, X, xnames, g, Zre, re_names, index if index is not None else xindex


def drop_redundant(design: Design) -> Design:
    """Check y and X (`sparselme.data.checks.check_fixed`: magnitudes, an exact fit) and
    drop linearly dependent columns of X, with a warning naming them."""
    moments = ColumnMoments.of(np.column_stack([design.X, design.y]))
    dropped, _ = checks.check_fixed(
        moments, design.fixed_names, design.response_name, "the exog column", r_names=False
    )
    if not dropped:
        return design
    names = [design.fixed_names[j] for j in dropped]
    warnings.warn(
        f"fixed-effect model matrix is rank deficient so dropping {len(dropped)} "
        f"column{'s' if len(dropped) > 1 else ''}: {', '.join(names)}",
        RankDeficiencyWarning,
        stacklevel=4,
    )
    keep = [j for j in range(design.X.shape[1]) if j not in set(dropped)]
    return dataclasses.replace(
        design,
        X=np.asfortranarray(design.X[:, keep]),
        fixed_names=[design.fixed_names[j] for j in keep],
        dropped_columns=names,
    )


# ---- the formula API -------------------------------------------------------------------


def formula_groups(
    parsed: ParsedFormula, data: pd.DataFrame, groups, re_formula, vc_formula, subset
) -> tuple[pd.DataFrame, str | None, np.ndarray | None, str, str | None, list, BarTerm | None]:
    """(data, groups column, groups values, groups name, re_formula, remaining bar terms,
    the bar term that became groups and re_formula or None).

    ``groups`` is a column name or an array aligned with the rows of ``data``; ``subset``
    selects rows first. With a single bar term and no ``groups``, the bar's grouping
    factor is the groups and its left-hand side the ``re_formula`` (its covariance
    structure, if any, that of the re term).
    """
    garr = None if groups is None or isinstance(groups, str) else np.asarray(groups)
    if garr is not None and len(garr) != len(data):
        raise DataError(f"groups has {len(garr)} values, but the data have {len(data)} rows")
    validation.check_aligned(data=data, groups=groups)
    if subset is not None:
        mask = subset_mask(data, subset)
        data = data.loc[mask]
        garr = None if garr is None else garr[mask]
    bars = list(parsed.bars)
    gname = groups if isinstance(groups, str) else "Group"
    if groups is not None:
        return data, groups, garr, gname, re_formula, bars, None
    if re_formula is not None or vc_formula is not None:
        raise DataError("re_formula and vc_formula need groups=...")
    if not bars:
        raise DataError(
            "'groups' is required: pass groups=<column or array>, or write the "
            "random effects as lme4 bar terms such as (1 | g)"
        )
    if len(bars) > 1:
        return data, None, garr, gname, re_formula, bars, None
    bar = bars.pop()  # (lhs | g): statsmodels' groups=g, re_formula=lhs
    if len(bar.group) == 1:
        return data, bar.group[0], garr, bar.group_name, "~" + bar.lhs, bars, bar
    check_columns(data, set(bar.group))
    codes, levels = group_codes(data, bar.group)
    garr = np.asarray(levels, dtype=object)[codes]
    return data, None, garr, bar.group_name, "~" + bar.lhs, bars, bar


_COV_STRUCT = re.compile(r"^\s*(\w+)\s*(?:\(\s*(?:d\s*=\s*)?(\d+)\s*\))?\s*$")


def re_structure(
    cov_struct: str | None, bar: BarTerm | None, re_formula: str | None, gname: str
) -> BarTerm | None:
    """The bar term whose structure the re term takes: ``cov_struct`` (``"ar1"``,
    ``"cs"``, ``"rr(1)"`` ...) or the structure of the bar that became the groups."""
    if cov_struct is None:
        return bar if bar is not None and bar.covariance is not None else None
    m = _COV_STRUCT.match(str(cov_struct))
    name = m.group(1) if m else str(cov_struct)
    if m is None or name not in STRUCTURE_KEYWORDS or (m.group(2) and name != "rr"):
        raise FormulaError(
            f"cov_struct must be one of {', '.join(STRUCTURE_KEYWORDS)} (rr with its rank as "
            f"'rr(2)'), not {cov_struct!r}"
        )
    if bar is not None and bar.covariance is not None:
        raise FormulaError(
            f"cov_struct={cov_struct!r} and the structure {bar.covariance}() in the formula: "
            "give the structure once"
        )
    options = (("rank", int(m.group(2) or 2)),) if name == "rr" else ()
    lhs = (re_formula or "~1").strip().lstrip("~").strip()
    return BarTerm(lhs, (gname,), covariance=name, options=options)


def used_columns(
    parsed: ParsedFormula, bars: list, re_formula, vc_formula, groups, env: dict
) -> set[str]:
    """The data columns the model uses (whose missing values count); ``env``'s names are
    not columns."""
    needed = formula_vars(parsed.fixed_formula())
    for b in bars:
        needed |= formula_vars("~" + b.lhs) | set(b.group)
    if re_formula is not None and re_formula.strip().lstrip("~").strip() not in ("0", "1"):
        needed |= formula_vars("~" + re_formula.strip().lstrip("~"))
    for f in (vc_formula or {}).values():
        needed |= formula_vars("~" + f.strip().lstrip("~"))
    if isinstance(groups, str):
        needed.add(groups)
    return needed - set(env)


def formula_layout(
    design: Design,
    parsed: ParsedFormula,
    data: pd.DataFrame,
    gcodes: np.ndarray,
    labels: list[Any],
    gname: str,
    re_formula: str | None,
    vc_formula: Mapping[str, str] | None,
    no_default: bool,
    re_structure: BarTerm | None = None,
) -> tuple[Design, Layout, list[VCInfo]]:
    """(design in patsy's column order, layout, the vc_formula components).

    ``re_structure``: a bar term whose covariance structure the re term takes.
    """
    design = patsy_column_order(design, parsed.fixed)
    env = design.formula_env
    Zre, re_names, r_names = _re_design(re_formula, data, gname, no_default, env)
    vcs = [
        vc_from_formula(k, vc_formula[k], data, gcodes, labels, env)
        for k in sorted(vc_formula or {})
    ]
    bars = list(zip(design.terms, design.rows))
    layout = make_layout(
        design, gcodes, labels, gname, Zre, re_names, r_names, vcs, bars, re_structure
    )
    validation.check_has_random_terms(layout.terms(), parsed.text)
    pairs = zip(layout.terms(), layout.rows())
    unchecked = [(t, r) for t, r in pairs if not any(t is b for b in design.terms)]
    checks.check_random_terms(
        [t for t, _ in unchecked],
        design.nobs,
        rows=[r for _, r in unchecked],
        stacklevel=4,
        nobs_vs_nre="warning",  # statsmodels fits these
    )
    check_distinct_terms(layout.terms(), layout.rows())  # groups/re_formula/vc_formula, bars
    return design, layout, vcs


def _re_design(
    re_formula: str | None, data: pd.DataFrame, group_name: str, has_vc: bool, env: dict
):
    """(model (n, k) | None, statsmodels names, R-style names) of the re_formula."""
    n = len(data)
    if re_formula is None:
        if has_vc:
            return None, [], []
        return np.ones((n, 1)), [group_name], ["(Intercept)"]
    text = re_formula.strip().lstrip("~").strip()
    if text == "1":
        return np.ones((n, 1)), [group_name], ["(Intercept)"]
    mm = evaluate(text, data, env=env)
    cols = [str(c) for c in mm.columns]
    if not cols:
        return None, [], []
    return (
        np.asarray(mm, dtype=float),
        [c.replace("Intercept", group_name) for c in cols],
        [r_style_name(c) for c in cols],
    )


def patsy_column_order(design: Design, fixed: str) -> Design:
    """Reorder X's columns as patsy (statsmodels' formula engine) orders its terms.

    patsy groups terms by their set of numeric factors (the group without numeric
    factors first, then groups in order of appearance) and, within a group, sorts them
    stably by their number of factors.
    """
    spec = design.fixed_spec
    if spec is None:
        return design
    try:
        written = [str(t) for t in Formula(fixed, _ordering="none")]
        kinds = {name: state[0] for name, state in spec.encoder_state.items()}
        structure = {str(st.term): st for st in spec.structure}
    except Exception:  # an unusual spec: keep formulaic's order
        return design
    order = sorted(structure, key=lambda t: written.index(t) if t in written else len(written))
    buckets: dict[frozenset, list] = {}
    for name in order:
        factors = [f.expr for f in structure[name].term.factors if f.expr != "1"]
        numeric = frozenset(
            f for f in factors if getattr(kinds.get(f), "value", "") != "categorical"
        )
        buckets.setdefault(numeric, []).append((len(factors), name))
    keys = sorted(buckets, key=lambda b: len(b) > 0)  # stable: no-numeric bucket first
    cols = [
        c
        for b in keys
        for _, t in sorted(buckets[b], key=lambda x: x[0])
        for c in structure[t].columns
    ]
    pos = {c: i for i, c in enumerate(design.fixed_names)}
    perm = [pos[c] for c in cols if c in pos]
    if len(perm) != len(pos) or perm == list(range(len(perm))):
        return design
    return dataclasses.replace(
        design,
        X=np.asfortranarray(design.X[:, perm]),
        fixed_names=[design.fixed_names[j] for j in perm],
    )
