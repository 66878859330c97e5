"""Covariance parametrizations by name: what a formula keyword or an API argument asks for.

``make_covariance("ar1", k)`` is `.structures.AR1` over k columns; the plain kinds of
`.covariance` have their names too (``"unstructured"``/``"us"``, ``"diagonal"``/``"diag"``,
``"scalar"``).
"""

from __future__ import annotations

from .covariance import CovarianceStructure, Diagonal, Scalar, Unstructured
from .structures import STRUCTURES

__all__ = ["KINDS", "make_covariance"]

KINDS: dict[str, type[CovarianceStructure]] = {
    "unstructured": Unstructured,
    "diagonal": Diagonal,
    "scalar": Scalar,
    "us": Unstructured,
    "diag": Diagonal,
    **STRUCTURES,
}


def make_covariance(
    kind: str | CovarianceStructure, k: int, **options: int
) -> CovarianceStructure:
    """A parametrization by name for k columns.

    ``kind``: ``"unstructured"`` (``"us"``), ``"diagonal"`` (``"diag"``), ``"scalar"``,
    or a structure of `.structures` by its formula keyword (``"cs"``, ``"homcs"``,
    ``"ar1"``, ``"toep"``, ``"homdiag"``, ``"rr"``); ``options`` are the structure's
    (``rank`` of ``"rr"``).
    """
    if isinstance(kind, CovarianceStructure):
        if kind.k != k:
            raise ValueError(f"covariance structure for {kind.k} columns used on {k}")
        return kind
    try:
        cls = KINDS[kind]
    except KeyError:
        raise ValueError(
            f"unknown covariance structure {kind!r}; known: {', '.join(KINDS)}"
        ) from None
    return cls(k, **options)
