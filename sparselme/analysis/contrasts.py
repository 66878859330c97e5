"""Hypothesis matrices for F tests of fixed-effect terms (lmerTest's type 1 and type 3).

* Type 1 (sequential): rows of the unit lower factor of the Doolittle decomposition of
  XᵀX, one block of rows per term.
* Type 3 (marginal, SAS-style): lmerTest's construction. With treatment coding X_t and the
  over-parametrized design rdX (every term coded with one indicator per level or cell),
  L = (X_t⁺ rdX)ᵀ expresses rdX's parameters in X_t's; each term's columns are made
  orthogonal to those of the terms containing it, and the result is mapped to the model's
  own coding by X_t⁺X. These maps depend on the coding only, not on the data, so they are
  computed on a synthetic grid of the factors' levels (the design keeps no data).
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
from formulaic import model_matrix

from ..data.coding import categorical_levels
from ..data.design import Design, prepare_frame, r_style_name
from ..engine.fixed_scaling import FixedScaling

__all__ = ["type1_contrasts", "type3_contrasts", "term_columns", "doolittle"]

_GRID_MAX = 20_000


def term_columns(design: Design) -> tuple[dict[str, list[int]], bool]:
    """Columns of X (indices into the kept columns) per fixed-effect term; has intercept.

    Term labels are formulaic's (``"recipe:temperature"``), the intercept term is left out.
    """
    spec = design.fixed_spec
    if spec is None:
        raise ValueError("F tests need a model built from a formula (no term structure)")
    pos = {name: i for i, name in enumerate(design.fixed_names)}
    out: dict[str, list[int]] = {}
    intercept = False
    for term, sl in spec.term_slices.items():
        cols = [pos[c] for c in spec.column_names[sl] if c in pos]
        if str(term) == "1":
            intercept = bool(cols)
            continue
        out[str(term)] = cols
    return out, intercept


def doolittle(x: np.ndarray, eps: float = 1e-6) -> tuple[np.ndarray, np.ndarray]:
    """x = L U with unit lower L (lmerTest's ``doolittle``, entries below eps zeroed)."""
    n = x.shape[0]
    L = np.eye(n)
    U = np.zeros((n, n))
    for i in range(n):
        U[i, :] = x[i, :] - L[i, :i] @ U[:i, :]
        if i + 1 < n:
            col = x[i + 1 :, i] - L[i + 1 :, :i] @ U[:i, i]
            L[i + 1 :, i] = 0.0 if abs(U[i, i]) < eps else col / U[i, i]
    L[np.abs(L) < eps] = 0.0
    U[np.abs(U) < eps] = 0.0
    return L, U


def type1_contrasts(design: Design) -> dict[str, np.ndarray]:
    """Sequential (type 1) hypotheses: per term an (r, p) matrix L of Lβ = 0.

    lmerTest's L is the transposed unit lower Doolittle factor of XᵀX. XᵀX of badly
    scaled columns (``x + 1e9``) is lost to cancellation, so the factor is taken of X̃ᵀX̃
    for the centred and scaled X̃ = X A (A upper triangular, `.fixed_scaling`):
    XᵀX = A⁻ᵀ X̃ᵀX̃ A⁻¹ gives L = diag(A) L̃ A⁻¹, the same matrix.
    """
    cols, _ = term_columns(design)
    X = design.X
    p = X.shape[1]
    if p == 0:
        return {}
    if p == 1:
        L = np.ones((1, 1))
    else:
        fixed = FixedScaling.of(X)
        Xs = fixed.apply(X)
        L = np.diag(np.diag(fixed.A)) @ doolittle(Xs.T @ Xs)[0].T @ fixed.A_inv
    return {term: L[c] for term, c in cols.items()}


def zapsmall(x: np.ndarray, digits: int = 7) -> np.ndarray:
    """R's ``zapsmall``: round to ``digits`` significant digits of the largest entry."""
    mx = np.max(np.abs(x)) if x.size else 0.0
    if mx == 0 or not np.isfinite(mx):
        return x
    return np.round(x, max(0, digits - math.ceil(math.log10(mx))))


def _synthetic_frame(spec, p: int, seed: int = 0) -> pd.DataFrame:
    """Every combination of the categorical levels (repeated), random numeric variables."""
    by_source = spec.variables_by_source  # transforms (I, log, ...) are functions, not data
    names = sorted({str(v) for src, vs in by_source.items() if src != "transforms" for v in vs})
    levels, poly = categorical_levels(spec)
    cats = [n for n in names if n in levels]
    rng = np.random.default_rng(seed)
    ncells = math.prod(len(levels[c]) for c in cats) if cats else 1
    if ncells <= _GRID_MAX:
        grid = list(itertools.product(*[range(len(levels[c])) for c in cats]))
        reps = max(2, math.ceil(2 * (p + 5) / max(len(grid), 1)))
        codes = np.array(grid * reps, dtype=int).reshape(len(grid) * reps, len(cats))
    else:
        codes = np.column_stack([rng.integers(len(levels[c]), size=_GRID_MAX) for c in cats])
    n = codes.shape[0]
    frame = {}
    for j, c in enumerate(cats):
        frame[c] = pd.Categorical.from_codes(codes[:, j], levels[c], ordered=c in poly)
    for name in names:
        if name not in levels:
            frame[name] = rng.standard_normal(n)
    return pd.DataFrame(frame)


def _plain(frame: pd.DataFrame) -> pd.DataFrame:
    """Categoricals unordered (treatment / indicator coding)."""
    out = frame.copy()
    for c in out.columns:
        if isinstance(out[c].dtype, pd.CategoricalDtype):
            out[c] = out[c].cat.as_unordered()
    return out


def _full_rank(X: pd.DataFrame, tol: float = 1e-7) -> pd.DataFrame:
    """Drop columns in the span of earlier ones (lmerTest's ``ensure_full_rank``)."""
    A = X.to_numpy(dtype=float)
    R = np.linalg.qr(A, mode="r")
    d = np.abs(np.diag(R))
    norms = np.linalg.norm(A, axis=0)
    keep = [j for j in range(A.shape[1]) if norms[j] > 0 and d[j] > tol * norms[j]]
    return X.iloc[:, keep]


def _contains(term: str, other: str, factors: dict, numeric: dict) -> bool:
    """lmerTest's ``term_contain``: other strictly contains term, with the same numerics."""
    a, b = set(factors[term]), set(factors[other])
    return a < b and numeric[term] == numeric[other]


def type3_contrasts(design: Design) -> dict[str, np.ndarray]:
    """Marginal (type 3) hypotheses, lmerTest's construction: per term an (r, p) matrix."""
    cols, intercept = term_columns(design)
    p = design.X.shape[1]
    if p <= 1 or len(cols) <= 1:
        return type1_contrasts(design)
    spec = design.fixed_spec
    frame = _synthetic_frame(spec, p)
    data, context = prepare_frame(frame, set(frame.columns))
    Xo = spec.get_model_matrix(data, context=context, na_action="ignore")
    Xo = Xo[design.fixed_names].to_numpy(dtype=float)
    plain = _plain(frame)
    rhs = design.parsed.fixed if design.parsed is not None else " + ".join(cols)
    Xt_mm = model_matrix(rhs, plain, na_action="ignore")
    Xt_df = _full_rank(Xt_mm)
    Xt = Xt_df.to_numpy(dtype=float)
    t_names = [r_style_name(c) for c in Xt_df.columns]
    t_pos = {c: i for i, c in enumerate(Xt_df.columns)}
    t_cols = {
        str(term): [t_pos[c] for c in Xt_mm.model_spec.column_names[sl] if c in t_pos]
        for term, sl in Xt_mm.model_spec.term_slices.items()
        if str(term) != "1"
    }
    # the over-parametrized design: one column per level (cell) of every term
    parts, rd_names = [], []
    if intercept:
        parts.append(np.ones((len(frame), 1)))
        rd_names.append("(Intercept)")
    for term in cols:
        mm = model_matrix(f"0 + {term}", plain, na_action="ignore")
        parts.append(mm.to_numpy(dtype=float))
        rd_names += [r_style_name(c) for c in mm.columns]
    rdX = np.hstack(parts)
    Xt_pinv = np.linalg.pinv(Xt)
    L = zapsmall((Xt_pinv @ rdX).T)  # rows: rdX parameters, columns: X_t parameters
    # terms' factors, and which of them are numeric, for the containment relation
    categorical = {
        e
        for e, (kind, _) in spec.encoder_state.items()
        if getattr(kind, "value", kind) == "categorical"
    }
    factors = {str(t): [f.expr for f in t.factors] for t in spec.term_slices if str(t) != "1"}
    numeric = {t: frozenset(e for e in f if e not in categorical) for t, f in factors.items()}
    for term in sorted(cols, key=lambda t: -len(factors[t])):
        containing = [o for o in cols if _contains(term, o, factors, numeric)]
        if not containing or not t_cols.get(term):
            continue
        A = L[:, [j for o in containing for j in t_cols.get(o, [])]]
        Y = L[:, t_cols[term]]
        coef = np.linalg.lstsq(A, Y, rcond=None)[0]
        L[:, t_cols[term]] = zapsmall(Y - A @ coef)
    rd_pos = {name: i for i, name in enumerate(rd_names)}
    missing = [n for n in t_names if n not in rd_pos]
    if missing:
        raise ValueError(f"type 3 hypotheses: cannot match columns {missing}; use type=1")
    Lsq = L[[rd_pos[n] for n in t_names]]
    to_model = zapsmall(Xt_pinv @ Xo)  # X_t parameters → the model's parameters
    out = {}
    for term in cols:
        H = Lsq[:, t_cols.get(term, [])].T @ to_model
        out[term] = H[np.sum(np.abs(H), axis=1) > 1e-8]
    return out
