"""New data coded like the training data, through the fit's stored formulaic specs.

The fixed part and each random-effects term keep the formulaic ``ModelSpec`` they were
built with. New rows go through those specs (``spec.get_model_matrix``), so factors keep
the training levels and contrasts, and stateful transforms (``center``, ``scale``,
``poly``, ``bs``) use the training data's means, scales and bases. Factors get the
training levels first; a level that was not in the training data raises.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from formulaic import model_matrix
from formulaic.transforms.contrasts import PolyContrasts

from ..errors import DataError, UnknownColumnError
from . import validation as check
from .design import Design, prepare_frame, r_style_name
from .transforms import R_TRANSFORMS
from .variables import formula_variables

if TYPE_CHECKING:
    from ..engine.terms import RandomEffectsTerm

__all__ = [
    "categorical_levels",
    "known_levels",
    "fixed_rows",
    "term_rows",
    "column_names",
    "check_columns",
    "formula_offset",
]



def categorical_levels(spec) -> tuple[dict[str, list], set[str]]:
    """Raw variable → categories for categorical factors, and the poly-coded (ordered) ones."""
    levels: dict[str, list] = {}
    poly: set[str] = set()
    for expr, (kind, state) in spec.encoder_state.items():
        if getattr(kind, "value", kind) != "categorical" or "categories" not in state:
            continue
        m = re.fullmatch(r"\s*C\(\s*([A-Za-z_][\w.]*)\s*(,.*)?\)\s*", expr)
        name = m.group(1) if m else expr
        levels[name] = list(state["categories"])
        contrasts = getattr(state.get("contrasts"), "contrasts", None)
        if isinstance(contrasts, PolyContrasts):
            poly.add(name)
    return levels, poly

def known_levels(design: Design) -> tuple[dict[str, list], set[str]]:
    """Levels of every categorical variable the fit coded, and the poly-coded ones."""
    levels: dict[str, list] = {}
    poly: set[str] = set()
    specs = [design.fixed_spec, *getattr(design, "term_specs", {}).values()]
    for spec in specs:
        if spec is None:
            continue
        lev, pol = categorical_levels(spec)
        for name, values in lev.items():
            levels.setdefault(name, values)
        poly |= pol
    return levels, poly


def _spec_variables(spec) -> set[str]:
    """The data variables a formulaic spec evaluated (ordered factors came as context, as
    did R's transforms, which are not variables)."""
    out: set[str] = set()
    for source, names in spec.variables_by_source.items():
        if source == "transforms":
            continue
        out |= {
            str(v) for v in names if source != "context" or str(v).split(".")[0] not in R_TRANSFORMS
        }
    return out


def check_columns(newdata: pd.DataFrame, names: set[str]) -> None:
    for name in sorted(names):
        if name not in newdata.columns:
            raise UnknownColumnError(name, newdata.columns, where="newdata")


def _coerce(newdata: pd.DataFrame, levels: dict[str, list], poly: set[str]) -> pd.DataFrame:
    """Categorical columns with the training levels (unseen levels raise)."""
    out = newdata.copy()
    for name, lev in levels.items():
        if name not in out.columns:
            continue
        vals = out[name].astype(object)
        if all(isinstance(v, str) for v in lev):
            vals = vals.where(vals.isna(), vals.astype(str))
        unseen = vals.notna().to_numpy() & ~vals.isin(lev).to_numpy()
        if unseen.any():
            new = ", ".join(repr(v) for v in pd.unique(vals[unseen])[:5])
            raise DataError(f"factor {name!r} has new level(s) {new} not in the fitted data")
        out[name] = pd.Categorical(vals, categories=lev, ordered=name in poly)
    return out


def _frame(design: Design, newdata: pd.DataFrame, names: set[str]) -> tuple[pd.DataFrame, dict]:
    """Data and formulaic context for the variables ``names`` of newdata."""
    check_columns(newdata, names)
    levels, poly = known_levels(design)
    data = _coerce(newdata[sorted(names)], levels, poly)
    return prepare_frame(data, names)


def _coded(spec, frame: pd.DataFrame, context: dict, what: str):
    with check.formula_evaluation(str(spec.formula), f"{what} on newdata"):
        return spec.get_model_matrix(frame, context=context, na_action="ignore")


def fixed_rows(design: Design, newdata: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(X (m, p) of newdata, (m,) True where one of its variables is missing)."""
    spec = design.fixed_spec
    if spec is None:
        raise ValueError("this model was not built from a formula: pass exog to predict instead")
    names = _spec_variables(spec) - set(design.formula_env)
    frame, context = _frame(design, newdata, names)
    context.update(design.formula_env)
    mm = _coded(spec, frame, context, "fixed-effects formula")
    X = mm[design.fixed_names].to_numpy(dtype=float)
    missing = newdata[sorted(names)].isna().any(axis=1).to_numpy() if names else None
    return X, np.zeros(len(newdata), bool) if missing is None else missing


def formula_offset(design: Design, newdata: pd.DataFrame) -> np.ndarray | float:
    """(m,) the formula's ``offset(...)`` terms on newdata (0.0 when it has none)."""
    total: np.ndarray | float = 0.0
    for spec in getattr(design, "offset_specs", ()):
        frame, context = _frame(design, newdata, _spec_variables(spec) - set(design.formula_env))
        context.update(design.formula_env)
        total = total + np.asarray(_coded(spec, frame, context, "offset"), dtype=float)[:, 0]
    return total


def term_rows(design: Design, term: RandomEffectsTerm, newdata: pd.DataFrame) -> np.ndarray:
    """(m, k) the term's model rows for newdata, its columns matched by name."""
    if term.lhs.replace(" ", "") == "1" and term.columns == ("(Intercept)",):
        return np.ones((len(newdata), 1))
    spec = getattr(design, "term_specs", {}).get(term.lhs)
    names = formula_variables("~" + term.lhs)
    if spec is not None:
        names = _spec_variables(spec)
    names = names - set(design.formula_env)
    frame, context = _frame(design, newdata, names)
    context.update(design.formula_env)
    if spec is not None:
        mm = _coded(spec, frame, context, f"random-effects term ({term.lhs} | {term.name})")
    else:  # a term of statsmodels' API: coded afresh
        with check.formula_evaluation(term.lhs, "random-effects term on newdata"):
            mm = model_matrix(term.lhs, frame, context=context, na_action="ignore")
    got = {r_style_name(str(c)): i for i, c in enumerate(mm.columns)}
    missing = [c for c in term.columns if c not in got]
    if missing:
        raise DataError(
            f"cannot code the columns {missing} of ({term.lhs} | {term.name}) on newdata"
        )
    return np.asarray(mm, dtype=float)[:, [got[c] for c in term.columns]]


def column_names(design: Design, lhs: str) -> list[str]:
    """The columns (R's names) that ``lhs`` of a bar term has in this fit's coding.

    Factors get the fit's levels and contrasts; the names of numeric columns do not
    depend on their values, so a small synthetic frame is coded.
    """
    names = formula_variables("~" + lhs)
    levels, poly = known_levels(design)
    n = max([8] + [len(levels[v]) for v in names if v in levels])
    frame = {}
    for v in sorted(names):
        if v in levels:
            codes = np.arange(n) % len(levels[v])
            frame[v] = pd.Categorical.from_codes(codes, levels[v], ordered=v in poly)
        else:
            frame[v] = np.linspace(1.0, 2.0, n)
    data, context = prepare_frame(pd.DataFrame(frame, index=range(n)), set(frame))
    with check.formula_evaluation(lhs, "re_form term"):
        mm = model_matrix(lhs, data, context=context, na_action="ignore")
    return [r_style_name(str(c)) for c in mm.columns]
