"""Variance components (``vc_formula`` entries, ``exog_vc``) as engine terms."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..data.design import coded_term
from ..engine.rows import TermRows
from ..engine.terms import RandomEffectsTerm
from ..errors import DataError
from .inputs import evaluate, group_rows
from .layout import VCInfo
from .params import VCSpec


def vc_from_formula(
    name: str,
    formula: str,
    data: pd.DataFrame,
    gcodes: np.ndarray,
    labels: list[Any],
    env: dict | None = None,
) -> VCInfo:
    """A vc_formula entry, evaluated within each group as statsmodels does.

    Without an intercept and with full-rank (indicator) coding of factors, evaluating once
    on all rows and keeping each group's nonzero columns is the same thing and much
    faster; otherwise the formula is evaluated group by group.
    """
    mm = evaluate(formula, data, sparse=True, env=env)
    cols = [str(c) for c in mm.model_spec.column_names]
    if "Intercept" in cols or any("[T." in c for c in cols):

        def design_of(g: int, idx: np.ndarray) -> tuple[np.ndarray, list]:
            sub = evaluate(formula, data.iloc[idx], env=env)
            return np.asarray(sub, dtype=float), list(sub.columns)

        entries = _group_entries(gcodes, len(labels), design_of)
        return vc_term(name, *entries, gcodes, labels)
    coo = sp.coo_matrix(mm)
    keep = coo.data != 0
    rows, cc, vals = coo.row[keep], coo.col[keep], coo.data[keep]
    width = max(len(cols), 1)
    pairs, inv = np.unique(gcodes[rows].astype(np.int64) * width + cc, return_inverse=True)
    pair_names = [cols[int(c)] for c in pairs % width]
    return vc_term(name, rows, pairs // width, pair_names, inv, vals, gcodes, labels)


def vc_from_spec(spec: VCSpec, gcodes: np.ndarray, labels: list[Any]) -> list[VCInfo]:
    """Variance components given as a `VCSpec` (array API)."""
    out = []
    for k, name in enumerate(spec.names):

        def design_of(g: int, idx: np.ndarray, k: int = k) -> tuple[np.ndarray, Any]:
            mat = spec.mats[k][g]
            mat = mat.toarray() if sp.issparse(mat) else np.asarray(mat, dtype=float)
            mat = mat.reshape(len(idx), -1)
            cn = spec.colnames[k][g] if spec.colnames else None
            return mat, range(mat.shape[1]) if cn is None else cn

        entries = _group_entries(gcodes, len(labels), design_of)
        out.append(vc_term(str(name), *entries, gcodes, labels))
    return out


def convert_vc_dict(exog_vc: Mapping, labels: list[Any]) -> VCSpec:
    """statsmodels' deprecated dict-of-dicts ``exog_vc[name][group] = matrix``."""
    names = sorted(exog_vc)
    mats, colnames = [], []
    for name in names:
        comp = exog_vc[name]
        mats.append([comp[g] for g in labels])
        colnames.append(
            [list(getattr(comp[g], "columns", range(np.shape(comp[g])[1]))) for g in labels]
        )
    return VCSpec(names, colnames, mats)


def _group_entries(
    gcodes: np.ndarray, n_groups: int, design_of: Callable[[int, np.ndarray], tuple]
) -> tuple[np.ndarray, np.ndarray, list[str], np.ndarray, np.ndarray]:
    """Nonzeros of per-group designs, in `vc_term`'s arguments.

    ``design_of(g, rows)`` gives group g's design (n_g, c) and its c column names.
    Returns (rows, pair_group, pair_names, pair_of_entry, vals).
    """
    rows_l, pair_group, names, inv_l, vals_l = [], [], [], [], []
    for g, idx in enumerate(group_rows(gcodes, n_groups)):
        mat, colnames = design_of(g, idx)
        r, c = np.nonzero(mat)
        base = len(pair_group)
        pair_group += [g] * mat.shape[1]
        names += [str(x) for x in colnames]
        rows_l.append(idx[r])
        inv_l.append(base + c)
        vals_l.append(mat[r, c])
    return (
        np.concatenate(rows_l),
        np.asarray(pair_group, dtype=np.int64),
        names,
        np.concatenate(inv_l),
        np.concatenate(vals_l),
    )


def vc_term(
    name: str,
    rows: np.ndarray,
    pair_group: np.ndarray,
    pair_names: list[str],
    pair_of_entry: np.ndarray,
    vals: np.ndarray,
    gcodes: np.ndarray,
    group_labels: list[Any],
) -> VCInfo:
    """One variance component as an engine term.

    Entries (rows[e], pair_of_entry[e], vals[e]) are the nonzeros of the component's
    design; a "pair" is one column of the component within one group (pair_group gives
    the group, pairs sorted by group). With at most one nonzero per row the pairs are the
    levels of a k = 1 term; otherwise the term is "scalar" over the groups with k = the
    largest number of columns in a group (missing columns are zero).
    """
    n, n_groups, n_pairs = len(gcodes), len(group_labels), len(pair_group)
    colnames: dict[int, list[str]] = {}
    for p, g in enumerate(pair_group):
        colnames.setdefault(int(g), []).append(pair_names[p])
    if n_pairs == 0:
        raise DataError(f"variance component {name!r} has an all-zero design")
    first = np.searchsorted(pair_group, np.arange(n_groups))
    if np.bincount(rows, minlength=n).max() <= 1:
        term, term_rows = _nested_term(
            name, rows, pair_group, pair_names, pair_of_entry, vals, gcodes, group_labels, first
        )
        return VCInfo(name, term, term_rows, colnames, pair_group.astype(np.intp))
    local = np.arange(n_pairs) - first[pair_group]
    model = np.zeros((n, int(local.max()) + 1))
    model[rows, local[pair_of_entry]] = vals
    term, term_rows = coded_term(
        name,
        [f"{name}{j}" for j in range(model.shape[1])],
        pd.Index([str(g) for g in group_labels], name=name),
        gcodes,
        model,
        covariance="scalar",
        group_vars=(name,),
    )
    return VCInfo(name, term, term_rows, colnames, np.arange(n_groups))


def _nested_term(
    name, rows, pair_group, pair_names, pair_of_entry, vals, gcodes, group_labels, first
) -> tuple[RandomEffectsTerm, TermRows]:
    """A k = 1 term whose levels are the pairs (one nonzero per row at most).

    Rows without an entry point at a level of their own group, with a zero model.
    """
    own = np.minimum(first, len(pair_group) - 1)[gcodes]
    codes = np.where(pair_group[own] == gcodes, own, 0).astype(np.intp)
    model = np.zeros(len(gcodes))
    codes[rows] = pair_of_entry
    model[rows] = vals
    levels = pd.Index(
        [f"{group_labels[g]}:{pair_names[p]}" for p, g in enumerate(pair_group)], name=name
    )
    indicator = bool(np.all(vals == 1.0))
    columns = ("(Intercept)",) if indicator else (name,)
    return coded_term(
        name, columns, levels, codes, model[:, None], covariance="scalar", group_vars=(name,)
    )
