"""The one coder: a parsed formula and learned model specs → y, X, weights, offset, Z's rows.

A `Coder` is learned once from a frame and then codes any frame or chunk the same way:

* **in memory** (`Coder.learn`) the frame is the data itself, so formulaic's stateful
  transforms (``center``, ``scale``, ``poly``, ``bs``) learn the training data's means,
  scales and bases, and the data are coded while learning (they are one chunk);
* **streamed** (`Coder.from_levels`) the frame is a small *representative frame* that holds
  every level the first pass over the data saw. Stateful transforms are refused there
  (`StatefulTransformError`): they would be learned per chunk.

Either way `Coder.code` turns a frame (a chunk of the data, new data) into a `CodedChunk`:
y, X with the learned columns, weights and offset, and per term the codes into the
*global* levels and the model rows. New data for predictions are coded through the same
specs (`sparselme.data.coding`).

Formulas may call R's functions (`sparselme.data.transforms`) and, in memory, names of the
caller's namespace that are not data columns (``env``, statsmodels' ``eval_env``).
"""

from __future__ import annotations

import ast
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from formulaic import Formula, model_matrix
from formulaic.transforms.contrasts import C, PolyContrasts

from ..errors import DataError, StatefulTransformError
from . import validation
from .formula import BarTerm, ParsedFormula
from .frames import level_labels
from .missing import bad_rows
from .rnames import r_label
from .transforms import R_TRANSFORMS
from .variables import formula_variables

__all__ = [
    "VariableCoding",
    "TermCoding",
    "CodedChunk",
    "Coder",
    "r_style_name",
    "lme4_term_order",
    "group_coding",
    "model_variables",
    "refuse_stateful_transforms",
    "nonfinite_counts",
]


def r_style_name(name: str) -> str:
    """formulaic column name → R's: ``Intercept``→``(Intercept)``, ``f[T.b]``→``fb``,
    ``I(x ** 2)``→``I(x^2)``, ``x 2``→`` `x 2` `` (see `sparselme.data.rnames`)."""
    if name == "Intercept":
        return "(Intercept)"
    return r_label(name)


def lme4_term_order(nlevels: Sequence[int]) -> list[int]:
    """The order lme4 1.1 (``mkReTrms``) gives random-effects terms with these numbers of
    levels (formula order): kept when the counts never increase, else R's
    ``rev(order(nlevels))``, most levels first with ties in reverse formula order."""
    counts = list(nlevels)
    if all(a >= b for a, b in zip(counts, counts[1:])):
        return list(range(len(counts)))
    return sorted(range(len(counts)), key=lambda i: (counts[i], i), reverse=True)


def model_variables(
    parsed: ParsedFormula, env: Mapping[str, Any] | None = None
) -> tuple[set[str], set[str], set[str]]:
    """(all data variables, the predictors, the response's) of a parsed lme4 formula.

    The variables of its ``offset()`` terms are data variables too; names in ``env`` (the
    caller's namespace) are not.
    """
    needed = formula_variables(parsed.fixed_formula())
    for expr in parsed.offsets:
        needed |= formula_variables(f"~ I({expr})")
    predictors = set(needed)
    for bar in parsed.bars:
        lhs_vars = formula_variables("~" + bar.lhs)
        predictors |= lhs_vars
        needed |= lhs_vars | set(bar.group)
    response = formula_variables(f"~ {parsed.response}") if parsed.response else set()
    outside = set(env or ())
    return needed - outside, predictors - response - outside, response - outside


@dataclass
class VariableCoding:
    """How a formula variable's column is coded: ``categories`` (the global levels, in
    order; None: numbers as they are), ``ordered`` (polynomial contrasts)."""

    categories: pd.Index | None = None
    ordered: bool = False
    categorical: bool = False  # a pandas categorical (not text or numbers used as C(x))


@dataclass
class TermCoding:
    """A bar term's coding: its lhs spec, R-style column names, level labels and, for an
    ``a:b`` grouping, the sorted combined codes of its observed combinations."""

    bar: BarTerm
    spec: Any  # formulaic ModelSpec of the left-hand side
    columns: tuple[str, ...]
    levels: pd.Index
    keys: np.ndarray | None = None


@dataclass
class CodedChunk:
    """A coded frame: y (n,), X (n, p) all columns, weights/offset (n,) or None, per term
    codes (n,) and model rows (n, k), the frame's row index; ``dropped`` counts rows left
    out because evaluating the formula gave non-finite values there (per column)."""

    y: np.ndarray
    X: np.ndarray
    weights: np.ndarray | None
    offset: np.ndarray | None
    codes: list[np.ndarray]
    models: list[np.ndarray]
    index: pd.Index
    dropped: dict[str, int] = field(default_factory=dict)
    ndropped: int = 0

    @property
    def y_minus_offset(self) -> np.ndarray:
        return self.y if self.offset is None else self.y - self.offset


class Coder:
    """Codes frames of data for one parsed formula (see the module docstring).

    Attributes: ``fixed_spec`` (formulaic ModelSpecs, lhs and rhs), ``fixed_names``
    (formulaic names of X's columns), ``terms`` (`TermCoding`, in lme4's order,
    `lme4_term_order`), ``term_specs`` (by lhs), ``needed`` (data columns), ``env`` (values
    of names the formulas use that are not data columns).
    """

    def __init__(
        self,
        parsed: ParsedFormula,
        variables: Mapping[str, VariableCoding],
        group_levels: Mapping[str, pd.Index],
        frame: pd.DataFrame,
        term_levels: Mapping[tuple[str, ...], tuple[pd.Index, np.ndarray | None]],
        weights: str | None = None,
        offset: str | None = None,
        env: Mapping[str, Any] | None = None,
    ):
        self.parsed = parsed
        self.variables = dict(variables)
        self.group_levels = dict(group_levels)
        self.weights, self.offset = weights, offset
        self.env = dict(env or {})
        needed, _, _ = model_variables(parsed, self.env)
        self.needed = sorted(needed)
        self.formula_vars = sorted(self.variables)
        self.response_name = str(parsed.response).strip()
        data, context = self.formula_frame(frame)
        with validation.formula_evaluation(parsed.text):
            mm = model_matrix(parsed.fixed_formula(), data, context=context, na_action="ignore")
        self.fixed_spec = mm.model_spec
        self.fixed_names = [str(c) for c in mm.rhs.columns]
        self._learned = (mm, data, context)
        terms = []
        for bar in parsed.bars:
            with validation.formula_evaluation(bar.lhs, "random-effects term"):
                mt = model_matrix(bar.lhs, data, context=context, na_action="ignore")
            labels, keys = term_levels[bar.group]
            cols = tuple(r_style_name(str(c)) for c in mt.columns)
            terms.append((TermCoding(bar, mt.model_spec, cols, labels, keys), mt))
        order = lme4_term_order([len(t.levels) for t, _ in terms])
        self.terms = [terms[i][0] for i in order]
        self._learned_terms = [terms[i][1] for i in order]
        self.term_specs = {t.bar.lhs: t.spec for t in self.terms}

    # ---- construction ---------------------------------------------------------------------
    @classmethod
    def learn(
        cls, parsed: ParsedFormula, data: pd.DataFrame, env: Mapping[str, Any] | None = None
    ) -> tuple[Coder, CodedChunk, pd.DataFrame]:
        """The coder learned on data in memory, the data coded (one chunk) and the rhs
        model matrix (formulaic's DataFrame, which carries the spec). ``env``: values of
        names the formulas use that are not columns of ``data``."""
        needed, _, _ = model_variables(parsed, env)
        groups_only = _only_grouping(parsed)
        variables = {
            name: _coding_of(data[name]) for name in sorted(needed - groups_only) if name in data
        }
        group_vars = sorted({v for bar in parsed.bars for v in bar.group})
        levels, codes, term_levels = {}, {}, {}
        for bar in parsed.bars:
            if bar.group not in codes:
                c, labels, raw, keys = group_coding(data, bar.group)
                codes[bar.group], term_levels[bar.group] = c, (labels, keys)
                levels.update(raw)
        group_levels = {v: levels[v] for v in group_vars}
        coder = cls(parsed, variables, group_levels, data, term_levels, env=env)
        mm, _, _ = coder._learned
        y = validation.check_response_matrix(mm.lhs, coder.response_name)
        chunk = CodedChunk(
            y=y,
            X=np.asarray(mm.rhs, dtype=float).reshape(len(data), -1),
            weights=None,
            offset=None,
            codes=[codes[t.bar.group] for t in coder.terms],
            models=[
                np.asarray(m, dtype=float).reshape(len(data), -1) for m in coder._learned_terms
            ],
            index=data.index,
        )
        coder._learned_terms = []
        rhs = mm.rhs
        coder._learned = None
        return coder, chunk, rhs

    @classmethod
    def from_levels(
        cls,
        parsed: ParsedFormula,
        variables: Mapping[str, VariableCoding],
        group_levels: Mapping[str, pd.Index],
        samples: Mapping[str, np.ndarray],
        combos: Mapping[tuple[str, ...], pd.DataFrame],
        weights: str | None = None,
        offset: str | None = None,
    ) -> Coder:
        """The coder of streamed data from the levels a first pass saw: the specs are
        learned on a representative frame (every level; numeric variables: a sample)."""
        refuse_stateful_transforms(parsed)
        sizes = [len(v.categories) for v in variables.values() if v.categories is not None]
        n = max([1, *sizes])
        cols = {}
        for name, v in variables.items():
            if v.categories is not None and len(v.categories):
                values = np.resize(v.categories.to_numpy(), n)
            elif name in samples and len(samples[name]):
                values = np.resize(samples[name], n)
            else:
                values = np.zeros(n)
            cols[name] = pd.Series(values)
        term_levels = {}
        for bar in parsed.bars:
            group = bar.group
            if len(group) == 1:
                raw = group_levels[group[0]]
                frame = pd.DataFrame({group[0]: pd.Categorical(raw, categories=raw)})
            else:
                frame = pd.DataFrame(
                    {v: pd.Categorical(combos[group][v], categories=group_levels[v]) for v in group}
                )
            _, labels, _, keys = group_coding(frame, group)
            term_levels[group] = (labels, keys)
        coder = cls(
            parsed, variables, group_levels, pd.DataFrame(cols), term_levels, weights, offset
        )
        mm, _, _ = coder._learned
        coder._learned, coder._learned_terms = None, []
        specs = [mm.model_spec.lhs, mm.model_spec.rhs] + [t.spec for t in coder.terms]
        for spec in specs:
            state = getattr(spec, "transform_state", None) or {}
            if state:
                raise StatefulTransformError(", ".join(state))
        return coder

    @property
    def columns(self) -> list[str]:
        """The data columns a chunk must have: the formula's, then weights and offset."""
        extra = [c for c in (self.weights, self.offset) if c is not None]
        return list(dict.fromkeys(self.needed + extra))

    # ---- coding ---------------------------------------------------------------------------
    def formula_frame(self, df: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
        """The formula variables of ``df`` with the global levels (ordered categoricals go
        to formulaic's context with polynomial contrasts, as do R's functions and ``env``)."""
        frame, context = {}, dict(R_TRANSFORMS)
        for name in self.formula_vars:
            col = df[name]
            v = self.variables[name]
            lv = v.categories
            if lv is not None and not pd.api.types.is_bool_dtype(col):
                if not isinstance(col.dtype, pd.CategoricalDtype):
                    col = pd.Series(pd.Categorical(col, categories=lv, ordered=v.ordered), df.index)
                elif not col.cat.categories.equals(lv):
                    col = col.cat.set_categories(lv)
                if v.ordered and len(lv) > 1:
                    context[name] = C(col, PolyContrasts())
                    continue
            frame[name] = col
        context.update(self.env)
        return pd.DataFrame(frame, index=df.index), context

    def var_codes(self, col: pd.Series, name: str) -> np.ndarray:
        """(n,) codes of a grouping variable's values into its global levels."""
        lv = self.group_levels[name]
        if isinstance(col.dtype, pd.CategoricalDtype):
            if not col.cat.categories.equals(lv):
                col = col.cat.set_categories(lv)
            codes = col.cat.codes.to_numpy().astype(np.intp)
        else:
            codes = lv.get_indexer(col)
        if len(codes) and codes.min() < 0:
            raise DataError(
                f"{name!r} has values that the first pass over the data did not see; "
                "did the data change between passes?"
            )
        return codes

    def _combined(self, frame: pd.DataFrame, group: tuple[str, ...]) -> np.ndarray:
        key = np.zeros(len(frame), dtype=np.int64)
        for v in group:
            key = key * len(self.group_levels[v]) + self.var_codes(frame[v], v)
        return key

    def term_codes(self, df: pd.DataFrame, term: TermCoding) -> np.ndarray:
        """(n,) each row's level of the term's grouping factor (global levels)."""
        group = term.bar.group
        if term.keys is None:
            return self.var_codes(df[group[0]], group[0])
        key = self._combined(df, group)
        codes = np.searchsorted(term.keys, key)
        if len(key) and not np.array_equal(term.keys[np.minimum(codes, len(term.keys) - 1)], key):
            raise DataError(f"grouping {term.bar.group_name!r} changed between passes")
        return codes.astype(np.intp)

    def bad_rows(self, df: pd.DataFrame) -> tuple[np.ndarray, dict[str, int]]:
        """Rows with missing values in the model's columns (and weights/offset columns)."""
        columns = [(name, df[name]) for name in self.needed]
        for label, c in (("weights", self.weights), ("offset", self.offset)):
            if c is not None:
                columns.append((label, df[c]))
        return bad_rows(columns, len(df))

    def code(self, df: pd.DataFrame, drop_missing: bool = False) -> CodedChunk:
        """y, X, weights, offset, codes and model rows of ``df`` (rows where evaluating the
        formula gives non-finite values are left out and counted in ``dropped``).

        ``drop_missing``: rows with missing values (`bad_rows`) are left out first;
        rows with weight 0 always are.
        """
        if drop_missing:
            bad, _ = self.bad_rows(df)
            if bad.any():
                df = df.loc[~bad]
        if self.weights is not None:
            zero = df[self.weights].to_numpy(dtype=float, na_value=np.nan) == 0
            if zero.any():
                df = df.loc[~zero]
        p = len(self.fixed_names)
        if len(df) == 0:
            return CodedChunk(
                y=np.zeros(0),
                X=np.zeros((0, p)),
                weights=None if self.weights is None else np.zeros(0),
                offset=None if self.offset is None else np.zeros(0),
                codes=[np.zeros(0, dtype=np.intp) for _ in self.terms],
                models=[np.zeros((0, len(t.columns))) for t in self.terms],
                index=df.index,
            )
        frame, context = self.formula_frame(validation.numbers_as_float(df, self.formula_vars))
        mm = self.fixed_spec.get_model_matrix(frame, context=context)
        y = np.asarray(mm.lhs, dtype=float).reshape(len(df))
        X = np.asarray(mm.rhs, dtype=float).reshape(len(df), -1)
        nonfinite = ~np.isfinite(y) | ~np.isfinite(X).all(axis=1)
        dropped = {}
        if nonfinite.any():
            dropped = nonfinite_counts(self.response_name, y, self.fixed_names, X)
            keep = ~nonfinite
            df, y, X = df.loc[keep], y[keep], X[keep]
            frame, context = self.formula_frame(validation.numbers_as_float(df, self.formula_vars))
        models = []
        for t in self.terms:
            if t.columns == ("(Intercept)",):
                models.append(np.ones((len(df), 1)))
            else:
                m = t.spec.get_model_matrix(frame, context=context)
                models.append(np.asarray(m, dtype=float).reshape(len(df), -1))
        w = None if self.weights is None else df[self.weights].to_numpy(float)
        off = None if self.offset is None else df[self.offset].to_numpy(float)
        return CodedChunk(
            y=y,
            X=X,
            weights=w,
            offset=off,
            codes=[self.term_codes(df, t) for t in self.terms],
            models=models,
            index=df.index,
            dropped=dropped,
            ndropped=int(nonfinite.sum()),
        )


def nonfinite_counts(yname: str, y: np.ndarray, names: Sequence[str], X: np.ndarray) -> dict:
    counts = {}
    if (bad := int((~np.isfinite(y)).sum())) > 0:
        counts[yname] = bad
    for j, name in enumerate(names):
        if (bad := int((~np.isfinite(X[:, j])).sum())) > 0:
            counts[r_style_name(name)] = bad
    return counts


def _coding_of(col: pd.Series) -> VariableCoding:
    """A variable's coding learned from its column in memory (its observed levels)."""
    if isinstance(col.dtype, pd.CategoricalDtype):
        col = col.cat.remove_unused_categories()
        return VariableCoding(col.cat.categories, bool(col.cat.ordered), True)
    return VariableCoding()


def _only_grouping(parsed: ParsedFormula) -> set[str]:
    """Variables that appear only as grouping factors (not in X or a term's model)."""
    used = formula_variables(parsed.fixed_formula())
    for bar in parsed.bars:
        used |= formula_variables("~" + bar.lhs)
    return {v for bar in parsed.bars for v in bar.group} - used


def group_coding(
    data: pd.DataFrame, variables: Sequence[str]
) -> tuple[np.ndarray, pd.Index, dict[str, pd.Index], np.ndarray | None]:
    """A grouping factor (an interaction for several variables) of ``data``.

    Levels are in R's order: category order for categoricals, sorted values otherwise;
    for ``a:b`` the first variable varies slowest. Returns (codes (n,) into the observed
    levels, their labels, each variable's observed raw values, the sorted combined codes
    of the observed combinations for several variables).
    """
    codes = None
    raws: dict[str, pd.Index] = {}
    per_var = []
    for name in variables:
        col = data[name]
        if isinstance(col.dtype, pd.CategoricalDtype):
            c = col.cat.codes.to_numpy().astype(np.int64)
            present = np.bincount(c[c >= 0], minlength=len(col.cat.categories)) > 0
            cats = col.cat.categories
            remap = np.cumsum(present) - 1
            c = np.where(c >= 0, remap[np.maximum(c, 0)], -1)
            raw = cats[present]
        else:
            c, raw = pd.factorize(col, sort=True)
            c = c.astype(np.int64)
            raw = pd.Index(raw)
        raws[name] = raw
        per_var.append((c, level_labels(raw)))
    for c, lev in per_var:
        codes = c if codes is None else codes * len(lev) + c
    sizes = [len(lev) for _, lev in per_var]
    observed, dense = _observed_codes(codes, int(np.prod(sizes)))
    parts = []
    rem = observed
    for i in range(len(per_var) - 1, -1, -1):
        rem, idx = np.divmod(rem, sizes[i])
        parts.append(per_var[i][1][idx])
    parts.reverse()
    names = parts[0].astype(object)
    for part in parts[1:]:
        names = names + ":" + part.astype(object)
    keys = observed.astype(np.int64) if len(per_var) > 1 else None
    return dense.astype(np.intp), pd.Index(names, name=":".join(variables)), raws, keys


def _observed_codes(codes: np.ndarray, space: int) -> tuple[np.ndarray, np.ndarray]:
    """(sorted observed codes, each row's index among them) for codes in [0, space)."""
    if space <= max(8 * len(codes), 1 << 20):
        present = np.bincount(codes, minlength=space) > 0
        position = np.cumsum(present) - 1
        return np.flatnonzero(present), position[codes]
    return np.unique(codes, return_inverse=True)


def refuse_stateful_transforms(parsed: ParsedFormula) -> None:
    """`StatefulTransformError` for transforms whose value depends on other rows
    (``center``, ``scale``, ``poly``...): streamed, they would be learned per chunk."""
    from formulaic.transforms import TRANSFORMS

    bad = {
        name
        for name, fn in (*TRANSFORMS.items(), *R_TRANSFORMS.items())
        if getattr(fn, "__is_stateful_transform__", False) and name != "Q"
    } | {"lag"}
    for text in [parsed.fixed_formula()] + ["~" + bar.lhs for bar in parsed.bars]:
        try:
            formula = Formula(text)
            parts = [formula.lhs, formula.rhs] if hasattr(formula, "lhs") else [formula]
            factors = [fa.expr for part in parts for t in part for fa in t.factors]
        except Exception:  # formulaic reports malformed formulas itself, later
            continue
        for expr in factors:
            try:
                tree = ast.parse(expr, mode="eval")
            except SyntaxError:
                continue
            for node in ast.walk(tree):
                if not isinstance(node, ast.Call):
                    continue
                called = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
                if called in bad:  # poly(x), or splines.bs(x) as R's splines::bs(x)
                    raise StatefulTransformError(expr)
