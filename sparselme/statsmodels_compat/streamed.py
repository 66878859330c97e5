"""``mixedlm`` on streamed data (Parquet, pyarrow, Dask): the model built in two passes."""

from __future__ import annotations

from dataclasses import asdict

from ..engine.fit import FitOptions
from ..model.mixed_model import MixedModel
from ..results import MixedLMResults
from .fit import fit_options

__all__ = ["StreamedMixedLM"]


class StreamedMixedLM(MixedModel):
    """What ``mixedlm`` returns for streamed data: ``fit(reml=True)`` as statsmodels spells
    it, fixed-effects names in statsmodels' style (``Intercept``)."""

    def fit(
        self,
        start_params=None,
        reml: bool = True,
        niter_sa: int = 0,
        do_cg: bool = True,
        full_output: bool = False,
        method=None,
        **fit_kwargs,
    ) -> MixedLMResults:
        """statsmodels' ``fit``: the engine's settings (``maxeval``...) and ``start`` (θ)
        apply; statsmodels' optimizer options warn (FutureWarning), as in ``MixedLM.fit``."""
        if start_params is not None:
            raise NotImplementedError(
                "start_params (statsmodels' parametrization) is not supported for streamed "
                "fits; pass start= with the relative covariance factor θ instead"
            )
        if not do_cg:
            raise NotImplementedError("do_cg=False is not supported for streamed fits")
        options, lme4 = fit_options(fit_kwargs, "MixedLM.fit", method, niter_sa)
        reml = bool(lme4.get("REML", reml))
        verbose = options.pop("verbose", None)
        fit = self.optimize(reml, lme4.get("start"), options=FitOptions(**options), verbose=verbose)
        res = MixedLMResults.from_fit(fit, name_style="formulaic")
        res.hist = [asdict(res.optsum)] if full_output else None
        return res
