"""Random-effects terms whose variance parameters cannot be told apart.

Terms on the same grouping (their levels split the observations the same way) add up,
per level, to one random effect with covariance Σ_t M_t Ψ_t M_tᵀ (M_t the term's
columns, Ψ_t its covariance: unstructured, diagonal or scalar). The model is identifiable
only if the Ψ_t can be recovered from that sum, i.e. the linear map (Ψ_t)_t ↦ Σ_t M_t Ψ_t
M_tᵀ is one to one. ``(1 | g) + (1 | g)``, ``(1 | g) + (1 + x | g)`` (both hold g's
intercept) and ``(1 | g) + (0 + f | g)`` for a factor f (its indicators add up to the
intercept) are not; ``(1 | g) + (0 + x | g)``, i.e. ``(x || g)``, is.

With M = Q R (Q orthonormal, R from the Gram matrix MᵀM) the map is one to one exactly
when Ψ ↦ R Ψ Rᵀ is, a small rank test that needs only the Gram matrix: the rows of the
terms in memory, or the cross-products of streamed data.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np

from ..engine.arrays import distinct
from ..engine.crossprod import CrossProducts
from ..engine.rows import TermRows
from ..engine.terms import RandomEffectsTerm
from ..errors import IdentifiabilityError

__all__ = ["check_distinct_terms", "mimics_residual"]

_RANK_TOL = 1e-9


def check_distinct_terms(
    terms: Sequence[RandomEffectsTerm],
    rows: Sequence[TermRows] | None = None,
    cp: CrossProducts | None = None,
) -> None:
    """Raise `IdentifiabilityError` naming terms whose variances are confounded.

    From the terms' ``rows`` (codes and model rows), or from their cross-products ``cp``
    (in the terms' order) when the rows are not held (streamed data).
    """
    for group in _same_groupings(terms, rows, cp):
        gram = _gram(terms, rows, group, cp)
        if _identifiable([terms[i] for i in group], gram):
            continue
        offsets = np.cumsum([0] + [terms[i].k for i in group])
        culprits = list(group)
        for a, b in itertools.combinations(range(len(group)), 2):
            idx = np.r_[offsets[a] : offsets[a + 1], offsets[b] : offsets[b + 1]]
            pair = [terms[group[a]], terms[group[b]]]
            if not _identifiable(pair, gram[np.ix_(idx, idx)]):
                culprits = [group[a], group[b]]
                break
        raise IdentifiabilityError(_message([terms[i] for i in culprits]))


def _label(term: RandomEffectsTerm) -> str:
    """A bar term as written; a variance component by its name."""
    return term.description()


def _message(terms: list[RandomEffectsTerm]) -> str:
    labels = " and ".join(_label(t) for t in terms)
    shared = sorted(set(terms[0].columns).intersection(*(t.columns for t in terms[1:])))
    if len(terms) == 2 and _label(terms[0]) == _label(terms[1]):
        why = f"{_label(terms[0])} appears twice"
    elif shared:
        why = f"they share the column{'s' if len(shared) > 1 else ''} {', '.join(shared)}"
    else:
        why = (
            "the columns of one are linear combinations of the columns of the others (as "
            "the indicators of a factor f add up to the intercept in (1 | g) + (0 + f | g), "
            "which is what lme4 makes of (f || g); write (1 | g) + (1 | g:f) instead)"
        )
    return (
        f"the random effects {labels} group the observations in the same way and "
        f"{why}: their variance parameters cannot be told apart (the model is not "
        "identifiable). Remove the duplicated term, or give each term on one grouping "
        "distinct columns, e.g. (1 | g) + (0 + x | g) for independent intercept and slope"
    )


def mimics_residual(term: RandomEffectsTerm) -> bool:
    """Whether the term's covariance can change by a multiple of the identity.

    Unstructured, diagonal and scalar covariances can, so with as many random effects as
    observations their variances trade off against the residual's (lme4's check); a
    homogeneous AR(1) or compound-symmetry covariance over k ≥ 3 columns cannot.
    """
    basis = np.array([B.ravel() for B in term.covariance.tangent_basis()]).T
    eye = np.eye(term.k).ravel()
    coef = np.linalg.lstsq(basis, eye, rcond=None)[0]
    return bool(np.linalg.norm(basis @ coef - eye) < 1e-8 * np.sqrt(term.k))


# ---- which terms group the observations alike -------------------------------------------------


def _same_groupings(terms, rows, cp: CrossProducts | None) -> list[list]:
    """Sets (≥ 2 term indices) of terms whose levels partition the rows alike."""
    parent = list(range(len(terms)))

    def root(i: int) -> int:
        while parent[i] != i:
            i = parent[i]
        return i

    for s, t in itertools.combinations(range(len(terms)), 2):
        if terms[s].nlevels == terms[t].nlevels and _same_partition(terms, rows, s, t, cp):
            parent[root(t)] = root(s)
    groups: dict[int, list[int]] = {}
    for i in range(len(terms)):
        groups.setdefault(root(i), []).append(i)
    return [g for g in groups.values() if len(g) > 1]


def _same_partition(terms, rows, s: int, t: int, cp: CrossProducts | None) -> bool:
    L = terms[s].nlevels
    if cp is None:
        a, b = rows[s].codes, rows[t].codes
        image = np.full(L, -1, dtype=np.intp)
        image[a] = b
        return bool(np.array_equal(image[a], b)) and len(distinct(image)) == L
    blocks = cp.cross[(t, s)]  # level pairs that share rows: a bijection if alike
    return (
        len(blocks.rows) == L
        and len(distinct(blocks.rows)) == L
        and len(distinct(blocks.cols)) == L
    )


def _gram(terms, rows, group: list[int], cp: CrossProducts | None) -> np.ndarray:
    """(K, K) Gram matrix of the group's columns side by side (weighted for cp)."""
    if cp is None:
        M = np.hstack([rows[i].model for i in group])
        return M.T @ M
    sizes = [terms[i].k for i in group]
    o = np.cumsum([0] + sizes)
    G = np.zeros((o[-1], o[-1]))
    for a, i in enumerate(group):
        G[o[a] : o[a + 1], o[a] : o[a + 1]] = cp.diag[i].sum(axis=0)
        for b, j in enumerate(group[:a]):
            block = cp.cross[(i, j)].values.sum(axis=0)  # Z_iᵀWZ_j, i > j
            G[o[a] : o[a + 1], o[b] : o[b + 1]] = block
            G[o[b] : o[b + 1], o[a] : o[a + 1]] = block.T
    return G


# ---- the rank test ----------------------------------------------------------------------------


def _identifiable(terms: list[RandomEffectsTerm], gram: np.ndarray) -> bool:
    """Whether (Ψ_t) ↦ Σ_t M_t Ψ_t M_tᵀ is one to one, from the Gram matrix of [M_t]."""
    d = np.sqrt(np.clip(np.diag(gram), 0.0, None))
    if np.any(d == 0):
        return False
    vals, vecs = np.linalg.eigh(gram / np.outer(d, d))
    keep = vals > _RANK_TOL * vals.max()
    R = (np.sqrt(vals[keep])[:, None] * vecs[:, keep].T) * d  # M = Q R for some Q
    images = []
    at = 0
    for t in terms:
        Rt = R[:, at : at + t.k]
        at += t.k
        for B in t.covariance.tangent_basis():
            images.append((Rt @ B @ Rt.T).ravel())
    J = np.array(images).T
    norms = np.linalg.norm(J, axis=0)
    if not np.all(norms > 0):
        return False
    J = J / norms
    s = np.linalg.svd(J, compute_uv=False)
    rank = int(np.sum(s > _RANK_TOL * s.max() * np.sqrt(J.shape[1])))
    return rank == J.shape[1]
