"""``MixedLM.data``: statsmodels' model-data object (names, arrays, the formula's frame).

statsmodels' results follow the type of the model's input: pandas in (a formula, or
``endog``/``exog`` given as a Series or DataFrame), pandas out; ndarrays in, ndarrays out.
`ModelData` records which, and `ModelData.wrap` converts a result that is
computed as pandas (with its names) into what the caller gets.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from .model import MixedLM


class ModelData:
    """Names and arrays of a `sparselme.statsmodels_compat.MixedLM` (statsmodels').

    ``xnames`` (k_fe,), ``ynames`` (the response's name), ``exog_re_names`` (k_re,),
    ``exog_re_names_full`` (k_re(k_re+1)/2 covariance names), ``param_names`` (all
    parameters), ``frame`` (the fitted rows of a formula model, else None), ``endog``
    (n,), ``exog`` (n, k_fe), ``exog_re`` (n, k_re), ``row_labels`` (the input's index, or
    None for ndarrays), ``use_pandas``.
    """

    def __init__(self, model: MixedLM, use_pandas: bool):
        self._model = model
        self.use_pandas = bool(use_pandas)

    @property
    def xnames(self) -> list[str]:
        return list(self._model.exog_names)

    @property
    def ynames(self) -> str:
        return self._model.endog_names

    @property
    def exog_re_names(self) -> list[str]:
        return list(self._model.exog_re_names)

    @property
    def param_names(self) -> list[str]:
        return list(self._model.param_names)

    @property
    def exog_re_names_full(self) -> list[str]:
        k = self._model.k_fe
        return self.param_names[k : k + self._model.k_re2]

    @property
    def cov_names(self) -> list[str]:
        return self.param_names

    @property
    def frame(self) -> pd.DataFrame | None:
        return self._model.data_frame

    @property
    def formula(self) -> str | None:
        return self._model.formula

    @property
    def endog(self) -> np.ndarray:
        return self._model.endog

    @property
    def exog(self) -> np.ndarray:
        return self._model.exog

    @property
    def exog_re(self) -> np.ndarray | None:
        return self._model.exog_re

    @property
    def row_labels(self) -> pd.Index | None:
        return self._model.design.row_index if self.use_pandas else None

    def wrap(self, value: Any) -> Any:
        """A pandas result as the caller gets it: unchanged for pandas input, else values."""
        if self.use_pandas or not isinstance(value, (pd.Series, pd.DataFrame)):
            return value
        return value.to_numpy()

    def __repr__(self) -> str:
        kind = "pandas" if self.use_pandas else "ndarray"
        return f"<ModelData ({kind}) y={self.ynames!r} x={self.xnames}>"
