"""Drop-in for ``import statsmodels.api as sm``: ``sm.MixedLM`` and ``sm.datasets``.

Switching a statsmodels script to sparselme is one import line:

    import sparselme.api as sm             # was: import statsmodels.api as sm
    data = sm.datasets.get_rdataset("dietox", "geepack").data
    md = sm.MixedLM.from_formula("Weight ~ Time", data, groups=data["Pig"])

``sm.regression.mixed_linear_model.MixedLMParams`` resolves as in statsmodels.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd

from . import datasets as _bundled
from . import statsmodels_compat as _compat
from .statsmodels_compat import MixedLM, MixedLMParams, VCSpec, mixedlm

__all__ = ["MixedLM", "MixedLMParams", "VCSpec", "add_constant", "datasets", "regression"]

# (package, dataset) → bundled name; R's dataset names in their usual packages.
_RDATASETS = {
    ("geepack", "dietox"): "dietox",
    ("doBy", "dietox"): "dietox",
    ("MASS", "Sitka"): "Sitka",
    ("lme4", "sleepstudy"): "sleepstudy",
    ("lme4", "Dyestuff"): "Dyestuff",
    ("lme4", "Dyestuff2"): "Dyestuff2",
    ("lme4", "Pastes"): "Pastes",
    ("lme4", "Penicillin"): "Penicillin",
    ("lme4", "cake"): "cake",
    ("lme4", "InstEval"): "InstEval",
}


class RDataset(SimpleNamespace):
    """What ``get_rdataset`` returns: ``.data`` (DataFrame), ``.package``, ``.title``."""


def get_rdataset(dataname: str, package: str = "datasets", cache=False) -> RDataset:
    """A bundled dataset shaped like statsmodels' ``get_rdataset`` result (no network).

    ``cache`` (where statsmodels keeps downloads) has nothing to do: nothing is downloaded.
    Factors become plain columns as in Rdatasets' CSV files: integer labels (e.g. dietox's
    ``Pig``) as int64, others as strings.
    """
    key = next(
        (
            v
            for (p, n), v in _RDATASETS.items()
            if p.lower() == str(package).lower() and n.lower() == str(dataname).lower()
        ),
        None,
    )
    if key is None:
        known = ", ".join(f"{n!r} ({p})" for p, n in _RDATASETS)
        raise KeyError(
            f"dataset {dataname!r} from package {package!r} is not bundled and sparselme "
            f"does not download; bundled: {known}"
        )
    frame = _bundled.load(key)
    for col in frame.columns:
        if isinstance(frame[col].dtype, pd.CategoricalDtype):
            values = frame[col].astype(str)
            if values.str.fullmatch(r"-?\d+").all():
                frame[col] = values.astype(np.int64)
            else:
                frame[col] = values.astype(object)
    return RDataset(
        data=frame,
        package=package,
        title=f"{key} (bundled with sparselme)",
        from_cache=True,
        __doc__=f"R dataset {key} from package {package}, bundled with sparselme.",
    )


def add_constant(data, prepend: bool = True, has_constant: str = "skip"):
    """Add a column of ones named ``const`` (statsmodels' ``add_constant``).

    ``has_constant`` when a column is already constant: "skip" returns the data as they
    are, "add" adds the column anyway, "raise" raises a ValueError.
    """
    if has_constant not in ("skip", "add", "raise"):
        raise ValueError(f"has_constant must be 'skip', 'add' or 'raise', not {has_constant!r}")
    frame = isinstance(data, pd.DataFrame)
    x = data if frame else np.asarray(data, dtype=float)
    x = x[:, None] if not frame and x.ndim == 1 else x
    constant = (x.nunique() == 1).any() if frame else bool(np.any(np.ptp(x, axis=0) == 0))
    if constant and has_constant == "raise":
        raise ValueError("data already contain a constant column (has_constant='raise')")
    if constant and has_constant == "skip":
        return x
    if frame:
        out = x.copy()
        out.insert(0 if prepend else out.shape[1], "const", 1.0)
        return out
    ones = np.ones((x.shape[0], 1))
    return np.hstack([ones, x] if prepend else [x, ones])


datasets = SimpleNamespace(get_rdataset=get_rdataset)
regression = SimpleNamespace(mixed_linear_model=_compat)
formula = SimpleNamespace(mixedlm=mixedlm)
