r"""Variance components of crossed random intercepts by the method of moments.

Model (rows i = 1..N, factors f = 1..K with codes ``g_f(i)`` and ``L_f`` levels)::

    y = Xβ + Σ_f Z_f u_f + ε,   u_f ~ (0, σ_f² I),   ε ~ (0, σ_e² I),
    V = Var(y) = Σ_f σ_f² Z_f Z_fᵀ + σ_e² I,

where ``Z_f`` (N, L_f) is the indicator matrix of factor f. An interaction ``(1|f:h)`` is
one more factor whose levels are the observed (f, h) cells.

**Statistics** (Gao & Owen, EJS 2017, generalized to K factors). On the OLS residuals
``r = M y``, ``M = I − X G Xᵀ``, ``G = (XᵀX)⁻¹``::

    U_f = ½ Σ_{i,i' : g_f(i) = g_f(i')} (r_i − r_i')² = Σ_ℓ (n_fℓ Σ_{i∈ℓ} r_i² − (Σ_{i∈ℓ} r_i)²)
    U_0 = ½ Σ_{i,i'} (r_i − r_i')²                     = N Σ_i r_i² − (Σ_i r_i)²

(sums over ordered pairs). Each is a quadratic form ``U_f = yᵀ M A_f M y`` with
``A_f = D_f − Z_f Z_fᵀ``, ``D_f = diag(n_{f,g_f(i)})`` and ``A_0 = N I − 1 1ᵀ``, computed in
one pass from per-level sums of r and the scalar ``Σ_i n_{f,g_f(i)} r_i²``.

**Expectations.** ``A_f X`` is not 0, but ``M X = 0``, so
``E U_f = Σ_h σ_h² tr(M A_f M W_h)`` with ``W_h = Z_h Z_hᵀ`` (``W_e = I``), and::

    tr(M A M W) = tr(A W) − 2 tr(G Xᵀ W A X) + tr(G XᵀAX G XᵀWX).

With ``T_fh = ‖Z_fᵀ Z_h‖²_F = Σ_{(f,h) cells} n_c²`` (``T_ff = Σ_ℓ n_fℓ²``, ``T_f,e = N``,
``T_00 = N²``, ``T_0h = T_hh``) the first term is ``tr(A_f W_h) = T_ff − T_fh``. The
others need only p × p sums: ``Xᵀ W_h A_f X = (Z_hᵀX)ᵀ (Z_hᵀ A_f X)`` where row i of
``A_f X`` is ``n_{f,g_f(i)} x_i − (Z_fᵀX)_{g_f(i)}``, and ``XᵀA_fX = Xᵀ D_f X −
(Z_fᵀX)ᵀ(Z_fᵀX)``. So ``E U = C σ²`` with a (K+1) × (K+1) matrix C (rows U_1..U_K, U_0;
columns σ_1²..σ_K², σ_e²), exact for any design, and ``σ̂² = C⁻¹ U`` is unbiased.
``T_fh`` for two crossed factors comes from the cell counts of :mod:`.cells` (exact, or
an unbiased sample beyond the budget); when h is nested in f it is ``T_hh``.

**Passes.** Pass 1 (:func:`count_pass`): level counts, level sums of X and y, XᵀX, Xᵀy,
nesting, cells. Pass 2 (:func:`residual_pass`, given β_OLS): the statistics and the p × p
correction sums. Memory O(Σ_f L_f · p + K² p²) besides the cell samples.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from ..errors import IdentifiabilityError
from .cells import CellSample
from .source import Block, Extremes, Layout, Reduce, Sums, read_block

__all__ = ["Counts", "count_pass", "residual_pass", "MomentEquations", "moment_equations"]


def level_sums(codes: np.ndarray, nlevels: int, values: np.ndarray) -> np.ndarray:
    """Σ of ``values`` (m,) or (c, m) over rows with each code: (L,) or (c, L)."""
    if values.ndim == 1:
        return np.bincount(codes, weights=values, minlength=nlevels)
    out = np.empty((values.shape[0], nlevels))
    for k in range(values.shape[0]):
        out[k] = np.bincount(codes, weights=values[k], minlength=nlevels)
    return out


def _pairs(layout: Layout) -> list[tuple[int, int]]:
    """Unordered pairs of factors whose cells must be counted (not declared crossings)."""
    skip = set()
    for name, (f, h) in layout.interactions.items():
        k, i, j = layout.index(name), layout.index(f), layout.index(h)
        skip |= {(min(i, j), max(i, j)), (min(i, k), max(i, k)), (min(j, k), max(j, k))}
    K = layout.K
    return [(f, h) for f in range(K) for h in range(f + 1, K) if (f, h) not in skip]


# ======================================================================================
# Pass 1: counts, level sums, nesting, cells
# ======================================================================================


def count_pass(chunk: Mapping, layout: Layout, cell_budget: int) -> Sums | None:
    """Per-chunk sums of pass 1 (see :class:`Counts`)."""
    blk = read_block(chunk, layout)
    if blk is None:
        return None
    X, y, g = blk.X, blk.y, blk.codes
    s = Sums(n=blk.m, xtx=X.T @ X, xty=X.T @ y, yty=float(y @ y))
    for f, L in enumerate(layout.levels):
        s[f"n{f}"] = np.bincount(g[f], minlength=L)
        s[f"xs{f}"] = level_sums(g[f], L, np.ascontiguousarray(X.T))
        s[f"ys{f}"] = level_sums(g[f], L, y)
        for h, Lh in enumerate(layout.levels):
            if h != f:  # the range of f's codes within each level of h
                s[f"nest{f},{h}"] = Extremes.of(g[h], g[f], Lh)
    for f, h in _pairs(layout):
        s[f"cell{f},{h}"] = CellSample.of(g[f], g[h], layout.levels[h], cell_budget)
    return s


@dataclass(frozen=True)
class Counts:
    """What pass 1 learns about the design (K factors, p columns of X).

    N : rows. n : per factor (L_f,) rows per level. xsum : per factor (p, L_f) level sums
    of X. ysum : per factor (L_f,) level sums of y. xtx (p, p), xty (p,), yty.
    T : (K, K) ``T_fh`` (rows sharing both levels, ordered pairs incl. a row with itself).
    T_se : (K, K) standard errors of sampled ``T_fh`` (0 where exact).
    nested : (K, K) bool, ``nested[f, h]`` when every level of h lies in one level of f.
    cell_fraction : (K, K) sampled fraction of cells behind ``T_fh`` (1 if exact).
    """

    N: int
    n: list[np.ndarray]
    xsum: list[np.ndarray]
    ysum: list[np.ndarray]
    xtx: np.ndarray
    xty: np.ndarray
    yty: float
    T: np.ndarray
    T_se: np.ndarray
    nested: np.ndarray
    cell_fraction: np.ndarray

    @property
    def colsum(self) -> np.ndarray:
        """(p,) column sums of X."""
        return self.xsum[0].sum(axis=1)

    @classmethod
    def from_sums(cls, s: Sums, layout: Layout) -> Counts:
        K = layout.K
        n = [np.asarray(s[f"n{f}"], dtype=np.int64) for f in range(K)]
        N = int(s["n"])
        T = np.zeros((K, K))
        T_se = np.zeros((K, K))
        frac = np.ones((K, K))
        nested = np.eye(K, dtype=bool)
        for f in range(K):
            T[f, f] = float(n[f].astype(np.float64) @ n[f])
            for h in range(K):
                if h != f:
                    nested[f, h] = s[f"nest{f},{h}"].constant()
        for f in range(K):
            for h in range(f + 1, K):
                if nested[f, h] or nested[h, f]:  # cells = levels of the nested factor
                    T[f, h] = T[h, f] = T[h, h] if nested[f, h] else T[f, f]
                elif f"cell{f},{h}" in s:
                    cells: CellSample = s[f"cell{f},{h}"]
                    pairs, se = cells.repeated_pairs()
                    T[f, h] = T[h, f] = N + pairs
                    T_se[f, h] = T_se[h, f] = se
                    frac[f, h] = frac[h, f] = cells.fraction
        for name, (a, b) in layout.interactions.items():
            k, i, j = layout.index(name), layout.index(a), layout.index(b)
            if not (nested[i, k] and nested[j, k]):
                raise IdentifiabilityError(
                    f"factor {name!r} was declared the interaction of {a!r} and {b!r}, "
                    f"but some of its levels span several levels of {a!r} or {b!r}"
                )
            T[i, j] = T[j, i] = T[k, k]
        return cls(
            N=N,
            n=n,
            xsum=[np.asarray(s[f"xs{f}"]) for f in range(K)],
            ysum=[np.asarray(s[f"ys{f}"]) for f in range(K)],
            xtx=np.asarray(s["xtx"]),
            xty=np.asarray(s["xty"]),
            yty=float(s["yty"]),
            T=T,
            T_se=T_se,
            nested=nested,
            cell_fraction=frac,
        )


# ======================================================================================
# Pass 2: the U-statistics on OLS residuals, and the correction sums
# ======================================================================================


def _a_times_x(blk: Block, f: int, counts: Counts) -> tuple[np.ndarray, np.ndarray]:
    """Per-row level count n_{f,g_f(i)} (m,) and the rows of A_f X (m, p)."""
    nf = counts.n[f][blk.codes[f]].astype(np.float64)
    return nf, nf[:, None] * blk.X - counts.xsum[f][:, blk.codes[f]].T


def residual_pass(chunk: Mapping, layout: Layout, beta: np.ndarray, counts: Counts) -> Sums:
    """Per-chunk sums of pass 2, on residuals ``r = y − X beta`` (β_OLS)."""
    blk = read_block(chunk, layout)
    if blk is None:
        return None
    X, g = blk.X, blk.codes
    r = blk.y - X @ beta
    s = Sums(r1=float(r.sum()), r2=float(r @ r))
    K = layout.K
    nf, ax = zip(*(_a_times_x(blk, f, counts) for f in range(K)))
    for f, L in enumerate(layout.levels):
        s[f"rs{f}"] = level_sums(g[f], L, r)
        s[f"nr2{f}"] = float(nf[f] @ (r * r))
        s[f"xdx{f}"] = (X * nf[f][:, None]).T @ X
        for h, Lh in enumerate(layout.levels):
            if h != f:  # Z_hᵀ A_f X, stored (p, L_h)
                s[f"zax{h},{f}"] = level_sums(g[h], Lh, np.ascontiguousarray(ax[f].T))
        for h in range(f, K):
            s[f"aa{f},{h}"] = ax[f].T @ ax[h]
            s[f"nn{f},{h}"] = float(nf[f] @ nf[h])
    return s


# ======================================================================================
# The moment equations
# ======================================================================================


@dataclass(frozen=True)
class MomentEquations:
    """``E U = C σ²``: statistics U (K+1,) (U_1..U_K, U_0), matrix C (K+1, K+1).

    XAX : (K+1,) of (p, p), ``Xᵀ A_f X`` (f = 1..K, then 0), for the variance step.
    AA : (K+1, K+1) of (p, p), ``Xᵀ A_f A_g X``. traceAA : (K+1, K+1) ``tr(A_f A_g)``.
    G : (p, p) ``(XᵀX)⁻¹``. beta_ols : (p,).
    """

    U: np.ndarray
    C: np.ndarray
    XAX: list[np.ndarray]
    AA: list[list[np.ndarray]]
    traceAA: np.ndarray
    G: np.ndarray
    beta_ols: np.ndarray

    def solve(self) -> np.ndarray:
        """σ² = C⁻¹ U, unconstrained (entries may be negative)."""
        try:
            return np.linalg.solve(self.C, self.U)
        except np.linalg.LinAlgError:
            raise IdentifiabilityError(
                "the variance components are not identified by these data: the moment "
                "equations are singular (a factor with one level, or two factors that "
                "coincide); drop or merge factors"
            ) from None


def ols(counts: Counts) -> tuple[np.ndarray, np.ndarray]:
    """``(β_OLS, (XᵀX)⁻¹)``; a rank-deficient X raises :class:`IdentifiabilityError`."""
    xtx = counts.xtx
    if xtx.shape[0] == 0:
        return np.zeros(0), np.zeros((0, 0))
    w, v = np.linalg.eigh(xtx)
    if w[0] <= 1e-10 * max(w[-1], 1e-300):
        raise IdentifiabilityError(
            "the fixed-effects columns are linearly dependent (or constant zero); "
            "drop redundant covariates"
        )
    G = (v / w) @ v.T
    return G @ counts.xty, G


def moment_equations(
    counts: Counts, s2: Sums, layout: Layout, beta: np.ndarray, G: np.ndarray
) -> MomentEquations:
    """The statistics U and their expectation matrix C from the sums of both passes."""
    K, N = layout.K, float(counts.N)
    T, n = counts.T, counts.n
    colsum = counts.colsum
    xsum = counts.xsum
    # X^T A_f X for f = 1..K and f = 0 (last)
    XAX = [np.asarray(s2[f"xdx{f}"]) - xsum[f] @ xsum[f].T for f in range(K)]
    XAX.append(N * counts.xtx - np.outer(colsum, colsum))
    XWX = [xsum[h] @ xsum[h].T for h in range(K)] + [counts.xtx]  # W_h, then W_e = I

    def xwax(f: int, h: int) -> np.ndarray:
        """Xᵀ W_h A_f X (f in 0..K with K meaning the total; h in 0..K with K meaning e)."""
        if h == K:
            return XAX[f]
        if f == K:  # Z_hᵀ A_0 X = N Z_hᵀ X − n_h ⊗ colsum
            return N * XWX[h] - np.outer(xsum[h] @ n[h], colsum)
        if f == h:
            return np.zeros_like(counts.xtx)
        return xsum[h] @ np.asarray(s2[f"zax{h},{f}"]).T

    diag_T = np.append(np.diag(T), N * N)
    C = np.empty((K + 1, K + 1))
    for f in range(K + 1):
        for h in range(K + 1):
            if h == K:
                base = diag_T[f] - N
            elif f == K:
                base = N * N - T[h, h]
            else:
                base = T[f, f] - T[f, h]
            M = xwax(f, h)
            C[f, h] = base - 2.0 * np.trace(G @ M) + np.trace(G @ XAX[f] @ G @ XWX[h])
    U = np.empty(K + 1)
    for f in range(K):
        rs = np.asarray(s2[f"rs{f}"])
        U[f] = s2[f"nr2{f}"] - rs @ rs
    U[K] = N * s2["r2"] - s2["r1"] ** 2
    AA, traceAA = _products(counts, s2, layout, XAX)
    return MomentEquations(U, C, XAX, AA, traceAA, G, beta)


def _products(
    counts: Counts, s2: Sums, layout: Layout, XAX: list[np.ndarray]
) -> tuple[list[list[np.ndarray]], np.ndarray]:
    """``Xᵀ A_f A_g X`` and ``tr(A_f A_g)`` for f, g in 1..K and 0 (index K)."""
    K, N = layout.K, float(counts.N)
    T = counts.T
    cube = [float(np.sum(n.astype(np.float64) ** 3)) for n in counts.n]
    AA = [[np.zeros(0)] * (K + 1) for _ in range(K + 1)]
    tr = np.empty((K + 1, K + 1))
    for f in range(K):
        for g in range(f, K):
            AA[f][g] = np.asarray(s2[f"aa{f},{g}"])
            AA[g][f] = AA[f][g].T
            if f == g:
                tr[f, f] = cube[f] - T[f, f]
            else:
                tr[f, g] = tr[g, f] = s2[f"nn{f},{g}"] - T[f, f] - T[g, g] + T[f, g]
        AA[f][K] = AA[K][f] = N * XAX[f]  # (A_0 X)ᵀ A_f X = N Xᵀ A_f X since 1ᵀ A_f = 0
        tr[f, K] = tr[K, f] = N * (T[f, f] - N)
    AA[K][K] = N * XAX[K]
    tr[K, K] = N**3 - N**2
    return AA, tr


def estimate(reduce: Reduce, layout: Layout, cell_budget: int) -> tuple[Counts, MomentEquations]:
    """Both passes and the moment equations."""
    s1 = reduce(count_pass, layout, cell_budget)
    if s1 is None:
        raise IdentifiabilityError("the data have no rows")
    counts = Counts.from_sums(s1, layout)
    beta, G = ols(counts)
    s2 = reduce(residual_pass, layout, beta, counts)
    return counts, moment_equations(counts, s2, layout, beta, G)
