"""Fits on data that do not fit in memory: Parquet streamed in chunks, Dask partitions.

The fit needs the data only through the cross-products of [Z X y] (`sparselme.crossprod`),
which are sums over rows. So a model is fitted in two passes over the data, then on the
driver:

1. **Levels.** Every chunk reports the levels it observes (grouping factors, categorical
   fixed-effect variables, the observed combinations of ``a:b`` groupings) and its
   missing values; the union gives the global levels in the order the in-memory path
   uses (category order for categoricals, sorted values otherwise, the first variable
   slowest for ``a:b``). The fixed-effects and random-effects model specs are then built
   once on a small *representative frame* that holds every level, so each chunk is coded
   identically (a chunk missing a level still gets its column).
2. **Cross-products.** Each chunk is coded with those specs and its cross-products are
   summed (``CrossProducts.__add__``), together with the R factor of a tall-skinny QR of
   X, which detects redundant fixed-effects columns exactly as the in-memory QR does.
3. **Fit.** The engine runs on the summed cross-products; its cost depends on the number
   of random effects, not on the number of rows.

Sources: a Parquet file or folder (``str``/``pathlib.Path``), a ``pyarrow.dataset.Dataset``
or ``pyarrow.Table`` (record batches of ``chunk_size`` rows, read one at a time), or a
``dask.dataframe.DataFrame`` (one task per partition, reduced as a tree on the active
``dask.distributed`` client, or on dask's local scheduler when there is none).

Fitted values and residuals of a streamed fit are not stored: ``fittedvalues`` and
``resid`` are `StreamedColumn` objects that recompute X and Z rows chunk by chunk
when asked (``iter_chunks()``, ``to_numpy()``, ``to_dask()``, or any numpy operation).
"""

from __future__ import annotations

import ast
import os
import re
import uuid
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from formulaic import Formula, model_matrix
from formulaic.transforms.contrasts import C, PolyContrasts
from numpy.lib.mixins import NDArrayOperatorsMixin

from ..data.design import (
    Design,
    group_codes,
    lme4_term_order,
    missing_mask,
    r_style_name,
    warn_dropped_columns,
)
from ..data.formula import BarTerm, ParsedFormula, parse_formula
from ..data.frames import csv_dataset, is_csv_path
from ..data.overlap import check_distinct_terms
from ..data.rank import redundant_columns
from ..data.validation import is_streamable  # the input test lives with the other checks
from ..engine.crossprod import CrossProducts, chunk_crossproducts
from ..engine.rows import TermRows
from ..engine.terms import RandomEffectsTerm
from ..errors import DataError, DroppedRowsWarning, MissingDataError, UnknownColumnError

__all__ = [
    "DEFAULT_CHUNK_ROWS",
    "is_streamable",
    "as_source",
    "ParquetSource",
    "DaskSource",
    "StreamedRows",
    "StreamedColumn",
    "streamed_design",
    "level_pass",
    "mixedlm_formula",
    "mixedlm_streamed",
]

# Rows per chunk (Parquet record batches; slices of a Dask partition). About 150 bytes
# per row are live while a chunk is coded (X, y, codes, sort keys), so ~150 MB by default.
DEFAULT_CHUNK_ROWS = 1_000_000
# A numeric fixed-effect variable with at most this many distinct values keeps them all
# (it may be used as a factor, C(x)); beyond it only a sample is kept.
NUMERIC_LEVELS_CAP = 10_000
_SAMPLE_ROWS = 64


# ======================================================================================
# Sources: where the chunks come from
# ======================================================================================


def as_source(data: Any, chunk_size: int | None = None) -> ParquetSource | DaskSource:
    """The chunk source for ``data`` (see `is_streamable`)."""
    rows = DEFAULT_CHUNK_ROWS if chunk_size is None else int(chunk_size)
    if rows < 1:
        raise ValueError(f"chunk_size must be a positive number of rows, not {chunk_size!r}")
    if isinstance(data, (str, os.PathLike)):
        if is_csv_path(data):  # a large CSV file (small ones are read into memory)
            return ParquetSource(csv_dataset(data), rows)
        return ParquetSource.from_path(data, rows)
    module = type(data).__module__
    if module.startswith("pyarrow"):
        import pyarrow.dataset as ds

        return ParquetSource(data if isinstance(data, ds.Dataset) else ds.dataset(data), rows)
    if module.startswith("dask"):
        return DaskSource(data, rows)
    raise TypeError(f"cannot stream data of type {type(data).__name__}")


def _require(module: str, extra: str):
    try:
        return __import__(module, fromlist=["_"])
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError(
            f"{module} is needed for this input: pip install 'sparselme[{extra}]'"
        ) from None


class ParquetSource:
    """A pyarrow dataset read as record batches of at most ``chunk_size`` rows.

    Batches are read one at a time (read-ahead of one batch and one file), so memory is
    bounded by the chunk size, not by the data.
    """

    def __init__(self, dataset, chunk_size: int = DEFAULT_CHUNK_ROWS):
        self.dataset = dataset
        self.chunk_size = int(chunk_size)
        self._dictionaries: dict[str, tuple] = {}

    @classmethod
    def from_path(cls, path: str | os.PathLike, chunk_size: int) -> ParquetSource:
        _require("pyarrow", "parquet")
        import pyarrow.dataset as ds

        p = Path(path)
        if not p.exists():
            raise FileNotFoundError(f"no such Parquet file or folder: {str(path)!r}")
        if p.is_file() and p.suffix.lower() in (".csv", ".tsv", ".txt", ".gz", ".json"):
            raise DataError(
                f"{str(path)!r} is not Parquet: only Parquet files and folders are streamed; "
                "read other formats with pandas (or dask.dataframe) first"
            )
        try:
            dataset = ds.dataset(str(p), format="parquet", partitioning="hive")
        except Exception as exc:  # pyarrow's errors vary by version
            raise DataError(f"cannot open {str(path)!r} as Parquet: {exc}") from exc
        return cls(dataset, chunk_size)

    @property
    def columns(self) -> list[str]:
        return list(self.dataset.schema.names)

    def chunks(self, columns: Sequence[str]) -> Iterator[pd.DataFrame]:
        """pandas chunks of the given columns (dictionary columns become categoricals)."""
        batches = self.dataset.to_batches(
            columns=list(columns),
            batch_size=self.chunk_size,
            batch_readahead=1,
            fragment_readahead=1,
        )
        for batch in batches:
            if batch.num_rows:
                yield self._to_pandas(batch)

    def _to_pandas(self, batch) -> pd.DataFrame:
        """``batch.to_pandas()``, with dictionary columns decoded once per distinct
        dictionary (not per batch: a 100,000-level dictionary costs more than its codes)."""
        import pyarrow as pa
        import pyarrow.compute as pc

        cols = {}
        for name, arr in zip(batch.schema.names, batch.columns):
            if not pa.types.is_dictionary(arr.type):
                cols[name] = arr.to_pandas()
                continue
            cached = self._dictionaries.get(name)
            if cached is None or not cached[0].equals(arr.dictionary):
                cats = pd.Index(arr.dictionary.to_pandas())
                dtype = pd.CategoricalDtype(cats, ordered=arr.type.ordered)
                cached = self._dictionaries[name] = (arr.dictionary, dtype)
            codes = pc.fill_null(arr.indices, -1).to_numpy(zero_copy_only=False)
            cols[name] = pd.Categorical.from_codes(codes, dtype=cached[1])
        return pd.DataFrame(cols)

    def reduce(self, fn: Callable, columns: Sequence[str], *args):
        """Σ fn(chunk, *args) over the chunks (``None`` results are skipped)."""
        acc = _Accumulator()
        for df in self.chunks(columns):
            acc.add(fn(df, *args))
        return acc.result()

    def map_chunks(self, fn: Callable, columns: Sequence[str], *args) -> Iterator[Any]:
        """fn(chunk, *args) for each chunk, in order."""
        for df in self.chunks(columns):
            yield fn(df, *args)


class DaskSource:
    """A Dask DataFrame: one task per partition (sliced into ``chunk_size`` rows), the
    results summed by a tree of tasks on the active ``dask.distributed`` client (or
    dask's default local scheduler). Only the sum travels back to the driver."""

    def __init__(self, ddf, chunk_size: int = DEFAULT_CHUNK_ROWS, tree_width: int = 8):
        _require("dask.dataframe", "dask")
        self.ddf = ddf
        self.chunk_size = int(chunk_size)
        self.tree_width = int(tree_width)

    @property
    def columns(self) -> list[str]:
        return [str(c) for c in self.ddf.columns]

    @staticmethod
    def _shared(args: tuple) -> tuple:
        """Large arguments (the coder) become one graph key each, so they are serialized
        once and sent to each worker once, not embedded in every task."""
        import dask

        return tuple(
            dask.delayed(a, name=f"sparselme-arg-{uuid.uuid4().hex}", traverse=False) for a in args
        )

    def _partitions(self, columns: Sequence[str]):
        return self.ddf[list(columns)].to_delayed()

    def reduce(self, fn: Callable, columns: Sequence[str], *args):
        import dask

        shared = self._shared(args)
        parts = [
            dask.delayed(_reduce_frame, pure=False)(p, fn, self.chunk_size, *shared)
            for p in self._partitions(columns)
        ]
        while len(parts) > 1:
            w = self.tree_width
            parts = [
                dask.delayed(_sum_parts, pure=False)(*parts[i : i + w])
                for i in range(0, len(parts), w)
            ]
        if not parts:
            return None
        return dask.compute(parts[0])[0]

    def map_chunks(self, fn: Callable, columns: Sequence[str], *args) -> Iterator[Any]:
        import dask

        shared = self._shared(args)
        for p in self._partitions(columns):
            yield dask.compute(dask.delayed(fn, pure=False)(p, *shared))[0]

    def map_partitions(self, fn: Callable, columns: Sequence[str], *args, meta=None):
        """A lazy Dask collection of fn(partition, *args)."""
        return self.ddf[list(columns)].map_partitions(fn, *self._shared(args), meta=meta)


def _reduce_frame(df: pd.DataFrame, fn: Callable, chunk_size: int, *args):
    """Σ fn(slice, *args) over slices of ``chunk_size`` rows of one partition."""
    acc = _Accumulator()
    for start in range(0, len(df), chunk_size):
        acc.add(fn(df.iloc[start : start + chunk_size], *args))
    return acc.result()


def _sum_parts(*parts):
    items = [p for p in parts if p is not None]
    if not items:
        return None
    return type(items[0]).sum(items)


class _Accumulator:
    """Sums a stream of summaries like a binary counter: every item is merged O(log m)
    times, and at most log₂ m partial sums are held at once."""

    def __init__(self):
        self._stack: list[tuple[int, Any]] = []

    def add(self, item) -> None:
        if item is None:
            return
        level = 0
        while self._stack and self._stack[-1][0] == level:
            _, prev = self._stack.pop()
            item = _sum_parts(prev, item)
            level += 1
        self._stack.append((level, item))

    def result(self):
        return _sum_parts(*[s for _, s in self._stack])


# ======================================================================================
# Pass 1: levels, missing values, a sample
# ======================================================================================


@dataclass
class _VariableLevels:
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
    def of(cls, col: pd.Series, cap: int | None) -> _VariableLevels:
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

    def merge(self, other: _VariableLevels, cap: int | None) -> _VariableLevels:
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
            return _VariableLevels(
                "categorical", categories=cats, observed=observed, ordered=self.ordered
            )
        a, b = self.as_values(), other.as_values()
        numeric = a.numeric and b.numeric
        if a.overflow or b.overflow:
            return _VariableLevels("values", overflow=True, numeric=numeric, sample=sample)
        values = a.values.append(b.values).unique()
        if cap is not None and numeric and len(values) > cap:
            return _VariableLevels("values", overflow=True, numeric=numeric, sample=sample)
        return _VariableLevels("values", values=pd.Index(values), numeric=numeric, sample=sample)

    def as_values(self) -> _VariableLevels:
        if self.kind == "values":
            return self
        return _VariableLevels("values", values=self.categories[self.observed])

    def levels(self) -> pd.Index | None:
        """The observed levels in the in-memory path's order (None after overflow)."""
        if self.kind == "categorical":
            return self.categories[self.observed]
        if self.overflow:
            return None
        return pd.Index(pd.factorize(self.values, sort=True)[1])


@dataclass
class _Plan:
    """What pass 1 looks at."""

    needed: list[str]  # formula variables (sorted)
    group_vars: set[str]
    interactions: list[tuple[str, ...]]
    weights: str | None
    offset: str | None
    missing: str

    @property
    def columns(self) -> list[str]:
        extra = [c for c in (self.weights, self.offset) if c is not None]
        return list(dict.fromkeys(self.needed + extra))

    def cap(self, name: str) -> int | None:
        return None if name in self.group_vars else NUMERIC_LEVELS_CAP


@dataclass
class _LevelSummary:
    nrows: int
    bad: int
    bad_counts: dict[str, int]
    variables: dict[str, _VariableLevels]
    combos: dict[tuple[str, ...], pd.DataFrame]
    plan: _Plan

    @classmethod
    def sum(cls, parts: Sequence[_LevelSummary]) -> _LevelSummary:
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
        )


def _bad_rows(df: pd.DataFrame, plan: _Plan) -> tuple[np.ndarray, dict[str, int]]:
    """Rows with missing/non-finite values in the model's variables (as design.py checks)."""
    bad = np.zeros(len(df), dtype=bool)
    counts: dict[str, int] = {}
    for name in plan.needed:
        isbad = missing_mask(df[name])
        if isbad.any():
            counts[name] = int(isbad.sum())
            bad |= isbad
    for label, name in (("weights", plan.weights), ("offset", plan.offset)):
        if name is not None:
            isbad = ~np.isfinite(df[name].to_numpy(dtype=float, na_value=np.nan))
            if isbad.any():
                counts[label] = int(isbad.sum())
                bad |= isbad
    return bad, counts


def _keep_rows(df: pd.DataFrame, plan: _Plan) -> pd.DataFrame:
    """The chunk without bad rows when ``missing="drop"``."""
    if plan.missing != "drop":
        return df
    bad, _ = _bad_rows(df, plan)
    return df.loc[~bad] if bad.any() else df


def _summarize_levels(df: pd.DataFrame, plan: _Plan) -> _LevelSummary:
    bad, counts = _bad_rows(df, plan)
    nrows = len(df)
    if bad.any() and plan.missing == "drop":
        df = df.loc[~bad]
    variables = {name: _VariableLevels.of(df[name], plan.cap(name)) for name in plan.needed}
    combos = {g: df[list(g)].drop_duplicates() for g in plan.interactions}
    return _LevelSummary(nrows, int(bad.sum()), counts, variables, combos, plan)


# ======================================================================================
# The chunk coder: levels + model specs → X, y, codes of any chunk
# ======================================================================================


@dataclass
class _EncodedChunk:
    y: np.ndarray  # (n,) response
    X: np.ndarray  # (n, p_full) fixed effects, all columns
    weights: np.ndarray | None
    offset: np.ndarray | None
    codes: list[np.ndarray]  # per term (n,)
    models: list[np.ndarray]  # per term (n, k)
    index: pd.Index


@dataclass
class _TermCoding:
    bar: BarTerm
    spec: Any  # formulaic ModelSpec of the term's left-hand side
    columns: tuple[str, ...]
    levels: pd.Index  # labels, as group_codes gives them
    keys: np.ndarray | None  # sorted observed combined codes of an a:b grouping


class ChunkCoder:
    """Codes any chunk of the data exactly as the in-memory path codes all of it.

    Built once on the driver from the pass-1 summary; shipped to the workers.
    """

    def __init__(self, parsed: ParsedFormula, summary: _LevelSummary):
        plan = summary.plan
        self.plan = plan
        self.parsed = parsed
        self.formula_vars = sorted(set(plan.needed) - _only_grouping(parsed))
        self.levels: dict[str, pd.Index | None] = {
            name: v.levels() for name, v in summary.variables.items()
        }
        self.kinds = {name: v for name, v in summary.variables.items()}
        frame, context = self._representative_frame(summary)
        mm = model_matrix(parsed.fixed_formula(), frame, context=context, na_action="ignore")
        self.fixed_spec = mm.model_spec
        self.fixed_names = [str(c) for c in mm.rhs.columns]
        self.response_name = str(parsed.response).strip()
        terms = []
        for bar in parsed.bars:
            mt = model_matrix(bar.lhs, frame, context=context, na_action="ignore")
            codes_levels, keys = self._group_levels(bar.group, summary)
            terms.append(
                _TermCoding(
                    bar=bar,
                    spec=mt.model_spec,
                    columns=tuple(r_style_name(str(c)) for c in mt.columns),
                    levels=codes_levels,
                    keys=keys,
                )
            )
        order = lme4_term_order([len(t.levels) for t in terms])  # lme4's order
        self.terms = [terms[i] for i in order]
        self._check_specs([mm.model_spec.lhs, mm.model_spec.rhs] + [t.spec for t in terms])

    # ---- construction -----------------------------------------------------------------------
    def _representative_frame(self, summary: _LevelSummary) -> tuple[pd.DataFrame, dict]:
        """A few rows holding every level of every formula variable (numeric: a sample)."""
        sizes = [len(lv) for n in self.formula_vars if (lv := self.levels[n]) is not None]
        n = max([1, *sizes])
        cols = {}
        for name in self.formula_vars:
            v, lv = summary.variables[name], self.levels[name]
            if lv is not None and len(lv):
                values = np.resize(lv.to_numpy(), n)
            elif v.sample is not None and len(v.sample):
                values = np.resize(v.sample, n)
            else:
                values = np.zeros(n)
            if v.kind == "categorical":
                values = pd.Categorical(values, categories=lv, ordered=v.ordered)
            cols[name] = pd.Series(values)
        return self._formula_frame(pd.DataFrame(cols))

    def _group_levels(
        self, group: tuple[str, ...], summary: _LevelSummary
    ) -> tuple[pd.Index, np.ndarray | None]:
        """Labels of a grouping factor's levels via design.group_codes on its distinct rows."""
        if len(group) == 1:
            raw = self.levels[group[0]]
            frame = pd.DataFrame({group[0]: pd.Categorical(raw, categories=raw)})
            return group_codes(frame, group)[1], None
        combos = summary.combos[group]
        frame = pd.DataFrame(
            {v: pd.Categorical(combos[v], categories=self.levels[v]) for v in group}
        )
        _, labels = group_codes(frame, group)
        return labels, np.unique(self._combined(frame, group))

    def _combined(self, frame: pd.DataFrame, group: tuple[str, ...]) -> np.ndarray:
        key = np.zeros(len(frame), dtype=np.int64)
        for v in group:
            key = key * len(self.levels[v]) + self._var_codes(frame[v], v)
        return key

    def _check_specs(self, specs: Sequence) -> None:
        for spec in specs:
            state = getattr(spec, "transform_state", None) or {}
            if state:
                raise DataError(
                    f"streamed fits cannot use stateful transforms ({', '.join(state)}): they "
                    "would be learned per chunk; compute the column before fitting"
                )
        overflowed = [n for n in self.formula_vars if self.levels[n] is None]
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

    # ---- coding a chunk -------------------------------------------------------------------------
    def _formula_frame(self, df: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
        """design.prepare_frame with the global levels (no per-chunk dropping of levels)."""
        frame, context = {}, {}
        for name in self.formula_vars:
            col = df[name]
            v, lv = self.kinds[name], self.levels[name]
            if v.kind == "categorical":
                if not isinstance(col.dtype, pd.CategoricalDtype):
                    col = pd.Series(pd.Categorical(col, categories=lv), index=df.index)
                elif not col.cat.categories.equals(lv):
                    col = col.cat.set_categories(lv)
                if col.cat.ordered and len(lv) > 1:
                    context[name] = C(col, PolyContrasts())
                    continue
            elif lv is not None and not v.numeric and not pd.api.types.is_bool_dtype(col):
                col = pd.Series(pd.Categorical(col, categories=lv), index=df.index)
            frame[name] = col
        return pd.DataFrame(frame, index=df.index), context

    def _var_codes(self, col: pd.Series, name: str) -> np.ndarray:
        lv = self.levels[name]
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

    def term_codes(self, df: pd.DataFrame, term: _TermCoding) -> np.ndarray:
        group = term.bar.group
        if term.keys is None:
            return self._var_codes(df[group[0]], group[0])
        key = self._combined(df, group)
        codes = np.searchsorted(term.keys, key)
        if len(key) and not np.array_equal(term.keys[np.minimum(codes, len(term.keys) - 1)], key):
            raise DataError(f"grouping {term.bar.group_name!r} changed between passes")
        return codes.astype(np.intp)

    def encode(self, df: pd.DataFrame) -> _EncodedChunk:
        """X, y, weights, offset and per-term codes and model rows of one chunk."""
        df = _keep_rows(df, self.plan)
        if len(df) == 0:
            p = len(self.fixed_names)
            return _EncodedChunk(
                y=np.zeros(0),
                X=np.zeros((0, p)),
                weights=None if self.plan.weights is None else np.zeros(0),
                offset=None if self.plan.offset is None else np.zeros(0),
                codes=[np.zeros(0, dtype=np.intp) for _ in self.terms],
                models=[np.zeros((0, len(t.columns))) for t in self.terms],
                index=df.index,
            )
        frame, context = self._formula_frame(df)
        mm = self.fixed_spec.get_model_matrix(frame, context=context)
        y = np.asarray(mm.lhs, dtype=float).ravel()
        X = np.asarray(mm.rhs, dtype=float).reshape(len(df), -1)
        models = []
        for t in self.terms:
            if t.columns == ("(Intercept)",):
                models.append(np.ones((len(df), 1)))
            else:
                m = t.spec.get_model_matrix(frame, context=context)
                models.append(np.asarray(m, dtype=float).reshape(len(df), -1))
        w = None if self.plan.weights is None else df[self.plan.weights].to_numpy(float)
        off = None if self.plan.offset is None else df[self.plan.offset].to_numpy(float)
        return _EncodedChunk(
            y=y,
            X=X,
            weights=w,
            offset=off,
            codes=[self.term_codes(df, t) for t in self.terms],
            models=models,
            index=df.index,
        )


def _only_grouping(parsed: ParsedFormula) -> set[str]:
    """Variables that appear only as grouping factors (not in X or a term's model)."""
    used = _formula_variables(parsed.fixed_formula())
    for bar in parsed.bars:
        used |= _formula_variables("~" + bar.lhs)
    groups = {v for bar in parsed.bars for v in bar.group}
    return groups - used


def _formula_variables(text: str) -> set[str]:
    try:
        return {str(v) for v in Formula(text).required_variables}
    except Exception:
        return set()


def _check_chunkable(texts: Sequence[str]) -> None:
    """Reject transforms whose value depends on other rows (learned per chunk otherwise)."""
    from formulaic.transforms import TRANSFORMS

    bad = {
        name
        for name, fn in TRANSFORMS.items()
        if getattr(fn, "__is_stateful_transform__", False) and name != "Q"
    } | {"lag"}
    for text in texts:
        try:
            factors = [
                fa.expr for part in _formula_parts(Formula(text)) for t in part for fa in t.factors
            ]
        except Exception:  # formulaic reports malformed formulas itself, later
            continue
        for expr in factors:
            try:
                tree = ast.parse(expr, mode="eval")
            except SyntaxError:
                continue
            for node in ast.walk(tree):
                if isinstance(node, ast.Call) and getattr(node.func, "id", None) in bad:
                    raise DataError(
                        f"streamed fits cannot use stateful transforms ({expr}): they would be "
                        "learned per chunk; compute the column before fitting"
                    )


def _formula_parts(formula) -> list:
    """The term lists of a formulaic Formula (one- or two-sided)."""
    if hasattr(formula, "lhs") and hasattr(formula, "rhs"):
        return [formula.lhs, formula.rhs]
    return [formula]


# ======================================================================================
# Pass 2: cross-products and the R factor of X
# ======================================================================================


@dataclass
class _Moments:
    """Cross-products of a set of rows, the R of X's QR and whether each term's model is
    all ones (an intercept-only term, as RandomEffectsTerm.intercept_only tests)."""

    cp: CrossProducts
    R: np.ndarray  # (≤p, p)
    ones: np.ndarray  # (n_terms,) bool

    @classmethod
    def sum(cls, parts: Sequence[_Moments]) -> _Moments:
        return cls(
            cp=CrossProducts.sum([m.cp for m in parts]),
            R=_stack_r([m.R for m in parts]),
            ones=np.logical_and.reduce([m.ones for m in parts]),
        )


def _stack_r(blocks: Sequence[np.ndarray]) -> np.ndarray:
    """R of the QR of the rows stacked (tall-skinny QR)."""
    A = np.vstack(blocks)
    if A.shape[1] == 0:
        return np.zeros((0, 0))
    return np.linalg.qr(A, mode="r")


def _chunk_moments(df: pd.DataFrame, coder: ChunkCoder) -> _Moments | None:
    enc = coder.encode(df)
    if len(enc.y) == 0:
        return None
    rows = [TermRows(c, m, len(t.levels)) for c, m, t in zip(enc.codes, enc.models, coder.terms)]
    y = enc.y if enc.offset is None else enc.y - enc.offset
    cp = chunk_crossproducts(rows, enc.X, y, enc.weights)
    ones = np.array([m.shape[1] == 1 and bool(np.all(m == 1.0)) for m in enc.models], dtype=bool)
    return _Moments(cp=cp, R=_stack_r([enc.X]), ones=ones)


# ======================================================================================
# The model and its results
# ======================================================================================


@dataclass
class StreamedRows:
    """Where a streamed design's rows are: the source and the coder that codes its chunks.

    ``keep`` (p,) are the fixed-effects columns kept after dropping redundant ones.
    """

    source: Any
    coder: ChunkCoder
    keep: np.ndarray

    def fitted_values(self, design: Design, beta: np.ndarray, b_blocks) -> StreamedColumn:
        """Xβ + Zb (+ offset), computed chunk by chunk on request."""
        return StreamedColumn(self, design.nobs, self._state(beta, b_blocks), "fitted")

    def response(self, design: Design):
        """y, read chunk by chunk on request: y − fitted is the residual column."""
        return _Response()

    def _state(self, beta: np.ndarray, b_blocks) -> tuple:
        full = np.zeros(len(self.coder.fixed_names))
        full[self.keep] = beta
        return self.coder, full, list(b_blocks)


class _Response:
    """y of a streamed design: only y − fitted (a residual column) is ever formed."""

    def __sub__(self, fitted: StreamedColumn) -> StreamedColumn:
        return StreamedColumn(fitted.rows, len(fitted), fitted.state, "resid")


def _chunk_values(
    df: pd.DataFrame, state: tuple[ChunkCoder, np.ndarray, list[np.ndarray]], what: str
) -> pd.Series:
    """Fitted values (or residuals) of one chunk, indexed like the chunk's kept rows."""
    coder, beta, blocks = state
    enc = coder.encode(df)
    fit = enc.X @ beta
    for codes, model, B in zip(enc.codes, enc.models, blocks):
        fit += np.einsum("nk,nk->n", model, B[codes])
    if enc.offset is not None:
        fit += enc.offset
    values = enc.y - fit if what == "resid" else fit
    return pd.Series(values, index=enc.index, name=what)


class StreamedColumn(NDArrayOperatorsMixin):
    """An n-vector of a streamed fit (fitted values or residuals), never stored.

    ``iter_chunks()`` yields it chunk by chunk; ``to_numpy()`` (and any numpy operation,
    ``res.resid / res.sigma``, ``np.quantile(res.resid, q)``) materializes it; for a Dask
    fit ``to_dask()`` gives a lazy Dask Series computed per partition.
    """

    def __init__(self, rows: StreamedRows, n: int, state: tuple, what: str):
        self.rows = rows
        self.n = n
        self.state = state
        self.what = what

    @property
    def _source(self):
        return self.rows.source

    def _columns(self) -> list[str]:
        return self.rows.coder.plan.columns

    def __len__(self) -> int:
        return self.n

    @property
    def shape(self) -> tuple[int]:
        return (len(self),)

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(float)

    def iter_chunks(self) -> Iterator[pd.Series]:
        """The values chunk by chunk (pandas Series indexed like the source's rows)."""
        yield from self._source.map_chunks(_chunk_values, self._columns(), self.state, self.what)

    def head(self, n: int = 5) -> np.ndarray:
        """The first n values (reads only the chunks needed)."""
        out, got = [], 0
        for s in self.iter_chunks():
            out.append(s.to_numpy())
            got += len(s)
            if got >= n:
                break
        return np.concatenate(out)[:n] if out else np.zeros(0)

    def to_dask(self):
        """A lazy Dask Series (Dask sources only)."""
        if not isinstance(self._source, DaskSource):
            raise TypeError("to_dask() needs a fit on a Dask DataFrame; use iter_chunks()")
        meta = pd.Series(dtype=float, name=self.what)
        return self._source.map_partitions(
            _chunk_values, self._columns(), self.state, self.what, meta=meta
        )

    def to_numpy(self) -> np.ndarray:
        if isinstance(self._source, DaskSource):
            return self.to_dask().compute().to_numpy()
        parts = [s.to_numpy() for s in self.iter_chunks()]
        return np.concatenate(parts) if parts else np.zeros(0)

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        a = self.to_numpy()
        return a if dtype is None else a.astype(dtype)

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        inputs = tuple(x.to_numpy() if isinstance(x, StreamedColumn) else x for x in inputs)
        return getattr(ufunc, method)(*inputs, **kwargs)

    def __getitem__(self, key):
        return self.to_numpy()[key]

    def __repr__(self) -> str:
        return f"<StreamedColumn {self.what}: {len(self)} values, computed per chunk>"


# ======================================================================================
# The two passes
# ======================================================================================


def _check_names(source, names: Sequence[str]) -> None:
    columns = source.columns
    for name in sorted(set(names)):
        if name not in columns:
            raise UnknownColumnError(name, columns)


def _column_arg(value, what: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise DataError(
        f"{what} must be a column name for streamed data (an array would have to be "
        "aligned with rows that are never all in memory)"
    )


def level_pass(
    parsed: ParsedFormula,
    source: Any,
    weights: str | None = None,
    offset: str | None = None,
    missing: str = "raise",
) -> ChunkCoder:
    """Pass 1 over ``source``: the global levels and missing values, as a `ChunkCoder`
    that codes any chunk as the in-memory path codes all the data. ``source``: anything
    with ``columns`` and ``reduce(fn, columns, *args)`` (`ParquetSource`, `DaskSource`)."""
    if parsed.response is None:
        raise DataError("the formula has no response: write it as 'y ~ ...'")
    if missing not in ("none", "raise", "drop"):
        raise ValueError(f"missing must be 'none', 'raise' or 'drop', not {missing!r}")
    weights, offset = _column_arg(weights, "weights"), _column_arg(offset, "offset")
    if parsed.offsets:
        raise DataError(
            f"streamed fits take the offset as a column: compute offset({parsed.offsets[0]}) "
            "into a column and pass offset='<column>'"
        )
    _check_chunkable([parsed.fixed_formula()] + ["~" + bar.lhs for bar in parsed.bars])
    needed = _formula_variables(parsed.fixed_formula())
    for bar in parsed.bars:
        needed |= _formula_variables("~" + bar.lhs) | set(bar.group)
    plan = _Plan(
        needed=sorted(needed),
        group_vars={v for bar in parsed.bars for v in bar.group},
        interactions=sorted({bar.group for bar in parsed.bars if len(bar.group) > 1}),
        weights=weights,
        offset=offset,
        missing=missing,
    )
    _check_names(source, plan.columns)
    summary: _LevelSummary | None = source.reduce(_summarize_levels, plan.columns, plan)
    if summary is None or summary.nrows == 0:
        raise DataError("no observations: the data are empty")
    _report_missing(summary, plan)
    if summary.nrows == summary.bad:
        raise DataError("no observations: every row has missing values")
    return ChunkCoder(parsed, summary)


def streamed_design(
    parsed: ParsedFormula,
    source: ParquetSource | DaskSource,
    weights: str | None = None,
    offset: str | None = None,
    missing: str = "raise",
) -> tuple[Design, CrossProducts]:
    """Both passes over ``source``: the design (structure only) and its cross-products."""
    # ---- pass 1: levels and missing values
    coder = level_pass(parsed, source, weights, offset, missing)
    plan = coder.plan

    # ---- pass 2: cross-products
    moments: _Moments = source.reduce(_chunk_moments, plan.columns, coder)
    p_full = len(coder.fixed_names)
    R = np.zeros((p_full, p_full))
    R[: moments.R.shape[0]] = moments.R
    dropped = redundant_columns(R)
    names = coder.fixed_names
    if dropped:
        warn_dropped_columns([names[j] for j in dropped], stacklevel=4)
    keep = np.array([j for j in range(p_full) if j not in set(dropped)], dtype=np.intp)
    cp = moments.cp.select_fixed(keep) if dropped else moments.cp
    terms = [
        RandomEffectsTerm(
            name=t.bar.group_name,
            columns=t.columns,
            levels=t.levels,
            covariance="unstructured",
            group_vars=tuple(t.bar.group),
            lhs=t.bar.lhs,
            intercept_only=len(t.columns) == 1 and bool(moments.ones[i]),
        )
        for i, t in enumerate(coder.terms)
    ]
    check_distinct_terms(terms, cp=cp)
    design = Design(
        y=None,
        X=None,
        terms=terms,
        rows=None,
        fixed_names=[names[j] for j in keep],
        response_name=coder.response_name,
        dropped_columns=[names[j] for j in dropped],
        fixed_spec=coder.fixed_spec.rhs,
        parsed=parsed,
        source=StreamedRows(source, coder, keep),
        nrows=cp.nobs,
    )
    return design, cp


def _report_missing(summary: _LevelSummary, plan: _Plan) -> None:
    """design.py's messages, with counts over all the data."""
    if not summary.bad:
        return
    order = plan.needed + ["weights", "offset"]
    listed = ", ".join(f"{n} ({summary.bad_counts[n]})" for n in order if n in summary.bad_counts)
    if plan.missing == "drop":
        warnings.warn(
            f"dropped {summary.bad} of {summary.nrows} rows with missing or non-finite values "
            f"in: {listed}",
            DroppedRowsWarning,
            stacklevel=6,
        )
        return
    raise MissingDataError(
        f"{summary.bad} of {summary.nrows} rows have missing or non-finite values in the model's "
        f"variables: {listed}. Pass missing='drop' to drop these rows."
    )


# ======================================================================================
# Entry points used by lmer() and mixedlm()
# ======================================================================================


_INDICATOR_VC = re.compile(r"^\s*~?\s*0\s*\+\s*(?:C\(\s*(\w+)\s*\)|(\w+))\s*$")


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
        m = _INDICATOR_VC.match(vc_formula[name])
        if m is None:
            raise NotImplementedError(
                f"vc_formula {name!r}: {vc_formula[name]!r} — streamed fits take variance "
                "components of the form '0 + C(var)'; write others as lme4 bar terms"
            )
        var = m.group(1) or m.group(2)
        if m.group(1) or categorical(var):
            extra.append(f"(1 | {groups}:{var})")
        else:
            extra.append(f"(0 + {var} | {groups})")
    return " + ".join([formula] + extra)


def mixedlm_streamed(
    formula: str,
    data: Any,
    re_formula: str | None = None,
    vc_formula: Mapping[str, str] | None = None,
    subset=None,
    missing: str = "none",
    groups=None,
    chunk_size: int | None = None,
) -> tuple[Design, CrossProducts]:
    """``mixedlm`` on streamed data: its design and cross-products, in two passes.

    The statsmodels spelling is compiled to lme4 terms (`mixedlm_formula`); the
    results are the engine's (statsmodels' Hessian-based variance-parameter SEs and its
    summary layout need the rows in memory).
    """
    if subset is not None:
        raise DataError("subset is not supported for streamed data: filter the source instead")
    source = as_source(data, chunk_size)

    def categorical(var: str) -> bool:
        return _is_categorical_column(source, var)

    text = mixedlm_formula(formula, groups, re_formula, vc_formula, categorical)
    return streamed_design(
        parse_formula(text), source, missing="drop" if missing == "drop" else "raise"
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
