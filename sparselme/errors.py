"""Exceptions and warnings raised by sparselme.

Every problem with the user's input raises a subclass of `SparselmeError`; those
that Python users would catch as ``ValueError`` or ``KeyError`` also derive from them.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = [
    "SparselmeError",
    "FormulaError",
    "DataError",
    "DataTypeError",
    "MissingDataError",
    "UnknownColumnError",
    "IdentifiabilityError",
    "NumericalError",
    "ProblemTooLargeError",
    "StructureError",
    "NonlinearStructureError",
    "StatefulTransformError",
    "NeedsRowsError",
    "CorruptDataError",
    "DataChangedError",
    "NoLikelihoodError",
    "EstimatorError",
    "ConvergenceWarning",
    "SingularFitWarning",
    "RankDeficiencyWarning",
    "ScaleWarning",
    "DroppedRowsWarning",
    "NewLevelsWarning",
    "IdentifiabilityWarning",
    "EstimatorChoiceWarning",
]


class SparselmeError(Exception):
    """Base class of every sparselme error."""


class FormulaError(SparselmeError, ValueError):
    """A malformed model formula; the message points at the offending token."""

    def __init__(self, message: str, formula: str | None = None, position: int | None = None):
        self.formula = formula
        self.position = position
        self.reason = message
        text = message
        if formula is not None:
            text += f"\n    {formula}"
            if position is not None:
                text += "\n    " + " " * position + "^"
        super().__init__(text)


class DataError(SparselmeError, ValueError):
    """The data cannot be used as given (missing values, wrong types, wrong lengths...)."""


class DataTypeError(DataError, TypeError):
    """The data (or an argument standing for data) is not of a usable type."""


class MissingDataError(DataError):
    """Missing or non-finite values in the variables a model uses."""


class IdentifiabilityError(DataError):
    """The random-effects structure cannot be estimated from these data."""


class StatefulTransformError(DataError):
    """A transform learned from all rows (``center``, ``scale``, ``poly``...) in a streamed fit.

    Streamed data are coded chunk by chunk, where such a transform would be learned per
    chunk; compute the column before fitting, or fit the data in memory.
    """

    def __init__(self, expression: str):
        self.expression = expression
        super().__init__(
            f"streamed fits cannot use stateful transforms ({expression}): they would be "
            "learned per chunk; compute the column before fitting"
        )


class NeedsRowsError(SparselmeError, NotImplementedError):
    """A result that needs the data's rows in memory was asked of a streamed fit."""

    def __init__(self, what: str, hint: str = ""):
        self.what = what
        super().__init__(
            f"{what} needs the rows in memory, which a streamed fit (Parquet, pyarrow or "
            f"Dask data) does not hold{'; ' + hint if hint else ''}"
        )


class CorruptDataError(DataError):
    """A Parquet file failed its page checksums (or cannot be decoded): the data are corrupt."""

    def __init__(self, path: str, reason: str = ""):
        self.path = path
        super().__init__(
            f"the Parquet file {path!r} is corrupt: {reason or 'a page checksum does not match'}"
            "; restore or rewrite the file"
        )


class DataChangedError(DataError):
    """Streamed input changed between the passes over it (files replaced, appended, deleted)."""

    def __init__(self, changes: list[str]):
        self.changes = list(changes)
        listed = "; ".join(self.changes[:10])
        more = f" (and {len(self.changes) - 10} more)" if len(self.changes) > 10 else ""
        super().__init__(
            "the data changed between passes over them, so the fit would mix two versions: "
            f"{listed}{more}. Fit again once the data are no longer being written"
        )


class NumericalError(SparselmeError, ArithmeticError):
    """The criterion cannot be evaluated in double precision (data far too badly scaled)."""


class ProblemTooLargeError(SparselmeError):
    """The exact fit would not fit in memory or would take too long per evaluation.

    Raised before the first factorization; ``estimate`` holds the prediction (a
    `sparselme.engine.limits.FitEstimate`: memory, flops, seconds per evaluation).
    """

    def __init__(self, message: str, estimate=None):
        super().__init__(message)
        self.estimate = estimate


class StructureError(SparselmeError, NotImplementedError):
    """A method is not available for a term's covariance structure (``ar1(...)``, ...)."""


class NonlinearStructureError(StructureError):
    """A method needs the covariance to be linear in its parameters (Kenward-Roger,
    statsmodels' Hessian), and a term's structure (AR(1), compound symmetry, Toeplitz,
    reduced rank) is not."""


class NoLikelihoodError(SparselmeError):
    """The fit has no likelihood: a method-of-moments fit (``estimator="moments"``) gives
    no log-likelihood, deviance, AIC/BIC, likelihood-ratio tests, profiles, denominator
    degrees of freedom, conditional variances or bootstrap."""


class EstimatorError(SparselmeError, ValueError):
    """The model is outside what the chosen ``estimator`` can fit (the message says which
    estimator can)."""


class UnknownColumnError(SparselmeError, KeyError, ValueError):
    """A variable named in a formula or argument is not a column of the data.

    A KeyError, as pandas raises for a missing column, and a ValueError like every other
    problem with the model's input.
    """

    def __init__(self, name: str, available: Iterable[str], where: str = "data", note: str = ""):
        self.name = name
        close = difflib.get_close_matches(str(name), [str(a) for a in available], n=3, cutoff=0.6)
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        self.message = f"column {name!r} not found in {where}{note}{hint}"
        super().__init__(self.message)

    def __str__(self) -> str:  # KeyError would otherwise print the repr of the message
        return self.message


class ConvergenceWarning(UserWarning):
    """The optimizer stopped without meeting the convergence checks."""


class SingularFitWarning(UserWarning):
    """The fit is on the boundary of the parameter space (a variance is zero)."""


class RankDeficiencyWarning(UserWarning):
    """Columns of the fixed-effects design were dropped because they are redundant."""


class ScaleWarning(UserWarning):
    """Variables on extreme scales make the variance parameters hard to estimate."""


class DroppedRowsWarning(UserWarning):
    """Rows were left out of the fit (missing values with missing='drop', zero weights)."""


class NewLevelsWarning(UserWarning):
    """Predictions for groups (or levels) the fit has not seen leave out their random effects."""


class IdentifiabilityWarning(UserWarning):
    """A term has at least as many random effects as observations (lme4's
    ``check.nobs.vs.nRE = "warning"``): its variances and the residual variance may be
    confounded. The statsmodels API fits such models, as statsmodels does."""


class EstimatorChoiceWarning(UserWarning):
    """``estimator="auto"`` chose the method of moments because the exact fit is too large
    (the results' ``estimator`` and ``estimator_reason`` say so too)."""
