"""Pass 1 over streamed data: levels, missing values, weights and a sample, per chunk.

Every chunk reports the levels it observes (grouping factors, categorical fixed-effect
variables, the observed combinations of ``a:b`` groupings), its missing values and the
counts of its weights; the summaries add up (`LevelSummary.sum`). The union gives the
global levels in the order the in-memory path uses (category order for categoricals,
sorted values otherwise, the first variable slowest for ``a:b``), from which the one coder
(`sparselme.data.coder.Coder.from_levels`) is built on a small representative frame.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..data import validation
from ..data.checks import WeightCounts
from ..data.coder import Coder, VariableCoding, model_variables
from ..data.formula import ParsedFormula
from ..data.missing import bad_rows
from ..data.variables import formula_variables
from ..errors import DataError

__all__ = [
    "NUMERIC_LEVELS_CAP",
    "VariableLevels",
    "Plan",
    "LevelSummary",
    "plan_of",
    "summarize_levels",
    "coder_of",
]

# A numeric fixed-effect variable with at most this many distinct values keeps them all
# (it may be used as a factor, C(x)); beyond it only a sample is kept.
NUMERIC_LEVELS_CAP = 10_000
_SAMPLE_ROWS = 64


@dataclass
class VariableLevels:
    """What the chunks saw of one variable.

    kind ``"categorical"``: ``categories`` (union, in order of first appearance) and
    ``observed`` (bool per category); kind ``"values"``: distinct ``values`` (unsorted),
    or ``overflow`` when a capped numeric variable has too many.
    """

    kind: str
    categories: pd.Index | None = None
    observed: np.ndarray | None = None
    ordered: bool = False
    values: pd.Index | None = None
    overflow: bool = False
    numeric: bool = False
    sample: np.ndarray | None = None

    @classmethod
    def of(cls, col: pd.Series, cap: int | None) -> VariableLevels:
        if isinstance(col.dtype, pd.CategoricalDtype):
            codes = col.cat.codes.to_numpy()
            cats = col.cat.categories
            observed = np.bincount(codes[codes >= 0], minlength=len(cats)) > 0
            return cls("categorical", categories=cats, observed=observed, ordered=col.cat.ordered)
        numeric = pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col)
        sample = col.to_numpy()[:_SAMPLE_ROWS] if numeric else None
        vals = col.dropna()
        if cap is not None and numeric:
            if len(pd.unique(vals.iloc[: 4 * cap])) > cap or len(pd.unique(vals)) > cap:
                return cls("values", overflow=True, numeric=True, sample=sample)
        return cls("values", values=pd.Index(pd.unique(vals)), numeric=numeric, sample=sample)

    def merge(self, other: VariableLevels, cap: int | None) -> VariableLevels:
        sample = self.sample if self.sample is not None else other.sample
        if self.kind == other.kind == "categorical":
            if self.categories.equals(other.categories):
                cats, observed = self.categories, self.observed | other.observed
            else:
                new = other.categories.difference(self.categories, sort=False)
                cats = self.categories.append(new)
                observed = np.zeros(len(cats), dtype=bool)
                observed[: len(self.categories)] = self.observed
                observed[cats.get_indexer(other.categories)] |= other.observed
            return VariableLevels(
                "categorical", categories=cats, observed=observed, ordered=self.ordered
            )
        a, b = self.as_values(), other.as_values()
        numeric = a.numeric and b.numeric
        if a.overflow or b.overflow:
            return VariableLevels("values", overflow=True, numeric=numeric, sample=sample)
        values = a.values.append(b.values).unique()
        if cap is not None and numeric and len(values) > cap:
            return VariableLevels("values", overflow=True, numeric=numeric, sample=sample)
        return VariableLevels("values", values=pd.Index(values), numeric=numeric, sample=sample)

    def as_values(self) -> VariableLevels:
        if self.kind == "values":
            return self
        return VariableLevels("values", values=self.categories[self.observed])

    def levels(self) -> pd.Index | None:
        """The observed levels in the in-memory path's order (None after overflow)."""
        if self.kind == "categorical":
            return self.categories[self.observed]
        if self.overflow:
            return None
        return pd.Index(pd.factorize(self.values, sort=True)[1])


@dataclass
class Plan:
    """What pass 1 looks at."""

    needed: list[str]  # formula variables (sorted)
    group_vars: set[str]
    interactions: list[tuple[str, ...]]
    weights: str | None
    offset: str | None
    missing: str
    response: list[str]
    predictors: list[str]

    @property
    def columns(self) -> list[str]:
        extra = [c for c in (self.weights, self.offset) if c is not None]
        return list(dict.fromkeys(self.needed + extra))

    def cap(self, name: str) -> int | None:
        return None if name in self.group_vars else NUMERIC_LEVELS_CAP


@dataclass
class LevelSummary:
    nrows: int
    bad: int
    bad_counts: dict[str, int]
    variables: dict[str, VariableLevels]
    combos: dict[tuple[str, ...], pd.DataFrame]
    plan: Plan
    weights: WeightCounts | None = None
    error: DataError | None = None  # a type error of a chunk, raised after the reduction

    def raise_error(self) -> None:
        """The first chunk's type error (in the data's order), as data in memory raise it."""
        if self.error is not None:
            raise self.error

    @classmethod
    def sum(cls, parts: Sequence[LevelSummary]) -> LevelSummary:
        failed = [p for p in parts if p.error is not None]
        if failed:
            return failed[0]
        first = parts[0]
        plan = first.plan
        variables = dict(first.variables)
        combos = dict(first.combos)
        counts = dict(first.bad_counts)
        for other in parts[1:]:
            for name, v in other.variables.items():
                variables[name] = variables[name].merge(v, plan.cap(name))
            for key, frame in other.combos.items():
                combos[key] = pd.concat([combos[key], frame], ignore_index=True).drop_duplicates()
            for name, c in other.bad_counts.items():
                counts[name] = counts.get(name, 0) + c
        return cls(
            nrows=sum(p.nrows for p in parts),
            bad=sum(p.bad for p in parts),
            bad_counts=counts,
            variables=variables,
            combos=combos,
            plan=plan,
            weights=None if first.weights is None else WeightCounts.sum([p.weights for p in parts]),
        )


def plan_of(parsed: ParsedFormula, weights: str | None, offset: str | None, missing: str) -> Plan:
    """What pass 1 reads of a parsed formula's data."""
    needed, predictors, response = model_variables(parsed)
    return Plan(
        response=sorted(response),
        predictors=sorted(predictors),
        needed=sorted(needed),
        group_vars={v for bar in parsed.bars for v in bar.group},
        interactions=sorted({bar.group for bar in parsed.bars if len(bar.group) > 1}),
        weights=weights,
        offset=offset,
        missing=missing,
    )


def summarize_levels(df: pd.DataFrame, plan: Plan) -> LevelSummary:
    """Pass 1 on one chunk: the column types are checked (as for data in memory), then
    missing values, weights and levels are counted."""
    try:
        validation.check_variable_types(df, plan.response, plan.predictors)
        for label, name in (("weights", plan.weights), ("offset", plan.offset)):
            if name is not None:
                validation.check_numeric(df[name], name, f"{label} column")
    except DataError as exc:  # reported for the first chunk in order, not the first to run
        return LevelSummary(len(df), 0, {}, {}, {}, plan, None, exc)
    df = validation.numbers_as_float(df, set(plan.response) | set(plan.predictors))
    columns = [(name, df[name]) for name in plan.needed]
    for label, name in (("weights", plan.weights), ("offset", plan.offset)):
        if name is not None:
            columns.append((label, df[name]))
    bad, counts = bad_rows(columns, len(df))
    nrows = len(df)
    if bad.any():
        df = df.loc[~bad]
    wc = None
    if plan.weights is not None:
        w = df[plan.weights].to_numpy(dtype=float, na_value=np.nan)
        wc = WeightCounts.of(w)
        if wc.zero:  # rows of weight 0 are left out: their levels do not count
            df = df.loc[w != 0]
    variables = {name: VariableLevels.of(df[name], plan.cap(name)) for name in plan.needed}
    combos = {g: df[list(g)].drop_duplicates() for g in plan.interactions}
    return LevelSummary(nrows, int(bad.sum()), counts, variables, combos, plan, wc)


def coder_of(parsed: ParsedFormula, summary: LevelSummary) -> Coder:
    """The one coder, built from the global levels of pass 1."""
    plan = summary.plan
    grouping_only = plan.group_vars - _model_columns(parsed)
    variables, samples = {}, {}
    for name in plan.needed:
        if name in grouping_only:
            continue
        v = summary.variables[name]
        lv = v.levels()
        if v.kind == "categorical":
            variables[name] = VariableCoding(lv, v.ordered, True)
        elif lv is not None and not v.numeric:
            variables[name] = VariableCoding(lv)
        else:
            variables[name] = VariableCoding()
            samples[name] = lv.to_numpy() if lv is not None else v.sample
    group_levels = {name: summary.variables[name].levels() for name in plan.group_vars}
    coder = Coder.from_levels(
        parsed, variables, group_levels, samples, summary.combos, plan.weights, plan.offset
    )
    overflowed = [
        n for n, v in variables.items() if v.categories is None and summary.variables[n].overflow
    ]
    _check_factors(coder, overflowed)
    return coder


def _model_columns(parsed: ParsedFormula) -> set[str]:
    """Variables of X or of a term's model rows (not only grouping factors)."""
    used = formula_variables(parsed.fixed_formula())
    for bar in parsed.bars:
        used |= formula_variables("~" + bar.lhs)
    return used


def _check_factors(coder: Coder, overflowed: Sequence[str]) -> None:
    """A numeric variable with too many values to keep them all cannot be a factor."""
    specs = [coder.fixed_spec.rhs, *coder.term_specs.values()]
    for spec in specs:
        for key, (kind, _) in (getattr(spec, "encoder_state", None) or {}).items():
            if getattr(kind, "value", kind) != "categorical":
                continue
            for name in overflowed:
                if re.search(rf"(?<![\w.]){re.escape(name)}(?![\w.])", str(key)):
                    raise DataError(
                        f"{name!r} is numeric with more than {NUMERIC_LEVELS_CAP} distinct "
                        f"values but is used as a factor ({key}); store it as a "
                        "categorical (dictionary) column to stream it"
                    )
