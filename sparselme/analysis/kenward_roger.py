"""Kenward-Roger: the adjusted covariance of β̂ and denominator degrees of freedom (pbkrtest).

pbkrtest writes the marginal covariance as V = Σ_r γ_r G_r + σ²I, with one G_r = Z D_r Zᵀ
per variance or covariance entry of each term (D_r = I_L ⊗ E_r), and forms n×n matrices.
Here every quantity it needs is reduced to q×q and p×p algebra with

    V⁻¹ = (I − Z M Zᵀ)/σ²,   M = Λ (ΛᵀZᵀZΛ + I)⁻¹ Λᵀ,

so the cost is O(q³ + n q p) rather than O(n³). Prior weights enter through W^½Z, W^½X
(pbkrtest ignores weights; without weights the two agree).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg as la
import scipy.sparse as sp
from scipy import stats

from ..engine.threads import blas_threads
from ..model.results import ModelFit

__all__ = ["KenwardRoger", "kenward_roger"]

# Dense q×q matrices are formed; above this q the method is refused.
KR_MAX_Q = 6000


@dataclass
class KenwardRoger:
    """vcov: (p, p) Φ = Var(β̂); vcov_adj: (p, p) Φ_A; P: per parameter (p, p); W: (g, g).

    Computed in the engine's centred and scaled X̃ = X A (`.fixed_scaling`): Φ, Φ_A
    and P are of β̃; a hypothesis Lβ is L A β̃ (up to the intercept's shift, which the
    tests' rows never hold), so L is mapped to L A. ``vcov``/``vcov_adj`` are of β.
    """

    engine_vcov: np.ndarray
    engine_vcov_adj: np.ndarray
    P: list[np.ndarray]
    W: np.ndarray
    A: np.ndarray

    @property
    def vcov(self) -> np.ndarray:
        return self.A @ self.engine_vcov @ self.A.T

    @property
    def vcov_adj(self) -> np.ndarray:
        return self.A @ self.engine_vcov_adj @ self.A.T

    def _a1_a2(self, L: np.ndarray) -> tuple[float, float]:
        L = _row_basis(L @ self.A)  # the statistics depend on L's row space only
        V0 = self.engine_vcov
        Theta = L.T @ np.linalg.solve(L @ V0 @ L.T, L)
        TV = Theta @ V0
        u = [TV @ P @ V0 for P in self.P]
        A1 = A2 = 0.0
        g = len(u)
        for i in range(g):
            for j in range(i, g):
                e = 1.0 if i == j else 2.0
                A1 += e * self.W[i, j] * np.trace(u[i]) * np.trace(u[j])
                A2 += e * self.W[i, j] * np.sum(u[i] * u[j].T)
        return A1, A2

    def _ddf(self, L: np.ndarray, q: int) -> tuple[float, float, float]:
        """(ddf, F scaling, A2) for hypothesis rows L of rank q."""
        A1, A2 = self._a1_a2(L)
        B = (A1 + 6 * A2) / (2 * q)
        g = ((q + 1) * A1 - (q + 4) * A2) / ((q + 2) * A2)
        den = 3 * q + 2 * (1 - g)
        c1, c2, c3 = g / den, (q - g) / den, (q + 2 - g) / den
        V0 = 1 + c1 * B
        V1 = 1 - c2 * B
        V2 = 1 - c3 * B
        V0 = 0.0 if abs(V0) < 1e-10 else V0
        x, y = 1 - A2 / q, V1
        ratio = 1.0 if abs(x) < 1e-14 and abs(y) < 1e-14 else x / y
        rho = ratio**2 * V0 / V2 / q
        df2 = 4 + (q + 2) / (q * rho - 1)
        scaling = 1.0 if abs(df2 - 2) < 0.01 else df2 * (1 - A2 / q) / (df2 - 2)
        return df2, scaling, A2

    def ddf(self, L: np.ndarray) -> float:
        """Denominator df of the test of Lβ = 0 (pbkrtest's ``Lb_ddf``); L is (r, p)."""
        L = np.atleast_2d(L)
        return self._ddf(L, L.shape[0])[0]

    def f_test(self, L: np.ndarray, beta: np.ndarray) -> dict[str, float]:
        """pbkrtest's ``KRmodcomp`` statistics for Lβ = 0: FstatU, F.scaling, ndf, ddf."""
        L = np.atleast_2d(L)
        q = int(np.linalg.matrix_rank(L))
        df2, scaling, _ = self._ddf(L, q)
        Lb = L @ beta
        LA = L @ self.A
        wald = float(Lb @ np.linalg.pinv(LA @ self.engine_vcov_adj @ LA.T, hermitian=True) @ Lb)
        F = wald / q
        return {
            "FstatU": F,
            "F.scaling": scaling,
            "ndf": q,
            "ddf": df2,
            "p.value": stats.f.sf(scaling * F, q, df2),
        }


def _row_basis(L: np.ndarray) -> np.ndarray:
    """L itself when its rows are independent, else an orthonormal basis of its row space
    (dependent hypothesis rows would make LΦLᵀ singular)."""
    if L.shape[0] <= 1 or np.linalg.matrix_rank(L) == L.shape[0]:
        return L
    _, s, Vt = np.linalg.svd(L, full_matrices=False)
    return Vt[s > s[0] * max(L.shape) * np.finfo(float).eps]


def _parameter_blocks(res: ModelFit) -> list[tuple[int, np.ndarray]]:
    """(term index, E_r (k, k)) for every covariance parameter, in VarCorr order."""
    return [(s, E) for s, t in enumerate(res.terms) for E in t.covariance.linear_basis()]


def kenward_roger(res: ModelFit) -> KenwardRoger:
    """Kenward-Roger's adjusted covariance of β̂ (pbkrtest's ``vcovAdj``), cached on ``res``."""
    if not res.reml:
        raise ValueError("Kenward-Roger's method is only available for REML model fits")
    cache = res.cache
    if "kr" in cache:
        return cache["kr"]
    with blas_threads(res.engine.pls.chol.blas_threads):
        out = _compute(res)
    cache["kr"] = out
    return out


def _compute(res: ModelFit) -> KenwardRoger:
    design = res.design
    terms = res.terms
    q = sum(t.q for t in terms)
    if q > KR_MAX_Q:
        raise ValueError(
            f"Kenward-Roger needs dense {q}x{q} matrices (q > {KR_MAX_Q}); use Satterthwaite"
        )
    w = design.weights
    sw = np.ones(design.nobs) if w is None else np.sqrt(w)
    Z = sp.diags(sw) @ sp.hstack([r.z_matrix() for r in design.rows]).tocsc()
    X = res.engine.engine_X() * sw[:, None]  # X̃ = X A: well scaled, as the engine fits
    n = X.shape[0]
    s2 = res.scale
    T = res.engine.pls.templates(res.theta)
    Lam = sp.block_diag([sp.kron(sp.identity(t.nlevels), Ts) for t, Ts in zip(terms, T)]).tocsr()
    S = (Z.T @ Z).toarray()
    A = Lam.T @ (Lam.T @ S).T + np.eye(q)  # ΛᵀSΛ + I (S symmetric)
    M = Lam @ la.cho_solve(la.cho_factor(A), Lam.T.toarray())
    MS = M @ S
    SX = Z.T @ X
    C = (S - S @ MS) / s2  # ZᵀV⁻¹Z
    B = (SX - S @ (M @ SX)) / s2  # ZᵀV⁻¹X
    Y = (X - Z @ (M @ SX)) / s2  # V⁻¹X
    ZtY = Z.T @ Y
    ZVY = (ZtY - S @ (M @ ZtY)) / s2  # ZᵀV⁻²X
    IminusMS = np.eye(q) - MS
    C2 = IminusMS.T @ S @ IminusMS / s2**2  # ZᵀV⁻²Z

    offsets = np.concatenate([[0], np.cumsum([t.q for t in terms])])
    D = [
        sp.csr_matrix(
            sp.block_diag(
                [
                    sp.csr_matrix((offsets[s], offsets[s])),
                    sp.kron(sp.identity(terms[s].nlevels), E),
                    sp.csr_matrix((q - offsets[s + 1], q - offsets[s + 1])),
                ]
            )
        )
        for s, E in _parameter_blocks(res)
    ]
    g = len(D) + 1  # + the residual variance
    DB = [Dr @ B for Dr in D]
    DC = [Dr @ C for Dr in D]
    P = [-(B.T @ DBr) for DBr in DB] + [-(Y.T @ Y)]
    QQ: dict[tuple[int, int], np.ndarray] = {}
    K = np.zeros((g, g))
    for r in range(g - 1):
        for s in range(r, g - 1):
            QQ[r, s] = DB[r].T @ C @ DB[s]
            K[r, s] = K[s, r] = np.sum(DC[r] * DC[s].T)
        QQ[r, g - 1] = DB[r].T @ ZVY
        K[r, g - 1] = K[g - 1, r] = np.sum(D[r].multiply(C2))
    QQ[g - 1, g - 1] = (Y.T @ Y - ZtY.T @ M @ ZtY) / s2
    K[g - 1, g - 1] = (n - 2 * np.trace(MS) + np.sum(MS * MS.T)) / s2**2

    sol = res.solution
    fixed = getattr(sol, "fixed", None)
    A = np.eye(X.shape[1]) if fixed is None else fixed.A
    RX = sol.RX if sol.RX_engine is None else sol.RX_engine
    Rinv = la.solve_triangular(RX, np.eye(RX.shape[0]), check_finite=False)
    Phi = s2 * (Rinv @ Rinv.T)  # Var(β̃)
    IE2 = np.zeros((g, g))
    for r in range(g):
        PhiP = Phi @ P[r]
        for s in range(r, g):
            IE2[r, s] = IE2[s, r] = (
                K[r, s] - 2 * np.sum(Phi * QQ[r, s]) + np.sum(PhiP * (P[s] @ Phi))
            )
    cond = np.min(np.abs(np.linalg.eigvalsh(IE2)))
    W = 2 * (np.linalg.inv(IE2) if cond > 1e-10 else np.linalg.pinv(IE2))
    U = np.zeros_like(Phi)
    for r in range(g - 1):
        for s in range(r + 1, g):
            U += W[r, s] * (QQ[r, s] - P[r] @ Phi @ P[s])
    U = U + U.T
    for r in range(g):
        U += W[r, r] * (QQ[r, r] - P[r] @ Phi @ P[r])
    PhiA = Phi + 2 * Phi @ U @ Phi
    return KenwardRoger(engine_vcov=Phi, engine_vcov_adj=PhiA, P=P, W=W, A=A)
