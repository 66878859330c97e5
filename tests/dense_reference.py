"""Brute-force dense evaluation of the LMM likelihood, for checking the sparse engine.

Builds the marginal covariance V(θ) = ZΛΛᵀZᵀ + W⁻¹ explicitly and evaluates the profiled
ML deviance and REML criterion by dense linear algebra: fine for small problems only.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg as la


def dense_lambda(model, theta: np.ndarray) -> np.ndarray:
    """(q, q) Λ(θ): block diagonal, each term's template repeated per level."""
    templates = model.pls.templates(theta)
    blocks = [np.kron(np.eye(t.nlevels), T) for t, T in zip(model.design.terms, templates)]
    return la.block_diag(*blocks)


def dense_z(model) -> np.ndarray:
    """(n, q) Z with every term's block side by side."""
    return np.hstack([r.z_matrix().toarray() for r in model.design.rows])


def dense_deviance(model, theta: np.ndarray, reml: bool, R: np.ndarray | None = None) -> float:
    """−2 log-likelihood (ML) or the REML criterion, σ² profiled out, by dense algebra.

    V = ZΛΛᵀZᵀ + R relative to σ²; R (n, n) defaults to the prior weights' diag(1/w).
    """
    d = model.design
    X, y = d.X, d.y_minus_offset
    n, p = X.shape
    if R is None:
        R = np.diag(1.0 / (np.ones(n) if d.weights is None else d.weights))
    ZL = dense_z(model) @ dense_lambda(model, theta)
    V = ZL @ ZL.T + R
    cV = la.cho_factor(V)
    Vi_X = la.cho_solve(cV, X)
    Vi_y = la.cho_solve(cV, y)
    XtViX = X.T @ Vi_X
    beta = np.linalg.solve(XtViX, X.T @ Vi_y)
    r = y - X @ beta
    rss = r @ la.cho_solve(cV, r)
    logdet_V = 2 * np.sum(np.log(np.diag(cV[0])))
    if reml:
        dof = n - p
        return logdet_V + np.linalg.slogdet(XtViX)[1] + dof * (1 + np.log(2 * np.pi * rss / dof))
    return logdet_V + n * (1 + np.log(2 * np.pi * rss / n))


def dense_gradient(model, theta: np.ndarray, reml: bool) -> np.ndarray:
    """The gradient of `dense_deviance` with respect to θ, from V's derivatives.

    Λ is linear in θ, so ∂Λ/∂θ_j = Λ(e_j) and ∂V = Z(∂Λ Λᵀ + Λ ∂Λᵀ)Zᵀ; then
    ∂log|V| = tr(V⁻¹∂V), ∂(rᵀV⁻¹r) = −rᵀV⁻¹∂VV⁻¹r at the GLS β (envelope theorem) and
    ∂log|XᵀV⁻¹X| = −tr((XᵀV⁻¹X)⁻¹XᵀV⁻¹∂VV⁻¹X).
    """
    d = model.design
    X, y = d.X, d.y_minus_offset
    n, p = X.shape
    w = np.ones(n) if d.weights is None else d.weights
    Z = dense_z(model)
    Lam = dense_lambda(model, theta)
    Vi = np.linalg.inv(Z @ Lam @ Lam.T @ Z.T + np.diag(1.0 / w))
    XViX = X.T @ Vi @ X
    r = y - X @ np.linalg.solve(XViX, X.T @ Vi @ y)
    rss = r @ Vi @ r
    Vir, ViX = Vi @ r, Vi @ X
    grad = []
    for e in np.eye(len(theta)):
        dLam = dense_lambda(model, e)
        dV = Z @ (dLam @ Lam.T + Lam @ dLam.T) @ Z.T
        g = np.trace(Vi @ dV)
        if reml:
            g -= np.trace(np.linalg.solve(XViX, ViX.T @ dV @ ViX))
        g -= (n - p if reml else n) * (Vir @ dV @ Vir) / rss
        grad.append(g)
    return np.array(grad)


def dense_condvar(res) -> list[np.ndarray]:
    """Per term (L, k, k) σ² blocks of Λ(ΛᵀZᵀWZΛ + I)⁻¹Λᵀ by dense algebra."""
    model = res.engine
    Lam = dense_lambda(model, res.theta)
    Z = dense_z(model)
    w = model.design.weights
    ZW = Z if w is None else Z * np.sqrt(w)[:, None]
    A = Lam.T @ ZW.T @ ZW @ Lam + np.eye(Lam.shape[0])
    V = res.scale * Lam @ la.inv(A) @ Lam.T
    out, at = [], 0
    for t in model.design.terms:
        blocks = np.array(
            [V[at + i * t.k : at + (i + 1) * t.k, at + i * t.k : at + (i + 1) * t.k]
             for i in range(t.nlevels)]
        )  # fmt: skip
        out.append(blocks)
        at += t.q
    return out
