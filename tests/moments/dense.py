"""Dense O(N²) references for the moment estimators and GLS (small designs only)."""

from __future__ import annotations

import numpy as np


def small_design(
    seed: int,
    n: int = 120,
    levels: tuple[int, ...] = (15, 9),
    p_extra: int = 2,
    sigma2: tuple[float, ...] = (1.0, 0.5, 1.0),
    repeat_cells: bool = True,
) -> dict[str, np.ndarray]:
    """Unbalanced crossed data with missing cells (and repeated cells when asked).

    Level frequencies are skewed (Zipf-like), one covariate varies by row, one is
    constant within the levels of the last factor (an 'item' covariate).
    """
    rng = np.random.default_rng(seed)
    cols: dict[str, np.ndarray] = {}
    y = np.zeros(n)
    for k, L in enumerate(levels):
        w = 1.0 / np.arange(1, L + 1) ** 0.8
        g = rng.choice(L, size=n, p=w / w.sum())
        g[:L] = rng.permutation(L)  # every level occurs
        cols[f"f{k}"] = g
        y += np.sqrt(sigma2[k]) * rng.standard_normal(L)[g]
    if not repeat_cells and len(levels) >= 2:
        key = cols["f0"] * levels[1] + cols["f1"]
        _, first = np.unique(key, return_index=True)
        keep = np.sort(first)
        cols = {k: v[keep] for k, v in cols.items()}
        y = y[keep]
        n = keep.shape[0]
    x1 = rng.standard_normal(n)
    item = rng.standard_normal(levels[-1])[cols[f"f{len(levels) - 1}"]]
    extra = [x1, item][:p_extra]
    beta = np.array([2.0, 0.5, -1.0])[: 1 + p_extra]
    X = np.column_stack([np.ones(n), *extra])
    y = y + X @ beta + np.sqrt(sigma2[-1]) * rng.standard_normal(n)
    for j, v in enumerate(extra):
        cols[f"x{j + 1}"] = v
    cols["y"] = y
    return cols


def indicators(codes: np.ndarray, L: int) -> np.ndarray:
    Z = np.zeros((codes.shape[0], L))
    Z[np.arange(codes.shape[0]), codes] = 1.0
    return Z


def pair_ustat(r: np.ndarray, same: np.ndarray) -> float:
    """½ Σ over ordered pairs (i, i') with same[i, i'] of (r_i − r_i')², by brute force."""
    n = r.shape[0]
    total = 0.0
    for i in range(n):
        for j in range(n):
            if same[i, j]:
                total += (r[i] - r[j]) ** 2
    return 0.5 * total


class Dense:
    """The model's matrices, written out: Z_f, V, M, A_f."""

    def __init__(self, cols: dict, factors: list[str], levels: list[int], x: list[str]):
        self.n = cols["y"].shape[0]
        self.Z = [indicators(np.asarray(cols[f]), L) for f, L in zip(factors, levels)]
        self.X = np.column_stack([np.ones(self.n), *[cols[c] for c in x]])
        self.y = np.asarray(cols["y"], dtype=float)
        H = self.X @ np.linalg.solve(self.X.T @ self.X, self.X.T)
        self.M = np.eye(self.n) - H
        self.A = [np.diag((Z @ Z.T).sum(axis=1)) - Z @ Z.T for Z in self.Z]
        self.A.append(self.n * np.eye(self.n) - np.ones((self.n, self.n)))
        self.W = [Z @ Z.T for Z in self.Z] + [np.eye(self.n)]

    def V(self, sigma2) -> np.ndarray:
        return sum(s * W for s, W in zip(sigma2, self.W))

    def expectation_matrix(self) -> np.ndarray:
        """C[f, h] = tr(M A_f M W_h)."""
        return np.array([[np.trace(self.M @ A @ self.M @ W) for W in self.W] for A in self.A])

    def ustat_cov(self, sigma2) -> np.ndarray:
        """Gaussian Cov(U_f, U_g) = 2 tr(Ã_f V Ã_g V)."""
        V = self.V(sigma2)
        At = [self.M @ A @ self.M for A in self.A]
        return np.array([[2 * np.trace(a @ V @ b @ V) for b in At] for a in At])

    def gls(self, sigma2):
        Vi = np.linalg.inv(self.V(sigma2))
        xtvx = self.X.T @ Vi @ self.X
        cov = np.linalg.inv(xtvx)
        beta = cov @ self.X.T @ Vi @ self.y
        resid = self.y - self.X @ beta
        modes = [s * Z.T @ Vi @ resid for s, Z in zip(sigma2, self.Z)]
        return beta, cov, modes


def q_matrix(d: Dense, st) -> np.ndarray:
    """Q = D_φ − Z_f D_w Z_fᵀ of a Statistic (factor K: the grand one-level factor)."""
    Z = d.Z[st.factor] if st.factor < len(d.Z) else np.ones((d.n, 1))
    phi = Z @ st.phi
    return np.diag(phi) - (Z * st.w) @ Z.T
