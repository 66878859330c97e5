"""``remove_data()``, ``save`` and ``load`` of the statsmodels-API results.

As in statsmodels, the model's ``endog``, ``exog``, ``exog_re`` and ``groups`` and the
results' ``fittedvalues`` and ``resid`` become None, so that a pickle of the results is
small. Everything ``summary()`` shows (parameters, standard errors, llf, group sizes) is
computed first and kept; what needs the rows again (refits, ``profile_re``,
predictions at group level) raises `sparselme.errors.DataError`.
"""

from __future__ import annotations

import dataclasses
import pickle
from typing import TYPE_CHECKING

import numpy as np

from ..data.design import Design
from ..errors import DataError

if TYPE_CHECKING:
    from .results import MixedLMCompatResults

__all__ = ["remove_data", "check_has_data", "save_pickle", "load_pickle"]

# what summary() and the statsmodels attributes read, computed before the rows go
_KEPT = (
    "_param_values",
    "_cov_params",
    "_bse_values",
    "_cov_re_frame",
    "_vcomp_unscaled",
    "params_object",
    "random_effects",
    "_group_sizes",
    "df_resid",
    "deviance",
    "reml_criterion",
)


def _without_rows(design: Design) -> Design:
    p = design.X.shape[1] if design.X is not None else len(design.fixed_names)
    return dataclasses.replace(
        design,
        y=None,
        X=np.zeros((0, p)),
        rows=None,
        weights=None,
        offset=None,
        row_index=None,
        nrows=design.nobs,
    )


def remove_data(res: MixedLMCompatResults) -> None:
    """Drop the rows from ``res`` and its model (see the module docstring)."""
    for name in _KEPT:
        getattr(res, name)
    model = res.model
    for m in {id(model): model, id(res.model_view): res.model_view}.values():
        m._base_design = _without_rows(m._base_design)
        for engine in m._engines.values():
            engine.design = _without_rows(engine.design)
        m.data_frame = None
        m._data_removed = True
    res.__dict__["fittedvalues"] = None
    res._data_removed = True


def check_has_data(obj, what: str) -> None:
    """Raise DataError when ``remove_data()`` dropped the rows ``what`` needs."""
    if getattr(obj, "_data_removed", False):
        raise DataError(f"{what} needs the data, which remove_data() dropped; fit the model again")


def save_pickle(obj, fname) -> None:
    """Pickle ``obj`` to a path or a binary file object."""
    if hasattr(fname, "write"):
        pickle.dump(obj, fname, protocol=pickle.HIGHEST_PROTOCOL)
        return
    with open(fname, "wb") as fh:
        pickle.dump(obj, fh, protocol=pickle.HIGHEST_PROTOCOL)


def load_pickle(fname):
    """What `save_pickle` wrote (a path or a binary file object)."""
    if hasattr(fname, "read"):
        return pickle.load(fname)  # noqa: S301 - the user's own file
    with open(fname, "rb") as fh:
        return pickle.load(fh)  # noqa: S301
