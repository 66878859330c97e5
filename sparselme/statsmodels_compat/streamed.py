"""``mixedlm`` on streamed data (Parquet, pyarrow, Dask): the model built in two passes."""

from __future__ import annotations

from ..engine.fit import FitOptions
from ..model.mixed_model import MixedModel
from ..results import MixedLMResults

__all__ = ["StreamedMixedLM"]

# statsmodels' optimizer options, accepted and unused (the optimizer is BOBYQA on θ).
_IGNORED = ("method", "niter_sa", "do_cg", "full_output", "gtol", "maxiter", "disp")


class StreamedMixedLM(MixedModel):
    """What ``mixedlm`` returns for streamed data: ``fit(reml=True)`` as statsmodels spells
    it, fixed-effects names in statsmodels' style (``Intercept``)."""

    def fit(self, start_params=None, reml: bool = True, **kwargs) -> MixedLMResults:  # type: ignore[override]
        for k in _IGNORED:
            kwargs.pop(k, None)
        if start_params is not None:
            raise NotImplementedError(
                "start_params (statsmodels' parametrization) is not supported for streamed "
                "fits; pass start= with the relative covariance factor θ instead"
            )
        reml = bool(kwargs.pop("REML", reml))
        names = "r" if kwargs.pop("r_names", False) else "formulaic"
        start, verbose = kwargs.pop("start", None), kwargs.pop("verbose", None)
        callback = kwargs.pop("callback", None)
        fit = self.optimize(
            reml, start, options=FitOptions(**kwargs), verbose=verbose, callback=callback
        )
        return MixedLMResults.of(fit, name_style=names)
