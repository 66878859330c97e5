"""Predictions of the statsmodels API: population level, or group level (an extension).

statsmodels' ``MixedLMResults.predict(exog)`` is the fixed-effects part Xβ. Given
``groups=`` (the group label of each new row), `predict` adds each known group's
conditional modes: the re term's ``exog_re`` row times the group's effects, each variance
component's columns times the group's modes of those columns, and the effects of lme4 bar
terms (through `sparselme.predict.predict`, the lme4-style prediction). Unseen
groups or levels contribute nothing (the population value) with a
`sparselme.errors.NewLevelsWarning`, or raise with ``allow_new_levels=False``.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import scipy.sparse as sp
from formulaic.errors import DataMismatchWarning

from ..analysis.contrasts import categorical_levels
from ..analysis.predict import predict as lme4_predict
from ..data import validation
from ..data.design import prepare_frame
from ..engine.arrays import distinct
from ..errors import DataError, NeedsRowsError, NewLevelsWarning, UnknownColumnError
from .inputs import as_matrix, check_columns, evaluate, group_rows

if TYPE_CHECKING:
    from .layout import VCInfo
    from .model import MixedLM
    from .results import MixedLMCompatResults


def predict(
    res: MixedLMCompatResults,
    exog,
    transform: bool,
    groups,
    exog_re,
    exog_vc: Mapping | None,
    allow_new_levels: bool | None,
):
    """``MixedLMResults.predict`` of the statsmodels API (see its docstring)."""
    if exog is None:
        if groups is not None or exog_re is not None or exog_vc is not None:
            raise ValueError(
                "groups, exog_re and exog_vc describe new rows and need exog; the fitted "
                "rows' group-level values are fittedvalues"
            )
        return res.solution.fixed_fit(res.design.X)
    model = res.model
    frame = None
    if transform and model.formula is not None and isinstance(exog, (pd.DataFrame, Mapping)):
        frame = pd.DataFrame(exog)
    if groups is None:
        if exog_re is not None:
            raise DataError(_labels_hint(res, exog_re, "exog_re needs groups=", None))
        if exog_vc is not None:
            raise DataError("exog_vc needs groups=, the group label of each new row")
        return _population(res, exog, frame)
    m = len(frame) if frame is not None else len(exog)
    labels = _labels(groups, exog if frame is None else frame, m)
    codes = _codes(model, labels)
    notes = NewLevels(allow_new_levels)
    notes.groups(labels, codes)
    bars = _bar_terms(res)
    if bars:
        if frame is None:
            raise DataError(
                "the model's lme4 bar terms need exog as a DataFrame of the data columns "
                "(and transform=True)"
            )
        base = _with_bar_terms(res, frame, bars, notes)
    else:
        base = _population(res, exog, frame)
    named = groups if isinstance(groups, str) else getattr(groups, "name", None)
    label_columns = {model.layout.group_name} | ({str(named)} if named is not None else set())
    eta = np.asarray(base, dtype=float).copy()
    eta += _re_part(res, frame, exog_re, codes, label_columns, named)
    eta += _vc_part(res, frame, exog_vc, codes, notes)
    notes.report()
    return pd.Series(eta, index=base.index) if isinstance(base, pd.Series) else eta


class NewLevels:
    """The new groups and levels met by one prediction: warn (None), allow (True) or raise."""

    def __init__(self, allow: bool | None):
        self.allow = allow
        self.found: list[str] = []

    @property
    def strict(self) -> bool:
        return self.allow is False

    def note(self, text: str) -> None:
        if self.strict:
            raise DataError(
                f"{text}; pass allow_new_levels=True (or leave it None, which warns) to "
                "predict them at the population level"
            )
        self.found.append(text)

    def groups(self, labels: np.ndarray, codes: np.ndarray) -> None:
        new = codes < 0
        if new.any():
            shown = ", ".join(repr(v) for v in pd.unique(labels[new])[:5])
            rows = f"{int(new.sum())} row{'s' if new.sum() > 1 else ''}"
            self.note(f"group(s) {shown} not in the fitted data ({rows})")

    def report(self) -> None:
        if self.found and self.allow is None:
            warnings.warn(
                "; ".join(self.found) + ": predicted without their random effects (at "
                "the population level); allow_new_levels=True silences this warning",
                NewLevelsWarning,
                stacklevel=4,
            )


# ---- the fixed part and lme4 bar terms ------------------------------------------------------


def _population(res: MixedLMCompatResults, exog, frame: pd.DataFrame | None):
    """Xβ of the new rows: a Series for pandas input, an ndarray otherwise."""
    if frame is not None:
        return lme4_predict(res, frame, re_form="~0").rename(None)
    beta = res.solution.beta
    if isinstance(exog, pd.DataFrame):
        names = list(res.model.exog_names)
        cols = exog[names] if set(names) <= set(exog.columns) else exog
        return pd.Series(cols.to_numpy(dtype=float) @ beta, index=exog.index)
    X = np.asarray(exog, dtype=float)
    return (X.reshape(-1, len(beta)) if X.ndim == 1 else X) @ beta


def _bar_terms(res: MixedLMCompatResults) -> list[int]:
    """Indices of the model's lme4 bar terms among ``res.terms``."""
    bars = res.model._base_design.terms
    return [i for i, t in enumerate(res.terms) if any(t is b for b in bars)]


def _with_bar_terms(res, frame: pd.DataFrame, bars: list[int], notes: NewLevels) -> pd.Series:
    """Xβ plus the bar terms' effects, by the lme4-style prediction."""
    terms = res.terms
    form = [(t.name, t.lhs.replace(" ", "")) for t in terms]
    for i in bars:
        t = terms[i]
        if any(form[j] == form[i] for j in range(len(terms)) if j not in bars):
            raise NotImplementedError(
                f"the bar term ({t.lhs} | {t.name}) has the name and form of the groups' or a "
                "variance component's term; rename one of them to predict at group level"
            )
    re_form = "~" + " + ".join(f"({terms[i].lhs} | {terms[i].name})" for i in bars)
    try:
        out = lme4_predict(res, frame, re_form=re_form, allow_new_levels=False)
    except DataError as exc:
        if notes.strict:
            raise
        out = lme4_predict(res, frame, re_form=re_form, allow_new_levels=True)
        notes.note(str(exc).split(";")[0])
    return out.rename(None)


# ---- groups -------------------------------------------------------------------------------------


def _labels(groups, data, m: int) -> np.ndarray:
    """(m,) the group label of each new row: a column name of data, a Series or an array."""
    if isinstance(groups, str):
        if not isinstance(data, pd.DataFrame):
            raise DataError("groups as a column name needs exog as a DataFrame")
        if groups not in data.columns:
            raise UnknownColumnError(groups, data.columns, where="exog")
        values = data[groups]
    else:
        if isinstance(groups, pd.Series):
            validation.check_aligned(exog=data, groups=groups)
        values = groups
    out = np.asarray(values, dtype=object)
    if out.ndim != 1 or len(out) != m:
        raise DataError(
            f"groups must be a column name of exog or one label per new row ({m}), "
            f"got shape {np.shape(values)}"
        )
    return out


def _codes(model: MixedLM, labels: np.ndarray) -> np.ndarray:
    """(m,) index of each label among the model's groups; −1 for unseen or missing."""
    known = model.group_labels
    codes = pd.Index(known).get_indexer(labels)
    unmatched = [v for v in pd.unique(labels[codes < 0]) if not pd.isna(v)]
    as_text = {str(k): k for k in known}
    for v in unmatched:
        if str(v) in as_text:
            k = as_text[str(v)]
            raise DataError(
                f"group label {v!r} ({type(v).__name__}) matches the fitted group {k!r} "
                f"({type(k).__name__}) only as text: pass groups of the type used in the fit"
            )
    return codes


# ---- the re term --------------------------------------------------------------------------------


def _re_part(res, frame, exog_re, codes: np.ndarray, label_columns: set[str], named) -> np.ndarray:
    """(m,) exog_re row · the group's random effects (0 for unseen groups).

    ``label_columns``: names of columns that hold group labels; ``named``: the name of
    the groups argument (a column name or the Series' name), for messages.
    """
    m = len(codes)
    if not res.k_re:
        if exog_re is not None:
            raise DataError("the model has no exog_re: its random effects are variance components")
        return np.zeros(m)
    if exog_re is None:
        Z = _default_exog_re(res, frame, m)
    else:
        Z = _given_exog_re(res, exog_re, m, label_columns, named)
    B = res.b_blocks()[0]
    known = codes >= 0
    out = np.zeros(m)
    out[known] = np.einsum("ik,ik->i", Z[known], B[codes[known]])
    return out


def _intercept_columns(model: MixedLM) -> np.ndarray:
    """(k_re,) bool: exog_re columns that are all ones in the fitted data."""
    if model._cp is not None:  # streamed: the formula's intercept column
        return np.array([c == "(Intercept)" for c in model.layout.re_term.columns])
    Z = model.exog_re
    return np.all(Z == 1.0, axis=0) if len(Z) else np.zeros(Z.shape[1], dtype=bool)


def _default_exog_re(res, frame: pd.DataFrame | None, m: int) -> np.ndarray:
    """(m, k_re) exog_re of the new rows from the model's re_formula (or ones)."""
    model = res.model
    if _intercept_columns(model).all():
        return np.ones((m, res.k_re))
    if model.formula is None or frame is None:
        raise DataError(
            "pass exog_re=, the random-effects design of the new rows (m, "
            f"{res.k_re}) with columns {list(model.exog_re_names)}: the model's exog_re is "
            "not built from a formula on exog"
        )
    spec = _training_spec(model, ("re",), model._re_formula)
    coded, unseen, missing = _coded(spec, frame, model._base_design.formula_env)
    if unseen.any():
        raise DataError(
            "the re_formula's factors have levels not in the fitted data in rows "
            f"{list(frame.index[unseen][:5])}"
        )
    Z = np.asarray(coded.toarray() if sp.issparse(coded) else coded, dtype=float)
    Z[missing] = np.nan
    return Z


def _given_exog_re(res, exog_re, m: int, label_columns: set[str], named) -> np.ndarray:
    """(m, k_re) a user's exog_re, its columns checked (and ordered) against the model's."""
    model = res.model

    def hint(problem: str) -> str:
        return _labels_hint(res, exog_re, problem, named)

    given = _column_names(exog_re)
    if given and set(given) & label_columns:
        raise DataError(hint("exog_re holds group labels"))
    try:
        Z, names, _ = as_matrix(exog_re, "exog_re")
    except DataError as exc:
        raise DataError(hint(str(exc))) from None
    if len(Z) != m:
        raise DataError(f"exog_re has {len(Z)} rows, exog has {m}")
    expected = list(model.exog_re_names)
    if names is not None:
        for ref in (expected, list(model.layout.re_term.columns)):
            if sorted(names) == sorted(ref):
                Z = Z[:, [names.index(c) for c in ref]]
                break
        else:
            raise DataError(hint(f"exog_re has columns {names}, not the model's"))
    if Z.shape[1] != res.k_re:
        raise DataError(hint(f"exog_re has {Z.shape[1]} columns, not {res.k_re}"))
    ones = _intercept_columns(model)
    bad = ones & ~np.all((Z == 1.0) | np.isnan(Z), axis=0)
    if bad.any():
        col = expected[int(np.flatnonzero(bad)[0])]
        raise DataError(hint(f"exog_re's column {col!r} is the random intercept (ones)"))
    return Z


def _column_names(a) -> list[str]:
    if isinstance(a, pd.DataFrame):
        return [str(c) for c in a.columns]
    if isinstance(a, pd.Series) and a.name is not None:
        return [str(a.name)]
    return []


def _labels_hint(res, exog_re, problem: str, named) -> str:
    """The message for an exog_re that may be group labels: what exog_re is, the right call."""
    given = _column_names(exog_re)
    col = given[0] if len(given) == 1 else named if named is not None else "<group column>"
    return (
        f"{problem}: exog_re is the random-effects design of the new rows (columns "
        f"{list(res.model.exog_re_names)}), not their group labels. For group-level "
        f"predictions pass the labels as groups: result.predict(new_data, "
        f'groups=new_data["{col}"])'
    )


# ---- variance components ------------------------------------------------------------------------


def _vc_part(res, frame, exog_vc: Mapping | None, codes: np.ndarray, notes: NewLevels):
    """(m,) each variance component's columns times the group's modes of those columns."""
    model = res.model
    nested = [(j, v) for j, v in enumerate(model.layout.vc) if v.level_group is not None]
    given = dict(exog_vc or {})
    unknown = sorted(set(given) - {v.name for _, v in nested})
    if unknown:
        have = [v.name for _, v in nested]
        raise DataError(f"exog_vc has {unknown}, not variance components of the model {have}")
    out = np.zeros(len(codes))
    s0 = 1 if res.k_re else 0
    blocks = res.b_blocks()
    for j, v in nested:
        effects = _VCEffects(v, blocks[s0 + j], model.n_groups)
        for rows, M, names, unseen, missing in _vc_designs(
            model, v, given.get(v.name), frame, codes
        ):
            out[rows] += effects.times(M, names, codes[rows], unseen, notes)
            out[rows[missing]] = np.nan
    return out


class _VCEffects:
    """The modes of one variance component's columns, by group."""

    def __init__(self, v: VCInfo, B: np.ndarray, n_groups: int):
        self.v, self.B = v, B
        self.levels_of = group_rows(v.level_group, n_groups)

    def of(self, g: int) -> tuple[list[str], np.ndarray]:
        """(names, modes) of group g's columns, in the fit's order."""
        names = self.v.colnames.get(g, [])
        return names, self.B[self.levels_of[g]].ravel()[: len(names)]

    def times(self, M, names: list[str] | None, g: np.ndarray, unseen, notes) -> np.ndarray:
        """(r,) M's rows (r, c) times the modes of their group's columns.

        Columns are matched by name (``names``) or by position within the group's columns
        (None). Nonzero entries of columns the group did not have are new levels.
        """
        coo = sp.coo_matrix(np.asarray(M, dtype=float) if not sp.issparse(M) else M)
        nz = coo.data != 0
        r, c, x = coo.row[nz], coo.col[nz], coo.data[nz]
        C = coo.shape[1]
        keep = (g[r] >= 0) & ~unseen[r]
        pos = None if names is None else {n: i for i, n in enumerate(names)}
        keys, vals = [], []
        for gg in distinct(g[r[keep]]):
            own, modes = self.of(int(gg))
            for a, (name, b) in enumerate(zip(own, modes)):
                col = a if pos is None else pos.get(name)
                if col is not None and col < C:
                    keys.append(int(gg) * C + col)
                    vals.append(b)
        order = np.argsort(np.asarray(keys, dtype=np.int64))
        keys_s = np.asarray(keys, dtype=np.int64)[order]
        vals_s = np.asarray(vals, dtype=float)[order]
        want = g[r].astype(np.int64) * C + c
        at = np.minimum(np.searchsorted(keys_s, want), max(len(keys_s) - 1, 0))
        found = keep & (keys_s[at] == want) if len(keys_s) else np.zeros(len(r), dtype=bool)
        if (keep & ~found).any():
            cols = sorted({str(names[i]) if names else str(i) for i in c[keep & ~found]})
            notes.note(
                f"column(s) {cols[:5]} of variance component {self.v.name!r} in groups "
                "that did not have them"
            )
        if (unseen & (g >= 0)).any():
            notes.note(f"levels of variance component {self.v.name!r} not in the fitted data")
        out = np.zeros(coo.shape[0])
        np.add.at(out, r[found], x[found] * vals_s[at[found]])
        return out


def _vc_designs(
    model: MixedLM, v: VCInfo, given, frame: pd.DataFrame | None, codes: np.ndarray
) -> Iterator[tuple[np.ndarray, object, list[str] | None, np.ndarray, np.ndarray]]:
    """Blocks (rows, design (r, c), column names or None, unseen-level rows, missing rows).

    The design is ``given`` (a DataFrame matched by column name, an array by position
    within each group's columns) or built from the model's vc_formula entry with the fit's
    coding: once for indicator designs, group by group for formulas statsmodels evaluates
    within each group.
    """
    m = len(codes)
    if given is not None:
        names = [str(c) for c in given.columns] if isinstance(given, pd.DataFrame) else None
        M = np.asarray(given, dtype=float)
        M = M[:, None] if M.ndim == 1 else M
        if len(M) != m:
            raise DataError(f"exog_vc[{v.name!r}] has {len(M)} rows, exog has {m}")
        yield np.arange(m), M, names, np.zeros(m, dtype=bool), np.isnan(M).any(axis=1)
        return
    formula = (model._vc_formula or {}).get(v.name)
    if formula is None or frame is None:
        raise DataError(
            f"pass exog_vc={{{v.name!r}: design of the new rows}}: variance component "
            f"{v.name!r} is not built from a formula on exog"
        )
    spec = _training_spec(model, ("vc", v.name), formula)
    cols = [str(c) for c in spec.column_names]
    if not ("Intercept" in cols or any("[T." in c for c in cols)):
        M, unseen, missing = _coded(spec, frame, model._base_design.formula_env)
        yield np.arange(m), M, cols, unseen, missing
        return
    fitted_rows = group_rows(model.layout.group_codes, model.n_groups)
    for g in distinct(codes[codes >= 0]):
        rows = np.flatnonzero(codes == g)
        spec_g = _training_spec(model, ("vc", v.name, int(g)), formula, fitted_rows[g])
        M, unseen, missing = _coded(spec_g, frame.iloc[rows], model._base_design.formula_env)
        yield rows, M, [str(c) for c in spec_g.column_names], unseen, missing


# ---- formulas on new data with the fit's coding ------------------------------------------------


def _training_spec(model: MixedLM, key: tuple, formula: str, rows: np.ndarray | None = None):
    """The formulaic spec of ``formula`` on the fitted rows (cached on the model)."""
    cache = model.__dict__.setdefault("_prediction_specs", {})
    if key not in cache and model.data_frame is None:  # streamed: the one coder's specs
        re_term = model.layout.re_term
        spec = None
        if key == ("re",) and re_term is not None:
            spec = model._base_design.term_specs.get(re_term.lhs)
        if spec is None:
            raise NeedsRowsError(
                f"coding {formula!r} on new rows", "pass exog_re/exog_vc for the new rows"
            )
        cache[key] = spec
    if key not in cache:
        data = model.data_frame if rows is None else model.data_frame.iloc[rows]
        env = model._base_design.formula_env
        cache[key] = evaluate(formula, data, sparse=True, env=env).model_spec
    return cache[key]


def _coded(spec, frame: pd.DataFrame, env: dict) -> tuple[object, np.ndarray, np.ndarray]:
    """(model matrix (m, c) coded as in the fit, unseen-level rows (m,), missing rows (m,)).

    ``env``: values of names the formula uses that are not data columns."""
    needed = {str(v) for v in spec.required_variables} - set(env)
    check_columns(frame, needed)
    missing = frame[sorted(needed)].isna().any(axis=1).to_numpy()
    unseen = np.zeros(len(frame), dtype=bool)
    frame = frame[sorted(needed)].copy()
    for name, levels in categorical_levels(spec)[0].items():
        if name in frame.columns:
            vals = frame[name].astype(object)
            if all(isinstance(x, str) for x in levels):
                vals = vals.where(vals.isna(), vals.astype(str))
            new = vals.notna().to_numpy() & ~vals.isin(levels).to_numpy()
            frame[name] = vals.where(~new, None)  # flagged; coded as missing
            unseen |= new
    data, context = prepare_frame(frame, needed)
    context.update(env)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataMismatchWarning)  # those rows are in `unseen`
        mm = spec.get_model_matrix(data, context=context, na_action="ignore")
    return mm, unseen, missing
