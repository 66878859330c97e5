r"""GLS fixed effects, their covariance and the conditional modes, given the components.

With ``λ_f = σ_e² / σ_f²`` and ``Λ = diag(λ_f I_{L_f})``, Woodbury gives
``V⁻¹ = σ_e⁻² (I − Z A⁻¹ Zᵀ)`` with ``A = ZᵀZ + Λ`` (q × q, q = Σ L_f). So every GLS
quantity follows from one solve ``A U = Zᵀ [X y]`` (p + 1 right-hand sides):

    Xᵀ V⁻¹ X = (XᵀX − (ZᵀX)ᵀ U_X) / σ_e²,    Xᵀ V⁻¹ y = (Xᵀy − (ZᵀX)ᵀ u_y) / σ_e²,
    β̂ = (XᵀV⁻¹X)⁻¹ XᵀV⁻¹y,   Cov(β̂) = (XᵀV⁻¹X)⁻¹,   û = u_y − U_X β̂ = A⁻¹ Zᵀ(y − Xβ̂),

where û are the conditional modes (BLUPs) of the random effects. ``ZᵀX`` is known from
pass 1, so only the solve touches the data: each product ``ZᵀZ U`` is one pass that
gathers ``s_i = Σ_f U_f[g_f(i)]`` per row and sums it by level of each factor.

Solvers (Ghosh, Hastie & Owen, Ann. Statist. 2022, study backfitting for this system):

* ``"backfitting"``: block Gauss–Seidel over the factors,
  ``U_f ← (D_f + λ_f)⁻¹ (Zᵀ_f [X y] − Σ_{h≠f} Z_fᵀ Z_h U_h)``, one pass per factor;
* ``"cg"`` (default): conjugate gradients preconditioned by the same per-level diagonal
  ``D_f + λ_f``, one pass per iteration.

Both are combined with a coarse correction on the span E of the K constant vectors
(one per factor): the direction "add c to every level of f, subtract c from every
level of h" is in the null space of ZᵀZ (Z_f 1 = Z_h 1 = 1), so A barely acts on it
(only through Λ), and it is the slowest mode of both iterations. ``A E`` and ``EᵀAE``
follow from the level counts (``Z_hᵀ Z_f 1 = n_h``, ``1ᵀ Z_fᵀ Z_h 1 = N``), so the
correction costs no pass: after
each backfitting sweep the coarse residual is removed exactly; CG uses the balancing
preconditioner ``P = (I − E S⁻¹ EᵀA) D⁻¹ (I − A E S⁻¹ Eᵀ) + E S⁻¹ Eᵀ`` (S = EᵀAE).
Stopping: every column's residual ``‖Zᵀb − A U‖ / ‖Zᵀb‖ ≤ tol``. The error of the
quadratic forms ``(ZᵀX)ᵀ U_X`` is then of second order in the solver error.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

from ..errors import ConvergenceWarning, IdentifiabilityError
from .counts import Counts, level_sums
from .source import Block, Layout, Reduce, Sums, chunk_pass

__all__ = ["product_pass", "GLSSolution", "solve_gls"]


@chunk_pass
def product_pass(
    blk: Block, layout: Layout, U: list[np.ndarray | None], active: tuple[int, ...]
) -> Sums:
    """``Z_fᵀ Z U`` (L_f, c) for each active factor f; U[f] is (L_f, c) or None.

    Level rows are gathered whole (one cache line per row for small c), the per-row sums
    transposed once, and summed by level column by column.
    """
    rows = None
    for f in active:
        part = np.take(U[f], blk.codes[f], axis=0)
        rows = part if rows is None else rows + part
    cols = np.ascontiguousarray(rows.T)
    return Sums({f"zz{f}": level_sums(blk.codes[f], layout.levels[f], cols).T for f in active})


@dataclass
class _System:
    """``A = ZᵀZ + Λ`` on the active factors, with its diagonal and coarse space."""

    reduce: Reduce
    layout: Layout
    counts: Counts
    active: tuple[int, ...]
    lam: np.ndarray  # (K,) λ_f (inf for inactive factors)
    passes: int = 0
    history: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        act = self.active
        self.n = [self.counts.n[f].astype(np.float64) for f in act]
        self.ncol = [n[:, None] for n in self.n]
        self.diag = [(n + self.lam[f])[:, None] for n, f in zip(self.n, act)]
        N = float(self.counts.N)
        k = len(act)
        self.S = np.full((k, k), N) + np.diag([self.lam[f] * self.layout.levels[f] for f in act])
        self.Sinv = np.linalg.inv(self.S)

    def zz(self, U: list[np.ndarray], only: int | None = None) -> list[np.ndarray]:
        """ZᵀZ U restricted to the active blocks (one pass)."""
        full: list[np.ndarray | None] = [None] * self.layout.K
        for i, f in enumerate(self.active):
            full[f] = U[i]
        s = self.reduce(product_pass, self.layout, full, self.active)
        self.passes += 1
        return [np.asarray(s[f"zz{f}"]) for f in self.active]

    def apply(self, U: list[np.ndarray]) -> list[np.ndarray]:
        """A U (one pass)."""
        ZZ = self.zz(U)
        return [z + self.lam[f] * u for z, u, f in zip(ZZ, U, self.active)]

    # ---- the coarse space E (one constant vector per active factor) --------------------
    def et(self, R: list[np.ndarray]) -> np.ndarray:
        """Eᵀ R: (k, c) sums over levels."""
        return np.stack([r.sum(axis=0) for r in R])

    def e(self, c: np.ndarray) -> list[np.ndarray]:
        """E c: constants c[i] (c,) on block i, (L_i, c)."""
        return [np.broadcast_to(c[i], (n.shape[0], c.shape[1])) for i, n in enumerate(self.n)]

    def ae(self, c: np.ndarray) -> list[np.ndarray]:
        """A E c without a pass: block h is ``n_h Σ_f c_f + λ_h c_h``."""
        tot = c.sum(axis=0)
        return [
            np.outer(n, tot) + self.lam[f] * c[i]
            for i, (n, f) in enumerate(zip(self.n, self.active))
        ]

    def eta(self, U: list[np.ndarray]) -> np.ndarray:
        """(AE)ᵀ U = Eᵀ A U without a pass: ``Σ_h n_hᵀU_h + λ_f 1ᵀU_f`` for block f."""
        common = sum(n @ u for u, n in zip(U, self.n))
        return np.stack([common + self.lam[f] * u.sum(axis=0) for u, f in zip(U, self.active)])

    def precondition(self, R: list[np.ndarray]) -> list[np.ndarray]:
        """The balancing preconditioner P R (no pass)."""
        c1 = self.Sinv @ self.et(R)
        T = [r - a for r, a in zip(R, self.ae(c1))]
        Z = [t / d for t, d in zip(T, self.diag)]
        c2 = self.Sinv @ self.eta(Z)
        return [z + e for z, e in zip(Z, self.e(c1 - c2))]


def _dot(A: list[np.ndarray], B: list[np.ndarray]) -> np.ndarray:
    return sum(np.einsum("lc,lc->c", a, b) for a, b in zip(A, B))


def _norms(R: list[np.ndarray]) -> np.ndarray:
    return np.sqrt(_dot(R, R))


def _cg(sys: _System, B: list[np.ndarray], tol: float, max_iter: int):
    bnorm = _norms(B)
    bnorm[bnorm == 0] = 1.0
    U = [np.zeros_like(b) for b in B]
    R = [b.copy() for b in B]
    Zr = sys.precondition(R)
    P = [z.copy() for z in Zr]
    rz = _dot(R, Zr)
    for it in range(1, max_iter + 1):
        AP = sys.apply(P)
        pap = _dot(P, AP)
        alpha = np.divide(rz, pap, out=np.zeros_like(rz), where=pap > 0)
        U = [u + alpha * p for u, p in zip(U, P)]
        R = [r - alpha * ap for r, ap in zip(R, AP)]
        rel = _norms(R) / bnorm
        sys.history.append(float(rel.max()))
        if rel.max() <= tol:
            return U, it, True
        Zr = sys.precondition(R)
        rz_new = _dot(R, Zr)
        beta = np.divide(rz_new, rz, out=np.zeros_like(rz), where=rz > 0)
        rz = rz_new
        P = [z + beta * p for z, p in zip(Zr, P)]
    return U, max_iter, False


def _backfit(sys: _System, B: list[np.ndarray], tol: float, max_iter: int):
    bnorm = _norms(B)
    bnorm[bnorm == 0] = 1.0
    U = [b / d for b, d in zip(B, sys.diag)]
    for sweep in range(1, max_iter + 1):
        for i in range(len(sys.active)):
            ZZ = sys.zz(U)
            if i == 0:  # the full residual at the start of the sweep, for the stopping rule
                R = [b - z - sys.lam[g] * u for b, z, u, g in zip(B, ZZ, U, sys.active)]
                rel = _norms(R) / bnorm
                sys.history.append(float(rel.max()))
                if rel.max() <= tol:
                    return U, sweep - 1, True
            off = ZZ[i] - sys.ncol[i] * U[i]
            U[i] = (B[i] - off) / sys.diag[i]
        # coarse correction: Eᵀ(B − AU) is known from sums, no pass needed
        c = sys.Sinv @ (sys.et(B) - sys.eta(U))
        U = [u + e for u, e in zip(U, sys.e(c))]
    return U, max_iter, False


@dataclass(frozen=True)
class GLSSolution:
    """β̂ (p,), Cov(β̂) (p, p), conditional modes per factor (L_f,), solver record."""

    beta: np.ndarray
    cov: np.ndarray
    modes: list[np.ndarray]
    iterations: int
    passes: int
    converged: bool
    history: list[float]
    xtvx: np.ndarray  # Xᵀ V⁻¹ X (p, p)


def solve_gls(
    reduce: Reduce,
    layout: Layout,
    counts: Counts,
    sigma2: np.ndarray,
    *,
    solver: str = "cg",
    tol: float = 1e-8,
    max_iter: int = 200,
) -> GLSSolution:
    """GLS β, its covariance and the conditional modes for components ``sigma2`` (K+1,)."""
    K, p = layout.K, layout.p
    se2 = float(sigma2[K])
    if not se2 > 0:
        raise IdentifiabilityError(
            f"the residual variance is estimated as {se2:.4g} (not positive): the "
            "random effects absorb all the variation; the moment method cannot fit this model"
        )
    active = tuple(f for f in range(K) if sigma2[f] > 0)
    lam = np.array([se2 / s if s > 0 else np.inf for s in sigma2[:K]])
    rhs = [np.vstack([counts.xsum[f], counts.ysum[f][None, :]]).T.copy() for f in active]
    sys = _System(reduce, layout, counts, active, lam)
    if not active:
        U, its, ok = [], 0, True
    elif solver == "cg":
        U, its, ok = _cg(sys, rhs, tol, max_iter)
    elif solver == "backfitting":
        U, its, ok = _backfit(sys, rhs, tol, max_iter)
    else:
        raise ValueError(f"solver must be 'cg' or 'backfitting', not {solver!r}")
    if not ok:
        warnings.warn(
            f"the GLS solve stopped after {its} iterations with relative residual "
            f"{sys.history[-1]:.2e} > tol={tol:g}; raise max_iter",
            ConvergenceWarning,
            stacklevel=3,
        )
    zx = np.zeros((p, p))
    zy = np.zeros(p)
    for u, f in zip(U, active):
        zx += counts.xsum[f] @ u[:, :p]
        zy += counts.xsum[f] @ u[:, p]
    xtvx = (counts.xtx - zx) / se2
    xtvx = 0.5 * (xtvx + xtvx.T)
    xtvy = (counts.xty - zy) / se2
    try:
        L = np.linalg.cholesky(xtvx)
    except np.linalg.LinAlgError:
        raise IdentifiabilityError(
            "XᵀV⁻¹X is not positive definite: a fixed-effects column is (nearly) "
            "confounded with the random effects; drop it or loosen tol"
        ) from None
    Linv = np.linalg.inv(L)
    cov = Linv.T @ Linv
    beta = cov @ xtvy
    modes = [np.zeros(L_f) for L_f in layout.levels]
    for u, f in zip(U, active):
        modes[f] = u[:, p] - u[:, :p] @ beta
    return GLSSolution(beta, cov, modes, its, sys.passes, ok, sys.history, xtvx)
