"""Per-group algebra: statsmodels' Hessian (for ``bse``) and conditional covariances."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ..engine.crossprod import CrossProducts
from ..engine.rows import TermRows
from ..engine.terms import RandomEffectsTerm

# Dense per-group algebra is skipped (variance-parameter SEs become NaN) beyond this many
# stored numbers or flops: B groups of up to m random effects cost B·m² and B·m³.
_MAX_BLOCK_ENTRIES = 4_000_000
_MAX_BLOCK_FLOPS = 2e9


class GroupAlgebra:
    """Dense per-group matrices in the random-effects space, padded to a common size m.

    For group b with random-effects design Z_b, K = Z_bᵀZ_b, T the group's block of Λ(θ)
    and C = TᵀKT + I:

    * P = T C⁻¹ Tᵀ: the conditional covariance of the group's effects divided by σ²;
    * W = Z_bᵀV⁻¹Z_b = K − K P K, with V = I + Z_b T Tᵀ Z_bᵀ (statsmodels' profile scale);
    * WX = Z_bᵀV⁻¹X_b (m, p), wr = Z_bᵀV⁻¹r_b (m,), r = y − Xβ.

    Arrays are (B, m, m), (B, m, p), (B, m) for B groups. With terms that cross the
    groups, everything is one group (B = 1, m = q).
    """

    def __init__(
        self,
        terms: list[RandomEffectsTerm],
        rows: list[TermRows],
        thetas: list[np.ndarray],
        blocks: list[np.ndarray] | None,
        X: np.ndarray,
        resid: np.ndarray,
    ):
        if blocks is None:
            blocks = [np.zeros(t.nlevels, dtype=np.intp) for t in terms]
        self.terms = terms
        self.rows = rows
        self._place_levels(blocks)
        self._check_size()
        B, m = self.B, self.m
        Z = self._padded_Z(len(resid))
        K = (Z.T @ Z).tocoo()
        if np.any(K.row // m != K.col // m):
            raise ValueError("random effects of different groups share observations")
        self.K = np.zeros((B, m, m))
        np.add.at(self.K, (K.row // m, K.row % m, K.col % m), K.data)
        ZX = np.asarray(Z.T @ X).reshape(B, m, X.shape[1])
        Zr = np.asarray(Z.T @ resid).reshape(B, m)
        self._finish(thetas, ZX, Zr)

    @classmethod
    def from_crossproducts(
        cls,
        terms: list[RandomEffectsTerm],
        cp: CrossProducts,
        thetas: list[np.ndarray],
        blocks: list[np.ndarray] | None,
        beta: np.ndarray,
    ) -> GroupAlgebra:
        """The same matrices from the cross-products (streamed data: no rows held).

        K's per-group blocks are the level blocks of ZᵀZ (``cp.diag``, ``cp.cross``), ZᵀX is
        ``cp.ZtX`` and Zᵀr = Zᵀy − ZᵀXβ; ``cp`` must be unweighted and ``beta`` (p,) in the
        cross-products' parametrization.
        """
        self = cls.__new__(cls)
        if blocks is None:
            blocks = [np.zeros(t.nlevels, dtype=np.intp) for t in terms]
        self.terms, self.rows = terms, None
        self._place_levels(blocks)
        self._check_size()
        B, m, p = self.B, self.m, cp.p
        self.K = np.zeros((B, m, m))
        ZX, Zr = np.zeros((B, m, p)), np.zeros((B, m))
        for s, (t, (blk, off)) in enumerate(zip(terms, self.pos)):
            idx = off[:, None] + np.arange(t.k)[None, :]  # (L, k)
            self.K[blk[:, None, None], idx[:, :, None], idx[:, None, :]] += cp.diag[s]
            ZX[blk[:, None], idx] = cp.ZtX[s]
            Zr[blk[:, None], idx] = cp.Zty[s] - cp.ZtX[s] @ beta
        for (s, t), cb in cp.cross.items():
            (bs, os_), (bt, ot) = self.pos[s], self.pos[t]
            if np.any(bs[cb.rows] != bt[cb.cols]):
                raise ValueError("random effects of different groups share observations")
            ks, kt = terms[s].k, terms[t].k
            r = os_[cb.rows][:, None] + np.arange(ks)[None, :]  # (n, ks)
            c = ot[cb.cols][:, None] + np.arange(kt)[None, :]  # (n, kt)
            g = bs[cb.rows][:, None, None]
            np.add.at(self.K, (g, r[:, :, None], c[:, None, :]), cb.values)
            np.add.at(self.K, (g, c[:, None, :], r[:, :, None]), cb.values)
        self._finish(thetas, ZX, Zr)
        return self

    def _check_size(self) -> None:
        if self.B * self.m**2 > _MAX_BLOCK_ENTRIES or self.B * self.m**3 > _MAX_BLOCK_FLOPS:
            raise MemoryError(
                f"{self.B} group(s) of up to {self.m} random effects are too large for "
                "dense per-group algebra"
            )

    def _finish(self, thetas: list[np.ndarray], ZX: np.ndarray, Zr: np.ndarray) -> None:
        """P, W, WX and wr from K (B, m, m), ZX (B, m, p) and Zr (B, m)."""
        m = self.m
        T = self._padded_T(thetas)
        Tt = np.transpose(T, (0, 2, 1))
        C = Tt @ self.K @ T + np.eye(m)[None]
        self.P = T @ np.linalg.solve(C, Tt)
        KP = self.K @ self.P
        self.W = self.K - KP @ self.K
        self.WX = ZX - KP @ ZX
        self.wr = Zr - np.einsum("bij,bj->bi", KP, Zr)

    def _place_levels(self, blocks: list[np.ndarray]) -> None:
        """``pos[s]`` = (block (L,), offset (L,)) of each level of term s; B and m."""
        B = int(max((b.max() + 1 for b in blocks if len(b)), default=1))
        used = np.zeros(B, dtype=np.intp)
        self.pos: list[tuple[np.ndarray, np.ndarray]] = []
        for t, blk in zip(self.terms, blocks):
            blk = np.asarray(blk, dtype=np.intp)
            counts = np.bincount(blk, minlength=B)
            order = np.argsort(blk, kind="stable")
            starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
            rank = np.empty(len(blk), dtype=np.intp)
            rank[order] = np.arange(len(blk)) - np.repeat(starts, counts)
            self.pos.append((blk, used[blk] + rank * t.k))
            used += counts * t.k
        self.B, self.m = B, int(used.max()) if len(used) else 0

    def _padded_Z(self, n: int) -> sp.csr_matrix:
        """Z (n, B·m) in padded coordinates: column b·m + local."""
        rows, cols, vals = [], [], []
        for t, (blk, off) in zip(self.rows, self.pos):
            lv = t.codes
            for a in range(t.k):
                rows.append(np.arange(n))
                cols.append(blk[lv] * self.m + off[lv] + a)
                vals.append(t.model[:, a])
        Z = sp.csr_matrix(
            (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
            shape=(n, self.B * self.m),
        )
        Z.eliminate_zeros()
        return Z

    def _padded_T(self, thetas: list[np.ndarray]) -> np.ndarray:
        """(B, m, m) blocks of Λ(θ), θ given per term."""
        T = np.zeros((self.B, self.m, self.m))
        for t, th, (blk, off) in zip(self.terms, thetas, self.pos):
            Tt = t.template(th)
            for a in range(t.k):
                for c in range(t.k):
                    if Tt[a, c] != 0:
                        T[blk, off + a, off + c] = Tt[a, c]
        return T

    def apply(self, spec: tuple[int, np.ndarray], A: np.ndarray) -> np.ndarray:
        """D A for D = the term's S at every level (block diagonal), A of shape (B, m, ...)."""
        s, S = spec
        blk, off = self.pos[s]
        k = S.shape[0]
        idx = off[:, None] + np.arange(k)[None, :]
        g = A[blk[:, None], idx]  # (L, k, ...)
        out = np.zeros_like(A)
        out[blk[:, None], idx] = np.einsum("ab,lb...->la...", S, g)
        return out

    def score(
        self, specs: list[tuple[int, np.ndarray]], M: np.ndarray, Q: float, fac: float, reml: bool
    ) -> np.ndarray:
        """(k,) gradient of statsmodels' log-likelihood in the Ψ/σ² entries of ``specs``.

        With ℓ as in `hessian`: ∂ℓ/∂ψ_i = −½tr(D_i W) + (fac/2)·wrᵀD_i wr/Q
        [+ ½tr(M⁻¹ WXᵀD_i WX) under REML]; M = XᵀV⁻¹X (p, p), Q = rᵀV⁻¹r.
        """
        out = np.zeros(len(specs))
        Minv = np.linalg.inv(M) if reml and M.shape[0] else None
        for i, spec in enumerate(specs):
            DW = self.apply(spec, self.W)
            g = -0.5 * np.trace(DW, axis1=1, axis2=2).sum()
            g += 0.5 * fac * np.sum(self.wr * self.apply(spec, self.wr)) / Q
            if Minv is not None:
                A = np.einsum("bip,biq->pq", self.WX, self.apply(spec, self.WX))
                g += 0.5 * np.sum(Minv * A)
            out[i] = g
        return out

    def hessian(
        self,
        specs: list[tuple[int, np.ndarray]],
        M: np.ndarray,
        Q: float,
        fac: float,
        reml: bool,
        xvr: np.ndarray | None = None,
    ) -> np.ndarray:
        """statsmodels' Hessian of its profile log-likelihood in (β, Ψ/σ² entries).

        ℓ = −½log|V| − (fac/2)·log Q(β) [− ½log|XᵀV⁻¹X| under REML], V linear in the
        parameters with dV/dψ_i = Z D_i Zᵀ. M = XᵀV⁻¹X (p, p); ``xvr`` = XᵀV⁻¹r (p,),
        zero (None) at the GLS estimate of β, where the terms in it vanish. Returns
        (p + k, p + k) for k = len(specs).
        """
        p = M.shape[0]
        npar = len(specs)
        W, WX, wr = self.W, self.WX, self.wr
        Y = [self.apply(sp_, W) for sp_ in specs]  # D_i W
        U = [self.apply(sp_, wr) for sp_ in specs]  # D_i wr
        V = [self.apply(sp_, WX) for sp_ in specs]  # D_i WX
        WU = [np.einsum("bij,bj->bi", W, u) for u in U]
        WV = [W @ v for v in V]
        a = np.array([np.sum(u * wr) for u in U])
        c = [np.einsum("bip,bi->p", WX, u) for u in U]
        A = [np.einsum("bip,biq->pq", WX, v) for v in V]
        Minv = np.linalg.inv(M) if p else M
        H = np.zeros((p + npar, p + npar))
        H[:p, :p] = -fac * M / Q
        for i in range(npar):
            H[:p, p + i] = H[p + i, :p] = -fac * c[i] / Q
            for j in range(i + 1):
                tr = np.sum(Y[i] * np.transpose(Y[j], (0, 2, 1)))
                b = np.sum(U[i] * WU[j])
                h = 0.5 * tr - fac * b / Q + 0.5 * fac * a[i] * a[j] / Q**2
                if reml and p:
                    F = np.einsum("bip,biq->pq", V[i], WV[j])
                    F = F + F.T
                    h += 0.5 * np.trace(Minv @ A[j] @ Minv @ A[i]) - 0.5 * np.trace(Minv @ F)
                H[p + i, p + j] = H[p + j, p + i] = h
        if xvr is not None and p:  # away from the GLS β: dQ/dβ = −2XᵀV⁻¹r ≠ 0
            H[:p, :p] += 2 * fac * np.outer(xvr, xvr) / Q**2
            for i in range(npar):
                H[:p, p + i] += fac * xvr * a[i] / Q**2
                H[p + i, :p] = H[:p, p + i]
        return H


def spec_matrix(term: RandomEffectsTerm, a: int, b: int) -> np.ndarray:
    """S (k, k) with Ψ = Σψ·S: e_a e_bᵀ + e_b e_aᵀ (a ≠ b), e_a e_aᵀ, or I (scalar term)."""
    cov = term.covariance
    for (_, i, j), E in zip(cov.natural_parameters(), cov.linear_basis()):
        if {i, j} == {a, b}:
            return E
    S = np.zeros((term.k, term.k))  # an entry the structure holds at 0 (``free``)
    S[a, b] = S[b, a] = 1.0
    return S
