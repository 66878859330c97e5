"""statsmodels' ``MixedLM`` API on the sparse engine: a drop-in replacement.

``mixedlm(formula, data, groups=..., re_formula=..., vc_formula=...)`` and
``MixedLM(endog, exog, groups, exog_re, exog_vc)`` compile statsmodels' group-based
random-effects specification to the engine's global-Z terms:

* ``re_formula`` (or ``exog_re``) → one unstructured term over the groups;
* each ``vc_formula`` entry (or ``exog_vc`` component) → one term with a single shared
  variance: an indicator design such as ``"0 + C(class)"`` becomes a ``(1 | group:class)``
  term, any other design a "scalar" term whose k columns are the component's columns
  within each group;
* lme4 bar terms in the formula are added as they are, so crossed designs go through the
  same call. With a single bar term and no ``groups``, the bar's grouping factor is the
  groups and its left-hand side the ``re_formula``; with several bar terms the whole data
  set is one group (statsmodels' idiom for crossed effects).

The results carry statsmodels' names with statsmodels' meaning: ``params`` and ``bse`` on
statsmodels' scale (variance parameters divided by ``scale``), standard errors from the
Hessian of statsmodels' profile log-likelihood in its parametrization, ``aic``/``bic`` NaN
under REML, and a summary in statsmodels' layout. The Hessian and the conditional
covariances are computed group by group in the random-effects space (no n×n matrix).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import math
import re
import warnings
from collections.abc import Mapping, Sequence
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from formulaic import Formula, model_matrix
from scipy import stats

from .design import Design, build_design, group_codes, prepare_frame, r_style_name
from .design import redundant_columns as _redundant_columns
from .errors import (
    DataError,
    MissingDataError,
    RankDeficiencyWarning,
    SingularFitWarning,
    UnknownColumnError,
)
from .formula.parse import parse_formula
from .model import LinearMixedModel
from .optimize import (
    SINGULAR_TOL,
    OptSummary,
    check_convergence,
    finite_difference_derivatives,
    minimize_bobyqa,
    restart_bobyqa,
    snap_to_boundary,
)
from .results import MixedLMResults, lme4_summary
from .terms import RandomEffectsTerm

__all__ = [
    "MixedLM",
    "MixedLMParams",
    "MixedLMCompatResults",
    "VCSpec",
    "ContrastResults",
    "mixedlm",
]

# Dense per-group algebra is skipped (variance-parameter SEs become NaN) beyond this many
# stored numbers or flops: B groups of up to m random effects cost B·m² and B·m³.
_MAX_BLOCK_ENTRIES = 4_000_000
_MAX_BLOCK_FLOPS = 2e9
# statsmodels' fit() options we accept and ignore (our optimizer is BOBYQA on θ).
_IGNORED_FIT_KWARGS = ("gtol", "maxiter", "eps", "maxcor", "ftol", "tol", "disp", "maxls")
_ENGINE_FIT_KWARGS = (
    "maxeval",
    "ftol_abs",
    "xtol_abs",
    "check_derivatives",
    "max_restarts",
    "keep_log",
)


# ======================================================================================
# Parameters
# ======================================================================================


class MixedLMParams:
    """A parameter state: fixed effects, random-effects covariance, variance components.

    As in statsmodels, ``cov_re`` and ``vcomp`` are on the profile scale (divided by the
    residual variance). ``k_re2 = k_re(k_re+1)/2`` covariance entries are packed as the
    lower triangle of ``cov_re`` row by row (or of its Cholesky factor with ``use_sqrt``).
    """

    def __init__(self, k_fe: int, k_re: int, k_vc: int):
        self.k_fe = k_fe
        self.k_re = k_re
        self.k_re2 = k_re * (k_re + 1) // 2
        self.k_vc = k_vc
        self.k_tot = k_fe + self.k_re2 + k_vc
        self._ix = np.tril_indices(k_re)
        self.fe_params = np.zeros(k_fe)
        self.cov_re = np.eye(k_re)
        self.vcomp = np.ones(k_vc)

    @staticmethod
    def from_packed(
        params: np.ndarray, k_fe: int, k_re: int, use_sqrt: bool, has_fe: bool
    ) -> MixedLMParams:
        """Unpack ``[fe_params,] tril(cov_re or its Cholesky factor), vcomp (or sqrt)``."""
        params = np.asarray(params, dtype=float)
        k_re2 = k_re * (k_re + 1) // 2
        k_vc = len(params) - k_re2 - (k_fe if has_fe else 0)
        out = MixedLMParams(k_fe, k_re, k_vc)
        at = 0
        if has_fe:
            out.fe_params = params[:k_fe].copy()
            at = k_fe
        tri = np.zeros((k_re, k_re))
        tri[out._ix] = params[at : at + k_re2]
        if use_sqrt:
            out.cov_re = tri @ tri.T
        else:
            out.cov_re = tri + tri.T - np.diag(np.diag(tri))
        vc = params[at + k_re2 :]
        out.vcomp = vc**2 if use_sqrt else vc.copy()
        return out

    @staticmethod
    def from_components(
        fe_params: np.ndarray | None = None,
        cov_re: np.ndarray | None = None,
        cov_re_sqrt: np.ndarray | None = None,
        vcomp: np.ndarray | None = None,
    ) -> MixedLMParams:
        """Build from components; ``cov_re_sqrt`` is a lower-triangular factor of cov_re."""
        fe = np.zeros(0) if fe_params is None else np.asarray(fe_params, dtype=float)
        vc = np.zeros(0) if vcomp is None else np.asarray(vcomp, dtype=float)
        if cov_re is None and cov_re_sqrt is None:
            cov = np.zeros((0, 0))
        elif cov_re_sqrt is not None:
            f = np.asarray(cov_re_sqrt, dtype=float)
            cov = f @ f.T
        else:
            cov = np.asarray(cov_re, dtype=float)
        out = MixedLMParams(len(fe), cov.shape[0], len(vc))
        out.fe_params, out.cov_re, out.vcomp = fe, cov, vc
        return out

    def copy(self) -> MixedLMParams:
        out = MixedLMParams(self.k_fe, self.k_re, self.k_vc)
        out.fe_params = np.array(self.fe_params, dtype=float)
        out.cov_re = np.array(self.cov_re, dtype=float)
        out.vcomp = np.array(self.vcomp, dtype=float)
        return out

    def get_packed(self, use_sqrt: bool, has_fe: bool = False) -> np.ndarray:
        """Pack into one vector (the inverse of :meth:`from_packed`)."""
        if self.k_re:
            cov = np.asarray(self.cov_re, dtype=float)
            if use_sqrt:
                try:
                    tri = np.linalg.cholesky(cov)
                except np.linalg.LinAlgError:
                    tri = np.diag(np.sqrt(np.maximum(np.diag(cov), 0)))
            else:
                tri = cov
            cpa = tri[self._ix]
        else:
            cpa = np.zeros(0)
        vc = np.asarray(self.vcomp, dtype=float)
        vc = np.sqrt(vc) if use_sqrt else vc
        parts = [np.asarray(self.fe_params, dtype=float)] if has_fe else []
        return np.concatenate([*parts, cpa, vc])

    def __repr__(self) -> str:
        return f"<MixedLMParams k_fe={self.k_fe} k_re={self.k_re} k_vc={self.k_vc}>"


class VCSpec:
    """Variance-component structure for the array API.

    ``mats[k][i]`` is the design (n_i, c) of component ``names[k]`` in group i (groups in
    sorted order) and ``colnames[k][i]`` its column names.
    """

    def __init__(self, names: list[str], colnames: list[list[list[str]]], mats: list[list]):
        self.names = list(names)
        self.colnames = colnames
        self.mats = mats


# ======================================================================================
# The statsmodels layout of one model
# ======================================================================================


@dataclasses.dataclass
class _VCInfo:
    """A variance component: its engine term and, per group, its column names."""

    name: str
    term: RandomEffectsTerm
    colnames: dict[int, list[str]]  # group index → names of its columns, in b order
    level_group: np.ndarray | None  # (L,) group of each term level (None: not nested)


@dataclasses.dataclass
class _Layout:
    """Where statsmodels' parameters sit among the engine's terms."""

    fe_names: list[str]
    re_names: list[str]  # statsmodels' names of the exog_re columns
    vc: list[_VCInfo]
    extra: list[tuple[str, RandomEffectsTerm]]  # bar terms with k > 1: (label, term)
    group_labels: list[Any]
    group_codes: np.ndarray  # (n,)
    group_name: str
    re_term: RandomEffectsTerm | None

    @property
    def k_re(self) -> int:
        return len(self.re_names)

    @property
    def k_vc(self) -> int:
        return len(self.vc)

    def terms(self) -> list[RandomEffectsTerm]:
        out = [] if self.re_term is None else [self.re_term]
        return out + [v.term for v in self.vc] + [t for _, t in self.extra]

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
        for _, t in self.extra:
            specs += [(s, a, b) for a, b in zip(*np.tril_indices(t.k))]
            s += 1
        return specs

    def param_names(self) -> list[str]:
        names = list(self.fe_names) + _cov_names(self.re_names)
        names += [f"{v.name} Var" for v in self.vc]
        for label, t in self.extra:
            names += _cov_names([_column_label(label, c) for c in t.columns])
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


def _column_label(group: str, column: str) -> str:
    """Label of a bar-term column: the group for an intercept, else ``column|group``."""
    return group if column == "(Intercept)" else f"{column}|{group}"


# ======================================================================================
# Building terms from statsmodels' specification
# ======================================================================================


def _groups_to_codes(groups: np.ndarray) -> tuple[np.ndarray, list[Any]]:
    """Codes (n,) into the sorted distinct labels, as statsmodels orders groups."""
    values = np.asarray(groups)
    if values.ndim != 1:
        raise DataError(f"groups must be one-dimensional, got shape {values.shape}")
    try:
        codes, uniques = pd.factorize(values, sort=True)
    except TypeError as exc:
        raise DataError(f"groups labels cannot be sorted: {exc}") from None
    if (codes < 0).any():
        raise MissingDataError(f"groups has {int((codes < 0).sum())} missing labels")
    labels = [u.item() if isinstance(u, np.generic) else u for u in uniques]
    return codes.astype(np.intp), labels


def _formula_vars(text: str) -> set[str]:
    try:
        return {str(v) for v in Formula(text).required_variables}
    except Exception:
        return set()


def _evaluate(text: str, data: pd.DataFrame, sparse: bool = False):
    """A one-sided formula evaluated with formulaic (pandas categoricals kept in order)."""
    rhs = text.strip()
    rhs = rhs[1:] if rhs.startswith("~") else rhs
    needed = _formula_vars("~" + rhs)
    missing = [v for v in needed if v not in data.columns]
    if missing:
        raise UnknownColumnError(missing[0], data.columns)
    frame, context = prepare_frame(data, needed)
    return model_matrix(
        "~" + rhs, frame, context=context, na_action="ignore", output="sparse" if sparse else None
    )


def _re_design(re_formula: str | None, data: pd.DataFrame, group_name: str, has_vc: bool):
    """(model (n, k) | None, statsmodels names, R-style names) of the re_formula."""
    n = len(data)
    if re_formula is None:
        if has_vc:
            return None, [], []
        return np.ones((n, 1)), [group_name], ["(Intercept)"]
    text = re_formula.strip().lstrip("~").strip()
    if text == "1":
        return np.ones((n, 1)), [group_name], ["(Intercept)"]
    mm = _evaluate(text, data)
    cols = [str(c) for c in mm.columns]
    if not cols:
        return None, [], []
    return (
        np.asarray(mm, dtype=float),
        [c.replace("Intercept", group_name) for c in cols],
        [r_style_name(c) for c in cols],
    )


def _vc_term(
    name: str,
    rows: np.ndarray,
    pair_group: np.ndarray,
    pair_names: list[str],
    pair_of_entry: np.ndarray,
    vals: np.ndarray,
    gcodes: np.ndarray,
    group_labels: list[Any],
) -> _VCInfo:
    """One variance component as an engine term.

    Entries (rows[e], pair_of_entry[e], vals[e]) are the nonzeros of the component's
    design; a "pair" is one column of the component within one group (pair_group gives
    the group, pairs sorted by group). With at most one nonzero per row the pairs are the
    levels of a k = 1 term; otherwise the term is "scalar" over the groups with k = the
    largest number of columns in a group (missing columns are zero).
    """
    n, n_groups, n_pairs = len(gcodes), len(group_labels), len(pair_group)
    colnames: dict[int, list[str]] = {}
    first = np.searchsorted(pair_group, np.arange(n_groups))
    for p, g in enumerate(pair_group):
        colnames.setdefault(int(g), []).append(pair_names[p])
    if n_pairs == 0:
        raise DataError(f"variance component {name!r} has an all-zero design")
    per_row = np.bincount(rows, minlength=n)
    if per_row.max() <= 1:
        # rows without an entry point at a level of their own group, with a zero model
        own = np.minimum(first, n_pairs - 1)[gcodes]
        codes = np.where(pair_group[own] == gcodes, own, 0).astype(np.intp)
        model = np.zeros(n)
        codes[rows] = pair_of_entry
        model[rows] = vals
        levels = pd.Index(
            [f"{group_labels[g]}:{pair_names[p]}" for p, g in enumerate(pair_group)], name=name
        )
        indicator = bool(np.all(vals == 1.0))
        term = RandomEffectsTerm(
            name=name,
            columns=("(Intercept)",) if indicator else (name,),
            levels=levels,
            codes=codes,
            model=model[:, None],
            covariance="scalar",
            group_vars=(name,),
        )
        return _VCInfo(name, term, colnames, pair_group.astype(np.intp))
    local = np.arange(n_pairs) - first[pair_group]
    k = int(local.max()) + 1
    model = np.zeros((n, k))
    model[rows, local[pair_of_entry]] = vals
    term = RandomEffectsTerm(
        name=name,
        columns=tuple(f"{name}{j}" for j in range(k)),
        levels=pd.Index([str(g) for g in group_labels], name=name),
        codes=gcodes,
        model=model,
        covariance="scalar",
        group_vars=(name,),
    )
    return _VCInfo(name, term, colnames, np.arange(n_groups))


def _vc_from_formula(
    name: str, formula: str, data: pd.DataFrame, gcodes: np.ndarray, labels: list[Any]
) -> _VCInfo:
    """A vc_formula entry, evaluated within each group as statsmodels does.

    Without an intercept and with full-rank (indicator) coding of factors, evaluating once
    on all rows and keeping each group's nonzero columns is the same thing and much
    faster; otherwise the formula is evaluated group by group.
    """
    G = len(labels)
    mm = _evaluate(formula, data, sparse=True)
    cols = [str(c) for c in mm.model_spec.column_names]
    per_group = "Intercept" in cols or any("[T." in c for c in cols)
    if not per_group:
        coo = sp.coo_matrix(mm)
        keep = coo.data != 0
        rows, cc, vals = coo.row[keep], coo.col[keep], coo.data[keep]
        key = gcodes[rows].astype(np.int64) * max(len(cols), 1) + cc
        pairs, inv = np.unique(key, return_inverse=True)
        pair_group = pairs // max(len(cols), 1)
        pair_names = [cols[int(c)] for c in pairs % max(len(cols), 1)]
    else:
        rows_l, pg, names, inv_l, vals_l = [], [], [], [], []
        order = np.argsort(gcodes, kind="stable")
        bounds = np.searchsorted(gcodes[order], np.arange(G + 1))
        for g in range(G):
            idx = order[bounds[g] : bounds[g + 1]]
            sub = _evaluate(formula, data.iloc[idx])
            mat = np.asarray(sub, dtype=float)
            r, c = np.nonzero(mat)
            base = len(pg)
            pg += [g] * mat.shape[1]
            names += [str(x) for x in sub.columns]
            rows_l.append(idx[r])
            inv_l.append(base + c)
            vals_l.append(mat[r, c])
        rows = np.concatenate(rows_l)
        inv = np.concatenate(inv_l)
        vals = np.concatenate(vals_l)
        pair_group = np.asarray(pg, dtype=np.int64)
        pair_names = names
    return _vc_term(name, rows, pair_group, pair_names, inv, vals, gcodes, labels)


def _vc_from_spec(spec: VCSpec, gcodes: np.ndarray, labels: list[Any]) -> list[_VCInfo]:
    """Variance components given as a :class:`VCSpec` (array API)."""
    G = len(labels)
    order = np.argsort(gcodes, kind="stable")
    bounds = np.searchsorted(gcodes[order], np.arange(G + 1))
    out = []
    for k, name in enumerate(spec.names):
        rows_l, pg, names, inv_l, vals_l = [], [], [], [], []
        for g in range(G):
            idx = order[bounds[g] : bounds[g + 1]]
            mat = spec.mats[k][g]
            mat = mat.toarray() if sp.issparse(mat) else np.asarray(mat, dtype=float)
            mat = mat.reshape(len(idx), -1)
            r, c = np.nonzero(mat)
            base = len(pg)
            pg += [g] * mat.shape[1]
            cn = spec.colnames[k][g] if spec.colnames else None
            cn = range(mat.shape[1]) if cn is None else cn
            names += [str(x) for x in cn]
            rows_l.append(idx[r])
            inv_l.append(base + c)
            vals_l.append(mat[r, c])
        info = _vc_term(
            str(name),
            np.concatenate(rows_l),
            np.asarray(pg, dtype=np.int64),
            names,
            np.concatenate(inv_l),
            np.concatenate(vals_l),
            gcodes,
            labels,
        )
        out.append(info)
    return out


def _convert_vc_dict(exog_vc: Mapping, labels: list[Any]) -> VCSpec:
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


def _exog_names(X: np.ndarray) -> list[str]:
    """statsmodels' default names: 'const' for a constant column, x1, x2, ... otherwise."""
    p = X.shape[1]
    if p == 0:
        return []
    const = np.flatnonzero(np.ptp(X, axis=0) == 0) if len(X) else np.array([], dtype=int)
    if const.size:
        names = [f"x{i}" for i in range(1, p)]
        names.insert(int(const[0]), "const")
        return names
    return [f"x{i}" for i in range(1, p + 1)]


def _as_matrix(a, what: str) -> tuple[np.ndarray, list[str] | None, pd.Index | None]:
    """Array-like → (values (n, k), column names or None, row index or None)."""
    if isinstance(a, pd.DataFrame):
        return a.to_numpy(dtype=float), [str(c) for c in a.columns], a.index
    if isinstance(a, pd.Series):
        name = None if a.name is None else [str(a.name)]
        return a.to_numpy(dtype=float)[:, None], name, a.index
    try:
        arr = np.asarray(a, dtype=float)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{what} must be numeric: {exc}") from None
    return (arr[:, None] if arr.ndim == 1 else arr), None, None


def _bad_rows(values: Sequence[np.ndarray]) -> np.ndarray:
    bad = np.zeros(len(values[0]), dtype=bool)
    for v in values:
        v = np.asarray(v)
        if v.dtype.kind in "fc":
            bad |= ~np.isfinite(v).reshape(len(v), -1).all(axis=1)
        elif v.dtype.kind == "O":
            bad |= pd.isna(pd.DataFrame(v.reshape(len(v), -1))).any(axis=1).to_numpy()
    return bad


# ======================================================================================
# The model
# ======================================================================================


class MixedLM:
    """statsmodels' linear mixed model, fitted by the sparse engine.

    ``MixedLM(endog, exog, groups, exog_re=None, exog_vc=None)``: ``exog_re`` defaults to a
    random intercept per group; ``exog_vc`` is a :class:`VCSpec` (or statsmodels'
    deprecated dict of dicts). Use :meth:`from_formula` (``mixedlm``) for formulas.
    """

    def __init__(
        self,
        endog,
        exog,
        groups,
        exog_re=None,
        exog_vc=None,
        use_sqrt: bool = True,
        missing: str = "none",
        **kwargs,
    ):
        allowed = {"missing_idx", "model_spec", "formula", "_prebuilt"}
        bad = set(kwargs) - allowed
        if bad:
            raise ValueError(f"argument {sorted(bad)[0]} not permitted for MixedLM initialization")
        self.use_sqrt = use_sqrt
        self.reml = True
        prebuilt = kwargs.get("_prebuilt")
        if prebuilt is not None:
            self._init_from(*prebuilt)
            return
        self._init_arrays(endog, exog, groups, exog_re, exog_vc, missing)

    # ---- construction -------------------------------------------------------------------
    def _init_arrays(self, endog, exog, groups, exog_re, exog_vc, missing: str) -> None:
        y, yname, index = _as_matrix(endog, "endog")
        y = y[:, 0]
        X, xnames, xindex = _as_matrix(exog, "exog")
        index = index if index is not None else xindex
        g = np.asarray(groups)
        if exog_re is not None:
            Zre, re_names, _ = _as_matrix(exog_re, "exog_re")
        else:
            Zre, re_names = None, None
        arrays = [y, X, g] + ([Zre] if Zre is not None else [])
        if len({len(a) for a in arrays}) != 1:
            raise DataError("endog, exog, groups and exog_re must have the same number of rows")
        bad = _bad_rows(arrays)
        if bad.any():
            if missing != "drop" or exog_vc is not None:
                raise MissingDataError(
                    f"{int(bad.sum())} of {len(y)} rows have missing or non-finite values; "
                    "pass missing='drop' to drop them"
                )
            warnings.warn(f"dropped {int(bad.sum())} rows with missing values", stacklevel=3)
            keep = ~bad
            y, X, g = y[keep], X[keep], g[keep]
            Zre = None if Zre is None else Zre[keep]
            index = None if index is None else index[keep]
        gcodes, labels = _groups_to_codes(g)
        if isinstance(exog_vc, Mapping):
            warnings.warn(
                "Using deprecated variance components format", FutureWarning, stacklevel=3
            )
            exog_vc = _convert_vc_dict(exog_vc, labels)
        vcs = _vc_from_spec(exog_vc, gcodes, labels) if exog_vc is not None else []
        order = sorted(range(len(vcs)), key=lambda i: vcs[i].name)
        vcs = [vcs[i] for i in order]
        xnames = xnames or _exog_names(X)
        gname = str(groups.name) if isinstance(groups, pd.Series) and groups.name else "Group"
        if Zre is None and not vcs:
            Zre, re_names, r_names = np.ones((len(y), 1)), ["Group Var"], ["(Intercept)"]
            self._re_display = ["Group Var"]
        else:
            if Zre is not None and re_names is None:
                re_names = [f"x_re{k + 1}" for k in range(Zre.shape[1])]
            r_names = list(re_names or [])
            self._re_display = list(re_names or [])
        design = Design(
            y=y,
            X=np.asfortranarray(X),
            terms=[],
            fixed_names=list(xnames),
            response_name=yname[0] if yname else "y",
            row_index=index,
        )
        design = _drop_redundant(design)
        layout = _make_layout(design, gcodes, labels, gname, Zre, re_names, r_names, vcs, [])
        if Zre is not None and re_names == ["Group Var"]:
            layout.re_names = ["Group"]  # parameter "Group Var", as statsmodels names it
        self._init_from(design, layout, None)
        self.exog_vc = exog_vc if exog_vc is not None else VCSpec([], [], [])

    def _init_from(self, design: Design, layout: _Layout, formula: str | None) -> None:
        self._base_design = design
        self.layout = layout
        self.formula = formula
        if not hasattr(self, "_re_display"):
            self._re_display = list(layout.re_names)
        self._engines: dict[bool, LinearMixedModel] = {}
        self._diagonal = False

    @classmethod
    def from_formula(
        cls,
        formula: str,
        data: pd.DataFrame,
        re_formula: str | None = None,
        vc_formula: Mapping[str, str] | None = None,
        subset=None,
        use_sparse: bool = False,
        missing: str = "none",
        *args,
        groups=None,
        **kwargs,
    ) -> MixedLM:
        """statsmodels' ``MixedLM.from_formula`` (``mixedlm``); lme4 bar terms allowed.

        ``groups`` is a column name or an array aligned with the rows of ``data``.
        ``subset`` (boolean mask or index labels) selects rows before anything else.
        """
        if args:
            raise TypeError("MixedLM.from_formula takes no further positional arguments")
        kwargs.pop("eval_env", None)
        from .distributed import is_streamable, mixedlm_streamed

        if is_streamable(data):  # a Parquet path, pyarrow Dataset or Dask DataFrame: out of core
            return mixedlm_streamed(
                formula, data, re_formula, vc_formula, subset, missing, groups=groups, **kwargs
            )
        if kwargs:
            raise TypeError(f"unexpected argument {sorted(kwargs)[0]!r}")
        if not isinstance(data, pd.DataFrame):
            data = pd.DataFrame(data)
        parsed = parse_formula(formula)
        garr = None if groups is None or isinstance(groups, str) else np.asarray(groups)
        if garr is not None and len(garr) != len(data):
            raise DataError(f"groups has {len(garr)} values, but the data have {len(data)} rows")
        if subset is not None:
            mask = _subset_mask(data, subset)
            data = data.loc[mask]
            garr = None if garr is None else garr[mask]
        bars = list(parsed.bars)
        gname = groups if isinstance(groups, str) else "Group"
        if groups is None:
            if re_formula is not None or vc_formula is not None:
                raise DataError("re_formula and vc_formula need groups=...")
            if not bars:
                raise DataError(
                    "'groups' is required: pass groups=<column or array>, or write the "
                    "random effects as lme4 bar terms such as (1 | g)"
                )
            if len(bars) == 1:  # (lhs | g): statsmodels' groups=g, re_formula=lhs
                bar = bars.pop()
                re_formula = "~" + bar.lhs
                gname = bar.group_name
                if len(bar.group) == 1:
                    groups = bar.group[0]
                else:
                    _check_columns(data, set(bar.group))
                    codes, levels = group_codes(data, bar.group)
                    garr = np.asarray(levels, dtype=object)[codes]
        # rows: missing values in anything the model uses
        needed = _formula_vars(parsed.fixed_formula())
        for b in bars:
            needed |= _formula_vars("~" + b.lhs) | set(b.group)
        if re_formula is not None and re_formula.strip().lstrip("~").strip() not in ("0", "1"):
            needed |= _formula_vars("~" + re_formula.strip().lstrip("~"))
        for f in (vc_formula or {}).values():
            needed |= _formula_vars("~" + f.strip().lstrip("~"))
        if isinstance(groups, str):
            needed.add(groups)
        _check_columns(data, needed)
        data, garr = _handle_missing(data, needed, garr, missing)
        if isinstance(groups, str):
            garr = data[groups].to_numpy()
        if garr is None:
            garr = np.ones(len(data), dtype=np.int64)
        gcodes, labels = _groups_to_codes(garr)
        design = build_design(dataclasses.replace(parsed, bars=tuple(bars)), data, missing="raise")
        design = _patsy_column_order(design, parsed.fixed)
        no_default = bool(vc_formula) or (groups is None and bool(bars))
        Zre, re_names, r_names = _re_design(re_formula, data, gname, no_default)
        vcs = [
            _vc_from_formula(k, vc_formula[k], data, gcodes, labels)
            for k in sorted(vc_formula or {})
        ]
        layout = _make_layout(
            design, gcodes, labels, gname, Zre, re_names, r_names, vcs, list(design.terms)
        )
        model = cls(None, None, None, _prebuilt=(design, layout, formula))
        model.exog_vc = VCSpec([v.name for v in vcs], [], [])
        model.data_frame = data
        return model

    # ---- statsmodels' model attributes --------------------------------------------------
    @property
    def endog(self) -> np.ndarray:
        return self.design.y

    @property
    def exog(self) -> np.ndarray:
        return self.design.X

    @property
    def groups(self) -> np.ndarray:
        labels = np.asarray(self.layout.group_labels, dtype=object)
        return labels[self.layout.group_codes]

    @property
    def exog_re(self) -> np.ndarray | None:
        t = self.layout.re_term
        return None if t is None else t.model

    @property
    def exog_names(self) -> list[str]:
        return list(self.design.fixed_names)

    @property
    def endog_names(self) -> str:
        return self.design.response_name

    @property
    def exog_re_names(self) -> list[str]:
        return list(self._re_display)

    @property
    def param_names(self) -> list[str]:
        return self.layout.param_names()

    @property
    def group_labels(self) -> list[Any]:
        return list(self.layout.group_labels)

    @property
    def n_groups(self) -> int:
        return len(self.layout.group_labels)

    @property
    def row_indices(self) -> dict[Any, np.ndarray]:
        codes = self.layout.group_codes
        order = np.argsort(codes, kind="stable")
        bounds = np.searchsorted(codes[order], np.arange(self.n_groups + 1))
        return {g: order[bounds[i] : bounds[i + 1]] for i, g in enumerate(self.layout.group_labels)}

    @property
    def nobs(self) -> int:
        return self.design.nobs

    n_totobs = nobs

    @property
    def k_fe(self) -> int:
        return self.design.X.shape[1]

    @property
    def k_re(self) -> int:
        return self.layout.k_re

    @property
    def k_re2(self) -> int:
        return self.k_re * (self.k_re + 1) // 2

    @property
    def k_vc(self) -> int:
        return self.layout.k_vc

    @property
    def k_params(self) -> int:
        return self.k_fe + self.k_re2

    # ---- the engine behind it -------------------------------------------------------------
    def _engine_for(self, diagonal: bool) -> LinearMixedModel:
        """The engine model: the re term unstructured, or diagonal (independent effects)."""
        if diagonal not in self._engines:
            terms = self.layout.terms()
            if diagonal and self.layout.re_term is not None:
                t = self.layout.re_term
                terms = [dataclasses.replace(t, covariance="diagonal")] + terms[1:]
            design = dataclasses.replace(self._base_design, terms=terms)
            self._engines[diagonal] = LinearMixedModel(design)
        return self._engines[diagonal]

    @property
    def _engine(self) -> LinearMixedModel:
        return self._engine_for(self._diagonal)

    @property
    def design(self) -> Design:
        """The engine's design (X, y and the random-effects terms)."""
        return self._engine.design

    @property
    def pls(self):
        return self._engine.pls

    @property
    def cp(self):
        return self._engine.cp

    @property
    def lower_bounds(self) -> np.ndarray:
        return self._engine.lower_bounds

    def objective(self, theta: np.ndarray, reml: bool = True) -> float:
        """The engine's profiled deviance at θ (−2 × statsmodels' llf)."""
        return self._engine.objective(theta, reml)

    def _view(self, diagonal: bool) -> MixedLM:
        if diagonal == self._diagonal:
            return self
        view = copy.copy(self)
        view._diagonal = diagonal
        return view

    # ---- θ ↔ statsmodels' parameters -------------------------------------------------------
    def _theta_slices(self, engine: LinearMixedModel) -> list[slice]:
        sizes = [t.n_theta for t in engine.design.terms]
        o = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
        return [slice(o[i], o[i + 1]) for i in range(len(sizes))]

    def _theta_from_params(
        self, engine: LinearMixedModel, params: MixedLMParams | None
    ) -> np.ndarray:
        theta = engine.pls.initial_theta.copy()
        if params is None:
            return theta
        sl = self._theta_slices(engine)
        terms = engine.design.terms
        s = 0
        if self.k_re:
            L = _chol_or_diag(np.asarray(params.cov_re, dtype=float))
            rows, cols = terms[0].theta_positions
            theta[sl[0]] = L[rows, cols] if terms[0].covariance != "scalar" else L[0, 0]
            s = 1
        vc = np.asarray(params.vcomp, dtype=float)
        for j in range(min(self.k_vc, len(vc))):
            theta[sl[s + j]] = math.sqrt(max(vc[j], 0.0))
        return theta

    def _fixed_theta(self, engine: LinearMixedModel, free: MixedLMParams | None) -> np.ndarray:
        """(n_theta,) True where ``free`` holds a θ at its starting value."""
        fixed = np.zeros(len(engine.pls.initial_theta), dtype=bool)
        if free is None:
            return fixed
        sl = self._theta_slices(engine)
        terms = engine.design.terms
        s = 0
        if self.k_re:
            mask = np.asarray(free.cov_re)
            rows, cols = terms[0].theta_positions
            fixed[sl[0]] = mask[rows, cols] == 0
            s = 1
        vc = np.asarray(free.vcomp)
        for j in range(min(self.k_vc, len(vc))):
            fixed[sl[s + j]] = vc[j] == 0
        return fixed

    def _as_params(self, start_params) -> MixedLMParams | None:
        if start_params is None or hasattr(start_params, "cov_re"):
            return start_params
        p = np.asarray(start_params, dtype=float)
        k_cov = self.k_re2 + self.k_vc
        if len(p) == self.k_fe + k_cov:
            return MixedLMParams.from_packed(p, self.k_fe, self.k_re, self.use_sqrt, has_fe=True)
        if len(p) == k_cov:
            return MixedLMParams.from_packed(p, self.k_fe, self.k_re, self.use_sqrt, has_fe=False)
        raise ValueError("invalid start_params")

    # ---- fitting ------------------------------------------------------------------------
    def fit(
        self,
        start_params=None,
        reml: bool = True,
        niter_sa: int = 0,
        do_cg: bool = True,
        fe_pen=None,
        cov_pen=None,
        free: MixedLMParams | None = None,
        full_output: bool = False,
        method=None,
        **fit_kwargs,
    ) -> MixedLMCompatResults:
        """Fit by REML (default) or ML with BOBYQA over θ (statsmodels' arguments).

        ``method`` and statsmodels' optimizer options (maxiter, gtol, ...) are accepted and
        ignored: the optimizer is BOBYQA on the relative covariance factor, as in lme4.
        ``free`` holds entries of the covariance's Cholesky factor and variance components
        at their starting values where it is 0 (statsmodels' meaning); ``free`` with an
        identity ``cov_re`` fits independent random effects.
        """
        # lme4's spellings, for lme4-style code that refits ``results.model``
        if "REML" in fit_kwargs:
            reml = bool(fit_kwargs.pop("REML"))
        theta_start = fit_kwargs.pop("start", None)
        fit_kwargs.pop("r_names", None)
        if fe_pen is not None or cov_pen is not None:
            raise NotImplementedError("penalized fits (fe_pen, cov_pen) are not supported")
        engine_opts = {k: fit_kwargs.pop(k) for k in _ENGINE_FIT_KWARGS if k in fit_kwargs}
        for k in _IGNORED_FIT_KWARGS:
            fit_kwargs.pop(k, None)
        fit_kwargs.pop("retall", None)
        if fit_kwargs:
            warnings.warn(
                f"argument(s) {', '.join(sorted(fit_kwargs))} not used by MixedLM.fit",
                UserWarning,
                stacklevel=2,
            )
        start = self._as_params(start_params)
        diagonal = _is_independent(free, start, self.k_re)
        view = self._view(diagonal)
        engine = view._engine
        theta0 = view._theta_from_params(engine, start)
        if theta_start is not None:
            theta0 = np.asarray(theta_start, dtype=float).copy()
        fixed = view._fixed_theta(engine, free)
        solution, optsum = _optimize(
            engine,
            reml,
            theta0,
            fixed,
            do_cg,
            engine_opts,
            engine_start=start is None and theta_start is None,
        )
        res = MixedLMCompatResults(view, solution, optsum, reml=reml, r_names=False)
        res.freepat = free
        res.use_sqrt = self.use_sqrt
        res.hist = [dataclasses.asdict(optsum)] if full_output else None
        res._fixed_theta = fixed
        return res

    # ---- other statsmodels model methods -------------------------------------------------
    def predict(self, params, exog=None) -> np.ndarray:
        """Xβ for ``params`` (a MixedLMParams or a vector starting with β)."""
        X = self.exog if exog is None else np.asarray(exog, dtype=float)
        beta = params.fe_params if hasattr(params, "fe_params") else np.asarray(params)
        return X @ np.asarray(beta, dtype=float)[: self.k_fe]

    def loglike(self, params, profile_fe: bool = True) -> float:
        """statsmodels' profile log-likelihood at covariance parameters ``params``.

        ``params`` is a MixedLMParams or the packed covariance parameters (in
        ``use_sqrt`` form); the fixed effects are profiled out (GLS) either way.
        """
        if not hasattr(params, "cov_re"):
            params = MixedLMParams.from_packed(
                np.asarray(params, dtype=float), self.k_fe, self.k_re, self.use_sqrt, has_fe=False
            )
        engine = self._engine_for(False)
        theta = self._theta_from_params(engine, params)
        return -0.5 * engine.objective(theta, self.reml)

    def get_distribution(self, *args, **kwargs):  # pragma: no cover - not provided
        raise NotImplementedError("use results.simulate() for parametric bootstrap draws")

    def __getattr__(self, name: str):
        # Engine attributes (e.g. for lme4-style helpers that expect a LinearMixedModel).
        if name.startswith("_") or name == "layout":
            raise AttributeError(name)
        return getattr(self._engine, name)

    def __repr__(self) -> str:
        return f"<sparselme MixedLM nobs={self.nobs} groups={self.n_groups}>"


mixedlm = MixedLM.from_formula


def _check_columns(data: pd.DataFrame, names: set[str]) -> None:
    for name in sorted(names):
        if name not in data.columns:
            raise UnknownColumnError(name, data.columns)


def _subset_mask(data: pd.DataFrame, subset) -> np.ndarray:
    sub = np.asarray(subset)
    if sub.dtype == bool:
        if len(sub) != len(data):
            raise DataError("a boolean subset must have one value per row of data")
        return sub
    return np.asarray(data.index.isin(sub))


def _handle_missing(
    data: pd.DataFrame, needed: set[str], garr: np.ndarray | None, missing: str
) -> tuple[pd.DataFrame, np.ndarray | None]:
    if missing not in ("none", "drop", "raise"):
        raise ValueError(f"missing must be 'none', 'drop' or 'raise', not {missing!r}")
    cols = [data[c] for c in sorted(needed)]
    bad = np.zeros(len(data), dtype=bool)
    counts = []
    for name, col in zip(sorted(needed), cols):
        if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
            isbad = ~np.isfinite(col.to_numpy(dtype=float, na_value=np.nan))
        else:
            isbad = col.isna().to_numpy()
        if isbad.any():
            counts.append(f"{name} ({int(isbad.sum())})")
            bad |= isbad
    if garr is not None:
        isbad = pd.isna(pd.Series(garr)).to_numpy()
        if isbad.any():
            counts.append(f"groups ({int(isbad.sum())})")
            bad |= isbad
    if not bad.any():
        return data, garr
    if missing != "drop":
        raise MissingDataError(
            f"{int(bad.sum())} of {len(data)} rows have missing or non-finite values in the "
            f"model's variables: {', '.join(counts)}. Pass missing='drop' to drop these rows."
        )
    warnings.warn(
        f"dropped {int(bad.sum())} of {len(data)} rows with missing or non-finite values in: "
        f"{', '.join(counts)}",
        UserWarning,
        stacklevel=4,
    )
    return data.loc[~bad], None if garr is None else garr[~bad]


def _patsy_column_order(design: Design, fixed: str) -> Design:
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


def _drop_redundant(design: Design) -> Design:
    dropped = _redundant_columns(design.X)
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


def _make_layout(
    design: Design,
    gcodes: np.ndarray,
    labels: list[Any],
    gname: str,
    Zre: np.ndarray | None,
    re_names: list[str] | None,
    r_names: list[str] | None,
    vcs: list[_VCInfo],
    bars: list[RandomEffectsTerm],
) -> _Layout:
    """Assemble the terms: the re term, the vc terms, then bar terms (k = 1 ones as vc)."""
    re_term = None
    if Zre is not None and Zre.shape[1] > 0:
        re_term = RandomEffectsTerm(
            name=gname,
            columns=tuple(r_names or re_names or ()),
            levels=pd.Index([str(g) for g in labels], name=gname),
            codes=gcodes,
            model=Zre,
            covariance="unstructured",
            group_vars=(gname,),
        )
    vcs = list(vcs)
    extra: list[tuple[str, RandomEffectsTerm]] = []
    taken = {v.name for v in vcs}
    for t in bars:
        label = t.name if t.k > 1 else _column_label(t.name, t.columns[0])
        while label in taken:
            label += "'"
        taken.add(label)
        if t.k == 1:
            vcs.append(_VCInfo(label, t, {}, None))
        else:
            extra.append((t.name, t))
    return _Layout(
        fe_names=list(design.fixed_names),
        re_names=list(re_names or []),
        vc=vcs,
        extra=extra,
        group_labels=list(labels),
        group_codes=gcodes,
        group_name=gname,
        re_term=re_term,
    )


def _chol_or_diag(cov: np.ndarray) -> np.ndarray:
    """Lower Cholesky factor (statsmodels' fallback: sqrt of the diagonal)."""
    if cov.size == 0:
        return cov
    try:
        return np.linalg.cholesky(cov)
    except np.linalg.LinAlgError:
        return np.diag(np.sqrt(np.maximum(np.diag(cov), 0.0)))


def _is_independent(free: MixedLMParams | None, start: MixedLMParams | None, k_re: int) -> bool:
    """Does ``free`` hold every off-diagonal Cholesky entry at 0 (diagonal free)?"""
    if free is None or k_re < 2:
        return False
    mask = np.asarray(free.cov_re)
    off = np.tril(np.ones((k_re, k_re), dtype=bool), -1)
    if np.any(mask[off] != 0) or np.any(np.diag(mask) == 0):
        return False
    if start is not None:
        L = _chol_or_diag(np.asarray(start.cov_re, dtype=float))
        if np.any(L[off] != 0):
            return False
    return True


# ======================================================================================
# Optimization with some θ held fixed
# ======================================================================================


def _blas_limits(engine: LinearMixedModel):
    """The engine's BLAS thread setting (one thread for small dense factors)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl comes with the engine
        return contextlib.nullcontext()
    threads = getattr(getattr(engine.pls, "chol", None), "blas_threads", None)
    return threadpool_limits(limits=threads, user_api="blas")


def _optimize(
    engine: LinearMixedModel,
    reml: bool,
    theta0: np.ndarray,
    fixed: np.ndarray,
    do_cg: bool,
    options: dict,
    engine_start: bool = False,
):
    """(PLSSolution, OptSummary over the full θ) of a fit with θ[fixed] held at theta0.

    ``engine_start``: no starting values were given, the engine may choose its own.
    """
    with _blas_limits(engine):
        return _optimize_in(engine, reml, theta0, fixed, do_cg, options, engine_start)


def _optimize_in(engine, reml, theta0, fixed, do_cg, options, engine_start):
    lower = engine.pls.lower_bounds
    theta0 = np.where(fixed, theta0, np.maximum(theta0, lower))
    if not do_cg:
        fmin = engine.objective(theta0, reml)
        optsum = OptSummary(initial=theta0, lower=lower, final=theta0.copy(), fmin=fmin)
        optsum.feval, optsum.returnvalue = 1, "NOT_OPTIMIZED"
        optsum.messages.append("not optimized (do_cg=False)")
        return engine.pls.solve(theta0), optsum
    free = ~fixed

    def f(x: np.ndarray) -> float:
        th = theta0.copy()
        th[free] = x
        return engine.objective(th, reml)

    if not fixed.any():
        start = None if engine_start else theta0
        res = engine.fit(REML=reml, start=start, r_names=False, **options)
        if _polish(f, res.optsum):
            return engine.pls.solve(res.optsum.final), res.optsum
        return res.solution, res.optsum

    opts = {k: options[k] for k in ("maxeval", "ftol_abs", "xtol_abs") if k in options}
    optsum = minimize_bobyqa(f, theta0[free], lower[free], **opts)
    check = options.get("check_derivatives", engine.design.nobs < 10_000)
    for attempt in range(int(options.get("max_restarts", 2)) + 1):
        snap_to_boundary(f, optsum)
        if not check:
            break
        check_convergence(f, optsum)
        if not optsum.messages or attempt == options.get("max_restarts", 2):
            break
        optsum = restart_bobyqa(f, optsum, **opts)
    _polish(f, optsum)
    full = theta0.copy()
    full[free] = optsum.final
    reduced_initial = optsum.initial
    optsum.initial = theta0.copy()
    optsum.initial[free] = reduced_initial
    optsum.final, optsum.lower = full, lower
    if np.any(full[(lower == 0) & free] < SINGULAR_TOL):
        warnings.warn(
            "boundary (singular) fit: a variance component is estimated as zero",
            SingularFitWarning,
            stacklevel=4,
        )
    return engine.pls.solve(full), optsum


def _polish(f, optsum: OptSummary, max_steps: int = 2) -> bool:
    """Newton steps from BOBYQA's stopping point (interior optima with few θ's only).

    BOBYQA stops when the deviance changes by less than ftol_abs, which leaves θ good
    to about √ftol; statsmodels reports its estimates with 4 decimals on the user scale
    (a variance of 10⁷ shows 11 digits). Newton steps on finite-difference derivatives,
    starting from those of the convergence check (made below 10,000 observations), take θ
    to the optimum; a step is taken only when it lowers the deviance.
    """
    x, fx, lower = optsum.final.copy(), optsum.fmin, optsum.lower
    if len(x) == 0 or len(x) > 10 or np.any((lower == 0) & (x < SINGULAR_TOL)):
        return False
    g, H = optsum.gradient, optsum.hessian
    if g is None or H is None or len(g) != len(x):
        return False  # no convergence check was made (large data): keep BOBYQA's θ
    moved = False
    for step_no in range(max_steps):
        try:
            np.linalg.cholesky(H)
            step = np.linalg.solve(H, g)
        except np.linalg.LinAlgError:
            break
        decrement = float(g @ step)
        if decrement < 1e-10:
            break
        t = 1.0
        while t > 1e-3:
            trial = x - t * step
            if np.all(trial >= lower):
                ft = float(f(trial))
                if ft < fx:
                    break
            t /= 2
        else:
            break
        x, fx, moved = trial, ft, True
        if decrement < 1e-6 or step_no + 1 == max_steps:
            break  # the remaining error is of the order of decrement²
        g, H = finite_difference_derivatives(f, x, lower, fx)
    if moved:
        optsum.final, optsum.fmin = x, fx
    return moved


# ======================================================================================
# Per-group algebra: statsmodels' Hessian and conditional covariances
# ======================================================================================


class _GroupAlgebra:
    """Dense per-group matrices in the random-effects space, padded to a common size m.

    For group b with random-effects design Z_b, K = Z_bᵀZ_b, T the group's block of Λ(θ)
    and C = TᵀKT + I:

    * P = T C⁻¹ Tᵀ: the conditional covariance of the group's effects divided by σ²;
    * W = Z_bᵀV⁻¹Z_b = K − K P K, with V = I + Z_b T Tᵀ Z_bᵀ (statsmodels' profile scale);
    * WX = Z_bᵀV⁻¹X_b (m, p), wr = Z_bᵀV⁻¹r_b (m,), r = y − Xβ.

    Arrays are (B, m, m), (B, m, p), (B, m) for B groups. With terms that cross the
    groups, everything is one group (B = 1, m = q).
    """

    def __init__(
        self,
        terms: list[RandomEffectsTerm],
        thetas: list[np.ndarray],
        blocks: list[np.ndarray] | None,
        X: np.ndarray,
        resid: np.ndarray,
    ):
        if blocks is None:
            blocks = [np.zeros(t.nlevels, dtype=np.intp) for t in terms]
        B = int(max((b.max() + 1 for b in blocks if len(b)), default=1))
        used = np.zeros(B, dtype=np.intp)
        self.pos: list[tuple[np.ndarray, np.ndarray]] = []
        for t, blk in zip(terms, blocks):
            blk = np.asarray(blk, dtype=np.intp)
            counts = np.bincount(blk, minlength=B)
            order = np.argsort(blk, kind="stable")
            starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
            rank = np.empty(len(blk), dtype=np.intp)
            rank[order] = np.arange(len(blk)) - np.repeat(starts, counts)
            self.pos.append((blk, used[blk] + rank * t.k))
            used += counts * t.k
        self.B, self.m = B, int(used.max()) if len(used) else 0
        if self.B * self.m**2 > _MAX_BLOCK_ENTRIES or self.B * self.m**3 > _MAX_BLOCK_FLOPS:
            raise MemoryError(
                f"{self.B} group(s) of up to {self.m} random effects are too large for "
                "dense per-group algebra"
            )
        self.terms = terms
        B, m = self.B, self.m
        # Z in padded coordinates: column b·m + local
        n = len(resid)
        rows, cols, vals = [], [], []
        for t, (blk, off) in zip(terms, self.pos):
            lv = t.codes
            for a in range(t.k):
                rows.append(np.arange(n))
                cols.append(blk[lv] * m + off[lv] + a)
                vals.append(t.model[:, a])
        Z = sp.csr_matrix(
            (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, B * m)
        )
        Z.eliminate_zeros()
        K = (Z.T @ Z).tocoo()
        if np.any(K.row // m != K.col // m):
            raise ValueError("random effects of different groups share observations")
        self.K = np.zeros((B, m, m))
        np.add.at(self.K, (K.row // m, K.row % m, K.col % m), K.data)
        ZX = np.asarray(Z.T @ X).reshape(B, m, X.shape[1])
        Zr = np.asarray(Z.T @ resid).reshape(B, m)
        T = np.zeros((B, m, m))
        for t, th, (blk, off) in zip(terms, thetas, self.pos):
            Tt = t.template(th)
            for a in range(t.k):
                for c in range(t.k):
                    if Tt[a, c] != 0:
                        T[blk, off + a, off + c] = Tt[a, c]
        Tt = np.transpose(T, (0, 2, 1))
        C = Tt @ self.K @ T + np.eye(m)[None]
        self.P = T @ np.linalg.solve(C, Tt)
        KP = self.K @ self.P
        self.W = self.K - KP @ self.K
        self.WX = ZX - KP @ ZX
        self.wr = Zr - np.einsum("bij,bj->bi", KP, Zr)

    def apply(self, spec: tuple[int, np.ndarray], A: np.ndarray) -> np.ndarray:
        """D A for D = the term's S at every level (block diagonal), A of shape (B, m, ...)."""
        s, S = spec
        blk, off = self.pos[s]
        k = S.shape[0]
        idx = off[:, None] + np.arange(k)[None, :]
        g = A[blk[:, None], idx]  # (L, k, ...)
        out = np.zeros_like(A)
        out[blk[:, None], idx] = np.einsum("ab,lb...->la...", S, g)
        return out

    def hessian(
        self, specs: list[tuple[int, np.ndarray]], M: np.ndarray, Q: float, fac: float, reml: bool
    ) -> np.ndarray:
        """statsmodels' Hessian of its profile log-likelihood in (β, Ψ/σ² entries).

        ℓ = −½log|V| − (fac/2)·log Q(β) [− ½log|XᵀV⁻¹X| under REML], V linear in the
        parameters with dV/dψ_i = Z D_i Zᵀ.
        """
        p = M.shape[0]
        npar = len(specs)
        W, WX, wr = self.W, self.WX, self.wr
        Y = [self.apply(sp_, W) for sp_ in specs]  # D_i W
        U = [self.apply(sp_, wr) for sp_ in specs]  # D_i wr
        V = [self.apply(sp_, WX) for sp_ in specs]  # D_i WX
        WU = [np.einsum("bij,bj->bi", W, u) for u in U]
        WV = [W @ v for v in V]
        a = np.array([np.sum(u * wr) for u in U])
        c = [np.einsum("bip,bi->p", WX, u) for u in U]
        A = [np.einsum("bip,biq->pq", WX, v) for v in V]
        Minv = np.linalg.inv(M) if p else M
        H = np.zeros((p + npar, p + npar))
        H[:p, :p] = -fac * M / Q
        for i in range(npar):
            H[:p, p + i] = H[p + i, :p] = -fac * c[i] / Q
            for j in range(i + 1):
                tr = np.sum(Y[i] * np.transpose(Y[j], (0, 2, 1)))
                b = np.sum(U[i] * WU[j])
                h = 0.5 * tr - fac * b / Q + 0.5 * fac * a[i] * a[j] / Q**2
                if reml and p:
                    F = np.einsum("bip,biq->pq", V[i], WV[j])
                    F = F + F.T
                    h += 0.5 * np.trace(Minv @ A[j] @ Minv @ A[i]) - 0.5 * np.trace(Minv @ F)
                H[p + i, p + j] = H[p + j, p + i] = h
        return H


def _spec_matrix(term: RandomEffectsTerm, a: int, b: int) -> np.ndarray:
    """S with Ψ = Σψ·S: e_a e_bᵀ + e_b e_aᵀ (a ≠ b), e_a e_aᵀ, or I for a scalar term."""
    if term.covariance == "scalar":
        return np.eye(term.k)
    S = np.zeros((term.k, term.k))
    S[a, b] = S[b, a] = 1.0
    return S


# ======================================================================================
# Results
# ======================================================================================


class MixedLMCompatResults(MixedLMResults):
    """A fit through the statsmodels API: statsmodels' attributes with its semantics.

    Everything of :class:`~sparselme.results.MixedLMResults` (lme4-style extras) is kept;
    statsmodels' names (``params``, ``bse``, ``bse_fe``, ``cov_params()``, ``summary()``,
    ``fittedvalues``...) follow statsmodels. ``summary_lme4()`` gives lme4's printout.
    """

    freepat: MixedLMParams | None = None
    hist: list | None = None
    use_t: bool = False

    # ---- bookkeeping ---------------------------------------------------------------------
    @property
    def _layout(self) -> _Layout:
        return self.model.layout

    @property
    def k_re(self) -> int:
        return self.model.k_re

    @property
    def k_re2(self) -> int:
        return self.model.k_re2

    @property
    def k_vc(self) -> int:
        return self.model.k_vc

    @property
    def converged(self) -> bool:
        return self.optsum.returnvalue != "NOT_OPTIMIZED" and self.optsum.converged

    @property
    def df_resid(self) -> int:
        return self.nobs - int(np.linalg.matrix_rank(self.design.X)) if self.k_fe else self.nobs

    @property
    def npar(self) -> int:
        """lme4's parameter count (free θ only when ``free`` held some fixed)."""
        fixed = getattr(self, "_fixed_theta", None)
        n_theta = self.n_theta - (int(fixed.sum()) if fixed is not None else 0)
        return self.k_fe + n_theta + 1

    def _term_theta(self, s: int) -> np.ndarray:
        o = self.model.pls.theta_offsets
        return self.theta[o[s] : o[s + 1]]

    def _relcov(self, s: int) -> np.ndarray:
        """(k, k) Ψ/σ² of engine term s: T Tᵀ."""
        T = self.terms[s].template(self._term_theta(s))
        return T @ T.T

    # ---- statsmodels' parameters ----------------------------------------------------------
    @cached_property
    def cov_re_unscaled(self) -> pd.DataFrame:
        names = self.model.exog_re_names
        cov = self._relcov(0) if self.k_re else np.zeros((0, 0))
        return pd.DataFrame(cov, index=names, columns=names)

    @property
    def cov_re(self) -> pd.DataFrame:
        """Random-effects covariance of one group (user scale)."""
        return self.cov_re_unscaled * self.scale

    @cached_property
    def _vcomp_unscaled(self) -> np.ndarray:
        s0 = 1 if self.k_re else 0
        return np.array([self._relcov(s0 + j)[0, 0] for j in range(self.k_vc)])

    @property
    def vcomp(self) -> np.ndarray:
        """Variance components (user scale), in sorted-name order."""
        return self._vcomp_unscaled * self.scale

    @cached_property
    def params_object(self) -> MixedLMParams:
        return MixedLMParams.from_components(
            fe_params=self.solution.beta.copy(),
            cov_re=self.cov_re_unscaled.to_numpy(),
            vcomp=self._vcomp_unscaled.copy(),
        )

    @cached_property
    def _param_values(self) -> np.ndarray:
        vals = [self.solution.beta]
        for s, a, b in self._layout.param_specs():
            vals.append(np.array([self._relcov(s)[a, b]]))
        return np.concatenate(vals)

    @property
    def params(self) -> pd.Series:
        """Fixed effects, then variance parameters divided by ``scale`` (statsmodels)."""
        return pd.Series(self._param_values, index=self.model.param_names)

    @property
    def k_params(self) -> int:
        return len(self._param_values)

    # ---- statsmodels' covariance of the estimates ------------------------------------------
    @cached_property
    def _algebra(self) -> _GroupAlgebra | None:
        d = self.design
        resid = d.y_centered - d.X @ self.solution.beta
        thetas = [self._term_theta(s) for s in range(len(self.terms))]
        try:
            return _GroupAlgebra(
                list(self.terms), thetas, self._layout.block_of_levels(), d.X, resid
            )
        except MemoryError as exc:
            warnings.warn(
                f"statsmodels-style standard errors of variance parameters are not "
                f"computed: {exc}; fixed-effect standard errors are lme4's",
                UserWarning,
                stacklevel=3,
            )
            return None

    @cached_property
    def hessian(self) -> np.ndarray | None:
        """statsmodels' Hessian of the profile log-likelihood at the estimates."""
        alg = self._algebra
        if alg is None:
            return None
        specs = [(s, _spec_matrix(self.terms[s], a, b)) for s, a, b in self._layout.param_specs()]
        RX = self.solution.RX
        fac = self.nobs - (self.k_fe if self.reml else 0)
        return alg.hessian(specs, RX.T @ RX, self.solution.pwrss, fac, self.reml)

    @cached_property
    def _cov_params(self) -> np.ndarray:
        k = self.k_params
        H = self.hessian
        if H is None:
            out = np.full((k, k), np.nan)
            out[: self.k_fe, : self.k_fe] = self._cov_fe
            return out
        free = np.ones(k, dtype=bool)
        if self.freepat is not None:
            pat = self.freepat.get_packed(use_sqrt=False, has_fe=True)
            free[: len(pat)] = pat != 0
        out = np.zeros((k, k))
        ii = np.flatnonzero(free)
        if len(ii):
            sub = -H[np.ix_(ii, ii)]
            try:
                out[np.ix_(ii, ii)] = np.linalg.inv(sub)
            except np.linalg.LinAlgError:
                out[np.ix_(ii, ii)] = np.linalg.pinv(sub)
        return out

    def cov_params(self) -> pd.DataFrame:
        """statsmodels' covariance of all parameters: inverse of minus its Hessian."""
        names = self.model.param_names
        return pd.DataFrame(self._cov_params, index=names, columns=names)

    @property
    def bse(self) -> pd.Series:
        with np.errstate(invalid="ignore"):
            se = np.sqrt(np.diag(self._cov_params))
        return pd.Series(se, index=self.model.param_names)

    @property
    def bse_fe(self) -> pd.Series:
        return self.bse.iloc[: self.k_fe]

    @property
    def bse_re(self) -> pd.Series:
        """SEs of the variance parameters on the user scale, as statsmodels reports them."""
        return self.bse.iloc[self.k_fe :] * math.sqrt(self.scale)

    @property
    def tvalues(self) -> pd.Series:
        with np.errstate(divide="ignore", invalid="ignore"):
            return self.params / self.bse

    @property
    def pvalues(self) -> pd.Series:
        return pd.Series(2 * stats.norm.sf(np.abs(self.tvalues)), index=self.model.param_names)

    def conf_int(self, alpha: float = 0.05, cols=None) -> pd.DataFrame:
        """Wald intervals params ± z·bse for every parameter (statsmodels)."""
        q = stats.norm.ppf(1 - alpha / 2)
        p, se = self.params, self.bse
        out = pd.DataFrame({0: p - q * se, 1: p + q * se})
        return out if cols is None else out.iloc[list(cols)]

    # ---- likelihood summaries ----------------------------------------------------------------
    @property
    def _df_modelwc(self) -> int:
        if self.freepat is not None:
            return int(np.sum(self.freepat.get_packed(use_sqrt=False, has_fe=True) != 0)) + 1
        return self.k_params + 1

    @property
    def aic(self) -> float:
        """statsmodels' AIC: NaN under REML; parameters + 1 for the scale."""
        return float("nan") if self.reml else -2 * (self.llf - self._df_modelwc)

    @property
    def bic(self) -> float:
        return float("nan") if self.reml else -2 * self.llf + math.log(self.nobs) * self._df_modelwc

    # ---- random effects -------------------------------------------------------------------------
    def _group_effect_names(self, g: int) -> list[str]:
        names = list(self.model.exog_re_names)
        for v in self._layout.vc:
            if v.level_group is None:
                continue
            names += [f"{v.name}[{c}]" for c in v.colnames.get(g, [])]
        return names

    def _group_columns(self) -> list[list[tuple[int, int, int]]]:
        """Per group, its effects as (term, level, column) in statsmodels' order."""
        G = self.model.n_groups
        out: list[list[tuple[int, int, int]]] = [[] for _ in range(G)]
        s = 0
        if self.k_re:
            for g in range(G):
                out[g] += [(0, g, a) for a in range(self.k_re)]
            s = 1
        for j, v in enumerate(self._layout.vc):
            t = self.terms[s + j]
            if v.level_group is None:
                continue
            if t.k == 1:
                for lvl, g in enumerate(v.level_group):
                    out[int(g)].append((s + j, lvl, 0))
            else:
                for g in range(G):
                    out[g] += [(s + j, g, a) for a in range(len(v.colnames.get(g, [])))]
        return out

    def _single_group_bars(self) -> list[tuple[int, str]]:
        """Bar terms not nested in the groups: (term index, label) for the single group."""
        s0 = 1 if self.k_re else 0
        out = [(s0 + j, v.name) for j, v in enumerate(self._layout.vc) if v.level_group is None]
        s0 += len(self._layout.vc)
        out += [(s0 + j, label) for j, (label, _) in enumerate(self._layout.extra)]
        return out

    @property
    def _only_re(self) -> bool:
        """Only the re term (no variance components or bar terms), over several groups."""
        return self.k_re > 0 and len(self.terms) == 1 and self.model.n_groups > 1

    @cached_property
    def random_effects(self) -> dict[Any, pd.Series]:
        """Conditional means of each group's random effects, keyed by group label."""
        blocks = self._b_blocks()
        if self._only_re:  # the common case, vectorized: one row of b per group
            index = pd.Index(self.model.exog_re_names)
            return {
                g: pd.Series(b, index=index) for g, b in zip(self.model.group_labels, blocks[0])
            }
        out = {}
        bars = self._single_group_bars() if self.model.n_groups == 1 else []
        for g, (label, cols) in enumerate(zip(self.model.group_labels, self._group_columns())):
            vals = [blocks[s][lvl, a] for s, lvl, a in cols]
            names = self._group_effect_names(g)
            for s, lab in bars:
                t = self.terms[s]
                for lvl, lv in enumerate(t.levels):
                    for a, c in enumerate(t.columns):
                        vals.append(blocks[s][lvl, a])
                        names.append(f"{_column_label(lab, c) if t.k > 1 else lab}[{lv}]")
            out[label] = pd.Series(np.asarray(vals, dtype=float), index=names)
        return out

    @cached_property
    def random_effects_cov(self) -> dict[Any, pd.DataFrame]:
        """Conditional covariance of each group's random effects given the data."""
        alg = self._algebra
        if alg is None:
            raise MemoryError("the groups are too large for dense conditional covariances")
        if self._layout.block_of_levels() is None and self.model.n_groups > 1:
            raise NotImplementedError(
                "random_effects_cov with bar terms crossing the groups; use ranef()"
            )
        if self._only_re:
            index = pd.Index(self.model.exog_re_names)
            covs = self.scale * alg.P
            return {
                g: pd.DataFrame(c, index=index, columns=index)
                for g, c in zip(self.model.group_labels, covs)
            }
        out = {}
        bars = self._single_group_bars() if self.model.n_groups == 1 else []
        for g, (label, cols) in enumerate(zip(self.model.group_labels, self._group_columns())):
            loc = [int(alg.pos[s][1][lvl] + a) for s, lvl, a in cols]
            names = self._group_effect_names(g)
            b = 0 if alg.B == 1 else g
            for s, lab in bars:
                t = self.terms[s]
                for lvl, lv in enumerate(t.levels):
                    for a, c in enumerate(t.columns):
                        loc.append(int(alg.pos[s][1][lvl] + a))
                        names.append(f"{_column_label(lab, c) if t.k > 1 else lab}[{lv}]")
            cov = self.scale * alg.P[b][np.ix_(loc, loc)]
            out[label] = pd.DataFrame(cov, index=names, columns=names)
        return out

    # ---- fitted values and prediction ------------------------------------------------------------
    def _wrap_rows(self, values: np.ndarray):
        idx = self.design.row_index
        return values if idx is None else pd.Series(values, index=idx)

    @cached_property
    def fittedvalues(self):
        """Xβ + Zb: fixed effects plus predicted random effects."""
        return self._wrap_rows(MixedLMResults.fittedvalues.func(self))

    @property
    def resid(self):
        return self._wrap_rows(self.design.y - np.asarray(self.fittedvalues))

    def predict(self, exog=None, transform: bool = True, *args, **kwargs):
        """Fixed-effects predictions Xβ (random effects are not included, as statsmodels)."""
        beta = self.solution.beta
        if exog is None:
            return self.design.X @ beta
        spec = self.design.fixed_spec
        if transform and spec is not None and isinstance(exog, (pd.DataFrame, Mapping)):
            frame = pd.DataFrame(exog)
            needed = {str(v) for v in spec.required_variables}
            _check_columns(frame, needed)
            data, context = prepare_frame(frame, needed)
            mm = spec.get_model_matrix(data, context=context, na_action="ignore")
            X = mm[self.design.fixed_names].to_numpy(dtype=float)
            return pd.Series(X @ beta, index=frame.index)
        if isinstance(exog, pd.DataFrame):
            return pd.Series(exog.to_numpy(dtype=float) @ beta, index=exog.index)
        X = np.asarray(exog, dtype=float)
        return (X.reshape(-1, len(beta)) if X.ndim == 1 else X) @ beta

    # ---- tests ----------------------------------------------------------------------------------
    def t_test(self, r_matrix, use_t: bool | None = None) -> ContrastResults:
        """t (z) tests of R β = q for the fixed effects; R may be a string like "x = 1"."""
        names = list(self.fe_params.index)
        R, q = _constraints(r_matrix, names, self.k_params, self.k_fe)
        use_t = self.use_t if use_t is None else use_t
        V = self._cov_params[: self.k_fe, : self.k_fe]
        effect = R @ self.solution.beta
        sd = np.sqrt(np.einsum("ij,jk,ik->i", R, V, R))
        tval = (effect - q) / sd
        df = self.df_resid if use_t else None
        dist = stats.t(df) if use_t else stats.norm
        return ContrastResults(effect, sd, tval, 2 * dist.sf(np.abs(tval)), q, df, use_t)

    def wald_test(self, r_matrix, scalar: bool | None = None, **kwargs) -> ContrastResults:
        """χ² Wald test of R θ = q over all parameters (or over the fixed effects)."""
        R, q = _constraints(r_matrix, list(self.model.param_names), self.k_params, self.k_params)
        if R.shape[1] == self.k_fe:
            R = np.hstack([R, np.zeros((R.shape[0], self.k_params - self.k_fe))])
        d = R @ self._param_values - q
        V = R @ self._cov_params @ R.T
        stat = float(d @ np.linalg.solve(V, d))
        df = int(np.linalg.matrix_rank(R))
        return ContrastResults.wald(stat, stats.chi2.sf(stat, df), df, scalar)

    # ---- profile likelihood ---------------------------------------------------------------------
    def profile_re(
        self,
        re_ix: int | str,
        vtype: str,
        num_low: int = 5,
        dist_low: float = 1.0,
        num_high: int = 5,
        dist_high: float = 1.0,
        **fit_kwargs,
    ) -> np.ndarray:
        """Profile log-likelihood of one variance parameter (statsmodels' arguments).

        ``vtype="re"``: the variance of exog_re column ``re_ix``; ``"vc"``: the variance
        component named ``re_ix``. Returns (num_low + 1 + num_high, 2): the parameter on
        the user scale and the maximized log-likelihood with the parameter held there.
        """
        if vtype not in ("re", "vc"):
            raise ValueError("vtype must be 're' or 'vc'")
        model, scale = self.model, self.scale
        terms = list(self.terms)
        free = self.freepat.copy() if self.freepat is not None else None
        if vtype == "re":
            ix = np.arange(self.k_re)
            ix[0], ix[int(re_ix)] = int(re_ix), 0
            cov_u = self.cov_re_unscaled.to_numpy()[np.ix_(ix, ix)]
            current = cov_u[0, 0]
            t = terms[0]
            terms[0] = dataclasses.replace(
                t, columns=tuple(t.columns[i] for i in ix), model=t.model[:, ix]
            )
            if free is not None:
                free.cov_re = np.asarray(free.cov_re)[np.ix_(ix, ix)]
            s_prof = 0
        else:
            j = [v.name for v in model.layout.vc].index(re_ix)
            current = self._vcomp_unscaled[j]
            s_prof = (1 if self.k_re else 0) + j
        low = current - dist_low / scale
        high = current + dist_high / scale
        if low <= 0:
            raise ValueError(
                "dist_low is too large and would result in a negative variance. "
                "Try a smaller value."
            )
        values = np.concatenate(
            [np.linspace(low, current, num_low + 1), np.linspace(current, high, num_high + 1)[1:]]
        )
        engine = LinearMixedModel(dataclasses.replace(self.design, terms=terms))
        o = engine.pls.theta_offsets
        fixed = model._fixed_theta(engine, free)
        fixed[o[s_prof]] = True
        opts = {k: fit_kwargs[k] for k in _ENGINE_FIT_KWARGS if k in fit_kwargs}
        dof = self.nobs - (self.k_fe if self.reml else 0)
        out = []
        for x in values:
            th0 = self.theta.copy()
            if vtype == "re":
                cov_u[0, 0] = x
                rows, cols = terms[0].theta_positions
                th0[o[0] : o[1]] = _chol_or_diag(cov_u)[rows, cols]
            else:
                th0[o[s_prof]] = math.sqrt(x)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", SingularFitWarning)
                sol, optsum = _optimize(engine, self.reml, th0, fixed, True, opts)
            out.append([x * sol.pwrss / dof, -0.5 * optsum.fmin])
        return np.asarray(out)

    # ---- printing ----------------------------------------------------------------------
    def summary(
        self,
        yname: str | None = None,
        xname_fe: list[str] | None = None,
        xname_re: list[str] | None = None,
        title: str | None = None,
        alpha: float = 0.05,
    ):
        """statsmodels' summary: an info block and one table of all parameters."""
        return _summary(self, yname, xname_fe, xname_re, title, alpha)

    def summary_lme4(self) -> str:
        """lme4's ``summary(lmer(...))`` printout of the same fit."""
        return lme4_summary(self)

    def __repr__(self) -> str:
        return f"<sparselme MixedLMResults {self.method} nobs={self.nobs} llf={self.llf:.4f}>"


# ======================================================================================
# Summary in statsmodels' layout
# ======================================================================================


def _summary(res: MixedLMCompatResults, yname, xname_fe, xname_re, title, alpha):
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
    sizes = np.bincount(res.model.layout.group_codes, minlength=res.model.n_groups)
    info = {
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
    frame = pd.DataFrame(
        [[f"{v:.3f}" if np.isfinite(v) else "" for v in row] for row in table],
        index=names,
        columns=cols,
    )
    try:
        from statsmodels.iolib import summary2
    except ImportError:  # statsmodels is optional: the same layout, formatted here
        smry = Summary()
    else:
        smry = summary2.Summary()
    smry.add_dict(info)
    smry.add_title(title or "Mixed Linear Model Regression Results")
    smry.add_df(frame, align="r")
    return smry


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
        txt = "\n".join("\n".join(_wrap(x, widest)) for x in self.extra_txt)
        return f"{title}\n" + "\n".join(lines) + f"\n{txt}"

    def __str__(self) -> str:
        return self.as_text()

    def __repr__(self) -> str:
        return str(type(self)) + '\n"""\n' + self.as_text() + '\n"""'


def _wrap(text: str, width: int) -> list[str]:
    import textwrap

    return textwrap.wrap(text, width)


# ======================================================================================
# Linear hypotheses
# ======================================================================================


class ContrastResults:
    """Result of :meth:`MixedLMCompatResults.t_test` or ``wald_test``."""

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


def _constraints(r_matrix, names: list[str], k_all: int, k_default: int):
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
