"""R's transforms for formulas, with the state that codes new data as R's ``predict`` does.

formulaic evaluates the Python factors of a formula (``poly(Days, 2)``) in a context;
`R_TRANSFORMS` is that context's R part. Transforms that learn from the data
(``poly``, ``bs``, ``ns``; formulaic's ``scale``/``center`` already equal R's) keep what
they learned in formulaic's per-factor state, so the fit's `ModelSpec` evaluates new rows
with the training bases, as R's ``makepredictcall`` does:

* ``poly(x, degree, raw=FALSE)``: R's orthogonal polynomials (three-term recurrence with
  the training ``alpha`` and ``norm2``), or raw powers.
* ``bs(x, df, knots, degree=3, intercept=FALSE, Boundary_knots)``: splines::bs, the
  B-spline basis; outside the boundary knots the end polynomial pieces continue (R's
  Taylor expansion at a pivot inside the end interval).
* ``ns(x, df, knots, intercept=FALSE, Boundary_knots)``: splines::ns, the natural cubic
  spline basis (second derivative zero at the boundary knots, through R's Householder QR
  of that constraint); linear outside the boundary knots.
* ``dummy(f, levels)``: lme4's indicator columns of some levels of a factor.
* R's ``log(x, base)``, ``sqrt``, ``exp``, ``abs``... and ``c(...)``.

Column names are R's: a transform with one column gives one column named after the
call, several give ``1``, ``2``... (or the kept levels), appended to the call's name.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
from formulaic.materializers.types import FactorValues
from formulaic.transforms import center, scale
from formulaic.utils.stateful_transforms import stateful_transform
from scipy.interpolate import BSpline

from ..errors import DataError

__all__ = ["R_TRANSFORMS", "R_NAMESPACES", "poly", "bs", "ns", "dummy"]


def _values(x) -> np.ndarray:
    """(n,) float values of a column (NaN for missing)."""
    if isinstance(x, pd.Series):
        return x.to_numpy(dtype=float, na_value=np.nan)
    arr = np.asarray(x, dtype=float)
    if arr.ndim != 1:
        raise DataError(f"expected one column of values, got an array of shape {arr.shape}")
    return arr


def _columns(values: np.ndarray, names: list[str]):
    """R's model.matrix naming: one column keeps the call's name, several get suffixes."""
    if values.shape[1] == 1:
        return values[:, 0]
    return FactorValues(values, column_names=tuple(names))


def _rows(x: np.ndarray, compute) -> np.ndarray:
    """compute(x without NaN) → (m, k), placed back with NaN rows where x is NaN."""
    ok = ~np.isnan(x)
    inner = compute(x[ok])
    out = np.full((len(x), inner.shape[1]), np.nan)
    out[ok] = inner
    return out


def _quantile7(x: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """R's ``quantile(x, probs)`` (type 7, linear interpolation)."""
    return np.quantile(x, probs) if len(x) else np.full(len(probs), np.nan)


# ---- poly ---------------------------------------------------------------------------------


@stateful_transform
def poly(x, degree: int = 1, raw: bool = False, _state: dict = {}):  # noqa: B006 - formulaic's state
    """R's ``poly(x, degree, raw)``: orthogonal (or raw) polynomials of degree 1..degree."""
    x = _values(x)
    degree = int(degree)
    if degree < 1:
        raise DataError("'degree' of poly() must be at least 1")
    names = [str(k) for k in range(1, degree + 1)]
    if raw:
        return _columns(np.column_stack([x**k for k in range(1, degree + 1)]), names)
    if "alpha" not in _state:
        ok = x[~np.isnan(x)]
        if degree >= len(np.unique(ok)):
            raise DataError(
                f"poly(): 'degree' ({degree}) must be less than the number of unique points "
                f"({len(np.unique(ok))})"
            )
        alpha, norm2 = [], [1.0]
        P_prev, P = np.zeros_like(ok), np.ones_like(ok)
        norm2.append(float(len(ok)))
        for k in range(degree):
            alpha.append(float(np.sum(ok * P**2) / norm2[-1]))
            beta = norm2[-1] / norm2[-2]
            P_prev, P = P, (ok - alpha[-1]) * P - (beta * P_prev if k else 0.0)
            norm2.append(float(np.sum(P**2)))
        _state["alpha"], _state["norm2"] = alpha, norm2

    def evaluate(v: np.ndarray) -> np.ndarray:
        alpha, norm2 = _state["alpha"], _state["norm2"]
        Z = np.empty((len(v), degree + 1))
        Z[:, 0] = 1.0
        Z[:, 1] = v - alpha[0]
        for i in range(1, degree):
            Z[:, i + 1] = (v - alpha[i]) * Z[:, i] - (norm2[i + 1] / norm2[i]) * Z[:, i - 1]
        return Z[:, 1:] / np.sqrt(norm2[2:])

    return _columns(_rows(x, evaluate), names)


# ---- splines --------------------------------------------------------------------------------


def spline_design(knots: np.ndarray, x: np.ndarray, order: int, deriv: int = 0) -> np.ndarray:
    """(m, len(knots) − order) R's ``splineDesign(knots, x, ord, derivs)``: B-splines of
    the given order (degree order − 1); outside the knots the end pieces continue."""
    n = len(knots) - order
    spline = BSpline(knots, np.eye(n), order - 1, extrapolate=True)
    if deriv:
        spline = spline.derivative(deriv)
    return np.atleast_2d(spline(x)).reshape(len(x), n)


def _inner_knots(x: np.ndarray, n_inner: int, boundary: np.ndarray) -> np.ndarray:
    if n_inner <= 0:
        return np.empty(0)
    inside = x[(x >= boundary[0]) & (x <= boundary[1])]
    return _quantile7(inside, np.linspace(0.0, 1.0, n_inner + 2)[1:-1])


def _spline_knots(x, df, knots, boundary, n_inner_of_df) -> tuple[np.ndarray, np.ndarray]:
    """(inner knots, boundary knots) learned as R's bs/ns learn them."""
    ok = x[~np.isnan(x)]
    if boundary is None:
        if not len(ok):
            raise DataError("spline of a variable without any non-missing value")
        boundary = np.array([ok.min(), ok.max()])
    boundary = np.sort(np.asarray(boundary, dtype=float).ravel())
    if knots is not None:
        return np.sort(np.asarray(knots, dtype=float).ravel()), boundary
    if df is None:
        return np.empty(0), boundary
    return _inner_knots(ok, n_inner_of_df(int(df)), boundary), boundary


@stateful_transform
def bs(  # noqa: N803 - R's argument name
    x,
    df=None,
    knots=None,
    degree: int = 3,
    intercept: bool = False,
    Boundary_knots=None,  # noqa: N803 - R's Boundary.knots
    _state: dict = {},  # noqa: B006 - formulaic's state
):
    """splines::bs: B-spline basis, ``df`` columns (inner knots at quantiles of x)."""
    x = _values(x)
    order = int(degree) + 1
    if "knots" not in _state:
        inner, bounds = _spline_knots(
            x, df, knots, Boundary_knots, lambda d: d - order + (1 - int(bool(intercept)))
        )
        _state["knots"], _state["boundary"] = inner.tolist(), bounds.tolist()
    all_knots = np.sort(np.r_[np.repeat(_state["boundary"], order), _state["knots"]])

    def evaluate(v: np.ndarray) -> np.ndarray:
        basis = spline_design(all_knots, v, order)
        return basis if intercept else basis[:, 1:]

    out = _rows(x, evaluate)
    return _columns(out, [str(k) for k in range(1, out.shape[1] + 1)])


def householder_qr(A: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """LINPACK's ``dqrdc2`` Householder QR (R's ``qr()``) of A (m, p) with p ≤ m full rank:
    (the compact factor (m, p), qraux (p,))."""
    qr = np.array(A, dtype=float)
    m, p = qr.shape
    qraux = np.zeros(p)
    for j in range(min(p, m - 1)):
        norm = np.linalg.norm(qr[j:, j])
        if norm == 0.0:
            continue
        if qr[j, j] != 0.0:
            norm = math.copysign(norm, qr[j, j])
        qr[j:, j] /= norm
        qr[j, j] += 1.0
        for c in range(j + 1, p):
            t = -np.dot(qr[j:, j], qr[j:, c]) / qr[j, j]
            qr[j:, c] += t * qr[j:, j]
        qraux[j] = qr[j, j]
        qr[j, j] = -norm
    return qr, qraux


def apply_qt(qr: np.ndarray, qraux: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """R's ``qr.qty(qr, Y)``: Qᵀ Y (m, c) from `householder_qr`'s compact form."""
    Y = np.array(Y, dtype=float)
    for j in range(len(qraux)):
        if qraux[j] == 0.0:
            continue
        v = qr[j:, j].copy()
        v[0] = qraux[j]
        Y[j:] -= np.outer(v, v @ Y[j:]) / v[0]
    return Y


@stateful_transform
def ns(  # noqa: N803 - R's argument name
    x,
    df=None,
    knots=None,
    intercept: bool = False,
    Boundary_knots=None,  # noqa: N803 - R's Boundary.knots
    _state: dict = {},  # noqa: B006 - formulaic's state
):
    """splines::ns: natural cubic spline basis, ``df`` columns, linear beyond the boundary."""
    x = _values(x)
    if "knots" not in _state:
        inner, bounds = _spline_knots(
            x, df, knots, Boundary_knots, lambda d: d - 1 - int(bool(intercept))
        )
        _state["knots"], _state["boundary"] = inner.tolist(), bounds.tolist()
    bounds = np.asarray(_state["boundary"])
    all_knots = np.sort(np.r_[np.repeat(bounds, 4), _state["knots"]])
    const = spline_design(all_knots, bounds, 4, deriv=2)
    first = 0 if intercept else 1
    qr, qraux = householder_qr(const[:, first:].T)

    def evaluate(v: np.ndarray) -> np.ndarray:
        basis = spline_design(all_knots, v, 4)
        for side, outside in ((0, v < bounds[0]), (1, v > bounds[1])):
            if outside.any():  # linear: value and slope at the boundary knot
                at = bounds[side : side + 1]
                value = spline_design(all_knots, at, 4)[0]
                slope = spline_design(all_knots, at, 4, deriv=1)[0]
                basis[outside] = value + np.outer(v[outside] - bounds[side], slope)
        return apply_qt(qr, qraux, basis[:, first:].T).T[:, 2:]

    out = _rows(x, evaluate)
    return _columns(out, [str(k) for k in range(1, out.shape[1] + 1)])


# ---- factors --------------------------------------------------------------------------------


def _level_strings(f) -> pd.Series:
    """A factor's values as R's level strings (2.0 → "2")."""
    s = pd.Series(f)
    if isinstance(s.dtype, pd.CategoricalDtype):
        s = s.astype(object)
    if pd.api.types.is_float_dtype(s.dtype) and np.all(np.mod(s.dropna(), 1) == 0):
        return s.map(lambda v: v if pd.isna(v) else str(int(v)))
    return s.map(lambda v: v if pd.isna(v) else str(v))


def dummy(f, levels=None):
    """lme4's ``dummy(f, levelsToKeep)``: 0/1 columns of the kept levels of f (default:
    all but the first)."""
    values = _level_strings(f)
    if isinstance(getattr(f, "dtype", None), pd.CategoricalDtype):
        present = [str(v) for v in f.cat.categories]
    else:  # R's as.factor: the sorted distinct values
        present = list(_level_strings(np.sort(pd.unique(pd.Series(f).dropna()))))
    keep = present[1:] if levels is None else [str(v) for v in np.atleast_1d(levels)]
    unknown = [v for v in keep if v not in present]
    if unknown:
        raise DataError(f"dummy(): {unknown} are not levels of the factor ({present})")
    out = np.column_stack([(values == lv).to_numpy(dtype=float) for lv in keep])
    out[values.isna().to_numpy()] = np.nan
    return _columns(out, keep)


# ---- stateless functions ------------------------------------------------------------------


def log(x, base: float = math.e):
    """R's ``log(x, base = exp(1))``."""
    out = np.log(x)
    return out if base == math.e else out / math.log(base)


def c(*values) -> np.ndarray:
    """R's ``c(...)``: the values as one array."""
    return np.concatenate([np.atleast_1d(np.asarray(v)) for v in values]) if values else np.empty(0)


_R_MATH = {
    name: getattr(np, name)
    for name in (
        "sqrt", "exp", "expm1", "log10", "log2", "log1p", "abs", "sign", "floor", "trunc",
        "sin", "cos", "tan", "sinh", "cosh", "tanh",
    )
}  # fmt: skip
_R_MATH.update(ceiling=np.ceil, asin=np.arcsin, acos=np.arccos, atan=np.arctan)

#: R package namespaces written as ``splines::bs``, evaluated as ``splines.bs``
R_NAMESPACES = {
    "splines": SimpleNamespace(bs=bs, ns=ns),
    "stats": SimpleNamespace(poly=poly),
    "base": SimpleNamespace(scale=scale, log=log, **_R_MATH),
    "lme4": SimpleNamespace(dummy=dummy),
}

#: the R functions a formula may call (formulaic's context)
R_TRANSFORMS = {
    "poly": poly,
    "bs": bs,
    "ns": ns,
    "scale": scale,
    "center": center,
    "dummy": dummy,
    "log": log,
    "c": c,
    **_R_MATH,
    **R_NAMESPACES,
}
